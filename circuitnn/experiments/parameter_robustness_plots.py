"""The ``parameter-robustness`` experiment's figures (matplotlib Agg, PNG), from its table rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from circuitnn._matplotlib import pyplot
from circuitnn.experiments.result import Row

COLOURS = {
    "clean": "tab:gray",
    "dropout": "tab:purple",
    "noise_injection": "tab:blue",
    "weight_smoothing": "tab:green",
    "adversarial": "tab:red",
}


def _save(figure: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot().close(figure)
    return path


def plot_robustness(summary: list[Row], path: Path) -> Path:
    """Accuracy versus relative bound ζ under random and under worst-case weight perturbation, a
    line per training regime (mean over replicates, 95 % interval; ζ = 0 is the unperturbed
    network)."""
    plt = pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(11.0, 4.0), sharey=True)
    regimes = list(dict.fromkeys(r["regime"] for r in summary))
    for axis, kind, title in (
        (axes[0], "random", "random: θ·(1 + ζz)"),
        (axes[1], "worst_case", "worst case: |δ| ≤ ζ|θ|"),
    ):
        for regime in regimes:
            rows = sorted((r for r in summary if r["regime"] == regime), key=lambda r: r["zeta"])
            values = np.array([r[kind] for r in rows])
            spread = np.nan_to_num(
                np.vstack(
                    [
                        values - [r[f"{kind}_low"] for r in rows],
                        [r[f"{kind}_high"] for r in rows] - values,
                    ]
                )
            )
            axis.errorbar(
                [r["zeta"] for r in rows],
                values,
                yerr=spread,
                marker="o",
                ms=3,
                capsize=2,
                color=COLOURS.get(regime),
                label=regime,
            )
        axis.axhline(0.1, color="black", ls=":", lw=1)
        axis.set_xlabel("relative perturbation bound ζ")
        axis.set_title(title)
        axis.set_ylim(0, 1.02)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy")
    axes[1].legend(title="trained with", fontsize=8)
    return _save(figure, path)


def plot_flatness(summary: list[Row], path: Path) -> Path:
    """Training-loss increase versus step α along random filter-normalized directions, a line per
    regime (mean over replicates, 95 % interval; log scale)."""
    plt = pyplot()
    figure, axis = plt.subplots(1, 1, figsize=(5.5, 4.0))
    for regime in dict.fromkeys(r["regime"] for r in summary):
        rows = sorted(
            (r for r in summary if r["regime"] == regime and r["step"] != "mean"),
            key=lambda r: r["step"],
        )
        mean = next(r for r in summary if r["regime"] == regime and r["step"] == "mean")
        values = np.maximum([r["increase"] for r in rows], 1e-6)
        low = np.maximum([r["increase_low"] for r in rows], 1e-6)
        high = np.maximum([r["increase_high"] for r in rows], 1e-6)
        axis.errorbar(
            [r["step"] for r in rows],
            values,
            yerr=np.nan_to_num(np.vstack([values - low, high - values])),
            marker="o",
            ms=3,
            capsize=2,
            color=COLOURS.get(regime),
            label=f"{regime} (mean {mean['increase']:.3g})",
        )
    axis.set_yscale("log")
    axis.set_xlabel("step α (relative to each neuron's weight norm)")
    axis.set_ylabel("training-loss increase")
    axis.set_title("flatness: smaller is flatter")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return _save(figure, path)
