"""Analog networks from a spec: MLPs and a small CNN; a family, noise and weight noise per layer.

Each hidden layer is ``AnalogLinear`` (or ``AnalogConv2d``) → activation → optional noise. The
activation is a torch activation by name (``"tanh"``, ``"relu"``, ``"sigmoid"``, ``"identity"``) or
a :class:`CircuitSpec` (a family's neurons). A noise of kind ``"circuit"`` wraps the layer's
:class:`~circuitnn.nn.CircuitActivation` in a :class:`~circuitnn.nn.CircuitNoise`; other noises
follow the activation as their own module. Modules are named ``linear{i}``/``conv{i}``,
``act{i}``, ``noise{i}`` (``i`` from 1) and ``output``, so layers can be addressed by name (e.g.
for layer-wise noise sweeps). ``seed`` fixes the initial weights, the chips and the noise draws.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from circuitnn.errors import ConfigError
from circuitnn.family import Family
from circuitnn.nn._check import choice, flag, integer
from circuitnn.nn.activation import MODES, CircuitActivation
from circuitnn.nn.noise import NoiseSpec
from circuitnn.nn.random import derive_seed
from circuitnn.nn.scaling import Scaling
from circuitnn.nn.weights import AnalogConv2d, AnalogLinear, WeightNoiseSpec

TORCH_ACTIVATIONS = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}


@dataclass(frozen=True)
class CircuitSpec:
    """A layer of circuit neurons: ``family`` (a Family, a selector in ``store``, or None for empty
    layers that ``load_state_dict`` fills) and the :class:`~circuitnn.nn.CircuitActivation`
    options ``mode``, ``scaling``, ``extrapolation``, ``fit``."""

    family: Family | str | None = field(compare=False)
    store: str | Path | None = None
    mode: str = "sampled"
    scaling: Scaling | str = "midpoint"
    extrapolation: str = "linear"
    fit: str = "auto"

    def __post_init__(self) -> None:
        choice("CircuitSpec.mode", self.mode, MODES)

    def build(self, shape: int | tuple[int, ...], seed: int) -> CircuitActivation:
        """The activation layer of ``shape`` with its first chip drawn from ``seed``."""
        return CircuitActivation(
            self.family,
            shape,
            store=self.store,
            mode=self.mode,
            scaling=self.scaling,
            extrapolation=self.extrapolation,
            fit=self.fit,
            generator=seed,
        )


Activation = str | CircuitSpec
Noises = NoiseSpec | tuple[NoiseSpec, ...] | None


def _activation(field_name: str, activation: Activation) -> None:
    if isinstance(activation, str):
        choice(field_name, activation, TORCH_ACTIVATIONS)
    elif not isinstance(activation, CircuitSpec):
        raise ConfigError(f"{field_name} must be a name or a CircuitSpec, got {activation!r}")


def _noises(field_name: str, noise: Noises) -> tuple[NoiseSpec, ...]:
    items = () if noise is None else noise if isinstance(noise, tuple) else (noise,)
    for item in items:
        if not isinstance(item, NoiseSpec):
            raise ConfigError(f"{field_name} must hold NoiseSpec objects, got {item!r}")
    if sum(item.kind == "circuit" for item in items) > 1:
        raise ConfigError(f"{field_name}: at most one circuit noise per layer")
    return items


def _weight_noise(field_name: str, spec: WeightNoiseSpec | None) -> None:
    if spec is not None and not isinstance(spec, WeightNoiseSpec):
        raise ConfigError(f"{field_name} must be a WeightNoiseSpec or None, got {spec!r}")


@dataclass(frozen=True)
class LayerSpec:
    """A hidden layer: ``width`` neurons, its ``activation``, the ``noise`` after it (one spec or
    a tuple, applied in order) and the ``weight_noise`` of its weights."""

    width: int
    activation: Activation = "tanh"
    noise: Noises = None
    weight_noise: WeightNoiseSpec | None = None

    def __post_init__(self) -> None:
        integer("LayerSpec.width", self.width, minimum=1)
        _activation("LayerSpec.activation", self.activation)
        _noises("LayerSpec.noise", self.noise)
        _weight_noise("LayerSpec.weight_noise", self.weight_noise)


@dataclass(frozen=True)
class MLPSpec:
    """An MLP: ``inputs`` features → ``layers`` → ``outputs`` (a plain analog linear readout with
    ``output_weight_noise``)."""

    inputs: int
    layers: tuple[LayerSpec, ...]
    outputs: int
    output_weight_noise: WeightNoiseSpec | None = None

    def __post_init__(self) -> None:
        integer("MLPSpec.inputs", self.inputs, minimum=1)
        integer("MLPSpec.outputs", self.outputs, minimum=1)
        if not isinstance(self.layers, tuple) or not all(
            isinstance(layer, LayerSpec) for layer in self.layers
        ):
            raise ConfigError("MLPSpec.layers must be a tuple of LayerSpec")
        _weight_noise("MLPSpec.output_weight_noise", self.output_weight_noise)


@dataclass(frozen=True)
class ConvSpec:
    """A conv block: ``channels`` outputs, ``kernel`` × ``kernel`` with 'same' padding, then the
    activation and noise, then ``pool`` × ``pool`` max pooling (1 = none). Circuit neurons are one
    per channel (shared by all positions) unless ``per_position``."""

    channels: int
    kernel: int = 3
    pool: int = 2
    activation: Activation = "relu"
    noise: Noises = None
    weight_noise: WeightNoiseSpec | None = None
    per_position: bool = False

    def __post_init__(self) -> None:
        integer("ConvSpec.channels", self.channels, minimum=1)
        integer("ConvSpec.kernel", self.kernel, minimum=1)
        if self.kernel % 2 == 0:
            raise ConfigError(f"ConvSpec.kernel must be odd ('same' padding), got {self.kernel}")
        integer("ConvSpec.pool", self.pool, minimum=1)
        _activation("ConvSpec.activation", self.activation)
        _noises("ConvSpec.noise", self.noise)
        _weight_noise("ConvSpec.weight_noise", self.weight_noise)
        flag("ConvSpec.per_position", self.per_position)


@dataclass(frozen=True)
class CNNSpec:
    """A small CNN on ``(B, in_channels, height, width)`` images: ``convs``, flatten, hidden
    ``layers``, and a linear readout to ``outputs``."""

    in_channels: int
    image: tuple[int, int]
    convs: tuple[ConvSpec, ...]
    layers: tuple[LayerSpec, ...]
    outputs: int
    output_weight_noise: WeightNoiseSpec | None = None

    def __post_init__(self) -> None:
        integer("CNNSpec.in_channels", self.in_channels, minimum=1)
        if len(self.image) != 2:
            raise ConfigError(f"CNNSpec.image must be (height, width), got {self.image!r}")
        for size in self.image:
            integer("CNNSpec.image", size, minimum=1)
        if not isinstance(self.convs, tuple) or not all(
            isinstance(conv, ConvSpec) for conv in self.convs
        ):
            raise ConfigError("CNNSpec.convs must be a tuple of ConvSpec")
        if not isinstance(self.layers, tuple) or not all(
            isinstance(layer, LayerSpec) for layer in self.layers
        ):
            raise ConfigError("CNNSpec.layers must be a tuple of LayerSpec")
        integer("CNNSpec.outputs", self.outputs, minimum=1)
        height, width = self.image
        for index, conv in enumerate(self.convs, 1):
            height, width = height // conv.pool, width // conv.pool
            if height < 1 or width < 1:
                raise ConfigError(f"CNNSpec.convs[{index - 1}]: pooling shrinks the image to 0")
        _weight_noise("CNNSpec.output_weight_noise", self.output_weight_noise)


def mlp_spec(
    inputs: int,
    widths: tuple[int, ...] | list[int],
    outputs: int,
    *,
    activation: Activation = "tanh",
    noise: Noises = None,
    weight_noise: WeightNoiseSpec | None = None,
) -> MLPSpec:
    """An MLP spec with the same activation, noise and weight noise in every hidden layer (the
    readout gets the weight noise too)."""
    layers = tuple(LayerSpec(int(w), activation, noise, weight_noise) for w in widths)
    return MLPSpec(inputs, layers, outputs, weight_noise)


def _add_activation(
    modules: OrderedDict[str, nn.Module],
    index: int,
    activation: Activation,
    noise: Noises,
    shape: int | tuple[int, ...],
    seed: int,
) -> None:
    if isinstance(activation, str):
        module: nn.Module = TORCH_ACTIVATIONS[activation]()
    else:
        module = activation.build(shape, derive_seed(seed, "chip", index))
    others = []
    for number, spec in enumerate(_noises("noise", noise)):
        noise_seed = derive_seed(seed, "noise", index, number)
        if spec.kind == "circuit":
            if not isinstance(module, CircuitActivation):
                raise ConfigError(
                    f"layer {index}: circuit noise needs a CircuitSpec activation, "
                    f"got {activation!r}"
                )
            module = spec.build(module, seed=noise_seed)
        else:
            others.append(spec.build(seed=noise_seed))
    modules[f"act{index}"] = module
    for number, extra in enumerate(others):
        modules[f"noise{index}" + (f"_{number + 1}" if number else "")] = extra


def build_mlp(spec: MLPSpec, seed: int = 0) -> nn.Sequential:
    """The network of ``spec``: weights, chips and noise seeds all fixed by ``seed``."""
    if not isinstance(spec, MLPSpec):
        raise ConfigError(f"build_mlp needs an MLPSpec, got {type(spec).__name__}")
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "weights"))
        _add_dense(
            modules, spec.inputs, spec.layers, 0, spec.outputs, spec.output_weight_noise, seed
        )
    return nn.Sequential(modules)


def _add_dense(
    modules: OrderedDict[str, nn.Module],
    features: int,
    layers: Sequence[LayerSpec],
    first: int,
    outputs: int,
    output_weight_noise: WeightNoiseSpec | None,
    seed: int,
) -> None:
    """Append the hidden dense layers (numbered from ``first + 1``) and the output layer."""
    for number, layer in enumerate(layers, first + 1):
        modules[f"linear{number}"] = AnalogLinear(
            features,
            layer.width,
            weight_noise=layer.weight_noise,
            seed=derive_seed(seed, "weight-noise", number),
            generator=derive_seed(seed, "mismatch", number),
        )
        _add_activation(modules, number, layer.activation, layer.noise, layer.width, seed)
        features = layer.width
    modules["output"] = AnalogLinear(
        features,
        outputs,
        weight_noise=output_weight_noise,
        seed=derive_seed(seed, "weight-noise", "output"),
        generator=derive_seed(seed, "mismatch", "output"),
    )


def build_cnn(spec: CNNSpec, seed: int = 0) -> nn.Sequential:
    """The CNN of ``spec`` (input ``(B, C, H, W)``), seeded like :func:`build_mlp`."""
    if not isinstance(spec, CNNSpec):
        raise ConfigError(f"build_cnn needs a CNNSpec, got {type(spec).__name__}")
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "weights"))
        channels, (height, width) = spec.in_channels, spec.image
        index = 0
        for index, conv in enumerate(spec.convs, 1):
            modules[f"conv{index}"] = AnalogConv2d(
                channels,
                conv.channels,
                conv.kernel,
                padding=conv.kernel // 2,
                weight_noise=conv.weight_noise,
                seed=derive_seed(seed, "weight-noise", index),
                generator=derive_seed(seed, "mismatch", index),
            )
            shape = (conv.channels, height, width) if conv.per_position else (conv.channels, 1, 1)
            _add_activation(modules, index, conv.activation, conv.noise, shape, seed)
            if conv.pool > 1:
                modules[f"pool{index}"] = nn.MaxPool2d(conv.pool)
                height, width = height // conv.pool, width // conv.pool
            channels = conv.channels
        modules["flatten"] = nn.Flatten()
        _add_dense(
            modules,
            channels * height * width,
            spec.layers,
            index,
            spec.outputs,
            spec.output_weight_noise,
            seed,
        )
    return nn.Sequential(modules)


def build(spec: MLPSpec | CNNSpec, seed: int = 0) -> nn.Sequential:
    """:func:`build_mlp` or :func:`build_cnn`, by the type of ``spec``."""
    if isinstance(spec, CNNSpec):
        return build_cnn(spec, seed)
    return build_mlp(spec, seed)
