"""Simulator settings: tolerances bound how far a batched instance may be from its isolated run,
and nothing outside the family's key (a user's ``.spiceinit``) changes a result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import DATA, data_spec, isolated_run, options

from circuitnn import extract_family
from circuitnn.cli import main
from circuitnn.extract.independence import BATCHED
from circuitnn.neuron.variation import MonteCarlo, sample_parameters
from circuitnn.spice.benches import render_dc_bench
from circuitnn.spice.ngspice_process import ngspice_executable
from circuitnn.store import Store

TIGHT = {"reltol": 1e-9, "vntol": 1e-12, "abstol": 1e-18}


def _largest_relative_gap(simulator: dict | None) -> float:
    """The largest |batched − isolated| / swing over a batched family of 12 inverters (those
    instances the family kept from its batch)."""
    spec = data_spec("inv_l1")
    if simulator:
        spec = spec.with_simulator(**simulator)
    family = extract_family(spec, n=12, seed=2, options=options(chunk_size=12))
    table = sample_parameters(spec, MonteCarlo(n=12, seed=2))
    batched = np.flatnonzero(family.run_alone == BATCHED)
    assert len(batched) >= 10
    gaps = [
        np.max(np.abs(family.curves[row] - isolated_run(spec, table, row))) / 1.8 for row in batched
    ]
    return max(gaps)


def test_tight_tolerances_bring_the_batch_to_its_isolated_runs() -> None:
    """At ngspice's default reltol (1e-3) a batched inverter is off its isolated run by ~1e-3
    of the swing (the shared Newton iterations stop elsewhere); at reltol 1e-9 within 1e-6."""
    assert _largest_relative_gap(None) > 1e-5
    assert _largest_relative_gap(TIGHT) <= 1e-6


def test_tolerances_from_the_command_line_make_another_family(tmp_path: Path, capsys) -> None:
    store = tmp_path / "f.h5"
    spec = str(DATA / "inv_l1.toml")
    base = ["extract", spec, "--n", "3", "--store", str(store), "--quiet", "--chunk-size", "3"]
    assert main(base) == 0
    assert main([*base, "--reltol", "1e-6", "--spice-option", "itl2=200"]) == 0
    keys = Store(store).keys()
    assert len(keys) == 2
    settings = [json.loads(Store(store).load(key).attrs["simulator"]) for key in keys]
    tight = next(setting for setting in settings if setting["reltol"] == 1e-6)
    assert tight == {
        "reltol": 1e-6,
        "abstol": 1e-12,
        "vntol": 1e-6,
        "options": [["itl2", 200.0]],
    }
    assert main([*base, "--spice-option", "lamda=3"]) == 2
    assert "unknown option 'lamda'" in capsys.readouterr().err


INIT = "option gmin=1e-2\n"  # a conductance of 10 mS across every junction: a visible change

EXTRACT = """
import json, sys
import numpy as np
from circuitnn import extract_family
from circuitnn.extract.options import RunOptions
family = extract_family(sys.argv[1], n=3, seed=0,
                        options=RunOptions(engine=sys.argv[2], progress=False, chunk_size=3))
print(json.dumps(family.curves.tolist()))
"""


def _extract_in(folder: Path, home: Path, engine: str) -> np.ndarray:
    env = {**os.environ, "HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-c", EXTRACT, str(DATA / "diode_r.toml"), engine],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return np.array(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize("engine", ["subprocess", "shared"])
def test_user_init_files_change_nothing(tmp_path: Path, engine: str) -> None:
    """A ~/.spiceinit and a .spiceinit in the working folder (ngspice reads the one, libngspice
    the other) setting gmin = 10 mS: the family is the same as without them."""
    clean_home, home, work = tmp_path / "clean", tmp_path / "home", tmp_path / "work"
    for folder in (clean_home, home, work):
        folder.mkdir()
    (home / ".spiceinit").write_text(INIT)
    (work / ".spiceinit").write_text(INIT)
    reference = _extract_in(clean_home, clean_home, engine)
    np.testing.assert_array_equal(_extract_in(work, home, engine), reference)


def test_ngspice_without_its_no_init_flag_would_read_them(tmp_path: Path) -> None:
    """The check above can fail: the same bench run by a plain ``ngspice -b`` (no ``-n``)
    with that ~/.spiceinit gives another answer."""
    spec = data_spec("diode_r")
    bench = render_dc_bench(spec, sample_parameters(spec, MonteCarlo(n=1)))
    (tmp_path / "bench.cir").write_text(bench.text)
    (tmp_path / ".spiceinit").write_text(INIT)
    results = []
    for flags in ([], ["-n"]):
        subprocess.run(
            [ngspice_executable(), *flags, "-b", "-r", "out.raw", "bench.cir"],
            cwd=tmp_path,
            env={**os.environ, "HOME": str(tmp_path)},
            capture_output=True,
            check=True,
            timeout=60,
        )
        from circuitnn.spice.rawfile import read_raw

        results.append(read_raw((tmp_path / "out.raw").read_bytes())[-1].vectors["v(o0_0)"])
    assert np.max(np.abs(results[0] - results[1])) > 1e-3
