"""Randomness for the torch side: seeds and ``torch.Generator`` objects are passed in, not implied.

A *seed source* is an ``int`` seed, a CPU ``torch.Generator`` or ``None`` (torch's global RNG, so
``torch.manual_seed`` governs it). Noise modules hold a :class:`DeviceGenerators`: generators per
device, all seeded from the same integer, so a seeded module draws the same numbers every run (CPU
draws are reproducible bit for bit; CUDA draws are reproducible on CUDA).

torch fills normal numbers on the CPU with one serial generator (about 5 ns per number), which
would dominate vectorized Monte Carlo on a multi-core CPU. Large CPU fills are therefore split into
:data:`STREAMS` fixed slices, each with its own generator, filled in parallel threads when torch
may use several threads. The split depends only on the tensor's size, never on the thread count,
so the numbers are the same with 1 thread or 16.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

import torch

from circuitnn.errors import ConfigError

SeedLike = int | torch.Generator | None
STREAMS = 4  # parallel generator streams of a large CPU fill
PARALLEL_FILL = 1 << 17  # numbers from which a CPU fill is split into streams
_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=min(STREAMS, os.cpu_count() or 1))
    return _POOL


def derive_seed(seed: int, *keys: object) -> int:
    """A 63-bit seed that depends only on ``seed`` and ``keys`` (for per-layer / per-chip seeds)."""
    text = repr((int(seed), *keys)).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") >> 1


def cpu_generator(source: SeedLike, field: str = "generator") -> torch.Generator | None:
    """A CPU generator for ``source``: a new one seeded by an int, the given one, or None."""
    if source is None:
        return None
    if isinstance(source, torch.Generator):
        if source.device.type != "cpu":
            raise ConfigError(f"{field} must be a CPU torch.Generator, got one on {source.device}")
        return source
    if isinstance(source, bool) or not isinstance(source, int):
        raise ConfigError(f"{field} must be an int seed, a torch.Generator or None, got {source!r}")
    if not 0 <= source < 2**63:
        raise ConfigError(f"{field} must be in [0, 2**63), got {source}")
    generator = torch.Generator()
    generator.manual_seed(source)
    return generator


class DeviceGenerators:
    """Generators for every device a module runs on, seeded alike; ``seed=None`` → global RNG."""

    def __init__(self, seed: int | None = None) -> None:
        self._generators: dict[tuple[torch.device, int], torch.Generator] = {}
        self.seed = seed

    @property
    def seed(self) -> int | None:
        """The seed (None: torch's global RNG)."""
        return self._seed

    @seed.setter
    def seed(self, seed: int | None) -> None:
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ConfigError(f"seed must be an int or None, got {seed!r}")
        if seed is not None and not 0 <= seed < 2**63:
            raise ConfigError(f"seed must be in [0, 2**63), got {seed}")
        self._seed = seed
        self._generators.clear()

    def get(self, device: torch.device, stream: int = 0) -> torch.Generator | None:
        """The generator of ``stream`` on ``device`` (created on first use), or None for the global
        RNG."""
        if self._seed is None:
            return None
        key = (torch.device(device), stream)
        generator = self._generators.get(key)
        if generator is None:
            generator = torch.Generator(device=device)
            generator.manual_seed(self._seed if stream == 0 else derive_seed(self._seed, stream))
            self._generators[key] = generator
        return generator

    def normal(self, like: torch.Tensor, mean: float = 0.0, std: float = 1.0) -> torch.Tensor:
        """A new tensor shaped like ``like`` of normal numbers N(``mean``, ``std``²), allocated
        and filled in place (large CPU fills in parallel streams)."""
        out = torch.empty(like.shape, dtype=like.dtype, device=like.device)
        if out.device.type != "cpu" or out.numel() < PARALLEL_FILL:
            return out.normal_(mean, std, generator=self.get(out.device))
        if self._seed is None:
            seeds = torch.randint(0, 2**62, (STREAMS,)).tolist()  # from the global RNG
            generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        else:
            generators = [self.get(out.device, stream + 1) for stream in range(STREAMS)]
        parts = out.view(-1).chunk(STREAMS)

        def fill(index: int) -> None:
            parts[index].normal_(mean, std, generator=generators[index])

        if torch.get_num_threads() > 1:
            list(_pool().map(fill, range(len(parts))))
        else:
            for index in range(len(parts)):
                fill(index)
        return out

    def randn(self, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        """Standard normal numbers of ``shape`` with ``like``'s dtype and device."""
        return torch.randn(
            shape, dtype=like.dtype, device=like.device, generator=self.get(like.device)
        )
