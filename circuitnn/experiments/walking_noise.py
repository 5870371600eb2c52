"""Experiment 3, ``walking-noise``: layer-wise noise sensitivity of circuit networks, and what noisy
training does to their weights (study 3, "Walking Noise").

Three task × architecture settings, every hidden layer made of simulated circuit neurons (layer *i*
from ``neurons[i % 2]``: ``mos_diffpair`` tanh-like, ``cmos_inverter`` a steep inverter; every
neuron its own Monte Carlo curve):

- ``digits-mlp``: an MLP (``widths``) on scikit-learn's digits, trained four ways — ``clean`` and
  with ``additive`` / ``multiplicative`` / ``mixed`` noise after every activation
  (:class:`~circuitnn.train.NoiseInjection`; σ ``train_additive`` in network units — one unit is
  half the nominal output swing —, ``train_multiplicative`` relative, ``train_mixed`` both parts)
  — and walked with all three noises; besides, networks trained with multiplicative noise at every
  level of ``binarization_sigmas`` (the self-binarization sweep);
- ``digits-cnn``: a CNN (``cnn_channels`` conv layers of circuit neurons, one per channel, then a
  dense layer of ``cnn_width``) on the 8×8 digit images, trained clean and with additive noise and
  walked with additive noise;
- ``REGRESSION-mlp``: an MLP (``regression_widths``) on the regression task ``regression``
  (default the generated ``smooth`` task; the midpoint is where the RMSE has risen halfway to
  that of predicting the mean), trained clean and with additive noise, walked with additive noise.

Each trained network is *walked*: the noise is put after one activation layer at a time, and after
all of them at once (layer ``all``), and the **midpoint** — the noise level at which the test score
has gone halfway from the network's clean score to chance — is found by bisection
(:func:`~circuitnn.evaluate.midpoint`; evaluation noise per neuron and per sample, ``draws`` draws
per level). Besides: the weights of every layer (RMS, binarization index) and the activations they
produce (signal power, binarization index; :mod:`circuitnn.experiments.weight_stats`), and, for the
first replicate, score versus noise level in all layers.

Everything is repeated over ``replicates`` (seed ``seed + r``: data split, initial weights, chips,
noise draws); all networks of a replicate share its initial weights and chips, so regimes are
compared paired. The findings: :mod:`circuitnn.experiments.walking_noise_findings`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from circuitnn.data import Dataset, builtin
from circuitnn.errors import ConfigError
from circuitnn.experiments.common import interval_table, override, replicate_seeds
from circuitnn.experiments.families import circuit_families
from circuitnn.experiments.result import ExperimentResult, Row
from circuitnn.experiments.walking_noise_findings import findings, summary_lines
from circuitnn.experiments.walking_noise_networks import (
    Setting,
    statistics,
    train_network,
    walk,
)
from circuitnn.experiments.walking_noise_plots import plot_curves, plot_midpoints, plot_weights
from circuitnn.family import Family

NEURONS = ("mos_diffpair", "cmos_inverter")
NOISES = ("additive", "multiplicative", "mixed")
REGIMES = ("clean", *NOISES)
REPLICATES = (2, 4)  # quick, full


@dataclass(frozen=True)
class Settings:
    """Sizes of one run. ``widths``: hidden widths of the digits MLP; ``cnn_channels`` /
    ``cnn_width``: the CNN's conv channels and dense width; ``regression_widths``: the regression
    MLP's; ``epochs`` of Adam at ``lr`` with ``batch_size`` (no early stopping: every network
    trains equally long); ``draws``: noise draws per evaluated level; ``tolerance``: bisection
    stops when high/low ≤ 1 + tolerance; ``curve_levels``: noise levels of the robustness curves;
    ``train_additive`` (network units), ``train_multiplicative`` (relative), ``train_mixed`` (both
    parts): σ of the training noise; ``binarization_sigmas``: the multiplicative training levels of
    the self-binarization sweep; ``layer_margin``: two layers' midpoints within this factor of
    each other (ratio 1 ± margin) count as equally sensitive; ``rows``: rows of a generated
    regression task."""

    widths: tuple[int, ...]
    cnn_channels: tuple[int, ...]
    cnn_width: int
    regression_widths: tuple[int, ...]
    epochs: int
    draws: int
    tolerance: float
    curve_levels: tuple[float, ...]
    binarization_sigmas: tuple[float, ...]
    train_additive: float = 1.0
    train_multiplicative: float = 1.0
    train_mixed: float = 0.5
    layer_margin: float = 0.2
    lr: float = 3e-3
    batch_size: int = 64
    rows: int = 1000


QUICK = Settings(
    widths=(32, 32),
    cnn_channels=(4,),
    cnn_width=16,
    regression_widths=(16, 16),
    epochs=12,
    draws=4,
    tolerance=0.15,
    curve_levels=(0.5, 2.0, 8.0),
    binarization_sigmas=(1.0, 2.0),
    rows=400,
)
FULL = Settings(
    widths=(64, 64, 64),
    cnn_channels=(8, 16),
    cnn_width=32,
    regression_widths=(32, 32),
    epochs=30,
    draws=12,
    tolerance=0.1,
    curve_levels=(0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0),
    binarization_sigmas=(0.25, 0.5, 1.0, 2.0, 3.0),
)


def settings_of(regression: str) -> tuple[Setting, ...]:
    """The three task × architecture settings (module docstring)."""
    return (
        Setting("digits-mlp", "classification", "mlp", REGIMES, NOISES),
        Setting("digits-cnn", "classification", "cnn", ("clean", "additive"), ("additive",)),
        Setting(f"{regression}-mlp", "regression", "mlp", ("clean", "additive"), ("additive",)),
    )


def run(
    out: Path,
    *,
    quick: bool,
    seed: int,
    store: Path,
    jobs: int,
    replicates: int,
    neurons: tuple[str, ...] | list[str] = NEURONS,
    regression: str = "smooth",
    **options: Any,
) -> ExperimentResult:
    """Run the experiment into ``out`` (module docstring); ``quick`` is the test size.

    ``neurons``: the families of the hidden layers, cycled (built-in names or spec paths);
    ``regression``: the built-in regression data set of the third setting; ``options``: overrides
    of :class:`Settings` fields (e.g. ``widths=(64, 64)``, ``epochs=30``, ``train_additive=0.5``).
    """
    started = time.perf_counter()
    settings = _settings(quick, options)
    families = circuit_families(tuple(neurons), store, quick=quick, seed=seed, jobs=jobs)
    order = list(families.values())
    tables: dict[str, list[Row]] = {
        name: [] for name in ("training", "midpoints", "weights", "activations", "curves")
    }
    examples: dict[str, dict[str, np.ndarray]] = {}
    configurations = settings_of(regression)
    described: dict[str, Any] = {}
    for replicate, replicate_seed in enumerate(replicate_seeds(seed, replicates)):
        data = _data(replicate_seed, settings, regression)
        described = {name: ds.describe() for name, ds in data.items()}
        for setting in configurations:
            task = data[setting.task]
            for regime in setting.regimes:
                model, row = train_network(
                    setting, regime, order, task, settings, replicate, replicate_seed
                )
                tables["training"].append(row)
                first = replicate == 0 and setting.name == "digits-mlp"
                walk(
                    model, setting, task, regime, settings, replicate, replicate_seed, tables, first
                )
                if first:
                    examples[regime] = _weights(model)
        _binarization_sweep(
            configurations[0],
            order,
            data["classification"],
            settings,
            replicate,
            replicate_seed,
            tables,
        )
    tables["midpoint_summary"] = summarize_midpoints(tables["midpoints"])
    digits_mlp = next(iter(dict.fromkeys(r["setting"] for r in tables["training"])))
    layer_families = {
        f"act{i + 1}": order[i % len(order)].neuron for i in range(len(settings.widths))
    }
    result = ExperimentResult.begin(
        "walking-noise",
        out,
        quick=quick,
        seed=seed,
        replicates=replicates,
        store=store,
        settings=settings,
        tables=tables,
        layers=layer_families,
        settings_walked=[asdict(setting) for setting in configurations],
        data=described,
    )
    out = result.out
    result.figures = {
        "midpoints": plot_midpoints(tables["midpoint_summary"], out / "midpoints.png"),
        "weights": plot_weights(
            [r for r in tables["weights"] if r["setting"] == digits_mlp],
            examples,
            out / "weights.png",
            settings.train_multiplicative,
        ),
        "curves": plot_curves(tables["curves"], out / "curves.png"),
    }
    result.findings = findings(tables, settings, configurations)
    result.summary = summary_lines(
        tables, settings, layer_families, replicates, time.perf_counter() - started
    )
    return result


def _binarization_sweep(
    setting: Setting,
    families: list[Family],
    data: Dataset,
    settings: Settings,
    replicate: int,
    seed: int,
    tables: dict[str, list[Row]],
) -> None:
    """Digits MLPs trained with multiplicative noise at each level of the sweep (the level the
    walk already trained is not repeated): weight and activation statistics only."""
    for sigma in settings.binarization_sigmas:
        if sigma == settings.train_multiplicative:
            continue
        model, row = train_network(
            setting, "multiplicative", families, data, settings, replicate, seed, sigma=sigma
        )
        row["regime"] = f"multiplicative σ={sigma:g}"
        tables["training"].append(row)
        base = {
            "setting": setting.name,
            "replicate": replicate,
            "network": seed,
            "regime": row["regime"],
        }
        statistics(model, setting, data, base, tables)


def _weights(model: Any) -> dict[str, np.ndarray]:
    return {
        name: module.weight.detach().double().numpy().copy()
        for name, module in model.named_modules()
        if name.startswith("linear")
    }


def _data(seed: int, settings: Settings, regression: str) -> dict[str, Dataset]:
    """The digits (pixels in [0, 1]) and the regression data set, split by ``seed``."""
    options: dict[str, Any] = {"seed": seed}
    if regression in ("smooth", "friedman"):
        options["rows"] = settings.rows
    regression_data = builtin(regression, **options)
    if regression_data.task != "regression":
        raise ConfigError(f"walking-noise: {regression!r} is not a regression data set")
    return {
        "classification": builtin("digits", seed=seed, validation=0.05, test=0.3),
        "regression": regression_data,
    }


def _settings(quick: bool, options: dict[str, Any]) -> Settings:
    settings = override(
        QUICK if quick else FULL, options, "walking-noise", extra="neurons, regression"
    )
    for name in ("widths", "cnn_channels", "regression_widths"):
        if not getattr(settings, name) or any(w < 1 for w in getattr(settings, name)):
            raise ConfigError(f"walking-noise: {name} must be one or more positive widths")
    for name in ("epochs", "draws", "batch_size", "cnn_width"):
        if getattr(settings, name) < 1:
            raise ConfigError(f"walking-noise: {name} must be >= 1")
    if settings.tolerance <= 0 or settings.lr <= 0 or settings.layer_margin <= 0:
        raise ConfigError("walking-noise: tolerance, lr and layer_margin must be > 0")
    if not settings.curve_levels or any(level <= 0 for level in settings.curve_levels):
        raise ConfigError("walking-noise: curve_levels must be positive noise levels")
    if not settings.binarization_sigmas or any(s <= 0 for s in settings.binarization_sigmas):
        raise ConfigError("walking-noise: binarization_sigmas must be positive noise levels")
    for noise in NOISES:
        if getattr(settings, f"train_{noise}") < 0:
            raise ConfigError(f"walking-noise: train_{noise} must be >= 0")
    return settings


def summarize_midpoints(rows: list[Row]) -> list[Row]:
    """Per (setting, regime, noise, layer): the midpoint's mean over replicates with its 95 %
    interval, and the geometric mean over replicates of its ratio to the clean network's."""
    clean = {
        (r["setting"], r["replicate"], r["noise"], r["layer"]): r["midpoint"]
        for r in rows
        if r["regime"] == "clean"
    }
    with_ratio = []
    for row in rows:
        reference = clean.get((row["setting"], row["replicate"], row["noise"], row["layer"]))
        ratio = row["midpoint"] / reference if reference else float("nan")
        with_ratio.append(row | {"ratio_to_clean": ratio})
    return interval_table(
        with_ratio, ("setting", "regime", "noise", "layer"), ("midpoint", "ratio_to_clean")
    )


__all__ = ["FULL", "NEURONS", "QUICK", "REPLICATES", "Settings", "run"]
