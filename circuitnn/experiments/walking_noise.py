"""Experiment 3, ``walking-noise``: layer-wise noise sensitivity of circuit networks, and what noisy
training does to their weights (study 3, "Walking Noise").

On scikit-learn's digits, analog MLPs whose hidden neurons are simulated circuits (layer *i* from
``neurons[i % 2]``: ``mos_diffpair`` tanh-like, ``cmos_inverter`` a steep inverter; every neuron
its own Monte Carlo curve) are trained four ways, ``networks`` times each with seeds
``seed, seed + 1, …``:

- ``clean``: no noise;
- ``additive`` / ``multiplicative`` / ``mixed``: that noise after every activation during training
  (:class:`~circuitnn.train.NoiseInjection`; σ ``train_additive`` in network units — one unit is
  half the nominal output swing —, ``train_multiplicative`` relative, ``train_mixed`` both parts).

Each trained network is then *walked*: additive, multiplicative and mixed noise is put after one
activation layer at a time, and after all of them at once (layer ``all``), and the **midpoint** —
the noise level at which test accuracy has fallen halfway from the network's clean accuracy to
chance (0.1) — is found by bisection (:func:`~circuitnn.evaluate.midpoint`; evaluation noise is
per neuron and per sample, ``draws`` draws per level). Besides: accuracy versus noise level in all
layers (robustness curves), the weights of every layer (RMS, binarization index) and the
activations they produce (signal power, binarization index; see
:mod:`circuitnn.experiments.weight_stats`).

The study's findings are checked by rules fixed in
:mod:`circuitnn.experiments.walking_noise_findings`.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from circuitnn.errors import ConfigError
from circuitnn.evaluate import midpoint, monte_carlo, robustness_curve
from circuitnn.experiments.common import circuit_mlp, mean_and_sem, override, torch_threads
from circuitnn.experiments.families import circuit_families
from circuitnn.experiments.result import ExperimentResult, Row
from circuitnn.experiments.walking_noise_findings import findings, summary_lines
from circuitnn.experiments.walking_noise_plots import plot_curves, plot_midpoints, plot_weights
from circuitnn.experiments.weight_stats import activation_stats, weight_stats
from circuitnn.family import Family
from circuitnn.nn import NoiseSpec, activation_layers
from circuitnn.train import Clean, NoiseInjection, TrainConfig, load_digits, train

NEURONS = ("mos_diffpair", "cmos_inverter")
NOISES = ("additive", "multiplicative", "mixed")
REGIMES = ("clean", *NOISES)
ALL = "all"  # the layer name of noise after every activation layer at once


@dataclass(frozen=True)
class Settings:
    """Sizes of one run. ``widths``: hidden layer widths; ``epochs`` of Adam at ``lr`` with
    ``batch_size`` (no early stopping: every network trains equally long); ``networks``: networks
    per training regime (seeds seed, seed + 1, …); ``draws``: noise draws per evaluated level;
    ``tolerance``: bisection stops when high/low ≤ 1 + tolerance; ``curve_levels``: noise levels
    of the robustness curves; ``train_additive`` (network units), ``train_multiplicative``
    (relative), ``train_mixed`` (both parts): σ of the training noise; ``threads``: torch threads
    during the run (see :func:`~circuitnn.experiments.common.torch_threads`)."""

    widths: tuple[int, ...]
    epochs: int
    networks: int
    draws: int
    tolerance: float
    curve_levels: tuple[float, ...]
    train_additive: float = 1.0
    train_multiplicative: float = 1.0
    train_mixed: float = 0.5
    lr: float = 3e-3
    batch_size: int = 64
    threads: int = 1

    def training_noise(self, regime: str) -> NoiseSpec | None:
        """The noise a regime trains with (None for ``clean``)."""
        if regime == "clean":
            return None
        return NoiseSpec(regime, getattr(self, f"train_{regime}"))


QUICK = Settings(
    widths=(32, 32),
    epochs=25,
    networks=1,
    draws=8,
    tolerance=0.1,
    curve_levels=(0.25, 0.5, 1.0, 2.0, 4.0, 8.0),
)
FULL = Settings(
    widths=(64, 64, 64),
    epochs=40,
    networks=3,
    draws=16,
    tolerance=0.05,
    curve_levels=(0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0),
)


def run(
    out: Path,
    *,
    quick: bool,
    seed: int,
    store: Path,
    jobs: int,
    neurons: tuple[str, ...] | list[str] = NEURONS,
    **options: Any,
) -> ExperimentResult:
    """Run the experiment into ``out`` (module docstring); ``quick`` is the test size.

    ``neurons``: the families of the hidden layers, cycled (built-in names or spec paths);
    ``options``: overrides of :class:`Settings` fields (e.g. ``widths=(64, 64)``, ``epochs=30``,
    ``networks=2``, ``train_additive=0.5``).
    """
    started = time.perf_counter()
    settings = _settings(quick, options)
    with torch_threads(settings.threads):
        return _run(out, quick, seed, store, jobs, neurons, settings, started)


def _run(
    out: Path,
    quick: bool,
    seed: int,
    store: Path,
    jobs: int,
    neurons: tuple[str, ...] | list[str],
    settings: Settings,
    started: float,
) -> ExperimentResult:
    """The body of :func:`run` (inside the thread setting)."""
    families = circuit_families(tuple(neurons), store, quick=quick, seed=seed, jobs=jobs)
    train_data, test_data = load_digits(seed=seed)
    order = list(families.values())
    layer_families = {
        f"act{i + 1}": order[i % len(order)].neuron for i in range(len(settings.widths))
    }
    tables: dict[str, list[Row]] = {
        "training": [],
        "midpoints": [],
        "weights": [],
        "activations": [],
        "curves": [],
    }
    examples: dict[str, dict[str, np.ndarray]] = {}
    for index in range(settings.networks):
        network_seed = seed + index
        for regime in REGIMES:
            model, row = _train(regime, order, train_data, test_data, settings, network_seed)
            tables["training"].append(row)
            _walk(model, test_data, regime, settings, network_seed, tables)
            if index == 0:
                examples[regime] = {
                    name: module.weight.detach().double().numpy().copy()
                    for name, module in model.named_modules()
                    if name.startswith("linear")
                }
    tables["midpoint_summary"] = summarize_midpoints(tables["midpoints"])
    result = ExperimentResult(
        name="walking-noise",
        out=Path(out),
        config={
            "quick": quick,
            "seed": seed,
            "store": str(store),
            "settings": asdict(settings),
            "layers": layer_families,
            "data": {
                "name": "digits",
                "train": len(train_data[1]),
                "test": len(test_data[1]),
                "classes": 10,
            },
        },
        tables=tables,
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result.figures = {
        "midpoints": plot_midpoints(tables["midpoint_summary"], out / "midpoints.png"),
        "weights": plot_weights(tables["weights"], examples, out / "weights.png"),
        "curves": plot_curves(tables["curves"], out / "curves.png"),
    }
    result.findings = findings(tables, settings)
    result.summary = summary_lines(tables, settings, layer_families, time.perf_counter() - started)
    return result


def _settings(quick: bool, options: dict[str, Any]) -> Settings:
    settings = override(QUICK if quick else FULL, options, "walking-noise", extra="neurons")
    if not settings.widths or any(width < 1 for width in settings.widths):
        raise ConfigError("walking-noise: widths must be one or more positive layer widths")
    for name in ("epochs", "networks", "draws", "batch_size", "threads"):
        if getattr(settings, name) < 1:
            raise ConfigError(f"walking-noise: {name} must be >= 1")
    if settings.tolerance <= 0 or settings.lr <= 0:
        raise ConfigError("walking-noise: tolerance and lr must be > 0")
    if not settings.curve_levels or any(level <= 0 for level in settings.curve_levels):
        raise ConfigError("walking-noise: curve_levels must be positive noise levels")
    for noise in NOISES:
        if getattr(settings, f"train_{noise}") < 0:
            raise ConfigError(f"walking-noise: train_{noise} must be >= 0")
    return settings


def _train(
    regime: str,
    families: list[Family],
    data: tuple[Any, Any],
    data_test: tuple[Any, Any],
    settings: Settings,
    seed: int,
) -> tuple[nn.Module, Row]:
    """One network trained under ``regime`` on ``data`` and its training row (with its noiseless
    accuracy on ``data_test``)."""
    model = circuit_mlp(families, 64, settings.widths, 10, seed=seed)
    noise = settings.training_noise(regime)
    config = TrainConfig(
        epochs=settings.epochs,
        lr=settings.lr,
        batch_size=settings.batch_size,
        seed=seed,
        restore_best=False,
    )
    began = time.perf_counter()
    history = train(
        model, data, regime=Clean() if noise is None else NoiseInjection(noise), config=config
    )
    seconds = time.perf_counter() - began
    return model, {
        "network": seed,
        "regime": regime,
        "train_sigma": 0.0 if noise is None else noise.sigma,
        "train_loss": history.last["train_loss"],
        "train_accuracy": history.last["train_accuracy"],
        "test_accuracy": monte_carlo(model, data_test, draws=1, seed=seed).mean(),
        "seconds": seconds,
    }


def _walk(
    model: nn.Module,
    test: tuple[Any, Any],
    regime: str,
    settings: Settings,
    seed: int,
    tables: dict[str, list[Row]],
) -> None:
    """Midpoints per layer and noise kind, robustness curves, weight and activation statistics of
    one trained network, appended to ``tables``."""
    layers = [*activation_layers(model), ALL]
    for noise in NOISES:
        for layer in layers:
            tables["midpoints"].append(
                {"network": seed, "regime": regime, "noise": noise, "layer": layer}
                | _midpoint(model, test, noise, layer, settings, seed)
            )
        curve = robustness_curve(
            model,
            test,
            (0.0, *settings.curve_levels),
            noise=noise,
            draws=settings.draws,
            seed=seed,
        )
        for level, mean, sem in zip(curve.levels, curve.mean, curve.sem, strict=True):
            tables["curves"].append(
                {
                    "network": seed,
                    "regime": regime,
                    "noise": noise,
                    "level": float(level),
                    "accuracy": float(mean),
                    "sem": float(sem),
                }
            )
    for row in weight_stats(model):
        tables["weights"].append({"network": seed, "regime": regime} | row)
    x = torch.as_tensor(test[0])
    for row in activation_stats(model, x):
        tables["activations"].append({"network": seed, "regime": regime} | row)


def _midpoint(
    model: nn.Module, test: tuple[Any, Any], noise: str, layer: str, settings: Settings, seed: int
) -> Row:
    """The midpoint row of ``noise`` after ``layer`` (NaN with the reason when it is out of
    reach)."""
    try:
        found = midpoint(
            model,
            test,
            noise=noise,
            layers=None if layer == ALL else (layer,),
            draws=settings.draws,
            tolerance=settings.tolerance,
            seed=seed,
        )
    except ConfigError as error:
        return {
            "midpoint": math.nan,
            "uncertainty": math.nan,
            "clean": math.nan,
            "note": str(error),
        }
    return {
        "midpoint": found.level,
        "uncertainty": found.uncertainty,
        "clean": found.clean,
        "evaluations": len(found.evaluations),
        "note": "",
    }


def summarize_midpoints(rows: list[Row]) -> list[Row]:
    """Mean over networks of each (regime, noise, layer) midpoint with its uncertainty (the
    networks' standard error and the mean bisection uncertainty combined in quadrature) and its
    ratio to the clean network's mean midpoint."""
    keys = list(dict.fromkeys((r["regime"], r["noise"], r["layer"]) for r in rows))
    means: dict[tuple[str, str, str], tuple[float, float]] = {}
    for key in keys:
        members = [r for r in rows if (r["regime"], r["noise"], r["layer"]) == key]
        mean, sem = mean_and_sem([r["midpoint"] for r in members])
        bisection, _ = mean_and_sem([r["uncertainty"] for r in members])
        spread = math.hypot(sem, bisection) if math.isfinite(bisection) else sem
        means[key] = (mean, spread)
    summary = []
    for (regime, noise, layer), (mean, spread) in means.items():
        clean = means.get(("clean", noise, layer), (math.nan, math.nan))[0]
        summary.append(
            {
                "regime": regime,
                "noise": noise,
                "layer": layer,
                "midpoint": mean,
                "uncertainty": spread,
                "ratio_to_clean": mean / clean if clean and math.isfinite(clean) else math.nan,
            }
        )
    return summary
