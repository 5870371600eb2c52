"""Monte Carlo evaluation over chips × noise draws, vectorized over the draws.

For each chip (the model's current one, or ``chips`` fresh draws of every CircuitActivation and
per-chip weight mismatch), the whole data set is evaluated under ``draws`` independent noise
draws in one pass per batch: the model runs once inside ``circuitnn.nn.draws(draws, batch=B)``;
the noiseless front of the network computes the ``B`` samples once and the first active noise
source expands them to ``draws × B`` rows (per-forward weight noise draws one weight set per
draw), and the metrics are accumulated per draw. The model's chip,
noise seeds and train/eval mode are restored afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from circuitnn.evaluate.perturb import Perturbation, as_perturbation, perturbed, seeded_noise
from circuitnn.nn._check import integer
from circuitnn.nn.draws import draws as draw_dimension
from circuitnn.nn.model import chip_state, resample_chips, restore_chip
from circuitnn.nn.random import derive_seed
from circuitnn.train.data import Data, as_tensors, batches, model_dtype
from circuitnn.train.tasks import Task, as_task

MAX_ROWS = 4096  # rows (draws × samples) per forward pass: measured fastest on a 2-core CPU


@dataclass(frozen=True)
class MonteCarloResult:
    """Metrics of every (chip, draw): ``metrics`` name → array (chips × draws)."""

    task: str
    metrics: dict[str, np.ndarray]

    @property
    def chips(self) -> int:
        """Number of chips."""
        return next(iter(self.metrics.values())).shape[0]

    @property
    def draws(self) -> int:
        """Noise draws per chip."""
        return next(iter(self.metrics.values())).shape[1]

    def _values(self, metric: str | None) -> np.ndarray:
        name = metric or Task(self.task).main_metric
        if name not in self.metrics:
            raise KeyError(f"no metric {name!r}; have {list(self.metrics)}")
        return self.metrics[name]

    def mean(self, metric: str | None = None) -> float:
        """Mean over chips and draws (default metric: accuracy or RMSE)."""
        return float(np.mean(self._values(metric)))

    def std(self, metric: str | None = None) -> float:
        """Standard deviation over all chips × draws (0 for a single value)."""
        values = self._values(metric)
        return float(np.std(values, ddof=1)) if values.size > 1 else 0.0

    def sem(self, metric: str | None = None) -> float:
        """Standard error of :meth:`mean` (draws of one chip treated as independent)."""
        values = self._values(metric)
        return self.std(metric) / float(np.sqrt(values.size))

    def summary(self) -> dict[str, dict[str, float]]:
        """Per metric: mean, std, sem, min, max, between-chip std (of chip means) and mean
        within-chip std (over draws)."""
        table = {}
        for name, values in self.metrics.items():
            chip_means = values.mean(axis=1)
            table[name] = {
                "mean": float(values.mean()),
                "std": self.std(name),
                "sem": self.sem(name),
                "min": float(values.min()),
                "max": float(values.max()),
                "between_chips": float(np.std(chip_means, ddof=1)) if len(chip_means) > 1 else 0.0,
                "within_chip": float(np.mean(np.std(values, axis=1, ddof=1)))
                if values.shape[1] > 1
                else 0.0,
            }
        return table


def _device(model: nn.Module, device: str | torch.device | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    for tensor in model.parameters():
        return tensor.device
    return torch.device("cpu")


@torch.no_grad()
def evaluate_draws(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    task: Task,
    draws: int,
    max_rows: int,
    spread: float | None,
) -> dict[str, np.ndarray]:
    """Metrics (name → (draws,)) of the model as it stands on all of ``x``, ``draws`` noise draws
    at once (the model must already be in evaluation mode)."""
    batch = max(1, max_rows // draws)
    sums: dict[str, np.ndarray] = {}
    for xb, yb in batches(x, y, batch):
        with draw_dimension(draws, batch=xb.shape[0]):
            out = model(xb)  # expanded to draws × batch rows by the first active noise source
        if out.shape[0] == xb.shape[0] and draws > 1:
            out = out.unsqueeze(0).expand(draws, *out.shape)  # no noise: every draw alike
        else:
            out = out.reshape(draws, xb.shape[0], *out.shape[1:])
        for key, value in task.sums(out, task.targets(yb)).items():
            sums[key] = sums.get(key, 0) + value.cpu().numpy()
    return task.finish(sums, spread)


def target_spread(task: Task, y: torch.Tensor) -> float | None:
    """Total sum of squares of regression targets about their mean (None for classification)."""
    if task.kind != "regression":
        return None
    values = y.double()
    return float(((values - values.mean(dim=0)) ** 2).sum())


def monte_carlo(
    model: nn.Module,
    data: Data,
    *,
    task: Task | str = "classification",
    chips: int | None = None,
    draws: int = 16,
    seed: int = 0,
    noise: Perturbation | str | None = None,
    layers: tuple[str, ...] | None = None,
    own_noise: bool = True,
    max_rows: int = MAX_ROWS,
    device: str | torch.device | None = None,
) -> MonteCarloResult:
    """Evaluate ``model`` on ``data`` = ``(inputs, targets)`` over chips × noise draws.

    ``chips``: None evaluates the model's current chip; an int draws that many chips (chip *c*
    from ``seed`` and *c* only). ``draws``: noise draws per chip, vectorized. ``noise`` (a
    NoiseSpec, WeightNoiseSpec or shortcut name): an extra noise put at ``layers`` (default:
    activation layers for activation noise, analog layers for weight noise) for this evaluation;
    ``own_noise``: keep the model's own noise modules and weight noise on (as their ``in_eval``
    switches say). ``max_rows``: rows (draws × batch) per forward pass. Classification gives
    accuracy and cross-entropy, regression RMSE, MAE and R².
    """
    task = as_task(task)
    integer("draws", draws, minimum=1)
    integer("max_rows", max_rows, minimum=1)
    if chips is not None:
        integer("chips", chips, minimum=1)
    perturbation = as_perturbation(noise) if noise is not None else None
    device = _device(model, device)
    x, y = as_tensors(data, "data", device, model_dtype(model))
    spread = target_spread(task, y)
    saved = chip_state(model)
    was_training = model.training
    model.eval()
    rows: list[dict[str, np.ndarray]] = []
    try:
        with seeded_noise(model, seed):
            for chip in range(chips or 1):
                if chips is not None:
                    resample_chips(model, derive_seed(seed, "chip", chip))
                chip_seed = derive_seed(seed, "draws", chip)
                with (
                    seeded_noise(model, chip_seed),
                    perturbed(model, perturbation, layers, chip_seed, own_noise),
                ):
                    rows.append(evaluate_draws(model, x, y, task, draws, max_rows, spread))
    finally:
        restore_chip(model, saved)
        model.train(was_training)
    metrics = {name: np.stack([row[name] for row in rows]) for name in rows[0]}
    return MonteCarloResult(task=task.kind, metrics=metrics)
