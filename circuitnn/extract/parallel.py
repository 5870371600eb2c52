"""Run independent tasks in worker processes with joblib; the only module that imports joblib.

Results stream back as tasks finish (in any order), so the single writer can journal them at once
and memory stays bounded by the tasks in flight. ``backend`` picks joblib's backend: ``loky``
(local processes, the default), ``dask`` (a ``distributed`` cluster: an existing scheduler at
``scheduler``, or a local cluster of ``jobs`` worker processes with one thread each) or ``ray``
(Ray's joblib backend: an existing cluster at ``scheduler``, or a local one with ``jobs`` CPUs).

libngspice keeps global state, one instance per process: every backend runs each task in a
worker *process* that runs one task at a time (dask workers with one thread, Ray actors). The
task function must be importable by the workers (a module-level function of an installed module).
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import logging
import os
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from circuitnn.errors import CircuitnnError, ConfigError, SimulationError
from circuitnn.spice.engines import share_cores

Result = TypeVar("Result")


BACKENDS = ("loky", "dask", "ray")


_PACKAGES = {"dask": ("distributed", "dask"), "ray": ("ray", "ray")}  # import name, pip extra


# the longest wait for an existing dask scheduler to answer (s)
DASK_CONNECT_SECONDS = 10.0


# dask clients and Ray pools, kept for the process' life (or until shutdown())
_CLIENTS: dict[tuple[str, str | None, int], Any] = {}


def check_backend(backend: str, scheduler: str | None = None) -> None:
    """Raise :class:`ConfigError` unless ``backend`` is known (``scheduler`` only for dask/ray)."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend {backend!r} must be one of {', '.join(BACKENDS)}")
    if scheduler is not None and backend == "loky":
        raise ConfigError(
            "a scheduler address needs backend dask or ray (loky runs on this machine only)"
        )
    if scheduler is not None and (not isinstance(scheduler, str) or not scheduler.strip()):
        raise ConfigError(
            f"scheduler must be an address such as tcp://host:8786, got {scheduler!r}"
        )


