"""Run chunk tasks in worker processes, journaling each result as it arrives, with progress.

The one loop behind every extraction (DC sweep, noise, AC, step): tasks already in the journal
are not run again, so a killed run resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from circuitnn.parallel import run_tasks
from circuitnn.store import Journal


def run_journaled(
    function: Callable[..., Any],
    tasks: list[tuple[str, tuple[Any, ...]]],
    sizes: list[int],
    journal: Journal | None,
    options: Any,
    label: str,
    describe: Callable[[tuple[Any, ...]], str] | None = None,
) -> list[dict[str, np.ndarray]]:
    """Run named tasks in parallel, journaling each result; reuse results already journaled.

    ``function`` returns a dict of arrays or an object with ``to_arrays()``; ``tasks`` are
    ``(journal name, arguments of function)``; ``sizes`` their instance counts (for
    the progress bar); ``options`` a :class:`~circuitnn.pipeline.RunOptions`; ``describe`` names
    a task's arguments in errors (default: its journal name). Results come back in task order.
    """
    results: dict[str, dict[str, np.ndarray]] = {}
    if journal is not None:
        for name, _ in tasks:
            saved = journal.load_arrays(name)
            if saved is not None:
                results[name] = saved
    todo = [
        (name, arguments, size)
        for (name, arguments), size in zip(tasks, sizes, strict=True)
        if name not in results
    ]
    names = {id(arguments): name for name, arguments, _ in todo}
    bar = progress_bar(sum(sizes), sum(sizes) - sum(t[2] for t in todo), label, options.progress)
    try:
        for number, arrays in run_tasks(
            function,
            [t[1] for t in todo],
            options.jobs,
            options.backend,
            label=describe or (lambda task: f"{label}: {names.get(id(task), 'chunk')}"),
        ):
            name = todo[number][0]
            if not isinstance(arrays, dict):
                arrays = arrays.to_arrays()  # e.g. a DC ChunkResult
            if journal is not None:
                journal.save_arrays(name, arrays)
            results[name] = arrays
            bar.update(todo[number][2])
            failed = sum(int(np.count_nonzero(r["status"] != 1)) for r in results.values())
            bar.set_postfix(failed=failed)
    finally:
        bar.close()
    return [results[name] for name, _ in tasks]


def progress_bar(total: int, initial: int, name: str, enabled: bool):
    """A tqdm progress bar over instances (disabled when ``enabled`` is false)."""
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=initial,
        desc=name,
        unit="inst",
        disable=not enabled,
        leave=False,
        dynamic_ncols=True,
    )
