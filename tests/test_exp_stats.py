"""The statistics layer of the findings on synthetic data with known answers: true effects are
found, and under no effect the rule says reproduced / contradicted at its stated rate (checked
over many trials, with a tolerance from the binomial distribution)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from circuitnn.errors import ConfigError
from circuitnn.experiments.result import Finding
from circuitnn.experiments.stats import (
    bootstrap_effect,
    log_mean_effect,
    mean_effect,
    paired_effect,
    ratio_effect,
)
from circuitnn.experiments.verdicts import Check, Rule, Verdict, combine

GREATER = Rule("greater")


def allowed(trials: int, rate: float, confidence: float = 0.999) -> int:
    """The most events of probability ``rate`` in ``trials`` that are still consistent with it
    (the binomial quantile at ``confidence``)."""
    return int(stats.binom.ppf(confidence, trials, rate))


def fewest(trials: int, rate: float, confidence: float = 0.999) -> int:
    """The fewest events consistent with probability ``rate`` (lower binomial quantile)."""
    return int(stats.binom.ppf(1 - confidence, trials, rate))


def rates(verdicts: list[Verdict]) -> dict[Verdict, int]:
    return {v: sum(1 for x in verdicts if x == v) for v in Verdict}


def test_a_true_effect_is_found_and_its_opposite_contradicts() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(0, 1, 8)
    better = base + 1.0 + rng.normal(0, 0.2, 8)  # effect +1, paired noise 0.2
    effect = paired_effect(better, base, "better − base")
    assert effect.low < 1.0 < effect.high and effect.low > 0
    assert GREATER.decide(effect) == Verdict.REPRODUCED
    assert Rule("less").decide(effect) == Verdict.CONTRADICTED
    ratio = ratio_effect(np.exp(better), np.exp(base), "factor")
    assert ratio.estimate == pytest.approx(math.exp(np.mean(better - base)))
    assert Rule("greater", null=1.0).decide(ratio) == Verdict.REPRODUCED
    geometric = log_mean_effect(np.exp(base + 3), "level")
    assert geometric.low < math.exp(3) < geometric.high


def test_the_t_interval_is_scipys() -> None:
    values = np.array([0.3, 1.1, 0.7, 0.2, 0.9])
    effect = mean_effect(values, "x", level=0.9)
    expected = stats.t.interval(0.9, 4, loc=values.mean(), scale=stats.sem(values))
    assert (effect.low, effect.high) == pytest.approx(expected)
    wider = effect.at(0.99)
    assert wider.low < effect.low and wider.high > effect.high and wider.level == 0.99


@pytest.mark.parametrize("replicates", [3, 5])
def test_null_verdicts_happen_at_the_stated_rate(replicates: int) -> None:
    """No effect, normal replicate values: reproduced and contradicted each in 2.5 % of 2000
    trials (±binomial tolerance); the rest inconclusive."""
    rng = np.random.default_rng(replicates)
    trials = 2000
    verdicts = []
    for _ in range(trials):
        a = rng.normal(0, 1, replicates)
        b = a + rng.normal(0, 0.5, replicates)  # correlated pair, no shift
        verdicts.append(GREATER.decide(paired_effect(b, a, "null")))
    counts = rates(verdicts)
    for verdict in (Verdict.REPRODUCED, Verdict.CONTRADICTED):
        assert fewest(trials, 0.025) <= counts[verdict] <= allowed(trials, 0.025), counts


def test_power_grows_with_replicates() -> None:
    """An effect of one standard deviation: found in about the t test's power (non-central t),
    and more often with more replicates."""
    rng = np.random.default_rng(7)
    trials = 600
    found = {}
    for n in (3, 10):
        hits = sum(
            GREATER.decide(mean_effect(rng.normal(1.0, 1.0, n), "d")) == Verdict.REPRODUCED
            for _ in range(trials)
        )
        critical = stats.t.ppf(0.975, n - 1)
        power = stats.nct.sf(critical, n - 1, math.sqrt(n))
        assert fewest(trials, power) <= hits <= allowed(trials, power), (n, hits, power)
        found[n] = hits
    assert found[10] > found[3]


def test_equivalence_is_a_tost_with_its_margin() -> None:
    rng = np.random.default_rng(3)
    rule = Rule("equivalent", null=0.0, margin=0.5)
    trials = 1000
    # a true difference exactly at the margin: called equivalent at most 5 % of the time
    at_margin = [rule.decide(mean_effect(rng.normal(0.5, 1.0, 6), "d")) for _ in range(trials)]
    assert rates(at_margin)[Verdict.REPRODUCED] <= allowed(trials, 0.05)
    # no difference, enough replicates: equivalence found; a big difference: contradicted
    assert rule.decide(mean_effect(rng.normal(0.0, 0.3, 20), "d")) == Verdict.REPRODUCED
    assert rule.decide(mean_effect(rng.normal(2.0, 0.3, 20), "d")) == Verdict.CONTRADICTED
    assert rule.describe() == "within 0 ± 0.5"
    assert rule.level == 0.9


def test_a_two_sided_difference_claim() -> None:
    """``differs``: found on either side; under no effect 5 % of the time (two-sided);
    contradicted when the interval shows the two equal within the margin."""
    rng = np.random.default_rng(9)
    rule = Rule("differs", null=0.0, margin=0.5)
    assert rule.decide(mean_effect(rng.normal(-1.0, 0.3, 8), "d")) == Verdict.REPRODUCED
    assert rule.decide(mean_effect(rng.normal(1.0, 0.3, 8), "d")) == Verdict.REPRODUCED
    assert rule.decide(mean_effect(rng.normal(0.0, 0.1, 20), "d")) == Verdict.CONTRADICTED
    trials = 1000
    null = [rule.decide(mean_effect(rng.normal(0, 1, 5), "d")) for _ in range(trials)]
    counts = rates(null)
    assert fewest(trials, 0.05) <= counts[Verdict.REPRODUCED] <= allowed(trials, 0.05), counts


@pytest.mark.parametrize("mode", ["all", "any"])
def test_combined_claims_keep_their_false_verdict_rates(mode: str) -> None:
    """Three independent parts, none with an effect: the combined claim is reproduced and
    contradicted each at most 2.5 % of the time (intersection–union / Bonferroni)."""
    rng = np.random.default_rng(11)
    trials = 800
    verdicts = []
    for _ in range(trials):
        checks = [Check(mean_effect(rng.normal(0, 1, 5), f"p{i}"), GREATER) for i in range(3)]
        verdicts.append(combine(checks, mode))  # type: ignore[arg-type]
    counts = rates(verdicts)
    assert counts[Verdict.REPRODUCED] <= allowed(trials, 0.025), counts
    assert counts[Verdict.CONTRADICTED] <= allowed(trials, 0.025), counts


def test_combined_claims_decide_by_their_parts() -> None:
    rng = np.random.default_rng(5)
    strong = Check(mean_effect(rng.normal(3, 0.5, 6), "strong"), GREATER)
    null = Check(mean_effect(np.array([-1.0, 1.0, -0.5, 0.5, 0.1]), "null"), GREATER)
    wrong = Check(mean_effect(rng.normal(-3, 0.5, 6), "wrong"), GREATER)
    assert combine([strong, strong]) == Verdict.REPRODUCED
    assert combine([strong, null]) == Verdict.INCONCLUSIVE
    assert combine([strong, wrong]) == Verdict.CONTRADICTED
    assert combine([null, strong], "any") == Verdict.REPRODUCED
    assert combine([wrong, wrong], "any") == Verdict.CONTRADICTED
    assert combine([wrong, null], "any") == Verdict.INCONCLUSIVE
    finding = Finding.judged("claim", [strong, null], evidence="numbers")
    assert finding.verdict == "inconclusive" and not finding.holds and finding.replicates == 6
    assert "strong: " in finding.line() and "numbers" in finding.line()
    assert [row["verdict"] for row in finding.rows()] == ["reproduced", "inconclusive"]
    legacy = Finding("old rule", True, "evidence")
    assert legacy.verdict == "reproduced" and legacy.line().startswith("- **reproduced**")


def test_bootstrap_finds_an_effect_and_keeps_its_rate_under_none() -> None:
    """BCa bootstrap of a statistic without a formula (the median): a true shift is found; under
    none, 20 replicates, each false verdict stays near 2.5 % (BCa is slightly liberal at small
    sizes: within the binomial tolerance of 4 %)."""
    rng = np.random.default_rng(2)
    shifted = bootstrap_effect([rng.normal(1.0, 1.0, 20)], np.median, "median", seed=1)
    assert GREATER.decide(shifted) == Verdict.REPRODUCED
    assert shifted.method == "bootstrap BCa" and shifted.replicates == 20
    trials = 200
    verdicts = [
        GREATER.decide(
            bootstrap_effect([rng.normal(0, 1, 20)], np.mean, "mean", seed=i, resamples=999)
        )
        for i in range(trials)
    ]
    counts = rates(verdicts)
    for verdict in (Verdict.REPRODUCED, Verdict.CONTRADICTED):
        assert counts[verdict] <= allowed(trials, 0.04), counts


def test_what_cannot_be_estimated_says_why() -> None:
    one = mean_effect([0.4], "x")
    assert not one.ok and "at least 2" in one.note and math.isnan(one.estimate)
    assert GREATER.decide(one) == Verdict.INCONCLUSIVE
    assert "not estimated" in Check(one, GREATER).text()
    missing = paired_effect([1.0, math.nan, 2.0], [0.0, 0.0, 0.0], "x")
    assert "not finite" in missing.note
    negative = ratio_effect([1.0, -1.0], [1.0, 1.0], "x")
    assert "not positive" in negative.note
    assert "at least 3" in bootstrap_effect([[1.0, 2.0]], np.mean, "x").note
    same = paired_effect([1.0, 2.0, 3.0], [0.5, 1.5, 2.5], "x")  # no spread: a point
    assert (same.low, same.high) == (0.5, 0.5) and GREATER.decide(same) == Verdict.REPRODUCED
    with pytest.raises(ConfigError, match="differ in number"):
        paired_effect([1.0, 2.0], [1.0], "x")
    with pytest.raises(ConfigError, match="needs a margin"):
        Rule("equivalent")
    with pytest.raises(ConfigError, match="needs a margin"):
        Rule("differs")
    with pytest.raises(ConfigError, match="greater, less, equivalent or differs"):
        Rule("bigger")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="at least one check"):
        combine([])