def run_tasks(
    function: Callable[..., Result],
    tasks: Iterable[tuple[Any, ...]],
    jobs: int = 1,
    backend: str = "loky",
    label: Callable[[tuple[Any, ...]], str] = repr,
    scheduler: str | None = None,
    retries: int = 2,
) -> Iterator[tuple[int, Result]]:
    """Yield ``(task number, function(*task))`` for every task, as each finishes.

    ``jobs`` worker processes (1 = run here, in order, with loky; -1 = one per core; ignored when
    ``scheduler`` names an existing dask or Ray cluster, whose workers are used). A worker that
    dies (killed, segfault) does not stop the run: the tasks it had in flight are run again, each
    alone in a fresh worker, and the others go on; only a task that kills its worker on each of
    ``retries`` runs alone raises :class:`SimulationError` naming it (with ``label``), after every
    other task has finished (dask itself first retries a dead worker's tasks on other workers).
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs == 0 or jobs < -1:
        raise ConfigError(f"jobs must be a positive integer or -1 (all cores), got {jobs!r}")
    check_backend(backend, scheduler)
    tasks = list(tasks)
    if backend == "loky" and (jobs == 1 or len(tasks) <= 1):
        for number, task in enumerate(tasks):
            yield number, function(*task)
        return
    if not tasks:
        return
    workers = (os.cpu_count() or 1) if jobs == -1 else jobs
    parallel, died, streams = _backend(backend, workers, scheduler)
    # A worker that dies (killed, segfault, out of memory) takes every task in flight with it
    # (loky: TerminatedWorkerError for the whole batch). Those tasks are run again, each alone in
    # a fresh worker, so the one that kills its worker is found and the innocent ones finish;
    # then the tasks never started go on in parallel. A task that kills its worker on each of
    # ``retries`` runs alone is given up; the others all finish before the error names it.
    pending = list(range(len(tasks)))
    suspects: list[int] = []
    deaths: dict[int, int] = {}
    lost: list[int] = []
    message = ""
    while pending or suspects:
        alone = bool(suspects)
        numbers = [suspects.pop(0)] if alone else pending
        started: list[int] = []
        finished: set[int] = set()
        try:
            garbage = _Garbage(backend != "loky")
            for number, result in _pass(parallel, streams, function, tasks, numbers, started):
                finished.add(number)
                garbage.add(result)
                yield number, result
                garbage.collect_if_due()
            garbage.collect_if_due(force=True)
            if not alone:
                pending = []
        except died as error:
            message = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
            if alone:
                number = numbers[0]
                deaths[number] = deaths.get(number, 0) + 1
                if deaths[number] < retries:
                    suspects.insert(0, number)  # again, in a fresh worker
                else:
                    lost.append(number)
            elif not started:  # no task reached a worker: retrying cannot help
                raise SimulationError(f"workers died before any task ran: {message}") from None
            else:
                suspects += [number for number in started if number not in finished]
                pending = [number for number in numbers if number not in set(started)]
    if lost:
        names = [label(tasks[number]) for number in lost]
        raise SimulationError(
            f"a worker process died each time it ran {', '.join(names[:8])}"
            f"{' …' if len(names) > 8 else ''} (once with other tasks, then {retries} time(s) "
            f"alone; last: {message}); every other task finished"
        )


class _Garbage:
    """Collects reference cycles that hold results already handed on.

    joblib's dask and Ray backends keep each result in a reference cycle (future ↔ callback),
    so results the writer has already journaled stay in memory until Python's cyclic collector
    runs, which can take hundreds of results: the writer's memory would grow with the campaign.
    A collection (about 35 ms) every ``BUDGET`` bytes of results keeps it bounded.
    """

    BUDGET = 16 * 2**20  # bytes of results between collections

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.pending = 0

    def add(self, result: Any) -> None:
        """Count the bytes of a result just handed on."""
        if self.enabled:
            self.pending += _nbytes(result)

    def collect_if_due(self, force: bool = False) -> None:
        """Collect garbage if a budget of results (or, with ``force``, any) is waiting."""
        if self.enabled and self.pending and (force or self.pending >= self.BUDGET):
            gc.collect()
            self.pending = 0


def _nbytes(value: Any, depth: int = 0) -> int:
    """Bytes of the numpy arrays in a result (dicts, sequences and dataclasses searched)."""
    if hasattr(value, "nbytes") and hasattr(value, "dtype"):
        return int(value.nbytes)
    if depth > 3:
        return 0
    if isinstance(value, dict):
        return sum(_nbytes(item, depth + 1) for item in value.values())
    if isinstance(value, list | tuple):
        return sum(_nbytes(item, depth + 1) for item in value)
    if hasattr(value, "__dataclass_fields__"):
        return sum(_nbytes(item, depth + 1) for item in vars(value).values())
    return 0


def _pass(
    parallel: Callable[..., Any],
    streams: bool,
    function: Callable[..., Result],
    tasks: list[tuple[Any, ...]],
    numbers: list[int],
    started: list[int],
) -> Iterator[tuple[int, Result]]:
    """Run tasks ``numbers`` in the workers, yielding ``(number, result)`` as each finishes;
    ``started`` collects the numbers handed to the workers (a dead worker's are among them)."""
    from joblib import delayed

    def calls(chosen: Iterable[int]) -> Iterator[Any]:
        for number in chosen:
            started.append(number)
            yield delayed(_call)(function, number, tasks[number])

    if streams:
        yield from parallel(return_as="generator_unordered")(calls(numbers))
        return
    # Ray's joblib backend returns lists only: waves of 2 tasks per worker keep memory
    # bounded (each wave waits for its slowest task)
    runner = parallel()
    wave = 2 * max(1, runner.n_jobs)
    for first in range(0, len(numbers), wave):
        yield from runner(calls(numbers[first : first + wave]))


def _backend(
    backend: str, workers: int, scheduler: str | None
) -> tuple[Callable[..., Any], tuple[type[BaseException], ...], bool]:
    """A factory of joblib ``Parallel`` objects for ``backend``, the exceptions that mean "a
    worker died", and whether the backend streams (``return_as="generator_unordered"``)."""
    from joblib import Parallel

    # an interrupted run (Ctrl-C, SIGTERM) cancels the tasks in flight: that is the point
    for message in (
        r"\d+ tasks which were still being processed",
        r"\d+ tasks have been successfully executed +but not used",
    ):
        warnings.filterwarnings("ignore", message=message, category=UserWarning)
    if backend == "loky":
        from joblib.externals.loky.process_executor import TerminatedWorkerError

        def loky(**settings: Any) -> Any:
            return Parallel(n_jobs=workers, backend="loky", batch_size=1, **settings)

        return loky, (TerminatedWorkerError,), True
    _require(backend)
    if backend == "dask":
        from distributed.scheduler import KilledWorker
        from joblib import parallel_config

        client = _dask_client(scheduler, workers)
        total = sum(client.nthreads().values()) or workers

        def dask(**settings: Any) -> Any:
            # the Parallel object keeps the backend (and its client) made in this context
            with parallel_config(backend="dask", client=client, wait_for_workers_timeout=60):
                return Parallel(n_jobs=total, batch_size=1, **settings)

        return dask, (KilledWorker,), True
    import ray
    from ray.exceptions import RayActorError, WorkerCrashedError
    from ray.util.joblib import register_ray

    register_ray()
    _ray_init(ray, scheduler, workers)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    total = cpus if scheduler is not None else min(workers, cpus)

    def ray_parallel() -> Any:
        # one pool of Ray actors (worker processes) per size, kept for later calls: starting
        # one costs seconds
        key = ("ray", scheduler, total)
        if key not in _CLIENTS:
            runner = Parallel(n_jobs=total, backend="ray", batch_size=1)
            runner.__enter__()
            _CLIENTS[key] = runner
        return _CLIENTS[key]

    return ray_parallel, (RayActorError, WorkerCrashedError), False


def _require(backend: str) -> None:
    module, extra = _PACKAGES[backend]
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ConfigError(
            f"backend {backend!r} needs the {module!r} package, which is not installed: "
            f"pip install 'circuitnn[{extra}]'"
        )


# Dask settings for long campaigns. The client, in this process (the writer's), keeps its last
# 1000 messages to the scheduler by default, task arguments included: 50 bound its memory to a
# few chunks' parameters. A local cluster's scheduler lives in this process too, with the same
# kind of histories (messages, events, the last 100 graphs, an hour of system-monitor samples),
# so those are shortened as well; and its workers run without the statistical profiler, which
# samples the task's thread every 10 ms and competes with the chunk's Python work for the GIL.
# The periodic housekeeping of the local cluster's processes (event-loop health ticks every
# 20 ms, system and memory monitors, the cluster's repr) runs less often: on a machine whose
# cores the workers fill, it took CPU from them (the writer's process used about 0.25 CPU-s more
# per 2000-instance point with noise; measured on 2 cores).
_CLIENT_DASK = {"distributed.admin.low-level-log-length": 50}


_LOCAL_DASK = {
    **_CLIENT_DASK,
    "distributed.worker.profile.enabled": False,
    "distributed.diagnostics.computations.max-history": 4,
    "distributed.admin.system-monitor.log-length": 120,
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.admin.system-monitor.disk": False,
    "distributed.admin.system-monitor.gil.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.deploy.cluster-repr-interval": "10s",
}


def _dask_client(scheduler: str | None, workers: int) -> Any:
    """A client of the cluster at ``scheduler``, or of a local cluster of ``workers`` processes
    (one thread each); kept for later calls and closed when the process exits."""
    key = ("dask", scheduler, 0 if scheduler else workers)
    client = _CLIENTS.get(key)
    if client is not None and client.status == "running":
        return client
    import dask
    from distributed import Client, LocalCluster

    if scheduler is not None:
        client = _connect_dask(scheduler)
        threads = client.nthreads()
        crowded = {worker: n for worker, n in threads.items() if n > 1}
        if crowded:
            client.close()
            raise ConfigError(
                f"dask workers at {scheduler} run several threads each ({crowded}); libngspice "
                "keeps global state per process, so start workers with --nthreads 1"
            )
    else:
        try:
            with dask.config.set(_LOCAL_DASK):
                cluster = LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
                client = Client(cluster, set_as_default=False)
        except (RuntimeError, OSError, TimeoutError) as error:
            raise ConfigError(
                f"could not start a local dask cluster of {workers} worker processes: {error} "
                "(a script that starts one must guard its main code with "
                "`if __name__ == '__main__':`, since the workers import it)"
            ) from None
    _CLIENTS[key] = client
    return client


def _connect_dask(scheduler: str) -> Any:
    """A client of the dask scheduler at ``scheduler``; :class:`ConfigError` when it cannot be
    reached or does not answer within :data:`DASK_CONNECT_SECONDS`. (distributed's own timeout
    does not cover a scheduler that accepts the connection and never answers: the client is made
    in a thread of its own, abandoned if it does not return in time.)"""
    import dask
    from distributed import Client

    made: dict[str, Any] = {}

    def connect() -> None:
        try:
            with dask.config.set(_CLIENT_DASK):
                made["client"] = Client(
                    scheduler, timeout=DASK_CONNECT_SECONDS, set_as_default=False
                )
        except BaseException as error:  # handed to the caller below
            made["error"] = error

    thread = threading.Thread(target=connect, name="circuitnn-dask-connect", daemon=True)
    thread.start()
    thread.join(DASK_CONNECT_SECONDS + 1.0)
    if thread.is_alive():
        raise ConfigError(
            f"the dask scheduler at {scheduler} did not answer within {DASK_CONNECT_SECONDS:g} s "
            "(is a dask scheduler running there?)"
        )
    if "error" in made:
        error = made["error"]
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        raise ConfigError(f"cannot connect to the dask scheduler at {scheduler}: {reason}")
    return made["client"]


def _ray_init(ray: Any, scheduler: str | None, workers: int) -> None:
    if ray.is_initialized():
        return
    settings: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": logging.ERROR,
    }
    if scheduler is not None:
        try:
            ray.init(address=scheduler, **settings)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise ConfigError(
                f"cannot connect to the Ray cluster at {scheduler}: {error}"
            ) from None
    else:
        ray.init(num_cpus=workers, **settings)


def shutdown(backend: str | None = None) -> None:
    """Close the dask clients and local clusters and the Ray pools and session this process
    started (only those of ``backend`` if given)."""
    for key, client in list(_CLIENTS.items()):
        if backend is not None and key[0] != backend:
            continue
        del _CLIENTS[key]
        if key[0] == "ray":
            with contextlib.suppress(Exception):
                client.__exit__(None, None, None)
            continue
        cluster = getattr(client, "cluster", None)
        with contextlib.suppress(Exception):
            client.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()
    import sys

    ray = sys.modules.get("ray")
    if backend in (None, "ray") and ray is not None and ray.is_initialized():
        ray.shutdown()


atexit.register(shutdown)


def _call(
    function: Callable[..., Result], number: int, task: tuple[Any, ...]
) -> tuple[int, Result]:
    share_cores()  # (a worker: other workers' ngspice runs share its cores)
    try:
        return number, function(*task)
    except CircuitnnError:
        raise
    except Exception as error:
        raise SimulationError(
            f"task failed in a worker: {type(error).__name__}: {error}"
        ) from error
