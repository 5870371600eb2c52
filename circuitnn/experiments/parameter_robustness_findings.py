"""Study 4's findings checked against a ``parameter-robustness`` run, by rules fixed in advance.

Accuracies are means over the run's networks; ζ is the relative perturbation bound. The rules:

- *AWP is the most robust under worst-case perturbation*: the adversarially trained networks have
  the highest attacked accuracy of all regimes at the ζ they were trained with (the grid's ζ
  nearest ``awp_zeta``) *and* the highest attacked accuracy averaged over the ζ grid;
- *AWP is the most robust under random perturbation*: the highest random-perturbation accuracy
  averaged over the ζ grid (the evidence also gives each regime's drop from its unperturbed
  accuracy at the largest ζ);
- *AWP finds flatter minima*: a smaller flatness figure (training-loss increase along random
  filter-normalized directions, averaged over directions, ±α and the steps α) than clean
  training; the evidence ranks every regime and names the flattest;
- *targeted beats random*: for every regime and every ζ, the worst case costs more accuracy than
  random perturbation of the same bound (the reason to test the worst case at all).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from circuitnn.experiments.common import fmt
from circuitnn.experiments.result import Finding, Row

AWP = "adversarial"


def _table(summary: list[Row], column: str) -> dict[str, dict[float, float]]:
    """``{regime: {ζ: value}}`` for ζ > 0."""
    result: dict[str, dict[float, float]] = {}
    for row in summary:
        if row["zeta"] > 0:
            result.setdefault(row["regime"], {})[row["zeta"]] = row[column]
    return result


def _ranking(values: dict[str, float], digits: int = 3) -> str:
    ordered = sorted(values.items(), key=lambda item: -item[1] if np.isfinite(item[1]) else 1e9)
    return " > ".join(f"{name} {fmt(value, digits)}" for name, value in ordered)


def findings(tables: dict[str, list[Row]], settings: Any) -> list[Finding]:
    """Every finding of study 4 this run can check (rules in the module docstring)."""
    summary = tables["summary"]
    worst = _table(summary, "worst_case")
    random = _table(summary, "random")
    clean = {row["regime"]: row["random"] for row in summary if row["zeta"] == 0}
    zetas = sorted(next(iter(worst.values())))
    trained = min(zetas, key=lambda z: abs(z - settings.awp_zeta))
    at_trained = {regime: values[trained] for regime, values in worst.items()}
    worst_mean = {regime: float(np.mean(list(v.values()))) for regime, v in worst.items()}
    random_mean = {regime: float(np.mean(list(v.values()))) for regime, v in random.items()}
    leaders = {
        zeta: max(worst, key=lambda regime, zeta=zeta: worst[regime][zeta]) for zeta in zetas
    }
    result = [
        Finding(
            claim=f"adversarial weight perturbation (ζ = {settings.awp_zeta:g}) gives the most "
            f"robust networks under worst-case perturbation (best at ζ = {trained:g} and "
            "averaged over the ζ grid)",
            holds=max(at_trained, key=at_trained.__getitem__) == AWP
            and max(worst_mean, key=worst_mean.__getitem__) == AWP,
            evidence=f"attacked accuracy at ζ = {trained:g}: {_ranking(at_trained)}; mean over "
            f"ζ ∈ {{{', '.join(f'{z:g}' for z in zetas)}}}: {_ranking(worst_mean)}; best per ζ: "
            + ", ".join(f"{z:g} {leaders[z]}" for z in zetas),
        ),
        Finding(
            claim="adversarial weight perturbation also gives the most robust networks under "
            "random relative weight perturbation (averaged over the ζ grid)",
            holds=max(random_mean, key=random_mean.__getitem__) == AWP,
            evidence=f"random-perturbation accuracy, mean over ζ: {_ranking(random_mean)}; at "
            f"ζ = {zetas[-1]:g}: "
            + _ranking({regime: values[zetas[-1]] for regime, values in random.items()})
            + f"; drop from unperturbed at ζ = {zetas[-1]:g}: "
            + ", ".join(
                f"{regime} {fmt(clean[regime] - values[zetas[-1]])}"
                for regime, values in random.items()
            ),
        ),
    ]
    flat = {row["regime"]: row["mean"] for row in tables["flatness_summary"]}
    steps = [key for key in tables["flatness_summary"][0] if key.startswith("increase@")]
    per_step = "; ".join(
        f"α = {key.split('@')[1]}: "
        + ", ".join(f"{row['regime']} {fmt(row[key])}" for row in tables["flatness_summary"])
        for key in steps
    )
    flattest = min(flat, key=flat.__getitem__)
    result.append(
        Finding(
            claim="adversarial weight perturbation finds flatter minima than clean training "
            "(smaller training-loss increase along random filter-normalized directions)",
            holds=flat[AWP] < flat["clean"],
            evidence=f"mean loss increase over α: {_ranking(flat)} (smaller is flatter; flattest "
            f"of all: {flattest}); "
            f"{per_step}; loss at θ: "
            + ", ".join(
                f"{row['regime']} {fmt(row['loss'])}" for row in tables["flatness_summary"]
            ),
        )
    )
    gaps = {
        (regime, zeta): random[regime][zeta] - worst[regime][zeta]
        for regime in worst
        for zeta in zetas
    }
    smallest = min(gaps, key=gaps.__getitem__)
    result.append(
        Finding(
            claim="for every regime and ζ the worst case costs more accuracy than random "
            "perturbation of the same relative bound",
            holds=all(gap > 0 for gap in gaps.values()),
            evidence=f"random − worst-case accuracy ranges {fmt(min(gaps.values()))} … "
            f"{fmt(max(gaps.values()))} (smallest: {smallest[0]} at ζ = {smallest[1]:g})",
        )
    )
    return result


def summary_lines(
    tables: dict[str, list[Row]], settings: Any, layers: dict[str, str], seconds: float
) -> list[str]:
    """The short printed summary of a run."""
    architecture = "-".join(str(w) for w in (64, *settings.widths, 10))
    clean = {r["regime"]: r for r in tables["summary"] if r["zeta"] == 0}
    worst = _table(tables["summary"], "worst_case")
    random = _table(tables["summary"], "random")
    zetas = sorted(next(iter(worst.values())))
    flat = {row["regime"]: row["mean"] for row in tables["flatness_summary"]}
    lines = [
        f"digits, circuit MLP {architecture} ("
        + ", ".join(f"{k} {v}" for k, v in layers.items())
        + f"), {settings.networks} network(s) per regime, {settings.epochs} epochs; AWP ζ = "
        f"{settings.awp_zeta:g}, β = {settings.awp_beta:g}; dropout p = {settings.dropout:g}; "
        f"noise injection σ = {settings.noise_sigma:g}; weight smoothing σ = "
        f"{settings.smoothing_sigma:g}",
        f"{'regime':17s} {'clean':>6s}  worst case at ζ = "
        + " ".join(f"{z:<5g}" for z in zetas)
        + " | random at ζ = "
        + " ".join(f"{z:<5g}" for z in zetas)
        + " | flatness",
    ]
    for regime, row in clean.items():
        lines.append(
            f"{regime:17s} {row['random']:6.3f}  {'':17s}"
            + " ".join(f"{worst[regime][z]:<5.3f}" for z in zetas)
            + f" | {'':13s}"
            + " ".join(f"{random[regime][z]:<5.3f}" for z in zetas)
            + f" | {flat[regime]:.3g}"
        )
    lines.append(f"finished in {seconds:.0f} s")
    return lines
