"""Foundry kits (sky130) with the real ngspice and the real SkyWater models.

* the slice of the kit's section gives the curve the full library gives (an isolated
  ``ngspice -n -b`` run of each, written here by hand, the full one read as the kit ships it);
* the kit's mismatch, drawn by circuitnn, shifts a device's threshold by the kit's own
  slope/√(W·L) per unit draw, read back from ngspice;
* a family's curves are their instances' isolated runs; the same seed gives the same instances
  whatever the chunking; the library is parsed once per ngspice circuit, counted;
* corners go through the kit's sections and order as physics says;
* sky130 noise equals a standalone ``.noise`` run of the same instance.

Skipped, with the install command, when the kit is not installed.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers import isolated_run, options

from circuitnn import extract_family
from circuitnn.errors import ConfigError
from circuitnn.family.descriptors import midpoints
from circuitnn.neuron.builtin import get_neuron, kit_neurons
from circuitnn.neuron.pdk import SKY130_INSTALL, find_library, kit_available
from circuitnn.neuron.variation import MonteCarlo, sample_parameters
from circuitnn.spice.analyses import NoiseAnalysis
from circuitnn.spice.ngspice_process import ngspice_executable

pytestmark = pytest.mark.skipif(
    not kit_available("sky130"), reason=f"the sky130 kit is not installed: {SKY130_INSTALL}"
)

NEURON = "sky130_inverter"


@pytest.fixture(scope="module", autouse=True)
def _slice_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The module's slices go into a fresh cache folder (made once per corner here)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CIRCUITNN_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


def small(corner: str = "tt", points: int = 37, **changes: object):
    """The built-in inverter with a short sweep (the same spec otherwise)."""
    import dataclasses

    from circuitnn.neuron.pdk import at_corner

    spec = get_neuron(NEURON)
    spec = dataclasses.replace(spec, sweep=dataclasses.replace(spec.sweep, points=points))
    return at_corner(spec, corner) if corner != spec.pdk.corner else spec


def ngspice_log(text: str, folder: Path) -> str:
    """What ``ngspice -n -b`` prints for the hand-written netlist ``text`` (run in ``folder``)."""
    path = folder / "alone.cir"
    path.write_text(text)
    return subprocess.run(
        [ngspice_executable(), "-n", "-b", str(path)],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout


def run_alone(text: str, folder: Path, vectors: int) -> np.ndarray:
    """Run a hand-written netlist with ``ngspice -n -b``; its ``print`` table as rows. (ngspice
    exits with 1 after a ``.control`` run in batch mode: the table is what is checked.)"""
    log = ngspice_log(text, folder)
    rows = [
        [float(x) for x in line.split()[1:]]
        for line in log.splitlines()
        if re.match(r"^\d+\t", line) and len(line.split()) == vectors + 2
    ]
    assert rows, log[-2000:]
    return np.array(rows)


def inverter_netlist(library_line: str, nfet: str = "", analysis: str = "") -> str:
    """An inverter of the built-in's sizes, by hand, on ``library_line``; prints v(out)."""
    return f"""* inverter alone
{library_line}
Vdd vdd 0 1.8
Vin in 0 0
Xn out in 0 0 sky130_fd_pr__nfet_01v8 w=1 l=0.15 {nfet}
Xp out in vdd vdd sky130_fd_pr__pfet_01v8 w=2 l=0.15
Cl out 0 100f
{analysis or ".dc Vin 0 1.8 0.05"}
.control
run
{"setplot noise1" if analysis else ""}
print {"onoise_spectrum" if analysis else "v(out)"}
.endc
.end
"""


