"""Experiment 1, ``inhomogeneity``: noise tolerance of circuit networks and the damage done by
per-neuron activation inhomogeneity, repaired by retraining on each chip (study 1).

For a regression task (default: the generated smooth task; ``regression="diabetes"`` or a user
table ``table=PATH, target=NAME[, features=[...]]``) and a classification task (digits), with the
neurons of two simulated families (``mos_diffpair``: tanh-like, small mismatch; ``cmos_inverter``:
a steep inverter whose threshold mismatch is about one network input unit):

1. **Noise versus architecture.** Networks of one and two hidden layers at several widths are
   trained on the family's *nominal* curve (every neuron alike, noise off), then evaluated with
   additive Gaussian noise after every activation at levels σ in network units (one unit is half
   the nominal output swing, so σ = 0.1 is 5 % of the full swing). Per network: the error
   (1 − accuracy, or RMSE of the standardized target) versus σ; the levels σ₁₀ / σ₅₀ at which the
   error has gone 10 % / 50 % of the way from clean to chance; and the *damage index*, the mean
   over the level grid of that normalized error increase, capped at 1 (0: no damage, 1: chance
   everywhere). (At quick size only the first family gets the whole grid.)
2. **Circuit noise.** The same reference network (one hidden layer) with the circuits' own
   simulated output noise σ_out(x) (integrated to the family's 1 MHz signal bandwidth) at ×1 and
   larger multiples.
3. **Inhomogeneity and retraining.** The reference network trained on the nominal curve is put on
   ``chips`` chips (each neuron its own sampled curve): the *damaged* error per chip; then each chip
   is fine-tuned on its realized curves (:class:`~circuitnn.train.ChipRetrain`): the *repaired*
   error; mean ± spread over chips and the fraction of the damage recovered. A control trains the
   nominal network on (homogeneous) for as many more epochs, so that the benefit of more training
   is not counted as repair.

The findings are decided by the fixed rules written in
:mod:`circuitnn.experiments.inhomogeneity_findings`; each one's evidence carries the numbers.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from circuitnn.data import Dataset, builtin, load_table
from circuitnn.errors import ConfigError
from circuitnn.evaluate import monte_carlo, robustness_curve
from circuitnn.experiments.families import circuit_families
from circuitnn.experiments.inhomogeneity_findings import findings, summary_lines
from circuitnn.experiments.inhomogeneity_plots import (
    plot_inhomogeneity,
    plot_noise_curves,
    plot_tolerance,
)
from circuitnn.experiments.result import ExperimentResult, Row
from circuitnn.family import Family
from circuitnn.nn import (
    CircuitNoise,
    CircuitSpec,
    NoiseSpec,
    build_mlp,
    mlp_spec,
    resample_chips,
    set_mode,
)
from circuitnn.nn.random import derive_seed
from circuitnn.train import ChipRetrain, TrainConfig, train

NEURONS = ("mos_diffpair", "cmos_inverter")


@dataclass(frozen=True)
class Settings:
    """Sizes of one run. ``widths``: hidden widths; ``depths``: hidden layers; ``reference``:
    (depth, width) of the network used for circuit noise and the chip study; ``levels``: additive
    noise σ in network units (half the nominal swing = 1); ``circuit_scales``: multiples of the
    simulated σ_out; ``chips``: chips drawn for the inhomogeneity study; ``epochs`` /
    ``retrain_epochs`` (with ``patience`` on the validation loss); ``lr`` / ``retrain_lr``;
    ``draws``: noise draws per evaluation; ``grid_families``: how many of the families (in order)
    get the whole width × depth grid (None: all; the others only the reference network);
    ``batch_size``; ``rows``: rows of a generated regression task."""

    widths: tuple[int, ...]
    depths: tuple[int, ...]
    reference: tuple[int, int]
    levels: tuple[float, ...]
    circuit_scales: tuple[float, ...]
    chips: int
    epochs: int
    retrain_epochs: int
    draws: int
    grid_families: int | None = None
    patience: int = 15
    lr: float = 1e-2
    retrain_lr: float = 3e-3
    batch_size: int = 64
    rows: int = 1000


QUICK = Settings(
    widths=(8, 32),
    depths=(1, 2),
    reference=(1, 32),
    levels=(0.0, 0.05, 0.1, 0.2, 0.5, 1.0),
    circuit_scales=(1.0, 1000.0),
    chips=3,
    epochs=30,
    retrain_epochs=10,
    draws=8,
    grid_families=1,
    patience=8,
)
FULL = Settings(
    widths=(8, 32, 128),
    depths=(1, 2),
    reference=(1, 32),
    levels=(0.0, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5),
    circuit_scales=(1.0, 10.0, 100.0, 1000.0, 3000.0),
    chips=8,
    epochs=150,
    retrain_epochs=40,
    draws=32,
)
OVERRIDABLE = ("widths", "depths", "chips", "epochs", "retrain_epochs", "draws", "levels")


@dataclass
class Trained:
    """A network trained on the nominal curves of one family for one task."""

    task: str
    family: str
    depth: int
    width: int
    model: nn.Sequential
    epochs: int
    seconds: float


def run(
    out: Path,
    *,
    quick: bool,
    seed: int,
    store: Path,
    jobs: int,
    regression: str = "smooth",
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
    (``widths``, ``depths``, ``chips``, ``epochs``, ``retrain_epochs``, ``draws``, ``levels``).
    """
    started = time.perf_counter()
    settings = _settings(quick, options)
    tasks = _tasks(seed, settings, regression, classification, table, target, features)
    families = circuit_families(tuple(neurons), store, quick=quick, seed=seed, jobs=jobs)
    spreads = {name: family_spread(family) for name, family in families.items()}
    result = ExperimentResult(
        name="inhomogeneity",
        out=Path(out),
        config={
            "quick": quick,
            "seed": seed,
            "store": str(store),
            "settings": asdict(settings),
            "tasks": {name: ds.describe() for name, ds in tasks.items()},
            "families": spreads,
        },
    )
    trained = _train_all(tasks, families, settings, seed)
    curves, tolerance = _noise_study(trained, tasks, settings, seed)
    references = {
        (t.task, t.family): t for t in trained if (t.depth, t.width) == settings.reference
    }
    circuit = _circuit_noise_study(references, tasks, spreads, settings, seed)
    chips, chip_summary = _chip_study(references, tasks, settings, seed)
    result.tables = {
        "noise_curves": curves,
        "tolerance": tolerance,
        "circuit_noise": circuit,
        "inhomogeneity_chips": chips,
        "inhomogeneity": chip_summary,
        "families": [{"family": name, **row} for name, row in spreads.items()],
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result.figures = {
        "noise_curves": plot_noise_curves(curves, out / "noise_curves.png"),
        "tolerance": plot_tolerance(tolerance, out / "tolerance.png"),
        "inhomogeneity": plot_inhomogeneity(chips, chip_summary, out / "inhomogeneity.png"),
    }
    result.findings = findings(tolerance, chip_summary, settings.reference)
    result.summary = summary_lines(
        tasks, spreads, tolerance, circuit, chip_summary, settings, time.perf_counter() - started
    )
    return result


def _settings(quick: bool, options: dict[str, Any]) -> Settings:
    unknown = sorted(set(options) - set(OVERRIDABLE))
    if unknown:
        raise ConfigError(
            f"inhomogeneity: unknown option(s) {unknown}; known: regression, classification, "
            f"table, target, features, neurons, {', '.join(OVERRIDABLE)}"
        )
    settings = QUICK if quick else FULL
    changes: dict[str, Any] = {}
    for name, value in options.items():
        try:
            if name in ("widths", "depths", "levels"):
                values = _items(value)
                changes[name] = tuple(float(v) if name == "levels" else int(v) for v in values)
            else:
                changes[name] = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"inhomogeneity: bad {name}={value!r}") from None
    settings = replace(settings, **changes)
    if any(w < 1 for w in settings.widths) or any(d < 1 for d in settings.depths):
        raise ConfigError("inhomogeneity: widths and depths must be >= 1")
    if settings.chips < 1 or settings.epochs < 1 or settings.retrain_epochs < 1:
        raise ConfigError("inhomogeneity: chips, epochs and retrain_epochs must be >= 1")
    if 0.0 not in settings.levels or any(level < 0 for level in settings.levels):
        raise ConfigError("inhomogeneity: levels must be >= 0 and include 0 (the clean network)")
    depth, width = settings.reference
    if depth not in settings.depths or width not in settings.widths:
        settings = replace(settings, reference=(settings.depths[0], settings.widths[-1]))
    return replace(settings, levels=tuple(sorted(set(settings.levels))))


