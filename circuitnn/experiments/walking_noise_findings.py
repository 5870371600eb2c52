"""Study 3's findings checked against a ``walking-noise`` run, by rules fixed in advance.

Midpoints are means over the run's networks; "hidden" layers are all analog layers but the
readout (``output``), whose scale multiplies signal and propagated noise alike. The rules:

- *noisy training raises robustness* (per noise kind): the geometric mean, over the walked layers
  and ``all``, of (midpoint of the network trained with that noise) / (midpoint of the clean
  network), both under that noise, is ≥ :data:`MIN_GAIN`;
- *additive-noise training grows the weights*: the RMS of all hidden weights together of the
  additive-trained networks is ≥ :data:`MIN_GROWTH` × the clean networks' (the evidence also gives
  each layer, the readout, and the signal power the activations carry: SNR = signal/σ²);
- *multiplicative-noise training binarizes the weights*: the hidden layers' mean weight
  binarization index (Sarle's bimodality coefficient per neuron's fan-in: 1/3 Gaussian, 1 binary)
  of the multiplicative-trained networks is ≥ :data:`MIN_BINARIZATION` × the clean networks';
- *layers differ in sensitivity*: for every noise kind, the clean network's least and most
  sensitive walked layers' midpoints differ by more than twice their combined uncertainty
  (checked only with two or more hidden layers).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from circuitnn.experiments.common import fmt, geometric_mean, mean_and_sem
from circuitnn.experiments.result import Finding, Row

MIN_GAIN = 1.1  # midpoint ratio (noise-trained / clean) that counts as "raises robustness"
MIN_GROWTH = 1.05  # hidden-weight RMS ratio (additive-trained / clean) that counts as growth
MIN_BINARIZATION = 1.1  # binarization-index ratio (multiplicative-trained / clean)
NOISES = ("additive", "multiplicative", "mixed")
ALL = "all"


def findings(tables: dict[str, list[Row]], settings: Any) -> list[Finding]:
    """Every finding of study 3 this run can check (rules in the module docstring)."""
    summary = tables["midpoint_summary"]
    result = [_raises_robustness(summary, noise, settings) for noise in NOISES]
    result.append(_weights_grow(tables["weights"], tables["activations"], settings))
    result.append(_binarizes(tables["weights"], tables["activations"], settings))
    layers = _walked_layers(summary)
    if len(layers) >= 2:
        result.append(_layers_differ(summary, layers))
    return result


def _walked_layers(summary: list[Row]) -> list[str]:
    return [layer for layer in dict.fromkeys(r["layer"] for r in summary) if layer != ALL]


def _row(summary: list[Row], regime: str, noise: str, layer: str) -> Row:
    for row in summary:
        if (row["regime"], row["noise"], row["layer"]) == (regime, noise, layer):
            return row
    return {"midpoint": math.nan, "uncertainty": math.nan, "ratio_to_clean": math.nan}


def _raises_robustness(summary: list[Row], noise: str, settings: Any) -> Finding:
    layers = [*_walked_layers(summary), ALL]
    ratios = [_row(summary, noise, noise, layer)["ratio_to_clean"] for layer in layers]
    gain = geometric_mean(ratios)
    parts = [
        f"{layer} {fmt(_row(summary, 'clean', noise, layer)['midpoint'])} → "
        f"{fmt(_row(summary, noise, noise, layer)['midpoint'])} (×{fmt(ratio)})"
        for layer, ratio in zip(layers, ratios, strict=True)
    ]
    sigma = getattr(settings, f"train_{noise}")
    return Finding(
        claim=f"training with {noise} noise (σ = {sigma:g}) raises the {noise}-noise midpoints "
        f"(geometric mean ratio ≥ {MIN_GAIN:g})",
        holds=bool(math.isfinite(gain) and gain >= MIN_GAIN),
        evidence=f"midpoint clean → {noise}-trained: " + "; ".join(parts) + f"; geometric mean "
        f"×{fmt(gain)}",
    )


def layer_means(rows: list[Row], regime: str, column: str) -> dict[str, float]:
    """``column`` per layer for ``regime``, averaged over networks."""
    layers = dict.fromkeys(r["layer"] for r in rows if r["regime"] == regime)
    return {
        layer: mean_and_sem(
            [r[column] for r in rows if r["regime"] == regime and r["layer"] == layer]
        )[0]
        for layer in layers
    }


def pooled_rms(weights: list[Row], regime: str) -> float:
    """RMS of all hidden-layer weights of ``regime`` together (mean over networks)."""
    values = []
    for network in dict.fromkeys(r["network"] for r in weights):
        rows = [
            r
            for r in weights
            if r["network"] == network and r["regime"] == regime and r["layer"] != "output"
        ]
        if rows:
            total = sum(r["rms"] ** 2 * r["weights"] for r in rows)
            values.append(math.sqrt(total / sum(r["weights"] for r in rows)))
    return mean_and_sem(values)[0]


def _weights_grow(weights: list[Row], activations: list[Row], settings: Any) -> Finding:
    clean, noisy = layer_means(weights, "clean", "rms"), layer_means(weights, "additive", "rms")
    growth = pooled_rms(weights, "additive") / pooled_rms(weights, "clean")
    per_layer = "; ".join(
        f"{layer} {fmt(clean[layer])} → {fmt(noisy.get(layer, math.nan))} "
        f"(×{fmt(noisy.get(layer, math.nan) / clean[layer])})"
        for layer in clean
    )
    signal_clean = layer_means(activations, "clean", "signal")
    signal_noisy = layer_means(activations, "additive", "signal")
    snr = "; ".join(
        f"{layer} {10 * np.log10(signal_noisy[layer] / signal_clean[layer]):+.1f} dB"
        for layer in signal_clean
        if signal_clean[layer] > 0 and signal_noisy.get(layer, 0) > 0
    )
    return Finding(
        claim=f"additive-noise training (σ = {settings.train_additive:g}) grows the weight "
        f"magnitudes (hidden-weight RMS ratio ≥ {MIN_GROWTH:g}) and with them the SNR",
        holds=bool(math.isfinite(growth) and growth >= MIN_GROWTH),
        evidence=f"hidden weights RMS ×{fmt(growth)}; per layer clean → additive-trained: "
        f"{per_layer}; activation signal power (SNR at equal σ): {snr}",
    )


def _hidden_mean(rows: list[Row], regime: str, column: str) -> float:
    means = layer_means(rows, regime, column)
    values = [v for layer, v in means.items() if layer != "output" and math.isfinite(v)]
    return float(np.mean(values)) if values else math.nan


def _binarizes(weights: list[Row], activations: list[Row], settings: Any) -> Finding:
    clean = _hidden_mean(weights, "clean", "bimodality")
    noisy = _hidden_mean(weights, "multiplicative", "bimodality")
    ratio = noisy / clean if clean > 0 else math.nan
    per_layer_clean = layer_means(weights, "clean", "bimodality")
    per_layer_noisy = layer_means(weights, "multiplicative", "bimodality")
    per_layer = "; ".join(
        f"{layer} {fmt(value)} → {fmt(per_layer_noisy.get(layer, math.nan))}"
        for layer, value in per_layer_clean.items()
    )
    act_clean = layer_means(activations, "clean", "bimodality")
    act_noisy = layer_means(activations, "multiplicative", "bimodality")
    acts = "; ".join(
        f"{layer} {fmt(value)} → {fmt(act_noisy.get(layer, math.nan))}"
        for layer, value in act_clean.items()
    )
    return Finding(
        claim=f"multiplicative-noise training (σ = {settings.train_multiplicative:g}) pushes the "
        f"weights toward binary (hidden-layer binarization index ×{MIN_BINARIZATION:g} or more; "
        "1/3 Gaussian, 1 binary)",
        holds=bool(math.isfinite(ratio) and ratio >= MIN_BINARIZATION),
        evidence=f"weight binarization index clean → multiplicative-trained: hidden mean "
        f"{fmt(clean)} → {fmt(noisy)} (×{fmt(ratio)}); per layer {per_layer}; activation "
        f"binarization index {acts}",
    )


def _layers_differ(summary: list[Row], layers: list[str]) -> Finding:
    parts, every = [], True
    for noise in NOISES:
        rows = {layer: _row(summary, "clean", noise, layer) for layer in layers}
        finite = {k: r for k, r in rows.items() if math.isfinite(r["midpoint"])}
        if len(finite) < 2:
            every = False
            parts.append(f"{noise}: not enough midpoints")
            continue
        low = min(finite, key=lambda k: finite[k]["midpoint"])
        high = max(finite, key=lambda k: finite[k]["midpoint"])
        gap = finite[high]["midpoint"] - finite[low]["midpoint"]
        error = math.hypot(finite[high]["uncertainty"], finite[low]["uncertainty"])
        separated = gap > 2 * error
        every = every and separated
        ordering = " < ".join(
            f"{k} {fmt(r['midpoint'])}"
            for k, r in sorted(finite.items(), key=lambda i: i[1]["midpoint"])
        )
        parts.append(
            f"{noise}: most sensitive {low} ({ordering}; gap {fmt(gap)} vs 2σ {fmt(2 * error)})"
        )
    return Finding(
        claim="layers differ in noise sensitivity (clean network: the most and least sensitive "
        "layer's midpoints differ by more than twice their uncertainty, for every noise kind)",
        holds=every,
        evidence="; ".join(parts),
    )


def summary_lines(
    tables: dict[str, list[Row]], settings: Any, layers: dict[str, str], seconds: float
) -> list[str]:
    """The short printed summary of a run."""
    training = tables["training"]
    accuracy = {
        regime: mean_and_sem([r["test_accuracy"] for r in training if r["regime"] == regime])[0]
        for regime in dict.fromkeys(r["regime"] for r in training)
    }
    architecture = "-".join(str(w) for w in (64, *settings.widths, 10))
    lines = [
        f"digits, circuit MLP {architecture} ("
        + ", ".join(f"{k} {v}" for k, v in layers.items())
        + f"), {settings.networks} network(s) per regime, {settings.epochs} epochs; training "
        f"noise σ: additive {settings.train_additive:g}, multiplicative "
        f"{settings.train_multiplicative:g}, mixed {settings.train_mixed:g}",
        "clean test accuracy: " + ", ".join(f"{k} {v:.3f}" for k, v in accuracy.items()),
    ]
    summary = tables["midpoint_summary"]
    for noise in NOISES:
        cells = [
            f"{r['layer']} {fmt(_row(summary, 'clean', noise, r['layer'])['midpoint'])} → "
            f"{fmt(r['midpoint'])}"
            for r in summary
            if r["regime"] == noise and r["noise"] == noise
        ]
        lines.append(f"{noise} midpoints, clean → {noise}-trained: " + ", ".join(cells))
    lines.append(f"finished in {seconds:.0f} s")
    return lines
