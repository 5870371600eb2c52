"""The networks of one ``inhomogeneity`` replicate: trained on a family's nominal curve, scored
against additive neuron noise, the circuits' own noise, and per-neuron inhomogeneity (chips) with
retraining. Every row carries its ``replicate`` and ``seed``."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from circuitnn.data import Dataset
from circuitnn.evaluate import monte_carlo, robustness_curve
from circuitnn.experiments.result import Row
from circuitnn.nn import (
    CircuitNoise,
    CircuitSpec,
    NoiseSpec,
    build_mlp,
    mlp_spec,
    resample_chips,
    set_mode,
)
from circuitnn.nn.random import derive_seed
from circuitnn.train import ChipRetrain, TrainConfig, train


@dataclass
class Trained:
    """A network trained on the nominal curves of one family for one task."""

    task: str
    family: str
    depth: int
    width: int
    model: nn.Sequential
    epochs: int
    seconds: float
    study: str = "architecture"
    weight_decay: float = 0.0
    max_epochs: int = 0


def train_config(
    task: Dataset,
    settings: Any,
    seed: int,
    *,
    retrain: bool = False,
    epochs: int | None = None,
    weight_decay: float = 0.0,
    early_stopping: bool = True,
) -> TrainConfig:
    """The training settings of a network (or of a retraining)."""
    return TrainConfig(
        task=task.task,
        epochs=epochs or (settings.retrain_epochs if retrain else settings.epochs),
        lr=settings.retrain_lr if retrain else settings.lr,
        batch_size=settings.batch_size,
        patience=settings.patience if early_stopping else None,
        restore_best=early_stopping,
        weight_decay=weight_decay,
        seed=seed,
    )


def train_network(
    task_name: str,
    task: Dataset,
    family_name: str,
    activation: CircuitSpec,
    depth: int,
    width: int,
    settings: Any,
    seed: int,
    *,
    study: str = "architecture",
    epochs: int | None = None,
    weight_decay: float = 0.0,
    early_stopping: bool = True,
) -> Trained:
    """A ``depth`` × ``width`` network of the family's nominal curve trained on ``task`` (circuit
    noise built in at scale 0: off until the circuit-noise study turns it up)."""
    started = time.perf_counter()
    spec = mlp_spec(
        task.inputs,
        (width,) * depth,
        task.outputs,
        activation=activation,
        noise=NoiseSpec("circuit", 0.0),
    )
    model = build_mlp(spec, seed=seed)
    config = train_config(
        task,
        settings,
        seed,
        epochs=epochs,
        weight_decay=weight_decay,
        early_stopping=early_stopping,
    )
    history = train(model, task.train, config=config, validation=task.validation)
    return Trained(
        task_name,
        family_name,
        depth,
        width,
        model,
        len(history.epochs),
        time.perf_counter() - started,
        study,
        weight_decay,
        config.epochs,
    )


def main_metric(task: Dataset) -> str:
    """The main metric of a data set's task."""
    return "accuracy" if task.task == "classification" else "rmse"


def error_of(task: Dataset, metric_mean: float) -> float:
    """The error of a main-metric value: 1 − accuracy, or the RMSE itself (standardized)."""
    return 1.0 - metric_mean if task.task == "classification" else metric_mean


def chance_error(task: Dataset) -> float:
    """The error of an uninformed predictor on the test split: 1 − 1/classes, or the RMS of the
    test targets about their mean (standardized units)."""
    if task.task == "classification":
        return 1.0 - 1.0 / task.outputs
    y = np.asarray(task.test[1], dtype=np.float64)
    return float(np.sqrt(np.mean((y - y.mean()) ** 2)))


def crossing(levels: np.ndarray, damage: np.ndarray, fraction: float) -> float:
    """The level where the normalized error increase ``damage`` first reaches ``fraction``,
    interpolated linearly in log(level) (linearly from level 0); NaN if never reached."""
    above = np.flatnonzero(damage >= fraction)
    above = above[above > 0]
    if not len(above):
        return float("nan")
    i = int(above[0])
    low, high = levels[i - 1], levels[i]
    weight = (fraction - damage[i - 1]) / (damage[i] - damage[i - 1])
    if low <= 0:
        return float(low + weight * (high - low))
    return float(np.exp(np.log(low) + weight * (np.log(high) - np.log(low))))


def error(model: nn.Module, task: Dataset, split: str, seed: int) -> float:
    """The model's error on a split as it stands (its chip and mode; one draw: noise is off)."""
    data = task.splits()[split]
    return error_of(task, monte_carlo(model, data, task=task.task, draws=1, seed=seed).mean())


