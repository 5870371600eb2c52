"""The one torch-thread guard of the experiments and the main job: :func:`torch_threads`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from circuitnn.errors import ConfigError


@contextlib.contextmanager
def torch_threads(count: int = 1) -> Iterator[None]:
    """Within the block torch computes on ``count`` threads, and so do the BLAS / OpenMP pools
    numpy and scikit-learn use (through threadpoolctl, installed with scikit-learn); all are put
    back afterwards.

    The networks of the experiments are small: one thread is as fast as several, and far steadier
    on a busy machine, where idle-spinning worker threads slowed them tenfold (a full
    ``inhomogeneity`` run did not finish in 20 minutes on a loaded 2-core machine with torch's
    default threads, and took about a minute with one).
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError(f"threads must be an integer >= 1, got {count!r}")
    before = torch.get_num_threads()
    try:
        with contextlib.ExitStack() as stack:
            try:
                from threadpoolctl import threadpool_limits
            except ImportError:  # pragma: no cover - scikit-learn brings it
                pass
            else:  # limits the OpenMP pool torch shares too: set torch's count after it
                stack.enter_context(threadpool_limits(limits=count))
            torch.set_num_threads(count)
            yield
    finally:
        torch.set_num_threads(before)


__all__ = ["torch_threads"]