def _items(value: Any) -> tuple[Any, ...]:
    """A tuple from a list/tuple, a comma-separated string (from a command line) or one value."""
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return tuple(value) if isinstance(value, list | tuple) else (value,)


def _tasks(
    seed: int,
    settings: Settings,
    regression: str,
    classification: str,
    table: str | Path | None,
    target: str | None,
    features: Sequence[str] | None,
) -> dict[str, Dataset]:
    """``{"regression": Dataset, "classification": Dataset}``."""
    if table is not None:
        if not target:
            raise ConfigError("inhomogeneity: a table needs target=COLUMN")
        regression_data = load_table(
            table, target=target, features=list(_items(features)) if features else None, seed=seed
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


def _config(task: Dataset, settings: Settings, seed: int, retrain: bool = False) -> TrainConfig:
    return TrainConfig(
        task=task.task,
        epochs=settings.retrain_epochs if retrain else settings.epochs,
        lr=settings.retrain_lr if retrain else settings.lr,
        batch_size=settings.batch_size,
        patience=settings.patience,
        seed=seed,
    )


def _train_all(
    tasks: dict[str, Dataset], families: dict[str, Family], settings: Settings, seed: int
) -> list[Trained]:
    """Every (task, family, depth, width) network, trained on the nominal curve, noise off."""
    trained = []
    grid = [(depth, width) for depth in settings.depths for width in settings.widths]
    for task_name, task in tasks.items():
        for number, (family_name, family) in enumerate(families.items()):
            # circuit noise built in at scale 0 (off): the circuit-noise study turns it up
            activation = CircuitSpec(family, mode="nominal")
            full = settings.grid_families is None or number < settings.grid_families
            for depth, width in grid if full else [settings.reference]:
                trained.append(
                    _train_one(
                        task_name, task, family_name, activation, depth, width, settings, seed
                    )
                )
    return trained


def _train_one(
    task_name: str,
    task: Dataset,
    family_name: str,
    activation: CircuitSpec,
    depth: int,
    width: int,
    settings: Settings,
    seed: int,
) -> Trained:
    started = time.perf_counter()
    spec = mlp_spec(
        task.inputs,
        (width,) * depth,
        task.outputs,
        activation=activation,
        noise=NoiseSpec("circuit", 0.0),
    )
    model = build_mlp(spec, seed=seed)
    history = train(
        model, task.train, config=_config(task, settings, seed), validation=task.validation
    )
    seconds = time.perf_counter() - started
    return Trained(task_name, family_name, depth, width, model, len(history.epochs), seconds)


def error_of(task: Dataset, metric_mean: float) -> float:
    """The error of a main-metric value: 1 − accuracy, or the RMSE itself (standardized)."""
    return 1.0 - metric_mean if task.task == "classification" else metric_mean


def chance_error(task: Dataset) -> float:
    """The error of an uninformed predictor on the test split: 1 − 1/classes, or the RMS of the
    test targets about their mean (standardized units)."""
    if task.task == "classification":
        return 1.0 - 1.0 / task.outputs
    y = np.asarray(task.test[1], dtype=np.float64)
    return float(np.sqrt(np.mean((y - y.mean()) ** 2)))


def crossing(levels: np.ndarray, damage: np.ndarray, fraction: float) -> float:
    """The level where the normalized error increase ``damage`` first reaches ``fraction``,
    interpolated linearly in log(level) (linearly from level 0); NaN if never reached."""
    above = np.flatnonzero(damage >= fraction)
    above = above[above > 0]
    if not len(above):
        return float("nan")
    i = int(above[0])
    low, high = levels[i - 1], levels[i]
    weight = (fraction - damage[i - 1]) / (damage[i] - damage[i - 1])
    if low <= 0:
        return float(low + weight * (high - low))
    return float(np.exp(np.log(low) + weight * (np.log(high) - np.log(low))))


def _noise_study(
    trained: list[Trained], tasks: dict[str, Dataset], settings: Settings, seed: int
) -> tuple[list[Row], list[Row]]:
    """Error versus additive noise level per network, and one tolerance row per network."""
    curves: list[Row] = []
    tolerance: list[Row] = []
    levels = np.array(settings.levels)
    for item in trained:
        task = tasks[item.task]
        curve = robustness_curve(
            item.model,
            task.test,
            levels,
            noise="additive",
            task=task.task,
            draws=settings.draws,
            seed=seed,
            own_noise=False,
        )
        errors = np.array([error_of(task, value) for value in curve.mean])
        clean, chance = errors[0], chance_error(task)
        damage = (errors - clean) / (chance - clean)
        base = {"task": item.task, "family": item.family, "depth": item.depth, "width": item.width}
        for level, value, error, std, sem in zip(
            levels, curve.mean, errors, curve.std, curve.sem, strict=True
        ):
            curves.append(
                {
                    **base,
                    "sigma": float(level),
                    "metric": curve.metric,
                    "value": float(value),
                    "error": float(error),
                    "std": float(std),
                    "sem": float(sem),
                    **_units(task, curve.metric, float(value)),
                }
            )
        tolerance.append(
            {
                **base,
                "clean_error": float(clean),
                "chance_error": float(chance),
                "sigma10": crossing(levels, damage, 0.1),
                "sigma50": crossing(levels, damage, 0.5),
                "damage_index": float(np.minimum(damage[1:], 1.0).mean()),
                "epochs": item.epochs,
                "train_seconds": item.seconds,
            }
        )
    return curves, tolerance


def _units(task: Dataset, metric: str, value: float) -> dict[str, float]:
    """A regression RMSE in the target's own units too."""
    if task.task == "regression" and metric == "rmse":
        return {"rmse_target_units": task.scaler.target_error(value)}
    return {}


def _circuit_noise_study(
    references: dict[tuple[str, str], Trained],
    tasks: dict[str, Dataset],
    spreads: dict[str, dict[str, Any]],
    settings: Settings,
    seed: int,
) -> list[Row]:
    """The reference networks with the circuits' own output noise at multiples of σ_out."""
    rows: list[Row] = []
    for (task_name, family_name), item in references.items():
        task = tasks[task_name]
        noises = [m for m in item.model.modules() if isinstance(m, CircuitNoise)]
        sigma_units = spreads[family_name]["sigma_out_units"]
        for scale in (0.0, *settings.circuit_scales):
            for module in noises:
                module.scale = scale
            try:
                result = monte_carlo(
                    item.model, task.test, task=task.task, draws=settings.draws, seed=seed
                )
            finally:
                for module in noises:
                    module.scale = 0.0
            value = result.mean()
            rows.append(
                {
                    "task": task_name,
                    "family": family_name,
                    "scale": scale,
                    "sigma_out_units": scale * sigma_units,
                    "metric": main_metric(task),
                    "value": value,
                    "error": error_of(task, value),
                    "std": result.std(),
                    **_units(task, main_metric(task), value),
                }
            )
    return rows


def main_metric(task: Dataset) -> str:
    """The main metric of a data set's task."""
    return "accuracy" if task.task == "classification" else "rmse"


def _error(model: nn.Module, task: Dataset, seed: int) -> float:
    """The model's test error as it stands (its chip and mode; one draw: its noise is off)."""
    return error_of(task, monte_carlo(model, task.test, task=task.task, draws=1, seed=seed).mean())


def _chip_study(
    references: dict[tuple[str, str], Trained],
    tasks: dict[str, Dataset],
    settings: Settings,
    seed: int,
) -> tuple[list[Row], list[Row]]:
    """Per chip: the nominal-trained network on the chip (damaged) and after retraining on it
    (repaired); per (task, family): mean ± spread over chips, and the control: the nominal network
    trained on (homogeneous) for the same extra epochs, so a repair is not mistaken for the
    benefit of more training."""
    chips: list[Row] = []
    summary: list[Row] = []
    for (task_name, family_name), item in references.items():
        task = tasks[task_name]
        base = {"task": task_name, "family": family_name, "metric": main_metric(task)}
        nominal = _error(item.model, task, seed)
        control = copy.deepcopy(item.model)
        train(
            control,
            task.train,
            config=_config(task, settings, derive_seed(seed, "retrain", "control"), retrain=True),
            validation=task.validation,
        )
        continued = _error(control, task, seed)
        damaged, repaired = [], []
        for chip in range(settings.chips):
            model = copy.deepcopy(item.model)
            resample_chips(model, derive_seed(seed, "chip", chip))
            set_mode(model, "sampled")
            damaged.append(_error(model, task, seed))
            history = train(
                model,
                task.train,
                regime=ChipRetrain(),
                config=_config(task, settings, derive_seed(seed, "retrain", chip), retrain=True),
                validation=task.validation,
            )
            repaired.append(_error(model, task, seed))
            chips.append(
                {
                    **base,
                    "chip": chip,
                    "nominal_error": nominal,
                    "damaged_error": damaged[-1],
                    "repaired_error": repaired[-1],
                    "retrain_epochs": len(history.epochs),
                }
            )
        summary.append(_chip_summary(base, task, nominal, continued, damaged, repaired))
    return chips, summary


def _chip_summary(
    base: Row,
    task: Dataset,
    nominal: float,
    continued: float,
    damaged: list[float],
    repaired: list[float],
) -> Row:
    """Mean, std (over chips) and max of the damaged and repaired errors; the damage (mean
    damaged − nominal), also as a fraction of the gap from nominal to chance; the fraction of the
    damage recovered, measured against the better of the nominal network and its continued-
    training control; a paired t statistic of damaged − repaired over chips."""
    d, r = np.array(damaged), np.array(repaired)
    damage = float(d.mean() - nominal)
    baseline = min(nominal, continued)
    difference = d - r
    deviation = float(difference.std(ddof=1)) if len(d) > 1 else 0.0
    return {
        **base,
        "chips": len(d),
        "nominal_error": nominal,
        "continued_nominal_error": continued,
        "damaged_error_mean": float(d.mean()),
        "damaged_error_std": float(d.std(ddof=1)) if len(d) > 1 else 0.0,
        "damaged_error_max": float(d.max()),
        "repaired_error_mean": float(r.mean()),
        "repaired_error_std": float(r.std(ddof=1)) if len(r) > 1 else 0.0,
        "repaired_error_max": float(r.max()),
        "damage": damage,
        "damage_normalized": damage / (chance_error(task) - nominal),
        "chips_damaged": int(np.sum(d > nominal)),
        "chips_improved": int(np.sum(r < d)),
        "recovered_fraction": float((d.mean() - r.mean()) / (d.mean() - baseline))
        if d.mean() > baseline
        else float("nan"),
        "paired_t": float(difference.mean() / (deviation / np.sqrt(len(d))))
        if deviation > 0
        else float("nan"),
    }


__all__ = ["FULL", "NEURONS", "QUICK", "Settings", "run"]
