"""The ``propagation`` experiment's figures (matplotlib Agg, PNG), drawn from its layer rows."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from circuitnn._matplotlib import pyplot
from circuitnn.experiments.result import Row

KIND_COLOURS = {
    "additive": "tab:blue",
    "additive-correlated": "tab:cyan",
    "multiplicative": "tab:red",
    "multiplicative-correlated": "tab:orange",
    "circuit": "tab:green",
    "single-source": "tab:purple",
}
FAMILY_MARKERS = ("o", "s", "^", "D")


def _ordered(rows: list[Row], key: str) -> list[Any]:
    return list(dict.fromkeys(row[key] for row in rows))


def _profile(rows: list[Row], key: str) -> tuple[np.ndarray, np.ndarray]:
    """Layers and the mean of ``key`` over networks per layer."""
    by_layer: dict[int, list[float]] = defaultdict(list)
    for row in rows:
        by_layer[row["layer"]].append(row[key])
    layers = np.array(sorted(by_layer))
    return layers, np.array([np.mean(by_layer[layer]) for layer in layers])


def _save(figure: Any, path: Path, bottom: float = 0.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout(rect=(0.0, bottom, 1.0, 1.0))
    figure.savefig(path, dpi=110)
    pyplot().close(figure)
    return path


def plot_noise_vs_depth(layers: list[Row], path: Path) -> Path:
    """Noise σ per layer: a panel per (family, gain), a colour per noise kind; Monte Carlo as
    markers, the analytic prediction as lines, the signal in grey."""
    plt = pyplot()
    families, gains = _ordered(layers, "family"), sorted(_ordered(layers, "gain"))
    figure, axes = plt.subplots(
        len(families), len(gains), figsize=(5.2 * len(gains), 3.9 * len(families)), squeeze=False
    )
    for i, family in enumerate(families):
        for j, gain in enumerate(gains):
            axis = axes[i][j]
            rows = [r for r in layers if r["family"] == family and r["gain"] == gain]
            for kind in _ordered(rows, "kind"):
                subset = [r for r in rows if r["kind"] == kind]
                colour = KIND_COLOURS.get(kind, "black")
                depth, measured = _profile(subset, "measured")
                _, predicted = _profile(subset, "predicted")
                axis.plot(depth, predicted, color=colour, lw=1.4)
                axis.plot(depth, measured, "o", color=colour, ms=4, label=kind)
            additive = [r for r in rows if r["kind"] == "additive"]
            depth, signal = _profile(additive, "signal")
            axis.plot(depth, signal, color="grey", ls="--", lw=1.2, label="signal")
            transfer = np.mean([r["transfer"] for r in additive]) if additive else np.nan
            axis.set_yscale("log")
            axis.set_xlabel("layer (depth)")
            axis.set_ylabel("σ [network units]")
            axis.set_title(f"{family}, gain {gain:g} (noise transfer χ ≈ {transfer:.2f})")
            axis.grid(alpha=0.3, which="both")
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(
        handles,
        labels,
        loc="lower center",
        ncol=len(labels),
        fontsize=8,
        title="markers: Monte Carlo, lines: analytic prediction",
        title_fontsize=8,
    )
    return _save(figure, path, bottom=0.09)


def plot_accuracy(layers: list[Row], path: Path) -> Path:
    """Left: predicted versus measured σ of every layer row (y = x and ±10 %); right: their
    ratio versus the noise relative to the signal."""
    plt = pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(10.5, 4.2))
    families, gains = _ordered(layers, "family"), sorted(_ordered(layers, "gain"))
    colours = {gain: colour for gain, colour in zip(gains, ("tab:blue", "tab:red"), strict=False)}
    for f, family in enumerate(families):
        for gain in gains:
            rows = [r for r in layers if r["family"] == family and r["gain"] == gain]
            measured = np.array([r["measured"] for r in rows])
            predicted = np.array([r["predicted"] for r in rows])
            relative = np.array([r["noise_to_signal"] for r in rows])
            style = {
                "marker": FAMILY_MARKERS[f % len(FAMILY_MARKERS)],
                "color": colours.get(gain, "black"),
                "ls": "none",
                "ms": 4,
                "alpha": 0.7,
                "label": f"{family}, gain {gain:g}",
            }
            left.plot(measured, predicted, **style)
            right.plot(relative, predicted / measured, **style)
    values = np.array([r["measured"] for r in layers] + [r["predicted"] for r in layers])
    line = np.array([values[values > 0].min(), values.max()])
    left.plot(line, line, color="black", lw=1)
    left.fill_between(line, 0.9 * line, 1.1 * line, color="grey", alpha=0.2, label="±10 %")
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_title("every layer of every configuration")
    right.set_title("prediction error versus noise level")
    left.set_xlabel("measured σ (Monte Carlo)")
    left.set_ylabel("predicted σ (analytic)")
    left.legend(fontsize=7)
    right.axhspan(0.9, 1.1, color="grey", alpha=0.2)
    right.axhline(1.0, color="black", lw=1)
    right.axvline(0.1, color="black", ls=":", lw=1)
    right.set_xscale("log")
    right.set_xlabel("measured noise / signal")
    right.set_ylabel("predicted / measured σ")
    for axis in (left, right):
        axis.grid(alpha=0.3, which="both")
    return _save(figure, path)


def plot_single_source(layers: list[Row], path: Path) -> Path:
    """Left: noise of a single additive source in layer 1 versus depth, per family and gain;
    right: signal-to-noise ratio versus depth with additive noise in every layer."""
    plt = pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(10.5, 4.2))
    families, gains = _ordered(layers, "family"), sorted(_ordered(layers, "gain"))
    for f, family in enumerate(families):
        for g, gain in enumerate(gains):
            style = {
                "marker": FAMILY_MARKERS[f % len(FAMILY_MARKERS)],
                "color": ("tab:blue", "tab:red")[g % 2],
                "ls": ("-", "--")[f % 2],
                "ms": 4,
                "label": f"{family}, gain {gain:g}",
            }
            base = [r for r in layers if r["family"] == family and r["gain"] == gain]
            depth, sigma = _profile([r for r in base if r["kind"] == "single-source"], "measured")
            if len(depth):
                left.plot(depth, sigma, **style)
            depth, snr = _profile([r for r in base if r["kind"] == "additive"], "snr_db")
            if len(depth):
                right.plot(depth, snr, **style)
    left.set_yscale("log")
    left.set_title("one additive source in layer 1")
    left.set_xlabel("layer (depth)")
    left.set_ylabel("σ [network units]")
    right.set_title("additive noise in every layer")
    right.set_xlabel("layer (depth)")
    right.set_ylabel("signal-to-noise ratio [dB]")
    for axis in (left, right):
        axis.grid(alpha=0.3, which="both")
        axis.legend(fontsize=7)
    return _save(figure, path)
