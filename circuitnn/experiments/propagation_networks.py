"""The networks of the ``propagation`` experiment: the random-initialized depth × width circuit
network at a slope gain, the trained digits MLP, the noise of each configuration after every
hidden layer, and one configuration's per-layer measurement (predicted against measured noise
σ, signal, slopes, transfer χ). Rows carry the ``family``, ``gain``, ``kind`` and
``replicate``."""

from __future__ import annotations

import dataclasses
import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from circuitnn.data import digits
from circuitnn.errors import ConfigError
from circuitnn.evaluate import NoisePropagation, propagate_noise
from circuitnn.experiments.result import Row
from circuitnn.family import Family
from circuitnn.nn import (
    CircuitNoise,
    CircuitSpec,
    LayerSpec,
    MLPSpec,
    NoiseSpec,
    Scaling,
    build_mlp,
    noise_modules,
)
from circuitnn.nn.random import derive_seed
from circuitnn.train import TrainConfig, train


@dataclass(frozen=True)
class Settings:
    """Sizes of one run. ``width`` neurons per hidden layer, ``depth`` hidden layers; ``samples``
    input samples (operating points); ``draws`` Monte Carlo noise draws; ``sigma`` the noise
    level (network units for additive, relative for multiplicative; the circuit noise is scaled
    to it at layer 1); ``correlation`` ρ of the correlated kinds; ``gains`` the (below 1, above 1)
    slope gains; ``trained_depth`` × ``trained_width``: the trained networks, ``trained_epochs``
    of Adam on the digits."""

    width: int
    depth: int
    samples: int
    draws: int
    trained_depth: int
    trained_width: int
    trained_epochs: int
    sigma: float = 0.03
    correlation: float = 0.5
    gains: tuple[float, float] = (0.7, 1.5)


def gain_scaling(family: Family, gain: float) -> Scaling:
    """The family's midpoint scaling with every slope (in network units) multiplied by ``gain``
    (``input_scale`` × gain: one network input unit stands for ``gain`` times the volts)."""
    base = Scaling.from_nominal(family.grid, family.nominal_curve, anchor="midpoint")
    return dataclasses.replace(base, input_scale=base.input_scale * gain)


def _noise(kind: str, settings: Settings, layer: int) -> tuple[NoiseSpec, ...]:
    """The noise after hidden layer ``layer`` (1-based) for configuration ``kind``."""
    sigma, rho = settings.sigma, settings.correlation
    specs = {
        "additive": NoiseSpec("additive", sigma),
        "additive-correlated": NoiseSpec("additive", sigma, correlation=rho),
        "multiplicative": NoiseSpec("multiplicative", sigma),
        "multiplicative-correlated": NoiseSpec("multiplicative", sigma, correlation=rho),
        "circuit": NoiseSpec("circuit", 1.0),  # scaled to sigma at layer 1 afterwards
        "single-source": NoiseSpec("additive", sigma),
    }
    if kind == "single-source" and layer > 1:
        return ()
    return (specs[kind],)


def base_network(family: Family, gain: float, settings: Settings, seed: int) -> nn.Sequential:
    """The noiseless depth × width circuit network of one (family, gain, seed): variance-preserving
    random weights (N(0, 1/fan_in), zero biases) and chips drawn from ``seed``."""
    activation = CircuitSpec(family, scaling=gain_scaling(family, gain), fit="tanh")
    layers = tuple(LayerSpec(settings.width, activation) for _ in range(settings.depth))
    model = build_mlp(MLPSpec(settings.width, layers, settings.width), seed=seed)
    generator = torch.Generator().manual_seed(derive_seed(seed, "propagation-weights"))
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear):
                weight = torch.randn(module.weight.shape, generator=generator, dtype=torch.float64)
                module.weight.copy_(weight / math.sqrt(module.in_features))
                if module.bias is not None:
                    module.bias.zero_()
    return model.eval()


def with_noise(base: nn.Sequential, kind: str, settings: Settings, seed: int) -> nn.Sequential:
    """``base`` (its modules shared, not copied) with the noise of configuration ``kind`` after
    every hidden activation, named as :func:`~circuitnn.nn.build_mlp` names them (``noise{i}``;
    circuit noise wraps ``act{i}``)."""
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    for name, module in base.named_children():
        if not name.startswith("act"):
            modules[name] = module
            continue
        index = int(name[3:])
        specs = _noise(kind, settings, index)
        circuit = [spec for spec in specs if spec.kind == "circuit"]
        noise_seed = derive_seed(seed, "noise", index)
        modules[name] = circuit[0].build(module, seed=noise_seed) if circuit else module
        for number, spec in enumerate(s for s in specs if s.kind != "circuit"):
            modules[f"noise{index}" + (f"_{number + 1}" if number else "")] = spec.build(
                seed=derive_seed(noise_seed, number)
            )
    return nn.Sequential(modules).eval()


