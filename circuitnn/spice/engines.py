"""Run rendered netlists in ngspice and return their saved vectors (and logs).

Two engines, same contract (:meth:`Engine.run`, :meth:`Engine.run_many`):

* ``subprocess`` — ``ngspice -n -b`` in a temporary folder: one process runs a list of circuits,
  each alone (loaded, simulated, written, removed, in turn). A hang is killed at the timeout, a
  crash costs only that child process, and no memory accumulates in the worker.
* ``shared`` — libngspice loaded through PySpice's ``NgSpiceShared`` in a helper process that
  stays up between runs (one per worker, as libngspice keeps global state; see
  :mod:`circuitnn.spice.shared`), so a hang is killed at the timeout and a crash costs only the
  helper. ngspice's messages are classified by circuitnn (:mod:`circuitnn.spice.library`), not
  by PySpice.

Both run ngspice in a process group of its own, killed as a whole (ngspice's own children with
it) at the timeout or when the caller is interrupted (the subprocess:
:mod:`circuitnn.spice.ngspice_process`), and write the files a netlist includes
(:class:`~circuitnn.neuron.includes.IncludedFile`) into ngspice's run folder under their safe
names before the run.

Neither reads a user's ``.spiceinit`` (``-n``; libngspice is started in an empty folder), so
nothing outside a family's key changes its numbers. The subprocess engine's run folders are
removed in a thread of their own (:mod:`circuitnn.spice.run_folders`).

Errors: :class:`NetlistError` when ngspice rejects the netlist, :class:`ConvergenceError` when the
analysis aborts, :class:`InstanceRejected` when it refuses some instances' parameters,
:class:`SimulationTimeout` on a hang, :class:`SimulatorCrash` on a crash.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from circuitnn.errors import (
    ConfigError,
    NetlistError,
    SimulationError,
)
from circuitnn.neuron.includes import STAGED, IncludedFile
from circuitnn.spice.messages import diagnose, raise_for_log
from circuitnn.spice.ngspice_process import run_batch
from circuitnn.spice.rawfile import RawPlot, read_raw
from circuitnn.spice.run_folders import run_folder
from circuitnn.spice.session import (
    FIRST_RAW,
    PRELUDE_RAW,
    Job,
    Outcome,
    session_netlist,
    split_log,
)

DEFAULT_ENGINE = "subprocess"
PRELUDE = "prelude:"  # a job's vectors from its prelude (Job.prelude) are named "prelude:<name>"


def share_cores() -> None:
    """Make this process's ngspice runs share the cores with other processes' runs.

    ngspice loads BSIM3/BSIM4 devices (every foundry kit's) on OpenMP threads, 2 per process by
    default, whose idle threads spin; with a worker per core, two sky130 chunks run at once took
    3-6x the time of the same two one after the other (0.6-1.5 s against 0.4 s). Passive waiting
    (``OMP_WAIT_POLICY``, unless the user set it) makes them 0.22-0.27 s; it costs a single run
    7-30 %, so only worker processes call this. Results do not change: the threads compute the
    same device loads, summed in the same order."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


class Engine:
    """Runs netlists; subclasses implement :meth:`_execute_many`."""

    name = "engine"

    def run(
        self,
        netlist: str,
        vectors: list[str],
        points: int | None,
        timeout: float,
        what: str = "netlist",
        includes: Sequence[IncludedFile] = (),
    ) -> dict[str, np.ndarray]:
        """Simulate ``netlist`` (one analysis) and return ``vectors`` with ``points`` points each
        (any number of points, the same for all, when ``points`` is None: transients).

        ``vectors`` use ngspice's lower-case names (``v(node)``, ``i(vsource)``); ``timeout`` is in
        seconds; ``what`` names the job in error messages; ``includes`` are the files the netlist
        names (a bench's ``includes``).
        """
        job = Job(netlist, tuple(vectors), points, what, tuple(includes))
        return self.run_many([job], timeout)[0].result()

    def run_many(self, jobs: list[Job], timeout: float, what: str | None = None) -> list[Outcome]:
        """Simulate every job, each alone (its own circuit: nothing is shared between jobs), in
        one ngspice session where the engine can, in order; one :class:`Outcome` per job.

        A job that does not converge, returns incomplete results or whose instances ngspice
        refuses gets its error in its outcome; a rejected netlist raises :class:`NetlistError`
        (it would fail for every job); a session that hangs past ``timeout`` seconds raises
        :class:`SimulationTimeout`, one that crashes :class:`SimulatorCrash` (``what`` names the
        session in those errors; default: the first job and how many more).
        """
        if what is None:
            what = jobs[0].what if len(jobs) == 1 else f"{jobs[0].what} (+{len(jobs) - 1} more)"
        outcomes = []
        executed = self._execute_many(jobs, timeout, what)
        for job, (results, log) in zip(jobs, executed, strict=True):
            complete = results is not None and _complete(results, job)
            try:
                raise_for_log(log, job.what, complete)
            except NetlistError:
                raise
            except SimulationError as error:
                outcomes.append(Outcome(None, log, error))
                continue
            assert results is not None
            kept = dict(zip(job.vectors, map(results.__getitem__, job.vectors), strict=True))
            if job.prelude:
                kept.update({n: v for n, v in results.items() if n.startswith(PRELUDE)})
            outcomes.append(Outcome(kept, log))
        return outcomes

    def _execute_many(
        self, jobs: list[Job], timeout: float, what: str
    ) -> list[tuple[dict[str, np.ndarray] | None, str]]:
        raise NotImplementedError


def _complete(results: dict[str, np.ndarray], job: Job) -> bool:
    """Whether ``results`` hold every vector of ``job``, each with its number of points."""
    if not results.keys() >= set(job.vectors):
        return False
    return job.points is None or set(map(len, map(results.__getitem__, job.vectors))) <= {
        job.points
    }


def stage_includes(folder: Path, includes: Sequence[IncludedFile]) -> None:
    """Write the copied files among ``includes`` into ``folder`` under their safe names (a
    referenced library is named by its absolute path and read in place)."""
    for included in includes:
        if included.text is None:
            continue
        if not STAGED.fullmatch(included.name):
            raise NetlistError(f"included file name {included.name!r} is not a safe name")
        target = folder / included.name
        if not target.exists():
            target.write_text(included.text, encoding="utf-8", errors="surrogatepass")


def _read_plots(path: Path, what: str) -> list[RawPlot] | None:
    if not path.is_file():
        return None
    try:
        return read_raw(path.read_bytes(), f"{what}: {path.name}")
    except SimulationError:
        return None


def run_script(
    netlist: str,
    files: list[str],
    timeout: float,
    what: str = "netlist",
    sources: dict[str, str] | None = None,
    includes: Sequence[IncludedFile] = (),
    plots: int = 1,
) -> dict[str, list[RawPlot]]:
    """Run a netlist whose ``.control`` block writes the raw ``files`` into its working folder
    (``sources``: other files it reads there, name → text; ``includes``: the files the netlist
    names), each with ``plots`` plots (appended, ``set appendwrite``).

    Used for analyses driven by a control script (noise and AC at several bias points); always an
    ngspice subprocess, whatever the engine. Raises like :meth:`Engine.run` when ngspice rejects
    the netlist, does not converge or any file is missing.
    """
    with tempfile.TemporaryDirectory(prefix="circuitnn-") as name:
        folder = Path(name)
        stage_includes(folder, includes)
        for file, text in (sources or {}).items():
            (folder / file).write_text(text)
        log = run_batch(netlist, folder, timeout, what)
        read = {file: _read_plots(folder / file, what) for file in files}
    complete = all(found is not None and len(found) >= plots for found in read.values())
    raise_for_log(log, what, complete)
    return {file: found for file, found in read.items() if found}


class SubprocessEngine(Engine):
    """``ngspice -n -b``, one process per list of jobs (each job alone in it, in turn)."""

    name = "subprocess"

    def _execute_many(
        self, jobs: list[Job], timeout: float, what: str
    ) -> list[tuple[dict[str, np.ndarray] | None, str]]:
        text, files = session_netlist(jobs)
        with run_folder() as folder:
            stage_includes(folder, [file for job in jobs for file in job.includes])
            for file, content in files.items():
                (folder / file).write_text(content)
            log = run_batch(text, folder, timeout, what, FIRST_RAW)
            *parts, prelude_log = split_log(log, len(jobs))
            results = []
            for number, part in enumerate(parts):
                plots = _read_plots(folder / f"job{number}.raw", jobs[number].what)
                results.append(((plots[-1].vectors if plots else None), part))
            prelude = _read_plots(folder / PRELUDE_RAW, jobs[0].what) if jobs[0].prelude else None
            vectors = results[0][0]
            if prelude and vectors is not None and not diagnose(prelude_log).convergence_errors:
                vectors.update({PRELUDE + name: v for name, v in prelude[-1].vectors.items()})
        return results


class SharedEngine(Engine):
    """libngspice through PySpice, in a helper process of this process (started on first use,
    again after a timeout or a crash; see :mod:`circuitnn.spice.shared`)."""

    name = "shared"

    def __init__(self) -> None:
        from circuitnn.spice.shared import SharedServer

        self._server = SharedServer()

    def _execute_many(
        self, jobs: list[Job], timeout: float, what: str
    ) -> list[tuple[dict[str, np.ndarray] | None, str]]:
        return [
            self._execute(job.netlist, list(job.vectors), timeout, job.what, job.includes)
            for job in jobs
        ]

    def _execute(
        self,
        netlist: str,
        vectors: list[str],
        timeout: float,
        what: str,
        includes: Sequence[IncludedFile],
    ) -> tuple[dict[str, np.ndarray] | None, str]:
        return self._server.run(netlist, vectors, timeout, what, includes)


_ENGINES = {"subprocess": SubprocessEngine, "shared": SharedEngine}


def available_engines() -> tuple[str, ...]:
    """Names accepted by :func:`get_engine`."""
    return tuple(_ENGINES)


@functools.cache
def get_engine(name: str = DEFAULT_ENGINE) -> Engine:
    """The engine called ``name`` for this process (created once per process)."""
    if name not in _ENGINES:
        raise ConfigError(f"engine {name!r} must be one of {', '.join(_ENGINES)}")
    return _ENGINES[name]()
