"""The main job's stages (imports torch): each returns an :class:`ExperimentResult` section.

Every stage takes the :class:`~circuitnn.job.config.MainJobConfig`, the output folder and what the
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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from circuitnn.errors import ConfigError
from circuitnn.experiments.result import ExperimentResult, Finding
from circuitnn.job.config import MainJobConfig
from circuitnn.job.stages_train import Note, Trained, score_of
from circuitnn.nn import (
    CircuitNoise,
    activation_layers,
    resample_chips,
    set_mode,
)
from circuitnn.nn.random import derive_seed
from circuitnn.train import ChipRetrain, Clean, TrainConfig, train

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
    from circuitnn.job.plots import plot_robustness

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
    from circuitnn.job.plots import plot_midpoints

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
    from circuitnn.job.plots import plot_chips

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


def retraining_stage(
    config: MainJobConfig, out: Path, trained: Trained, note: Note, progress: bool = False
) -> Any:
    """Retrain the clean network on each of the first ``retrain_chips`` chips of the chip spread
    with its realized curves (ChipRetrain) and compare the chip's score before and after.

    The control is the same fine-tuning (epochs, lr, seed) on the nominal curves, evaluated on
    the same chip: what extra training alone would have done.
    """
    from circuitnn.job.plots import plot_retraining

    settings = TrainConfig(
        task=trained.task,
        epochs=config.retrain_epochs,
        batch_size=config.batch_size,
        lr=config.retrain_lr,
        seed=config.seed,
        progress=progress,
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
