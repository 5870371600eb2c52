"""Simulate one chunk of Monte Carlo instances in one ngspice run, each as it would be alone.

The chunk runs batched, with a self-check: a few of its instances simulated alone in the same
ngspice process. Instances whose batched curve jumps, and every instance of a chunk whose
self-check deviates, are simulated again alone (:mod:`circuitnn.extract.independence`). A batch
that does not converge (or crashes ngspice) is split in halves and re-run, down to single
instances, so one bad instance is recorded as failed with its reason while every other instance
of the chunk is kept; so is an instance whose parameters ngspice refuses (a fatal error, or a
warning the nominal circuit does not get). A netlist error stops everything: it would fail for
every instance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from circuitnn.errors import SimulationError, SimulationTimeout, SimulatorCrash
from circuitnn.extract.devices import realized_devices
from circuitnn.extract.independence import (
    ALONE,
    BATCHED,
    CHUNK_DEVIATED,
    DISCONTINUOUS,
    SELF_CHECK,
    check_positions,
    deviation_ratio,
    discontinuous,
)
from circuitnn.extract.isolation import run_isolated
from circuitnn.family import FAILED, OK, RETRY
from circuitnn.neuron.devices import records_devices
from circuitnn.neuron.spec import NeuronSpec
from circuitnn.neuron.variation import ParameterTable
from circuitnn.spice import get_engine
from circuitnn.spice.bench_results import assemble
from circuitnn.spice.benches import Bench, render_dc_bench
from circuitnn.spice.devices import device_prelude, prelude_parameters
from circuitnn.spice.engines import Engine
from circuitnn.spice.messages import (
    convergence_aids,
    instance_positions,
    normalized_warning,
    warnings_in,
)
from circuitnn.spice.session import Job, Outcome

DEFAULT_CHECKS = 1  # instances of each chunk simulated alone as its self-check


@dataclass
class ChunkResult:
    """Curves (N×K, output unit), supply and input currents (N×S×K, N×I×K, A), status, reasons.

    Status is 1 (ok), 2 (failed, with the reason in ``reasons``) or 3 (ngspice timed out or
    crashed: retried on the next run). ``alone`` (N,) says whether and why each instance was
    simulated alone (:data:`~circuitnn.extract.independence.RUN_ALONE`); ``curves_down`` (N×K)
    the down branch of a ``direction = "both"`` sweep (else None). The self-check: ``checks``
    instances compared, ``check_deviation`` the largest difference (output unit),
    ``check_ratio`` its ratio to the tolerance, ``deviated`` 1 if the chunk failed it. ``aids``:
    ngspice's fallbacks (source stepping, gmin stepping having failed) in the batched runs;
    ``warnings``: ngspice's warnings (instance numbers taken out).
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
    alone: np.ndarray | None = None
    curves_down: np.ndarray | None = None
    devices: dict[str, np.ndarray] = field(default_factory=dict)
    checks: int = 0
    check_deviation: float = 0.0
    check_ratio: float = 0.0
    deviated: int = 0
    aids: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def stop(self) -> int:
        """One past the last instance index."""
        return self.start + len(self.status)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays (for the journal and for crossing process boundaries)."""
        arrays = {
            "start": np.int64(self.start),
            "curves": self.curves,
            "supply_current": self.supply_current,
            "input_current": self.input_current,
            "status": self.status,
            "reasons": np.array(self.reasons, dtype=np.str_),
            "runs": np.int64(self.runs),
            "seconds": np.float64(self.seconds),
            "alone": self.alone if self.alone is not None else np.zeros(len(self.status), np.int8),
            "checks": np.int64(self.checks),
            "check_deviation": np.float64(self.check_deviation),
            "check_ratio": np.float64(self.check_ratio),
            "deviated": np.int64(self.deviated),
            "aids": np.int64(self.aids),
            "warnings": np.array(self.warnings, dtype=np.str_),
        }
        if self.curves_down is not None:
            arrays["curves_down"] = self.curves_down
        arrays.update({f"device:{name}": values for name, values in self.devices.items()})
        return arrays

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
            alone=arrays.get("alone"),
            curves_down=arrays.get("curves_down"),
            checks=int(arrays.get("checks", 0)),
            check_deviation=float(arrays.get("check_deviation", 0.0)),
            check_ratio=float(arrays.get("check_ratio", 0.0)),
            deviated=int(arrays.get("deviated", 0)),
            aids=int(arrays.get("aids", 0)),
            warnings=[str(text) for text in arrays.get("warnings", [])],
            devices={
                name[len("device:") :]: values
                for name, values in arrays.items()
                if name.startswith("device:")
            },
        )


def simulate_chunk(
    spec: NeuronSpec,
    table: ParameterTable,
    engine: str = "subprocess",
    timeout: float = 120.0,
    retries: int = 1,
    checks: int = DEFAULT_CHECKS,
    known_warnings: tuple[str, ...] | None = None,
) -> ChunkResult:
    """Run the DC bench for every row of ``table`` (instances ``table.index``), every sweep
    direction of the spec, each instance's result equal to its run alone (to the spec's
    simulator tolerance).

    ``timeout`` (s) bounds one ngspice run; a timed-out run is retried ``retries`` times, then its
    instances are marked for retry (status 3). ``checks`` instances per chunk run alone as its
    self-check. ``known_warnings``: the nominal circuit's warnings (normalized); an instance
    that gets any other warning naming it fails with it (None: collect warnings, fail none).
    Raises :class:`NetlistError` if ngspice rejects the netlist.
    """
    solver = get_engine(engine)
    branches = [
        _Branch(
            spec, table, solver, timeout, retries, checks, known_warnings, direction, number == 0
        ).run()
        for number, direction in enumerate(spec.sweep.directions)
    ]
    main = branches[0]
    status, reasons = main.status.copy(), list(main.reasons)
    alone = main.alone.copy()
    for other in branches[1:]:
        for row in np.flatnonzero((other.status != OK) & (status == OK)):
            status[row], reasons[row] = other.status[row], other.reasons[row]
        alone = np.maximum(alone, other.alone)
    failed = status != OK
    if main.devices is not None and not failed.any():
        devices, notes = main.devices, []  # read in the batch's own ngspice run
    else:  # (the same .op, in a run of its own, of the instances that succeeded)
        devices, notes = realized_devices(spec, table, engine, timeout, ~failed)
    curves = main.arrays["curves"]
    curves[failed] = np.nan
    main.arrays["supply_current"][failed] = np.nan
    main.arrays["input_current"][failed] = np.nan
    down = None
    if len(branches) > 1:
        down = branches[1].arrays["curves"]
        down[failed] = np.nan
    return ChunkResult(
        start=int(table.index[0]) if len(table) else 0,
        curves=curves,
        supply_current=main.arrays["supply_current"],
        input_current=main.arrays["input_current"],
        status=status,
        reasons=reasons,
        runs=sum(branch.runs for branch in branches),
        seconds=sum(branch.seconds for branch in branches),
        alone=alone,
        curves_down=down,
        checks=sum(branch.checks for branch in branches),
        check_deviation=max(branch.check_deviation for branch in branches),
        check_ratio=max(branch.check_ratio for branch in branches),
        deviated=int(any(branch.deviated for branch in branches)),
        aids=sum(branch.aids for branch in branches),
        warnings=sorted({text for branch in branches for text in branch.warnings}),
        devices=devices,
        log=notes,
    )


class _Branch:
    """One sweep direction of one chunk: batched runs (bisected on failure), the self-check,
    and the instances re-run alone."""

    def __init__(
        self,
        spec: NeuronSpec,
        table: ParameterTable,
        solver: Engine,
        timeout: float,
        retries: int,
        checks: int,
        known_warnings: tuple[str, ...] | None,
        direction: str,
        devices: bool = False,
    ) -> None:
        self.spec, self.table, self.solver = spec, table, solver
        # the realized device parameters, read by the whole chunk's first run
        self.read_devices = devices and records_devices(spec)
        self.devices: dict[str, np.ndarray] | None = None
        self.timeout, self.retries, self.direction = timeout, retries, direction
        self.known = None if known_warnings is None else set(known_warnings)
        self.current = spec.output.quantity == "current"
        self.check_at = check_positions(table.index, checks)
        self.check_outcomes: dict[int, tuple[Bench, Outcome]] = {}
        self.warnings: set[str] = set()
        self.checks, self.check_deviation, self.check_ratio = 0, 0.0, 0.0
        self.deviated, self.aids, self.runs = 0, 0, 0
        self.seconds = 0.0

    def _job(self, rows: np.ndarray, what: str, devices: bool = False) -> tuple[Bench, Job]:
        bench = render_dc_bench(self.spec, self.table.rows(rows), self.direction)
        points = self.spec.sweep.points
        saved = tuple(bench.vectors)
        prelude = device_prelude(self.spec, len(rows), saved) if devices else ()
        return bench, Job(bench.text, saved, points, what, tuple(bench.includes), prelude)

    def _arrays(
        self, bench: Bench, outcome: Outcome, table_index: np.ndarray
    ) -> dict[str, np.ndarray]:
        """The vectors of ``outcome`` as instance arrays in increasing input order; instances
        (``table_index``: their family indices) named by a warning the nominal circuit does not
        get are marked to fail with it."""
        curves, supplies, inputs = assemble(self.spec, bench, outcome.result())
        if self.direction == "down":
            curves, supplies, inputs = curves[:, ::-1], supplies[..., ::-1], inputs[..., ::-1]
        failure = np.full(bench.instances, "", dtype=object)
        for text in warnings_in(outcome.log):
            plain = normalized_warning(text)
            self.warnings.add(plain)
            if self.known is None or plain in self.known:
                continue
            for position in instance_positions(text):
                if position < bench.instances:
                    index = int(table_index[position])
                    failure[position] = (
                        f"{self.spec.name} instances {index}: ngspice warned about this "
                        f"instance: {text}"
                    )
        return {
            "curves": np.ascontiguousarray(curves),
            "supply_current": np.ascontiguousarray(supplies),
            "input_current": np.ascontiguousarray(inputs),
            "failure": failure,
        }

    def _alone_what(self, position: int) -> str:
        """How errors name the instance at ``position`` run alone (as failure isolation does)."""
        return f"{self.spec.name} instances {int(self.table.index[position])}"

    def _batched(self, rows: np.ndarray, what: str) -> dict[str, np.ndarray]:
        whole = len(rows) == len(self.table)
        devices = self.read_devices and whole and self.devices is None
        bench, job = self._job(rows, what, devices)
        jobs = [job]
        singles: list[tuple[int, Bench]] = []
        if whole and not self.check_outcomes:
            # the self-check instances ride in the same ngspice process as the whole chunk
            for position in self.check_at:
                single, single_job = self._job(np.array([position]), self._alone_what(position))
                singles.append((int(position), single))
                jobs.append(single_job)
        outcomes = self.solver.run_many(jobs, self.timeout, what)
        if devices and outcomes[0].vectors is not None:
            self.devices = prelude_parameters(self.spec, len(rows), outcomes[0].vectors)
        for (position, single), outcome in zip(singles, outcomes[1:], strict=True):
            self.check_outcomes[position] = (single, outcome)
        self.aids += convergence_aids(outcomes[0].log)
        return self._arrays(bench, outcomes[0], self.table.index[rows])

    def run(self) -> _Branch:
        spec, table = self.spec, self.table
        points = spec.sweep.points
        shapes = {
            "curves": (points,),
            "supply_current": (len(spec.ports.supplies), points),
            "input_current": (len(spec.ports.input) if spec.ports.input_measured else 0, points),
        }
        isolated = run_isolated(
            spec.name, table.index, shapes, self._batched, self.retries, own=True
        )
        self.arrays, self.status, self.reasons = isolated.arrays, isolated.status, isolated.reasons
        self.runs, self.seconds = isolated.runs, isolated.seconds
        self.alone = np.where(isolated.alone, ALONE, BATCHED).astype(np.int8)
        self._self_check()
        batched = (self.alone == BATCHED) & (self.status == OK)
        jumps = batched & discontinuous(self.arrays["curves"])
        again = np.flatnonzero(batched if self.deviated else jumps)
        self._alone(again, CHUNK_DEVIATED if self.deviated else DISCONTINUOUS)
        return self

    def _self_check(self) -> None:
        """Compare each self-check instance's batched curve with its run alone, then keep the
        run alone (it is the reference) for that instance."""
        for position, (bench, outcome) in self.check_outcomes.items():
            if self.alone[position] != BATCHED:
                continue  # its batch failed and it was isolated anyway
            batched = self.arrays["curves"][position].copy()
            batched_ok = self.status[position] == OK
            self._keep_alone(position, bench, outcome, SELF_CHECK)
            if self.status[position] != OK or not batched_ok:
                self.deviated = 1  # it fails alone and not batched, or the reverse
                continue
            self.checks += 1
            deviation, ratio = deviation_ratio(
                batched, self.arrays["curves"][position], self.spec.simulator, self.current
            )
            self.check_deviation = max(self.check_deviation, deviation)
            self.check_ratio = max(self.check_ratio, ratio)
            self.deviated |= int(ratio > 1)

    def _keep_alone(self, position: int, bench: Bench, outcome: Outcome, code: int) -> None:
        """Keep the run alone of the instance at ``position`` (or its failure)."""
        self.alone[position] = code
        try:
            arrays = self._arrays(bench, outcome, self.table.index[[position]])
        except SimulationError as error:
            self._fail(position, _first_line(error), FAILED)
            return
        reason = arrays.pop("failure")[0]
        if reason:
            self._fail(position, reason, FAILED)
            return
        values = {name: values[0] for name, values in arrays.items()}
        if not all(np.all(np.isfinite(v)) for v in values.values()):
            self._fail(position, "non-finite output", FAILED)
            return
        for name, value in values.items():
            self.arrays[name][position] = value
        self.status[position], self.reasons[position] = OK, ""

    def _fail(self, position: int, reason: str, code: int) -> None:
        self.status[position], self.reasons[position] = code, reason
        for values in self.arrays.values():
            values[position] = np.nan

    def _alone(self, positions: np.ndarray, code: int) -> None:
        """Simulate each of ``positions`` alone (one ngspice process for all of them; if that
        process hangs or crashes, each in its own) and keep those results."""
        if len(positions) == 0:
            return
        jobs = [self._job(np.array([p]), self._alone_what(p)) for p in positions]
        try:
            outcomes = self.solver.run_many([job for _, job in jobs], self.timeout)
            self.runs += 1
        except SimulationError:
            outcomes = []
            for _, job in jobs:
                self.runs += 1
                try:
                    outcomes.append(self.solver.run_many([job], self.timeout)[0])
                except SimulationError as error:
                    outcomes.append(Outcome(None, "", error))
        for position, (bench, _), outcome in zip(positions, jobs, outcomes, strict=True):
            if outcome.error is not None and _retryable(outcome.error):
                self.alone[position] = code
                self._fail(int(position), _first_line(outcome.error), RETRY)
                continue
            self._keep_alone(int(position), bench, outcome, code)


def _retryable(error: SimulationError) -> bool:
    return isinstance(error, SimulationTimeout | SimulatorCrash)


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
