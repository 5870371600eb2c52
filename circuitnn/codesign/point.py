"""One design point's network (imports torch): trained on the circuit's nominal curves, judged
over Monte Carlo chips with the circuit's own mismatch and noise."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from circuitnn.codesign.config import TaskSettings
from circuitnn.codesign.metrics import bootstrap, chip_energy, midpoint_estimate, yield_estimate
from circuitnn.data import Dataset
from circuitnn.errors import ConfigError
from circuitnn.family import Family
from circuitnn.nn import (
    CircuitSpec,
    NoiseSpec,
    build_mlp,
    circuit_activations,
    mlp_spec,
    resample_chips,
    set_mode,
)
from circuitnn.nn.random import derive_seed
from circuitnn.train import Clean, NoiseInjection, TrainConfig, train


def load_dataset(task: TaskSettings, seed: int) -> Dataset:
    """The task's built-in data set, split by ``seed``."""
    from circuitnn.data import builtin

    return builtin(
        task.dataset, seed=seed, validation=task.validation_fraction, test=task.test_fraction
    )


def evaluate_point(
    family: Family, dataset: Dataset, task: TaskSettings, seed: int, yield_fraction: float
) -> dict[str, Any]:
    """Train the network of ``task`` on ``family``'s nominal curves (every hidden neuron with its
    simulated σ_out(x); noise-aware when ``task.noise_training`` > 0) and judge it over
    ``task.chips`` chips × ``task.draws`` noise draws. Returns the metric columns of the row
    (see :mod:`circuitnn.codesign.table`) and the seconds spent training and evaluating."""
    from circuitnn.evaluate import midpoint, monte_carlo

    if family.speed is None or family.noise is None:
        raise ConfigError(f"family {family.key[:12]} needs its noise and speed analyses")
    metric = task.metric
    higher = metric == "accuracy"
    began = time.perf_counter()
    model = build_mlp(
        mlp_spec(
            dataset.inputs,
            task.widths,
            dataset.outputs,
            activation=CircuitSpec(family, mode="nominal"),
            noise=NoiseSpec("circuit"),
        ),
        seed=seed,
    )
    regime: Any = Clean()
    if task.noise_training > 0:
        regime = NoiseInjection(noise=NoiseSpec("additive", task.noise_training))
    settings = TrainConfig(
        task=dataset.task, epochs=task.epochs, batch_size=task.batch_size, lr=task.lr, seed=seed
    )
    train(model, dataset.train, regime=regime, config=settings, validation=dataset.validation)
    trained = time.perf_counter()

    options = {"task": dataset.task, "draws": task.draws, "seed": seed}
    nominal = monte_carlo(model, dataset.test, **options).mean(metric)
    set_mode(model, "sampled")
    try:
        chips = monte_carlo(model, dataset.test, chips=task.chips, **options)
        energy, latency = _chip_costs(model, family, task.chips, seed)
    finally:
        set_mode(model, "nominal")
    per_chip = chips.metrics[metric].mean(axis=1)
    target = nominal * yield_fraction if higher else nominal / yield_fraction
    passed = per_chip >= target if higher else per_chip <= target
    tail = "p5" if higher else "p95"  # the worst 5 % of chips
    row: dict[str, Any] = {
        f"{metric}_nominal": nominal,
        **bootstrap(per_chip, "mean", seed).columns(f"{metric}_mean"),
        **bootstrap(per_chip, tail, seed).columns(f"{metric}_{tail}"),
        f"{metric}_chip_min": float(per_chip.min() if higher else per_chip.max()),
        f"yield_target_{metric}": target,
        **yield_estimate(passed).columns("yield"),
        **bootstrap(energy, "mean", seed).columns("energy_J"),
        **bootstrap(latency, "mean", seed).columns("latency_s"),
        "chips": task.chips,
        "draws": task.draws,
    }
    if task.midpoint:
        try:
            found = midpoint(model, dataset.test, noise="additive", tolerance=0.1, **options)
            row.update(midpoint_estimate(found.level, found.uncertainty).columns("noise_midpoint"))
        except ConfigError as error:
            raise ConfigError(f"noise midpoint of family {family.key[:12]}: {error}") from None
    row["training_s"] = trained - began
    row["evaluation_s"] = time.perf_counter() - trained
    return row


@torch.no_grad()
def _chip_costs(
    model: torch.nn.Module, family: Family, chips: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Energy (J) and latency (s) of one inference on each chip that
    :func:`~circuitnn.evaluate.monte_carlo` draws with the same seed (chip c from
    ``derive_seed(seed, "chip", c)``), from the instances every hidden layer holds."""
    from circuitnn.nn import chip_state, restore_chip

    assert family.speed is not None
    power = np.asarray(family.descriptors["mean_power"], dtype=np.float64)
    settling = np.asarray(family.speed.settling_time, dtype=np.float64)
    saved = chip_state(model)
    energy, latency = np.empty(chips), np.empty(chips)
    try:
        for chip in range(chips):
            resample_chips(model, derive_seed(seed, "chip", chip))
            layers = [layer.chip.cpu().numpy() for layer in circuit_activations(model)]
            energy[chip], latency[chip] = chip_energy(layers, power, settling)
    finally:
        restore_chip(model, saved)
    return energy, latency