def _calibrate_circuit(model: nn.Module, x: torch.Tensor, sigma: float) -> float:
    """Scale every CircuitNoise so that the first hidden layer's predicted σ is ``sigma``;
    return the scale (a multiple of the simulated σ_out)."""
    circuit = [m for m in noise_modules(model) if isinstance(m, CircuitNoise)]
    probe = propagate_noise(model, x, draws=0)
    first = probe.layers[0].predicted
    if not first > 0:
        raise ConfigError("propagation: the family's simulated noise σ_out is zero at layer 1")
    scale = sigma / first
    for module in circuit:
        module.scale = scale
    return scale


def _transfer(model: nn.Module, result: NoisePropagation, depth: int) -> list[float]:
    """Per hidden layer ``l``: χ_l = mean over samples and neurons of f'(h)²·‖w_row‖², the power
    gain of isotropic noise from layer l−1's output to layer l's."""
    named = dict(model.named_modules())
    values = []
    for index in range(1, depth + 1):
        slopes = result.slopes[f"act{index}"]
        rows = named[f"linear{index}"].weight.detach().double().square().sum(dim=1).numpy()
        values.append(float(np.mean(slopes**2 * rows[None, :])))
    return values


def trained_network(
    family: Family, settings: Settings, seed: int
) -> tuple[nn.Sequential, torch.Tensor]:
    """A ``trained_depth`` × ``trained_width`` MLP of the family's circuit neurons (chip from
    ``seed``) trained on the digits split by ``seed``, and up to ``samples`` of its test images
    (the operating points)."""
    data = digits(seed=seed, validation=0.05, test=0.3)
    activation = CircuitSpec(family, fit="tanh")
    layers = tuple(
        LayerSpec(settings.trained_width, activation) for _ in range(settings.trained_depth)
    )
    model = build_mlp(MLPSpec(data.inputs, layers, data.outputs), seed=seed)
    config = TrainConfig(epochs=settings.trained_epochs, lr=3e-3, seed=seed, restore_best=False)
    train(model, data.train, config=config)
    x = torch.as_tensor(data.test[0][: settings.samples])
    return model.eval(), x


def network_seed(seed: int, family_name: str, index: int) -> int:
    """The seed of network ``index`` of a family: its weights, chips, inputs and noise draws (the
    same for both gains and every noise kind)."""
    return derive_seed(seed, "propagation", family_name, index)


def inputs(settings: Settings, seed: int) -> torch.Tensor:
    """``samples`` input vectors N(0, I) of the network of ``seed``."""
    generator = torch.Generator().manual_seed(derive_seed(seed, "inputs"))
    return torch.randn(settings.samples, settings.width, generator=generator)


def measure(
    family_name: str,
    base: nn.Sequential,
    gain: float,
    kind: str,
    settings: Settings,
    seed: int,
    index: int = 0,
    x: torch.Tensor | None = None,
) -> list[Row]:
    """One configuration's per-layer rows: predicted and measured noise σ, their ratio, the
    signal, slopes and transfer χ; ``base`` is the network of replicate ``index`` (of ``seed``)
    without noise; ``x`` its inputs (default :func:`inputs`)."""
    model = with_noise(base, kind, settings, seed)
    x = inputs(settings, seed) if x is None else x
    scale = _calibrate_circuit(model, x, settings.sigma) if kind == "circuit" else math.nan
    depth = sum(1 for name, _ in base.named_children() if name.startswith("linear"))
    hidden = tuple(_block_outputs(model, depth))
    result = propagate_noise(
        model, x, layers=hidden, draws=settings.draws, seed=derive_seed(seed, "draws")
    )
    transfer = _transfer(model, result, depth)
    rows: list[Row] = []
    for depth, layer in enumerate(result.layers, 1):
        slopes = result.slopes[f"act{depth}"]
        rows.append(
            {
                "family": family_name,
                "gain": gain,
                "kind": kind,
                "replicate": index,
                "layer": depth,
                "module": layer.layer,
                "signal": layer.signal,
                "predicted": layer.predicted,
                "measured": layer.measured,
                "ratio": layer.ratio,
                "mc_error": layer.error,
                "noise_to_signal": layer.measured / layer.signal if layer.signal > 0 else math.inf,
                "snr_db": 20 * math.log10(layer.signal / layer.measured)
                if layer.signal > 0 and layer.measured > 0
                else -math.inf,
                "predicted_correlation": layer.predicted_correlation,
                "measured_correlation": layer.measured_correlation,
                "rms_slope": float(np.sqrt(np.mean(slopes**2))),
                "max_slope": float(slopes.max()),
                "transfer": transfer[depth - 1],
                "circuit_scale": scale,
            }
        )
    return rows


def _block_outputs(model: nn.Module, depth: int) -> list[str]:
    """The module whose output is hidden layer l's (its last noise module, else its
    activation), for l = 1…depth."""
    names = [name for name, _ in model.named_children()]
    outputs = []
    for index in range(1, depth + 1):
        following = names.index(f"linear{index + 1}") if index < depth else names.index("output")
        outputs.append(names[following - 1])
    return outputs
