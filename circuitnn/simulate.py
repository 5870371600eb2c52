"""Simulate one chunk of Monte Carlo instances in one ngspice run, isolating failures.

A chunk that does not converge (or crashes ngspice) is split in halves and each half re-run, down
to single instances, so one bad instance is recorded as failed with its reason while every other
instance of the chunk is kept. A netlist error stops everything: it would fail for every instance.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from circuitnn.errors import NetlistError, SimulationError, SimulationTimeout
from circuitnn.spec import NeuronSpec
from circuitnn.spice import get_engine
from circuitnn.testbench import assemble, render_dc_bench
from circuitnn.variation import ParameterTable

OK, FAILED = 1, 2


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
    result = ChunkResult(
        start=int(table.index[0]) if count else 0,
        curves=np.full((count, points), np.nan),
        supply_current=np.full((count, len(spec.ports.supplies), points), np.nan),
        input_current=np.full((count, len(spec.ports.input), points), np.nan),
        status=np.zeros(count, dtype=np.int8),
        reasons=[""] * count,
    )
    began = time.perf_counter()
    solver = get_engine(engine)
    pending = [np.arange(count)]
    while pending:
        rows = pending.pop()
        sub = table.rows(rows)
        what = f"{spec.name} instances {_describe(sub.index)}"
        bench = render_dc_bench(spec, sub)
        for attempt in range(retries + 1):
            try:
                result.runs += 1
                vectors = solver.run(bench.text, bench.vectors, points, timeout, what)
                curves, supplies, inputs = assemble(spec, bench, vectors)
                result.curves[rows] = curves
                result.supply_current[rows] = supplies
                result.input_current[rows] = inputs
                finite = np.isfinite(curves).all(axis=1) & np.isfinite(supplies).all(axis=(1, 2))
                finite &= np.isfinite(inputs).all(axis=(1, 2))
                result.status[rows] = np.where(finite, OK, FAILED)
                for row in rows[~finite]:
                    result.reasons[row] = "non-finite output"
                break
            except NetlistError:
                raise
            except SimulationTimeout as error:
                if attempt < retries:
                    continue
                _fail(result, rows, _first_line(error))
            except SimulationError as error:
                if len(rows) == 1:
                    _fail(result, rows, _first_line(error))
                else:
                    half = len(rows) // 2
                    pending += [rows[half:], rows[:half]]
                break
    result.seconds = time.perf_counter() - began
    return result


def _fail(result: ChunkResult, rows: np.ndarray, reason: str) -> None:
    result.status[rows] = FAILED
    result.curves[rows] = np.nan
    result.supply_current[rows] = np.nan
    result.input_current[rows] = np.nan
    for row in rows:
        result.reasons[row] = reason


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _describe(index: np.ndarray) -> str:
    if len(index) == 1:
        return str(int(index[0]))
    return f"{int(index[0])}-{int(index[-1])}"
