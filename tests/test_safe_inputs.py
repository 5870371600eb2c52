"""Safe inputs: no user text reaches a netlist, no control block runs without an opt-in, and
nothing circuitnn saves is read back by unpickling.

(``tests/test_units.py`` checks ``parse_spice`` value by value and ``tests/test_spec.py`` the
refusal of ``.control``/``shell`` in a netlist and its includes; ``tests/test_properties.py``
throws random specs, sweeps, TOML and store files at the API.)
"""

from __future__ import annotations

import dataclasses
import pickle
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import DATA, assert_same_family, build_spec, options, spec_data

import circuitnn
import circuitnn.extract.pipeline
from circuitnn import extract_family
from circuitnn.campaign.sweep import parse_grid, sweep_families
from circuitnn.cli import main
from circuitnn.errors import ConfigError, NetlistError
from circuitnn.extract.dc_chunk import simulate_chunk
from circuitnn.extract.pipeline import family_key
from circuitnn.neuron.cards import physical_lines
from circuitnn.neuron.spec_file import load_spec
from circuitnn.neuron.units import parse_spice
from circuitnn.neuron.variation import MonteCarlo, nominal_table, sample_parameters
from circuitnn.spice.benches import render_dc_bench
from circuitnn.store import Store

INJECTED = "1u\n.control\nshell touch PWNED\n.endc"


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (("parameters", "r1"), "parameters.r1"),
        (("sweep", "start"), "sweep.start"),
        (("sweep", "stop"), "sweep.stop"),
        (("sweep", "common_mode"), "sweep.common_mode"),
        (("ports", "supplies", "vdd"), "ports.supplies.vdd"),
        (("output", "load_voltage"), "output.load_voltage"),
        (("output", "load_capacitance"), "output.load_capacitance"),
        (("temperature",), "temperature"),
        (("variation", "r1", "local", "relative"), "variation.r1.local.relative"),
        (("corners", "high", "r1"), "corners.high.r1"),
        (("name",), "name"),
        (("output", "invert"), "output.invert"),
    ],
)
def test_text_in_a_spec_value_is_refused_naming_the_field(
    path: tuple[str, ...], field: str
) -> None:
    data = spec_data("divider")
    table = data
    for key in path[:-1]:
        table = table[key]
    table[path[-1]] = INJECTED
    with pytest.raises(ConfigError, match=re.escape(field)) as caught:
        build_spec(data)
    assert "\n" not in str(caught.value)  # the value is quoted, not pasted


def test_text_in_a_sweep_or_a_python_call_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--param r1: '1u\\n\.control"):
        parse_grid([f"r1=1k,{INJECTED}"])
    spec = load_spec(DATA / "divider.toml")
    with pytest.raises(ConfigError, match=r"divider\.r1: '1u\\n\.control"):
        spec.with_parameters(r1=INJECTED)
    with pytest.raises(ConfigError, match="temperature"):
        spec.with_temperature(INJECTED)  # type: ignore[arg-type]
    store = tmp_path / "families.h5"
    with pytest.raises(ConfigError, match="r1"):
        sweep_families(spec, {"r1": [1e3, INJECTED]}, n=2, store=store, options=options())
    with pytest.raises(ConfigError, match=r"expected a list of values"):
        sweep_families(spec, {"r1": "1k,2k"}, n=2, store=store, options=options())
    assert not store.exists()  # refused before anything ran


