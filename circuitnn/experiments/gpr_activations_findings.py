"""Study 5's findings decided from a ``gpr-activations`` run's replicates, by rules fixed in
advance (effects over replicates with 95 % intervals, :mod:`circuitnn.experiments.stats`):

- *a one-hidden-layer network with GPR-optimal activations is at least as accurate as a
  conventional one of the same width*: test RMSE of the additive GP minus that of a tanh network
  of as many neurons trained on the same split, paired, is < 0;
- *a circuit whose curve is closer to the optimal activations gives a more accurate network*:
  within each replicate, the Spearman rank correlation over the circuit candidates between the
  shape misfit and the test RMSE of the mapped and fine-tuned circuit network on sampled chips
  with the circuit noise on; its mean over replicates (BCa bootstrap: a bounded statistic) is > 0.

The designer's answer — which circuit and design point is closest, and what accuracy it gives with
its mismatch and noise — is in the summary and the ``candidates`` table.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

from circuitnn.experiments.common import column, fmt
from circuitnn.experiments.result import Finding, Row
from circuitnn.experiments.stats import bootstrap_effect, paired_effect
from circuitnn.experiments.verdicts import Check, Rule

GPR, TANH = "additive GPR", "tanh network"
TIE = 0.01  # relative: misfits this close count as the same shape in the summary


def circuits(tables: dict[str, list[Row]]) -> list[str]:
    """The circuit candidates (every scored model but the GP and the tanh network)."""
    return [
        m for m in dict.fromkeys(r["model"] for r in tables["accuracy"]) if m not in (GPR, TANH)
    ]


def shape_accuracy_correlations(tables: dict[str, list[Row]]) -> list[float]:
    """Per replicate, Spearman ρ between the circuits' shape misfit and their networks' RMSE."""
    names = circuits(tables)
    values = []
    for replicate in sorted({r["replicate"] for r in tables["accuracy"]}):
        misfit = [
            next(
                r["misfit"]
                for r in tables["shapes"]
                if r["replicate"] == replicate and r["candidate"] == n
            )
            for n in names
        ]
        rmse = [
            next(
                r["rmse"]
                for r in tables["accuracy"]
                if r["replicate"] == replicate and r["model"] == n
            )
            for n in names
        ]
        if len(names) < 3 or np.ptp(misfit) == 0 or np.ptp(rmse) == 0:
            values.append(math.nan)
        else:
            values.append(float(scipy_stats.spearmanr(misfit, rmse).statistic))
    return values


def findings(tables: dict[str, list[Row]], settings: Any) -> list[Finding]:
    """The findings of the module docstring."""
    accuracy = tables["accuracy"]
    gp = column(accuracy, "rmse", model=GPR)
    baseline = column(accuracy, "rmse", model=TANH)
    result = [
        Finding.judged(
            f"a one-hidden-layer network with GPR-optimal activations ({settings.neurons} "
            "neurons) is at least as accurate as a conventional tanh network of the same width",
            [
                Check(
                    paired_effect(gp, baseline, "test RMSE GPR − tanh (standardized)"), Rule("less")
                )
            ],
            f"RMSE (standardized target) GPR {fmt(float(gp.mean()))}, tanh "
            f"{fmt(float(baseline.mean()))} (means over replicates)",
        )
    ]
    names = circuits(tables)
    if len(names) >= 3:
        correlations = shape_accuracy_correlations(tables)
        result.append(
            Finding.judged(
                "a circuit whose curve comes closer to the GPR-optimal activations gives a more "
                "accurate network with its mismatch and noise (misfit and RMSE rank together)",
                [
                    Check(
                        bootstrap_effect(
                            [correlations], np.mean, "Spearman ρ(shape misfit, RMSE), mean"
                        ),
                        Rule("greater"),
                    )
                ],
                f"{len(names)} circuits; ρ per replicate: "
                + ", ".join(fmt(value, 2) for value in correlations),
            )
        )
    return result


def summary_lines(
    data: dict[str, Any],
    tables: dict[str, list[Row]],
    settings: Any,
    replicates: int,
    seconds: float,
) -> list[str]:
    """The designer's answer and the setup, with intervals over the replicates."""
    sizes = data.get("sizes", {})
    lines = [
        f"{data.get('name')}: {len(data.get('features', []))} features → {data.get('target')} "
        f"(train/val/test {sizes.get('train')}/{sizes.get('validation')}/{sizes.get('test')}); "
        f"additive GP over {settings.neurons} random directions = one hidden layer of "
        f"{settings.neurons} neurons; {replicates} replicates",
    ]
    rows = tables["candidates"]
    names = set(circuits(tables))
    ranked = sorted((r for r in rows if r["candidate"] in names), key=lambda r: r["misfit"])
    for row in rows:
        text = f"{row['candidate']}: "
        if "misfit" in row and row["misfit"] is not None and not _nan(row["misfit"]):
            text += f"shape misfit {_ci(row, 'misfit')}; "
        if "rmse_target_units" in row:
            text += f"RMSE {_ci(row, 'rmse_target_units')} target units, R² {_ci(row, 'r2')}"
        lines.append(text.rstrip("; "))
    if ranked:
        best = ranked[0]
        tied = [r["candidate"] for r in ranked[1:] if r["misfit"] <= best["misfit"] * (1 + TIE)]
        lines.append(
            f"closest circuit: {best['candidate']} (leaves {fmt(best['misfit'])} of the optimal "
            "activations' variance unexplained"
            + (f"; the same shape within {TIE:.0%}: {', '.join(tied)}" if tied else "")
            + f"); with its mismatch and noise on {settings.chips} chips: RMSE "
            f"{_ci(best, 'rmse_target_units')} target units, R² {_ci(best, 'r2')}"
        )
    lines.append(f"run time {seconds:.0f} s")
    return lines


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _ci(row: Row, name: str) -> str:
    return f"{fmt(row[name])} [{fmt(row[name + '_low'])}, {fmt(row[name + '_high'])}]"


__all__ = ["findings", "shape_accuracy_correlations", "summary_lines"]
