"""The one training entry point: :func:`train` (model, data, regime, config) → :class:`History`."""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from circuitnn.errors import ConfigError
from circuitnn.nn._check import choice, flag, integer, non_negative, positive
from circuitnn.nn.random import derive_seed
from circuitnn.train.data import Data, as_tensors, batches, model_dtype
from circuitnn.train.history import History
from circuitnn.train.regimes import Clean, Regime
from circuitnn.train.tasks import TASKS, Task

OPTIMIZERS = ("adam", "adamw", "sgd")


@dataclass(frozen=True)
class TrainConfig:
    """Settings of :func:`train`.

    ``task``: ``"classification"`` or ``"regression"``; ``epochs`` maximum; ``batch_size``;
    ``optimizer`` ``"adam"``, ``"adamw"`` or ``"sgd"`` (momentum 0.9) with learning rate ``lr``
    and ``weight_decay``; ``patience``: stop after this many epochs without improvement of the
    monitored loss (validation loss when validation data is given, else training loss) by more
    than ``min_delta`` (None: never stop early); ``restore_best``: end with the best epoch's
    weights; ``clip_grad``: gradient-norm clipping (None: off); ``seed`` fixes shuffling, noise and
    attacks; ``progress``: show a tqdm bar; ``device``: where to train (None: the model's device).
    """

    task: str = "classification"
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    patience: int | None = None
    min_delta: float = 0.0
    restore_best: bool = True
    clip_grad: float | None = None
    seed: int = 0
    progress: bool = False
    device: str | None = None

    def __post_init__(self) -> None:
        choice("TrainConfig.task", self.task, TASKS)
        integer("TrainConfig.epochs", self.epochs, minimum=1)
        integer("TrainConfig.batch_size", self.batch_size, minimum=1)
        positive("TrainConfig.lr", self.lr)
        choice("TrainConfig.optimizer", self.optimizer, OPTIMIZERS)
        non_negative("TrainConfig.weight_decay", self.weight_decay)
        if self.patience is not None:
            integer("TrainConfig.patience", self.patience, minimum=1)
        non_negative("TrainConfig.min_delta", self.min_delta)
        flag("TrainConfig.restore_best", self.restore_best)
        if self.clip_grad is not None:
            positive("TrainConfig.clip_grad", self.clip_grad)
        integer("TrainConfig.seed", self.seed, minimum=0)
        flag("TrainConfig.progress", self.progress)


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("the model has no trainable parameters")
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)


@torch.no_grad()
def _evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, task: Task, batch_size: int
) -> tuple[float, float]:
    model.eval()
    total, count = 0.0, 0
    sums: dict[str, np.ndarray] = {}
    for xb, yb in batches(x, y, max(batch_size, 256)):
        target = task.targets(yb)
        out = model(xb)
        total += float(task.loss(out, target)) * len(xb)
        count += len(xb)
        for key, value in task.sums(out.unsqueeze(0), target).items():
            sums[key] = sums.get(key, 0) + value.cpu().numpy()
    return total / count, float(task.finish(sums)[task.main_metric][0])


def train(
    model: nn.Module,
    data: Data,
    *,
    regime: Regime | None = None,
    config: TrainConfig | None = None,
    validation: Data | None = None,
) -> History:
    """Train ``model`` in place on ``data`` = ``(inputs, targets)`` under ``regime`` (default
    :class:`~circuitnn.train.Clean`) and return the :class:`History`.

    Reproducible: ``config.seed`` fixes the batch order, every draw the regime makes and torch's
    global RNG inside the call (restored afterwards), so modules seeded with None draw the same
    too. The model ends in evaluation mode, with the best epoch's weights if
    ``config.restore_best``.
    """
    regime = Clean() if regime is None else regime
    config = TrainConfig() if config is None else config
    if not isinstance(regime, Regime):
        raise ConfigError(f"regime must be a Regime, got {regime!r}")
    if not isinstance(config, TrainConfig):
        raise ConfigError(f"config must be a TrainConfig, got {config!r}")
    task = Task(config.task)
    parameters = list(model.parameters())
    device = (
        torch.device(config.device)
        if config.device
        else (parameters[0].device if parameters else torch.device("cpu"))
    )
    model.to(device)
    dtype = model_dtype(model)
    x, y = as_tensors(data, "data", device, dtype)
    validation_tensors = as_tensors(validation, "validation", device, dtype) if validation else None
    history = History(regime=regime.describe(), config=dataclasses.asdict(config))
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(derive_seed(config.seed, "torch"))
        undo = regime.install(model, task, config.seed)
        try:
            _loop(model, x, y, validation_tensors, regime, config, task, history)
        finally:
            for callback in reversed(undo):
                callback()
    model.eval()
    return history


def _loop(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    validation: tuple[torch.Tensor, torch.Tensor] | None,
    regime: Regime,
    config: TrainConfig,
    task: Task,
    history: History,
) -> None:
    from tqdm.auto import tqdm

    optimizer = _optimizer(model, config)
    order = torch.Generator().manual_seed(derive_seed(config.seed, "batches"))
    draws = torch.Generator().manual_seed(derive_seed(config.seed, "regime"))
    best_loss, best_state, waited = math.inf, None, 0
    metric = task.main_metric
    bar = tqdm(
        range(1, config.epochs + 1), desc=regime.name, disable=not config.progress, unit="epoch"
    )
    for epoch in bar:
        started = time.perf_counter()
        model.train()
        total, count = 0.0, 0
        for xb, yb in batches(x, y, config.batch_size, order):
            target = task.targets(yb)
            optimizer.zero_grad(set_to_none=True)
            loss = regime.loss(model, xb, target, task, draws)
            if not torch.isfinite(loss):
                raise ConfigError(
                    f"training diverged at epoch {epoch} (loss {float(loss.detach())}): lower lr"
                )
            loss.backward()
            if config.clip_grad is not None:
                nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad)
            optimizer.step()
            total += float(loss.detach()) * len(xb)
            count += len(xb)
        row: dict[str, float] = {"epoch": epoch, "train_loss": total / count}
        train_loss, train_metric = _evaluate(model, x, y, task, config.batch_size)
        row[f"train_{metric}"] = train_metric
        monitored = train_loss
        if validation is not None:
            val_loss, val_metric = _evaluate(model, *validation, task, config.batch_size)
            row["val_loss"], row[f"val_{metric}"] = val_loss, val_metric
            monitored = val_loss
        row["seconds"] = time.perf_counter() - started
        history.epochs.append(row)
        bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k not in ("epoch", "seconds")})
        if monitored < best_loss - config.min_delta:
            best_loss, waited = monitored, 0
            history.best_epoch = epoch
            if config.restore_best:
                best_state = copy.deepcopy(model.state_dict())
        else:
            waited += 1
            if config.patience is not None and waited >= config.patience:
                history.stopped_early = True
                break
    bar.close()
    if config.restore_best and best_state is not None:
        model.load_state_dict(best_state)
    if not config.restore_best:
        history.best_epoch = len(history.epochs)
