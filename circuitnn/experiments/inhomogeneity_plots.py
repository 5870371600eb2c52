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
    """Error versus additive noise σ: a panel per (task, family), a colour per width, a line
    style per depth."""
    plt = pyplot()
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
                axis.legend(fontsize=7)
    figure.suptitle("error versus neuron noise (networks trained on the nominal curve)")
    return _save(figure, path)


def plot_tolerance(tolerance: list[Row], path: Path) -> Path:
    """Damage index (mean normalized error increase over the noise grid) versus width: a panel
    per task, a line per (family, depth)."""
    plt = pyplot()
    tasks = _ordered(tolerance, "task")
    figure, axes = plt.subplots(1, len(tasks), figsize=(4.8 * len(tasks), 3.6), squeeze=False)
    markers = ("o", "s", "^", "D")
    for axis, task in zip(axes[0], tasks, strict=True):
        rows = [r for r in tolerance if r["task"] == task]
        for m, family in enumerate(_ordered(rows, "family")):
            for depth in sorted({r["depth"] for r in rows}):
                line = sorted(
                    (r for r in rows if r["family"] == family and r["depth"] == depth),
                    key=lambda r: r["width"],
                )
                if not line:
                    continue
                axis.plot(
                    [r["width"] for r in line],
                    [r["damage_index"] for r in line],
                    marker=markers[m % len(markers)],
                    ls=DEPTH_STYLES.get(depth, "-"),
                    label=f"{family}, {depth} layer{'s' if depth > 1 else ''}",
                )
        axis.set_xscale("log", base=2)
        widths = sorted({r["width"] for r in rows})
        axis.set_xticks(widths, [str(w) for w in widths])
        axis.minorticks_off()
        axis.set_xlabel("hidden width")
        axis.set_ylabel("damage index (0 = none, 1 = chance)")
        axis.set_title(task, fontsize=10)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.suptitle("noise damage versus architecture (lower is more tolerant)")
    return _save(figure, path)


def plot_inhomogeneity(chips: list[Row], summary: list[Row], path: Path) -> Path:
    """Per task: nominal error, the nominal-trained network on each chip (damaged) and after
    retraining on that chip (repaired), a line per chip; bars are means, whiskers ± std."""
    plt = pyplot()
    tasks = _ordered(summary, "task")
    figure, axes = plt.subplots(1, len(tasks), figsize=(5.2 * len(tasks), 3.8), squeeze=False)
    stages = (
        ("nominal", "nominal_error", "tab:gray"),
        ("on chip", "damaged_error", "tab:red"),
        ("retrained", "repaired_error", "tab:green"),
    )
    for axis, task in zip(axes[0], tasks, strict=True):
        families = [r for r in summary if r["task"] == task]
        for g, row in enumerate(families):
            centre = g * (len(stages) + 1)
            positions = [centre + s for s in range(len(stages))]
            for position, (label, key, colour) in zip(positions, stages, strict=True):
                mean = row[key] if key == "nominal_error" else row[f"{key}_mean"]
                std = 0.0 if key == "nominal_error" else row[f"{key}_std"]
                axis.bar(
                    position,
                    mean,
                    yerr=std,
                    color=colour,
                    alpha=0.6,
                    capsize=3,
                    label=label if g == 0 else None,
                )
            members = [c for c in chips if c["task"] == task and c["family"] == row["family"]]
            for chip in members:
                axis.plot(
                    positions[1:],
                    [chip["damaged_error"], chip["repaired_error"]],
                    color="black",
                    alpha=0.5,
                    lw=0.8,
                    marker=".",
                )
            axis.text(
                centre + 1,
                0,
                row["family"],
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
    figure.suptitle("one line per chip: the nominal-trained network on it, then retrained on it")
    return _save(figure, path)
