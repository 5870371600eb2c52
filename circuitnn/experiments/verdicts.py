"""The rule that turns effect sizes with confidence intervals (:mod:`circuitnn.experiments.stats`)
into a claim's verdict: reproduced, contradicted or inconclusive.

:class:`Rule` decides an effect (:meth:`Rule.decide`) from its interval at level 95 %:
*reproduced* when the interval excludes no-effect on the claimed side, *contradicted* when it
excludes it on the other side, *inconclusive* otherwise — so under no effect each of the first two
happens with probability 2.5 % (for the t intervals exactly, when the per-replicate values are
normal). An *equivalence* claim ("equally robust") names a margin in advance and is decided like
two one-sided tests (TOST) at 5 %: the 90 % interval inside ``null ± margin`` is reproduced,
entirely outside it contradicted. A two-sided *difference* claim ("layers differ") is reproduced
when the 95 % interval excludes no-effect on either side (5 % of the time under no effect) and
contradicted when the 90 % interval lies within ``null ± margin``. A claim of several parts
(:func:`combine`) is reproduced when every part is (intersection–union test, no correction
needed) and contradicted when some part is contradicted at the Bonferroni level 1 − 0.05/k
(``"all"``); an existential claim ("some layer differs", ``"any"``) is reproduced when some part
is reproduced at the Bonferroni level and contradicted when every part is contradicted. Both
keep each false verdict at or below its single-part rate when no part has an effect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from circuitnn.errors import ConfigError
from circuitnn.experiments.stats import EQUIVALENCE_LEVEL, LEVEL, Effect


class Verdict(StrEnum):
    """The three outcomes of a claim."""

    REPRODUCED = "reproduced"
    CONTRADICTED = "contradicted"
    INCONCLUSIVE = "inconclusive"


CLAIMS = ("greater", "less", "equivalent", "differs")


@dataclass(frozen=True)
class Rule:
    """How an effect decides a claim. ``claim``: ``"greater"`` (the effect exceeds ``null``),
    ``"less"`` (below ``null``), ``"equivalent"`` (within ``null ± margin``, the margin fixed
    before the run) or ``"differs"`` (two-sided: reproduced when the 95 % interval excludes
    ``null`` on either side — 5 % of the time under no effect —, contradicted when the 90 %
    interval lies within ``null ± margin``)."""

    claim: Literal["greater", "less", "equivalent", "differs"]
    null: float = 0.0
    margin: float = 0.0

    def __post_init__(self) -> None:
        if self.claim not in CLAIMS:
            raise ConfigError(
                f"Rule.claim must be greater, less, equivalent or differs, got {self.claim!r}"
            )
        if self.claim in ("equivalent", "differs") and not self.margin > 0:
            raise ConfigError(f"an {self.claim} rule needs a margin > 0")

    @property
    def level(self) -> float:
        """The interval level the rule reads (95 %; 90 % for equivalence: TOST at 5 %)."""
        return EQUIVALENCE_LEVEL if self.claim == "equivalent" else LEVEL

    def describe(self) -> str:
        """``> 0``, ``< 1``, ``within 0 ± 0.05`` or ``≠ 1 (equal within ± 0.2)``."""
        if self.claim == "equivalent":
            return f"within {self.null:g} ± {self.margin:g}"
        if self.claim == "differs":
            return f"≠ {self.null:g} (same within ± {self.margin:g})"
        return f"{'>' if self.claim == 'greater' else '<'} {self.null:g}"

    def decide(self, effect: Effect) -> Verdict:
        """The verdict of ``effect``'s interval (recomputed at :attr:`level` if needed)."""
        if not effect.ok:
            return Verdict.INCONCLUSIVE
        if self.claim == "differs":
            if effect.at(self.level).low > self.null or effect.at(self.level).high < self.null:
                return Verdict.REPRODUCED
            inner = effect.at(EQUIVALENCE_LEVEL)
            if self.null - self.margin < inner.low and inner.high < self.null + self.margin:
                return Verdict.CONTRADICTED
            return Verdict.INCONCLUSIVE
        effect = effect.at(self.level)
        low, high = effect.low, effect.high
        if self.claim == "equivalent":
            lower, upper = self.null - self.margin, self.null + self.margin
            if lower < low and high < upper:
                return Verdict.REPRODUCED
            if low > upper or high < lower:
                return Verdict.CONTRADICTED
            return Verdict.INCONCLUSIVE
        above, below = low > self.null, high < self.null
        if self.claim == "less":
            above, below = below, above
        if above:
            return Verdict.REPRODUCED
        if below:
            return Verdict.CONTRADICTED
        return Verdict.INCONCLUSIVE


@dataclass(frozen=True)
class Check:
    """One part of a claim: an effect judged by a rule."""

    effect: Effect
    rule: Rule

    @property
    def verdict(self) -> Verdict:
        """This part's own verdict."""
        return self.rule.decide(self.effect)

    def text(self, digits: int = 3) -> str:
        """``label: 0.12 [0.05, 0.19] (R = 5, paired t; claim > 0) → reproduced``."""
        effect = self.effect.at(self.rule.level)
        if not effect.ok:
            return f"{effect.label}: {effect.text(digits)} → {self.verdict}"
        return (
            f"{effect.label}: {effect.text(digits)} ({effect.level:.0%} CI, "
            f"R = {effect.replicates}, {effect.method}; claim {self.rule.describe()}) "
            f"→ {self.verdict}"
        )

    def row(self) -> dict[str, Any]:
        """The check as a table row (effect at the rule's level, rule, verdict)."""
        return {
            **self.effect.at(self.rule.level).row(),
            "rule": self.rule.describe(),
            "verdict": str(self.verdict),
        }


def combine(checks: Sequence[Check], mode: Literal["all", "any"] = "all") -> Verdict:
    """The verdict of a claim made of ``checks`` (module docstring): ``"all"`` — every part must
    hold; ``"any"`` — some part must hold. The side that needs several parts to agree reads each
    part at 95 %; the side that one part can decide reads it at the Bonferroni level."""
    if not checks:
        raise ConfigError("a claim needs at least one check")
    if mode not in ("all", "any"):
        raise ConfigError(f"combine mode must be 'all' or 'any', got {mode!r}")
    count = len(checks)
    plain = [check.verdict for check in checks]
    if mode == "all":
        if all(v == Verdict.REPRODUCED for v in plain):
            return Verdict.REPRODUCED
        if any(_bonferroni(check, count) == Verdict.CONTRADICTED for check in checks):
            return Verdict.CONTRADICTED
        return Verdict.INCONCLUSIVE
    if any(_bonferroni(check, count) == Verdict.REPRODUCED for check in checks):
        return Verdict.REPRODUCED
    if all(v == Verdict.CONTRADICTED for v in plain):
        return Verdict.CONTRADICTED
    return Verdict.INCONCLUSIVE


def _bonferroni(check: Check, count: int) -> Verdict:
    """The check's verdict with its interval widened to the Bonferroni level for ``count``
    parts."""
    if count == 1 or not check.effect.ok:
        return check.verdict
    rule = check.rule
    level = 1.0 - (1.0 - rule.level) / count
    effect = check.effect.at(level)
    return Rule(rule.claim, rule.null, rule.margin).decide(_fixed(effect))


def _fixed(effect: Effect) -> Effect:
    """``effect`` without its recomputation, so a rule reads the interval as it is."""
    return Effect(
        effect.label,
        effect.estimate,
        effect.low,
        effect.high,
        effect.replicates,
        effect.method,
        effect.level,
        effect.note,
    )


__all__ = ["CLAIMS", "Check", "Rule", "Verdict", "combine"]
