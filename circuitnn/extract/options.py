"""How an extraction runs (:class:`RunOptions`): workers, chunking, engine, timeout, backend.

None of it changes the numbers beyond solver tolerance.

The automatic chunk size (:meth:`RunOptions.resolved`) follows a measured model of ngspice's
cost per instance (level-1 diff pair, ngspice 39, CPU time, bit-identical results): one process
start and the chunk's self-check instance are paid per chunk, so the cost per instance falls
with the chunk size up to a few dozen instances; past about 100 instances (DC sweep) or 50
(noise: nine operating points, a noise and an AC run per bias, each over every device of the
chunk) it rises again as the run outgrows the processor's caches (DC: 0.53 ms at 50 instances,
0.50 at 100, 0.57 at 250; noise: 3.9 ms at 50, 4.0 at 100, 4.8 at 250). Reading the realized
device parameters (one ``.op`` per chunk) costs ngspice more per instance in bigger chunks, yet
a whole extraction with them is still fastest with chunks of 100, with 1 job and with 2
(``benchmarks/bench_extract.py``, its chunk-size lines: 3.26, 2.99 and 3.67 s for 4000
instances with 1 job at 50, 100 and 250). So a chunk holds
:data:`DC_CHUNK_SIZE` (:data:`NOISE_CHUNK_SIZE`) instances, fewer when that leaves a worker
without a chunk: a family is cut into at least ``jobs`` chunks whenever it has that many
instances. The chunk layout therefore depends on N, ``jobs`` and these sizes only (nothing
timed at run time), and a family's results are bit-identical for the same layout; across
layouts they agree to the simulator's tolerance (every batched curve is checked against its
isolated run), which is why the chunk size is not in the family key.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass

from circuitnn.errors import ConfigError
from circuitnn.extract.parallel import check_backend
from circuitnn.neuron.units import shown
from circuitnn.spice.engines import DEFAULT_ENGINE, available_engines

DC_CHUNK_SIZE = 100  # instances per DC-sweep run (see the module docstring)
NOISE_CHUNK_SIZE = 50  # instances per noise run


def automatic_chunk_size(n: int, workers: int, best: int) -> int:
    """Instances per chunk for a family of ``n`` on ``workers`` workers: ``best``, or fewer so
    that every worker gets a chunk (⌈n / workers⌉), at least 1."""
    return max(1, min(best, math.ceil(n / max(1, workers))))


MAX_JOBS = 1024  # local worker processes (more would exhaust the machine before any run)


MAX_CHUNK_SIZE = 100_000  # instances in one ngspice run (its cost per instance rises past ~500)


# The longest timeout (s) per ngspice run: about 11.6 days. The subprocess engine's wait polls
# with a timeout in milliseconds that must fit a C int (at most 24.8 days); beyond, every chunk
# would fail with an OverflowError instead of running.
MAX_TIMEOUT = 1e6


@dataclass(frozen=True)
class RunOptions:
    """How to run an extraction (none of it changes the results beyond solver tolerance).

    ``jobs`` worker processes (-1 = all cores); ``chunk_size`` instances per ngspice run (None:
    automatic, see :meth:`resolved`; a number is used as given); ``noise_chunk_size`` the same
    for the noise analysis (None: ``chunk_size`` if given, else automatic); ``engine``
    "subprocess" or "shared"; ``timeout`` seconds per ngspice run; ``backend`` "loky" (local
    processes), "dask" or "ray" (bit-identical results on each); ``scheduler`` the address of an
    existing dask scheduler or Ray cluster (default: a local cluster of ``jobs`` worker
    processes); ``progress`` shows a progress bar; ``self_check`` instances of every chunk are
    simulated alone and compared with their batched curves (a chunk that deviates by more than
    the simulator tolerance is simulated instance by instance), so batching never changes a
    result beyond that tolerance.
    """

    jobs: int = 1
    chunk_size: int | None = None
    engine: str = DEFAULT_ENGINE
    timeout: float = 300.0
    backend: str = "loky"
    progress: bool = True
    scheduler: str | None = None
    self_check: int = 1
    noise_chunk_size: int | None = None

    def __post_init__(self) -> None:
        for name in ("chunk_size", "noise_chunk_size"):
            _check_chunk_size(name, getattr(self, name))
        if self.engine not in available_engines():
            raise ConfigError(
                f"engine {self.engine!r} must be one of {', '.join(available_engines())}"
            )
        timeout = self.timeout
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not 0 < timeout <= MAX_TIMEOUT
        ):
            raise ConfigError(
                f"timeout must be positive seconds, at most {MAX_TIMEOUT:g}, got {shown(timeout)}"
            )
        jobs = self.jobs
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs == 0 or jobs < -1:
            raise ConfigError(f"jobs must be a positive integer or -1 (all cores), got {jobs!r}")
        if jobs > MAX_JOBS:
            raise ConfigError(
                f"jobs must be at most {MAX_JOBS} worker processes, got {shown(jobs)} "
                "(a cluster's size comes from --scheduler, not --jobs)"
            )
        check_backend(self.backend, self.scheduler)
        checks = self.self_check
        if isinstance(checks, bool) or not isinstance(checks, int) or not 1 <= checks <= 64:
            raise ConfigError(f"self_check must be an integer from 1 to 64, got {shown(checks)}")

    @property
    def workers(self) -> int:
        """Worker processes the chunks are shared among (``jobs``; all cores for -1)."""
        return (os.cpu_count() or 1) if self.jobs == -1 else self.jobs

    def resolved(self, n: int) -> RunOptions:
        """These options with both chunk sizes fixed for a family of ``n`` instances: the given
        ones, else :data:`DC_CHUNK_SIZE` and :data:`NOISE_CHUNK_SIZE` cut down so that each of
        the :attr:`workers` gets a chunk (:func:`automatic_chunk_size`)."""
        chunk = self.chunk_size or automatic_chunk_size(n, self.workers, DC_CHUNK_SIZE)
        noise = self.noise_chunk_size or self.chunk_size
        noise = noise or automatic_chunk_size(n, self.workers, NOISE_CHUNK_SIZE)
        return dataclasses.replace(self, chunk_size=chunk, noise_chunk_size=noise)


def _check_chunk_size(name: str, size: object) -> None:
    if size is None:
        return
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(f"{name} must be a positive integer, got {size!r}")
    if size > MAX_CHUNK_SIZE:
        raise ConfigError(
            f"{name} must be at most {MAX_CHUNK_SIZE} instances per ngspice run, got {shown(size)}"
        )
