"""Weight (parameter) noise: Gaussian perturbations of weights and biases of analog layers.

:class:`AnalogLinear` and :class:`AnalogConv2d` are ``nn.Linear`` / ``nn.Conv2d`` with an optional
:class:`WeightNoiseSpec`:

- ``kind="additive"``: ``w' = w + σ·z`` (σ in weight units);
- ``kind="multiplicative"``: ``w' = w·(1 + σ·z)`` (σ relative);
- ``per="forward"``: a fresh ``z`` for every forward pass (read noise, weight smoothing);
- ``per="chip"``: ``z`` held fixed (mismatch of one fabricated chip), part of ``state_dict``
  (buffers ``mismatch_weight``, ``mismatch_bias``) and redrawn by ``resample(generator)``.

Vectorized evaluation folds ``D`` draws into the batch (see :mod:`circuitnn.nn.draws`): inside
``with draws(D):`` a per-forward layer draws ``D`` weight sets and applies set *d* to rows
``d·B … (d+1)·B - 1`` in one batched matmul (grouped convolution for conv layers); an unrepeated
input (``draws(D, batch=B)``) is broadcast against the ``D`` weight sets without copying it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from circuitnn.errors import ConfigError
from circuitnn.nn._check import choice, flag, non_negative
from circuitnn.nn.draws import current, draw_count, expand, unexpanded
from circuitnn.nn.random import DeviceGenerators, SeedLike, cpu_generator

WEIGHT_KINDS = ("additive", "multiplicative")
PER = ("forward", "chip")


@dataclass(frozen=True)
class WeightNoiseSpec:
    """Gaussian weight noise: ``kind`` additive (``sigma`` in weight units) or multiplicative
    (``sigma`` relative); ``per`` ``"forward"`` (redrawn every pass) or ``"chip"`` (fixed until
    resampled); ``biases``: perturb biases too; ``in_training`` / ``in_eval``: when it is on."""

    kind: str = "multiplicative"
    sigma: float = 0.0
    per: str = "forward"
    biases: bool = True
    in_training: bool = True
    in_eval: bool = True

    def __post_init__(self) -> None:
        choice("WeightNoiseSpec.kind", self.kind, WEIGHT_KINDS)
        non_negative("WeightNoiseSpec.sigma", self.sigma)
        choice("WeightNoiseSpec.per", self.per, PER)
        for name in ("biases", "in_training", "in_eval"):
            flag(f"WeightNoiseSpec.{name}", getattr(self, name))

    def with_level(self, level: float) -> WeightNoiseSpec:
        """The same noise with ``sigma = level``."""
        from dataclasses import replace

        return replace(self, sigma=non_negative("noise level", level))


class _WeightNoiseMixin(nn.Module):
    """Shared state of the analog layers (mixed into nn.Linear / nn.Conv2d)."""

    weight: nn.Parameter
    bias: nn.Parameter | None
    mismatch_weight: torch.Tensor
    mismatch_bias: torch.Tensor

    def _init_noise(self, weight_noise: WeightNoiseSpec | None, seed: int | None) -> None:
        self.weight_noise = weight_noise
        self.noise_enabled = True
        self.generators = DeviceGenerators(seed)
        self.register_buffer("mismatch_weight", torch.zeros_like(self.weight.detach()))
        bias_shape = self.bias.shape if self.bias is not None else (0,)
        self.register_buffer(
            "mismatch_bias",
            torch.zeros(bias_shape, dtype=self.weight.dtype, device=self.weight.device),
        )

    @property
    def weight_noise(self) -> WeightNoiseSpec | None:
        """The weight-noise configuration (None: noiseless); settable."""
        return self._weight_noise

    @weight_noise.setter
    def weight_noise(self, spec: WeightNoiseSpec | None) -> None:
        if spec is not None and not isinstance(spec, WeightNoiseSpec):
            raise ConfigError(f"weight_noise must be a WeightNoiseSpec or None, got {spec!r}")
        self._weight_noise = spec

    def reseed(self, seed: int | None) -> None:
        """Restart the per-forward draws from ``seed`` (None: torch's global RNG)."""
        self.generators.seed = seed

    @torch.no_grad()
    def resample(self, generator: SeedLike = None) -> None:
        """Draw a new fixed (per-chip) mismatch from ``generator``."""
        source = cpu_generator(generator)
        for buffer in (self.mismatch_weight, self.mismatch_bias):
            draw = torch.randn(buffer.shape, generator=source, dtype=torch.float64)
            buffer.copy_(draw.to(buffer.dtype))

    def _active(self) -> WeightNoiseSpec | None:
        spec = self._weight_noise
        if spec is None or spec.sigma == 0.0 or not self.noise_enabled:
            return None
        return spec if (spec.in_training if self.training else spec.in_eval) else None

    def _perturb(
        self, tensor: torch.Tensor, spec: WeightNoiseSpec, z: torch.Tensor
    ) -> torch.Tensor:
        if spec.kind == "additive":
            return tensor + spec.sigma * z
        return tensor * (1.0 + spec.sigma * z)

    def _noisy_parameters(
        self, spec: WeightNoiseSpec, draws: int
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Weight and bias with noise; a leading draw dimension when per-forward and draws > 1."""
        weight, bias = self.weight, self.bias
        if spec.per == "chip":
            weight = self._perturb(weight, spec, self.mismatch_weight)
            if bias is not None and spec.biases:
                bias = self._perturb(bias, spec, self.mismatch_bias)
            return weight, bias
        lead = (draws,) if draws > 1 else ()
        weight = self._perturb(weight, spec, self.generators.randn((*lead, *weight.shape), weight))
        if bias is not None:
            if spec.biases:
                bias = self._perturb(bias, spec, self.generators.randn((*lead, *bias.shape), bias))
            elif lead:
                bias = bias.expand(*lead, *bias.shape)
        return weight, bias

    def _draw_count(self, x: torch.Tensor) -> int:
        context = current()
        if context is None or context.count == 1:
            return 1
        return context.count if unexpanded(x) else draw_count(x)


class AnalogLinear(_WeightNoiseMixin, nn.Linear):
    """``nn.Linear`` with optional weight noise (see :mod:`circuitnn.nn.weights`)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        weight_noise: WeightNoiseSpec | None = None,
        seed: int | None = None,
        generator: SeedLike = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        nn.Linear.__init__(self, in_features, out_features, bias, device=device, dtype=dtype)
        self._init_noise(weight_noise, seed)
        self.resample(generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spec = self._active()
        if spec is None:
            return F.linear(x, self.weight, self.bias)
        draws = self._draw_count(x) if spec.per == "forward" else 1
        weight, bias = self._noisy_parameters(spec, draws)
        if draws == 1:
            return F.linear(x, weight, bias)
        if unexpanded(x):  # one input for every draw: broadcast it against the D weight sets
            out = torch.matmul(x.reshape(1, -1, x.shape[-1]), weight.transpose(1, 2))
            if bias is not None:
                out = out + bias.unsqueeze(1)
            return out.reshape(draws * x.shape[0], *x.shape[1:-1], self.out_features)
        rows = x.reshape(draws, -1, x.shape[-1])
        if bias is None:
            out = torch.bmm(rows, weight.transpose(1, 2))
        else:
            out = torch.baddbmm(bias.unsqueeze(1), rows, weight.transpose(1, 2))
        return out.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, weight_noise={self.weight_noise}"


class AnalogConv2d(_WeightNoiseMixin, nn.Conv2d):
    """``nn.Conv2d`` with optional weight noise (see :mod:`circuitnn.nn.weights`)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        *,
        weight_noise: WeightNoiseSpec | None = None,
        seed: int | None = None,
        generator: SeedLike = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        nn.Conv2d.__init__(
            self,
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            groups,
            bias,
            device=device,
            dtype=dtype,
        )
        self._init_noise(weight_noise, seed)
        self.resample(generator)

    def _conv(
        self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, groups: int
    ) -> torch.Tensor:
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spec = self._active()
        if spec is None:
            return self._conv(x, self.weight, self.bias, self.groups)
        draws = self._draw_count(x) if spec.per == "forward" else 1
        weight, bias = self._noisy_parameters(spec, draws)
        if draws == 1:
            return self._conv(x, weight, bias, self.groups)
        x = expand(x)
        batch = x.shape[0] // draws
        folded = x.reshape(draws, batch, *x.shape[1:]).transpose(0, 1)
        folded = folded.reshape(batch, draws * x.shape[1], *x.shape[2:])
        weight = weight.reshape(draws * self.out_channels, *weight.shape[2:])
        bias = bias.reshape(-1) if bias is not None else None
        out = self._conv(folded, weight, bias, draws * self.groups)
        out = out.reshape(batch, draws, self.out_channels, *out.shape[2:]).transpose(0, 1)
        return out.reshape(draws * batch, self.out_channels, *out.shape[3:])

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, weight_noise={self.weight_noise}"


ANALOG_LAYERS = (AnalogLinear, AnalogConv2d)


def weight_noise_layers(model: nn.Module) -> list[AnalogLinear | AnalogConv2d]:
    """The analog (weight-noise capable) layers of ``model`` in registration order."""
    return [module for module in model.modules() if isinstance(module, ANALOG_LAYERS)]


def to_analog(model: nn.Module, weight_noise: WeightNoiseSpec | None = None) -> nn.Module:
    """Replace every ``nn.Linear`` / ``nn.Conv2d`` of ``model`` (in place) by an analog layer with
    the same weights and ``weight_noise``; returns ``model``."""
    for name, child in list(model.named_children()):
        if isinstance(child, ANALOG_LAYERS):
            child.weight_noise = weight_noise
            continue
        replacement: nn.Module | None = None
        if type(child) is nn.Linear:
            replacement = AnalogLinear(
                child.in_features,
                child.out_features,
                child.bias is not None,
                weight_noise=weight_noise,
                device=child.weight.device,
                dtype=child.weight.dtype,
            )
        elif type(child) is nn.Conv2d and child.padding_mode == "zeros":
            replacement = AnalogConv2d(
                child.in_channels,
                child.out_channels,
                child.kernel_size,
                child.stride,
                child.padding,
                child.dilation,
                child.groups,
                child.bias is not None,
                weight_noise=weight_noise,
                device=child.weight.device,
                dtype=child.weight.dtype,
            )
        if replacement is None:
            to_analog(child, weight_noise)
            continue
        with torch.no_grad():
            replacement.weight.copy_(child.weight)
            if child.bias is not None:
                replacement.bias.copy_(child.bias)
        setattr(model, name, replacement)
    return model
