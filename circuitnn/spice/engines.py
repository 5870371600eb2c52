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
it) at the timeout or when the caller is interrupted, and write the files a netlist includes
(:class:`~circuitnn.neuron.includes.IncludedFile`) into ngspice's run folder under their safe
names before the run.

Neither reads a user's ``.spiceinit`` (``-n``; libngspice is started in an empty folder), so
nothing outside a family's key changes its numbers. The subprocess engine's run folders are
removed in a thread of their own (freeing a raw file's pages is no wait of its caller's); those
still queued when the process exits are removed then.

Errors: :class:`NetlistError` when ngspice rejects the netlist, :class:`ConvergenceError` when the
analysis aborts, :class:`InstanceRejected` when it refuses some instances' parameters,
:class:`SimulationTimeout` on a hang, :class:`SimulatorCrash` on a crash.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import queue
import re
import select
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from circuitnn.errors import (
    ConfigError,
    NetlistError,
    SimulationError,
    SimulationTimeout,
    SimulatorCrash,
    log_tail,
)
from circuitnn.neuron.includes import STAGED, IncludedFile
from circuitnn.spice.messages import diagnose, raise_for_log
from circuitnn.spice.rawfile import RawPlot, read_raw
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


def ngspice_executable() -> str:
    """Path of the ``ngspice`` program; :class:`SimulationError` with install advice if missing."""
    path = os.environ.get("CIRCUITNN_NGSPICE") or shutil.which("ngspice")
    if not path:
        raise SimulationError(
            "ngspice was not found on PATH: install it (Debian/Ubuntu: apt-get install ngspice "
            "libngspice0) or set CIRCUITNN_NGSPICE to the executable"
        )
    return path


def _spawn(netlist: str, folder: Path, timeout: float, what: str, raw: str | None = None) -> str:
    """Run ``ngspice -n -b`` on ``netlist`` in ``folder`` (``-r raw``: stream the netlist's own
    analysis into that file); return its log.

    ``-n``: no ``.spiceinit`` is read (neither the user's nor one in a working folder), so
    nothing outside a family's key changes results. ``-o``: ngspice writes its messages to one
    log file in the order it makes them (its stdout is buffered when piped, stderr is not).
    ngspice runs in a process group of its own, killed as a whole (its own children too) when it
    outlives ``timeout`` seconds or when this call is interrupted (Ctrl-C, SIGTERM).
    """
    circuit, log_file = folder / "bench.cir", folder / "bench.log"
    circuit.write_text(netlist)
    streamed = ["-r", raw] if raw else []
    command = [ngspice_executable(), "-n", "-b", *streamed, "-o", str(log_file), str(circuit)]
    env = {**os.environ, "SPICE_ASCIIRAWFILE": "0"}
    stdout, stderr, returncode, stopped = _run_with_deadline(command, folder, env, timeout, what)
    # (stdout holds only ngspice's banner; the log file, last, ends with what went wrong)
    log = _decode(stdout) + "\n" + _decode(stderr) + "\n" + _read_log(log_file)
    if stopped:
        raise SimulationTimeout(
            f"{what}: ngspice did not finish within {timeout:g} s and was stopped\n{log_tail(log)}"
        )
    if returncode < 0:
        raise SimulatorCrash(f"{what}: ngspice crashed (signal {-returncode})\n{log_tail(log)}")
    return log


STDOUT_FILE, STDERR_FILE = "ngspice-stdout.txt", "ngspice-stderr.txt"  # in the run folder


def _run_with_deadline(
    command: list[str], folder: Path, env: dict[str, str], timeout: float, what: str
) -> tuple[bytes, bytes, int, bool]:
    """Run ``command`` in ``folder``, in a process group of its own; kill the group after
    ``timeout`` seconds. Returns its stdout, stderr, exit status and whether it was stopped.
    Its output goes to files (ngspice leaves its pipes at once with ``-o``: nothing to read
    while it runs) and the wait blocks on the process' pidfd (``subprocess``'s own wait with a
    timeout polls with sleeps of up to 50 ms, so each run would end up to 50 ms late)."""
    outputs = folder / STDOUT_FILE, folder / STDERR_FILE
    try:
        with open(outputs[0], "wb") as stdout, open(outputs[1], "wb") as stderr:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                cwd=folder,
                env=env,
                process_group=0,
            )
    except OSError as error:
        raise SimulationError(f"{what}: ngspice could not be started: {error}") from None
    try:
        stopped = not _exits_within(process, timeout)
        if stopped:
            kill_group(process)
        process.wait()
    except BaseException:  # (interrupted: never leave ngspice behind)
        kill_group(process)
        process.wait()
        raise
    stdout_text, stderr_text = (_read_bytes(path) for path in outputs)
    return stdout_text, stderr_text, process.returncode, stopped


