"""The ``gpr-activations`` experiment's figures (matplotlib Agg, PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from circuitnn._matplotlib import pyplot
from circuitnn.experiments.result import Row

SHOWN = 6  # neurons drawn


def _save(figure: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot().close(figure)
    return path


def plot_activations(example: dict[str, Any], path: Path) -> Path:
    """The first replicate's optimal activations (GP components, black dots at the training
    points) and every circuit's closest affine rescaling, a panel per neuron."""
    plt = pyplot()
    gp, matches, curves = example["gp"], example["matches"], example["curves"]
    count = min(SHOWN, gp.neurons)
    columns = 3
    lines = (count + columns - 1) // columns
    figure, axes = plt.subplots(lines, columns, figsize=(4.4 * columns, 3.2 * lines), squeeze=False)
    colours = plt.get_cmap("tab10")(np.arange(len(curves)) % 10)
    for neuron, axis in zip(range(count), axes.flat, strict=False):
        t = gp.points[:, neuron]
        grid = np.linspace(t.min(), t.max(), 200)
        axis.plot(t, gp.activation(neuron, t), "k.", ms=3, label="GPR-optimal (data)")
        axis.plot(grid, gp.activation(neuron, grid), "k-", lw=1)
        for colour, (name, curve) in zip(colours, curves.items(), strict=True):
            match = matches[name][neuron]
            axis.plot(
                grid,
                match(curve, grid),
                color=colour,
                lw=1,
                label=f"{name} ({match.unexplained:.1%})",
            )
        axis.set_xlabel(f"neuron {neuron + 1} input (units of its std over the data)")
        axis.set_ylabel("activation (standardized target)")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=6)
    for axis in list(axes.flat)[count:]:
        axis.set_visible(False)
    figure.suptitle("optimal activations (additive GPR) and the closest rescaled circuit curves")
    return _save(figure, path)


def plot_candidates(rows: list[Row], path: Path) -> Path:
    """Each circuit's shape misfit against its network's test RMSE with mismatch and noise
    (means over replicates, 95 % intervals); the GP and the tanh network as horizontal lines."""
    plt = pyplot()
    figure, axis = plt.subplots(1, 1, figsize=(6.4, 4.4))
    circuits = [
        r
        for r in rows
        if "misfit" in r and "rmse_target_units" in r and r["candidate"] not in ("linear", "tanh")
    ]
    for row in circuits:
        x, y = row["misfit"], row["rmse_target_units"]
        axis.errorbar(
            [x],
            [y],
            xerr=np.nan_to_num([[x - row["misfit_low"]], [row["misfit_high"] - x]]),
            yerr=np.nan_to_num(
                [[y - row["rmse_target_units_low"]], [row["rmse_target_units_high"] - y]]
            ),
            fmt="o",
            capsize=3,
            label=row["candidate"],
        )
    for row, style in zip(
        [r for r in rows if r["candidate"] in ("additive GPR", "tanh network")],
        ("--", ":"),
        strict=False,
    ):
        axis.axhline(
            row["rmse_target_units"], color="black", ls=style, lw=1, label=row["candidate"]
        )
    axis.set_xscale("symlog", linthresh=1e-3)
    axis.set_xlabel("shape misfit (unexplained share of the optimal activations' variance)")
    axis.set_ylabel("test RMSE with mismatch and noise [target units]")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    axis.set_title("closer to optimal → more accurate?")
    return _save(figure, path)
