"""Study 1's findings decided from an ``inhomogeneity`` run's replicates, by rules fixed in advance.

Errors are 1 − accuracy (classification) or the RMSE of the standardized target (regression);
noise levels σ are in network units (half the nominal output swing = 1). Every effect is computed
over the replicates (one value per replicate, paired where two conditions share a replicate) with
a 95 % interval, and decided by :mod:`circuitnn.experiments.stats` (reproduced / contradicted /
inconclusive). Per task:

- *the error degrades quickly with neuron noise*: for every family, the geometric mean over
  replicates of the reference network's σ₁₀ (10 % of the way from clean to chance) is below
  :data:`QUICK_SIGMA` (10 % of the full swing); a replicate whose error never got there counts as
  the largest level tried (a lower bound);
- *one hidden layer tolerates noise better than deeper networks*: for every family and every
  depth d > 1 of the grid, the paired difference of damage indices (depth d − depth 1) is > 0;
- *larger-than-optimal networks tolerate noise better*: the optimal width — the smallest width of
  the one-layer size grid whose clean validation error is within :data:`OPTIMAL_TOLERANCE` of the
  grid's lowest (the smallest network that does about as well as any) — against the grid width
  nearest ``larger`` × it above: paired damage-index difference (optimal − larger) > 0
  (replicates whose optimal width is the widest have no larger network and are left out, and
  said so);
- *less overfitting means more noise tolerance*: within each replicate, the Spearman rank
  correlation between the train–test gap of the clean error and the damage index over the
  overfitting grid (widths × epochs × weight decays, no early stopping); its mean over replicates
  (BCa bootstrap interval: a bounded statistic) is > 0;
- *per-neuron inhomogeneity damages a network trained on the nominal curve* (per family): mean
  error over chips − nominal error > 0 (paired);
- *retraining on each chip's realized activations repairs the damage* (every family whose damage
  finding is reproduced: there is nothing to repair elsewhere, and those are listed): it recovers
  more than half of it, i.e. the linear contrast (damaged − repaired) − ½·(damaged − baseline) > 0,
  the baseline being the better of the nominal network and the nominal network trained for as
  many more epochs (so more training alone does not count as repair).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

from circuitnn.experiments.common import column, fmt
from circuitnn.experiments.result import Finding, Row
from circuitnn.experiments.stats import bootstrap_effect, log_mean_effect, paired_effect
from circuitnn.experiments.verdicts import Check, Rule, Verdict

QUICK_SIGMA = 0.2  # σ₁₀ below this (network units, 10 % of the full swing): "quickly"
HALF = 0.5  # share of the damage retraining must recover
OPTIMAL_TOLERANCE = 0.1  # relative: a width whose validation error is this close to the best


def findings(tables: dict[str, list[Row]], settings: Any) -> list[Finding]:
    """Every finding of study 1 this run can check (rules in the module docstring)."""
    tolerance = tables["tolerance"]
    result = []
    for task in dict.fromkeys(r["task"] for r in tolerance):
        rows = [r for r in tolerance if r["task"] == task]
        result.append(_degrades_quickly(task, rows, settings))
        depth = _one_layer_better(task, rows, settings)
        if depth is not None:
            result.append(depth)
        size = _larger_than_optimal(task, rows, settings)
        if size is not None:
            result.append(size)
        overfit = _overfitting(task, rows)
        if overfit is not None:
            result.append(overfit)
    chips = tables["chip_summary"]
    for task in dict.fromkeys(r["task"] for r in chips):
        members = [r for r in chips if r["task"] == task]
        damages = _inhomogeneity_damages(task, members)
        result += damages
        damaged = [
            family
            for family, finding in zip(
                dict.fromkeys(r["family"] for r in members), damages, strict=True
            )
            if finding.verdict == Verdict.REPRODUCED
        ]
        result.append(_retraining_repairs(task, members, damaged))
    return result


def _architecture(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r["study"] == "architecture"]


def _degrades_quickly(task: str, rows: list[Row], settings: Any) -> Finding:
    depth, width = settings.reference
    largest = max(settings.levels)
    checks, censored = [], []
    for family in dict.fromkeys(r["family"] for r in rows):
        values = column(_architecture(rows), "sigma10", family=family, depth=depth, width=width)
        missing = int(np.sum(~np.isfinite(values)))
        if missing:
            censored.append(f"{family}: {missing} replicate(s) never reached 10 %")
        values = np.where(np.isfinite(values), values, largest)
        checks.append(
            Check(
                log_mean_effect(values, f"{family} σ₁₀ (geometric mean)"),
                Rule("less", QUICK_SIGMA),
            )
        )
    evidence = "; ".join(censored) + (f" (counted as {largest:g})" if censored else "")
    return Finding.judged(
        f"{task}: the error degrades quickly with additive neuron noise (σ₁₀ < {QUICK_SIGMA} "
        f"network units, {depth}×{width} network, every family)",
        checks,
        evidence,
    )


def _one_layer_better(task: str, rows: list[Row], settings: Any) -> Finding | None:
    width = settings.reference[1]
    rows = _architecture(rows)
    depths = sorted({r["depth"] for r in rows if r["width"] == width})
    if len(depths) < 2 or depths[0] != 1:
        return None
    checks = []
    for family in dict.fromkeys(r["family"] for r in rows):
        one = column(rows, "damage_index", family=family, depth=1, width=width)
        for depth in depths[1:]:
            deeper = column(rows, "damage_index", family=family, depth=depth, width=width)
            checks.append(
                Check(
                    paired_effect(deeper, one, f"{family}: damage {depth} layers − 1 layer"),
                    Rule("greater"),
                )
            )
    return Finding.judged(
        f"{task}: one hidden layer tolerates neuron noise better than "
        f"{', '.join(str(d) for d in depths[1:])} (damage index, width {width}, every family)",
        checks,
    )


def optimal_widths(rows: list[Row], family: str, settings: Any) -> list[Row]:
    """Per replicate: the optimal width of the one-layer size grid (the smallest whose clean
    validation error is within :data:`OPTIMAL_TOLERANCE` of the lowest), the larger-than-optimal
    width compared with it (None if the optimum is the widest) and both damage indices."""
    grid = [
        r
        for r in _architecture(rows)
        if r["family"] == family and r["depth"] == 1 and r["width"] in settings.widths
    ]
    result = []
    for replicate in sorted({r["replicate"] for r in grid}):
        members = {r["width"]: r for r in grid if r["replicate"] == replicate}
        lowest = min(r["validation_error"] for r in members.values())
        best = min(
            w for w in members if members[w]["validation_error"] <= lowest * (1 + OPTIMAL_TOLERANCE)
        )
        above = [w for w in sorted(members) if w > best]
        larger = min(above, key=lambda w: abs(math.log(w / (settings.larger * best))), default=None)
        result.append(
            {
                "replicate": replicate,
                "family": family,
                "optimal_width": best,
                "larger_width": larger,
                "optimal_damage": members[best]["damage_index"],
                "larger_damage": members[larger]["damage_index"] if larger else math.nan,
                "optimal_validation_error": members[best]["validation_error"],
            }
        )
    return result


def _larger_than_optimal(task: str, rows: list[Row], settings: Any) -> Finding | None:
    families = [r["family"] for r in _architecture(rows) if r["width"] != settings.reference[1]]
    if not families or len(settings.widths) < 2:
        return None
    family = families[0]
    search = optimal_widths(rows, family, settings)
    usable = [r for r in search if r["larger_width"] is not None]
    effect = paired_effect(
        [r["optimal_damage"] for r in usable],
        [r["larger_damage"] for r in usable],
        f"{family}: damage optimal − larger-than-optimal",
    )
    evidence = "optimal → larger width per replicate: " + ", ".join(
        f"{r['optimal_width']} → {r['larger_width'] or 'none (widest is optimal)'}" for r in search
    )
    return Finding.judged(
        f"{task}: networks larger than the optimal size tolerate neuron noise better (one layer; "
        f"optimal: the smallest width within {OPTIMAL_TOLERANCE:.0%} of the best validation "
        f"error; larger: the grid width nearest {settings.larger:g}× it)",
        [Check(effect, Rule("greater"))],
        evidence,
    )


def spearman_per_replicate(rows: list[Row]) -> list[float]:
    """Per replicate, the Spearman correlation of the train–test gap with the damage index over
    the overfitting grid."""
    grid = [r for r in rows if r["study"] == "overfitting"]
    values = []
    for replicate in sorted({r["replicate"] for r in grid}):
        members = [r for r in grid if r["replicate"] == replicate]
        gaps = [r["gap"] for r in members]
        damage = [r["damage_index"] for r in members]
        if len(members) < 3 or np.ptp(gaps) == 0 or np.ptp(damage) == 0:
            values.append(math.nan)
            continue
        values.append(float(scipy_stats.spearmanr(gaps, damage).statistic))
    return values


def _overfitting(task: str, rows: list[Row]) -> Finding | None:
    grid = [r for r in rows if r["study"] == "overfitting"]
    if not grid:
        return None
    correlations = spearman_per_replicate(rows)
    effect = bootstrap_effect(
        [correlations], np.mean, "Spearman ρ(train–test gap, damage index), mean over replicates"
    )
    configurations = len({(r["width"], r["max_epochs"], r["weight_decay"]) for r in grid})
    gaps = [r["gap"] for r in grid]
    evidence = (
        f"{configurations} configurations per replicate (widths × epochs × weight decay, no early "
        f"stopping); gaps {fmt(min(gaps))} … {fmt(max(gaps))}; ρ per replicate: "
        + ", ".join(fmt(value, 2) for value in correlations)
    )
    return Finding.judged(
        f"{task}: less overfitting means more noise tolerance (a smaller train–test gap goes with "
        "a smaller damage index)",
        [Check(effect, Rule("greater"))],
        evidence,
    )


def _inhomogeneity_damages(task: str, chips: list[Row]) -> list[Finding]:
    result = []
    for family in dict.fromkeys(r["family"] for r in chips):
        damaged = column(chips, "damaged_error", family=family)
        nominal = column(chips, "nominal_error", family=family)
        effect = paired_effect(damaged, nominal, f"{family}: error on chips − nominal")
        members = [r for r in chips if r["family"] == family]
        worse = sum(r["chips_damaged"] for r in members)
        total = sum(r["chips"] for r in members)
        result.append(
            Finding.judged(
                f"{task}/{family}: per-neuron inhomogeneity damages a network trained on the "
                "nominal curve",
                [Check(effect, Rule("greater"))],
                f"error {fmt(float(np.mean(nominal)))} nominal → {fmt(float(np.mean(damaged)))} "
                f"on the chips (means over replicates); {worse} of {total} chips worse",
            )
        )
    return result


def recovery_contrast(rows: Sequence[Row]) -> np.ndarray:
    """Per replicate: (damaged − repaired) − ½·(damaged − baseline) (> 0: more than half of the
    damage recovered)."""
    ordered = sorted(rows, key=lambda r: r["replicate"])
    return np.array(
        [
            (r["damaged_error"] - r["repaired_error"])
            - HALF * (r["damaged_error"] - r["baseline_error"])
            for r in ordered
        ]
    )


def _retraining_repairs(task: str, chips: list[Row], damaged: list[str]) -> Finding:
    claim = (
        f"{task}: retraining on each chip's realized activations repairs the damage (recovers "
        "more than half of it, every damaged family)"
    )
    others = [f for f in dict.fromkeys(r["family"] for r in chips) if f not in damaged]
    skipped = f"not judged (damage not reproduced): {', '.join(others)}" if others else ""
    if not damaged:
        return Finding(claim, False, "no damage to repair; " + skipped, str(Verdict.INCONCLUSIVE))
    checks, parts = [], []
    for family in damaged:
        members = [r for r in chips if r["family"] == family]
        contrast = recovery_contrast(members)
        zero = np.zeros_like(contrast)
        checks.append(
            Check(
                paired_effect(contrast, zero, f"{family}: recovered − half the damage"),
                Rule("greater"),
            )
        )
        damaged = np.mean([r["damaged_error"] for r in members])
        repaired = np.mean([r["repaired_error"] for r in members])
        baseline = np.mean([r["baseline_error"] for r in members])
        share = (damaged - repaired) / (damaged - baseline) if damaged > baseline else math.nan
        parts.append(
            f"{family}: {fmt(damaged)} on the chips → {fmt(repaired)} retrained (baseline "
            f"{fmt(baseline)}: {fmt(share, 2)} of the damage recovered, ratio of means)"
        )
    return Finding.judged(claim, checks, "; ".join([*parts, *([skipped] if skipped else [])]))


def summary_lines(
    tasks: dict[str, Any],
    spreads: dict[str, dict[str, Any]],
    tables: dict[str, list[Row]],
    settings: Any,
    replicates: int,
    seconds: float,
) -> list[str]:
    """The short printed summary: data, families, the key numbers with intervals, run time."""
    lines = []
    for name, described in tasks.items():
        sizes = described["sizes"]
        lines.append(
            f"{name}: {described['name']} ({len(described['features'])} features → "
            f"{described['target']}; train/val/test {sizes['train']}/{sizes['validation']}/"
            f"{sizes['test']}); {replicates} replicates (seeds, splits, weights, chips)"
        )
    for name, row in spreads.items():
        lines.append(
            f"{name}: threshold σ {row['midpoint_sigma_V'] * 1e3:.3g} mV = "
            f"{row['midpoint_sigma_units']:.3g} input units, gain σ {row['gain_rel_sigma']:.1%}, "
            f"swing σ {row['swing_rel_sigma']:.1%}, σ_out {row['sigma_out_units']:.2g} output "
            "units"
        )
    for row in tables["accuracy"]:
        text = (
            f"clean {row['task']}/{row['family']} {settings.reference[0]}×"
            f"{settings.reference[1]}: error {_ci(row, 'clean_error')}"
        )
        if "r2" in row:
            text += f", RMSE {_ci(row, 'rmse_target_units')} target units, R² {_ci(row, 'r2')}"
        lines.append(text + f" (R = {row['replicates']})")
    by_case: dict[tuple[str, str, float], list[float]] = {}
    for row in tables["circuit_noise"]:
        by_case.setdefault((row["task"], row["family"], row["scale"]), []).append(row["error"])
    cases = dict.fromkeys((task, family) for task, family, _ in by_case)
    for task, family in cases:
        parts = ", ".join(
            f"×{scale:g} {fmt(float(np.mean(values)))}"
            for (t, f, scale), values in by_case.items()
            if (t, f) == (task, family)
        )
        lines.append(f"circuit noise, {task}/{family} error (mean over replicates): {parts}")
    lines.append(f"run time {seconds:.0f} s")
    return lines


def _ci(row: Row, name: str) -> str:
    return f"{fmt(row[name])} [{fmt(row[name + '_low'])}, {fmt(row[name + '_high'])}]"


__all__ = ["findings", "optimal_widths", "recovery_contrast", "summary_lines"]
