"""Experiment 2, ``propagation``: noise through deep networks of circuit neurons, measured by Monte
Carlo and predicted analytically layer by layer (study 2).

Networks: ``depth`` (8) hidden layers of ``width`` neurons of one simulated family
(``mos_diffpair``: tanh-like; ``cmos_inverter``: a steep inverter whose threshold mismatch is
about one network input unit), each neuron its own sampled curve, followed by a linear readout.
They are **random-initialized, not trained**: weights N(0, 1/fan_in) (variance preserving: a
linear layer keeps the power of isotropic noise), biases 0, inputs N(0, 1); the first ``l``
layers of the depth-8 network are the depth-``l`` network, so one network gives depths 1…8.
Besides, **trained networks**: per family an MLP of ``trained_depth`` hidden layers ×
``trained_width`` neurons trained on the digits (``trained_epochs``, default scaling), whose
noise is propagated through the same kinds of noise with the digits test images as inputs.
Everything is repeated over ``replicates`` (seed ``seed + r``: weights, chips, inputs, noise
draws, and the trained networks' data split).

Gain. :class:`~circuitnn.nn.Scaling` normalizes the nominal curve's steepest slope to 1 in network
units. The experiment multiplies the scaling's ``input_scale`` by a gain ``g`` (one network input
unit then stands for ``g`` times as many volts), so every neuron's slope in network units is ``g``
times its slope under the default scaling: a gain < 1 configuration (all slopes below 1) and a
gain > 1 one. With variance-preserving weights this is the same as scaling the weights by ``g``,
i.e. it sets the per-layer noise transfer ``χ = mean(f'(h)²·‖w_row‖²)``; choosing it through the
scaling keeps the weights, inputs and chips of the two configurations identical.

Noise, in every hidden layer (after the activation), at ``sigma`` (network units, or relative):
additive and multiplicative, each uncorrelated (ρ = 0, per neuron) and correlated (ρ shared by the
layer); the circuits' own σ_out(x) scaled so that the first layer's noise is ``sigma``; and a
single additive source in layer 1 only (how one source decays or grows with depth). Per layer:
the noise σ predicted by :func:`~circuitnn.evaluate.propagate_noise` (linear propagation, no
sampling) and measured over ``draws`` noisy passes, their ratio, the signal, the activation
slopes at the operating points and the noise transfer χ.

Tables: ``layers`` (one row per family × gain × kind × network × layer: ``signal``, ``predicted``
and ``measured`` σ in network units, ``ratio``, ``mc_error`` (relative standard error of the
measured σ), ``noise_to_signal`` (measured σ / signal), ``snr_db``, predicted and measured mean
correlation between neurons, ``rms_slope`` / ``max_slope`` of the activation at the operating
points, ``transfer`` χ_l, ``circuit_scale``) and ``configurations`` (one row per family × gain ×
kind × replicate: σ at layers 1 and L, growth, steps, χ, the linear bound, worst ratio, SNR),
and the same for the trained networks (``trained_layers``, ``trained_configurations``). Figures:
``noise_vs_depth.png``, ``predicted_vs_measured.png``, ``single_source.png``,
``trained_noise_vs_depth.png``.

Findings are decided from effect sizes with confidence intervals over the replicates, by rules
fixed in :mod:`circuitnn.experiments.propagation_findings`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from circuitnn.data import digits
from circuitnn.errors import ConfigError
from circuitnn.evaluate import NoisePropagation, propagate_noise
from circuitnn.experiments.common import override, replicate_seeds
from circuitnn.experiments.families import circuit_families
from circuitnn.experiments.propagation_findings import (
    configuration_rows,
    findings,
    summary_lines,
)
from circuitnn.experiments.propagation_plots import (
    plot_accuracy,
    plot_noise_vs_depth,
    plot_single_source,
)
from circuitnn.experiments.result import ExperimentResult, Row
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

NEURONS = ("mos_diffpair", "cmos_inverter")
KINDS = (
    "additive",
    "additive-correlated",
    "multiplicative",
    "multiplicative-correlated",
    "circuit",
    "single-source",
)


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


REPLICATES = (2, 4)  # quick, full
QUICK = Settings(
    width=32, depth=8, samples=32, draws=64, trained_depth=4, trained_width=32, trained_epochs=6
)
FULL = Settings(
    width=128,
    depth=8,
    samples=96,
    draws=128,
    trained_depth=6,
    trained_width=64,
    trained_epochs=20,
)


def run(
    out: Path,
    *,
    quick: bool,
    seed: int,
    store: Path,
    jobs: int,
    replicates: int,
    neurons: Sequence[str] = NEURONS,
    **options: Any,
) -> ExperimentResult:
    """Run the experiment into ``out`` (see the module docstring); ``quick`` is the test size.

    ``neurons``: the families (built-in names or spec paths; default :data:`NEURONS`);
    ``options``: overrides of :class:`Settings` fields (``width``, ``depth``, ``samples``,
    ``draws``, ``sigma``, ``correlation``, ``gains``, ``trained_depth``, ``trained_width``,
    ``trained_epochs``).
    """
    started = time.perf_counter()
    settings = _settings(quick, options)
    families = circuit_families(tuple(neurons), store, quick=quick, seed=seed, jobs=jobs)
    layers: list[Row] = []
    trained_layers: list[Row] = []
    for replicate, replicate_seed in enumerate(replicate_seeds(seed, replicates)):
        for family_name, family in families.items():
            own = network_seed(replicate_seed, family_name, 0)
            for gain in settings.gains:
                base = base_network(family, gain, settings, own)
                for kind in KINDS:
                    layers += measure(family_name, base, gain, kind, settings, own, replicate)
            model, x = trained_network(family, settings, replicate_seed)
            for kind in KINDS:
                trained_layers += measure(
                    family_name, model, 1.0, kind, settings, own, replicate, x=x
                )
    configurations = configuration_rows(layers, settings)
    trained_configurations = configuration_rows(trained_layers, settings)
    result = ExperimentResult.begin(
        "propagation",
        out,
        quick=quick,
        seed=seed,
        replicates=replicates,
        store=store,
        settings=settings,
        network="random init (not trained): weights N(0, 1/fan_in), biases 0, inputs N(0, 1); "
        "gain via Scaling.input_scale × g",
        trained=f"{settings.trained_depth} × {settings.trained_width} circuit MLP trained "
        f"{settings.trained_epochs} epochs on digits; inputs: test images",
        families={name: family.key for name, family in families.items()},
    )
    out = result.out
    result.tables = {
        "layers": layers,
        "configurations": configurations,
        "trained_layers": trained_layers,
        "trained_configurations": trained_configurations,
    }
    result.figures = {
        "noise_vs_depth": plot_noise_vs_depth(layers, out / "noise_vs_depth.png"),
        "predicted_vs_measured": plot_accuracy(layers, out / "predicted_vs_measured.png"),
        "single_source": plot_single_source(layers, out / "single_source.png"),
        "trained_noise_vs_depth": plot_noise_vs_depth(
            trained_layers, out / "trained_noise_vs_depth.png"
        ),
    }
    result.findings = findings(
        layers, configurations, trained_layers, trained_configurations, settings
    )
    result.summary = summary_lines(
        layers,
        configurations,
        trained_configurations,
        settings,
        replicates,
        time.perf_counter() - started,
    )
    return result


def _settings(quick: bool, options: dict[str, Any]) -> Settings:
    settings = override(QUICK if quick else FULL, options, "propagation", extra="neurons")
    if min(settings.width, settings.depth, settings.samples) < 1:
        raise ConfigError("propagation: width, depth and samples must be >= 1")
    if min(settings.trained_width, settings.trained_epochs) < 1:
        raise ConfigError("propagation: trained_width and trained_epochs must be >= 1")
    if settings.depth < 2 or settings.trained_depth < 2:
        raise ConfigError(
            "propagation: depth and trained_depth must be >= 2 (accumulation over layers)"
        )
    if settings.draws < 2:
        raise ConfigError("propagation: draws must be >= 2")
    if not settings.sigma > 0 or not 0 < settings.correlation <= 1:
        raise ConfigError("propagation: sigma must be > 0 and correlation in (0, 1]")
    low, high = (*settings.gains, math.nan, math.nan)[:2]
    if len(settings.gains) != 2 or not 0 < low < 1 < high:
        raise ConfigError(f"propagation: gains must be (g < 1, g > 1), got {settings.gains!r}")
    return settings


# ------------------------------------------------------------------------------ one network


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
