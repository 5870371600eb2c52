"""Study 3's findings decided from a ``walking-noise`` run's replicates, by rules fixed in advance.

All networks of a replicate share its data split, initial weights and chips, so a noise-trained
network is compared with the clean one of its replicate (paired; one ratio per replicate, t
interval of the mean log ratio; :mod:`circuitnn.experiments.stats`). "Hidden" layers are all
analog layers but the readout (``output``). For every task × architecture setting:

- *training with a noise raises robustness to it* (per noise kind walked): the per-replicate
  geometric mean over the walked layers and ``all`` of (midpoint of the network trained with that
  noise) / (midpoint of the clean network), both under that noise, is > 1;
- *additive-noise training grows the weight magnitudes*, judged **per hidden layer** (every
  hidden layer's weight RMS ratio additive-trained / clean > 1; the readout's ratio is reported);
- *…and with them the SNR*: every activation layer's signal power (variance over samples, the
  power an additive noise of equal σ is compared with) ratio additive-trained / clean > 1;
- *layers differ in noise sensitivity* (clean network, per noise kind walked): some pair of
  walked layers has a midpoint ratio ≠ 1 (two-sided, Bonferroni over the pairs); contradicted when
  every pair is equal within the factor 1 ± ``layer_margin``.

For the digits MLP also *multiplicative-noise training can self-binarize the weights*, over the
sweep of training noise levels: the hidden layers' mean weight binarization index (Sarle's
bimodality coefficient per neuron's fan-in: 1/3 Gaussian, 1 binary) ratio to the clean network's
is > 1 at some level (Bonferroni over the levels); contradicted when it is < 1 at every level.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from circuitnn.experiments.common import column, fmt
from circuitnn.experiments.result import Finding, Row
from circuitnn.experiments.stats import log_mean_effect, ratio_effect
from circuitnn.experiments.verdicts import Check, Rule

ALL = "all"


def findings(
    tables: dict[str, list[Row]], settings: Any, configurations: Sequence[Any]
) -> list[Finding]:
    """Every finding of study 3 this run can check (rules in the module docstring)."""
    result: list[Finding] = []
    for setting in configurations:
        midpoints = [r for r in tables["midpoints"] if r["setting"] == setting.name]
        weights = [r for r in tables["weights"] if r["setting"] == setting.name]
        activations = [r for r in tables["activations"] if r["setting"] == setting.name]
        for noise in setting.noises:
            if noise in setting.regimes:
                result.append(_raises_robustness(setting.name, midpoints, noise, settings))
        if "additive" in setting.regimes:
            result.append(_weights_grow(setting.name, weights, settings))
            result.append(_signal_grows(setting.name, activations, settings))
        for noise in setting.noises:
            layers = _walked_layers(midpoints)
            if len(layers) >= 2:
                result.append(_layers_differ(setting.name, midpoints, noise, layers, settings))
        if setting.name == configurations[0].name:
            result.append(_binarizes(setting.name, weights, activations, settings))
    return result


def _walked_layers(midpoints: list[Row]) -> list[str]:
    return [layer for layer in dict.fromkeys(r["layer"] for r in midpoints) if layer != ALL]


def _raises_robustness(setting: str, midpoints: list[Row], noise: str, settings: Any) -> Finding:
    layers = [*_walked_layers(midpoints), ALL]
    ratios = np.array(
        [
            column(midpoints, "midpoint", regime=noise, noise=noise, layer=layer)
            / column(midpoints, "midpoint", regime="clean", noise=noise, layer=layer)
            for layer in layers
        ]
    )  # layers × replicates
    with np.errstate(invalid="ignore", divide="ignore"):
        per_replicate = np.exp(np.mean(np.log(ratios), axis=0))
    sigma = getattr(settings, f"train_{noise}")
    per_layer = "; ".join(
        f"{layer} ×{fmt(float(np.exp(np.mean(np.log(values)))))}"
        for layer, values in zip(layers, ratios, strict=True)
    )
    return Finding.judged(
        f"{setting}: training with {noise} noise (σ = {sigma:g}) raises the {noise}-noise "
        "midpoints (geometric mean ratio over the walked layers and all, > 1)",
        [
            Check(
                log_mean_effect(per_replicate, f"midpoint ratio {noise}-trained / clean"),
                Rule("greater", 1.0),
            )
        ],
        f"per layer (geometric mean over replicates): {per_layer}",
    )


def _layers(rows: list[Row], hidden: bool = True) -> list[str]:
    names = list(dict.fromkeys(r["layer"] for r in rows))
    return [name for name in names if name != "output"] if hidden else names


def _weights_grow(setting: str, weights: list[Row], settings: Any) -> Finding:
    checks = [
        Check(
            ratio_effect(
                column(weights, "rms", regime="additive", layer=layer),
                column(weights, "rms", regime="clean", layer=layer),
                f"{layer} weight RMS additive / clean",
            ),
            Rule("greater", 1.0),
        )
        for layer in _layers(weights)
    ]
    readout = ratio_effect(
        column(weights, "rms", regime="additive", layer="output"),
        column(weights, "rms", regime="clean", layer="output"),
        "readout",
    )
    return Finding.judged(
        f"{setting}: additive-noise training (σ = {settings.train_additive:g}) grows the weight "
        "magnitudes in every hidden layer (weight RMS ratio > 1, per layer)",
        checks,
        f"readout (not judged: it scales signal and noise alike) ×{readout.text()}",
    )


def _signal_grows(setting: str, activations: list[Row], settings: Any) -> Finding:
    checks = [
        Check(
            ratio_effect(
                column(activations, "signal", regime="additive", layer=layer),
                column(activations, "signal", regime="clean", layer=layer),
                f"{layer} signal power additive / clean",
            ),
            Rule("greater", 1.0),
        )
        for layer in _layers(activations)
    ]
    return Finding.judged(
        f"{setting}: additive-noise training (σ = {settings.train_additive:g}) raises the "
        "activations' signal power, i.e. the SNR at equal noise, in every hidden layer",
        checks,
    )


def hidden_bimodality(weights: list[Row], regime: str) -> np.ndarray:
    """Per replicate, the mean over hidden layers of the weight binarization index."""
    layers = _layers(weights)
    values = np.array(
        [column(weights, "bimodality", regime=regime, layer=layer) for layer in layers]
    )
    return values.mean(axis=0)


def _sweep_regime(sigma: float, settings: Any) -> str:
    if sigma == settings.train_multiplicative:
        return "multiplicative"
    return f"multiplicative σ={sigma:g}"


def _binarizes(setting: str, weights: list[Row], activations: list[Row], settings: Any) -> Finding:
    clean = hidden_bimodality(weights, "clean")
    checks, parts = [], []
    for sigma in settings.binarization_sigmas:
        regime = _sweep_regime(sigma, settings)
        noisy = hidden_bimodality(weights, regime)
        checks.append(
            Check(
                ratio_effect(noisy, clean, f"σ = {sigma:g}: binarization index / clean"),
                Rule("greater", 1.0),
            )
        )
        acts = [
            float(np.mean(column(activations, "bimodality", regime=regime, layer=layer)))
            for layer in _layers(activations)
        ]
        parts.append(
            f"σ = {sigma:g}: weights {fmt(float(noisy.mean()))}, activations "
            + "/".join(fmt(value) for value in acts)
        )
    clean_acts = [
        float(np.mean(column(activations, "bimodality", regime="clean", layer=layer)))
        for layer in _layers(activations)
    ]
    return Finding.judged(
        f"{setting}: multiplicative-noise training can self-binarize the weights (hidden-layer "
        "binarization index above the clean network's at some training noise level; 1/3 "
        "Gaussian, 1 binary)",
        checks,
        f"hidden-layer means over replicates — clean: weights {fmt(float(clean.mean()))}, "
        f"activations {'/'.join(fmt(v) for v in clean_acts)}; " + "; ".join(parts),
        mode="any",
    )


def _layers_differ(
    setting: str, midpoints: list[Row], noise: str, layers: list[str], settings: Any
) -> Finding:
    margin = settings.layer_margin
    values = {
        layer: column(midpoints, "midpoint", regime="clean", noise=noise, layer=layer)
        for layer in layers
    }
    checks = [
        Check(
            ratio_effect(values[a], values[b], f"{a} / {b}"),
            Rule("differs", 1.0, margin),
        )
        for a, b in itertools.combinations(layers, 2)
    ]
    ordering = " < ".join(
        f"{layer} {fmt(float(np.mean(v)))}"
        for layer, v in sorted(values.items(), key=lambda item: float(np.mean(item[1])))
    )
    return Finding.judged(
        f"{setting}: layers differ in {noise}-noise sensitivity (clean network: some pair of "
        f"layers' midpoints differ; equal means within ×(1 ± {margin:g}))",
        checks,
        f"mean midpoints: {ordering}",
        mode="any",
    )


def summary_lines(
    tables: dict[str, list[Row]],
    settings: Any,
    layers: dict[str, str],
    replicates: int,
    seconds: float,
) -> list[str]:
    """The short printed summary of a run."""
    training = tables["training"]
    architecture = "-".join(str(w) for w in (64, *settings.widths, 10))
    lines = [
        f"digits MLP {architecture} ("
        + ", ".join(f"{k} {v}" for k, v in layers.items())
        + f"), digits CNN conv {list(settings.cnn_channels)} + {settings.cnn_width}, regression "
        f"MLP {list(settings.regression_widths)}; {replicates} replicates, {settings.epochs} "
        f"epochs; training noise σ: additive {settings.train_additive:g}, multiplicative "
        f"{settings.train_multiplicative:g}, mixed {settings.train_mixed:g}; binarization sweep "
        f"σ {', '.join(f'{s:g}' for s in settings.binarization_sigmas)}",
    ]
    for setting in dict.fromkeys(r["setting"] for r in training):
        mine = [r for r in training if r["setting"] == setting]
        metric = mine[0]["metric"]
        scores = ", ".join(
            f"{regime} {np.mean([r['test_score'] for r in mine if r['regime'] == regime]):.3f}"
            for regime in dict.fromkeys(r["regime"] for r in mine)
        )
        lines.append(f"{setting} clean test {metric} (mean over replicates): {scores}")
    for row in tables["midpoint_summary"]:
        if row["regime"] == "clean" or row["regime"] != row["noise"]:
            continue
        if row["layer"] == ALL:
            lines.append(
                f"{row['setting']}: {row['noise']} midpoint in all layers ×"
                f"{fmt(row['ratio_to_clean'])} of the clean network's"
            )
    lines.append(f"finished in {seconds:.0f} s")
    return lines


__all__ = ["findings", "hidden_bimodality", "summary_lines"]
