"""Study 4's findings decided from a ``parameter-robustness`` run's replicates, by rules fixed in
advance.

Every regime's network of a replicate shares that replicate's data split, initial weights and
chip, so regimes are compared *paired* (one difference per replicate, t interval over
replicates; :mod:`circuitnn.experiments.stats`). ζ is the relative perturbation bound; AWP is
adversarial weight perturbation. The rules, as the study states its claims:

- *AWP gives the networks most robust to worst-case (targeted) parameter perturbation*: at the
  selection bound ``select_zeta``, the attacked test accuracy of AWP minus that of **each** other
  regime is > 0 (every comparison must hold);
- *AWP is equally robust to random parameter perturbation*: each regime's drop from its own
  unperturbed test accuracy at the largest ζ; AWP's drop minus **each** other regime's lies within
  ± ``equivalence_margin`` (equivalence, TOST: the 90 % interval inside the margin);
- *AWP finds flatter minima than each other method*: the ratio of AWP's flatness figure
  (training-loss increase along random filter-normalized directions, mean over directions, ±α and
  the steps α) to **each** other regime's is < 1;
- *targeted perturbation costs more than random perturbation of the same bound* (the reason to
  test the worst case at all): for every regime, random − worst-case accuracy at ``select_zeta``
  is > 0.
"""

from __future__ import annotations

from typing import Any

from circuitnn.experiments.common import column, fmt
from circuitnn.experiments.result import Finding, Row
from circuitnn.experiments.stats import paired_effect, ratio_effect
from circuitnn.experiments.verdicts import Check, Rule

AWP = "adversarial"


def findings(tables: dict[str, list[Row]], settings: Any) -> list[Finding]:
    """Every finding of study 4 this run can check (rules in the module docstring)."""
    regimes = list(dict.fromkeys(r["regime"] for r in tables["training"]))
    others = [regime for regime in regimes if regime != AWP]
    zeta = settings.select_zeta
    largest = max(settings.zetas)
    worst = tables["worst_case"]
    random = tables["random"]
    clean = {
        regime: column(tables["training"], "test_accuracy", regime=regime) for regime in regimes
    }
    chosen = "; ".join(
        f"{row['regime']} {row['chosen']}" for row in tables["compute"] if row["grid_size"] > 1
    )
    result = [
        Finding.judged(
            f"adversarial weight perturbation gives the networks most robust to worst-case "
            f"parameter perturbation (attacked test accuracy at ζ = {zeta:g}, against each other "
            "regime; every regime's strength chosen on validation data)",
            [
                Check(
                    paired_effect(
                        column(worst, "accuracy", regime=AWP, zeta=zeta),
                        column(worst, "accuracy", regime=other, zeta=zeta),
                        f"AWP − {other}",
                    ),
                    Rule("greater"),
                )
                for other in others
            ],
            f"chosen strengths per replicate: {chosen}",
        )
    ]
    drop = {
        regime: clean[regime] - column(random, "accuracy", regime=regime, zeta=largest)
        for regime in regimes
    }
    margin = settings.equivalence_margin
    result.append(
        Finding.judged(
            f"adversarial weight perturbation is equally robust to random relative weight "
            f"perturbation (drop from its own unperturbed accuracy at ζ = {largest:g} within "
            f"±{margin:g} of each other regime's)",
            [
                Check(
                    paired_effect(drop[AWP], drop[other], f"drop AWP − drop {other}"),
                    Rule("equivalent", 0.0, margin),
                )
                for other in others
            ],
            f"mean drops at ζ = {largest:g}: "
            + ", ".join(f"{regime} {fmt(float(values.mean()))}" for regime, values in drop.items()),
        )
    )
    flat = {
        regime: column(tables["flatness"], "increase", regime=regime, step="mean")
        for regime in regimes
    }
    result.append(
        Finding.judged(
            "adversarial weight perturbation finds flatter minima than each other regime "
            "(training-loss increase along random filter-normalized directions, ratio < 1)",
            [
                Check(
                    ratio_effect(flat[AWP], flat[other], f"flatness AWP / {other}"),
                    Rule("less", 1.0),
                )
                for other in others
            ],
            "mean loss increase: "
            + ", ".join(f"{regime} {fmt(float(values.mean()))}" for regime, values in flat.items()),
        )
    )
    result.append(
        Finding.judged(
            f"for every regime the worst case costs more accuracy than random perturbation of the "
            f"same relative bound (ζ = {zeta:g})",
            [
                Check(
                    paired_effect(
                        column(random, "accuracy", regime=regime, zeta=zeta),
                        column(worst, "accuracy", regime=regime, zeta=zeta),
                        f"{regime}: random − worst case",
                    ),
                    Rule("greater"),
                )
                for regime in regimes
            ],
        )
    )
    return result


def summary_lines(
    tables: dict[str, list[Row]],
    settings: Any,
    layers: dict[str, str],
    replicates: int,
    seconds: float,
) -> list[str]:
    """The short printed summary of a run: setup, compute per regime, accuracies (means over
    replicates with 95 % intervals)."""
    architecture = "-".join(str(w) for w in (64, *settings.widths, 10))
    lines = [
        f"digits, circuit MLP {architecture} ("
        + ", ".join(f"{k} {v}" for k, v in layers.items())
        + f"), {replicates} replicates (split, initial weights, chip), {settings.epochs} epochs "
        f"per network; strengths chosen on validation at ζ = {settings.select_zeta:g} from "
        f"dropout {settings.dropout}, noise σ {settings.noise_sigma}, smoothing σ "
        f"{settings.smoothing_sigma}, AWP ζ {settings.awp_zeta} (β = {settings.awp_beta:g})",
        "compute (training CPU s per chosen network; whole grid; × clean): "
        + "; ".join(
            f"{r['regime']} {r['seconds']:.1f} CPU s ×{r['relative_cost']:.1f}, grid "
            f"{r['grid_seconds']:.1f} CPU s"
            for r in tables["compute"]
        ),
    ]
    summary = tables["summary"]
    zetas = sorted({r["zeta"] for r in summary})
    for regime in dict.fromkeys(r["regime"] for r in summary):
        rows = {r["zeta"]: r for r in summary if r["regime"] == regime}
        lines.append(
            f"{regime:17s} worst case "
            + " ".join(f"{rows[z]['worst_case']:.3f}" for z in zetas)
            + " | random "
            + " ".join(f"{rows[z]['random']:.3f}" for z in zetas)
            + f"  (ζ = {', '.join(f'{z:g}' for z in zetas)})"
        )
    lines.append(f"finished in {seconds:.0f} s")
    return lines
