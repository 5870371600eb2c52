"""How an extraction runs (:class:`RunOptions`): workers, chunking, engine, timeout, backend.

None of it changes the numbers beyond solver tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass

from circuitnn.errors import ConfigError
from circuitnn.extract.parallel import check_backend
from circuitnn.neuron.units import shown
from circuitnn.spice.engines import DEFAULT_ENGINE, available_engines

DEFAULT_CHUNK_SIZE = 250


MAX_JOBS = 1024  # local worker processes (more would exhaust the machine before any run)


MAX_CHUNK_SIZE = 100_000  # instances in one ngspice run (its cost per instance rises past ~500)


# The longest timeout (s) per ngspice run: about 11.6 days. The subprocess engine's wait polls
# with a timeout in milliseconds that must fit a C int (at most 24.8 days); beyond, every chunk
# would fail with an OverflowError instead of running.
MAX_TIMEOUT = 1e6


@dataclass(frozen=True)
class RunOptions:
    """How to run an extraction (none of it changes the results beyond solver tolerance).

    ``jobs`` worker processes (-1 = all cores); ``chunk_size`` instances per ngspice run (fixed, so
    results do not depend on ``jobs``); ``engine`` "subprocess" or "shared"; ``timeout`` seconds per
    ngspice run; ``backend`` "loky" (local processes), "dask" or "ray" (bit-identical results on
    each); ``scheduler`` the address of an existing dask scheduler or Ray cluster (default: a
    local cluster of ``jobs`` worker processes); ``progress`` shows a progress bar;
    ``self_check`` instances of every chunk are simulated alone and compared with their batched
    curves (a chunk that deviates by more than the simulator tolerance is simulated instance by
    instance), so batching never changes a result beyond that tolerance.
    """

    jobs: int = 1
    chunk_size: int = DEFAULT_CHUNK_SIZE
    engine: str = DEFAULT_ENGINE
    timeout: float = 300.0
    backend: str = "loky"
    progress: bool = True
    scheduler: str | None = None
    self_check: int = 1

    def __post_init__(self) -> None:
        if (
            isinstance(self.chunk_size, bool)
            or not isinstance(self.chunk_size, int)
            or self.chunk_size < 1
        ):
            raise ConfigError(f"chunk_size must be a positive integer, got {self.chunk_size!r}")
        if self.chunk_size > MAX_CHUNK_SIZE:
            raise ConfigError(
                f"chunk_size must be at most {MAX_CHUNK_SIZE} instances per ngspice run, got "
                f"{shown(self.chunk_size)}"
            )
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
