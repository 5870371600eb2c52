"""Training regimes: small swappable objects that shape what a training step sees.

A regime installs whatever it needs on the model for the duration of training (hooks, modes) and
computes each step's loss. All are frozen dataclasses; pass one to :func:`circuitnn.train.train`.

- :class:`Clean`: the model as it is, with every noise module and weight noise silenced;
- :class:`NoiseInjection`: extra activation noise (a :class:`~circuitnn.nn.NoiseSpec`) after the
  chosen layers, or the model's own noise modules as configured;
- :class:`Dropout`: dropout after the chosen layers;
- :class:`WeightSmoothing`: each step at randomly perturbed weights ``θ + ε`` (gradient there);
- :class:`AdversarialWeights`: task loss plus ``β·distance(f(θ), f(θ + δ*))`` where δ* is a
  projected sign-gradient attack inside ``±ζ|θ|``;
- :class:`ChipRetrain`: fine-tune on one chip's realized activations (CircuitActivation layers in
  ``"sampled"`` mode, optionally on a freshly drawn chip).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from circuitnn.errors import ConfigError
from circuitnn.nn._check import choice, flag, integer, non_negative, positive, unit_interval
from circuitnn.nn.activation import MODES
from circuitnn.nn.model import activation_layers, circuit_activations, inject, quiet
from circuitnn.nn.noise import NoiseSpec
from circuitnn.nn.random import derive_seed
from circuitnn.nn.weights import WEIGHT_KINDS
from circuitnn.train.attack import perturbable, projected_attack, shifted
from circuitnn.train.tasks import Task

Undo = Callable[[], None]


@dataclass(frozen=True)
class Regime:
    """Base regime: plain loss, nothing installed."""

    @property
    def name(self) -> str:
        """Short name (the class name in snake case)."""
        text = type(self).__name__
        return "".join("_" + c.lower() if c.isupper() else c for c in text).lstrip("_")

    def describe(self) -> dict[str, Any]:
        """Name and settings (JSON-friendly) for the training history."""
        settings = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            settings[item.name] = (
                dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
            )
        return {"name": self.name, **settings}

    def install(self, model: nn.Module, task: Task, seed: int) -> list[Undo]:
        """Prepare ``model`` for training; returns callbacks that undo it afterwards."""
        return []

    def loss(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        task: Task,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """The loss of one training step (to be back-propagated)."""
        return task.loss(model(x), y)


def _enter(manager: Any) -> Undo:
    manager.__enter__()
    return lambda: manager.__exit__(None, None, None)


def _layers(model: nn.Module, layers: tuple[str, ...] | None) -> tuple[str, ...]:
    names = tuple(activation_layers(model)) if layers is None else layers
    if not names:
        raise ConfigError("the model has no activation layers to place noise or dropout after")
    return names


@dataclass(frozen=True)
class Clean(Regime):
    """Train without any noise: the model's noise modules and weight noise are silenced."""

    def install(self, model: nn.Module, task: Task, seed: int) -> list[Undo]:
        return [_enter(quiet(model))]


@dataclass(frozen=True)
class NoiseInjection(Regime):
    """Train with activation noise.

    ``noise``: a :class:`~circuitnn.nn.NoiseSpec` placed after each of ``layers`` (default: every
    activation layer) during training only (kind ``"circuit"`` is not injectable: build the model
    with circuit noise instead); ``None``: train with the model's own noise modules and weight
    noise as configured (their ``in_training`` switches).
    """

    noise: NoiseSpec | None = None
    layers: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.noise is not None:
            if not isinstance(self.noise, NoiseSpec):
                raise ConfigError(f"NoiseInjection.noise must be a NoiseSpec, got {self.noise!r}")
            if self.noise.kind == "circuit":
                raise ConfigError(
                    "NoiseInjection.noise cannot be kind='circuit': build the model with a "
                    "circuit noise (LayerSpec noise) and use NoiseInjection() instead"
                )

    def install(self, model: nn.Module, task: Task, seed: int) -> list[Undo]:
        if self.noise is None:
            return []
        spec = dataclasses.replace(self.noise, in_training=True, in_eval=False)
        extras = {
            name: spec.build(seed=derive_seed(seed, "inject", name))
            for name in _layers(model, self.layers)
        }
        return [_enter(inject(model, extras))]


class _Dropout(nn.Module):
    def __init__(self, p: float, seed: int) -> None:
        super().__init__()
        self.p = p
        self.generator = torch.Generator()
        self.generator.manual_seed(seed)
        self._device_generators: dict[torch.device, torch.Generator] = {}
        self.seed = seed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        generator = self._device_generators.get(x.device)
        if generator is None:
            generator = torch.Generator(device=x.device)
            generator.manual_seed(self.seed)
            self._device_generators[x.device] = generator
        keep = torch.empty_like(x).bernoulli_(1 - self.p, generator=generator)
        return x * keep / (1 - self.p)


