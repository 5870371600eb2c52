"""The networks of the ``walking-noise`` experiment: the digits MLP, the digits CNN and the
regression MLP (each hidden layer of circuit neurons), their training and their walk (midpoint of
noise in one layer at a time). Rows carry the ``setting``, ``replicate`` and ``regime``."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from circuitnn.data import Dataset
from circuitnn.errors import ConfigError
from circuitnn.evaluate import midpoint, monte_carlo, robustness_curve
from circuitnn.experiments.common import circuit_mlp
from circuitnn.experiments.result import Row
from circuitnn.experiments.weight_stats import activation_stats, weight_stats
from circuitnn.family import Family
from circuitnn.nn import CircuitSpec, CNNSpec, ConvSpec, LayerSpec, NoiseSpec, build_cnn
from circuitnn.nn import activation_layers as _activation_layers
from circuitnn.train import Clean, NoiseInjection, TrainConfig, train

ALL = "all"  # the layer name of noise after every activation layer at once


@dataclass(frozen=True)
class Setting:
    """One task × architecture the walk is run on: ``name``, the data set's ``task`` kind, the
    ``architecture`` (``"mlp"`` or ``"cnn"``), the training ``regimes`` and the evaluation
    ``noises`` walked."""

    name: str
    task: str
    architecture: str
    regimes: tuple[str, ...]
    noises: tuple[str, ...]


def build(
    setting: Setting, families: list[Family], data: Dataset, settings: Any, seed: int
) -> nn.Module:
    """The network of ``setting``: an MLP of ``settings.widths`` (or ``regression_widths``), or
    a CNN with ``cnn_channels`` conv layers and one dense layer of ``cnn_width`` on 8×8 images;
    hidden layer *i* made of neurons of ``families[i % len(families)]``."""
    if setting.architecture == "cnn":
        convs = tuple(
            ConvSpec(channels, activation=CircuitSpec(families[i % len(families)]))
            for i, channels in enumerate(settings.cnn_channels)
        )
        dense = CircuitSpec(families[len(convs) % len(families)])
        spec = CNNSpec(1, (8, 8), convs, (LayerSpec(settings.cnn_width, dense),), data.outputs)
        return build_cnn(spec, seed=seed)
    widths = settings.widths if setting.task == "classification" else settings.regression_widths
    return circuit_mlp(families, data.inputs, widths, data.outputs, seed=seed)


def images(split: tuple[Any, Any]) -> tuple[Any, Any]:
    """A digits split with its 64 pixels as (N, 1, 8, 8) images."""
    x, y = split
    return x.reshape(-1, 1, 8, 8), y


def splits(setting: Setting, data: Dataset) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """The (train, test) data of ``setting`` (images for the CNN)."""
    if setting.architecture == "cnn":
        return images(data.train), images(data.test)
    return data.train, data.test


def training_noise(regime: str, settings: Any, sigma: float | None = None) -> NoiseSpec | None:
    """The noise a regime trains with (None for ``clean``); ``sigma`` overrides its level."""
    if regime == "clean":
        return None
    level = getattr(settings, f"train_{regime}") if sigma is None else sigma
    return NoiseSpec(regime, level)


def train_network(
    setting: Setting,
    regime: str,
    families: list[Family],
    data: Dataset,
    settings: Any,
    replicate: int,
    seed: int,
    sigma: float | None = None,
) -> tuple[nn.Module, Row]:
    """One network of ``setting`` trained under ``regime`` (noise level ``sigma`` or the
    settings'), and its row (noiseless test score, training time)."""
    model = build(setting, families, data, settings, seed)
    noise = training_noise(regime, settings, sigma)
    train_data, test_data = splits(setting, data)
    config = TrainConfig(
        task=setting.task,
        epochs=settings.epochs,
        lr=settings.lr,
        batch_size=settings.batch_size,
        seed=seed,
        restore_best=False,
    )
    began = time.perf_counter()
    history = train(
        model,
        train_data,
        regime=Clean() if noise is None else NoiseInjection(noise),
        config=config,
    )
    seconds = time.perf_counter() - began
    score = monte_carlo(model, test_data, task=setting.task, draws=1, seed=seed).mean()
    return model, {
        "setting": setting.name,
        "replicate": replicate,
        "network": seed,
        "regime": regime,
        "train_sigma": 0.0 if noise is None else noise.sigma,
        "train_loss": history.last["train_loss"],
        "test_score": score,
        "metric": "accuracy" if setting.task == "classification" else "rmse",
        "seconds": seconds,
    }


def walk(
    model: nn.Module,
    setting: Setting,
    data: Dataset,
    regime: str,
    settings: Any,
    replicate: int,
    seed: int,
    tables: dict[str, list[Row]],
    curves: bool = False,
) -> None:
    """Midpoints per layer and noise kind (and, with ``curves``, robustness curves), weight and
    activation statistics of one trained network, appended to ``tables``."""
    _, test = splits(setting, data)
    base = {"setting": setting.name, "replicate": replicate, "network": seed, "regime": regime}
    layers = [*_activation_layers(model), ALL]
    for noise in setting.noises:
        for layer in layers:
            tables["midpoints"].append(
                base
                | {"noise": noise, "layer": layer}
                | _midpoint(model, test, setting, noise, layer, settings, seed)
            )
        if curves:
            curve = robustness_curve(
                model,
                test,
                (0.0, *settings.curve_levels),
                noise=noise,
                task=setting.task,
                draws=settings.draws,
                seed=seed,
            )
            for level, mean, sem in zip(curve.levels, curve.mean, curve.sem, strict=True):
                tables["curves"].append(
                    base | {"noise": noise, "level": float(level), "score": float(mean), "sem": sem}
                )
    statistics(model, setting, data, base, tables)


def statistics(
    model: nn.Module, setting: Setting, data: Dataset, base: Row, tables: dict[str, list[Row]]
) -> None:
    """Weight statistics per analog layer and activation statistics per activation layer."""
    _, test = splits(setting, data)
    for row in weight_stats(model):
        tables["weights"].append(base | row)
    x = torch.as_tensor(test[0])
    for row in activation_stats(model, x):
        tables["activations"].append(base | row)


def _midpoint(
    model: nn.Module,
    test: tuple[Any, Any],
    setting: Setting,
    noise: str,
    layer: str,
    settings: Any,
    seed: int,
) -> Row:
    """The midpoint row of ``noise`` after ``layer`` (NaN with the reason when it is out of
    reach)."""
    try:
        found = midpoint(
            model,
            test,
            noise=noise,
            task=setting.task,
            layers=None if layer == ALL else (layer,),
            draws=settings.draws,
            tolerance=settings.tolerance,
            seed=seed,
        )
    except ConfigError as error:
        return {
            "midpoint": math.nan,
            "uncertainty": math.nan,
            "clean": math.nan,
            "note": str(error),
        }
    return {
        "midpoint": found.level,
        "uncertainty": found.uncertainty,
        "clean": found.clean,
        "evaluations": len(found.evaluations),
        "note": "",
    }
