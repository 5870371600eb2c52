"""Monte Carlo sampling of process variation, reproducible per sample.

Draw *j* of sample *i* is a pure function of (seed, scope, row, parameter name), computed with a
counter-based generator (SplitMix64 finalizer over a 64-bit key), so the parameter table of sample
*i* never depends on how many samples, workers or chunks there are. Global (die-to-die) draws use
the chip index ``i // chip_size`` as row, so all neurons of one chip share them; local (mismatch)
draws use ``i``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

from circuitnn.errors import ConfigError
from circuitnn.neuron.spec import Distribution, NeuronSpec, Variation
from circuitnn.neuron.units import shown

MAX_INSTANCES = 100_000_000  # Monte Carlo instances of one family (its parameter table alone: GBs)


_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


@dataclass(frozen=True)
class MonteCarlo:
    """How many instances to draw and how.

    ``n`` instances; ``seed`` fixes every draw; ``chip_size`` neurons share one die-to-die (global)
    draw (1 = every instance is its own die); ``corner`` names a process corner of the spec whose
    offsets shift the nominal values before variation.
    """

    n: int
    seed: int = 0
    chip_size: int = 1
    corner: str | None = None

    def __post_init__(self) -> None:
        for name in ("n", "seed", "chip_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise ConfigError(f"MonteCarlo.{name} must be an integer, got {value!r}")
        if not 1 <= self.n <= MAX_INSTANCES:
            raise ConfigError(
                f"MonteCarlo.n must be from 1 to {MAX_INSTANCES:,} instances, got {shown(self.n)}"
            )
        if not 0 <= self.seed < 2**63:
            raise ConfigError(f"MonteCarlo.seed must be in [0, 2**63), got {self.seed}")
        if self.chip_size < 1:
            raise ConfigError(f"MonteCarlo.chip_size must be at least 1, got {self.chip_size}")


@dataclass(frozen=True)
class ParameterTable:
    """Sampled parameters of instances ``start``…``start+len-1``: ``values`` (N×P, SI units)."""

    names: tuple[str, ...]
    values: np.ndarray
    index: np.ndarray
    chip: np.ndarray

    def __len__(self) -> int:
        return len(self.index)

    def column(self, name: str) -> np.ndarray:
        """Values of one parameter across instances."""
        return self.values[:, self.names.index(name)]

    def rows(self, selection: slice | np.ndarray) -> ParameterTable:
        """The sub-table of the selected rows."""
        return ParameterTable(
            self.names, self.values[selection], self.index[selection], self.chip[selection]
        )


def _splitmix(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK
        x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK
        x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK
        return x ^ (x >> np.uint64(31))


def _name_key(text: str) -> np.uint64:
    return np.uint64(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little"))


def uniforms(seed: int, stream: str, rows: np.ndarray) -> np.ndarray:
    """Uniform draws in (0, 1), one per row: a pure function of (seed, stream, row)."""
    key = _splitmix(np.uint64(seed) ^ _name_key(stream))
    with np.errstate(over="ignore"):
        mixed = _splitmix(_splitmix(rows.astype(np.uint64) ^ key) + key)
    return ((mixed >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


def standard_normals(seed: int, stream: str, rows: np.ndarray) -> np.ndarray:
    """Standard normal draws, one per row (inverse-CDF of :func:`uniforms`)."""
    return ndtri(uniforms(seed, stream, rows))


def _varied(
    values: np.ndarray,
    dist: Distribution,
    u: np.ndarray,
    nominal: dict[str, float],
    variation: Variation,
) -> np.ndarray:
    """``values`` varied by ``dist`` with the uniform draws ``u``, each from the distribution
    truncated to the draws that keep the value within the variation's min/max (inverse CDF of
    the truncated distribution: the draws stay a pure function of the row)."""
    low = -np.inf if variation.minimum is None else variation.minimum
    high = np.inf if variation.maximum is None else variation.maximum
    if dist.distribution == "lognormal":
        assert dist.relative is not None
        if dist.relative == 0:
            return values
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.where(low > 0, np.log(low / values), -np.inf) / dist.relative
            b = np.log(high / values) / dist.relative
        return values * np.exp(dist.relative * _truncated_normal(u, a, b))
    sigma = dist.absolute_sigma(nominal[variation.parameter], nominal)
    if sigma == 0:
        return values
    if dist.distribution == "uniform":
        half = np.sqrt(3.0) * sigma
        if np.isneginf(low) and np.isposinf(high):
            return values + sigma * (np.sqrt(3.0) * (2.0 * u - 1.0))
        lower = np.maximum(values - half, low)
        upper = np.minimum(values + half, high)
        return lower + u * (upper - lower)
    if np.isneginf(low) and np.isposinf(high):
        return values + sigma * ndtri(u)
    return values + sigma * _truncated_normal(u, (low - values) / sigma, (high - values) / sigma)


def _truncated_normal(u: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Standard normal draws (inverse CDF of ``u``) truncated to [a, b] (arrays; ±inf: none)."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    if np.all(np.isneginf(a)) and np.all(np.isposinf(b)):
        return ndtri(u)
    from scipy.stats import truncnorm  # (scipy.stats takes half a second to import: only here)

    return truncnorm.ppf(u, a, b)


def nominal_table(spec: NeuronSpec, corner: str | None = None) -> ParameterTable:
    """A one-row table holding the nominal (unvaried) circuit, index -1."""
    nominal = spec.nominal(corner)
    values = np.array([[nominal[n] for n in spec.parameter_names]], dtype=np.float64)
    return ParameterTable(spec.parameter_names, values, np.array([-1]), np.array([-1]))


def sample_parameters(
    spec: NeuronSpec, mc: MonteCarlo, start: int = 0, stop: int | None = None
) -> ParameterTable:
    """Parameter table of instances ``start``…``stop-1`` of the Monte Carlo run ``mc``.

    Values = nominal (+ corner offsets), then the global variation of the instance's chip, then the
    instance's local mismatch. Pelgrom σ uses the nominal W and L of the spec.
    """
    stop = mc.n if stop is None else stop
    if not 0 <= start <= stop <= mc.n:
        raise ConfigError(f"instance range [{start}, {stop}) outside 0…{mc.n}")
    nominal = spec.nominal(mc.corner)
    names = spec.parameter_names
    index = np.arange(start, stop, dtype=np.int64)
    chip = index // mc.chip_size
    table = np.tile(np.array([nominal[n] for n in names], dtype=np.float64), (len(index), 1))
    for variation in spec.variations:
        column = names.index(variation.parameter)
        for scope, dist, rows in (
            ("global", variation.global_, chip),
            ("local", variation.local, index),
        ):
            if dist is None:
                continue
            u = uniforms(mc.seed, f"{scope}/{variation.parameter}", rows)
            table[:, column] = _varied(table[:, column], dist, u, nominal, variation)
    return ParameterTable(names=names, values=table, index=index, chip=chip)
