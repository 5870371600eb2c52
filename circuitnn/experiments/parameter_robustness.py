"""Experiment 4, ``parameter-robustness``: how training regimes protect circuit networks against
parameter (weight) mismatch, random and targeted (study 4: adversarial parameter perturbation).

On scikit-learn's digits (split per replicate into train / validation / test), analog MLPs whose
hidden neurons are simulated circuits (layer *i* from ``neurons[i % 2]``, every neuron its own Monte
Carlo curve) are trained five ways:

- ``clean``; ``dropout`` (probability p); ``noise_injection`` (additive noise σ network units
  after every activation); ``weight_smoothing`` (each step at weights θ·(1 + σz)); ``adversarial``
  (adversarial weight perturbation, AWP: loss + β·KL(f(θ) ‖ f(θ + δ*)), δ* a ``awp_steps``-step
  projected sign-gradient attack inside ``|δ| ≤ ζ_AWP·|θ|``).

**Fair comparison.** Each regime's strength is picked per replicate from a small grid
(``dropout``, ``noise_sigma``, ``smoothing_sigma``, ``awp_zeta``) on the *validation* split: the
setting with the best mean of the random-perturbation and the worst-case accuracy at
``select_zeta``. Every network of a replicate starts from the same initial weights and chip and
trains for the same epochs; the training time of the chosen setting and of the whole grid is
reported per regime (the compute each regime costs).

The chosen network of each regime is evaluated on the test split at relative perturbation bounds
ζ (``zetas``):

- **random**: every weight and bias multiplied by (1 + ζ·z), z standard normal, ``random_draws``
  perturbed networks (:class:`~circuitnn.nn.WeightNoiseSpec`, multiplicative);
- **worst case**: the projected sign-gradient attack on the test loss inside ``|δ| ≤ ζ·|θ|``
  (``attack_steps`` steps, :func:`~circuitnn.evaluate.worst_case`);
- **flatness**: the training-loss increase along random filter-normalized directions at relative
  steps α (``flatness_steps``), averaged over ``directions`` directions and ±α
  (:func:`~circuitnn.experiments.weight_stats.flatness`).

The networks, their training and evaluation:
:mod:`circuitnn.experiments.parameter_robustness_networks`. The findings are decided from effect
sizes with confidence intervals over the replicates
(:mod:`circuitnn.experiments.parameter_robustness_findings`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from circuitnn.data import Dataset, digits
from circuitnn.errors import ConfigError
from circuitnn.experiments.common import interval_table, override, replicate_seeds
from circuitnn.experiments.families import circuit_families
from circuitnn.experiments.parameter_robustness_findings import findings, summary_lines
from circuitnn.experiments.parameter_robustness_networks import (
    GRID_FIELDS,
    Settings,
    evaluate_network,
    select_network,
)
from circuitnn.experiments.parameter_robustness_plots import plot_flatness, plot_robustness
from circuitnn.experiments.result import ExperimentResult, Row

NEURONS = ("mos_diffpair", "cmos_inverter")
REGIMES = ("clean", "dropout", "noise_injection", "weight_smoothing", "adversarial")
REPLICATES = (2, 5)  # quick, full
QUICK = Settings(
    widths=(32, 32),
    epochs=15,
    zetas=(0.05, 0.2, 0.5),
    random_draws=4,
    directions=2,
    attack_steps=5,
    flatness_steps=(0.5, 1.0),
    dropout=(0.1,),
    noise_sigma=(0.5,),
    smoothing_sigma=(0.1,),
    awp_zeta=(0.1, 0.2),
    select_draws=4,
)
FULL = Settings(
    widths=(64, 64),
    epochs=25,
    zetas=(0.05, 0.1, 0.2, 0.3, 0.5, 1.0),
    random_draws=16,
    directions=6,
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
    **options: Any,
) -> ExperimentResult:
    """Run the experiment into ``out`` (module docstring); ``quick`` is the test size.

    ``neurons``: the families of the hidden layers, cycled; ``options``: overrides of
    :class:`Settings` fields (e.g. ``zetas=(0.1, 0.2)``, ``awp_zeta=0.1`` or a grid
    ``awp_zeta=(0.1, 0.3)``, ``epochs=20``).
    """
    started = time.perf_counter()
    settings = _settings(quick, options)
    families = circuit_families(tuple(neurons), store, quick=quick, seed=seed, jobs=jobs)
    order = list(families.values())
    layers = {f"act{i + 1}": order[i % len(order)].neuron for i in range(len(settings.widths))}
    tables: dict[str, list[Row]] = {
        name: [] for name in ("selection", "training", "random", "worst_case", "flatness")
    }
    data: Dataset | None = None
    for replicate, replicate_seed in enumerate(replicate_seeds(seed, replicates)):
        data = digits(seed=replicate_seed, validation=0.15, test=0.3)
        for regime in REGIMES:
            model, row = select_network(
                regime, order, data, settings, replicate, replicate_seed, tables
            )
            tables["training"].append(row)
            evaluate_network(model, regime, data, settings, replicate, replicate_seed, tables)
    tables["summary"] = summarize(tables)
    tables["flatness_summary"] = interval_table(
        tables["flatness"], ("regime", "step"), ("increase", "loss")
    )
    tables["compute"] = compute_table(tables)
    assert data is not None
    result = ExperimentResult.begin(
        "parameter-robustness",
        out,
        quick=quick,
        seed=seed,
        replicates=replicates,
        store=store,
        settings=settings,
        tables=tables,
        layers=layers,
        data={"name": "digits", **data.sizes, "classes": 10},
    )
    out = result.out
    result.figures = {
        "robustness": plot_robustness(tables["summary"], out / "robustness.png"),
        "flatness": plot_flatness(tables["flatness_summary"], out / "flatness.png"),
    }
    result.findings = findings(tables, settings)
    result.summary = summary_lines(
        tables, settings, layers, replicates, time.perf_counter() - started
    )
    return result


def _settings(quick: bool, options: dict[str, Any]) -> Settings:
    settings = override(QUICK if quick else FULL, options, "parameter-robustness", "neurons")
    if not settings.widths or any(width < 1 for width in settings.widths):
        raise ConfigError("parameter-robustness: widths must be one or more positive widths")
    for name in ("epochs", "random_draws", "directions", "attack_steps", "select_draws"):
        if getattr(settings, name) < 1:
            raise ConfigError(f"parameter-robustness: {name} must be >= 1")
    if not settings.zetas or any(z <= 0 for z in settings.zetas):
        raise ConfigError("parameter-robustness: zetas must be positive relative bounds")
    if not settings.select_zeta > 0 or not settings.equivalence_margin > 0:
        raise ConfigError("parameter-robustness: select_zeta and equivalence_margin must be > 0")
    if not settings.flatness_steps or any(a <= 0 for a in settings.flatness_steps):
        raise ConfigError("parameter-robustness: flatness_steps must be positive")
    for name in REGIMES:
        if not settings.grid(name):
            raise ConfigError(f"parameter-robustness: {GRID_FIELDS[name]} needs a value")
        for value in settings.grid(name):
            settings.regime(name, value)  # the regimes check their own settings (ConfigError)
    zetas = tuple(sorted({*settings.zetas, settings.select_zeta}))
    return override(settings, {"zetas": zetas}, "parameter-robustness")


def summarize(tables: dict[str, list[Row]]) -> list[Row]:
    """Per regime and ζ (0: unperturbed): random and worst-case test accuracy, mean over
    replicates with 95 % intervals."""
    rows = []
    for row in tables["training"]:
        rows.append(
            {
                "replicate": row["replicate"],
                "regime": row["regime"],
                "zeta": 0.0,
                "random": row["test_accuracy"],
                "worst_case": row["test_accuracy"],
            }
        )
    worst = {(r["replicate"], r["regime"], r["zeta"]): r["accuracy"] for r in tables["worst_case"]}
    for row in tables["random"]:
        key = (row["replicate"], row["regime"], row["zeta"])
        rows.append(
            {
                "replicate": row["replicate"],
                "regime": row["regime"],
                "zeta": row["zeta"],
                "random": row["accuracy"],
                "worst_case": worst[key],
            }
        )
    return interval_table(rows, ("regime", "zeta"), ("random", "worst_case"))


def compute_table(tables: dict[str, list[Row]]) -> list[Row]:
    """Per regime: the values chosen in the replicates, the training time of the chosen network
    and of its whole grid (mean over replicates, s) and both relative to clean training."""
    training = tables["training"]
    clean = [r["seconds"] for r in training if r["regime"] == "clean"]
    reference = sum(clean) / len(clean)
    rows = []
    for regime in dict.fromkeys(r["regime"] for r in training):
        mine = [r for r in training if r["regime"] == regime]
        seconds = sum(r["seconds"] for r in mine) / len(mine)
        grid = sum(r["grid_seconds"] for r in mine) / len(mine)
        rows.append(
            {
                "regime": regime,
                "chosen": ", ".join("-" if r["value"] is None else f"{r['value']:g}" for r in mine),
                "grid_size": mine[0]["grid_size"],
                "seconds": seconds,
                "grid_seconds": grid,
                "relative_cost": seconds / reference,
                "relative_grid_cost": grid / reference,
            }
        )
    return rows
