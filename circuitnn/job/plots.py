"""The main job's figures (matplotlib → PNG): training, robustness, midpoints, chips, retraining.

Each function takes the rows of the stage's table (the same numbers the report prints), writes
one PNG and returns its path. ``metric`` is the dataset's main metric (accuracy, a fraction, or
RMSE); noise levels as in the tables.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from circuitnn._matplotlib import pyplot

Rows = list[dict[str, Any]]


COLORS = {"clean": "tab:blue", "noise_aware": "tab:orange"}


def _save(figure: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot().close(figure)
    return path


def plot_training(
    histories: dict[str, Any], labels: dict[str, str], metric: str, path: Path
) -> Path:
    """Training loss and validation (else training) ``metric`` per epoch, one line per network."""
    plt = pyplot()
    figure, (loss, accuracy) = plt.subplots(1, 2, figsize=(9, 3.4))
    for name, history in histories.items():
        epochs = history.column("epoch")
        color = COLORS.get(name)
        loss.plot(epochs, history.column("train_loss"), marker=".", color=color, label=labels[name])
        column = f"val_{metric}" if f"val_{metric}" in history.epochs[0] else f"train_{metric}"
        accuracy.plot(epochs, history.column(column), marker=".", color=color, label=labels[name])
        accuracy.set_ylabel(column.replace("_", " "))
    loss.set_xlabel("epoch")
    loss.set_ylabel("training loss (as trained)")
    accuracy.set_xlabel("epoch")
    for axis in (loss, accuracy):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    return _save(figure, path)


def _curve(
    axis: Any, rows: Rows, x: str, labels: dict[str, str], metric: str, chance: float | None
) -> None:
    levels = np.array([row[x] for row in rows], dtype=float)
    shown = np.where(levels > 0, levels, np.nan)
    floor = np.nanmin(shown) / 3 if np.isfinite(shown).any() else 1e-3
    shown = np.where(levels > 0, levels, floor)
    for name, label in labels.items():
        mean = np.array([row[f"{name} {metric}"] for row in rows])
        std = np.array([row[f"{name} σ"] for row in rows])
        color = COLORS.get(name)
        axis.semilogx(shown, mean, marker="o", color=color, label=label)
        axis.fill_between(shown, mean - std, mean + std, color=color, alpha=0.2)
    if chance is not None:
        axis.axhline(chance, color="gray", ls=":", lw=1, label="chance")
    axis.set_ylabel(f"test {metric}")
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=8)


def plot_robustness(
    additive: Rows,
    circuit: Rows,
    labels: dict[str, str],
    metric: str,
    path: Path,
    chance: float | None = None,
) -> Path:
    """``metric`` ± σ versus additive σ and versus the circuit-noise scale (level 0 drawn at a
    third of the smallest level, on the log axis); ``chance`` drawn when given."""
    plt = pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    _curve(left, additive, "additive σ", labels, metric, chance)
    left.set_xlabel("additive noise σ after every hidden layer [network units]")
    _curve(right, circuit, "× σ_out", labels, metric, chance)
    right.set_xlabel("circuit noise: × simulated σ_out(x) of every neuron")
    return _save(figure, path)


def plot_midpoints(rows: Rows, labels: dict[str, str], path: Path) -> Path:
    """Grouped bars: the midpoint (± uncertainty) of each noise and layer, one bar per network."""
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(max(5.0, 1.4 * len(rows) + 2), 3.6))
    width = 0.8 / max(1, len(labels))
    positions = np.arange(len(rows))
    for index, (name, label) in enumerate(labels.items()):
        values = np.array([row.get(f"{name} midpoint", math.nan) for row in rows], dtype=float)
        errors = np.array([row.get(f"{name} ±", math.nan) for row in rows], dtype=float)
        errors = np.where(np.isfinite(errors), errors, 0.0)
        axis.bar(
            positions + (index - (len(labels) - 1) / 2) * width,
            values,
            width,
            yerr=errors,
            color=COLORS.get(name),
            label=label,
            capsize=3,
        )
    axis.set_xticks(positions, [f"{row['noise']}\n{row['layer']}" for row in rows])
    axis.set_ylabel("midpoint noise level")
    axis.grid(alpha=0.3, axis="y")
    axis.legend(fontsize=8)
    return _save(figure, path)


def plot_chips(
    per_chip: Rows, nominal: dict[str, float], labels: dict[str, str], metric: str, path: Path
) -> Path:
    """``metric`` of every chip (dots) against that on the nominal curves (dashed)."""
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(6.5, 3.4))
    chips = np.array([row["chip"] for row in per_chip])
    for name, label in labels.items():
        values = np.array([row[f"{name} {metric}"] for row in per_chip])
        color = COLORS.get(name)
        axis.plot(chips, values, "o", color=color, label=f"{label}: chips")
        axis.axhline(nominal[name], color=color, ls="--", lw=1, label=f"{label}: nominal curves")
    axis.set_xlabel("chip")
    axis.set_ylabel(f"test {metric}")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    return _save(figure, path)


def plot_retraining(rows: Rows, nominal: float, metric: str, path: Path) -> Path:
    """Each chip's ``metric`` before and after retraining on its realized curves, and after the
    control (the same fine-tuning on the nominal curves)."""
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(6.5, 3.6))
    for index, row in enumerate(rows):
        axis.plot(
            [0, 1, 2],
            [row["before"], row["control"], row["after"]],
            marker="o",
            color="tab:green",
            alpha=0.7,
            label="a chip" if index == 0 else None,
        )
    axis.axhline(nominal, color="black", ls="--", lw=1, label="on the nominal curves")
    axis.set_xticks(
        [0, 1, 2],
        [
            "before\n(trained on nominal)",
            "control: fine-tuned\non nominal",
            "retrained\non the chip",
        ],
    )
    axis.set_xlim(-0.25, 2.25)
    axis.set_ylabel(f"test {metric} on the chip")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return _save(figure, path)