def test_slice_gives_the_full_library_curve(tmp_path: Path) -> None:
    spec = small()
    full = find_library("sky130")
    sliced = run_alone(inverter_netlist(f'.include "{spec.pdk.slice_path}"'), tmp_path, 1)
    whole = run_alone(inverter_netlist(f'.lib "{full}" tt'), tmp_path, 1)
    assert sliced.shape == whole.shape == (37, 2)
    assert np.ptp(whole[:, 1]) > 1.7  # (a real inverter: rail to rail)
    np.testing.assert_allclose(sliced[:, 1], whole[:, 1], rtol=0, atol=1e-9)
    # the slice holds the two devices only, of the 188 subcircuits the section defines (its
    # parse time against the full one is benchmarks/bench_pdk.py's)
    text = Path(spec.pdk.slice_path).read_text()
    subckts = re.findall(r"(?im)^\.subckt\s+(\S+)", text)
    assert sorted(subckts) == ["sky130_fd_pr__nfet_01v8", "sky130_fd_pr__pfet_01v8"]
    # ... and of their size bins only those holding the neuron's W/L (L = 0.15 µm is a bin
    # edge: both neighbours stay), of the 288 the two devices have
    assert len(re.findall(r"(?im)^\.model\s", text)) == 4


def test_sizes_that_vary_keep_every_bin() -> None:
    from circuitnn.neuron.pdk import device_sizes

    line = "XMn d g s b sky130_fd_pr__nfet_01v8 w={w_n} l=0.15 mm_vth0={z}\n"
    parameters = {"w_n": 1.0, "z": 0.0}
    assert device_sizes([line], parameters, set(), {}) == {"sky130_fd_pr__nfet_01v8": [(1.0, 0.15)]}
    assert device_sizes([line], parameters, {"w_n"}, {}) == {"sky130_fd_pr__nfet_01v8": None}
    corner = {"ff": {"w_n": 0.1}}
    assert device_sizes([line], parameters, set(), corner) == {"sky130_fd_pr__nfet_01v8": None}
    scaled = line.replace("w={w_n}", "w={2*w_n}")
    assert device_sizes([scaled], parameters, set(), {}) == {"sky130_fd_pr__nfet_01v8": None}


def test_kit_mismatch_scales_as_the_kit_says(tmp_path: Path) -> None:
    spec = small()
    slope_file = find_library("sky130").parents[1] / (
        "cells/nfet_01v8/sky130_fd_pr__nfet_01v8__mismatch.corner.spice"
    )
    slope = float(
        re.search(r"nfet_01v8__vth0_slope=([-\d.e+]+)", slope_file.read_text()).group(1)  # type: ignore[union-attr]
    )
    vth = []
    for z in (0.0, 2.0):
        text = f"""* one nfet
.include "{spec.pdk.slice_path}"
Vd d 0 0.9
Vg g 0 0.9
Xn d g 0 0 sky130_fd_pr__nfet_01v8 w=1 l=0.15 mm_vth0={z}
.op
.control
run
print @m.xn.msky130_fd_pr__nfet_01v8[vth]
.endc
.end
"""
        log = ngspice_log(text, tmp_path)
        vth.append(float(re.search(r"\[vth\] = (\S+)", log).group(1)))  # type: ignore[union-attr]
    np.testing.assert_allclose(vth[1] - vth[0], 2.0 * slope / np.sqrt(1.0 * 0.15), rtol=1e-3)


