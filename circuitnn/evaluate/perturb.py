"""Put an evaluation noise into a model for the duration of a block (shared by the evaluators)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

from torch import nn

from circuitnn.errors import ConfigError
from circuitnn.nn.model import activation_layers, inject, quiet
from circuitnn.nn.noise import NoiseModule, NoiseSpec
from circuitnn.nn.random import derive_seed
from circuitnn.nn.weights import ANALOG_LAYERS, WeightNoiseSpec

Perturbation = NoiseSpec | WeightNoiseSpec
SHORTCUTS = {
    "additive": NoiseSpec("additive"),
    "multiplicative": NoiseSpec("multiplicative"),
    "mixed": NoiseSpec("mixed"),
    "weight_additive": WeightNoiseSpec("additive"),
    "weight_multiplicative": WeightNoiseSpec("multiplicative"),
}


def as_perturbation(noise: Perturbation | str) -> Perturbation:
    """A NoiseSpec / WeightNoiseSpec, or one named by a shortcut (``"additive"``,
    ``"multiplicative"``, ``"mixed"``, ``"weight_additive"``, ``"weight_multiplicative"``)."""
    if isinstance(noise, str):
        if noise not in SHORTCUTS:
            raise ConfigError(f"noise must be one of {list(SHORTCUTS)} or a spec, got {noise!r}")
        return SHORTCUTS[noise]
    if not isinstance(noise, NoiseSpec | WeightNoiseSpec):
        raise ConfigError(f"noise must be a NoiseSpec or WeightNoiseSpec, got {noise!r}")
    if isinstance(noise, NoiseSpec) and noise.kind == "circuit":
        raise ConfigError("circuit noise cannot be injected: build the model with it")
    return noise


def default_layers(model: nn.Module, noise: Perturbation) -> tuple[str, ...]:
    """Activation layers for activation noise, analog layers for weight noise."""
    if isinstance(noise, WeightNoiseSpec):
        names = tuple(n for n, m in model.named_modules() if isinstance(m, ANALOG_LAYERS))
        if not names:
            raise ConfigError(
                "weight noise needs AnalogLinear / AnalogConv2d layers: build the model with "
                "circuitnn.nn.build_mlp / build_cnn or convert it with circuitnn.nn.to_analog"
            )
        return names
    names = tuple(activation_layers(model))
    if not names:
        raise ConfigError("the model has no activation layers to put noise after")
    return names


@contextlib.contextmanager
def perturbed(
    model: nn.Module,
    noise: Perturbation | None,
    layers: tuple[str, ...] | None,
    seed: int,
    own_noise: bool = True,
) -> Iterator[None]:
    """Within the block ``model`` carries ``noise`` at ``layers`` (on in evaluation), its own noise
    modules silenced unless ``own_noise``."""
    with contextlib.ExitStack() as stack:
        if not own_noise:
            stack.enter_context(quiet(model))
        if noise is None:
            yield
            return
        names = default_layers(model, noise) if layers is None else tuple(layers)
        modules = dict(model.named_modules())
        for name in names:
            if name not in modules:
                raise ConfigError(f"no layer {name!r} in the model; layers: {list(modules)[1:]}")
        if isinstance(noise, WeightNoiseSpec):
            spec = dataclasses.replace(noise, in_eval=True, in_training=True)
            targets = [modules[name] for name in names]
            for target in targets:
                if not isinstance(target, ANALOG_LAYERS):
                    raise ConfigError(f"layer {name!r} is not an analog layer (weight noise)")
            before = [(t.weight_noise, t.noise_enabled, t.generators.seed) for t in targets]
            for index, target in enumerate(targets):
                target.weight_noise = spec
                target.noise_enabled = True
                target.reseed(derive_seed(seed, "weight-noise", index))
            try:
                yield
            finally:
                for target, (spec_before, enabled, seed_before) in zip(
                    targets, before, strict=True
                ):
                    target.weight_noise = spec_before
                    target.noise_enabled = enabled
                    target.reseed(seed_before)
            return
        spec = dataclasses.replace(noise, in_eval=True, in_training=True)
        extras = {name: spec.build(seed=derive_seed(seed, "eval-noise", name)) for name in names}
        stack.enter_context(inject(model, extras))
        yield


@contextlib.contextmanager
def seeded_noise(model: nn.Module, seed: int) -> Iterator[None]:
    """Within the block, the model's own noise modules and weight-noise layers draw from seeds
    derived from ``seed``; their previous seeds are put back afterwards."""
    modules = [m for m in model.modules() if isinstance(m, (NoiseModule, *ANALOG_LAYERS))]
    before = [m.generators.seed for m in modules]
    for index, module in enumerate(modules):
        module.reseed(derive_seed(seed, "own-noise", index))
    try:
        yield
    finally:
        for module, value in zip(modules, before, strict=True):
            module.reseed(value)
