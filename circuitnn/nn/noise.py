"""Activation noise: additive, multiplicative, mixed and circuit-derived, correlated or not.

Every noise module adds Gaussian noise to its input, independently per sample (dimension 0, which
also carries the draw dimension of vectorized evaluation). ``correlation`` ρ ∈ [0, 1] splits each
standard normal into a part shared by the whole layer (one number per sample) and a part of each
neuron's own::

    z = √ρ · z_shared + √(1 − ρ) · z_own        (unit variance; correlation ρ between neurons)

- :class:`AdditiveNoise`: ``y = x + σ·z`` (σ in network units);
- :class:`MultiplicativeNoise`: ``y = x·(1 + σ·z)`` (σ relative);
- :class:`MixedNoise`: both, with independent draws, in a selectable order;
- :class:`CircuitNoise`: wraps a :class:`~circuitnn.nn.CircuitActivation` and adds each neuron's
  own simulated, bias-dependent output noise: ``y = f(x) + scale·σ_out(x)·z``.

Each module is on in training (``in_training``) and/or evaluation (``in_eval``), switched by the
usual ``module.train()`` / ``module.eval()``; ``enabled=False`` silences it entirely. ``seed``
gives the module its own generator (reproducible draws); ``None`` draws from torch's global RNG.
σ = 0 returns the input itself (exactly clean). Configs live in :class:`NoiseSpec` (frozen).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TypedDict, Unpack

import torch
from torch import nn

from circuitnn.errors import ConfigError
from circuitnn.nn._check import choice, flag, non_negative, unit_interval
from circuitnn.nn.activation import CircuitActivation
from circuitnn.nn.draws import expand
from circuitnn.nn.random import DeviceGenerators

KINDS = ("additive", "multiplicative", "mixed", "circuit")
ORDERS = ("additive_first", "multiplicative_first")


class Switches(TypedDict, total=False):
    """The keyword settings every noise module shares (see :class:`NoiseModule`)."""

    correlation: float
    in_training: bool
    in_eval: bool
    seed: int | None


class NoiseModule(nn.Module):
    """Base of the activation-noise modules: switches, seed and correlated draws."""

    def __init__(
        self,
        *,
        correlation: float = 0.0,
        in_training: bool = True,
        in_eval: bool = True,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.correlation = unit_interval("correlation", correlation)
        self.in_training = flag("in_training", in_training)
        self.in_eval = flag("in_eval", in_eval)
        self.enabled = True
        self.generators = DeviceGenerators(seed)

    def reseed(self, seed: int | None) -> None:
        """Restart the module's draws from ``seed`` (None: torch's global RNG)."""
        self.generators.seed = seed

    @property
    def active(self) -> bool:
        """Whether the module adds noise in its current mode (train/eval)."""
        return self.enabled and (self.in_training if self.training else self.in_eval)

    def normal(self, like: torch.Tensor, mean: float = 0.0, std: float = 1.0) -> torch.Tensor:
        """A new tensor shaped like ``like`` of N(``mean``, ``std``²) numbers, correlated ρ across
        all but dimension 0 (the part shared by the layer is one number per row)."""
        rho = self.correlation
        if rho == 0.0:
            return self.generators.normal(like, mean, std)
        shared_shape = (like.shape[0],) + (1,) * (like.dim() - 1)
        shared = self.generators.normal(like.new_empty(shared_shape), 0.0, std * math.sqrt(rho))
        if rho == 1.0:
            return shared.add_(mean).expand_as(like).clone()
        own = self.generators.normal(like, mean, std * math.sqrt(1.0 - rho))
        return own.add_(shared)

    def _switches(self) -> str:
        return (
            f"correlation={self.correlation:g}, in_training={self.in_training}, "
            f"in_eval={self.in_eval}, seed={self.generators.seed}"
        )


class AdditiveNoise(NoiseModule):
    """``y = x + σ·z``: σ (network units) RMS noise added to every element."""

    def __init__(self, sigma: float, **switches: Unpack[Switches]) -> None:
        super().__init__(**switches)
        self.sigma = non_negative("sigma", sigma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.active or self.sigma == 0.0:
            return x
        x = expand(x)
        noise = self.normal(x, 0.0, self.sigma)
        return x + noise if _tracked(x) else noise.add_(x)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma:g}, {self._switches()}"


class MultiplicativeNoise(NoiseModule):
    """``y = x·(1 + σ·z)``: relative RMS noise σ (dimensionless)."""

    def __init__(self, sigma: float, **switches: Unpack[Switches]) -> None:
        super().__init__(**switches)
        self.sigma = non_negative("sigma", sigma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.active or self.sigma == 0.0:
            return x
        x = expand(x)
        gain = self.normal(x, 1.0, self.sigma)
        return x * gain if _tracked(x) else gain.mul_(x)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma:g}, {self._switches()}"


class MixedNoise(NoiseModule):
    """Additive σ_a and multiplicative σ_m noise with independent draws.

    ``order="additive_first"``: ``y = (x + σ_a·z_a)·(1 + σ_m·z_m)``;
    ``order="multiplicative_first"``: ``y = x·(1 + σ_m·z_m) + σ_a·z_a``.
    """

    def __init__(
        self,
        additive: float,
        multiplicative: float,
        order: str = "multiplicative_first",
        **switches: Unpack[Switches],
    ) -> None:
        super().__init__(**switches)
        self.additive = non_negative("additive", additive)
        self.multiplicative = non_negative("multiplicative", multiplicative)
        self.order = choice("order", order, ORDERS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.active or (self.additive == 0.0 and self.multiplicative == 0.0):
            return x
        x = expand(x)
        if self.order == "additive_first" and self.additive:
            x = x + self.normal(x, 0.0, self.additive)
        if self.multiplicative:
            x = x * self.normal(x, 1.0, self.multiplicative)
        if self.order == "multiplicative_first" and self.additive:
            x = x + self.normal(x, 0.0, self.additive)
        return x

    def extra_repr(self) -> str:
        return (
            f"additive={self.additive:g}, multiplicative={self.multiplicative:g}, "
            f"order={self.order!r}, {self._switches()}"
        )


class CircuitNoise(NoiseModule):
    """A :class:`CircuitActivation` with its neurons' own simulated output noise.

    ``y = f(x) + scale·σ_out(x)·z``: σ_out(x) is each neuron's RMS output noise at its bias point
    ``x`` (from the family's noise analysis, interpolated per neuron, in network units through the
    family's scaling). It *replaces* the activation in a network (``self.activation`` holds it).
    Raises ConfigError if the family has no noise data (for an empty activation, built with
    ``family=None``: when it runs, if the state_dict loaded into it had none).
    """

    def __init__(
        self, activation: CircuitActivation, scale: float = 1.0, **switches: Unpack[Switches]
    ) -> None:
        super().__init__(**switches)
        if not isinstance(activation, CircuitActivation):
            raise ConfigError(
                f"CircuitNoise needs a CircuitActivation, got {type(activation).__name__}"
            )
        if not activation.empty and not activation.has_noise:
            raise ConfigError(
                f"family {activation.family_name()} has no noise data "
                "(Family.noise is None): extract it with the noise analysis to use CircuitNoise"
            )
        self.activation = activation
        self.scale = non_negative("scale", scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.active or self.scale == 0.0:
            return self.activation(x)
        x = expand(x)
        y = self.activation(x)
        noise = self.normal(y, 0.0, self.scale)
        if _tracked(x):
            return y + self.activation.sigma(x) * noise
        return noise.mul_(self.activation.sigma(x)).add_(y)

    def extra_repr(self) -> str:
        return f"scale={self.scale:g}, {self._switches()}"


@dataclass(frozen=True)
class NoiseSpec:
    """Configuration of one activation-noise module.

    ``kind``: ``"additive"`` (``sigma`` in network units), ``"multiplicative"`` (``sigma``
    relative), ``"mixed"`` (``sigma`` additive and ``multiplicative`` relative, default equal to
    ``sigma``; ``order`` as in :class:`MixedNoise`) or ``"circuit"`` (``sigma`` multiplies the
    family's simulated σ_out; needs a :class:`CircuitActivation` to wrap). ``sigma`` defaults to
    1 for circuit noise (the simulated noise as it is) and 0 otherwise. ``correlation`` ρ in
    [0, 1]; ``in_training`` / ``in_eval``: when the noise is on.
    """

    kind: str = "additive"
    sigma: float | None = None
    multiplicative: float | None = None
    order: str = "multiplicative_first"
    correlation: float = 0.0
    in_training: bool = True
    in_eval: bool = True

    def __post_init__(self) -> None:
        choice("NoiseSpec.kind", self.kind, KINDS)
        if self.sigma is None:
            object.__setattr__(self, "sigma", 1.0 if self.kind == "circuit" else 0.0)
        object.__setattr__(self, "sigma", non_negative("NoiseSpec.sigma", self.sigma))
        if self.multiplicative is not None:
            if self.kind != "mixed":
                raise ConfigError("NoiseSpec.multiplicative applies to kind='mixed' only")
            non_negative("NoiseSpec.multiplicative", self.multiplicative)
        choice("NoiseSpec.order", self.order, ORDERS)
        unit_interval("NoiseSpec.correlation", self.correlation)
        flag("NoiseSpec.in_training", self.in_training)
        flag("NoiseSpec.in_eval", self.in_eval)

    def with_level(self, level: float) -> NoiseSpec:
        """The same noise at strength ``level`` (``sigma = level``; for mixed noise the
        multiplicative part keeps its ratio to the additive part, 1 when unset)."""
        level = non_negative("noise level", level)
        if self.kind != "mixed" or self.multiplicative is None:
            return replace(self, sigma=level)
        ratio = self.multiplicative / self.sigma if self.sigma > 0 else 1.0
        return replace(self, sigma=level, multiplicative=level * ratio)

    def build(
        self, activation: CircuitActivation | None = None, seed: int | None = None
    ) -> NoiseModule:
        """The module (``activation``: the layer a circuit noise wraps)."""
        switches: Switches = {
            "correlation": self.correlation,
            "in_training": self.in_training,
            "in_eval": self.in_eval,
            "seed": seed,
        }
        if self.kind == "additive":
            return AdditiveNoise(self.sigma, **switches)
        if self.kind == "multiplicative":
            return MultiplicativeNoise(self.sigma, **switches)
        if self.kind == "mixed":
            multiplicative = self.sigma if self.multiplicative is None else self.multiplicative
            return MixedNoise(self.sigma, multiplicative, self.order, **switches)
        if activation is None:
            raise ConfigError("NoiseSpec(kind='circuit') needs the CircuitActivation it wraps")
        return CircuitNoise(activation, self.sigma, **switches)


def _tracked(x: torch.Tensor) -> bool:
    """Whether autograd records operations on ``x`` (then no in-place shortcuts)."""
    return torch.is_grad_enabled() and x.requires_grad


def noise_modules(model: nn.Module) -> list[NoiseModule]:
    """Every noise module in ``model``, in registration order."""
    return [module for module in model.modules() if isinstance(module, NoiseModule)]
