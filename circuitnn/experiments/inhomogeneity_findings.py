"""Study 1's findings checked against an ``inhomogeneity`` run, by rules fixed in advance.

Errors are 1 − accuracy (classification) or the RMSE of the standardized target (regression);
noise levels σ are in network units (half the nominal output swing = 1). The rules:

- *degrades quickly* (per task): the reference network's error covers 10 % of the way from clean
  to chance by σ₁₀ ≤ 0.2 (10 % of the full swing) for every family;
- *one hidden layer tolerates noise better* (per task): at equal family and width, the one-layer
  network has the smaller damage index (mean over the level grid of the error increase as a
  fraction of the way from clean to chance, capped at 1) in more than half of the comparisons;
- *larger networks tolerate noise better* (per task): the widest network has a smaller damage
  index than the narrowest in more than half of the (family, depth) cases;
- *inhomogeneity damages* (per task and family): every chip's error exceeds the nominal
  network's and the mean error over chips is ≥ 10 % above it;
- *retraining repairs*: in every (task, family) case with such damage, retraining lowers the mean
  error over chips and recovers ≥ 50 % of the damage, measured against the better of the nominal
  network and the nominal network trained for as many more epochs (so more training alone is not
  counted as repair).
"""

from __future__ import annotations

import math
from typing import Any

from circuitnn.data import Dataset
from circuitnn.experiments.result import Finding, Row

QUICK_SIGMA = 0.2  # σ₁₀ at or below this (network units, 10 % of the full swing): "quickly"
MIN_DAMAGE = 0.10  # relative error increase (mean over chips) that counts as damage
MIN_RECOVERY = 0.5  # fraction of the damage retraining must recover


