"""The main job's first stages (imports torch): the families, and the networks trained on them."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from circuitnn.data import Dataset
from circuitnn.experiments.families import FAMILY_NOISE
from circuitnn.experiments.result import ExperimentResult
from circuitnn.family import Family
from circuitnn.job.config import MainJobConfig
from circuitnn.nn import (
    CircuitSpec,
    NoiseSpec,
    build_mlp,
    mlp_spec,
)
from circuitnn.train import Clean, History, NoiseInjection, TrainConfig, train

Note = Callable[[str], None]


Data = tuple[np.ndarray, np.ndarray]


MODEL_LABELS = {"clean": "clean", "noise_aware": "noise-aware"}


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
    from circuitnn.extract.pipeline import extract_family
    from circuitnn.extract.plots import plot_family, plot_noise
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
    traced: dict[str, list[dict[str, Any]]] = {}
    rows = []
    for neuron in config.families:
        started = time.perf_counter()
        family = extract_family(
            neuron, config.n, config.seed, store=store, options=options, noise=FAMILY_NOISE
        )
        seconds = time.perf_counter() - started
        families[neuron], cached[neuron] = family, family.key in before
        rows.append(_family_row(family, cached[neuron], seconds))
        traced[neuron] = family.device_trace("midpoint")
        if traced[neuron]:
            result.tables[f"{family.neuron}: devices"] = traced[neuron]
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
        *filter(None, (_strongest_device(name, traced[name]) for name in families)),
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


def _strongest_device(neuron: str, traced: list[dict[str, Any]]) -> str:
    """One line naming the realized device parameter of ``traced`` (its midpoint trace) that
    goes most with the midpoint ("" if none could be computed)."""
    rows = [row for row in traced if row["ci low"] is not None]
    if not rows:
        return ""
    top = rows[0]
    return (
        f"In `{neuron}` the midpoint goes most with `{top['device parameter']}` "
        f"(r = {top['r with midpoint']:.2f}, 95 % CI {top['ci low']:.2f} to "
        f"{top['ci high']:.2f}, {top['n']} instances; table `{neuron}: devices`)."
    )


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
    config: MainJobConfig,
    out: Path,
    families: FamiliesOutcome,
    note: Note,
    progress: bool = False,
) -> Trained:
    """Train the clean network on the nominal curves, and the noise-aware one when
    ``noise_training`` > 0 (additive noise injected after every activation layer); ``progress``
    shows a bar over the epochs."""
    from circuitnn.job.plots import plot_training

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
        progress=progress,
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
