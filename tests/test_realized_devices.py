"""Realized device parameters of the project's own transistor neurons (level 1, BSIM4 and
bipolar): every instance of a family records each transistor's quantities at the middle of the
sweep, read in its chunk's own ngspice run. Checked against an isolated ``ngspice -b`` ``.op`` of
the same instance, written here by hand, and against the devices' own laws with the drawn
mismatch; ``[output] devices = false`` turns them off without changing a curve."""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from circuitnn.errors import ConfigError
from circuitnn.extract.pipeline import extract_family
from circuitnn.neuron.builtin import builtin_folder, get_neuron
from circuitnn.neuron.spec import NeuronSpec
from circuitnn.spice.ngspice_process import ngspice_executable
from tests.helpers import build_spec, options, spec_data

# the quantities a MOSFET pair records (ngspice's threshold name → the column's) and its supply
MOSFET_PAIRS = {"mos_diffpair_level1": "von", "mos_diffpair": "vth"}
_PRINTED = re.compile(r"^(@\S+)\s*=\s*(\S+)\s*$", re.M)
BOLTZMANN, CHARGE = 1.38064852e-23, 1.6021766208e-19  # J/K, C: the values compiled into ngspice


def oracle_op(
    spec: NeuronSpec, values: dict[str, float], names: list[str], supply: str, folder: Path
) -> dict[str, float]:
    """One instance's ``.op`` at input 0 (the middle of its symmetric sweep), alone in a plain
    ``ngspice -b`` process, with the spec's tolerances: ``@`` name (in instance ``x1``) → value,
    as printed."""
    netlist = (builtin_folder() / f"{spec.name}.cir").read_text()
    parameters = " ".join(f"{name}={value!r}" for name, value in values.items())
    sim = spec.simulator
    (folder / "oracle.cir").write_text(
        "\n".join(
            [
                "* one instance, by hand",
                netlist,
                "vx x 0 DC 0",
                f"vcm cm 0 DC {spec.sweep.common_mode!r}",
                "einp inp cm x 0 0.5",
                "einn inn cm x 0 -0.5",
                f"x1 inp inn op on {supply} 0 {spec.subckt.name} {parameters}",
                f"v{supply} {supply} 0 DC {spec.ports.supplies[supply]!r}",
                f".temp {spec.temperature}",
                f".options reltol={sim.reltol!r} abstol={sim.abstol!r} vntol={sim.vntol!r}",
                ".options noopiter",
                ".control",
                "op",
                *(f"print {name}" for name in names),
                ".endc",
                ".end",
            ]
        )
    )
    run = subprocess.run(
        [ngspice_executable(), "-n", "-b", "oracle.cir"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,  # (batch mode exits 1 when the netlist has no dot analysis of its own)
    )
    printed = {name.lower(): float(value) for name, value in _PRINTED.findall(run.stdout)}
    assert set(printed) == set(names), run.stdout[-2000:]
    return printed


def _instance_values(family, row: int) -> dict[str, float]:
    return dict(zip(family.parameter_names, map(float, family.parameters[row]), strict=True))


def _assert_equal_to_oracle(family, spec: NeuronSpec, columns: dict, supply: str, tmp_path) -> None:
    """``columns``: descriptor → ``@`` name in ``x1``; every instance against its own ``.op``
    (the batch's Newton iterations stop at the spec's tolerance, not at the same digits)."""
    for row in range(len(family.status)):
        oracle = oracle_op(
            spec, _instance_values(family, row), list(columns.values()), supply, tmp_path
        )
        for column, name in columns.items():
            got = family.descriptors[column][row]
            assert got == pytest.approx(oracle[name], rel=10 * spec.simulator.reltol, abs=1e-12), (
                row,
                column,
            )


@pytest.mark.parametrize("name", sorted(MOSFET_PAIRS))
def test_builtin_families_record_devices_equal_to_an_isolated_op(name: str, tmp_path: Path) -> None:
    """Every instance's recorded values equal its own isolated ``.op`` to the spec's relative
    tolerance, differ from instance to instance as its drawn mismatch does, and obey KCL at the
    tail: I(M1) + I(M2) = ibias."""
    spec = get_neuron(name)
    family = extract_family(
        name, n=5, seed=3, store=tmp_path / "s.h5", options=options(chunk_size=3)
    )
    assert (family.status == 1).all()
    threshold = MOSFET_PAIRS[name]
    columns = {
        f"{'vth' if q == threshold else q}_{m}": f"@m.x1.{m}[{q}]"
        for m in ("m1", "m2")
        for q in (threshold, "id", "gm")
    }
    assert set(columns) <= set(family.descriptors)
    _assert_equal_to_oracle(family, spec, columns, "vdd", tmp_path)
    for row in range(5):
        tail = family.descriptors["id_m1"][row] + family.descriptors["id_m2"][row]
        assert tail == pytest.approx(_instance_values(family, row)["ibias"], rel=1e-6), row
    for column in columns:  # each instance its own devices
        assert np.ptp(family.descriptors[column]) > 0, column


# each built-in MOSFET neuron's transistors and the parameter that draws their threshold shift
THRESHOLD_SHIFTS = {
    "cmos_inverter": {"mn": "dvt_n", "mp": "dvt_p"},
    "cmos_inverter_level1": {"mn": "dvt_n", "mp": "dvt_p"},
    "mirror_relu": {"m1": "dvt1", "m2": "dvt2"},
    "mirror_relu_level1": {"m1": "dvt1", "m2": "dvt2"},
    "mos_diffpair": {"m1": "dvt1", "m2": "dvt2"},
    "mos_diffpair_level1": {"m1": "dvt1", "m2": "dvt2"},
}


@pytest.mark.parametrize("name", sorted(THRESHOLD_SHIFTS))
def test_recorded_thresholds_carry_each_instance_s_drawn_threshold_shift(
    name: str, tmp_path: Path
) -> None:
    """The threshold mismatch is in the device, so ngspice's realized |vth| of every transistor
    is its nominal one plus the drawn shift (a larger magnitude for a positive ``dvt``, PMOS
    included). Where a transistor's source sits on a rail (inverter, mirror) that nominal value is
    the same for every instance; in a pair both sources share the tail, so the two thresholds
    differ by exactly the drawn difference whatever the tail voltage does to both."""
    family = extract_family(
        name, n=8, seed=5, store=tmp_path / "s.h5", options=options(chunk_size=4)
    )
    assert (family.status == 1).all()
    shifts = THRESHOLD_SHIFTS[name]
    magnitude = {dev: np.abs(family.descriptors[f"vth_{dev}"]) for dev in shifts}
    drawn = {dev: family.parameter(parameter) for dev, parameter in shifts.items()}
    assert all(np.std(values) > 1e-4 for values in drawn.values())  # V: something to follow
    if "diffpair" in name:
        np.testing.assert_allclose(
            magnitude["m1"] - magnitude["m2"], drawn["m1"] - drawn["m2"], rtol=0, atol=1e-6
        )
    else:
        for dev in shifts:
            nominal = magnitude[dev] - drawn[dev]
            assert np.ptp(nominal) < 1e-6, (dev, nominal)


def test_a_bipolar_pair_records_currents_traced_to_its_drawn_saturation_currents(
    tmp_path: Path,
) -> None:
    """``bjt_diffpair`` (Ebers-Moll cards): each instance's collector current, transconductance
    and base-emitter voltage equal its isolated ``.op``; and the devices obey their law with the
    drawn mismatch: Vbe = V_T·ln(Ic / (IS·(1+dis))), gm = Ic/V_T, Ic1 + Ic2 = α·itail."""
    spec = get_neuron("bjt_diffpair")
    family = extract_family(
        "bjt_diffpair", n=5, seed=2, store=tmp_path / "s.h5", options=options(chunk_size=3)
    )
    assert (family.status == 1).all()
    columns = {f"{q}_{d}": f"@q.x1.{d}[{q}]" for d in ("q1", "q2") for q in ("ic", "gm", "vbe")}
    assert set(columns) <= set(family.descriptors)
    _assert_equal_to_oracle(family, spec, columns, "vcc", tmp_path)
    thermal = BOLTZMANN * (spec.temperature + 273.15) / CHARGE  # V
    d = family.descriptors
    for row in range(5):
        values = _instance_values(family, row)
        for k, q in ((1, "q1"), (2, "q2")):
            saturation = values["is"] * (1 + values[f"dis{k}"])
            assert d[f"vbe_{q}"][row] == pytest.approx(
                thermal * np.log(d[f"ic_{q}"][row] / saturation), rel=1e-6
            )
            assert d[f"gm_{q}"][row] == pytest.approx(d[f"ic_{q}"][row] / thermal, rel=1e-6)
        alpha = values["bf"] / (values["bf"] + 1)
        tail = d["ic_q1"][row] + d["ic_q2"][row]
        assert tail == pytest.approx(alpha * values["itail"], rel=1e-6)
    assert np.ptp(d["vbe_q1"]) > 0


def test_devices_false_leaves_them_out_and_no_curve_changes(tmp_path: Path) -> None:
    """``[output] devices = false``: no device descriptors, another key, the same curves bit for
    bit (the values are read before the sweep, on the circuit already loaded)."""
    data = spec_data("mos_diffpair_level1", builtin_folder())
    data["output"]["devices"] = False
    without = build_spec(data, builtin_folder())
    assert without.output.devices is False
    store = tmp_path / "s.h5"
    off = extract_family(without, n=4, seed=1, store=store, options=options(chunk_size=2))
    on = extract_family(
        "mos_diffpair_level1", n=4, seed=1, store=store, options=options(chunk_size=2)
    )
    assert off.key != on.key
    assert not any(column.startswith(("vth_", "id_", "gm_")) for column in off.descriptors)
    assert {"vth_m1", "id_m2"} <= set(on.descriptors)
    np.testing.assert_array_equal(off.curves, on.curves)
    np.testing.assert_array_equal(off.supply_current, on.supply_current)


def test_devices_setting_must_be_true_or_false() -> None:
    data = spec_data("mos_diffpair_level1", builtin_folder())
    data["output"]["devices"] = "yes"
    with pytest.raises(ConfigError, match=r"output\.devices: expected true or false"):
        build_spec(data, builtin_folder())
    spec = get_neuron("mos_diffpair_level1")
    odd = dataclasses.replace(spec, output=dataclasses.replace(spec.output, devices=1))
    from circuitnn.neuron.spec_check import validated

    with pytest.raises(ConfigError, match=r"output\.devices must be true or false"):
        validated(odd)