def test_family_curves_are_isolated_runs_and_do_not_depend_on_chunks(
    tmp_path: Path, fake_ngspice
) -> None:
    spec = small()
    assert spec.pdk.mismatch and "z_vth0_n" in spec.pdk.mismatch_parameters
    # a real ngspice behind a wrapper that counts the circuits that read the slice
    count = tmp_path / "parses"
    real = ngspice_executable()
    fake_ngspice(
        f'for f in "$@"; do case "$f" in *.cir) grep -c "^.include \\"{spec.pdk.slice_path}" '
        f'"$f" >> {count} 2>/dev/null; for j in $(dirname "$f")/job*.cir; do [ -f "$j" ] && '
        f'grep -c "^.include \\"{spec.pdk.slice_path}" "$j" >> {count}; done;; esac; done\n'
        f'exec {real} "$@"'
    )
    family = extract_family(spec, n=6, seed=3, options=options(chunk_size=3, jobs=1))
    assert (family.status == 1).all()
    # identity without bulk: the family names the kit's files by name and hash, no library text
    kit = json.loads(family.attrs["spec"])["pdk"]
    assert ["corners/tt.spice", spec.pdk.sources[1].digest] in kit["sources"]
    assert len(json.dumps(family.attrs, default=str)) < 100_000
    parses = sum(int(x) for x in count.read_text().split() if x.strip())
    # one parse of the slice per ngspice circuit: the nominal run, then per chunk its batch and
    # its self-check instance (the device values are read in the batch's own run, before its
    # sweep); no instance of this family jumps, so none runs alone beyond the self-check
    assert set(family.run_alone.tolist()) <= {0, 2}
    assert parses == 1 + 2 * 2, parses
    again = extract_family(spec, n=6, seed=3, options=options(chunk_size=2, jobs=1))
    np.testing.assert_array_equal(again.parameters, family.parameters)
    tolerance = 4 * (spec.simulator.reltol * np.abs(family.curves) + spec.simulator.vntol)
    assert (np.abs(again.curves - family.curves) <= tolerance).all()
    # the mismatch is real: instances differ by more than the tolerance
    assert np.ptp(midpoints(family.grid, family.curves)) > 5e-3
    table = sample_parameters(spec, MonteCarlo(n=6, seed=3))
    np.testing.assert_array_equal(table.values, family.parameters)
    for row in (0, 5):
        alone = isolated_run(spec, table, row)
        assert (np.abs(alone - family.curves[row]) <= tolerance[row]).all()
    # realized device parameters: each instance's own devices, read back at mid-sweep
    z = dict(zip(family.parameter_names, family.parameters[5].tolist(), strict=True))
    nfet = " ".join(f"mm_{p}={z[f'z_{p}_n']!r}" for p in ("toxe", "vth0", "voff"))
    pfet = " ".join(f"mm_{p}={z[f'z_{p}_p']!r}" for p in ("toxe", "vth0", "voff", "nfactor"))
    text = f"""* instance 5 alone at the middle of the sweep
.include "{spec.pdk.slice_path}"
Vdd vdd 0 1.8
Vin in 0 0.9
Xn out in 0 0 sky130_fd_pr__nfet_01v8 w=1 l=0.15 {nfet}
Xp out in vdd vdd sky130_fd_pr__pfet_01v8 w=2 l=0.15 {pfet}
.op
.control
run
print @m.xn.msky130_fd_pr__nfet_01v8[vth] @m.xp.msky130_fd_pr__pfet_01v8[vth]
.endc
.end
"""
    (tmp_path / "op.cir").write_text(text)
    log = subprocess.run(
        [real, "-n", "-b", "op.cir"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    ).stdout
    vth_n, vth_p = (float(x) for x in re.findall(r"\[vth\] = (\S+)", log))
    np.testing.assert_allclose(family.descriptors["vth_xmn"][5], vth_n, rtol=1e-6)
    np.testing.assert_allclose(family.descriptors["vth_xmp"][5], vth_p, rtol=1e-6)
    # KCL at the (unloaded at DC) output: the two devices carry one current
    np.testing.assert_allclose(
        family.descriptors["id_xmn"], family.descriptors["id_xmp"], rtol=1e-5
    )
    # the drawn threshold mismatch is what moves the realized threshold
    r = np.corrcoef(family.parameter("z_vth0_n"), family.descriptors["vth_xmn"])[0, 1]
    assert r > 0.9, r


def thresholds(slice_path: str, folder: Path) -> tuple[float, float]:
    """|VT| of the inverter's nfet and pfet (its sizes, |VGS| = |VDS| = 0.9 V) on a slice."""
    text = f"""* two devices
.include "{slice_path}"
Vdd vdd 0 1.8
Vh h 0 0.9
Xn vdd h 0 0 sky130_fd_pr__nfet_01v8 w=1 l=0.15
Xp 0 h vdd vdd sky130_fd_pr__pfet_01v8 w=2 l=0.15
.op
.control
run
print @m.xn.msky130_fd_pr__nfet_01v8[vth] @m.xp.msky130_fd_pr__pfet_01v8[vth]
.endc
.end
"""
    path = folder / "vt.cir"
    path.write_text(text)
    log = subprocess.run(
        [ngspice_executable(), "-n", "-b", str(path)], capture_output=True, text=True, timeout=60
    ).stdout
    found = [abs(float(x)) for x in re.findall(r"\[vth\] = (\S+)", log)]
    assert len(found) == 2, log[-2000:]
    return found[0], found[1]


def test_corners_go_through_the_kit_sections_in_physical_order(tmp_path: Path) -> None:
    nfet, pfet, middle = {}, {}, {}
    for corner in ("tt", "ff", "ss", "fs", "sf"):
        spec = small(corner, points=73)
        assert spec.pdk.corner == corner
        assert f"corners/{corner}.spice" in [s.name for s in spec.pdk.sources]
        nfet[corner], pfet[corner] = thresholds(spec.pdk.slice_path, tmp_path)
    # the kit's fast corner lowers both thresholds, its slow corner raises them
    assert nfet["ff"] < nfet["tt"] < nfet["ss"] and pfet["ff"] < pfet["tt"] < pfet["ss"]
    spec = small(points=73)
    for corner in ("tt", "fs", "sf"):  # (--corner: a section of the kit, not a spec offset)
        family = extract_family(spec, n=1, seed=0, corner=corner, options=options())
        assert (family.status == 1).all()
        middle[corner] = float(midpoints(family.grid, family.nominal_curve[None])[0])
    # the switching point rises as the nfet weakens against the pfet (VTn − |VTp| grows)
    by_strength = sorted(middle, key=lambda c: nfet[c] - pfet[c])
    assert [middle[c] for c in by_strength] == sorted(middle.values()), (middle, nfet, pfet)
    assert middle[by_strength[-1]] - middle[by_strength[0]] > 0.1


def test_sky130_noise_equals_a_standalone_noise_run(tmp_path: Path) -> None:
    import dataclasses

    spec = small()
    spec = dataclasses.replace(
        spec, variations=(), pdk=dataclasses.replace(spec.pdk, mismatch=False)
    )
    analysis = NoiseAnalysis(
        bias=(0.8,), fmin=10.0, fmax=1e6, points_per_decade=1, bandwidth=1e5, input_referred=False
    )
    family = extract_family(spec, n=1, seed=0, options=options(), noise=analysis)
    assert family.noise is not None and (family.noise.status == 1).all()
    text = inverter_netlist(
        f'.include "{spec.pdk.slice_path}"', analysis=".noise v(out) Vin dec 1 10 1e6"
    ).replace("Vin in 0 0", "Vin in 0 DC 0.8 AC 1")
    alone = run_alone(text, tmp_path, 1)
    psd = alone[:, 1] ** 2  # (ngspice prints the noise density in V/√Hz)
    assert (psd > 0).all()
    np.testing.assert_allclose(family.noise.psd[0, 0], psd, rtol=1e-3)


@pytest.mark.parametrize("name", ["sky130_diffpair", "sky130_mirror_relu"])
def test_the_other_sky130_neurons_simulate_with_their_kit_mismatch(name: str) -> None:
    import dataclasses

    spec = get_neuron(name)
    spec = dataclasses.replace(spec, sweep=dataclasses.replace(spec.sweep, points=19))
    family = extract_family(spec, n=3, seed=0, options=options())
    assert (family.status == 1).all()
    varied = [v.parameter for v in spec.variations if v.local and v.local.sigma == 1.0]
    assert {"z_vth01", "z_vth02"} <= set(varied)
    assert np.ptp(family.curves[:, -1]) > 0  # (instances differ)
    assert np.ptp(family.nominal_curve) > 0.5 * np.max(np.abs(family.nominal_curve))


def test_missing_kit_and_bad_pdk_tables_are_one_line_errors(monkeypatch, tmp_path) -> None:
    from helpers import build_spec

    assert kit_neurons()[NEURON] == "sky130"
    folder = find_library("sky130").parent
    data = {
        "name": "x",
        "netlist": str(Path(get_neuron(NEURON).netlist_source)),
        "subckt": "sky130_inverter",
        "ports": {"input": "in", "output": "out", "supplies": {"vdd": 1.8}, "ground": "gnd"},
        "sweep": {"start": 0, "stop": 1.8, "points": 5},
    }
    with pytest.raises(ConfigError, match="unknown key 'corners'"):
        build_spec({**data, "pdk": {"name": "sky130", "corners": "tt"}})
    with pytest.raises(ConfigError, match="no such section"):
        build_spec({**data, "pdk": {"name": "sky130", "corner": "zz"}})
    with pytest.raises(ConfigError, match="would not be reproducible"):
        build_spec({**data, "pdk": {"name": "sky130", "corner": "mc"}})
    with pytest.raises(ConfigError, match="unknown kit"):
        build_spec({**data, "pdk": {"name": "gf180"}})
    generic = build_spec({**data, "pdk": {"library": str(folder / "sky130.lib.spice")}})
    assert generic.pdk is not None and generic.pdk.name == "custom"
    monkeypatch.setenv("CIRCUITNN_SKY130_LIBRARY", str(tmp_path / "none.spice"))
    with pytest.raises(ConfigError, match="CIRCUITNN_SKY130_LIBRARY"):
        build_spec({**data, "pdk": {"name": "sky130"}})


def test_cli_extracts_one_family_per_listed_kit_corner(tmp_path: Path, capsys) -> None:
    from circuitnn.cli import main
    from circuitnn.store import Store

    store = tmp_path / "s.h5"
    assert main(["extract", NEURON, "--n", "1", "--corner", "ff,ss", "--store", str(store)]) == 0
    printed = capsys.readouterr().out
    assert "at corner ff" in printed and "at corner ss" in printed
    opened = Store(store)
    families = [opened.load(key) for key in opened.keys()]  # noqa: SIM118 (a Store, not a dict)
    assert sorted(f.attrs["corner"] for f in families) == ["ff", "ss"]
    assert main(["extract", NEURON, "--n", "1", "--corner", "ff,", "--store", str(store)]) == 2
    assert "empty corner name" in capsys.readouterr().err


def test_devices_read_in_the_batch_run_equal_a_run_of_their_own(monkeypatch) -> None:
    """A chunk reads its transistors' values in its own ngspice run, before the sweep, on the
    circuit already loaded: the values equal a separate ``.op`` run's bit for bit (the shared
    engine, without sessions, still runs that one), and the sweep is the sweep without them."""
    import circuitnn.extract.dc_chunk
    from circuitnn.extract.dc_chunk import simulate_chunk
    from circuitnn.spice.devices import device_parameters
    from circuitnn.spice.session import PRELUDE_MARK

    runs_of_their_own: list[str] = []
    realized = circuitnn.extract.dc_chunk.realized_devices

    def counted(spec: object, table: object, engine: str, *rest: object) -> object:
        runs_of_their_own.append(engine)
        return realized(spec, table, engine, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(circuitnn.extract.dc_chunk, "realized_devices", counted)
    spec = small()
    table = sample_parameters(spec, MonteCarlo(n=5, seed=8))
    batch = simulate_chunk(spec, table, "subprocess", 120.0, 1, 1, None)
    assert (batch.status == 1).all() and not any(PRELUDE_MARK in line for line in batch.log)
    separate = device_parameters(spec, table, "subprocess", 120.0)
    shared = simulate_chunk(spec, table, "shared", 120.0, 1, 1, None)
    assert runs_of_their_own == ["shared"]
    assert (
        set(batch.devices)
        == set(separate)
        == {f"{q}_{d}" for q in ("vth", "id", "gm") for d in ("xmn", "xmp")}
    )
    for column, values in separate.items():
        np.testing.assert_array_equal(batch.devices[column], values, column)
        np.testing.assert_array_equal(shared.devices[column], values, column)
    assert np.ptp(batch.devices["vth_xmn"]) > 1e-4  # each instance its own devices
    np.testing.assert_array_equal(batch.curves, shared.curves)
    np.testing.assert_array_equal(batch.supply_current, shared.supply_current)
