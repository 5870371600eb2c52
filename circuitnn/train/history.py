"""The record of a training run: one row of metrics per epoch, savable as JSON."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from circuitnn.errors import ConfigError


@dataclass
class History:
    """Per-epoch metrics of one training run.

    ``epochs``: one dict per epoch with ``epoch`` (1-based), ``train_loss`` (mean over the epoch's
    steps, as trained: with the regime's noise or attack), ``train_<metric>`` (the main metric,
    accuracy or RMSE, on the whole training set in evaluation mode), ``val_loss`` and
    ``val_<metric>`` (evaluation mode, when validation data
    was given), ``seconds``; ``best_epoch``: the epoch whose weights the model holds at the end
    (when ``restore_best``); ``stopped_early``; ``regime`` and ``config``: their settings.
    """

    regime: dict[str, Any]
    config: dict[str, Any]
    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False

    def column(self, name: str) -> list[float]:
        """One metric over the epochs."""
        if self.epochs and name not in self.epochs[0]:
            raise ConfigError(f"no column {name!r} in the history; columns: {list(self.epochs[0])}")
        return [row[name] for row in self.epochs]

    @property
    def last(self) -> dict[str, float]:
        """The last epoch's row."""
        return self.epochs[-1] if self.epochs else {}

    @property
    def best(self) -> dict[str, float]:
        """The best epoch's row."""
        return self.epochs[self.best_epoch - 1] if self.best_epoch else {}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (NaN as None)."""

        def clean(value: Any) -> Any:
            if isinstance(value, float) and not math.isfinite(value):
                return None
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [clean(v) for v in value]
            return value

        return clean(
            {
                "regime": self.regime,
                "config": self.config,
                "epochs": self.epochs,
                "best_epoch": self.best_epoch,
                "stopped_early": self.stopped_early,
            }
        )

    def save(self, path: str | Path) -> Path:
        """Write the history as JSON to ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, default=str) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> History:
        """Read a history written by :meth:`save`."""
        data = json.loads(Path(path).read_text())
        epochs = [
            {k: (math.nan if v is None else v) for k, v in row.items()} for row in data["epochs"]
        ]
        return cls(
            regime=data["regime"],
            config=data["config"],
            epochs=epochs,
            best_epoch=int(data["best_epoch"]),
            stopped_early=bool(data["stopped_early"]),
        )
