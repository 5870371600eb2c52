"""Experiment 1, ``inhomogeneity``: noise tolerance of circuit networks and the damage done by
per-neuron activation inhomogeneity, repaired by retraining on each chip (study 1: materials
informatics with noisy, inhomogeneous analog neurons).

For a regression task (default: ``g2-zpe``, zero-point energies of the G2 molecules from geometry
descriptors; or ``regression="smooth"`` / ``"diabetes"`` / …, or a user table ``table=PATH,
target=NAME[, features=[...]]``) and a classification task (digits), with the neurons of two
simulated families (``mos_diffpair``: tanh-like, small mismatch; ``cmos_inverter``: a steep
inverter whose threshold mismatch is about one network input unit), each of ``replicates``
independent replicates (seed ``seed + r``: its own data split, initial weights, chips and noise
draws) runs:

1. **Depth.** Networks of 1–4 hidden layers (``depths``) at the reference width, for every family,
   trained on the family's *nominal* curve (every neuron alike, noise off, early stopping on the
   validation loss), then evaluated with additive Gaussian noise after every activation at levels
   σ in network units (one unit is half the nominal output swing). Per network: the error (1 −
   accuracy, or RMSE of the standardized target) versus σ; σ₁₀ / σ₅₀, where the error has gone
   10 % / 50 % of the way from clean to chance; the *damage index*, the mean over the level grid
   of that normalized increase, capped at 1 (0: no damage, 1: chance everywhere).
2. **Size.** One hidden layer at every width of ``widths`` (first family): the *optimal* width is
   the smallest whose clean validation error is within 10 % of the lowest; the
   *larger-than-optimal* network is the grid width nearest ``larger`` × the optimal one above it.
3. **Overfitting.** One hidden layer (first family) trained without early stopping at every
   combination of ``overfit_widths``, ``overfit_epochs`` and ``overfit_decays`` (weight decay):
   the train–test gap of the clean error against the damage index.
4. **Circuit noise.** The reference network with the circuits' own simulated output noise σ_out(x)
   (integrated to the family's 1 MHz bandwidth) at ×1 and larger multiples.
5. **Inhomogeneity and retraining.** The reference network on ``chips`` chips (each neuron its own
   sampled curve): the *damaged* error; each chip fine-tuned on its realized curves
   (:class:`~circuitnn.train.ChipRetrain`): the *repaired* error. A control trains the nominal
   network on for as many more epochs, so the benefit of more training is not counted as repair.

The sizes and options: :mod:`circuitnn.experiments.inhomogeneity_settings`; the networks:
:mod:`circuitnn.experiments.inhomogeneity_networks`. The findings are decided from effect sizes
with confidence intervals over the replicates (:mod:`circuitnn.experiments.inhomogeneity_findings`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from circuitnn.data import Dataset, builtin, load_table
from circuitnn.errors import ConfigError
from circuitnn.experiments.common import interval_table, replicate_seeds
from circuitnn.experiments.families import circuit_families
from circuitnn.experiments.inhomogeneity_findings import findings, summary_lines
from circuitnn.experiments.inhomogeneity_networks import (
    Trained,
    chip_rows,
    circuit_noise_rows,
    noise_rows,
    train_network,
)
from circuitnn.experiments.inhomogeneity_plots import (
    plot_inhomogeneity,
    plot_noise_curves,
    plot_overfitting,
    plot_tolerance,
)
from circuitnn.experiments.inhomogeneity_settings import (
    FULL,
    QUICK,
    Settings,
    as_items,
    checked_settings,
)
from circuitnn.experiments.result import ExperimentResult, Row
from circuitnn.family import Family
from circuitnn.nn import CircuitSpec

NEURONS = ("mos_diffpair", "cmos_inverter")
REPLICATES = (2, 5)  # quick, full


def run(
    out: Path,
    *,
    quick: bool,
    seed: int,
    store: Path,
    jobs: int,
    replicates: int,
    regression: str = "g2-zpe",
    classification: str = "digits",
    table: str | Path | None = None,
    target: str | None = None,
    features: Sequence[str] | None = None,
    neurons: Sequence[str] = NEURONS,
    **options: Any,
) -> ExperimentResult:
    """Run the experiment into ``out`` (see the module docstring); ``quick`` is the test size.

    ``regression`` / ``classification``: built-in data sets (:data:`circuitnn.data.BUILTINS`);
    ``table`` (+ ``target``, optional ``features``): a user's CSV / NPZ / HDF5 regression table
    instead of the built-in regression task; ``neurons``: the families (built-in names or spec
    paths; default :data:`NEURONS`); ``options``: overrides of :class:`Settings` fields
    (:data:`~circuitnn.experiments.inhomogeneity_settings.OVERRIDABLE`).
    """
    started = time.perf_counter()
    settings = checked_settings(quick, options)
    families = circuit_families(tuple(neurons), store, quick=quick, seed=seed, jobs=jobs)
    spreads = {name: family_spread(family) for name, family in families.items()}
    tables: dict[str, list[Row]] = {
        name: [] for name in ("noise_curves", "tolerance", "circuit_noise", "chips", "chip_summary")
    }
    described: dict[str, Any] = {}
    for replicate, replicate_seed in enumerate(replicate_seeds(seed, replicates)):
        tasks = _tasks(
            replicate_seed, settings, regression, classification, table, target, features
        )
        described = {name: ds.describe() for name, ds in tasks.items()}
        _replicate(tasks, families, spreads, settings, replicate, replicate_seed, tables)
    tables["tolerance_summary"] = interval_table(
        tables["tolerance"],
        ("study", "task", "family", "depth", "width", "weight_decay", "max_epochs"),
        ("clean_error", "gap", "damage_index", "sigma10", "sigma50"),
    )
    tables["accuracy"] = _accuracy(tables["tolerance"], settings)
    tables["families"] = [{"family": name, **row} for name, row in spreads.items()]
    result = ExperimentResult.begin(
        "inhomogeneity",
        out,
        quick=quick,
        seed=seed,
        replicates=replicates,
        store=store,
        settings=settings,
        tables=tables,
        tasks=described,
        families=spreads,
    )
    out = result.out
    result.figures = {
        "noise_curves": plot_noise_curves(tables["noise_curves"], out / "noise_curves.png"),
        "tolerance": plot_tolerance(tables["tolerance_summary"], out / "tolerance.png"),
        "overfitting": plot_overfitting(tables["tolerance"], out / "overfitting.png"),
        "inhomogeneity": plot_inhomogeneity(tables["chip_summary"], out / "inhomogeneity.png"),
    }
    result.findings = findings(tables, settings)
    result.summary = summary_lines(
        described, spreads, tables, settings, replicates, time.perf_counter() - started
    )
    return result


def _replicate(
    tasks: dict[str, Dataset],
    families: dict[str, Family],
    spreads: dict[str, dict[str, Any]],
    settings: Settings,
    replicate: int,
    seed: int,
    tables: dict[str, list[Row]],
) -> None:
    """Every network of one replicate, its rows appended to ``tables``."""
    first = next(iter(families))
    width_ref = settings.reference[1]
    for task_name, task in tasks.items():
        trained: list[Trained] = []
        for family_name, family in families.items():
            activation = CircuitSpec(family, mode="nominal")
            for depth in settings.depths:
                trained.append(
                    train_network(
                        task_name, task, family_name, activation, depth, width_ref, settings, seed
                    )
                )
            if family_name != first:
                continue
            for width in settings.widths:
                if width != width_ref:  # (1, width_ref) is the depth study's
                    trained.append(
                        train_network(
                            task_name, task, family_name, activation, 1, width, settings, seed
                        )
                    )
            for width in settings.overfit_widths:
                for epochs in settings.overfit_epochs:
                    for decay in settings.overfit_decays:
                        trained.append(
                            train_network(
                                task_name,
                                task,
                                family_name,
                                activation,
                                1,
                                width,
                                settings,
                                seed,
                                study="overfitting",
                                epochs=epochs,
                                weight_decay=decay,
                                early_stopping=False,
                            )
                        )
        for item in trained:
            curves, row = noise_rows(item, task, settings, replicate, seed)
            if replicate == 0:
                tables["noise_curves"] += curves
            tables["tolerance"].append(row)
            if item.study == "architecture" and (item.depth, item.width) == settings.reference:
                sigma_units = spreads[item.family]["sigma_out_units"]
                tables["circuit_noise"] += circuit_noise_rows(
                    item, task, sigma_units, settings, replicate, seed
                )
                chips, summary = chip_rows(item, task, settings, replicate, seed)
                tables["chips"] += chips
                tables["chip_summary"].append(summary)


def _accuracy(tolerance: list[Row], settings: Settings) -> list[Row]:
    """The reference networks' clean test error (and, for regression, RMSE in the target's units
    and R²) as mean with 95 % interval over replicates."""
    reference = [
        r
        for r in tolerance
        if r["study"] == "architecture" and (r["depth"], r["width"]) == settings.reference
    ]
    columns = ["clean_error"]
    if any("r2" in r for r in reference):
        columns += ["rmse_target_units", "r2"]
    rows = []
    for task in dict.fromkeys(r["task"] for r in reference):
        members = [r for r in reference if r["task"] == task]
        present = [c for c in columns if all(c in r for r in members)]
        rows += interval_table(members, ("task", "family"), present)
    return rows


def _tasks(
    seed: int,
    settings: Settings,
    regression: str,
    classification: str,
    table: str | Path | None,
    target: str | None,
    features: Sequence[str] | None,
) -> dict[str, Dataset]:
    """``{"regression": Dataset, "classification": Dataset}`` split by ``seed``."""
    if table is not None:
        if not target:
            raise ConfigError("inhomogeneity: a table needs target=COLUMN")
        regression_data = load_table(
            table, target=target, features=list(as_items(features)) if features else None, seed=seed
        )
    else:
        options: dict[str, Any] = {"seed": seed}
        if regression in ("smooth", "friedman"):
            options["rows"] = settings.rows
        regression_data = builtin(regression, **options)
    classification_data = builtin(classification, seed=seed)
    if regression_data.task != "regression":
        raise ConfigError(f"inhomogeneity: {regression!r} is not a regression data set")
    if classification_data.task != "classification":
        raise ConfigError(f"inhomogeneity: {classification!r} is not a classification data set")
    return {"regression": regression_data, "classification": classification_data}


def family_spread(family: Family) -> dict[str, Any]:
    """The family's spread in its own units and in network input units (the unit the noise
    levels and the networks use)."""
    probe = CircuitSpec(family, mode="nominal").build(1, seed=0)
    input_unit = float(probe.scaling.input_scale)
    output_unit = abs(float(probe.scaling.output_scale))
    ok = family.ok
    midpoint = family.descriptors["midpoint"][ok]
    swing = family.descriptors["swing"][ok]
    gain = np.abs(family.descriptors["gain"][ok])
    sigma = np.nan
    if family.noise is not None:
        sigma = float(np.nanmean(family.noise.sigma[family.noise.status == 1]))
    return {
        "instances": int(ok.sum()),
        "input_unit_V": input_unit,
        "output_unit": output_unit,
        "output_quantity_unit": family.output_unit,
        "midpoint_sigma_V": float(np.std(midpoint)),
        "midpoint_sigma_units": float(np.std(midpoint)) / input_unit,
        "swing_rel_sigma": float(np.std(swing) / np.mean(swing)),
        "gain_rel_sigma": float(np.std(gain) / np.mean(gain)),
        "sigma_out": sigma,
        "sigma_out_units": sigma / output_unit,
    }


__all__ = ["FULL", "NEURONS", "QUICK", "REPLICATES", "Settings", "run"]
