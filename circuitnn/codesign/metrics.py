"""Per-design statistics over Monte Carlo chips (scipy.stats), and energy and latency of a chip.

Energy and latency of one inference on one chip, from the simulated instances its neurons are:
the hidden layers settle one after another; layer *l* is done when its slowest neuron has
settled (``T_l = max settling time``) and all its neurons burn their static power meanwhile, so

    latency = Σ_l T_l,        energy = Σ_l T_l · Σ_{i ∈ l} P_i

with ``P_i`` the neuron's mean static power over its input sweep (``descriptors["mean_power"]``)
and the settling time of its full-range input step (the speed analysis, to 2 %). Not counted:
the weights (synapses, crossbars, their drivers), input DACs and output ADCs, the linear readout
layer, bias generation outside the neuron's netlist, leakage while idle, and the energy of
charging the next stage beyond what the static supply current delivers during settling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from circuitnn.errors import ConfigError

CONFIDENCE = 0.95
RESAMPLES = 2000


@dataclass(frozen=True)
class Estimate:
    """A value with its 95 % confidence interval ``[low, high]``."""

    value: float
    low: float
    high: float

    def columns(self, name: str) -> dict[str, float]:
        """``{name: value, name_ci_low: low, name_ci_high: high}``."""
        return {name: self.value, f"{name}_ci_low": self.low, f"{name}_ci_high": self.high}


def bootstrap(values: np.ndarray, statistic: str, seed: int) -> Estimate:
    """``statistic`` (``mean`` or ``p5`` / ``p95``: 5th / 95th percentile) of ``values`` with a
    percentile-bootstrap 95 % CI (scipy.stats.bootstrap, 2000 resamples, seeded)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) < 2 or not np.all(np.isfinite(values)):
        raise ConfigError(f"a {statistic} over chips needs at least 2 finite values")
    if statistic == "mean":
        function = np.mean
    elif statistic in ("p5", "p95"):
        q = 5.0 if statistic == "p5" else 95.0

        def function(sample: np.ndarray, axis: int = -1) -> np.ndarray:
            return np.percentile(sample, q, axis=axis)
    else:
        raise ConfigError(f"unknown statistic {statistic!r}")
    value = float(function(values))
    if np.ptp(values) == 0:  # every chip alike: the interval is the value
        return Estimate(value, value, value)
    result = stats.bootstrap(
        (values,),
        function,
        confidence_level=CONFIDENCE,
        n_resamples=RESAMPLES,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return Estimate(value, float(interval.low), float(interval.high))


def yield_estimate(passed: np.ndarray) -> Estimate:
    """Fraction of chips that pass, with the Wilson score 95 % interval
    (scipy.stats.binomtest)."""
    passed = np.asarray(passed, dtype=bool)
    count, total = int(passed.sum()), len(passed)
    if total == 0:
        raise ConfigError("a yield needs at least one chip")
    interval = stats.binomtest(count, total).proportion_ci(CONFIDENCE, method="wilson")
    return Estimate(count / total, float(interval.low), float(interval.high))


def midpoint_estimate(level: float, uncertainty: float) -> Estimate:
    """A noise midpoint with a normal-approximation 95 % interval from its uncertainty (the
    bisection bracket and the metric's standard error, see :func:`circuitnn.evaluate.midpoint`),
    floored at zero."""
    half = float(stats.norm.ppf(0.5 + CONFIDENCE / 2)) * uncertainty
    return Estimate(level, max(level - half, 0.0), level + half)


def chip_energy(
    layers: list[np.ndarray], power: np.ndarray, settling: np.ndarray
) -> tuple[float, float]:
    """``(energy J, latency s)`` of one inference on a chip whose hidden layer *l* holds the
    family instances ``layers[l]``; ``power`` (N,) W and ``settling`` (N,) s per instance."""
    energy = latency = 0.0
    for instances in layers:
        times = settling[instances]
        watts = power[instances]
        if not (np.all(np.isfinite(times)) and np.all(np.isfinite(watts))):
            bad = instances[~(np.isfinite(times) & np.isfinite(watts))]
            raise ConfigError(
                f"instances {bad[:5].tolist()} of the chip have no settling time or power "
                "(their speed analysis failed): energy and latency cannot be computed"
            )
        slowest = float(times.max())
        latency += slowest
        energy += slowest * float(watts.sum())
    if not (math.isfinite(energy) and math.isfinite(latency)):
        raise ConfigError("energy or latency is not finite")
    return energy, latency
