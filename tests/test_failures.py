"""Every failure path: rejected netlists, non-converging instances, hung and crashing ngspice,
dying workers. Nothing is silently dropped and nothing half-done reaches the store."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import DATA, data_spec, options
from scipy.optimize import brentq

import circuitnn.pipeline
from circuitnn import extract_family
from circuitnn.errors import NetlistError, SimulationError, SimulationTimeout
from circuitnn.parallel import run_tasks
from circuitnn.simulate import FAILED, OK, simulate_chunk
from circuitnn.spice import get_engine
from circuitnn.store import Store
from circuitnn.testbench import render_dc_bench
from circuitnn.variation import MonteCarlo, ParameterTable, nominal_table, sample_parameters

# --- ngspice rejects the netlist -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("bad_model", ["nosuchdiodemodel"]),
        ("bad_syntax", ["too few nodes", "r2 out"]),
    ],
)
def test_rejected_netlist_raises_netlist_error_and_writes_nothing(
    tmp_path: Path, name: str, quoted: list[str]
) -> None:
    store = tmp_path / "families.h5"
    with pytest.raises(NetlistError) as caught:
        extract_family(DATA / f"{name}.toml", n=6, seed=0, store=store, options=options())
    message = str(caught.value).lower()
    assert "rejected the netlist" in message
    for text in quoted:  # ngspice's own message and the offending line
        assert text in message
    assert not store.exists()
    assert not any(tmp_path.rglob("*.npz"))
    # simulate_chunk does not turn it into failed instances either: it would fail them all
    spec = data_spec(name)
    with pytest.raises(NetlistError):
        simulate_chunk(spec, sample_parameters(spec, MonteCarlo(n=3)))


# --- an instance that does not converge ------------------------------------------------------


def _singular_table(g_values: list[float]) -> ParameterTable:
    spec = data_spec("singular")
    values = np.array([[g, 0.5] for g in g_values])  # columns g, u (u = 0.5: geff = g)
    assert spec.parameter_names == ("g", "u")
    index = np.arange(100, 100 + len(g_values))
    return ParameterTable(spec.parameter_names, values, index, index)


def _singular_solution(x: float, g: float) -> float:
    """(1 - g)·v = 1m·tanh(x) + 1u·|v|³, the root near 1m·tanh(x)/(1 - g)."""
    scale = 2e-3 * abs(np.tanh(x)) / (1 - g) + 1e-12
    return brentq(
        lambda v: (1 - g) * v - 1e-3 * np.tanh(x) - 1e-6 * abs(v) ** 3,
        -2 * scale,
        2 * scale,
        xtol=1e-18,
    )


def test_non_converging_instance_fails_alone_with_its_reason() -> None:
    spec = data_spec("singular")
    g_values = [0.5, 0.25, 1.0, 0.75, 0.4, 0.6]
    bad = 2
    result = simulate_chunk(spec, _singular_table(g_values))
    assert result.start == 100
    assert result.status[bad] == FAILED
    assert np.isnan(result.curves[bad]).all()
    reason = result.reasons[bad]
    assert reason.startswith("singular instances 102: ")  # names the instance by its index
    cause = reason.removeprefix("singular instances 102: ").lower()
    assert "timestep too small" in cause or "trouble with node" in cause
    good = [k for k in range(len(g_values)) if k != bad]
    assert np.all(result.status[good] == OK)
    assert all(result.reasons[k] == "" for k in good)
    assert result.runs > 1  # the chunk was split to isolate the bad instance

    # the good instances are what they are when simulated in a chunk of their own
    clean = simulate_chunk(spec, _singular_table([g_values[k] for k in good]))
    assert np.all(clean.status == OK) and clean.runs == 1
    # (within ngspice's convergence tolerance: reltol = 1e-3, vntol = 1 µV; a sub-batch may stop
    # its Newton iteration at -0.9 µV where the exact answer is 0)
    np.testing.assert_allclose(result.curves[good], clean.curves, rtol=1e-3, atol=1e-6)
    # ... and what the circuit equation says (to the same tolerance: ngspice accepts its
    # extrapolated first guess when the Newton update is below vntol)
    for row, k in enumerate(good):
        expected = [_singular_solution(x, g_values[k]) for x in spec.sweep.grid()]
        np.testing.assert_allclose(clean.curves[row], expected, rtol=1e-3, atol=1e-6)


def test_failed_instances_are_kept_in_the_family_and_the_store(tmp_path: Path) -> None:
    """u > 0.75 makes an instance's matrix singular: those, and only those, fail."""
    store = tmp_path / "families.h5"
    family = extract_family(
        DATA / "singular.toml", n=16, seed=3, store=store, options=options(chunk_size=5)
    )
    expected_failed = np.flatnonzero(family.parameter("u") > 0.75)
    assert len(expected_failed) >= 2
    assert family.n == 16
    np.testing.assert_array_equal(family.failed, expected_failed)
    assert np.all(np.isnan(family.curves[expected_failed]))
    assert np.all(np.isfinite(family.curves[family.ok]))
    for k in range(16):
        assert (family.reasons[k] != "") == (k in expected_failed)
    assert np.all(np.isnan(family.descriptors["midpoint"][expected_failed]))
    loaded = Store(store).load()
    np.testing.assert_array_equal(loaded.status, family.status)
    assert loaded.reasons == family.reasons
    assert Store(store).describe()[0]["failed"] == len(expected_failed)


