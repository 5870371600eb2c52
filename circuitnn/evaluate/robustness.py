"""Robustness curves, midpoints and Walking-Noise layer sweeps.

The *midpoint* of a noise is the level at which a metric has fallen halfway from its clean value
to chance, ``target = (clean + chance) / 2``, with chance 1/classes for accuracy, log(classes) for
cross-entropy, 0 for R² and the error of predicting the targets' mean (median) for RMSE (MAE).
It is found by bisection on a logarithmic level axis, every level
evaluated by :func:`~circuitnn.evaluate.monte_carlo` with the same seed (common random numbers, so
the curve is smooth in the level).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from circuitnn.errors import ConfigError
from circuitnn.evaluate.montecarlo import MAX_ROWS, monte_carlo
from circuitnn.evaluate.perturb import Perturbation, as_perturbation, default_layers
from circuitnn.nn._check import integer, positive
from circuitnn.train.data import Data, as_tensors, model_dtype
from circuitnn.train.tasks import HIGHER_IS_BETTER, Task, as_task


@dataclass(frozen=True)
class RobustnessCurve:
    """``metric`` versus noise ``levels``: ``mean``, ``std`` (over chips × draws) and ``sem``."""

    noise: dict
    metric: str
    levels: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    sem: np.ndarray

    def to_dict(self) -> dict:
        """JSON-friendly."""
        return {
            "noise": self.noise,
            "metric": self.metric,
            **{k: getattr(self, k).tolist() for k in ("levels", "mean", "std", "sem")},
        }


@dataclass(frozen=True)
class Midpoint:
    """The noise level at which ``metric`` falls halfway from ``clean`` to ``chance``.

    ``level`` (interpolated inside the final bracket on a log axis); ``uncertainty``: the
    bracket's half-width combined in quadrature with the metric's standard error divided by the
    curve's slope there (``bracket`` and ``statistical`` separately); ``low`` / ``high``: the
    final bracket; ``evaluations``: (level, mean, sem) of every evaluation, in order.
    """

    level: float
    uncertainty: float
    bracket: float
    statistical: float
    low: float
    high: float
    clean: float
    chance: float
    target: float
    metric: str
    evaluations: list[tuple[float, float, float]]


def _prepare(
    model: nn.Module, data: Data, task: Task, metric: str | None
) -> tuple[str, torch.Tensor]:
    metric = metric or task.main_metric
    if metric not in task.metrics:
        raise ConfigError(f"metric must be one of {task.metrics} for {task.kind}, got {metric!r}")
    _, y = as_tensors(data)
    return metric, y


def _describe(noise: Perturbation) -> dict:
    return {"type": type(noise).__name__, **dataclasses.asdict(noise)}


def robustness_curve(
    model: nn.Module,
    data: Data,
    levels: list[float] | np.ndarray,
    *,
    noise: Perturbation | str = "additive",
    layers: tuple[str, ...] | None = None,
    task: Task | str = "classification",
    metric: str | None = None,
    chips: int | None = None,
    draws: int = 16,
    seed: int = 0,
    own_noise: bool = True,
    max_rows: int = MAX_ROWS,
) -> RobustnessCurve:
    """``metric`` of ``model`` with ``noise`` (its level set to each of ``levels``) at ``layers``;
    level 0 is the model without the extra noise."""
    task = as_task(task)
    base = as_perturbation(noise)
    metric, _ = _prepare(model, data, task, metric)
    levels = np.asarray(levels, dtype=np.float64)
    if levels.ndim != 1 or len(levels) == 0 or np.any(levels < 0):
        raise ConfigError("levels must be a non-empty list of noise levels >= 0")
    means, stds, sems = [], [], []
    for level in levels:
        result = monte_carlo(
            model,
            data,
            task=task,
            chips=chips,
            draws=draws,
            seed=seed,
            noise=base.with_level(float(level)) if level > 0 else None,
            layers=layers,
            own_noise=own_noise,
            max_rows=max_rows,
        )
        means.append(result.mean(metric))
        stds.append(result.std(metric))
        sems.append(result.sem(metric))
    return RobustnessCurve(
        _describe(base), metric, levels, np.array(means), np.array(stds), np.array(sems)
    )


def midpoint(
    model: nn.Module,
    data: Data,
    *,
    noise: Perturbation | str = "additive",
    layers: tuple[str, ...] | None = None,
    task: Task | str = "classification",
    metric: str | None = None,
    low: float = 1e-3,
    high: float = 10.0,
    tolerance: float = 0.05,
    max_evaluations: int = 24,
    chance: float | None = None,
    chips: int | None = None,
    draws: int = 16,
    seed: int = 0,
    own_noise: bool = True,
    max_rows: int = MAX_ROWS,
) -> Midpoint:
    """Bisect for the level of ``noise`` where ``metric`` is halfway from clean to ``chance``.

    The bracket starts at [``low``, ``high``] (widened ×10 up to 4 times each way if needed) and
    halves on a log axis until ``high/low ≤ 1 + tolerance`` or ``max_evaluations`` evaluations.
    """
    task = as_task(task)
    base = as_perturbation(noise)
    metric, y = _prepare(model, data, task, metric)
    positive("low", low)
    positive("high", high)
    positive("tolerance", tolerance)
    integer("max_evaluations", max_evaluations, minimum=3)
    if high <= low:
        raise ConfigError(f"high ({high}) must exceed low ({low})")
    evaluations: list[tuple[float, float, float]] = []

    def measure(level: float) -> tuple[float, float]:
        result = monte_carlo(
            model,
            data,
            task=task,
            chips=chips,
            draws=draws,
            seed=seed,
            noise=base.with_level(level) if level > 0 else None,
            layers=layers,
            own_noise=own_noise,
            max_rows=max_rows,
        )
        value, error = result.mean(metric), result.sem(metric)
        if level > 0:
            evaluations.append((level, value, error))
        return value, error

    clean, _ = measure(0.0)
    outputs = _outputs(model, data)
    chance_level = task.chance(metric, outputs, y) if chance is None else float(chance)
    target = 0.5 * (clean + chance_level)
    direction = 1.0 if clean > chance_level else -1.0
    if clean == chance_level:
        raise ConfigError(f"the clean {metric} ({clean:g}) is already at chance")

    def above(value: float) -> float:
        return direction * (value - target)

    low_value, _ = measure(low)
    for _ in range(4):
        if above(low_value) > 0:
            break
        low /= 10
        low_value, _ = measure(low)
    else:
        if above(low_value) <= 0:
            raise ConfigError(f"{metric} is below halfway already at noise level {low:g}")
    high_value, _ = measure(high)
    for _ in range(4):
        if above(high_value) <= 0:
            break
        high *= 10
        high_value, _ = measure(high)
    else:
        if above(high_value) > 0:
            raise ConfigError(
                f"{metric} does not fall halfway to chance ({target:g}) by noise level {high:g}"
            )
    while high / low > 1 + tolerance and len(evaluations) < max_evaluations:
        middle = math.sqrt(low * high)
        value, _ = measure(middle)
        if above(value) > 0:
            low, low_value = middle, value
        else:
            high, high_value = middle, value
    a, b = above(low_value), above(high_value)
    weight = a / (a - b) if a != b else 0.5
    log_level = math.log(low) + weight * (math.log(high) - math.log(low))
    level = math.exp(log_level)
    slope = (high_value - low_value) / (high - low)
    nearest = min(evaluations, key=lambda row: abs(math.log(row[0]) - log_level))
    statistical = nearest[2] / abs(slope) if slope != 0 else math.inf
    bracket = 0.5 * (high - low)
    return Midpoint(
        level=level,
        uncertainty=math.hypot(bracket, statistical),
        bracket=bracket,
        statistical=statistical,
        low=low,
        high=high,
        clean=clean,
        chance=chance_level,
        target=target,
        metric=metric,
        evaluations=evaluations,
    )


@torch.no_grad()
def _outputs(model: nn.Module, data: Data) -> int:
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    x, _ = as_tensors(data, "data", device, model_dtype(model))
    was_training = model.training
    model.eval()
    try:
        out = model(x[:1])
    finally:
        model.train(was_training)
    return int(out.shape[-1])


def layer_sweep(
    model: nn.Module,
    data: Data,
    *,
    noise: Perturbation | str = "additive",
    layers: tuple[str, ...] | None = None,
    **options: Any,
) -> dict[str, Midpoint]:
    """Walking Noise: the :func:`midpoint` of ``noise`` put into one layer at a time (default:
    every activation layer, or every analog layer for weight noise). ``options`` go to
    :func:`midpoint`."""
    base = as_perturbation(noise)
    names = default_layers(model, base) if layers is None else tuple(layers)
    return {name: midpoint(model, data, noise=base, layers=(name,), **options) for name in names}


def higher_is_better(metric: str) -> bool:
    """Whether larger values of ``metric`` are better."""
    return HIGHER_IS_BETTER[metric]