@dataclass(frozen=True)
class Dropout(Regime):
    """Dropout with probability ``p`` after each of ``layers`` (default: every activation
    layer), in training only."""

    p: float = 0.1
    layers: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        unit_interval("Dropout.p", self.p, open_right=True)

    def install(self, model: nn.Module, task: Task, seed: int) -> list[Undo]:
        extras = {
            name: _Dropout(self.p, derive_seed(seed, "dropout", name))
            for name in _layers(model, self.layers)
        }
        return [_enter(inject(model, extras))]


def _random_like(tensor: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(tensor.shape, generator=generator, dtype=torch.float64).to(tensor)


@dataclass(frozen=True)
class WeightSmoothing(Regime):
    """Each step at weights perturbed by fresh Gaussian noise: ``θ + σ·z`` (``kind="additive"``)
    or ``θ·(1 + σ·z)`` (``"multiplicative"``); the gradient at the perturbed point updates θ.
    ``biases``: perturb biases too."""

    sigma: float = 0.05
    kind: str = "multiplicative"
    biases: bool = True

    def __post_init__(self) -> None:
        non_negative("WeightSmoothing.sigma", self.sigma)
        choice("WeightSmoothing.kind", self.kind, WEIGHT_KINDS)
        flag("WeightSmoothing.biases", self.biases)

    def loss(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        task: Task,
        generator: torch.Generator,
    ) -> torch.Tensor:
        params = perturbable(model, self.biases)
        delta = {}
        for name, parameter in params.items():
            z = _random_like(parameter.detach(), generator)
            scale = self.sigma if self.kind == "additive" else self.sigma * parameter.detach()
            delta[name] = scale * z
        return task.loss(functional_call(model, shifted(params, delta), (x,)), y)


@dataclass(frozen=True)
class AdversarialWeights(Regime):
    """Adversarial weight perturbation.

    Each step: δ* = a ``steps``-step projected sign-gradient attack (random start; step
    ``step_fraction``·ζ|θ|, default 2.5/steps) that maximizes ``distance(f(θ), f(θ + δ))`` inside
    ``|δ| ≤ ζ·|θ|``; loss = ``task(f(θ), y) + β·distance(f(θ), f(θ + δ*))`` with gradients through
    both terms. Distance: KL between softmax outputs (classification) or MSE (regression).
    """

    zeta: float = 0.1
    beta: float = 0.5
    steps: int = 3
    step_fraction: float | None = None
    biases: bool = True

    def __post_init__(self) -> None:
        non_negative("AdversarialWeights.zeta", self.zeta)
        non_negative("AdversarialWeights.beta", self.beta)
        integer("AdversarialWeights.steps", self.steps, minimum=1)
        if self.step_fraction is not None:
            positive("AdversarialWeights.step_fraction", self.step_fraction)
        flag("AdversarialWeights.biases", self.biases)

    def loss(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        task: Task,
        generator: torch.Generator,
    ) -> torch.Tensor:
        params = perturbable(model, self.biases)
        clean = model(x)
        task_loss = task.loss(clean, y)
        if self.beta == 0 or self.zeta == 0:
            return task_loss
        reference = clean.detach()

        def objective(perturbed: dict[str, torch.Tensor]) -> torch.Tensor:
            return task.distance(reference, functional_call(model, perturbed, (x,)))

        delta = projected_attack(
            params, objective, self.zeta, self.steps, self.step_fraction, generator
        )
        attacked = functional_call(model, shifted(params, delta), (x,))
        return task_loss + self.beta * task.distance(clean, attacked)


@dataclass(frozen=True)
class ChipRetrain(Regime):
    """Fine-tune on a chip's realized activations: every CircuitActivation is put in ``mode``
    (default ``"sampled"``: each neuron its own curve) and stays there after training; with
    ``chip_seed`` a new chip (curves and weight mismatch) is drawn first. Noise modules act as
    configured."""

    mode: str = "sampled"
    chip_seed: int | None = None

    def __post_init__(self) -> None:
        choice("ChipRetrain.mode", self.mode, MODES)
        if self.chip_seed is not None:
            integer("ChipRetrain.chip_seed", self.chip_seed, minimum=0)

    def install(self, model: nn.Module, task: Task, seed: int) -> list[Undo]:
        activations = circuit_activations(model)
        if not activations:
            raise ConfigError("ChipRetrain needs a model with CircuitActivation layers")
        if self.chip_seed is not None:
            from circuitnn.nn.model import resample_chips

            resample_chips(model, self.chip_seed)
        for activation in activations:
            activation.mode = self.mode
        return []


REGIMES = (Clean, NoiseInjection, Dropout, WeightSmoothing, AdversarialWeights, ChipRetrain)