def _exits_within(process: subprocess.Popen[Any], timeout: float) -> bool:
    """Whether ``process`` exits within ``timeout`` seconds (not waited for: its id stays its,
    so its group can still be killed)."""
    try:
        descriptor = os.pidfd_open(process.pid)
    except (AttributeError, OSError):  # (no pidfd: not Linux 5.3+) a polling wait
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    try:
        poller = select.poll()
        poller.register(descriptor, select.POLLIN)
        return bool(poller.poll(min(timeout * 1000, 2**31 - 1)))  # (ms, a C int)
    finally:
        os.close(descriptor)


def kill_group(process: subprocess.Popen[Any]) -> None:
    """Kill the process group led by ``process`` (not yet waited for, so its id is still its)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _read_log(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


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
) -> dict[str, list[RawPlot]]:
    """Run a netlist whose ``.control`` block writes the raw ``files`` into its working folder
    (``sources``: other files it reads there, name → text; ``includes``: the files the netlist
    names).

    Used for analyses driven by a control script (noise and AC at several bias points); always an
    ngspice subprocess, whatever the engine. Raises like :meth:`Engine.run` when ngspice rejects
    the netlist, does not converge or any file is missing.
    """
    with tempfile.TemporaryDirectory(prefix="circuitnn-") as name:
        folder = Path(name)
        stage_includes(folder, includes)
        for file, text in (sources or {}).items():
            (folder / file).write_text(text)
        log = _spawn(netlist, folder, timeout, what)
        plots = {file: _read_plots(folder / file, what) for file in files}
    complete = all(plots.values())
    raise_for_log(log, what, complete)
    return {file: found for file, found in plots.items() if found}


class SubprocessEngine(Engine):
    """``ngspice -n -b``, one process per list of jobs (each job alone in it, in turn)."""

    name = "subprocess"

    def _execute_many(
        self, jobs: list[Job], timeout: float, what: str
    ) -> list[tuple[dict[str, np.ndarray] | None, str]]:
        text, files = session_netlist(jobs)
        with _run_folder() as folder:
            stage_includes(folder, [file for job in jobs for file in job.includes])
            for file, content in files.items():
                (folder / file).write_text(content)
            log = _spawn(text, folder, timeout, what, FIRST_RAW)
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


@contextlib.contextmanager
def _run_folder() -> Iterator[Path]:
    """A temporary folder for one ngspice run, removed afterwards in :data:`_BIN`'s thread."""
    folder = Path(tempfile.mkdtemp(prefix="circuitnn-"))
    try:
        yield folder
    finally:
        _BIN.put(folder)


class _Bin:
    """Removes ngspice's run folders in a thread of its own: deleting a run's raw files frees
    their pages (about 1 MiB a DC chunk of 100 instances), work its caller need not wait for.
    Folders still queued when the process exits are removed then."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Path | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None  # the process whose thread empties the queue
        self._closed = False

    def put(self, folder: Path) -> None:
        """Remove ``folder`` soon (at once once the bin is closed)."""
        with self._lock:
            if not self._closed and self._pid != os.getpid():  # first use (or a forked child)
                self._queue = queue.SimpleQueue()
                self._thread = threading.Thread(target=self._empty, name="circuitnn-bin")
                self._thread.daemon = True
                self._thread.start()
                self._pid = os.getpid()
                atexit.register(self.close)
            if not self._closed:
                self._queue.put(folder)
                return
        shutil.rmtree(folder, ignore_errors=True)

    def _empty(self) -> None:
        while (folder := self._queue.get()) is not None:
            shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        """Remove the queued folders and stop the thread (at exit); later folders are removed
        at once."""
        with self._lock:
            self._closed = True
            thread = self._thread if self._pid == os.getpid() else None
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join(timeout=60)


_BIN = _Bin()


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


@functools.cache
def ngspice_version() -> str:
    """ngspice's version string, e.g. ``"ngspice-39"`` (part of every family's identity)."""
    done = subprocess.run(
        [ngspice_executable(), "-v"], capture_output=True, timeout=30, check=False
    )
    match = re.search(r"ngspice-(\S+)", _decode(done.stdout) + _decode(done.stderr))
    if match is None:
        raise SimulationError("could not read the ngspice version from 'ngspice -v'")
    return f"ngspice-{match.group(1)}"


def _decode(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode("utf-8", errors="replace")
