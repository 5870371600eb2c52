"""A session: several circuits, each simulated alone, one after the other in one ngspice process.

The first job is the session netlist's own circuit, whose dot analysis ``ngspice -b -r`` runs
last and streams into its raw file, exactly as a plain batch run does (no slower); before it, a
``.control`` block sources each other job, runs it, writes its raw file and removes it again. So
nothing is shared between the circuits (results are bit-identical to separate ``ngspice -b``
runs) while the process starts once: a chunk's batch and its self-check instances, or the
instances re-run alone, cost one ngspice start.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from circuitnn.errors import SimulationError
from circuitnn.neuron.includes import IncludedFile

JOB_MARK = "CIRCUITNN-JOB-"  # echoed before each circuit of a session, to split its log
PRELUDE_MARK = "CIRCUITNN-PRELUDE"  # echoed before the first job's prelude (its own log part)
PRELUDE_RAW = "prelude.raw"  # the raw file a prelude writes


@dataclass(frozen=True)
class Job:
    """One circuit to simulate alone: a complete netlist (its analysis as a dot card, no
    ``.control``), the ``vectors`` to return (ngspice's lower-case names) with ``points`` points
    each (None: any number, the same for all, e.g. transients), ``what`` names it in errors, and
    ``includes`` are the files its netlist names (written into ngspice's run folder).
    ``prelude`` (the first job of a session only): control commands run on its circuit before
    anything else, which write :data:`PRELUDE_RAW` (engines without sessions skip it)."""

    netlist: str
    vectors: tuple[str, ...]
    points: int | None
    what: str
    includes: tuple[IncludedFile, ...] = ()
    prelude: tuple[str, ...] = ()


@dataclass
class Outcome:
    """What one :class:`Job` gave: its vectors, or the error that stopped it; and its log."""

    vectors: dict[str, np.ndarray] | None
    log: str
    error: SimulationError | None = None

    def result(self) -> dict[str, np.ndarray]:
        """The vectors, or the error raised."""
        if self.error is not None:
            raise self.error
        assert self.vectors is not None
        return self.vectors


FIRST_RAW = "job0.raw"  # the raw file ``ngspice -b -r`` streams the session's own circuit into


def session_netlist(jobs: list[Job]) -> tuple[str, dict[str, str]]:
    """The netlist that runs every job alone in one ``ngspice -b -r job0.raw`` process, and the
    other files it sources (name → text). Jobs 1… run first, each sourced, simulated, written to
    ``jobK.raw`` and removed by the ``.control`` block; then ngspice runs the netlist's own
    circuit, job 0. A marker line echoed before each job splits the log."""
    prelude = jobs[0].prelude
    if len(jobs) == 1 and not prelude:
        return jobs[0].netlist, {}
    first = jobs[0].netlist.rstrip()
    if first.lower().endswith(".end"):
        first = first[: -len(".end")].rstrip()
    control = [".control", "set filetype=binary"]
    if prelude:
        control += [f"echo {PRELUDE_MARK}", *prelude]
    files = {}
    for number in range(1, len(jobs)):
        files[f"job{number}.cir"] = jobs[number].netlist
        control += [
            f"echo {JOB_MARK}{number}",
            f"source job{number}.cir",
            "run",
            f"write job{number}.raw",
            "destroy all",
            "remcirc",
        ]
    control += [f"echo {JOB_MARK}0", ".endc", ".end"]
    return "\n".join([first, *control]) + "\n", files


def split_log(log: str, jobs: int) -> list[str]:
    """The part of a session's log that belongs to each of its ``jobs`` circuits (job 0 also
    gets what ngspice printed while reading the session's own netlist, before any marker), and
    last the part its first job's prelude printed ("" without one)."""
    parts = [""] * (jobs + 1)
    current = 0
    for line in log.splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith(JOB_MARK) and stripped[len(JOB_MARK) :].isdigit():
            current = min(int(stripped[len(JOB_MARK) :]), jobs - 1)
            continue
        if stripped == PRELUDE_MARK:
            current = jobs
            continue
        parts[current] += line
    return parts
