"""Analytic per-layer noise of a network, predicted without sampling and checked by Monte Carlo.

:func:`propagate_noise` walks an ``nn.Sequential`` MLP (as :func:`~circuitnn.nn.build_mlp` makes)
layer by layer, carrying per input sample the clean signal and the covariance of the noise around
it (:mod:`circuitnn.evaluate.moments`): exact through linear layers (``W Σ Wᵀ``) and every noise
source (additive, multiplicative, mixed in either order, correlated or not, per-forward weight
noise), linearized at each activation's operating point (the clean pre-activation of that
sample). The same network then runs ``draws`` noisy passes (vectorized) and the measured variance
over draws is compared with the prediction at every reported layer.

Supported layers: ``nn.Linear`` / ``AnalogLinear`` (per-forward weight noise is propagated; a
chip's fixed mismatch is part of the operating point), :class:`~circuitnn.nn.CircuitActivation`,
elementwise torch activations, the noise modules :class:`~circuitnn.nn.AdditiveNoise`,
:class:`~circuitnn.nn.MultiplicativeNoise`, :class:`~circuitnn.nn.MixedNoise` and
:class:`~circuitnn.nn.CircuitNoise`, and ``nn.Identity`` / ``nn.Flatten`` / ``nn.Dropout`` (which
are identities in evaluation). Convolutions, pooling, normalization and any other module raise a
ConfigError naming the module: the walk handles (batch, features) signals only.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from circuitnn.errors import ConfigError
from circuitnn.evaluate import moments as mo
from circuitnn.evaluate.moments import Moments
from circuitnn.evaluate.perturb import (
    Perturbation,
    as_perturbation,
    default_layers,
    perturbed,
    seeded_noise,
)
from circuitnn.evaluate.propagation_measured import Measurement, measure
from circuitnn.nn._check import integer
from circuitnn.nn.activation import CircuitActivation
from circuitnn.nn.noise import (
    AdditiveNoise,
    CircuitNoise,
    MixedNoise,
    MultiplicativeNoise,
    NoiseModule,
    NoiseSpec,
)
from circuitnn.nn.weights import AnalogLinear, WeightNoiseSpec
from circuitnn.train.data import model_dtype

ELEMENTWISE: tuple[type[nn.Module], ...] = (
    CircuitActivation,
    nn.Tanh,
    nn.ReLU,
    nn.Sigmoid,
    nn.GELU,
    nn.ELU,
    nn.CELU,
    nn.SELU,
    nn.LeakyReLU,
    nn.SiLU,
    nn.Mish,
    nn.Softplus,
    nn.Softsign,
    nn.Hardtanh,
    nn.Hardsigmoid,
    nn.Hardswish,
)
PASS_THROUGH: tuple[type[nn.Module], ...] = (nn.Identity, nn.Flatten, nn.Dropout)
NOISES: tuple[type[NoiseModule], ...] = (
    AdditiveNoise,
    MultiplicativeNoise,
    MixedNoise,
    CircuitNoise,
)
MAX_ELEMENTS = 1 << 22  # covariance entries (samples × N × N) per analytic chunk (32 MiB)


@dataclass(frozen=True)
class LayerNoise:
    """The noise at one layer's output (network units).

    ``signal``: RMS over neurons of the clean output's standard deviation over the samples;
    ``predicted`` / ``measured``: the noise σ, RMS over samples and neurons, analytic and Monte
    Carlo (NaN without draws); ``error``: the relative standard error of ``measured`` (from the
    spread between draws); ``predicted_correlation`` / ``measured_correlation``: the mean
    covariance between two different neurons over the mean variance (0 for independent noise,
    ρ for noise shared with correlation ρ; NaN for a single neuron, and predicted NaN in
    diagonal mode).
    """

    layer: str
    width: int
    signal: float
    predicted: float
    measured: float
    error: float
    predicted_correlation: float
    measured_correlation: float

    @property
    def ratio(self) -> float:
        """Predicted over measured σ."""
        return self.predicted / self.measured if self.measured > 0 else math.nan

    @property
    def relative(self) -> float:
        """Predicted σ over the signal."""
        return self.predicted / self.signal if self.signal > 0 else math.nan

    def row(self) -> dict[str, Any]:
        """The layer as one table row of plain values."""
        return {
            "layer": self.layer,
            "width": self.width,
            "signal": self.signal,
            "predicted": self.predicted,
            "measured": self.measured,
            "ratio": self.ratio,
            "error": self.error,
            "relative": self.relative,
            "predicted_correlation": self.predicted_correlation,
            "measured_correlation": self.measured_correlation,
        }


@dataclass(frozen=True)
class NoisePropagation:
    """Per reported layer: :class:`LayerNoise` (in network order) and the per-sample arrays.

    ``mean``: the clean outputs (B, N); ``variance`` / ``measured_variance``: the predicted and
    measured noise variance per sample and neuron (B, N); ``covariance`` /
    ``measured_covariance``: the full (B, N, N) matrices when asked for (else empty). ``slopes``:
    each activation's linearization slopes (B, N), by activation name.
    """

    layers: tuple[LayerNoise, ...]
    draws: int
    mean: dict[str, np.ndarray]
    variance: dict[str, np.ndarray]
    measured_variance: dict[str, np.ndarray] = field(default_factory=dict)
    covariance: dict[str, np.ndarray] = field(default_factory=dict)
    measured_covariance: dict[str, np.ndarray] = field(default_factory=dict)
    slopes: dict[str, np.ndarray] = field(default_factory=dict)

    def __getitem__(self, layer: str) -> LayerNoise:
        for item in self.layers:
            if item.layer == layer:
                return item
        raise KeyError(f"no layer {layer!r}; have {[item.layer for item in self.layers]}")

    @property
    def names(self) -> list[str]:
        """The reported layers, in network order."""
        return [item.layer for item in self.layers]

    def table(self) -> list[dict[str, Any]]:
        """One row per layer: layer, width, signal, predicted, measured, ratio, error, relative,
        predicted_correlation, measured_correlation."""
        return [item.row() for item in self.layers]


# ------------------------------------------------------------------------------ the model walk


def _leaves(module: nn.Module, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    """The modules a Sequential runs, in order (nested Sequentials flattened), with their names."""
    for name, child in module.named_children():
        qualified = f"{prefix}{name}"
        if isinstance(child, nn.Sequential):
            yield from _leaves(child, qualified + ".")
        else:
            yield qualified, child


def _check_leaf(name: str, module: nn.Module, diagonal: bool) -> None:
    supported = (nn.Linear, *ELEMENTWISE, *PASS_THROUGH, *NOISES)
    if not isinstance(module, supported) or (
        isinstance(module, NoiseModule) and not isinstance(module, NOISES)
    ):
        raise ConfigError(
            f"propagate_noise does not support layer {name!r} ({type(module).__name__}): it "
            "handles MLPs of Linear/AnalogLinear layers, elementwise activations "
            "(CircuitActivation, torch activations) and the noise modules Additive/"
            "Multiplicative/Mixed/CircuitNoise (no convolutions, pooling or normalization)"
        )
    if diagonal and isinstance(module, NoiseModule) and module.correlation > 0:
        raise ConfigError(
            f"layer {name!r} has correlated noise (correlation={module.correlation:g}): "
            "diagonal=True needs uncorrelated noise; use the full covariance"
        )


def _weights(
    layer: nn.Linear,
) -> tuple[torch.Tensor, torch.Tensor | None, WeightNoiseSpec | None]:
    """The weight and bias a linear layer uses in evaluation (a chip's fixed mismatch applied)
    and its per-forward weight noise (None if none is active)."""
    if not isinstance(layer, AnalogLinear):
        return layer.weight, layer.bias, None
    spec = layer._active()
    if spec is None:
        return layer.weight, layer.bias, None
    if spec.per == "chip":
        weight, bias = layer._noisy_parameters(spec, 1)
        return weight, bias, None
    return layer.weight, layer.bias, spec


def _noise(module: NoiseModule, before: Moments, after: Moments, dtype: torch.dtype) -> Moments:
    """``after`` (the moments past the module's clean part) plus the module's noise; ``before``:
    the moments at its input (the operating point of a circuit noise, evaluated in ``dtype``)."""
    rho = module.correlation
    if isinstance(module, AdditiveNoise):
        return mo.additive(after, module.sigma, rho)
    if isinstance(module, MultiplicativeNoise):
        return mo.multiplicative(after, module.sigma, rho)
    if isinstance(module, MixedNoise):
        return mo.mixed(after, module.additive, module.multiplicative, module.order, rho)
    assert isinstance(module, CircuitNoise)
    return mo.circuit(after, module.activation.sigma(before.mean.to(dtype)), module.scale, rho)


def _through(
    module: nn.Module, moments: Moments, dtype: torch.dtype
) -> tuple[Moments, torch.Tensor | None]:
    """The moments after one (checked) module, and the activation slopes if it has any."""
    if isinstance(module, nn.Linear):
        weight, bias, noise = _weights(module)
        return mo.linear(moments, weight, bias, noise), None
    if isinstance(module, CircuitNoise):
        after, slopes = mo.elementwise(moments, module.activation.forward, dtype)
        if module.active and module.scale > 0:
            after = _noise(module, moments, after, dtype)
        return after, slopes
    if isinstance(module, NoiseModule):
        return (_noise(module, moments, moments, dtype) if module.active else moments), None
    if isinstance(module, PASS_THROUGH):
        return moments, None
    return mo.elementwise(moments, module.forward, dtype)


@dataclass
class _Prediction:
    mean: list[torch.Tensor] = field(default_factory=list)
    variance: list[torch.Tensor] = field(default_factory=list)
    pair_sum: float = 0.0  # Σ over samples of the summed off-diagonal covariance
    trace: float = 0.0  # Σ over samples of the trace
    covariance: list[torch.Tensor] = field(default_factory=list)


def _correlation_terms(moments: Moments) -> tuple[float, float]:
    """Σ over samples of the off-diagonal covariance (NaN in diagonal mode) and of the trace."""
    trace = float(moments.variance.sum())
    if moments.diagonal:
        return math.nan, trace
    return float(moments.cov.sum()) - trace, trace


@torch.no_grad()
def _predict(
    model: nn.Module,
    x: torch.Tensor,
    extras: dict[str, NoiseModule],
    names: list[str],
    diagonal: bool,
    covariance: bool,
) -> tuple[dict[str, _Prediction], dict[str, torch.Tensor]]:
    leaves = list(_leaves(model))
    dtype = model_dtype(model)
    widths = [x.shape[1]] + [m.out_features for _, m in leaves if isinstance(m, nn.Linear)]
    chunk = x.shape[0] if diagonal else max(1, MAX_ELEMENTS // max(widths) ** 2)
    found: dict[str, _Prediction] = {name: _Prediction() for name in names}
    slopes: dict[str, list[torch.Tensor]] = {}
    for start in range(0, x.shape[0], chunk):
        moments = Moments.clean(x[start : start + chunk], diagonal)
        for name, module in leaves:
            moments, slope = _through(module, moments, dtype)
            if slope is not None:
                slopes.setdefault(name, []).append(slope)
            if name in extras:
                moments = _noise(extras[name], moments, moments, dtype)
            if name in found:
                record = found[name]
                record.mean.append(moments.mean)
                record.variance.append(moments.variance)
                pairs, trace = _correlation_terms(moments)
                record.pair_sum += pairs
                record.trace += trace
                if covariance:
                    cov = moments.cov if not diagonal else torch.diag_embed(moments.cov)
                    record.covariance.append(cov)
    return found, {name: torch.cat(parts) for name, parts in slopes.items()}


# ---------------------------------------------------------------------------------- the API


def _default_names(leaves: list[tuple[str, nn.Module]]) -> list[str]:
    """Block outputs: the module before each linear layer that follows a module other than a
    linear layer, and the last module."""
    names = [
        leaves[i - 1][0]
        for i in range(1, len(leaves))
        if isinstance(leaves[i][1], nn.Linear) and not isinstance(leaves[i - 1][1], nn.Linear)
    ]
    return list(dict.fromkeys([*names, leaves[-1][0]]))


def _rms(values: torch.Tensor) -> float:
    return math.sqrt(float(values.mean())) if values.numel() else math.nan


def _ratio(pairs: float, trace: float, width: int) -> float:
    return pairs / ((width - 1) * trace) if width > 1 and trace > 0 else math.nan


def propagate_noise(
    model: nn.Module,
    x: torch.Tensor | np.ndarray,
    *,
    noise: Perturbation | str | None = None,
    noise_layers: tuple[str, ...] | None = None,
    layers: tuple[str, ...] | None = None,
    draws: int = 64,
    seed: int = 0,
    diagonal: bool = False,
    covariance: bool = False,
) -> NoisePropagation:
    """Predict each layer's output noise of ``model`` on inputs ``x`` (B, features) analytically,
    and measure it by Monte Carlo.

    Args:
        model: an ``nn.Sequential`` MLP (see the module docstring for the supported layers),
            evaluated in evaluation mode with its own noise modules and weight noise as configured
            (its chip is the operating point).
        x: the input samples (B, features); every sample is its own operating point.
        noise, noise_layers: an extra :class:`~circuitnn.nn.NoiseSpec` or
            :class:`~circuitnn.nn.WeightNoiseSpec` (or a shortcut name) after the named layers
            (default: every activation layer, or every analog layer for weight noise), as in
            :func:`~circuitnn.evaluate.layer_snr`.
        layers: the layers whose output is reported (default: each hidden block's output, i.e.
            the module before every linear layer that follows a module other than a linear
            layer, and the last module).
        draws: Monte Carlo noise draws (0: prediction only; else at least 2), vectorized.
        seed: seed of the Monte Carlo draws.
        diagonal: carry only the variances (faster for wide layers; needs uncorrelated noise and
            ignores the correlations that shared weights create, so it is approximate after a
            linear layer).
        covariance: also return the full (B, N, N) predicted and measured covariances.

    Returns a :class:`NoisePropagation`; ``.table()`` gives predicted σ, measured σ and their
    ratio per layer. Raises ConfigError for unsupported modules (naming them).
    """
    if not isinstance(model, nn.Sequential):
        raise ConfigError(
            f"propagate_noise needs an nn.Sequential MLP (as build_mlp makes), got "
            f"{type(model).__name__}"
        )
    integer("draws", draws, minimum=0)
    if draws == 1:
        raise ConfigError("draws must be 0 (prediction only) or at least 2")
    leaves = list(_leaves(model))
    if not leaves:
        raise ConfigError("the model has no layers")
    for name, module in leaves:
        _check_leaf(name, module, diagonal)
    leaf_names = [name for name, _ in leaves]
    names = list(layers) if layers is not None else _default_names(leaves)
    for name in names:
        if name not in leaf_names:
            raise ConfigError(f"no layer {name!r} to report; layers: {leaf_names}")
    names = [name for name in leaf_names if name in names]
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    x = torch.as_tensor(x).to(device)
    if x.is_floating_point():
        x = x.to(model_dtype(model))
    if x.dim() != 2:
        raise ConfigError(f"x must be (samples, features), got shape {tuple(x.shape)}")
    perturbation = as_perturbation(noise) if noise is not None else None
    extras: dict[str, NoiseModule] = {}
    if isinstance(perturbation, NoiseSpec):
        targets = noise_layers or default_layers(model, perturbation)
        spec = dataclasses.replace(perturbation, in_eval=True, in_training=True)
        for name in targets:
            if name not in leaf_names:
                raise ConfigError(f"no layer {name!r} to put noise after; layers: {leaf_names}")
            extras[name] = spec.build()
            _check_leaf(name, extras[name], diagonal)
    was_training = model.training
    model.eval()
    try:
        with seeded_noise(model, seed), perturbed(model, perturbation, noise_layers, seed):
            predicted, slopes = _predict(model, x, extras, names, diagonal, covariance)
            measured = measure(model, x, names, draws, covariance) if draws else {}
    finally:
        model.train(was_training)
    return _result(names, predicted, measured, slopes, draws)


def _result(
    names: list[str],
    predicted: dict[str, _Prediction],
    measured: dict[str, Measurement],
    slopes: dict[str, torch.Tensor],
    draws: int,
) -> NoisePropagation:
    rows, means, variances, measured_variances = [], {}, {}, {}
    covariances, measured_covariances = {}, {}
    for name in names:
        guess = predicted[name]
        mean, variance = torch.cat(guess.mean), torch.cat(guess.variance)
        width = mean.shape[1]
        signal = _rms(mean.var(dim=0)) if mean.shape[0] > 1 else math.nan
        means[name], variances[name] = mean.cpu().numpy(), variance.cpu().numpy()
        if guess.covariance:
            covariances[name] = torch.cat(guess.covariance).cpu().numpy()
        sigma, error, correlation = math.nan, math.nan, math.nan
        if name in measured:
            record = measured[name]
            found = torch.cat(record.variance)
            measured_variances[name] = found.cpu().numpy()
            sigma = _rms(found)
            assert record.per_draw is not None
            spread = float(record.per_draw.std()) / math.sqrt(draws)
            level = float(record.per_draw.mean())
            error = 0.5 * spread / level if level > 0 else math.nan
            correlation = _ratio(record.pair_sum, record.trace, width)
            if record.covariance:
                measured_covariances[name] = torch.cat(record.covariance).cpu().numpy()
        rows.append(
            LayerNoise(
                layer=name,
                width=width,
                signal=signal,
                predicted=_rms(variance),
                measured=sigma,
                error=error,
                predicted_correlation=_ratio(guess.pair_sum, guess.trace, width),
                measured_correlation=correlation,
            )
        )
    return NoisePropagation(
        layers=tuple(rows),
        draws=draws,
        mean=means,
        variance=variances,
        measured_variance=measured_variances,
        covariance=covariances,
        measured_covariance=measured_covariances,
        slopes={name: value.cpu().numpy() for name, value in slopes.items()},
    )