def _f(value: float, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "not reached"
    return f"{value:.{digits}g}"


def findings(tolerance: list[Row], chips: list[Row], reference: tuple[int, int]) -> list[Finding]:
    """Every finding of study 1 this run can check (see the module docstring for the rules)."""
    result = [*_degrades_quickly(tolerance, reference)]
    for task in dict.fromkeys(r["task"] for r in tolerance):
        rows = [r for r in tolerance if r["task"] == task]
        for check in (_one_layer_better, _wider_better):
            finding = check(task, rows)
            if finding is not None:
                result.append(finding)
    result += _inhomogeneity_damages(chips)
    repair = _retraining_repairs(chips)
    if repair is not None:
        result.append(repair)
    return result


def _degrades_quickly(tolerance: list[Row], reference: tuple[int, int]) -> list[Finding]:
    depth, width = reference
    rows = [r for r in tolerance if (r["depth"], r["width"]) == (depth, width)]
    result = []
    for task in dict.fromkeys(r["task"] for r in rows):
        members = [r for r in rows if r["task"] == task]
        holds = all(not math.isnan(r["sigma10"]) and r["sigma10"] <= QUICK_SIGMA for r in members)
        evidence = "; ".join(
            f"{r['family']}: σ₁₀ = {_f(r['sigma10'])}, σ₅₀ = {_f(r['sigma50'])} "
            f"(clean error {_f(r['clean_error'])}, chance {_f(r['chance_error'])})"
            for r in members
        )
        result.append(
            Finding(
                claim=f"{task}: the error degrades quickly with additive neuron noise "
                f"(σ₁₀ ≤ {QUICK_SIGMA} network units, {depth}×{width} network)",
                holds=holds,
                evidence=evidence,
            )
        )
    return result


def _pairs(tolerance: list[Row], key: str, values: tuple[Any, Any]) -> list[tuple[Row, Row]]:
    """Rows equal in everything but ``key``, taking ``values`` (first, second)."""
    index = {(r["task"], r["family"], r["depth"], r["width"]): r for r in tolerance}
    pairs = []
    for (task, family, depth, width), row in index.items():
        fields = {"depth": depth, "width": width}
        if fields[key] != values[0]:
            continue
        fields[key] = values[1]
        other = index.get((task, family, fields["depth"], fields["width"]))
        if other is not None:
            pairs.append((row, other))
    return pairs


def _one_layer_better(task: str, tolerance: list[Row]) -> Finding | None:
    pairs = _pairs(tolerance, "depth", (1, 2))
    if not pairs:
        return None
    wins = [a["damage_index"] < b["damage_index"] for a, b in pairs]
    examples = "; ".join(
        f"{a['family']}/w{a['width']}: {_f(a['damage_index'], 2)} vs "
        f"{_f(b['damage_index'], 2)} (σ₅₀ {_f(a['sigma50'], 2)} vs {_f(b['sigma50'], 2)})"
        for a, b in pairs
    )
    return Finding(
        claim=f"{task}: one hidden layer tolerates neuron noise better than two (damage index, "
        "1 vs 2 layers)",
        holds=sum(wins) > len(wins) / 2,
        evidence=f"one layer less damaged in {sum(wins)} of {len(wins)} comparisons: {examples}",
    )


def _wider_better(task: str, tolerance: list[Row]) -> Finding | None:
    widths = sorted({r["width"] for r in tolerance})
    pairs = _pairs(tolerance, "width", (widths[-1], widths[0])) if len(widths) > 1 else []
    if not pairs:
        return None
    wins = [a["damage_index"] < b["damage_index"] for a, b in pairs]
    examples = "; ".join(
        f"{a['family']}/{a['depth']}L: {_f(a['damage_index'], 2)} vs "
        f"{_f(b['damage_index'], 2)} (σ₅₀ {_f(a['sigma50'], 2)} vs {_f(b['sigma50'], 2)})"
        for a, b in pairs
    )
    return Finding(
        claim=f"{task}: larger networks tolerate neuron noise better (damage index, width "
        f"{widths[-1]} vs {widths[0]})",
        holds=sum(wins) > len(wins) / 2,
        evidence=f"wider less damaged in {sum(wins)} of {len(wins)} cases: {examples}",
    )


def damaged(row: Row) -> bool:
    """Whether a chip-summary row shows inhomogeneity damage by the rule above."""
    relative = row["damage"] / row["nominal_error"] if row["nominal_error"] > 0 else math.inf
    return row["chips_damaged"] == row["chips"] and relative >= MIN_DAMAGE


def _spread(row: Row, prefix: str) -> str:
    return f"{row[prefix + '_mean']:.3g} ± {row[prefix + '_std']:.2g}"


def _inhomogeneity_damages(chips: list[Row]) -> list[Finding]:
    result = []
    for r in chips:
        relative = r["damage"] / r["nominal_error"] if r["nominal_error"] > 0 else math.inf
        result.append(
            Finding(
                claim=f"{r['task']}/{r['family']}: per-neuron inhomogeneity damages a network "
                "trained on the nominal curve",
                holds=damaged(r),
                evidence=f"error {r['nominal_error']:.3g} nominal → "
                f"{_spread(r, 'damaged_error')} on {r['chips']} chips ({relative:+.0%}; "
                f"{r['chips_damaged']} of {r['chips']} chips worse; "
                f"{r['damage_normalized']:.1%} of the gap to chance)",
            )
        )
    return result


def _retraining_repairs(chips: list[Row]) -> Finding | None:
    cases = [r for r in chips if damaged(r)]
    if not cases:
        return None
    ok = [
        r["repaired_error_mean"] < r["damaged_error_mean"]
        and r["recovered_fraction"] >= MIN_RECOVERY
        for r in cases
    ]
    evidence = "; ".join(
        f"{r['task']}/{r['family']}: {_spread(r, 'damaged_error')} → "
        f"{_spread(r, 'repaired_error')} (nominal {r['nominal_error']:.3g}, "
        f"{r['continued_nominal_error']:.3g} after as many more epochs; "
        f"{r['recovered_fraction']:.0%} of the damage recovered, residual error "
        f"{r['repaired_error_mean'] / min(r['nominal_error'], r['continued_nominal_error']):.2f}× "
        f"the nominal, {r['chips_improved']} of {r['chips']} chips better)"
        for r in cases
    )
    skipped = [f"{r['task']}/{r['family']}" for r in chips if not damaged(r)]
    if skipped:
        evidence += f"; not damaged, so not counted: {', '.join(skipped)}"
    return Finding(
        claim="retraining on each chip's realized activations repairs the damage (mean over chips)",
        holds=all(ok),
        evidence=evidence,
    )


def summary_lines(
    tasks: dict[str, Dataset],
    spreads: dict[str, dict[str, Any]],
    tolerance: list[Row],
    circuit: list[Row],
    chips: list[Row],
    settings: Any,
    seconds: float,
) -> list[str]:
    """The short printed summary: data, families, the key numbers, run time."""
    lines = []
    for name, ds in tasks.items():
        sizes = ds.sizes
        lines.append(
            f"{name}: {ds.name} ({ds.inputs} features → {ds.target_name}; train/val/test "
            f"{sizes['train']}/{sizes['validation']}/{sizes['test']})"
        )
    for name, row in spreads.items():
        lines.append(
            f"{name}: threshold σ {row['midpoint_sigma_V'] * 1e3:.3g} mV = "
            f"{row['midpoint_sigma_units']:.3g} input units, gain σ {row['gain_rel_sigma']:.1%}, "
            f"swing σ {row['swing_rel_sigma']:.1%}, σ_out {row['sigma_out_units']:.2g} output "
            "units"
        )
    depth, width = settings.reference
    for row in tolerance:
        if (row["depth"], row["width"]) != (depth, width):
            continue
        lines.append(
            f"noise, {row['task']}/{row['family']} {depth}×{width}: clean error "
            f"{row['clean_error']:.3g}, σ₁₀ {_f(row['sigma10'])}, σ₅₀ {_f(row['sigma50'])}, "
            f"damage index {row['damage_index']:.3g}"
        )
    by_case: dict[tuple[str, str], list[Row]] = {}
    for row in circuit:
        by_case.setdefault((row["task"], row["family"]), []).append(row)
    for (task, family), rows in by_case.items():
        parts = ", ".join(f"×{r['scale']:g} {r['error']:.3g}" for r in rows)
        lines.append(f"circuit noise, {task}/{family} error: {parts}")
    for row in chips:
        lines.append(
            f"chips, {row['task']}/{row['family']}: error {row['nominal_error']:.3g} nominal "
            f"({row['continued_nominal_error']:.3g} trained on), "
            f"{_spread(row, 'damaged_error')} on the chip, {_spread(row, 'repaired_error')} "
            f"retrained ({row['chips']} chips)"
        )
    lines.append(f"run time {seconds:.0f} s")
    return lines


__all__ = ["findings", "summary_lines"]
