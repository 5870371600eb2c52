"""Run independent tasks in worker processes with joblib; the only module that imports joblib.

Results stream back as tasks finish (in any order), so the single writer can journal them at once
and memory stays bounded by the tasks in flight. ``backend`` is any joblib backend name (``loky``
by default; ``dask`` or ``ray`` once registered), so the same code runs on a cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from circuitnn.errors import CircuitnnError, ConfigError, SimulationError

Result = TypeVar("Result")


def run_tasks(
    function: Callable[..., Result],
    tasks: Iterable[tuple[Any, ...]],
    jobs: int = 1,
    backend: str = "loky",
    label: Callable[[tuple[Any, ...]], str] = repr,
) -> Iterator[tuple[int, Result]]:
    """Yield ``(task number, function(*task))`` for every task, as each finishes.

    ``jobs`` worker processes (1 = run here, in order; -1 = one per core). A worker that dies
    (killed, segfault) raises :class:`SimulationError` naming the tasks that did not finish,
    using ``label`` to name them.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs == 0 or jobs < -1:
        raise ConfigError(f"jobs must be a positive integer or -1 (all cores), got {jobs!r}")
    tasks = list(tasks)
    if jobs == 1 or len(tasks) <= 1:
        for number, task in enumerate(tasks):
            yield number, function(*task)
        return
    from joblib import Parallel, delayed
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    runner = Parallel(n_jobs=jobs, backend=backend, return_as="generator_unordered")
    unfinished = set(range(len(tasks)))
    try:
        for number, result in runner(
            delayed(_call)(function, number, task) for number, task in enumerate(tasks)
        ):
            unfinished.discard(number)
            yield number, result
    except TerminatedWorkerError as error:
        names = [label(tasks[number]) for number in sorted(unfinished)]
        raise SimulationError(
            f"a worker process died; unfinished: {', '.join(names[:8])}"
            f"{' …' if len(names) > 8 else ''} ({str(error).splitlines()[0]})"
        ) from None


def _call(
    function: Callable[..., Result], number: int, task: tuple[Any, ...]
) -> tuple[int, Result]:
    try:
        return number, function(*task)
    except CircuitnnError:
        raise
    except Exception as error:
        raise SimulationError(
            f"task failed in a worker: {type(error).__name__}: {error}"
        ) from error
