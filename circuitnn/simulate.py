"""Simulate one chunk of Monte Carlo instances in one ngspice run, isolating failures.

A chunk that does not converge (or crashes ngspice) is split in halves and each half re-run, down
to single instances, so one bad instance is recorded as failed with its reason while every other
instance of the chunk is kept. A netlist error stops everything: it would fail for every instance.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from circuitnn.errors import NetlistError, SimulationError, SimulationTimeout
from circuitnn.family import FAILED, OK
from circuitnn.spec import NeuronSpec
from circuitnn.spice import get_engine
from circuitnn.testbench import assemble, render_dc_bench
from circuitnn.variation import ParameterTable


@dataclass
class ChunkResult:
    """Curves (N×K, output unit), supply and input currents (N×S×K, N×I×K, A), status, reasons.

    Status is 1 (ok) or 2 (failed, with the reason in ``reasons``).
    """

    start: int
    curves: np.ndarray
    supply_current: np.ndarray
    input_current: np.ndarray
    status: np.ndarray
    reasons: list[str]
    runs: int = 0
    seconds: float = 0.0
    log: list[str] = field(default_factory=list)

    @property
    def stop(self) -> int:
        """One past the last instance index."""
        return self.start + len(self.status)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays (for the journal and for crossing process boundaries)."""
        return {
            "start": np.int64(self.start),
            "curves": self.curves,
            "supply_current": self.supply_current,
            "input_current": self.input_current,
            "status": self.status,
            "reasons": np.array(self.reasons, dtype=np.str_),
            "runs": np.int64(self.runs),
            "seconds": np.float64(self.seconds),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> ChunkResult:
        """The inverse of :meth:`to_arrays`."""
        return cls(
            start=int(arrays["start"]),
            curves=arrays["curves"],
            supply_current=arrays["supply_current"],
            input_current=arrays["input_current"],
            status=arrays["status"],
            reasons=[str(reason) for reason in arrays["reasons"]],
            runs=int(arrays.get("runs", 0)),
            seconds=float(arrays.get("seconds", 0.0)),
        )


def simulate_chunk(
    spec: NeuronSpec,
    table: ParameterTable,
    engine: str = "subprocess",
    timeout: float = 120.0,
    retries: int = 1,
) -> ChunkResult:
    """Run the DC bench for every row of ``table`` (instances ``table.index``).

    ``timeout`` (s) bounds one ngspice run; a timed-out run is retried ``retries`` times, then its
    instances are marked failed. Raises :class:`NetlistError` if ngspice rejects the netlist.
    """
    count, points = len(table), spec.sweep.points
    solver = get_engine(engine)

    def run(rows: np.ndarray, what: str) -> dict[str, np.ndarray]:
        bench = render_dc_bench(spec, table.rows(rows))
        vectors = solver.run(bench.text, bench.vectors, points, timeout, what)
        curves, supplies, inputs = assemble(spec, bench, vectors)
        return {"curves": curves, "supply_current": supplies, "input_current": inputs}

    shapes = {
        "curves": (points,),
        "supply_current": (len(spec.ports.supplies), points),
        "input_current": (len(spec.ports.input) if spec.ports.input_measured else 0, points),
    }
    isolated = run_isolated(spec.name, table.index, shapes, run, retries)
    return ChunkResult(
        start=int(table.index[0]) if count else 0,
        status=isolated.status,
        reasons=isolated.reasons,
        runs=isolated.runs,
        seconds=isolated.seconds,
        **isolated.arrays,
    )


@dataclass
class Isolated:
    """Arrays (instance-major, NaN where failed), status, reasons and cost of an isolated run."""

    arrays: dict[str, np.ndarray]
    status: np.ndarray
    reasons: list[str]
    runs: int
    seconds: float


def run_isolated(
    name: str,
    index: np.ndarray,
    shapes: dict[str, tuple[int, ...]],
    run: Callable[[np.ndarray, str], dict[str, np.ndarray]],
    retries: int = 1,
    dtype: type = np.float64,
) -> Isolated:
    """Call ``run(rows, what)`` on all rows, bisecting failures down to single instances.

    ``run`` returns arrays whose first axis follows ``rows``; ``shapes`` gives each array's
    per-instance shape (used where every instance failed). A run that does not converge or crashes
    ngspice is split in halves; a timed-out run is retried ``retries`` times and then its rows are
    marked failed; :class:`NetlistError` propagates. Rows with non-finite values are failed too.
    """
    count = len(index)
    arrays = {key: np.full((count, *shape), np.nan, dtype=dtype) for key, shape in shapes.items()}
    status = np.zeros(count, dtype=np.int8)
    reasons = [""] * count
    runs = 0
    began = time.perf_counter()

    def fail(rows: np.ndarray, reason: str) -> None:
        status[rows] = FAILED
        for values in arrays.values():
            values[rows] = np.nan
        for row in rows:
            reasons[row] = reason

    pending = [np.arange(count)]
    while pending:
        rows = pending.pop()
        what = f"{name} instances {_describe(index[rows])}"
        for attempt in range(retries + 1):
            try:
                runs += 1
                produced = run(rows, what)
            except NetlistError:
                raise
            except SimulationTimeout as error:
                if attempt < retries:
                    continue
                fail(rows, _first_line(error))
            except SimulationError as error:
                if len(rows) == 1:
                    fail(rows, _first_line(error))
                else:
                    half = len(rows) // 2
                    pending += [rows[half:], rows[:half]]
            else:
                finite = np.ones(len(rows), dtype=bool)
                for key, values in produced.items():
                    if values.shape[1:] != arrays[key].shape[1:]:
                        arrays[key] = _resized(arrays[key], values.shape[1:])
                    arrays[key][rows] = values
                    finite &= np.isfinite(values.reshape(len(rows), -1)).all(axis=1)
                status[rows] = np.where(finite, OK, FAILED)
                for row in rows[~finite]:
                    reasons[row] = "non-finite output"
            break
    return Isolated(arrays, status, reasons, runs, time.perf_counter() - began)


def _resized(values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return np.full((len(values), *shape), np.nan, dtype=values.dtype)


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _describe(index: np.ndarray) -> str:
    if len(index) == 1:
        return str(int(index[0]))
    return f"{int(index[0])}-{int(index[-1])}"
