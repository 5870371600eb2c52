"""What training did to a network's weights: magnitudes, a binarization index, the activations they
produce, and the flatness of the loss around them.

- **Binarization index** (:func:`bimodality`): Sarle's bimodality coefficient
  ``b = (g² + 1) / κ`` with ``g`` the skewness and ``κ`` the (non-excess) kurtosis of a set of
  values (population moments). It is scale-free: ``b = 1`` exactly for a two-valued set (e.g.
  weights ``±a``: binary), ``5/9`` for a uniform distribution, ``1/3`` for a Gaussian and lower for
  heavy tails (a few large weights among many small ones). For weights it is taken over each
  neuron's fan-in (one row of the weight matrix: a binarized neuron has all its weights at
  ``±a_row``) and averaged over the rows of a layer; for activations over the samples of each
  neuron, averaged over neurons.
- **Flatness** (:func:`flatness`): the increase of the task loss from ``θ`` to ``θ + α·d`` along
  random *filter-normalized* directions ``d`` (Li et al., 2018): a Gaussian direction whose every
  row (the fan-in of one neuron) is rescaled to the norm of the same row of ``θ``, biases not
  moved; ``α`` is thus relative to each neuron's own weight norm (α = 1: a perturbation as large
  as the weights). Averaged over ``directions`` random directions and both signs ±α, per step α and
  over all steps. Smaller is flatter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from circuitnn.nn import activation_layers, quiet
from circuitnn.nn.random import derive_seed
from circuitnn.nn.weights import ANALOG_LAYERS
from circuitnn.train import perturbable
from circuitnn.train.data import Data, as_tensors, model_dtype
from circuitnn.train.tasks import Task, as_task

GAUSSIAN_BIMODALITY = 1.0 / 3.0


def bimodality(values: torch.Tensor) -> torch.Tensor:
    """Sarle's bimodality coefficient ``(g² + 1)/κ`` along the last dimension (population
    moments; NaN where the values do not vary). 1 for two-valued data, 1/3 for a Gaussian."""
    x = values.double()
    centred = x - x.mean(dim=-1, keepdim=True)
    m2 = centred.pow(2).mean(dim=-1)
    m3 = centred.pow(3).mean(dim=-1)
    m4 = centred.pow(4).mean(dim=-1)
    skew_squared = m3.pow(2) / m2.pow(3)
    kurtosis = m4 / m2.pow(2)
    result = (skew_squared + 1) / kurtosis
    return torch.where(m2 > 0, result, torch.full_like(result, math.nan))


def _nanmean(values: torch.Tensor) -> float:
    """Mean of the non-NaN entries (NaN when there are none)."""
    finite = values[~torch.isnan(values)]
    return float(finite.mean()) if finite.numel() else math.nan


def weight_stats(model: nn.Module) -> list[dict[str, float | str | int]]:
    """Per analog layer (``linear1``, …, ``output``): ``weights`` (count), ``rms`` and ``mean_abs``
    of the weights (network units), ``bimodality`` (mean over the rows of the row-wise index) and
    ``bias_rms``."""
    rows: list[dict[str, float | str | int]] = []
    for name, module in model.named_modules():
        if not isinstance(module, ANALOG_LAYERS):
            continue
        weight = module.weight.detach().double().flatten(1)
        index = bimodality(weight)
        bias = module.bias.detach().double() if module.bias is not None else torch.zeros(1)
        rows.append(
            {
                "layer": name,
                "weights": int(weight.numel()),
                "rms": float(weight.pow(2).mean().sqrt()),
                "mean_abs": float(weight.abs().mean()),
                "bimodality": _nanmean(index),
                "bias_rms": float(bias.pow(2).mean().sqrt()),
            }
        )
    return rows


@torch.no_grad()
def activation_stats(model: nn.Module, x: torch.Tensor) -> list[dict[str, float | str]]:
    """Per activation layer, on inputs ``x`` with all noise silenced (evaluation mode): ``rms`` of
    the activations (network units), ``signal``: their variance over the samples averaged over
    neurons (network units²: the signal power an additive noise of variance σ² is compared with,
    SNR = signal/σ²), ``bimodality`` (per neuron over the samples, averaged over neurons; constant
    neurons left out) and ``pre_rms``, the RMS of the layer's input (the pre-activation)."""
    names = activation_layers(model)
    modules = dict(model.named_modules())
    outputs: dict[str, torch.Tensor] = {}
    inputs: dict[str, torch.Tensor] = {}
    handles = []
    for name in names:

        def hook(module: nn.Module, args: tuple, output: torch.Tensor, name: str = name) -> None:
            inputs[name] = args[0].detach()
            outputs[name] = output.detach()

        handles.append(modules[name].register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with quiet(model):
            model(x.to(model_dtype(model)))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    rows: list[dict[str, float | str]] = []
    for name in names:
        y = outputs[name].double().flatten(1)
        index = bimodality(y.T)
        rows.append(
            {
                "layer": name,
                "rms": float(y.pow(2).mean().sqrt()),
                "signal": float(y.var(dim=0, unbiased=False).mean()),
                "bimodality": _nanmean(index),
                "pre_rms": float(inputs[name].double().pow(2).mean().sqrt()),
            }
        )
    return rows


@dataclass(frozen=True)
class Flatness:
    """Loss increase along random filter-normalized directions: ``steps`` (α), ``increase``
    (mean over directions and ±α, per step), ``spread`` (standard deviation per step), ``loss``
    at θ itself, and ``mean`` (over steps: the flatness figure; smaller is flatter)."""

    steps: tuple[float, ...]
    increase: tuple[float, ...]
    spread: tuple[float, ...]
    loss: float

    @property
    def mean(self) -> float:
        """Mean loss increase over all steps."""
        return float(np.mean(self.increase))


def _direction(
    params: dict[str, torch.Tensor], generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """A Gaussian direction with every row rescaled to the norm of the parameter's row; 1-D
    parameters (biases) are not moved."""
    direction = {}
    for name, value in params.items():
        if value.dim() < 2:
            direction[name] = torch.zeros_like(value)
            continue
        z = torch.randn(value.shape, generator=generator, dtype=torch.float64).to(value)
        rows = value.flatten(1).norm(dim=1) / z.flatten(1).norm(dim=1).clamp_min(1e-30)
        direction[name] = z * rows.view(-1, *([1] * (value.dim() - 1)))
    return direction


@torch.no_grad()
def flatness(
    model: nn.Module,
    data: Data,
    *,
    steps: Sequence[float] = (0.25, 0.5, 1.0),
    directions: int = 4,
    task: Task | str = "classification",
    samples: int = 2048,
    seed: int = 0,
) -> Flatness:
    """The task loss increase of ``model`` on (the first ``samples`` of) ``data`` along
    ``directions`` random filter-normalized directions at relative steps ``±steps`` (noise
    silenced, evaluation mode; the model is not changed). See the module docstring."""
    task = as_task(task)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    x, y = as_tensors(data, "data", device, model_dtype(model))
    x, y = x[:samples], task.targets(y[:samples])
    params = {name: p.detach() for name, p in perturbable(model).items()}
    generator = torch.Generator().manual_seed(derive_seed(seed, "flatness"))
    was_training = model.training
    model.eval()
    increases: dict[float, list[float]] = {float(step): [] for step in steps}
    try:
        with quiet(model):
            base = float(task.loss(model(x), y))
            for _ in range(directions):
                direction = _direction(params, generator)
                for step in increases:
                    for sign in (1.0, -1.0):
                        moved = {n: p + sign * step * direction[n] for n, p in params.items()}
                        loss = float(task.loss(functional_call(model, moved, (x,)), y))
                        increases[step].append(loss - base)
    finally:
        model.train(was_training)
    return Flatness(
        steps=tuple(increases),
        increase=tuple(float(np.mean(v)) for v in increases.values()),
        spread=tuple(float(np.std(v)) for v in increases.values()),
        loss=base,
    )
