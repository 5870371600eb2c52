"""The main job's stages (imports torch): each returns an :class:`ExperimentResult` section.

Every stage takes the :class:`~circuitnn.main_job.MainJobConfig`, the output folder and what the
earlier stages produced, writes its figures into ``OUT/<section>/`` and adds a short note to its
console line through ``note``. Scores are the dataset's main metric on the test split (accuracy,
a fraction, for classification; RMSE in standardized target units for regression), the mean over
noise draws; noise levels are in network units (additive σ), relative (multiplicative σ) or
multiples of the simulated σ_out(x) (circuit noise).
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from circuitnn.data import Dataset
from circuitnn.errors import ConfigError
from circuitnn.experiments.families import FAMILY_NOISE
from circuitnn.experiments.result import ExperimentResult, Finding
from circuitnn.family import Family
from circuitnn.main_job import MainJobConfig
from circuitnn.nn import (
    CircuitNoise,
    CircuitSpec,
    NoiseSpec,
    activation_layers,
    build_mlp,
    mlp_spec,
    resample_chips,
    set_mode,
)
from circuitnn.nn.random import derive_seed
from circuitnn.train import ChipRetrain, Clean, History, NoiseInjection, TrainConfig, train

Note = Callable[[str], None]
Data = tuple[np.ndarray, np.ndarray]
MODEL_LABELS = {"clean": "clean", "noise_aware": "noise-aware"}


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` torch threads (the previous number restored after)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# 1. families ---------------------------------------------------------------------------------


@dataclass
class FamiliesOutcome:
    """The extracted families by configured name, whether each was already in the store, and
    the section."""

    families: dict[str, Family]
    cached: dict[str, bool]
    result: ExperimentResult


def families_stage(config: MainJobConfig, out: Path, options: Any, note: Note) -> FamiliesOutcome:
    """Extract (or load from the store) every configured family with the experiments' noise
    analysis (:data:`~circuitnn.experiments.families.FAMILY_NOISE`, so the experiments reuse
    these families), and plot its curves and noise."""
    from circuitnn.pipeline import extract_family
    from circuitnn.plots import plot_family, plot_noise
    from circuitnn.store import Store

    store = config.store_path(out)
    store.parent.mkdir(parents=True, exist_ok=True)
    before = set(Store(store).keys())
    folder = out / "families"
    result = ExperimentResult(
        "Families",
        folder,
        {"n": config.n, "seed": config.seed, "store": str(store), "noise": vars(FAMILY_NOISE)},
    )
    families: dict[str, Family] = {}
    cached: dict[str, bool] = {}
    rows = []
    for neuron in config.families:
        started = time.perf_counter()
        family = extract_family(
            neuron, config.n, config.seed, store=store, options=options, noise=FAMILY_NOISE
        )
        seconds = time.perf_counter() - started
        families[neuron], cached[neuron] = family, family.key in before
        rows.append(_family_row(family, cached[neuron], seconds))
        result.figures[f"{family.neuron}: curves"] = _cached_picture(
            plot_family, family, folder / f"{family.neuron}-{family.key[:12]}.png"
        )
        noise_key = family.noise.key[:8] if family.noise is not None else "none"
        result.figures[f"{family.neuron}: noise"] = _cached_picture(
            plot_noise, family, folder / f"{family.neuron}-{family.key[:12]}-noise-{noise_key}.png"
        )
    result.tables["families"] = rows
    first = families[config.families[0]]
    result.summary = [
        f"{len(families)} families of {config.n} Monte Carlo instances (seed {config.seed}), "
        f"each with output noise at {FAMILY_NOISE.bias_points} bias points integrated over "
        f"{FAMILY_NOISE.bandwidth:g} Hz, stored in `{store}`.",
        f"The network below uses `{first.neuron}` (family {first.key[:12]}).",
    ]
    note(
        ", ".join(
            f"{family.neuron} {family.n} ({len(family.failed)} failed, "
            f"{'cached' if cached[name] else 'simulated'})"
            for name, family in families.items()
        )
        + f" → {store}"
    )
    return FamiliesOutcome(families, cached, result)


def _cached_picture(plot: Callable[[Family, Path], Path], family: Family, path: Path) -> Path:
    """``path`` if it exists (its name holds the family's content keys, so it shows the same
    data), else ``plot(family, path)`` written under a temporary name and renamed (so a killed
    run leaves no half-written picture to reuse): a second run redraws nothing."""
    if not path.is_file():
        plot(family, path.with_name(f".{path.name}")).replace(path)
    return path


def _family_row(family: Family, cached: bool, seconds: float) -> dict[str, Any]:
    summary = family.summary()
    row: dict[str, Any] = {
        "family": family.neuron,
        "key": family.key[:12],
        "n": family.n,
        "failed": len(family.failed),
        "unit": family.output_unit,
    }
    for name in ("swing", "midpoint", "gain", "mean_power"):
        row[f"{name} mean"] = summary[name]["mean"]
        row[f"{name} σ"] = summary[name]["std"]
    noise = family.noise
    if noise is not None:
        ok = noise.status == 1
        middle = summary["midpoint"]["mean"]
        column = int(np.argmin(np.abs(noise.bias - middle))) if math.isfinite(middle) else 0
        row["σ_out at midpoint"] = float(np.mean(noise.sigma[ok, column])) if ok.any() else math.nan
    row["source"] = "store (cached)" if cached else "ngspice"
    row["seconds"] = seconds
    return row


# 2. training ---------------------------------------------------------------------------------


@dataclass
class Trained:
    """The trained networks by name (``clean``, optionally ``noise_aware``) with their labels and
    histories, the dataset, its task and main ``metric`` (accuracy or RMSE), each network's test
    ``score`` on the nominal curves, and the section."""

    family: Family
    models: dict[str, nn.Module]
    labels: dict[str, str]
    histories: dict[str, History]
    dataset: Dataset
    score: dict[str, float]
    result: ExperimentResult

    @property
    def task(self) -> str:
        """``"classification"`` or ``"regression"``."""
        return self.dataset.task

    @property
    def metric(self) -> str:
        """The main metric: ``"accuracy"`` (higher is better) or ``"rmse"`` (lower is better)."""
        return "accuracy" if self.task == "classification" else "rmse"

    @property
    def higher_is_better(self) -> bool:
        """Whether a larger metric is better."""
        return self.metric == "accuracy"

    @property
    def chance(self) -> float | None:
        """Chance accuracy (1/classes) for classification, None for regression."""
        return 1.0 / self.dataset.outputs if self.task == "classification" else None

    @property
    def test(self) -> Data:
        """The test split ``(x, y)``."""
        return self.dataset.test


def load_dataset(config: MainJobConfig) -> Dataset:
    """The configured built-in dataset (:mod:`circuitnn.data`), split by the config's seed and
    fractions."""
    from circuitnn.data import builtin

    return builtin(
        config.dataset,
        seed=config.seed,
        validation=config.validation_fraction,
        test=config.test_fraction,
    )


def network_spec(config: MainJobConfig, family: Family, dataset: Dataset) -> Any:
    """The analog MLP: circuit neurons of ``family`` on its nominal curve in every hidden layer,
    each neuron with its simulated output noise σ_out(x) (CircuitNoise at scale 1)."""
    return mlp_spec(
        dataset.inputs,
        config.widths,
        dataset.outputs,
        activation=CircuitSpec(family, mode="nominal", scaling=config.scaling),
        noise=NoiseSpec("circuit"),
    )


def score_of(model: nn.Module, data: Data, config: MainJobConfig, task: str) -> float:
    """The main metric on ``data`` (mean over ``config.draws`` noise draws, own noise on)."""
    from circuitnn.evaluate import monte_carlo

    result = monte_carlo(model, data, task=task, draws=config.draws, seed=config.seed)
    return result.mean("accuracy" if task == "classification" else "rmse")


def training_stage(
    config: MainJobConfig, out: Path, families: FamiliesOutcome, note: Note
) -> Trained:
    """Train the clean network on the nominal curves, and the noise-aware one when
    ``noise_training`` > 0 (additive noise injected after every activation layer)."""
    from circuitnn.main_plots import plot_training

    family = families.families[config.families[0]]
    dataset = load_dataset(config)
    spec = network_spec(config, family, dataset)
    regimes: dict[str, Any] = {"clean": Clean()}
    labels = {"clean": "clean"}
    if config.noise_training > 0:
        regimes["noise_aware"] = NoiseInjection(noise=NoiseSpec("additive", config.noise_training))
        labels["noise_aware"] = f"noise-aware (additive σ = {config.noise_training:g})"
    settings = TrainConfig(
        task=dataset.task,
        epochs=config.epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        seed=config.seed,
    )
    folder = out / "training"
    metric = "accuracy" if dataset.task == "classification" else "rmse"
    models, histories, score, rows = {}, {}, {}, []
    for name, regime in regimes.items():
        started = time.perf_counter()
        model = build_mlp(spec, seed=config.seed)
        history = train(
            model, dataset.train, regime=regime, config=settings, validation=dataset.validation
        )
        seconds = time.perf_counter() - started
        models[name], histories[name] = model, history
        score[name] = score_of(model, dataset.test, config, dataset.task)
        history.save(folder / f"history-{name}.json")
        best = history.best or history.last
        rows.append(
            {
                "network": labels[name],
                "regime": regime.name,
                "epochs": len(history.epochs),
                "best epoch": history.best_epoch,
                f"train {metric}": best.get(f"train_{metric}", math.nan),
                f"validation {metric}": best.get(f"val_{metric}", math.nan),
                f"test {metric}": score[name],
                "seconds": seconds,
            }
        )
    sizes = " → ".join(str(v) for v in (spec.inputs, *config.widths, spec.outputs))
    sizes_text = ", ".join(f"{count} {split}" for split, count in dataset.sizes.items())
    kind = f"{dataset.outputs} classes" if dataset.task == "classification" else "regression"
    result = ExperimentResult(
        "Training",
        folder,
        {"dataset": dataset.describe(), "widths": list(config.widths), **vars(settings)},
        tables={"networks": rows},
        figures={
            "training history": plot_training(histories, labels, metric, folder / "history.png")
        },
        summary=[
            f"Dataset `{config.dataset}` ({dataset.source}, {kind}): {sizes_text} samples.",
            f"Network {sizes}: every hidden neuron is a `{family.neuron}` circuit on the family's "
            "nominal curve, with its simulated output noise σ_out(x); readout linear. Adam, "
            f"lr {config.lr:g}, batch {config.batch_size}, {config.epochs} epochs, the best "
            f"validation epoch kept. Test {metric}: mean over {config.draws} noise draws on the "
            "nominal curves.",
        ],
    )
    note(
        ", ".join(f"{MODEL_LABELS[name]} {score[name]:.3f}" for name in models) + f" test {metric}"
    )
    return Trained(family, models, labels, histories, dataset, score, result)


# 3. robustness curve -------------------------------------------------------------------------


@contextlib.contextmanager
def circuit_noise_scale(model: nn.Module, scale: float) -> Iterator[None]:
    """Within the block every CircuitNoise of ``model`` has ``scale`` (× simulated σ_out)."""
    modules = [module for module in model.modules() if isinstance(module, CircuitNoise)]
    saved = [module.scale for module in modules]
    for module in modules:
        module.scale = scale
    try:
        yield
    finally:
        for module, value in zip(modules, saved, strict=True):
            module.scale = value


def robustness_stage(config: MainJobConfig, out: Path, trained: Trained, note: Note) -> Any:
    """The metric versus additive noise after every activation layer and versus circuit noise
    (every neuron's σ_out(x) scaled), for each trained network on the nominal curves."""
    from circuitnn.evaluate import monte_carlo, robustness_curve
    from circuitnn.main_plots import plot_robustness

    options = {"draws": config.draws, "seed": config.seed, "task": trained.task}
    metric = trained.metric
    additive_levels = [0.0, *config.noise_levels]
    scales = [0.0, *config.circuit_noise_scales]
    additive: list[dict[str, Any]] = [{"additive σ": level} for level in additive_levels]
    circuit: list[dict[str, Any]] = [{"× σ_out": scale} for scale in scales]
    for name, model in trained.models.items():
        curve = robustness_curve(model, trained.test, additive_levels, noise="additive", **options)
        for row, mean, std in zip(additive, curve.mean, curve.std, strict=True):
            row[f"{name} {metric}"], row[f"{name} σ"] = float(mean), float(std)
        for row, scale in zip(circuit, scales, strict=True):
            with circuit_noise_scale(model, scale):
                result = monte_carlo(model, trained.test, **options)
            row[f"{name} {metric}"], row[f"{name} σ"] = result.mean(metric), result.std(metric)
    folder = out / "robustness"
    figure = plot_robustness(
        additive, circuit, trained.labels, metric, folder / "robustness.png", trained.chance
    )
    result = ExperimentResult(
        "Robustness curve",
        folder,
        {"noise_levels": additive_levels, "circuit_noise_scales": scales, **options},
        tables={"additive_noise": additive, "circuit_noise": circuit},
        figures={f"{metric} versus noise level": figure},
        summary=[
            f"Test {metric} (mean and σ over {config.draws} draws) on the nominal curves. "
            "Additive noise: Gaussian σ in network units after every hidden activation (the "
            "circuit's own noise stays on). Circuit noise: every neuron's simulated output "
            "noise σ_out(x) multiplied by the scale (0: noiseless, 1: as simulated).",
        ],
    )
    note(
        "additive σ="
        + ",".join(f"{v:g}" for v in additive_levels[1:])
        + f"; circuit ×{scales[1]:g}…×{scales[-1]:g}; clean net at the largest additive σ: "
        + f"{additive[-1][f'clean {metric}']:.3f}"
    )
    return result


# 4. layer-wise midpoints ---------------------------------------------------------------------


def midpoints_stage(config: MainJobConfig, out: Path, trained: Trained, note: Note) -> Any:
    """Walking Noise: each configured noise in one hidden layer at a time; the midpoint is the
    level where the metric is halfway from clean to chance (accuracy: 1/classes; RMSE: the
    targets' spread)."""
    from circuitnn.evaluate import layer_sweep
    from circuitnn.main_plots import plot_midpoints

    options = {
        "draws": config.draws,
        "seed": config.seed,
        "tolerance": config.midpoint_tolerance,
        "task": trained.task,
    }
    rows = []
    for noise in config.midpoint_noises:
        for layer in activation_layers(trained.models["clean"]):
            row: dict[str, Any] = {"noise": noise, "layer": layer}
            for name, model in trained.models.items():
                try:
                    found = layer_sweep(
                        model, trained.test, noise=noise, layers=(layer,), **options
                    )
                    level, error = found[layer].level, found[layer].uncertainty
                except ConfigError as problem:  # e.g. never falls halfway within the range
                    level, error = math.nan, math.nan
                    row[f"{name} note"] = str(problem)
                row[f"{name} midpoint"], row[f"{name} ±"] = level, error
            rows.append(row)
    folder = out / "midpoints"
    figure = plot_midpoints(rows, trained.labels, folder / "midpoints.png")
    result = ExperimentResult(
        "Layer-wise midpoints",
        folder,
        {"noises": list(config.midpoint_noises), **options},
        tables={"midpoints": rows},
        figures={"layer-wise midpoints": figure},
        summary=[
            "Walking Noise: the noise is put after one hidden layer at a time; the midpoint is "
            "the noise level (additive: σ in network units; multiplicative / mixed: relative σ) "
            f"at which the test {trained.metric} has gone halfway from its clean value to "
            "chance, found by bisection on a log axis (± combines the final bracket and the "
            "statistical error). Larger is more robust.",
        ],
    )
    note(
        "; ".join(
            f"{row['noise']} {row['layer']} {row['clean midpoint']:.3g}"
            + (f" vs {row['noise_aware midpoint']:.3g}" if "noise_aware midpoint" in row else "")
            for row in rows
        )
    )
    return result


# 5. chip spread ------------------------------------------------------------------------------


def chips_stage(config: MainJobConfig, out: Path, trained: Trained, note: Note) -> Any:
    """Chip-to-chip spread: each network on ``chips`` Monte Carlo chips, every neuron on its own
    sampled curve (the weights unchanged), against its score on the nominal curves."""
    from circuitnn.evaluate import monte_carlo
    from circuitnn.main_plots import plot_chips

    metric = trained.metric
    per_chip: list[dict[str, Any]] = [{"chip": chip} for chip in range(config.chips)]
    summary = []
    for name, model in trained.models.items():
        set_mode(model, "sampled")
        try:
            result = monte_carlo(
                model,
                trained.test,
                task=trained.task,
                chips=config.chips,
                draws=config.draws,
                seed=config.seed,
            )
        finally:
            set_mode(model, "nominal")
        values = result.metrics[metric].mean(axis=1)
        for row, value in zip(per_chip, values, strict=True):
            row[f"{name} {metric}"] = float(value)
        summary.append(
            {
                "network": trained.labels[name],
                "nominal curves": trained.score[name],
                "chips mean": float(values.mean()),
                "between-chip σ": float(values.std(ddof=1)),
                "min": float(values.min()),
                "max": float(values.max()),
                "change vs nominal": float(values.mean()) - trained.score[name],
            }
        )
    folder = out / "chips"
    figure = plot_chips(per_chip, trained.score, trained.labels, metric, folder / "chips.png")
    section = ExperimentResult(
        "Chip spread",
        folder,
        {"chips": config.chips, "draws": config.draws, "seed": config.seed},
        tables={"summary": summary, "per_chip": per_chip},
        figures={f"{metric} per chip": figure},
        summary=[
            f"{config.chips} chips: chip c draws every hidden neuron's curve from the family "
            f"(seed derived from {config.seed} and c), the trained weights unchanged; the test "
            f"{metric} is the mean over {config.draws} noise draws per chip.",
        ],
    )
    clean = summary[0]
    note(
        f"{config.chips} chips: clean net {clean['chips mean']:.3f} ± "
        f"{clean['between-chip σ']:.3f} (nominal {clean['nominal curves']:.3f})"
    )
    return section


# 6. retraining recovery ----------------------------------------------------------------------


def _on_chip(model: nn.Module, chip: int, seed: int) -> nn.Module:
    """A copy of ``model`` on chip ``chip`` of the chip spread, every neuron on its own curve."""
    model = copy.deepcopy(model)
    resample_chips(model, derive_seed(seed, "chip", chip))
    set_mode(model, "sampled")
    return model


def retraining_stage(config: MainJobConfig, out: Path, trained: Trained, note: Note) -> Any:
    """Retrain the clean network on each of the first ``retrain_chips`` chips of the chip spread
    with its realized curves (ChipRetrain) and compare the chip's score before and after.

    The control is the same fine-tuning (epochs, lr, seed) on the nominal curves, evaluated on
    the same chip: what extra training alone would have done.
    """
    from circuitnn.main_plots import plot_retraining

    settings = TrainConfig(
        task=trained.task,
        epochs=config.retrain_epochs,
        batch_size=config.batch_size,
        lr=config.retrain_lr,
        seed=config.seed,
    )
    data = trained.dataset
    clean = trained.models["clean"]
    control = copy.deepcopy(clean)
    train(control, data.train, regime=Clean(), config=settings, validation=data.validation)
    rows = []
    for chip in range(config.retrain_chips):
        started = time.perf_counter()
        model = _on_chip(clean, chip, config.seed)
        before = score_of(model, data.test, config, trained.task)
        history = train(
            model, data.train, regime=ChipRetrain(), config=settings, validation=data.validation
        )
        after = score_of(model, data.test, config, trained.task)
        on_chip = _on_chip(control, chip, config.seed)
        rows.append(
            {
                "chip": chip,
                "before": before,
                "after": after,
                "change": after - before,
                "control": score_of(on_chip, data.test, config, trained.task),
                "best epoch": history.best_epoch,
                "seconds": time.perf_counter() - started,
            }
        )
    mean_row: dict[str, Any] = {"chip": "mean"}
    for column in ("before", "after", "change", "control"):
        mean_row[column] = float(np.mean([row[column] for row in rows]))
    folder = out / "retraining"
    figure = plot_retraining(
        rows, trained.score["clean"], trained.metric, folder / "retraining.png"
    )
    section = ExperimentResult(
        "Retraining recovery",
        folder,
        {"chips": config.retrain_chips, **vars(settings)},
        tables={"per_chip": [*rows, mean_row]},
        figures={"before and after retraining": figure},
        summary=[
            "The clean network, trained on the nominal curves, is fine-tuned on chips 0–"
            f"{config.retrain_chips - 1} of the chip spread with every neuron's realized curve "
            f"(ChipRetrain, {config.retrain_epochs} epochs, lr {config.retrain_lr:g}); test "
            f"{trained.metric} on that chip before and after. Control: the same fine-tuning on "
            "the nominal curves, evaluated on the chip (extra training alone). Nominal curves: "
            f"{trained.score['clean']:.4f}.",
        ],
    )
    note(
        f"{config.retrain_chips} chips: {mean_row['before']:.3f} → {mean_row['after']:.3f} "
        f"(control {mean_row['control']:.3f})"
    )
    return section


# findings ------------------------------------------------------------------------------------


def findings(
    trained: Trained, chips: ExperimentResult, retraining: ExperimentResult, midpoints: Any
) -> list[Finding]:
    """The source studies' findings this run can check, decided by its own numbers; each is also
    added to its section."""
    sign = 1.0 if trained.higher_is_better else -1.0  # sign · change > 0 means better
    metric = trained.metric
    found = []
    clean = chips.tables["summary"][0]
    spread = chips.tables["per_chip"]
    error = clean["between-chip σ"] / math.sqrt(len(spread))
    change = clean["change vs nominal"]
    inhomogeneity = Finding(
        f"per-neuron activation inhomogeneity costs {metric} (study 1)",
        sign * change < -error,
        f"clean network: nominal curves {clean['nominal curves']:.4f}, on {len(spread)} chips "
        f"{clean['chips mean']:.4f} ± {error:.4f} (standard error; change {change:+.4f})",
    )
    chips.findings.append(inhomogeneity)
    found.append(inhomogeneity)
    mean = retraining.tables["per_chip"][-1]
    rows = retraining.tables["per_chip"][:-1]
    improved = sum(sign * row["change"] > 0 for row in rows)
    recovery = Finding(
        "retraining with the realized activation shapes repairs the chip's damage (study 1)",
        sign * (mean["after"] - mean["before"]) > 0
        and sign * (mean["after"] - mean["control"]) > 0,
        f"mean {metric} over {len(rows)} chips {mean['before']:.4f} → {mean['after']:.4f} "
        f"({mean['change']:+.4f}; better on {improved} of {len(rows)}); the same fine-tuning "
        f"on the nominal curves gives {mean['control']:.4f} on the chips",
    )
    retraining.findings.append(recovery)
    found.append(recovery)
    additive = [row for row in midpoints.tables["midpoints"] if row["noise"] == "additive"]
    if "noise_aware" in trained.models and additive:
        pairs = [(row["clean midpoint"], row["noise_aware midpoint"]) for row in additive]
        finite = all(math.isfinite(a) and math.isfinite(b) for a, b in pairs)
        noisy = Finding(
            "noisy training raises the layer-wise noise midpoints (study 3)",
            finite and all(b > a for a, b in pairs),
            "additive midpoints clean → noise-aware: "
            + ", ".join(
                f"{row['layer']} {a:.3g} → {b:.3g}"
                for row, (a, b) in zip(additive, pairs, strict=True)
            ),
        )
        midpoints.findings.append(noisy)
        found.append(noisy)
    return found


def headline(
    config: MainJobConfig,
    trained: Trained,
    chips: ExperimentResult,
    retraining: ExperimentResult,
) -> list[str]:
    """The report's opening lines: what ran and the main numbers."""
    clean = chips.tables["summary"][0]
    mean = retraining.tables["per_chip"][-1]
    names = ", ".join(f"`{name}`" for name in config.families)
    sizes = "-".join(str(w) for w in config.widths)
    return [
        f"Families {names} ({config.n} Monte Carlo instances each, with noise); an analog MLP "
        f"(hidden {sizes}) of `{trained.family.neuron}` neurons trained on `{config.dataset}` "
        f"reaches test {trained.metric} {trained.score['clean']:.4f} on the nominal curves, "
        f"{clean['chips mean']:.4f} ± {clean['between-chip σ']:.4f} over {config.chips} "
        f"chips, and {mean['before']:.4f} → {mean['after']:.4f} when retrained on "
        f"{config.retrain_chips} chips.",
        f"Every number below comes from this run (seed {config.seed}); settings, versions, "
        "seeds and timings are in the last section.",
    ]
