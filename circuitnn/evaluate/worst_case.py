"""Worst-case weight perturbation: the projected sign-gradient attack used as an evaluation.

Inside ``|δ| ≤ ζ·|θ|`` (every weight and bias, relative to its own magnitude), ``steps`` projected
sign-gradient steps maximize the task loss on (up to ``attack_samples`` of) the data, with the
model's noise silenced during the attack; then the model is evaluated at ``θ + δ`` by
:func:`~circuitnn.evaluate.monte_carlo` (its own noise as configured) and put back to ``θ``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from circuitnn.evaluate.montecarlo import MonteCarloResult, monte_carlo
from circuitnn.nn._check import integer, non_negative
from circuitnn.nn.model import quiet
from circuitnn.nn.random import derive_seed
from circuitnn.train.attack import perturbable, projected_attack
from circuitnn.train.data import Data, as_tensors, model_dtype
from circuitnn.train.tasks import Task, as_task


@dataclass(frozen=True)
class WorstCase:
    """``clean`` and ``attacked`` Monte Carlo results at relative bound ``zeta``;
    ``relative_change``: ‖δ‖ / ‖θ‖ over all perturbed parameters."""

    zeta: float
    clean: MonteCarloResult
    attacked: MonteCarloResult
    relative_change: float

    @property
    def drop(self) -> float:
        """Clean minus attacked main metric (accuracy lost, or RMSE gained as a negative)."""
        return self.clean.mean() - self.attacked.mean()


def worst_case(
    model: nn.Module,
    data: Data,
    zeta: float,
    *,
    task: Task | str = "classification",
    steps: int = 10,
    step_fraction: float | None = None,
    random_start: bool = False,
    biases: bool = True,
    attack_samples: int = 4096,
    draws: int = 1,
    seed: int = 0,
) -> WorstCase:
    """Attack ``model``'s weights inside ``±zeta·|θ|`` to maximize the task loss on ``data`` and
    evaluate it there (``draws`` noise draws; the model is restored afterwards)."""
    task = as_task(task)
    non_negative("zeta", zeta)
    integer("attack_samples", attack_samples, minimum=1)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    x, y = as_tensors(data, "data", device, model_dtype(model))
    xa, ya = x[:attack_samples], task.targets(y[:attack_samples])
    params = perturbable(model, biases)
    was_training = model.training
    model.eval()

    def objective(perturbed: dict[str, torch.Tensor]) -> torch.Tensor:
        return task.loss(functional_call(model, perturbed, (xa,)), ya)

    generator = torch.Generator().manual_seed(derive_seed(seed, "worst-case"))
    try:
        with quiet(model):
            delta = projected_attack(
                params, objective, zeta, steps, step_fraction, generator, random_start
            )
        clean = monte_carlo(model, data, task=task, draws=draws, seed=seed)
        saved = {name: p.detach().clone() for name, p in params.items()}
        with torch.no_grad():
            for name, parameter in params.items():
                parameter.add_(delta[name])
        try:
            attacked = monte_carlo(model, data, task=task, draws=draws, seed=seed)
        finally:
            with torch.no_grad():
                for name, parameter in params.items():
                    parameter.copy_(saved[name])
    finally:
        model.train(was_training)
    change = np.sqrt(sum(float(d.double().pow(2).sum()) for d in delta.values()))
    size = np.sqrt(sum(float(p.detach().double().pow(2).sum()) for p in params.values()))
    return WorstCase(zeta, clean, attacked, change / size if size > 0 else 0.0)
