"""Tasks: the loss, the output distance and the metrics of classification and regression."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from circuitnn.errors import ConfigError
from circuitnn.nn._check import choice

TASKS = ("classification", "regression")
METRICS = {
    "classification": ("accuracy", "cross_entropy"),
    "regression": ("rmse", "mae", "r2"),
}
HIGHER_IS_BETTER = {
    "accuracy": True,
    "cross_entropy": False,
    "rmse": False,
    "mae": False,
    "r2": True,
}


@dataclass(frozen=True)
class Task:
    """``kind``: ``"classification"`` (integer class targets, logits out; loss cross-entropy,
    distance KL(softmax(clean) ‖ softmax(perturbed))) or ``"regression"`` (float targets shaped
    like the output or (B,) for a single output; loss and distance mean squared error)."""

    kind: str = "classification"

    def __post_init__(self) -> None:
        choice("task", self.kind, TASKS)

    @property
    def metrics(self) -> tuple[str, ...]:
        """Metric names, the main one first (accuracy or RMSE)."""
        return METRICS[self.kind]

    @property
    def main_metric(self) -> str:
        """``"accuracy"`` or ``"rmse"``."""
        return self.metrics[0]

    def targets(self, y: torch.Tensor) -> torch.Tensor:
        """Targets in the dtype the loss needs."""
        if self.kind == "classification":
            if y.is_floating_point() and not torch.all(y == y.round()):
                raise ConfigError("classification targets must be integer class indices")
            return y.long()
        return y if y.is_floating_point() else y.to(torch.get_default_dtype())

    def _shaped(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.dim() == output.dim() - 1 and output.shape[-1] == 1:
            return target.unsqueeze(-1)
        return target

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean loss over the batch."""
        if self.kind == "classification":
            return F.cross_entropy(output, target)
        return F.mse_loss(output, self._shaped(output, target).to(output.dtype))

    def distance(self, clean: torch.Tensor, perturbed: torch.Tensor) -> torch.Tensor:
        """Mean distance between two outputs for the same inputs (≥ 0, 0 when equal)."""
        if self.kind == "classification":
            return F.kl_div(
                F.log_softmax(perturbed, dim=-1),
                F.log_softmax(clean, dim=-1),
                log_target=True,
                reduction="batchmean",
            )
        return F.mse_loss(perturbed, clean)

    def sums(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-draw sums over a batch: ``output`` (D, B, ...) with a leading draw dimension,
        ``target`` (B, ...). Each value has shape (D,)."""
        if self.kind == "classification":
            logits = output.reshape(output.shape[0], -1, output.shape[-1])
            labels = target.reshape(-1)
            correct = (logits.argmax(dim=-1) == labels).sum(dim=1)
            log_p = F.log_softmax(logits.double(), dim=-1)
            index = labels.view(1, -1, 1).expand(logits.shape[0], -1, 1)
            nll = -log_p.gather(-1, index)[..., 0].sum(dim=1)
            return {"correct": correct.double(), "nll": nll, "count": _count(labels, output)}
        shaped = self._shaped(output[0], target).to(torch.float64)
        error = output.double() - shaped.unsqueeze(0)
        flat = error.reshape(error.shape[0], -1)
        return {
            "squared": (flat**2).sum(dim=1),
            "absolute": flat.abs().sum(dim=1),
            "count": _count(shaped.reshape(-1), output),
        }

    def finish(
        self, sums: dict[str, np.ndarray], spread: float | None = None
    ) -> dict[str, np.ndarray]:
        """Metrics per draw from accumulated :meth:`sums`; ``spread`` is the regression targets'
        total sum of squares about their mean (for R²)."""
        count = sums["count"]
        if self.kind == "classification":
            return {"accuracy": sums["correct"] / count, "cross_entropy": sums["nll"] / count}
        result = {
            "rmse": np.sqrt(sums["squared"] / count),
            "mae": sums["absolute"] / count,
        }
        if spread is not None and spread > 0:
            result["r2"] = 1.0 - sums["squared"] / spread
        return result

    def chance(self, metric: str, outputs: int, target: torch.Tensor | None = None) -> float:
        """The metric of an uninformed predictor: accuracy 1/classes, cross-entropy log(classes),
        R² 0, RMSE / MAE of predicting the targets' mean (needs ``target``)."""
        if metric == "accuracy":
            return 1.0 / outputs
        if metric == "cross_entropy":
            return float(np.log(outputs))
        if metric == "r2":
            return 0.0
        if target is None:
            raise ConfigError(f"the chance level of {metric} needs the targets")
        values = target.double()
        centred = values - values.mean(dim=0)
        if metric == "rmse":
            return float(centred.pow(2).mean().sqrt())
        if metric == "mae":
            return float((values - values.median(dim=0).values).abs().mean())
        raise ConfigError(f"unknown metric {metric!r}")


def _count(labels: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    return torch.full(
        (output.shape[0],), float(labels.numel()), dtype=torch.float64, device=output.device
    )


def as_task(task: Task | str) -> Task:
    """A :class:`Task` from a Task or its kind."""
    return task if isinstance(task, Task) else Task(task)
