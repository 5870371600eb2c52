"""The ``inhomogeneity`` experiment's figures (matplotlib Agg, PNG), drawn from its table rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from circuitnn._matplotlib import pyplot
from circuitnn.experiments.result import Row

ERROR_LABELS = {
    "classification": "error (1 − accuracy)",
    "regression": "RMSE (standardized target)",
}
DEPTH_STYLES = {1: "-", 2: "--", 3: ":", 4: "-."}


def _ordered(rows: list[Row], key: str) -> list[Any]:
    return list(dict.fromkeys(row[key] for row in rows))


def _save(figure: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot().close(figure)
    return path


def _spaced(levels: list[float], ratio: float = 1.9) -> list[float]:
    """Zero and the levels at least ``ratio`` apart on the log axis (readable tick labels)."""
    ticks: list[float] = []
    for level in levels:
        if level <= 0 or not ticks or ticks[-1] <= 0 or level >= ratio * ticks[-1]:
            ticks.append(level)
    return ticks


def plot_noise_curves(curves: list[Row], path: Path) -> Path:
    """Error versus additive noise σ (first replicate, depth and size networks): a panel per
    (task, family), a colour per width, a line style per depth."""
    plt = pyplot()
    curves = [r for r in curves if r.get("study", "architecture") == "architecture"]
    tasks, families = _ordered(curves, "task"), _ordered(curves, "family")
    widths = sorted({row["width"] for row in curves})
    colours = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, max(len(widths), 2)))
    figure, axes = plt.subplots(
        len(tasks), len(families), figsize=(4.6 * len(families), 3.6 * len(tasks)), squeeze=False
    )
    levels = sorted({row["sigma"] for row in curves})
    threshold = min((level for level in levels if level > 0), default=0.01)
    for i, task in enumerate(tasks):
        for j, family in enumerate(families):
            axis = axes[i][j]
            rows = [r for r in curves if r["task"] == task and r["family"] == family]
            for depth in sorted({r["depth"] for r in rows}):
                for k, width in enumerate(widths):
                    line = [r for r in rows if r["depth"] == depth and r["width"] == width]
                    if not line:
                        continue
                    axis.errorbar(
                        [r["sigma"] for r in line],
                        [r["error"] for r in line],
                        yerr=[r["sem"] for r in line],
                        color=colours[k],
                        ls=DEPTH_STYLES.get(depth, "-"),
                        marker="o",
                        ms=3,
                        capsize=2,
                        label=f"{depth} layer{'s' if depth > 1 else ''}, width {width}",
                    )
            axis.set_xscale("symlog", linthresh=threshold)
            ticks = _spaced(levels)
            axis.set_xticks(ticks, [f"{level:g}" for level in ticks], fontsize=7)
            axis.minorticks_off()
            axis.set_xlabel("additive noise σ [half nominal swing]")
            axis.set_ylabel(ERROR_LABELS.get(task, "error"))
            axis.set_title(f"{task}: {family}", fontsize=10)
            axis.grid(alpha=0.3)
            if i == 0 and j == 0:
                axis.legend(fontsize=6)
    figure.suptitle("error versus neuron noise (first replicate; trained on the nominal curve)")
    return _save(figure, path)


def _errorbar(axis: Any, rows: list[Row], x: str, label: str, style: str = "-o") -> None:
    rows = sorted(rows, key=lambda r: r[x])
    values = np.array([r["damage_index"] for r in rows])
    low = np.array([r["damage_index_low"] for r in rows])
    high = np.array([r["damage_index_high"] for r in rows])
    spread = np.nan_to_num(np.vstack([values - low, high - values]))
    axis.errorbar(
        [r[x] for r in rows], values, yerr=spread, fmt=style, ms=4, capsize=3, label=label
    )


def plot_tolerance(summary: list[Row], path: Path) -> Path:
    """Damage index (mean over replicates, 95 % interval) versus width (one hidden layer) and
    versus depth (reference width): two panels per task."""
    plt = pyplot()
    rows = [r for r in summary if r["study"] == "architecture"]
    tasks = _ordered(rows, "task")
    figure, axes = plt.subplots(len(tasks), 2, figsize=(9.6, 3.6 * len(tasks)), squeeze=False)
    for i, task in enumerate(tasks):
        mine = [r for r in rows if r["task"] == task]
        by_width, by_depth = axes[i]
        for family in _ordered(mine, "family"):
            size = [r for r in mine if r["family"] == family and r["depth"] == 1]
            if len({r["width"] for r in size}) > 1:
                _errorbar(by_width, size, "width", family)
            deep = [r["width"] for r in mine if r["depth"] > 1]
            if deep:
                depth = [r for r in mine if r["family"] == family and r["width"] == deep[0]]
                _errorbar(by_depth, depth, "depth", family, "-s")
        by_width.set_xscale("log", base=2)
        widths = sorted({r["width"] for r in mine if r["depth"] == 1})
        by_width.set_xticks(widths, [str(w) for w in widths])
        by_width.minorticks_off()
        by_depth.set_xticks(sorted({r["depth"] for r in mine}))
        by_width.set_xlabel("hidden width (one layer)")
        by_depth.set_xlabel("hidden layers")
        for axis in (by_width, by_depth):
            axis.set_ylabel("damage index (0 none, 1 chance)")
            axis.set_title(task, fontsize=10)
            axis.grid(alpha=0.3)
            if axis.get_legend_handles_labels()[0]:
                axis.legend(fontsize=7)
    figure.suptitle("noise damage versus size and depth (lower is more tolerant; 95 % intervals)")
    return _save(figure, path)


def plot_overfitting(tolerance: list[Row], path: Path) -> Path:
    """Train–test gap of the clean error against the damage index, one point per network of the
    overfitting grid, a colour per replicate: a panel per task."""
    plt = pyplot()
    rows = [r for r in tolerance if r["study"] == "overfitting"]
    tasks = _ordered(rows, "task") or ["(none)"]
    figure, axes = plt.subplots(1, len(tasks), figsize=(4.8 * len(tasks), 3.6), squeeze=False)
    for axis, task in zip(axes[0], tasks, strict=True):
        mine = [r for r in rows if r["task"] == task]
        for replicate in sorted({r["replicate"] for r in mine}):
            points = [r for r in mine if r["replicate"] == replicate]
            axis.scatter(
                [r["gap"] for r in points],
                [r["damage_index"] for r in points],
                s=18,
                label=f"replicate {replicate}",
            )
        axis.set_xlabel("train–test gap of the clean error")
        axis.set_ylabel("damage index")
        axis.set_title(task, fontsize=10)
        axis.grid(alpha=0.3)
        if mine:
            axis.legend(fontsize=6)
    figure.suptitle("overfitting against noise tolerance (widths × epochs × weight decay)")
    return _save(figure, path)


def plot_inhomogeneity(summary: list[Row], path: Path) -> Path:
    """Per task and family: the nominal error, the nominal-trained network on the chips
    (damaged) and retrained on them (repaired), bars the means over replicates, a line per
    replicate (its mean over chips)."""
    plt = pyplot()
    tasks = _ordered(summary, "task")
    figure, axes = plt.subplots(1, len(tasks), figsize=(5.2 * len(tasks), 3.8), squeeze=False)
    stages = (
        ("nominal", "nominal_error", "tab:gray"),
        ("on chip", "damaged_error", "tab:red"),
        ("retrained", "repaired_error", "tab:green"),
    )
    for axis, task in zip(axes[0], tasks, strict=True):
        mine = [r for r in summary if r["task"] == task]
        for g, family in enumerate(_ordered(mine, "family")):
            rows = [r for r in mine if r["family"] == family]
            centre = g * (len(stages) + 1)
            positions = [centre + s for s in range(len(stages))]
            for position, (label, key, colour) in zip(positions, stages, strict=True):
                axis.bar(
                    position,
                    float(np.mean([r[key] for r in rows])),
                    color=colour,
                    alpha=0.6,
                    label=label if g == 0 else None,
                )
            for row in rows:
                axis.plot(
                    positions,
                    [row[key] for _, key, _ in stages],
                    color="black",
                    alpha=0.5,
                    lw=0.8,
                    marker=".",
                )
            axis.text(
                centre + 1,
                0,
                family,
                ha="center",
                va="top",
                fontsize=8,
                transform=axis.get_xaxis_transform(),
            )
        axis.set_xticks([])
        axis.set_ylabel(ERROR_LABELS.get(task, "error"))
        axis.set_title(f"{task}: inhomogeneity and retraining", fontsize=10)
        axis.grid(alpha=0.3, axis="y")
        axis.legend(fontsize=7)
    figure.suptitle("one line per replicate (mean over its chips): nominal, on chip, retrained")
    return _save(figure, path)
