"""Failure paths outside the reliability matrix: ngspice missing or writing garbage, and the
parallel runner's bookkeeping. Every fault of the matrix (non-converging instances, rejected
netlists, hung or crashing ngspice, dying workers, killed runs, concurrent writers, damaged
stores, a full disk) is injected in tests/test_faults.py."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import data_spec

from circuitnn.errors import SimulationError
from circuitnn.extract.parallel import run_tasks
from circuitnn.neuron.variation import nominal_table
from circuitnn.spice import get_engine
from circuitnn.spice.benches import render_dc_bench


def test_missing_ngspice_is_a_simulation_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    spec = data_spec("divider")
    bench = render_dc_bench(spec, nominal_table(spec))
    with pytest.raises(SimulationError, match="ngspice was not found"):
        get_engine("subprocess").run(bench.text, bench.vectors, spec.sweep.points, 10, "job")


def test_ngspice_with_garbage_output_is_a_simulation_error(
    fake_ngspice: Callable[[str], Path],
) -> None:
    # a "successful" run that writes a truncated raw file: incomplete results, not zeros
    fake_ngspice('printf "Title: x\\nNo. Variables: 2\\nNo. Points: 41\\nBinary:\\nxx" > "$3"')
    spec = data_spec("divider")
    bench = render_dc_bench(spec, nominal_table(spec))
    with pytest.raises(SimulationError, match="incomplete results"):
        get_engine("subprocess").run(bench.text, bench.vectors, spec.sweep.points, 10, "job")


# --- the parallel runner -------------------------------------------------------------------


def _square_or_die(number: int) -> int:
    if number == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.05)
    return number * number


def _raise_value_error(number: int) -> int:
    raise ValueError(f"bad task {number}")


def test_run_tasks_returns_every_result_once() -> None:
    tasks = [(number,) for number in range(7) if number != 2]
    for jobs in (1, 2):
        results = dict(run_tasks(_square_or_die, tasks, jobs=jobs))
        assert results == {k: tasks[k][0] ** 2 for k in range(len(tasks))}
    with pytest.raises(SimulationError, match="ValueError: bad task"):
        list(run_tasks(_raise_value_error, [(1,), (2,)], jobs=2))
    with pytest.raises(ValueError, match="jobs"):
        list(run_tasks(_square_or_die, tasks, jobs=0))
