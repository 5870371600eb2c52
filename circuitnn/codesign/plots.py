"""Pictures of a co-design: the metric against energy with the front, and each setting's effect."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from circuitnn._matplotlib import pyplot

EFFECTS = ("midpoint_sigma_V", "power_mean_W", "energy_J", "latency_s", "area_um2")


def _metric_column(result: Any) -> str:
    """The metric column the pictures show: the first objective on the task's metric, else its
    worst-5 % column."""
    metric = result.metric
    for objective in result.config.objectives:
        if objective.column.startswith(f"{metric}_"):
            return objective.column
    return f"{metric}_p5" if metric == "accuracy" else f"{metric}_p95"


def _errors(rows: list[dict[str, Any]], column: str) -> np.ndarray | None:
    if f"{column}_ci_low" not in rows[0]:
        return None
    value = np.array([r[column] for r in rows], dtype=float)
    low = np.array([r[f"{column}_ci_low"] for r in rows], dtype=float)
    high = np.array([r[f"{column}_ci_high"] for r in rows], dtype=float)
    return np.vstack([value - low, high - value])


def plot_front(result: Any, path: Path) -> Path:
    """The metric (worst 5 % of chips, 95 % CI bars) against energy per inference (log axis,
    CI bars), latency as colour; the Pareto front ringed and joined, the selections starred."""
    plt = pyplot()
    rows = result.rows
    column = _metric_column(result)
    energy = np.array([r["energy_J"] for r in rows], dtype=float)
    value = np.array([r[column] for r in rows], dtype=float)
    latency = np.array([r["latency_s"] for r in rows], dtype=float) * 1e9
    figure, axis = plt.subplots(figsize=(6.4, 4.6))
    axis.errorbar(
        energy,
        value,
        xerr=_errors(rows, "energy_J"),
        yerr=_errors(rows, column),
        fmt="none",
        ecolor="0.6",
        elinewidth=0.8,
        zorder=1,
    )
    points = axis.scatter(energy, value, c=latency, cmap="viridis", s=36, zorder=2)
    figure.colorbar(points, ax=axis, label="latency per inference [ns]")
    front = sorted(result.front, key=lambda i: energy[i])
    if front:
        axis.plot(energy[front], value[front], color="C3", lw=1, zorder=1, label="Pareto front")
        axis.scatter(
            energy[front], value[front], s=140, facecolors="none", edgecolors="C3", zorder=3
        )
    for number, (name, index) in enumerate(result.chosen.items()):
        if index is not None:
            axis.scatter(
                energy[index],
                value[index],
                marker="*",
                s=260,
                color=f"C{(number + 1) % 10}",
                edgecolors="k",
                zorder=4,
                label=f"chosen: {name}",
            )
    axis.set_xscale("log")
    axis.set_xlabel("energy per inference [J] (hidden neurons' static power × settling)")
    axis.set_ylabel(column.replace("_", " "))
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="lower right")
    axis.set_title(f"{result.config.neuron}: {len(rows)} design points", fontsize=10)
    figure.tight_layout()
    return _save(figure, plt, path)


def plot_effects(result: Any, out: Path) -> dict[str, Path]:
    """Per design setting (a numeric grid or search name), one PNG of its effect on the metric
    and on the circuit's costs: a line per combination of the other grid settings (search points
    as dots)."""
    rows = result.rows
    column = _metric_column(result)
    names = [name for name in _numeric_settings(result) if _column_of(result, name) is not None]
    figures = {}
    shown = [c for c in (column, "noise_midpoint", *EFFECTS) if c in rows[0]]
    for name in names:
        x_column = _column_of(result, name)
        assert x_column is not None
        plt = pyplot()
        columns = min(4, len(shown))
        lines = math.ceil(len(shown) / columns)
        figure, axes = plt.subplots(
            lines, columns, figsize=(3.2 * columns, 2.9 * lines), squeeze=False
        )
        for unused in axes.flat[len(shown) :]:
            unused.set_visible(False)
        others = [c for c in (_column_of(result, n) for n in names if n != name) if c]
        others += ["corner"] if len({r["corner"] for r in rows}) > 1 else []
        groups: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            label = ", ".join(f"{c}={_short(row[c])}" for c in others)
            key = f"{row['source']}: {label}" if row["source"] == "search" else label
            groups.setdefault(key if row["source"] == "grid" else "search", []).append(row)
        for axis, metric in zip(axes.flat, shown, strict=False):
            for label, members in groups.items():
                members = sorted(members, key=lambda r: r[x_column])
                x = [r[x_column] for r in members]
                y = [r[metric] for r in members]
                style = "o" if label == "search" else "o-"
                axis.plot(x, y, style, ms=4, label=label or None)
            axis.set_xscale("log" if min(r[x_column] for r in rows) > 0 else "linear")
            axis.set_xlabel(x_column)
            axis.set_title(metric, fontsize=9)
            axis.grid(alpha=0.3)
        if len(groups) > 1:
            axes.flat[0].legend(fontsize=6)
        figure.suptitle(f"effect of {name}", fontsize=10)
        figure.tight_layout()
        figures[f"effect of {name}"] = _save(figure, plt, out / f"effect_{name}.png")
    return figures


def _numeric_settings(result: Any) -> list[str]:
    config = result.config
    names = [n for n in config.grid if n != "corner"]
    if config.search is not None:
        names += [n for n in config.search.ranges if n not in names]
    return names


def _column_of(result: Any, name: str) -> str | None:
    column = result.columns.get(name)
    return column if column is not None and column in result.rows[0] else None


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) and math.isfinite(value) else str(value)


def _save(figure: Any, plt: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}")
    figure.savefig(partial, dpi=110, format="png")
    plt.close(figure)
    partial.replace(path)
    return path
