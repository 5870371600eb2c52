"""Helpers shared by the tests (plain functions; the fixtures live in conftest.py)."""

from __future__ import annotations

import operator
import re
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from circuitnn.extract.options import RunOptions
from circuitnn.family import Family
from circuitnn.neuron.builtin import builtin_folder
from circuitnn.neuron.spec import NeuronSpec
from circuitnn.neuron.spec_file import load_spec, spec_from_dict

DATA = Path(__file__).parent / "data"
NETLISTS = builtin_folder()

# Physical constants compiled into ngspice 39 (CONSTboltz and CHARGE, CODATA 2014 values;
# older ngspice releases had 1.3806226e-23 and 1.6021918e-19). The simulator's thermal voltage
# uses them, so a check at the 1e-9 level must too: with scipy.constants (CODATA 2018) the
# diode test's curves differ by 3e-7 V, with these by 3e-11 V.
NGSPICE_BOLTZMANN = 1.38064852e-23  # J/K
NGSPICE_CHARGE = 1.6021766208e-19  # C
NGSPICE_GMIN = 1e-12  # S: ngspice's default GMIN, placed across every pn junction


def options(**overrides: Any) -> RunOptions:
    """RunOptions without a progress bar and with small chunks (unless overridden)."""
    settings: dict[str, Any] = {"progress": False, "chunk_size": 4}
    settings.update(overrides)
    return RunOptions(**settings)


def data_spec(name: str) -> NeuronSpec:
    """The spec of a test circuit in tests/data."""
    return load_spec(DATA / f"{name}.toml")


def spec_data(name: str, folder: Path = DATA) -> dict[str, Any]:
    """The TOML table of a spec (a fresh copy, free to modify)."""
    return tomllib.loads((folder / f"{name}.toml").read_text())


def build_spec(data: dict[str, Any], folder: Path = DATA, **kwargs: Any) -> NeuronSpec:
    """A spec from TOML-shaped data whose netlist path is relative to ``folder``."""
    return spec_from_dict(data, folder, source="<test spec>", **kwargs)


def assert_same_family(a: Family, b: Family) -> None:
    """Two families hold bit-identical results (provenance such as creation time may differ)."""
    assert a.key == b.key
    assert a.neuron == b.neuron
    for name in (
        "grid",
        "curves",
        "nominal_curve",
        "supply_current",
        "input_current",
        "power",
        "parameters",
        "chip",
        "status",
    ):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.parameter_names == b.parameter_names
    assert a.reasons == b.reasons
    assert sorted(a.descriptors) == sorted(b.descriptors)
    for name in a.descriptors:
        np.testing.assert_array_equal(a.descriptors[name], b.descriptors[name], err_msg=name)


def isolated_run(spec: NeuronSpec, table: Any, row: int, direction: str = "up") -> np.ndarray:
    """The oracle: instance ``row`` of ``table`` alone in a plain ``ngspice -n -b -r`` process
    (not through circuitnn's engines); its output curve in increasing input order."""
    from circuitnn.spice.benches import render_dc_bench

    bench = render_dc_bench(spec, table.rows(np.array([row])), direction)
    curves = plain_run_curves(spec, bench)
    return curves[0][::-1] if direction == "down" else curves[0]


def plain_run_curves(spec: NeuronSpec, bench: Any, timeout: float = 120) -> np.ndarray:
    """The output curves of a rendered DC ``bench`` run as it is by a plain ``ngspice -n -b -r``
    process (not through circuitnn's engines), one row per instance."""
    import subprocess
    import tempfile

    from circuitnn.spice.bench_results import assemble
    from circuitnn.spice.ngspice_process import ngspice_executable
    from circuitnn.spice.rawfile import read_raw

    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "plain.cir").write_text(bench.text)
        subprocess.run(
            [ngspice_executable(), "-n", "-b", "-r", "plain.raw", "plain.cir"],
            cwd=folder,
            capture_output=True,
            check=True,
            timeout=timeout,
        )
        vectors = read_raw((Path(folder) / "plain.raw").read_bytes())[-1].vectors
    return assemble(spec, bench, vectors)[0]


# a benchmark row ending in a target and a verdict: "... 1.43x time   <=1.25x  FAIL"
_VERDICT = re.compile(
    r"(?P<before>.*?)(?P<op>>=|<=|≥|≤)\s*(?P<target>[\d.]+)(?P<unit>x|×|%)\s+(?P<verdict>PASS|FAIL)\s*$"
)
_VALUE = re.compile(r"([+-]?\d+(?:\.\d+)?)(x|×|%)")
COMPARE = {">=": operator.ge, "<=": operator.le, "≥": operator.ge, "≤": operator.le}


def verdict_rows(output: str) -> list[tuple[str, float, str, float, bool]]:
    """Every row of a benchmark's output that ends in a target and a verdict:
    (row, the last ratio printed before the target, comparison, target, passed)."""
    rows = []
    for line in output.splitlines():
        match = _VERDICT.match(line)
        if match is None:
            continue
        values = _VALUE.findall(match["before"])
        assert values, f"no ratio before the target in {line!r}"
        value, unit = values[-1]
        assert (unit == "%") == (match["unit"] == "%"), f"ratio and target differ: {line!r}"
        rows.append(
            (line, float(value), match["op"], float(match["target"]), match["verdict"] == "PASS")
        )
    return rows


def assert_verdicts_follow(output: str, count: int) -> list[tuple[str, float, str, float, bool]]:
    """``output`` has ``count`` verdict rows, each PASS exactly when its ratio meets its target
    (a ratio printed equal to its target may have been rounded from either side)."""
    rows = verdict_rows(output)
    assert len(rows) == count, "\n".join(row[0] for row in rows) or output[-2000:]
    for line, value, op, target, passed in rows:
        if value != target:
            assert COMPARE[op](value, target) == passed, f"verdict contradicts its numbers: {line}"
    return rows


BLOSC, LZ4 = 32001, 1  # HDF5's registered Blosc filter; Blosc's code of its LZ4 compressor


def blosc_settings(dataset: Any) -> tuple[int, int, int] | None:
    """(level, shuffle, compressor) of an h5py dataset's Blosc filter, None without one."""
    plist = dataset.id.get_create_plist()
    for number in range(plist.get_nfilters()):
        code, _, values, _ = plist.get_filter(number)
        if code == BLOSC:
            return tuple(values[4:7])
    return None
