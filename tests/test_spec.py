"""Specs and netlists: validation names the bad field; unsafe netlists are refused; includes."""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import DATA, build_spec, data_spec, options, spec_data

from circuitnn import extract_family
from circuitnn.errors import ConfigError, NetlistError
from circuitnn.extract.pipeline import family_key
from circuitnn.neuron.builtin import builtin_neurons, get_neuron
from circuitnn.neuron.spec import DEFAULT_LOAD
from circuitnn.neuron.spec_file import load_spec
from circuitnn.neuron.variation import MonteCarlo, sample_parameters


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda d: d.pop(key)


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        table = data
        for part in parents:
            table = table.setdefault(part, {})
        table[last] = value

    return change


# (id, change to the divider spec, error type, text the message must contain)
BAD_SPECS = [
    ("missing sweep", _drop("sweep"), ConfigError, r"missing \[sweep\]"),
    ("missing ports", _drop("ports"), ConfigError, r"missing \[ports\]"),
    ("missing name", _drop("name"), ConfigError, "'name'"),
    ("missing input", lambda d: d["ports"].pop("input"), ConfigError, "ports.input"),
    ("unknown port", _set("ports.ground", ["gnd", "sub"]), ConfigError, "'sub'"),
    ("unconnected port", lambda d: d["ports"].pop("supplies"), ConfigError, "'vdd'.*not connected"),
    ("port twice", _set("ports.ground", ["gnd", "vdd"]), ConfigError, "'vdd'.*more than once"),
    ("three inputs", _set("ports.input", ["in", "out", "gnd"]), ConfigError, "ports.input"),
    ("bad supply volts", _set("ports.supplies", {"vdd": "2.5x"}), ConfigError, "supplies.vdd"),
    (
        "bad distribution",
        _set("variation.r1.local", {"distribution": "gaussian", "sigma": 1}),
        ConfigError,
        "variation.r1.local.distribution",
    ),
    (
        "pelgrom without area",
        _set("variation.r1.local", {"pelgrom": "5n"}),
        ConfigError,
        r"variation.r1.local.area.*pelgrom",
    ),
    (
        "pelgrom area of unknown parameter",
        _set("variation.r1.local", {"pelgrom": "5n", "area": ["w", "l"]}),
        ConfigError,
        "area names unknown parameter 'w'",
    ),
    (
        "area without pelgrom",
        _set("variation.r1.local", {"sigma": 1, "area": ["r1", "r2"]}),
        ConfigError,
        "variation.r1.local.area",
    ),
    (
        "two amounts",
        _set("variation.r1.local", {"sigma": 1, "relative": 0.1}),
        ConfigError,
        "variation.r1.local.*exactly one",
    ),
    (
        "negative sigma",
        _set("variation.r1.local", {"sigma": -1}),
        ConfigError,
        "variation.r1.local.sigma",
    ),
    (
        "lognormal with absolute sigma",
        _set("variation.r1.local", {"distribution": "lognormal", "sigma": 10}),
        ConfigError,
        "variation.r1.local.*lognormal",
    ),
    (
        "unknown scope",
        _set("variation.r1", {"die": {"sigma": 1}}),
        ConfigError,
        "variation.r1.*'die'",
    ),
    (
        "unknown parameter in variation",
        _set("variation.zz", {"local": {"sigma": 1}}),
        ConfigError,
        "variation.zz",
    ),
    ("sweep stop below start", _set("sweep.stop", -2.0), ConfigError, "sweep.stop"),
    ("sweep stop equals start", _set("sweep.stop", -1.0), ConfigError, "sweep.stop"),
    ("sweep start not a number", _set("sweep.start", "low"), ConfigError, "sweep.start"),
    ("sweep one point", _set("sweep.points", 1), ConfigError, "sweep.points"),
    ("sweep points text", _set("sweep.points", "41"), ConfigError, "sweep.points"),
    ("missing sweep stop", lambda d: d["sweep"].pop("stop"), ConfigError, "sweep.*'stop'"),
    ("bad quantity", _set("output.quantity", "power"), ConfigError, "output.quantity"),
    (
        "differential output with one port",
        _set("output.quantity", "differential_voltage"),
        ConfigError,
        "ports.output",
    ),
    ("bad parameter value", _set("parameters.r1", "1kk"), ConfigError, "parameters.r1"),
    ("parameter not in subckt", _set("parameters.r9", 5), ConfigError, "'r9'"),
    ("corner of unknown parameter", _set("corners.high.r7", 1), ConfigError, "corners.high"),
    ("below absolute zero", _set("temperature", -300), ConfigError, "temperature"),
    ("missing netlist file", _set("netlist", "nowhere.cir"), ConfigError, "nowhere.cir"),
    ("unknown subckt", _set("subckt", "nosuch"), NetlistError, "no .subckt named 'nosuch'"),
]


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [case[1:] for case in BAD_SPECS],
    ids=[case[0] for case in BAD_SPECS],
)
def test_bad_spec_is_refused_naming_the_field(
    change: Callable[[dict[str, Any]], None], error: type[Exception], message: str
) -> None:
    data = spec_data("divider")
    build_spec(copy.deepcopy(data))  # the unmodified spec is valid
    change(data)
    with pytest.raises(error, match=message):
        build_spec(data)


