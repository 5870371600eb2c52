"""Model-wide operations: find layers, draw chips, seed noise, inject extra modules by hooks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

import torch
from torch import nn

from circuitnn.errors import ConfigError
from circuitnn.nn.activation import CircuitActivation
from circuitnn.nn.noise import CircuitNoise, NoiseModule
from circuitnn.nn.random import SeedLike, cpu_generator, derive_seed
from circuitnn.nn.weights import ANALOG_LAYERS

ACTIVATION_TYPES: tuple[type[nn.Module], ...] = (
    CircuitActivation,
    CircuitNoise,
    nn.Tanh,
    nn.ReLU,
    nn.Sigmoid,
    nn.GELU,
    nn.ELU,
    nn.LeakyReLU,
    nn.SiLU,
    nn.Softplus,
    nn.Hardtanh,
)


def activation_layers(model: nn.Module) -> list[str]:
    """Names of ``model``'s activation layers (outermost only: a CircuitNoise, not the activation
    inside it), in registration order."""
    names: list[str] = []
    for name, module in model.named_modules():
        if isinstance(module, ACTIVATION_TYPES) and not any(
            name.startswith(outer + ".") for outer in names
        ):
            names.append(name)
    return names


def circuit_activations(model: nn.Module) -> list[CircuitActivation]:
    """Every CircuitActivation in ``model`` (including those wrapped by CircuitNoise)."""
    return [module for module in model.modules() if isinstance(module, CircuitActivation)]


def set_mode(model: nn.Module, mode: str) -> None:
    """Set every CircuitActivation of ``model`` to ``mode`` (sampled / nominal / fitted)."""
    for activation in circuit_activations(model):
        activation.mode = mode


@torch.no_grad()
def resample_chips(model: nn.Module, generator: SeedLike = None) -> None:
    """Draw a new chip for ``model``: new curves for every CircuitActivation and a new fixed
    mismatch for every analog layer, in registration order, from one ``generator``."""
    source = cpu_generator(generator)
    if source is None:
        source = torch.Generator()
        source.manual_seed(int(torch.randint(0, 2**62, (1,)).item()))
    for module in model.modules():
        if isinstance(module, (CircuitActivation, *ANALOG_LAYERS)):
            module.resample(source)


def reseed_noise(model: nn.Module, seed: int | None) -> None:
    """Give every noise module and weight-noise layer of ``model`` its own seed derived from
    ``seed`` (None: all draw from torch's global RNG)."""
    for index, module in enumerate(model.modules()):
        if isinstance(module, (NoiseModule, *ANALOG_LAYERS)):
            module.reseed(None if seed is None else derive_seed(seed, "noise", index))


def chip_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every buffer of ``model`` (chips, mismatch): restore with :func:`restore_chip`.
    A CircuitActivation's ``identity`` is left out: it follows the layer's settings."""
    settings = {
        f"{name}.identity" if name else "identity"
        for name, module in model.named_modules()
        if isinstance(module, CircuitActivation)
    }
    return {
        name: buffer.detach().clone()
        for name, buffer in model.named_buffers()
        if name not in settings
    }


@torch.no_grad()
def restore_chip(model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Put back buffers saved by :func:`chip_state` (and refresh derived tables)."""
    buffers = dict(model.named_buffers())
    for name, value in state.items():
        buffers[name].copy_(value)
    for activation in circuit_activations(model):
        activation._refresh()


@contextlib.contextmanager
def quiet(model: nn.Module) -> Iterator[None]:
    """Within the block, every noise module and weight-noise layer of ``model`` is silent."""
    modules = [m for m in model.modules() if isinstance(m, NoiseModule)]
    layers = [m for m in model.modules() if isinstance(m, ANALOG_LAYERS)]
    before = [m.enabled for m in modules], [m.noise_enabled for m in layers]
    for module in modules:
        module.enabled = False
    for layer in layers:
        layer.noise_enabled = False
    try:
        yield
    finally:
        for module, value in zip(modules, before[0], strict=True):
            module.enabled = value
        for layer, value in zip(layers, before[1], strict=True):
            layer.noise_enabled = value


@contextlib.contextmanager
def inject(model: nn.Module, extras: Mapping[str, nn.Module]) -> Iterator[None]:
    """Within the block, the output of each named layer of ``model`` passes through its extra
    module (noise, dropout, ...), which follows the layer's train/eval mode."""
    named = dict(model.named_modules())
    handles = []
    try:
        for name, extra in extras.items():
            if name not in named:
                raise ConfigError(f"no layer {name!r} in the model; layers: {list(named)[1:]}")

            def hook(
                module: nn.Module, args: object, output: torch.Tensor, extra: nn.Module = extra
            ) -> torch.Tensor:
                extra.train(module.training)
                return extra(output)

            handles.append(named[name].register_forward_hook(hook))
        yield
    finally:
        for handle in handles:
            handle.remove()
