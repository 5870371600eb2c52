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

The networks, their noise and their measurement: :mod:`circuitnn.experiments.propagation_networks`.
Findings are decided from effect sizes with confidence intervals over the replicates, by rules
fixed in :mod:`circuitnn.experiments.propagation_findings`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from circuitnn.errors import ConfigError
from circuitnn.experiments.common import override, replicate_seeds
from circuitnn.experiments.families import circuit_families
from circuitnn.experiments.propagation_findings import (
    configuration_rows,
    findings,
    summary_lines,
)
from circuitnn.experiments.propagation_networks import (
    Settings,
    base_network,
    measure,
    network_seed,
    trained_network,
)
from circuitnn.experiments.propagation_plots import (
    plot_accuracy,
    plot_noise_vs_depth,
    plot_single_source,
)
from circuitnn.experiments.result import ExperimentResult, Row

NEURONS = ("mos_diffpair", "cmos_inverter")
KINDS = (
    "additive",
    "additive-correlated",
    "multiplicative",
    "multiplicative-correlated",
    "circuit",
    "single-source",
)
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
