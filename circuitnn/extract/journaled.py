"""Run chunk tasks in worker processes, journaling each result as it arrives, with progress.

The one loop behind every extraction (DC sweep, noise, AC, step): tasks already in the journal
are not run again, so a killed run resumes where it stopped. :func:`stream_journaled` hands each
result on as soon as it is journaled (one chunk in memory at a time).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

import numpy as np

from circuitnn.extract.parallel import run_tasks
from circuitnn.store.journal import Journal

_OVERALL: ContextVar[Any] = ContextVar("circuitnn_overall_progress", default=None)


@contextlib.contextmanager
def overall_progress(bar: Any) -> Iterator[None]:
    """Advance ``bar`` (``update(instances)``) instead of a bar per loop, e.g. one bar over a
    whole campaign, for the loops run inside this context."""
    token = _OVERALL.set(bar)
    try:
        yield
    finally:
        _OVERALL.reset(token)


def stream_journaled(
    function: Callable[..., Any],
    tasks: list[tuple[str, tuple[Any, ...]]],
    sizes: list[int],
    journal: Journal | None,
    options: Any,
    label: str,
    describe: Callable[[tuple[Any, ...]], str] | None = None,
    save: Callable[[str, dict[str, np.ndarray]], None] | None = None,
) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """Yield ``(task number, arrays)`` for every task: first those already journaled (read one at
    a time), then the others as they finish in the workers (each journaled before it is yielded).

    ``function`` returns a dict of arrays or an object with ``to_arrays()``; ``tasks`` are
    ``(journal name, arguments of function)``; ``sizes`` their instance counts (for the progress
    bar); ``options`` a :class:`~circuitnn.extract.options.RunOptions` (``jobs``, ``backend``,
    ``scheduler``, ``progress``); ``describe`` names a task's arguments in errors (default: its
    journal name). Inside :func:`overall_progress` that bar advances instead of this loop's own.
    ``save(name, arrays)`` journals a finished task instead of ``journal.save_arrays`` (e.g. later,
    in a thread of its own: a task whose entry a killed run did not write is run again).
    """
    bar = _OVERALL.get()
    own = bar is None
    if own:
        bar = progress_bar(sum(sizes), 0, label, options.progress)
    failed = 0
    todo: list[int] = []
    try:
        for number, (name, _) in enumerate(tasks):
            saved = journal.load_arrays(name) if journal is not None else None
            if saved is None:
                todo.append(number)
                continue
            failed += _failures(saved)
            bar.update(sizes[number])
            yield number, saved
        names = {id(tasks[number][1]): tasks[number][0] for number in todo}
        for position, result in run_tasks(
            function,
            [tasks[number][1] for number in todo],
            options.jobs,
            options.backend,
            label=describe or (lambda task: f"{label}: {names.get(id(task), 'chunk')}"),
            scheduler=getattr(options, "scheduler", None),
        ):
            number = todo[position]
            arrays = result if isinstance(result, dict) else result.to_arrays()
            if save is not None:
                save(tasks[number][0], arrays)
            elif journal is not None:
                journal.save_arrays(tasks[number][0], arrays)
            failed += _failures(arrays)
            bar.update(sizes[number])
            if own:
                bar.set_postfix(failed=failed)
            yield number, arrays
    finally:
        if own:
            bar.close()


def _failures(arrays: dict[str, np.ndarray]) -> int:
    return int(np.count_nonzero(arrays["status"] != 1))


def progress_bar(
    total: int, initial: int, name: str, enabled: bool, leave: bool = False, unit: str = "inst"
) -> Any:
    """A tqdm progress bar over instances (disabled when ``enabled`` is false; ``leave`` keeps
    its last line, with the elapsed time and rate, on the terminal)."""
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=initial,
        desc=name,
        unit=unit,
        disable=not enabled,
        leave=leave,
        dynamic_ncols=True,
    )
