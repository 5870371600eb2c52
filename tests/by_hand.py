"""Effect sizes, intervals and verdicts written out by hand (numpy and Student's t quantile), to
check each experiment's findings against its raw per-replicate tables without the experiments'
own statistics code (``circuitnn.experiments.stats`` / ``verdicts``)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
from scipy.stats import t as student_t

LEVEL = 0.95  # a directional or two-sided claim reads the 95 % interval
EQUIVALENCE_LEVEL = 0.90  # an equivalence claim: two one-sided tests at 5 %, the 90 % interval


def t_interval(values: Sequence[float], level: float = LEVEL) -> tuple[float, float, float]:
    """Mean of ``values`` and its t interval: mean ± t_{(1+level)/2, n−1} · s / √n."""
    x = np.asarray(values, dtype=np.float64)
    mean = float(x.mean())
    half = student_t.ppf((1 + level) / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    return mean, mean - half, mean + half


def geometric_interval(values: Sequence[float], level: float = LEVEL) -> tuple[float, float, float]:
    """Geometric mean of positive ``values`` and the t interval of their mean log, exponentiated."""
    mean, low, high = t_interval(np.log(np.asarray(values, dtype=np.float64)), level)
    return math.exp(mean), math.exp(low), math.exp(high)


def directional(low: float, high: float, claim: str, null: float) -> str:
    """A ``greater`` / ``less`` claim: reproduced when the interval lies on the claimed side of
    ``null``, contradicted when on the other, else inconclusive."""
    above, below = low > null, high < null
    if claim == "less":
        above, below = below, above
    return "reproduced" if above else "contradicted" if below else "inconclusive"


def equivalent(low: float, high: float, null: float, margin: float) -> str:
    """An equivalence claim on the 90 % interval: inside ``null ± margin`` reproduced, entirely
    outside contradicted."""
    if null - margin < low and high < null + margin:
        return "reproduced"
    if low > null + margin or high < null - margin:
        return "contradicted"
    return "inconclusive"


def every_part(parts: Sequence[tuple[str, str]]) -> str:
    """A claim of k parts that must all hold: ``parts`` are each part's verdict at its own level
    and at the Bonferroni level 1 − (1 − level)/k. Reproduced when every part is, contradicted
    when some part is at the Bonferroni level."""
    if all(plain == "reproduced" for plain, _ in parts):
        return "reproduced"
    if any(bonferroni == "contradicted" for _, bonferroni in parts):
        return "contradicted"
    return "inconclusive"


def bonferroni(level: float, parts: int) -> float:
    """The level each of ``parts`` parts is read at when one part can decide the claim."""
    return 1 - (1 - level) / parts


def assert_effect(effect: object, estimate: float, low: float, high: float) -> None:
    """The finding's effect (estimate and interval at its level) equals the one worked out by
    hand."""
    assert effect.ok, effect.note  # type: ignore[attr-defined]
    found = (effect.estimate, effect.low, effect.high)  # type: ignore[attr-defined]
    assert found == pytest.approx((estimate, low, high), rel=1e-9, abs=1e-12), (
        effect.label,  # type: ignore[attr-defined]
        found,
        (estimate, low, high),
    )