def noise_rows(
    item: Trained, task: Dataset, settings: Any, replicate: int, seed: int
) -> tuple[list[Row], Row]:
    """The error-versus-noise curve of one network and its tolerance row: clean train /
    validation / test error, σ₁₀, σ₅₀ and the damage index (mean over the noise grid of the
    error increase as a fraction of the way from clean to chance, capped at 1)."""
    levels = np.array(settings.levels)
    curve = robustness_curve(
        item.model,
        task.test,
        levels,
        noise="additive",
        task=task.task,
        draws=settings.draws,
        seed=seed,
        own_noise=False,
    )
    errors = np.array([error_of(task, value) for value in curve.mean])
    clean, chance = errors[0], chance_error(task)
    damage = (errors - clean) / (chance - clean)
    base = {
        "replicate": replicate,
        "seed": seed,
        "study": item.study,
        "task": item.task,
        "family": item.family,
        "depth": item.depth,
        "width": item.width,
        "weight_decay": item.weight_decay,
        "max_epochs": item.max_epochs,
    }
    curves = [
        {
            **base,
            "sigma": float(level),
            "metric": curve.metric,
            "value": float(value),
            "error": float(err),
            "std": float(std),
            "sem": float(sem),
        }
        for level, value, err, std, sem in zip(
            levels, curve.mean, errors, curve.std, curve.sem, strict=True
        )
    ]
    train_error = error(item.model, task, "train", seed)
    row = {
        **base,
        "epochs": item.epochs,
        "train_error": train_error,
        "validation_error": error(item.model, task, "validation", seed),
        "clean_error": float(clean),
        "gap": float(clean - train_error),
        "chance_error": float(chance),
        "sigma10": crossing(levels, damage, 0.1),
        "sigma50": crossing(levels, damage, 0.5),
        "damage_index": float(np.minimum(damage[1:], 1.0).mean()),
        "train_seconds": item.seconds,
        **_regression_scores(item.model, task, seed),
    }
    return curves, row


def _regression_scores(model: nn.Module, task: Dataset, seed: int) -> Row:
    """A regression network's clean test RMSE in the target's units and R²."""
    if task.task != "regression":
        return {}
    result = monte_carlo(model, task.test, task="regression", draws=1, seed=seed)
    rmse = result.mean("rmse")
    return {"rmse_target_units": task.scaler.target_error(rmse), "r2": result.mean("r2")}


def circuit_noise_rows(
    item: Trained,
    task: Dataset,
    sigma_units: float,
    settings: Any,
    replicate: int,
    seed: int,
) -> list[Row]:
    """The network with the circuits' own output noise at multiples of σ_out."""
    rows: list[Row] = []
    noises = [m for m in item.model.modules() if isinstance(m, CircuitNoise)]
    for scale in (0.0, *settings.circuit_scales):
        for module in noises:
            module.scale = scale
        try:
            result = monte_carlo(
                item.model, task.test, task=task.task, draws=settings.draws, seed=seed
            )
        finally:
            for module in noises:
                module.scale = 0.0
        value = result.mean()
        rows.append(
            {
                "replicate": replicate,
                "task": item.task,
                "family": item.family,
                "scale": scale,
                "sigma_out_units": scale * sigma_units,
                "metric": main_metric(task),
                "value": value,
                "error": error_of(task, value),
                "std": result.std(),
            }
        )
    return rows


def chip_rows(
    item: Trained, task: Dataset, settings: Any, replicate: int, seed: int
) -> tuple[list[Row], Row]:
    """Per chip: the nominal-trained network on the chip (damaged) and after retraining on it
    (repaired); the replicate's row: nominal error, the nominal network trained on for as many
    more epochs (the control, so that more training is not counted as repair), and the mean
    damaged and repaired errors over its chips."""
    base = {"replicate": replicate, "task": item.task, "family": item.family}
    nominal = error(item.model, task, "test", seed)
    control = copy.deepcopy(item.model)
    train(
        control,
        task.train,
        config=train_config(task, settings, derive_seed(seed, "retrain", "control"), retrain=True),
        validation=task.validation,
    )
    continued = error(control, task, "test", seed)
    chips, damaged, repaired = [], [], []
    for chip in range(settings.chips):
        model = copy.deepcopy(item.model)
        resample_chips(model, derive_seed(seed, "chip", chip))
        set_mode(model, "sampled")
        damaged.append(error(model, task, "test", seed))
        history = train(
            model,
            task.train,
            regime=ChipRetrain(),
            config=train_config(task, settings, derive_seed(seed, "retrain", chip), retrain=True),
            validation=task.validation,
        )
        repaired.append(error(model, task, "test", seed))
        chips.append(
            {
                **base,
                "chip": chip,
                "nominal_error": nominal,
                "damaged_error": damaged[-1],
                "repaired_error": repaired[-1],
                "retrain_epochs": len(history.epochs),
            }
        )
    summary = {
        **base,
        "chips": len(damaged),
        "nominal_error": nominal,
        "continued_error": continued,
        "baseline_error": min(nominal, continued),
        "damaged_error": float(np.mean(damaged)),
        "repaired_error": float(np.mean(repaired)),
        "chips_damaged": int(np.sum(np.array(damaged) > nominal)),
        "chips_improved": int(np.sum(np.array(repaired) < np.array(damaged))),
    }
    return chips, summary