def test_spec_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_spec(tmp_path / "absent.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("name = 'x'\n[ports\n")
    with pytest.raises(ConfigError, match=r"broken\.toml.*invalid TOML"):
        load_spec(broken)


def test_output_table_is_optional_and_defaults_to_a_voltage_output() -> None:
    full = spec_data("divider")
    full["output"] = {"quantity": "voltage"}
    short = copy.deepcopy(full)
    del short["output"]
    with_table, without = build_spec(full), build_spec(short)
    assert without.output == with_table.output
    assert (without.output.quantity, without.output.load_capacitance) == ("voltage", DEFAULT_LOAD)
    assert family_key(without, MonteCarlo(n=3)) == family_key(with_table, MonteCarlo(n=3))
    current = copy.deepcopy(short)
    current["output"] = {"quantity": "current", "load_voltage": 1.0}
    assert build_spec(current).output.quantity == "current"


def test_unknown_corner_is_refused() -> None:
    spec = data_spec("divider")
    assert spec.nominal("high")["r1"] == pytest.approx(1100.0)
    with pytest.raises(ConfigError, match=r"unknown corner 'nope'.*high"):
        spec.nominal("nope")
    with pytest.raises(ConfigError, match="unknown corner 'nope'"):
        sample_parameters(spec, MonteCarlo(n=3, corner="nope"))
    with pytest.raises(ConfigError, match="unknown corner 'nope'"):
        extract_family(spec, n=2, corner="nope", options=options())


def test_bad_overrides_are_refused() -> None:
    spec = data_spec("divider")
    with pytest.raises(ConfigError, match="no parameter 'r5'"):
        spec.with_parameters(r5=1)
    with pytest.raises(ConfigError, match=r"divider\.r1"):
        spec.with_parameters(r1="big")
    with pytest.raises(ConfigError, match="temperature"):
        spec.with_temperature("hot")
    with pytest.raises(ConfigError, match="absolute zero"):
        spec.with_temperature(-274)
    assert spec.with_parameters(r1="2k").parameters["r1"] == 2000.0
    assert spec.parameters["r1"] == 1000.0  # specs are immutable: the original is unchanged


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n": 0}, "n"),
        ({"n": 2.5}, "n"),
        ({"n": 3, "seed": -1}, "seed"),
        ({"n": 3, "seed": 2**63}, "seed"),
        ({"n": 3, "chip_size": 0}, "chip_size"),
        ({"n": True}, "n"),
    ],
)
def test_bad_monte_carlo_settings(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=f"MonteCarlo.{field}"):
        MonteCarlo(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"chunk_size": 0}, "chunk_size"),
        ({"engine": "spectre"}, "engine"),
        ({"timeout": 0}, "timeout"),
    ],
)
def test_bad_run_options(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        options(**kwargs)


def test_unknown_neuron_name() -> None:
    with pytest.raises(ConfigError, match=r"unknown neuron 'nosuchneuron'.*diode_relu"):
        get_neuron("nosuchneuron")


# --- unsafe netlists ------------------------------------------------------------------------


def _spec_folder(tmp_path: Path, netlist: str, extra_files: dict[str, str] | None = None) -> Path:
    """A copy of the divider spec whose netlist is ``netlist`` (plus extra files)."""
    shutil.copy(DATA / "divider.toml", tmp_path / "divider.toml")
    (tmp_path / "divider.cir").write_text(netlist)
    for name, text in (extra_files or {}).items():
        (tmp_path / name).write_text(text)
    return tmp_path / "divider.toml"


DIVIDER_BODY = (DATA / "divider.cir").read_text()


@pytest.mark.parametrize(
    "dangerous",
    [
        ".control\nshell touch pwned\n.endc\n",
        "shell touch pwned\n",
        "  .CONTROL\n.endc\n",
        ".exec shell touch pwned\n",
    ],
)
def test_control_blocks_and_shell_are_refused(tmp_path: Path, dangerous: str) -> None:
    path = _spec_folder(tmp_path, DIVIDER_BODY + dangerous)
    with pytest.raises(NetlistError, match=r"divider\.cir:.*allow_control"):
        load_spec(path)
    spec = load_spec(path, allow_control=True)  # a deliberate opt-in admits it
    assert spec.subckt.name == "divider"
    assert not (tmp_path / "pwned").exists()


def test_control_block_in_an_included_file_is_refused(tmp_path: Path) -> None:
    netlist = '.include "extra.lib"\n' + DIVIDER_BODY
    path = _spec_folder(tmp_path, netlist, {"extra.lib": "* models\n.control\n.endc\n"})
    with pytest.raises(NetlistError, match=r"extra\.lib"):
        load_spec(path)


def test_missing_include_is_a_netlist_error(tmp_path: Path) -> None:
    path = _spec_folder(tmp_path, ".include missing.lib\n" + DIVIDER_BODY)
    with pytest.raises(NetlistError, match=r"missing\.lib"):
        load_spec(path)


# --- a user's netlist with an include works like a built-in ---------------------------------

DIODE_WITH_INCLUDE = """* a user's neuron whose diode model lives in a library file
.include models/diodes.lib
.subckt userdiode in out gnd params: r=1k
D1 in out userdio
R1 out gnd {r}
.ends userdiode
"""
USER_SPEC = """
name = "userdiode"
netlist = "userdiode.cir"
[ports]
input = "in"
output = "out"
ground = "gnd"
[sweep]
start = 0
stop = 1.5
points = 16
[output]
quantity = "voltage"
[variation.r]
local = { distribution = "normal", relative = 0.05 }
"""


def _user_neuron(folder: Path, model: str) -> Path:
    (folder / "models").mkdir(exist_ok=True)
    (folder / "models" / "diodes.lib").write_text(f".model userdio D({model})\n")
    (folder / "userdiode.cir").write_text(DIODE_WITH_INCLUDE)
    (folder / "userdiode.toml").write_text(USER_SPEC)
    return folder / "userdiode.toml"


def test_user_netlist_with_include_runs_and_its_library_is_part_of_the_key(
    tmp_path: Path,
) -> None:
    path = _user_neuron(tmp_path, "IS=1e-14 N=1")
    spec = get_neuron(path)
    library = (tmp_path / "models" / "diodes.lib").resolve()
    [included] = spec.includes  # copied into ngspice's run folder under a safe name
    assert (included.source, included.text) == (str(library), ".model userdio D(IS=1e-14 N=1)\n")
    assert f'.include "{included.name}"' in spec.netlist_text
    assert str(library) not in spec.netlist_text

    # the .cir path is accepted as well as the .toml
    family = extract_family(tmp_path / "userdiode.cir", n=3, seed=0, options=options())
    assert family.ok.all()
    assert np.all(np.diff(family.curves, axis=1) > 0)  # a forward-biased diode: rising output

    key = family_key(spec, MonteCarlo(n=3))
    _user_neuron(tmp_path, "IS=2e-14 N=1")  # same netlist, different model library
    changed = family_key(get_neuron(path), MonteCarlo(n=3))
    assert changed != key
    higher = extract_family(path, n=3, seed=0, options=options())
    # doubled IS: the same current needs n*V_T*ln(2) less diode drop, so the output is higher
    assert np.all(higher.curves[:, -1] > family.curves[:, -1])


def test_builtin_neurons_load_and_simulate() -> None:
    names = builtin_neurons()
    assert {"diode_relu", "cmos_inverter", "mos_diffpair", "mirror_relu", "bjt_diffpair"} <= set(
        names
    )
    for name in names:
        spec = get_neuron(name)
        family = extract_family(name, n=3, seed=1, options=options())
        assert family.ok.all(), (name, family.reasons)
        assert family.curves.shape == (3, spec.sweep.points)
        assert np.isfinite(family.nominal_curve).all()
        assert family.output_unit == ("A" if spec.output.quantity == "current" else "V")
        # every built-in is a monotonic activation function
        assert np.all(family.descriptors["monotonic"] == 1), name