# --- ngspice hangs -----------------------------------------------------------------------


def _divider_chunk() -> tuple[Any, ParameterTable]:
    spec = data_spec("divider")
    return spec, sample_parameters(spec, MonteCarlo(n=3, seed=0))


def test_hung_ngspice_is_stopped_by_the_timeout(fake_ngspice: Callable[[str], Path]) -> None:
    fake_ngspice("exec sleep 60")
    spec, table = _divider_chunk()
    bench = render_dc_bench(spec, table)
    began = time.monotonic()
    with pytest.raises(SimulationTimeout, match=r"did not finish within 0\.5 s"):
        get_engine("subprocess").run(bench.text, bench.vectors, spec.sweep.points, 0.5, "job")
    assert time.monotonic() - began < 5

    began = time.monotonic()
    result = simulate_chunk(spec, table, timeout=0.5, retries=1)
    elapsed = time.monotonic() - began
    assert result.runs == 2  # the first try and one retry, then it gives up
    assert 1.0 <= elapsed < 8
    assert np.all(result.status == FAILED)
    assert np.isnan(result.curves).all()
    assert all("did not finish within 0.5 s" in reason for reason in result.reasons)


# --- ngspice crashes ---------------------------------------------------------------------


def test_crashing_ngspice_marks_instances_failed(fake_ngspice: Callable[[str], Path]) -> None:
    fake_ngspice("kill -SEGV $$")
    spec, table = _divider_chunk()
    bench = render_dc_bench(spec, table)
    with pytest.raises(SimulationError, match="crashed"):
        get_engine("subprocess").run(bench.text, bench.vectors, spec.sweep.points, 10, "job")
    result = simulate_chunk(spec, table)
    assert np.all(result.status == FAILED)
    assert all("crashed (signal 11)" in reason for reason in result.reasons)
    assert all(f"instances {k}" in result.reasons[k] for k in range(3))


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


# --- a worker process dies ---------------------------------------------------------------


def _square_or_die(number: int) -> int:
    if number == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.05)
    return number * number


def _raise_value_error(number: int) -> int:
    raise ValueError(f"bad task {number}")


def test_dying_worker_is_a_simulation_error_naming_the_task() -> None:
    tasks = [(number,) for number in range(4)]
    with pytest.raises(SimulationError, match=r"worker process died.*task-2"):
        list(run_tasks(_square_or_die, tasks, jobs=2, label=lambda task: f"task-{task[0]}"))


def test_run_tasks_returns_every_result_once() -> None:
    tasks = [(number,) for number in range(7) if number != 2]
    for jobs in (1, 2):
        results = dict(run_tasks(_square_or_die, tasks, jobs=jobs))
        assert results == {k: tasks[k][0] ** 2 for k in range(len(tasks))}
    with pytest.raises(SimulationError, match="ValueError: bad task"):
        list(run_tasks(_raise_value_error, [(1,), (2,)], jobs=2))
    with pytest.raises(ValueError, match="jobs"):
        list(run_tasks(_square_or_die, tasks, jobs=0))


def _simulate_or_die(spec: Any, table: Any, *args: Any, **kwargs: Any) -> Any:
    """simulate_chunk, except that the worker given instances 4… is killed."""
    if int(table.index[0]) == 4:
        os.kill(os.getpid(), signal.SIGKILL)
    return simulate_chunk(spec, table, *args, **kwargs)


def test_dying_worker_during_extraction_names_the_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(circuitnn.pipeline, "simulate_chunk", _simulate_or_die)
    store = tmp_path / "families.h5"
    with pytest.raises(SimulationError, match=r"worker process died.*divider chunk 4-7"):
        extract_family(DATA / "divider.toml", n=12, seed=0, store=store, options=options(jobs=2))
    assert not store.exists()  # nothing half-done was committed