def test_a_name_never_opens_a_control_block() -> None:
    """The neuron's name is written into the bench's first comment line: a spec file's name must
    be one word, and even a spec built in Python (not validated) keeps it on that line. (Before,
    ``name = "x\\n.control\\nshell …\\n.endc"`` made ngspice run the shell command.)"""
    spec = load_spec(DATA / "divider.toml")
    with pytest.raises(ConfigError, match=r"name 'x\\n\.control'"):  # checked on every copy
        dataclasses.replace(spec, name="x\n.control").with_temperature(30.0)
    unchecked = dataclasses.replace(spec, name=INJECTED)
    bench = render_dc_bench(unchecked, nominal_table(unchecked))
    lines = physical_lines(bench.text)  # as ngspice reads them: no control block, no command
    assert not [line for line in lines if line.lower().startswith((".control", ".endc", "*#"))]
    assert bench.text.splitlines()[0].startswith("* circuitnn batch: 1u .control shell touch")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sweep", "DIVIDER", "--param", f"r1=1k,{INJECTED}"], "--param r1: '1u\\n.control"),
        (["extract", "DIVIDER", "--corner", "high\n.control"], "unknown corner 'high\\n.control'"),
        (["extract", "DIVIDER", "--temp", "nan"], "temperature: nan is not a finite number"),
        (["extract", "CONTROL"], "is not allowed in a neuron netlist"),
    ],
)
def test_cli_refuses_text_and_control_blocks_in_one_line(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "control.cir").write_text(
        (DATA / "divider.cir").read_text() + ".control\nshell touch PWNED\n.endc\n"
    )
    (tmp_path / "control.toml").write_text(
        (DATA / "divider.toml").read_text().replace("divider.cir", "control.cir")
    )
    names = {"DIVIDER": str(DATA / "divider.toml"), "CONTROL": str(tmp_path / "control.toml")}
    args = [names.get(arg, arg) for arg in args]
    store = tmp_path / "families.h5"
    assert main([*args, "--n", "2", "--store", str(store), "--quiet"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("circuitnn: error:") and message in error, error
    assert len(error.splitlines()) == 1 and "Traceback" not in error
    if args[1].endswith("control.toml"):
        assert "--allow-control" in error  # the opt-in is named
    assert not store.exists() and not (tmp_path / "PWNED").exists()


def test_a_long_non_number_is_refused_at_once() -> None:
    """The number pattern runs in linear time (it once took seconds on a few thousand digits)."""
    began = time.perf_counter()
    for text in ("1" * 3000 + "e" + "1" * 3000 + "!", "1" * 20000 + "x", " " * 20000 + "x"):
        with pytest.raises(ConfigError, match=r"\(\d+ chars\) is not a number"):
            parse_spice(text)
    assert time.perf_counter() - began < 0.5
    with pytest.raises(ConfigError, match="out of the range"):
        parse_spice(10**400)
    with pytest.raises(ConfigError, match="out of the range"):
        parse_spice("1e99999999999999999999")


def test_include_loops_and_library_sections(tmp_path: Path) -> None:
    data = spec_data("divider")
    (tmp_path / "divider.cir").write_text(
        '.include "loop.lib"\n' + (DATA / "divider.cir").read_text()
    )
    (tmp_path / "loop.lib").write_text('* includes itself\n.include "loop.lib"\n')
    with pytest.raises(NetlistError, match=r"loop\.lib includes itself"):
        build_spec(data, tmp_path)
    # ".lib NAME" alone opens a section of a library file: not an include
    (tmp_path / "loop.lib").write_text("* a library\n.lib tt\n.param x=1\n.endl tt\n")
    spec = build_spec(data, tmp_path)
    [included] = spec.includes
    assert (included.source, included.text) == (
        str(tmp_path / "loop.lib"),
        (tmp_path / "loop.lib").read_text(),
    )


# --- nothing is read back by unpickling --------------------------------------------------------


class _Trap:
    """Unpickling this creates a file: proof that something unpickled it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.path,))


def test_journal_refuses_a_pickled_object_and_recomputes_the_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trap = tmp_path / "UNPICKLED"
    spec = load_spec(DATA / "divider.toml")
    store = Store(tmp_path / "families.h5")
    journal = store.journal(family_key(spec, MonteCarlo(n=8, seed=1)), 4)
    table = sample_parameters(spec, MonteCarlo(n=8, seed=1), 0, 4)
    arrays = simulate_chunk(spec, table).to_arrays()
    journal.save_arrays("chunk-000000000", arrays)
    journal.save_arrays(
        "chunk-000000004", {**arrays, "start": np.array([_Trap(trap)], dtype=object)}
    )
    assert journal.load_arrays("chunk-000000004") is None  # refused (and deleted), not unpickled
    assert not trap.exists()

    journal.save_arrays(
        "chunk-000000004", {**arrays, "start": np.array([_Trap(trap)], dtype=object)}
    )
    simulated: list[int] = []
    real = simulate_chunk

    def counting(spec: Any, table: Any, *args: Any, **kwargs: Any) -> Any:
        simulated.append(int(table.index[0]))
        return real(spec, table, *args, **kwargs)

    monkeypatch.setattr(circuitnn.extract.pipeline, "simulate_chunk", counting)
    family = extract_family(DATA / "divider.toml", n=8, seed=1, store=store, options=options())
    assert sorted(simulated) == [-1, 4]  # the trapped chunk was recomputed, chunk 0 reused
    assert not trap.exists()
    reference = extract_family(DATA / "divider.toml", n=8, seed=1, options=options())
    assert_same_family(family, reference)


def test_saved_models_load_with_weights_only(tmp_path: Path) -> None:
    """A model's state_dict (a circuit activation's chip included) loads with
    ``torch.load(weights_only=True)``, which refuses a pickled object."""
    torch = pytest.importorskip("torch")
    from circuitnn.nn import CircuitActivation

    family = extract_family(DATA / "diode_r.toml", n=6, seed=0, options=options())
    layer = CircuitActivation(family, 4, generator=0)
    torch.save(layer.state_dict(), tmp_path / "layer.pt")
    other = CircuitActivation(family, 4, generator=1)
    other.load_state_dict(torch.load(tmp_path / "layer.pt", weights_only=True))
    assert torch.equal(other.chip, layer.chip)

    trap = tmp_path / "UNPICKLED"
    torch.save({"chip": layer.chip, "extra": _Trap(trap)}, tmp_path / "evil.pt")
    with pytest.raises(pickle.UnpicklingError):
        torch.load(tmp_path / "evil.pt", weights_only=True)
    assert not trap.exists()


def test_library_code_never_unpickles() -> None:
    """Every load in circuitnn refuses pickles: np.load with allow_pickle=False, torch.load with
    weights_only=True, no pickle/joblib/dill loads (HDF5 holds plain arrays and text)."""
    root = Path(circuitnn.__file__).parent
    for path in sorted(root.rglob("*.py")):
        text = path.read_text()
        where = path.relative_to(root.parent)
        assert not re.search(r"\b(pickle|dill|cloudpickle)\.loads?\(", text), where
        assert not re.search(r"\bjoblib\.load\(", text), where
        assert "allow_pickle=True" not in text, where
        for call in re.finditer(r"\b(np|numpy)\.load\(([^()]|\([^()]*\))*\)", text):
            assert "allow_pickle=False" in call.group(0), (where, call.group(0))
        for call in re.finditer(r"\btorch\.load\(([^()]|\([^()]*\))*\)", text):
            assert "weights_only=True" in call.group(0), (where, call.group(0))
