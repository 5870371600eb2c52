"""The networks of the ``parameter-robustness`` experiment: the settings of a run and its
training regimes (:class:`Settings`), one regime's network trained at every strength of its grid
and the one chosen on the validation split, and its evaluation on the test split (random and
worst-case weight perturbation at every ζ, flatness of the training loss). Rows carry the
``replicate``, ``network`` and ``regime``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from circuitnn.data import Dataset
from circuitnn.evaluate import monte_carlo, worst_case
from circuitnn.experiments.common import circuit_mlp
from circuitnn.experiments.result import Row
from circuitnn.experiments.weight_stats import flatness
from circuitnn.family import Family
from circuitnn.nn import NoiseSpec, WeightNoiseSpec
from circuitnn.train import (
    AdversarialWeights,
    Clean,
    Dropout,
    NoiseInjection,
    Regime,
    TrainConfig,
    WeightSmoothing,
    train,
)

# the Settings field holding each regime's grid of strengths (clean has none)
GRID_FIELDS = {
    "dropout": "dropout",
    "noise_injection": "noise_sigma",
    "weight_smoothing": "smoothing_sigma",
    "adversarial": "awp_zeta",
}


@dataclass(frozen=True)
class Settings:
    """Sizes of one run. ``widths``: hidden widths; ``epochs`` of Adam at ``lr`` with
    ``batch_size`` (no early stopping); ``zetas``: relative perturbation bounds evaluated;
    ``random_draws``: perturbed networks per ζ; ``attack_steps``: steps of the worst-case attack;
    ``flatness_steps`` (relative, α = 1 moves each neuron's fan-in by its own norm) and
    ``directions``; the regimes' grids ``dropout`` (probability), ``noise_sigma`` (network
    units), ``smoothing_sigma`` (relative), ``awp_zeta`` (relative), with ``awp_beta`` and
    ``awp_steps`` fixed; ``select_zeta``: the bound at which a regime's setting is chosen on the
    validation split (with ``select_draws`` random draws); ``equivalence_margin``: how far apart
    (accuracy) two regimes' drops under random perturbation may be and still count as equally
    robust, fixed before any run."""

    widths: tuple[int, ...]
    epochs: int
    zetas: tuple[float, ...]
    random_draws: int
    directions: int
    attack_steps: int = 10
    flatness_steps: tuple[float, ...] = (0.25, 0.5, 1.0)
    dropout: tuple[float, ...] = (0.05, 0.1, 0.2)
    noise_sigma: tuple[float, ...] = (0.25, 0.5, 1.0)
    smoothing_sigma: tuple[float, ...] = (0.05, 0.1, 0.2)
    awp_zeta: tuple[float, ...] = (0.1, 0.2, 0.3)
    awp_beta: float = 0.3
    awp_steps: int = 3
    select_zeta: float = 0.2
    select_draws: int = 8
    equivalence_margin: float = 0.05
    lr: float = 3e-3
    batch_size: int = 64

    def regime(self, name: str, value: float | None = None) -> Regime:
        """The training regime called ``name`` at strength ``value`` (default: its grid's
        first)."""
        if name != "clean" and value is None:
            value = getattr(self, GRID_FIELDS[name])[0]
        if name == "clean":
            return Clean()
        if name == "dropout":
            return Dropout(value)
        if name == "noise_injection":
            return NoiseInjection(NoiseSpec("additive", value))
        if name == "weight_smoothing":
            return WeightSmoothing(value)
        return AdversarialWeights(zeta=value, beta=self.awp_beta, steps=self.awp_steps)

    def grid(self, name: str) -> tuple[float | None, ...]:
        """The strengths tried for regime ``name`` (``(None,)`` for clean)."""
        return (None,) if name == "clean" else getattr(self, GRID_FIELDS[name])


def _train(
    regime: str,
    value: float | None,
    families: list[Family],
    data: Dataset,
    settings: Settings,
    seed: int,
) -> tuple[nn.Module, float]:
    """A network (initial weights and chip from ``seed``) trained under ``regime`` at strength
    ``value``, and its training time: CPU seconds of this process (all its threads), which other
    processes on a shared machine do not inflate as they inflate wall time."""
    model = circuit_mlp(families, 64, settings.widths, 10, seed=seed)
    config = TrainConfig(
        epochs=settings.epochs,
        lr=settings.lr,
        batch_size=settings.batch_size,
        seed=seed,
        restore_best=False,
    )
    began = time.process_time()
    train(model, data.train, regime=settings.regime(regime, value), config=config)
    return model, time.process_time() - began


def _robust_score(model: nn.Module, split: Any, settings: Settings, seed: int) -> dict[str, float]:
    """Random and worst-case accuracy on ``split`` at ``select_zeta``, and their mean."""
    zeta = settings.select_zeta
    random = monte_carlo(
        model,
        split,
        draws=settings.select_draws,
        seed=seed,
        noise=WeightNoiseSpec("multiplicative", zeta),
    ).mean()
    attacked = worst_case(model, split, zeta, steps=settings.attack_steps, seed=seed)
    worst = attacked.attacked.mean()
    return {"random": random, "worst_case": worst, "score": 0.5 * (random + worst)}


def select_network(
    regime: str,
    families: list[Family],
    data: Dataset,
    settings: Settings,
    replicate: int,
    seed: int,
    tables: dict[str, list[Row]],
) -> tuple[nn.Module, Row]:
    """Train ``regime`` at every strength of its grid, keep the one with the best validation
    score; its training row (with the chosen value, its training time and the grid's)."""
    best: tuple[float, nn.Module, float | None, float] | None = None
    grid_seconds = 0.0
    grid = settings.grid(regime)
    for value in grid:
        model, seconds = _train(regime, value, families, data, settings, seed)
        grid_seconds += seconds
        score = _robust_score(model, data.validation, settings, seed) if len(grid) > 1 else {}
        tables["selection"].append(
            {
                "replicate": replicate,
                "regime": regime,
                "value": value,
                "seconds": seconds,
                **{f"validation_{key}": item for key, item in score.items()},
            }
        )
        if best is None or score.get("score", 0.0) > best[0]:
            best = (score.get("score", 0.0), model, value, seconds)
    assert best is not None
    _, model, value, seconds = best
    for row in tables["selection"]:
        if row["replicate"] == replicate and row["regime"] == regime:
            row["chosen"] = row["value"] == value
    return model, {
        "replicate": replicate,
        "network": seed,
        "regime": regime,
        "value": value,
        "test_accuracy": monte_carlo(model, data.test, draws=1, seed=seed).mean(),
        "seconds": seconds,
        "grid_seconds": grid_seconds,
        "grid_size": len(grid),
    }


def evaluate_network(
    model: nn.Module,
    regime: str,
    data: Dataset,
    settings: Settings,
    replicate: int,
    seed: int,
    tables: dict[str, list[Row]],
) -> None:
    """Random and worst-case perturbation at every ζ on the test split, and flatness on the
    training split; rows appended to ``tables``."""
    base = {"replicate": replicate, "network": seed, "regime": regime}
    test = data.test
    for zeta in settings.zetas:
        random = monte_carlo(
            model,
            test,
            draws=settings.random_draws,
            seed=seed,
            noise=WeightNoiseSpec("multiplicative", zeta),
        )
        tables["random"].append(
            base | {"zeta": zeta, "accuracy": random.mean(), "sem": random.sem()}
        )
        attacked = worst_case(model, test, zeta, steps=settings.attack_steps, seed=seed)
        tables["worst_case"].append(base | {"zeta": zeta, "accuracy": attacked.attacked.mean()})
    x, y = data.train
    flat = flatness(
        model,
        (torch.as_tensor(x), torch.as_tensor(y)),
        steps=settings.flatness_steps,
        directions=settings.directions,
        seed=seed,
    )
    for step, increase in zip(flat.steps, flat.increase, strict=True):
        tables["flatness"].append(base | {"step": step, "loss": flat.loss, "increase": increase})
    tables["flatness"].append(base | {"step": "mean", "loss": flat.loss, "increase": flat.mean})
