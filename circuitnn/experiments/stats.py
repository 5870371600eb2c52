"""Effect sizes with confidence intervals over replicates, and the rule that turns an interval
into a verdict (the statistics every experiment's findings are decided by).

An experiment runs R independent *replicates* (seeds ``seed, seed + 1, …``: a new data split,
initialization, chip and noise draws each; the circuit families stay the same). A claim is tested
through one or more *effects*, each estimated from the R per-replicate values with a confidence
interval:

- :func:`mean_effect`: the mean of per-replicate values (one-sample t interval,
  ``scipy.stats.ttest_1samp``);
- :func:`paired_effect`: the mean of paired differences ``a − b`` (paired t interval,
  ``scipy.stats.ttest_rel``), for two conditions measured on the same replicates;
- :func:`ratio_effect`: the geometric mean of paired ratios ``a / b`` (t interval of the mean log
  ratio, exponentiated), for positive quantities compared by factor; no effect is 1;
- :func:`log_mean_effect`: the geometric mean of positive values (t interval on the log scale);
- :func:`bootstrap_effect`: any statistic of the replicates (``scipy.stats.bootstrap``, BCa), for
  statistics no interval formula fits (e.g. a mean of rank correlations, bounded in [−1, 1]).

The verdicts — reproduced, contradicted, inconclusive — are decided from these intervals by
:mod:`circuitnn.experiments.verdicts`.

A quantity that cannot be estimated (too few replicates, a non-finite or non-positive value where
a logarithm is needed) gives an :class:`Effect` whose ``note`` says why; its verdict is
inconclusive and the note is printed with it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from circuitnn.errors import ConfigError

LEVEL = 0.95  # confidence level of a directional claim's interval
ALPHA = 1.0 - LEVEL
EQUIVALENCE_LEVEL = 0.90  # TOST at 5 % per side reads the 90 % interval
BOOTSTRAP_RESAMPLES = 4999


Interval = Callable[[float], tuple[float, float]]


@dataclass(frozen=True)
class Effect:
    """An effect size: ``estimate`` with its ``low`` … ``high`` interval at ``level``, from
    ``replicates`` per-replicate values by ``method``; ``note`` says why it could not be estimated
    (then the numbers are NaN). ``interval(level)`` recomputes the interval at another level."""

    label: str
    estimate: float
    low: float
    high: float
    replicates: int
    method: str
    level: float = LEVEL
    note: str = ""
    interval: Interval | None = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        """Whether the effect was estimated (no ``note``)."""
        return not self.note

    def at(self, level: float) -> Effect:
        """The same effect with its interval at ``level``."""
        if not self.ok or self.interval is None or level == self.level:
            return self
        low, high = self.interval(level)
        return Effect(
            self.label,
            self.estimate,
            low,
            high,
            self.replicates,
            self.method,
            level,
            interval=self.interval,
        )

    def text(self, digits: int = 3) -> str:
        """``0.12 [0.05, 0.19]`` (or the note)."""
        if not self.ok:
            return f"not estimated ({self.note})"
        return f"{_g(self.estimate, digits)} [{_g(self.low, digits)}, {_g(self.high, digits)}]"

    def row(self) -> dict[str, Any]:
        """The effect as a table row."""
        return {
            "effect": self.label,
            "estimate": self.estimate,
            "ci_low": self.low,
            "ci_high": self.high,
            "level": self.level,
            "replicates": self.replicates,
            "method": self.method,
            "note": self.note,
        }


def _g(value: float, digits: int) -> str:
    return f"{value:.{digits}g}" if math.isfinite(value) else str(value)


def _failed(label: str, count: int, method: str, note: str, level: float) -> Effect:
    nan = math.nan
    return Effect(label, nan, nan, nan, count, method, level, note=note)


def _values(values: Sequence[float] | np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).reshape(-1)


def _problem(values: np.ndarray, positive: bool = False) -> str:
    if values.size < 2:
        return f"{values.size} replicate(s): an interval needs at least 2"
    bad = ~np.isfinite(values)
    if bad.any():
        return f"{int(bad.sum())} of {values.size} replicate values not finite"
    if positive and (values <= 0).any():
        return f"{int((values <= 0).sum())} of {values.size} values not positive (log scale)"
    return ""


def _t_interval(values: np.ndarray) -> Interval:
    """Level → the one-sample t interval of the mean of ``values`` (a point when they agree)."""

    def interval(level: float) -> tuple[float, float]:
        if float(np.ptp(values)) == 0.0:
            return float(values[0]), float(values[0])
        found = stats.ttest_1samp(values, 0.0).confidence_interval(level)
        return float(found.low), float(found.high)

    return interval


def mean_effect(values: Sequence[float] | np.ndarray, label: str, level: float = LEVEL) -> Effect:
    """The mean of per-replicate ``values`` with its one-sample t interval."""
    data = _values(values)
    problem = _problem(data)
    if problem:
        return _failed(label, data.size, "t", problem, level)
    interval = _t_interval(data)
    low, high = interval(level)
    return Effect(label, float(data.mean()), low, high, data.size, "t", level, interval=interval)


def paired_effect(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    label: str,
    level: float = LEVEL,
) -> Effect:
    """The mean paired difference ``a − b`` over replicates with its paired t interval
    (``scipy.stats.ttest_rel``)."""
    x, y = _values(a), _values(b)
    if x.shape != y.shape:
        raise ConfigError(f"{label}: paired values differ in number ({x.size} vs {y.size})")
    problem = _problem(x) or _problem(y)
    if problem:
        return _failed(label, x.size, "paired t", problem, level)
    difference = x - y

    def interval(at: float) -> tuple[float, float]:
        if float(np.ptp(difference)) == 0.0:
            return float(difference[0]), float(difference[0])
        found = stats.ttest_rel(x, y).confidence_interval(at)
        return float(found.low), float(found.high)

    low, high = interval(level)
    return Effect(
        label, float(difference.mean()), low, high, x.size, "paired t", level, interval=interval
    )


def _exp_interval(log_interval: Interval) -> Interval:
    def interval(level: float) -> tuple[float, float]:
        low, high = log_interval(level)
        return math.exp(low), math.exp(high)

    return interval


def ratio_effect(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    label: str,
    level: float = LEVEL,
) -> Effect:
    """The geometric mean of paired ratios ``a / b`` (positive values) with the t interval of the
    mean log ratio, exponentiated; no effect is a ratio of 1."""
    x, y = _values(a), _values(b)
    if x.shape != y.shape:
        raise ConfigError(f"{label}: paired values differ in number ({x.size} vs {y.size})")
    problem = _problem(x, positive=True) or _problem(y, positive=True)
    if problem:
        return _failed(label, x.size, "log-ratio t", problem, level)
    logs = np.log(x) - np.log(y)
    interval = _exp_interval(_t_interval(logs))
    low, high = interval(level)
    estimate = math.exp(float(logs.mean()))
    return Effect(label, estimate, low, high, x.size, "log-ratio t", level, interval=interval)


def log_mean_effect(
    values: Sequence[float] | np.ndarray, label: str, level: float = LEVEL
) -> Effect:
    """The geometric mean of positive per-replicate ``values`` with the t interval of the mean
    log, exponentiated."""
    data = _values(values)
    problem = _problem(data, positive=True)
    if problem:
        return _failed(label, data.size, "log t", problem, level)
    logs = np.log(data)
    interval = _exp_interval(_t_interval(logs))
    low, high = interval(level)
    return Effect(
        label, math.exp(float(logs.mean())), low, high, data.size, "log t", level, interval=interval
    )


def bootstrap_effect(
    samples: Sequence[Sequence[float] | np.ndarray],
    statistic: Callable[..., float],
    label: str,
    *,
    level: float = LEVEL,
    seed: int = 0,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> Effect:
    """``statistic(*samples)`` with its BCa bootstrap interval (``scipy.stats.bootstrap``,
    resampling replicates; the samples are paired: one value of each per replicate)."""
    arrays = [_values(sample) for sample in samples]
    sizes = {array.size for array in arrays}
    if len(sizes) != 1:
        raise ConfigError(f"{label}: paired samples differ in length ({sorted(sizes)})")
    count = arrays[0].size
    problem = next((p for p in (_problem(a) for a in arrays) if p), "")
    if not problem and count < 3:
        problem = f"{count} replicates: a bootstrap interval needs at least 3"
    method = "bootstrap BCa"
    if problem:
        return _failed(label, count, method, problem, level)
    estimate = float(statistic(*arrays))

    def interval(at: float) -> tuple[float, float]:
        if all(float(np.ptp(a)) == 0.0 for a in arrays):
            return estimate, estimate
        with np.errstate(invalid="ignore", divide="ignore"):
            found = stats.bootstrap(
                tuple(arrays),
                statistic,
                paired=True,
                vectorized=False,
                confidence_level=at,
                n_resamples=resamples,
                method="BCa",
                random_state=np.random.default_rng(seed),
            ).confidence_interval
        return float(found.low), float(found.high)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        low, high = interval(level)
    if not (math.isfinite(low) and math.isfinite(high)):
        return _failed(label, count, method, "the bootstrap interval is undefined", level)
    return Effect(label, estimate, low, high, count, method, level, interval=interval)


__all__ = [
    "EQUIVALENCE_LEVEL",
    "LEVEL",
    "Effect",
    "bootstrap_effect",
    "log_mean_effect",
    "mean_effect",
    "paired_effect",
    "ratio_effect",
]
