"""Run independent tasks in worker processes with joblib; the only module that imports joblib.

Results stream back as tasks finish (in any order), so the single writer can journal them at once
and memory stays bounded by the tasks in flight. ``backend`` picks joblib's backend: ``loky``
(local processes, the default), ``dask`` (a ``distributed`` cluster: an existing scheduler at
``scheduler``, or a local cluster of ``jobs`` worker processes with one thread each) or ``ray``
(Ray's joblib backend: an existing cluster at ``scheduler``, or a local one with ``jobs`` CPUs);
the clusters themselves are :mod:`circuitnn.extract.clusters`.

libngspice keeps global state, one instance per process: every backend runs each task in a
worker *process* that runs one task at a time (dask workers with one thread, Ray actors). The
task function must be importable by the workers (a module-level function of an installed module).
"""

from __future__ import annotations

import gc
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from circuitnn.errors import CircuitnnError, ConfigError, SimulationError
from circuitnn.extract.clusters import dask_client, kept_ray_pool, require_package, start_ray
from circuitnn.spice.engines import share_cores

Result = TypeVar("Result")


BACKENDS = ("loky", "dask", "ray")


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
            with _Garbage(backend != "loky") as garbage:
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
    A collection every ``BUDGET`` bytes of results keeps it bounded. While the tasks run, the
    objects made before them are frozen (``gc.freeze``: the cluster's client, the modules, the
    caller's data), so a collection scans only what the run made since: 1–3 ms instead of about
    40 in the campaign benchmark (a collection holds the GIL, so the dask client's event loop in
    this process, and with it the workers' next tasks, waited for each one).
    """

    BUDGET = 16 * 2**20  # bytes of results between collections

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.pending = 0
        self.froze = False

    def __enter__(self) -> _Garbage:
        # a process that froze objects itself keeps them frozen (unfreeze would thaw them too)
        self.froze = self.enabled and gc.get_freeze_count() == 0
        if self.froze:
            gc.freeze()
        return self

    def __exit__(self, *failure: object) -> None:
        if self.froze:
            gc.unfreeze()

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
    require_package(backend)
    if backend == "dask":
        from distributed.scheduler import KilledWorker
        from joblib import parallel_config

        client = dask_client(scheduler, workers)
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
    start_ray(ray, scheduler, workers)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    total = cpus if scheduler is not None else min(workers, cpus)

    def ray_pool() -> Any:
        runner = Parallel(n_jobs=total, backend="ray", batch_size=1)
        runner.__enter__()
        return runner

    def ray_parallel() -> Any:
        return kept_ray_pool(scheduler, total, ray_pool)

    return ray_parallel, (RayActorError, WorkerCrashedError), False


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
