"""The ``walking-noise`` experiment's figures (matplotlib Agg, PNG), drawn from its table rows."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from circuitnn._matplotlib import pyplot
from circuitnn.experiments.result import Row
from circuitnn.experiments.weight_stats import GAUSSIAN_BIMODALITY

NOISES = ("additive", "multiplicative", "mixed")
COLOURS = {
    "clean": "tab:gray",
    "additive": "tab:blue",
    "multiplicative": "tab:orange",
    "mixed": "tab:green",
}


def log_ticks(axis: Any, values: list[float]) -> None:
    """A logarithmic x axis labelled with plain numbers at ``values`` only."""
    from matplotlib.ticker import NullFormatter

    axis.set_xscale("log")
    axis.set_xticks(values, [f"{v:g}" for v in values])
    axis.xaxis.set_minor_formatter(NullFormatter())


def _ordered(rows: list[Row], key: str) -> list[Any]:
    return list(dict.fromkeys(row[key] for row in rows))


def _save(figure: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot().close(figure)
    return path


def _grouped_bars(
    axis: Any, groups: list[str], series: dict[str, list[float]], errors: dict[str, list[float]]
) -> None:
    """Bars per group (x) and series (colour)."""
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(groups))
    for k, (name, values) in enumerate(series.items()):
        axis.bar(
            x + (k - (len(series) - 1) / 2) * width,
            values,
            width,
            yerr=errors.get(name),
            color=COLOURS.get(name),
            label=name,
            capsize=2,
        )
    axis.set_xticks(x, groups)


def plot_midpoints(summary: list[Row], path: Path) -> Path:
    """Midpoint per layer (and all layers at once; mean over replicates, 95 % interval): a panel
    per (setting, evaluation noise), a bar per training regime."""
    plt = pyplot()
    panels = list(dict.fromkeys((r["setting"], r["noise"]) for r in summary))
    columns = min(3, len(panels))
    lines = (len(panels) + columns - 1) // columns
    figure, axes = plt.subplots(lines, columns, figsize=(5.0 * columns, 3.8 * lines), squeeze=False)
    for axis, (setting, noise) in zip(axes.flat, panels, strict=False):
        mine = [r for r in summary if r["setting"] == setting and r["noise"] == noise]
        layers, regimes = _ordered(mine, "layer"), _ordered(mine, "regime")
        rows = {(r["regime"], r["layer"]): r for r in mine}
        series = {g: [rows[(g, layer)]["midpoint"] for layer in layers] for g in regimes}
        errors = {
            g: np.nan_to_num(
                [
                    [
                        rows[(g, layer)]["midpoint"] - rows[(g, layer)]["midpoint_low"]
                        for layer in layers
                    ],
                    [
                        rows[(g, layer)]["midpoint_high"] - rows[(g, layer)]["midpoint"]
                        for layer in layers
                    ],
                ]
            )
            for g in regimes
        }
        _grouped_bars(axis, layers, series, errors)
        axis.set_title(f"{setting}: {noise} noise in one layer / all", fontsize=9)
        axis.set_ylabel("midpoint σ (halfway to chance)")
        axis.grid(alpha=0.3, axis="y")
        axis.legend(title="trained with", fontsize=7)
    for axis in list(axes.flat)[len(panels) :]:
        axis.set_visible(False)
    return _save(figure, path)


def _layer_means(rows: list[Row], regime: str, column: str, layers: list[str]) -> list[float]:
    return [
        float(np.mean([r[column] for r in rows if r["regime"] == regime and r["layer"] == layer]))
        for layer in layers
    ]


def plot_weights(
    weights: list[Row],
    examples: dict[str, dict[str, np.ndarray]],
    path: Path,
    multiplicative_sigma: float = 1.0,
) -> Path:
    """Weight RMS per layer and training regime; the hidden layers' binarization index versus
    the multiplicative training noise level (the sweep); the distribution of the first layer's
    weights (each divided by its row's RMS) of the first replicate's networks;
    ``multiplicative_sigma``: the level the regime ``multiplicative`` trained with."""
    plt = pyplot()
    figure, axes = plt.subplots(1, 3, figsize=(15.0, 3.8))
    layers = _ordered(weights, "layer")
    regimes = [g for g in _ordered(weights, "regime") if g in COLOURS]
    rms = {g: _layer_means(weights, g, "rms", layers) for g in regimes}
    _grouped_bars(axes[0], layers, rms, {})
    axes[0].set_ylabel("weight RMS")
    axes[0].set_title("weight magnitude (mean over replicates)")
    axes[0].legend(title="trained with", fontsize=8)
    hidden = [layer for layer in layers if layer != "output"]
    sweep = {}
    for regime in _ordered(weights, "regime"):
        if regime.startswith("multiplicative"):
            sigma = float(regime.split("=")[1]) if "=" in regime else math.nan
            sweep[regime] = sigma
    points = sorted(
        (
            sigma if math.isfinite(sigma) else multiplicative_sigma,
            float(np.mean(_layer_means(weights, g, "bimodality", hidden))),
        )
        for g, sigma in sweep.items()
    )
    points = [p for p in points if math.isfinite(p[0])]
    if points:
        axes[1].plot(
            *zip(*points, strict=True),
            marker="o",
            color=COLOURS["multiplicative"],
            label="multiplicative-trained",
        )
    clean = float(np.mean(_layer_means(weights, "clean", "bimodality", hidden)))
    axes[1].axhline(clean, color=COLOURS["clean"], lw=1.5, label="clean")
    axes[1].axhline(GAUSSIAN_BIMODALITY, color="black", ls=":", lw=1, label="Gaussian")
    axes[1].axhline(1.0, color="black", ls="--", lw=1, label="binary")
    axes[1].set_xlabel("multiplicative training noise σ")
    axes[1].set_ylabel("hidden binarization index (per fan-in)")
    axes[1].set_title("self-binarization sweep")
    axes[1].set_ylim(0, 1.05)
    axes[1].legend(fontsize=7)
    for regime, layers_of in examples.items():
        first = layers_of.get("linear1")
        if first is None:
            continue
        scaled = first / np.sqrt(np.mean(first**2, axis=1, keepdims=True))
        axes[2].hist(
            scaled.ravel(),
            bins=60,
            range=(-4, 4),
            histtype="step",
            density=True,
            color=COLOURS.get(regime),
            label=regime,
        )
    axes[2].set_xlabel("linear1 weight / its row's RMS")
    axes[2].set_ylabel("density")
    axes[2].set_title("first-layer weights (first replicate)")
    axes[2].legend(fontsize=8)
    for axis in axes:
        axis.grid(alpha=0.3)
    return _save(figure, path)


def plot_curves(curves: list[Row], path: Path) -> Path:
    """Test score versus noise level in every activation layer (digits MLP, first replicate): a
    panel per noise, a line per training regime."""
    plt = pyplot()
    figure, axes = plt.subplots(1, len(NOISES), figsize=(5.0 * len(NOISES), 3.6))
    for axis, noise in zip(axes, NOISES, strict=True):
        rows = [r for r in curves if r["noise"] == noise and r["level"] > 0]
        for regime in _ordered(rows, "regime"):
            mine = [r for r in rows if r["regime"] == regime]
            levels = sorted({r["level"] for r in mine})
            means = [np.mean([r["score"] for r in mine if r["level"] == v]) for v in levels]
            axis.plot(levels, means, marker="o", ms=3, color=COLOURS.get(regime), label=regime)
        axis.axhline(0.1, color="black", ls=":", lw=1)
        if rows:
            log_ticks(axis, sorted({r["level"] for r in rows}))
            axis.legend(title="trained with", fontsize=8)
        axis.set_xlabel(f"{noise} noise σ in every layer")
        axis.set_ylabel("test accuracy")
        axis.set_ylim(0, 1.02)
        axis.grid(alpha=0.3)
    return _save(figure, path)
