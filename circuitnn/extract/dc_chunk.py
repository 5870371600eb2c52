"""Simulate one chunk of Monte Carlo instances in one ngspice run, isolating failures.

A chunk that does not converge (or crashes ngspice) is split in halves and each half re-run, down
to single instances, so one bad instance is recorded as failed with its reason while every other
instance of the chunk is kept. A netlist error stops everything: it would fail for every instance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from circuitnn.extract.isolation import run_isolated
from circuitnn.neuron.spec import NeuronSpec
from circuitnn.neuron.variation import ParameterTable
from circuitnn.spice import get_engine
from circuitnn.spice.benches import assemble, render_dc_bench


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
        vectors = solver.run(bench.text, bench.vectors, points, timeout, what, bench.includes)
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
