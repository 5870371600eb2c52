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
        """Read a history written by :meth:`save`.

        A missing, unreadable, truncated or malformed file (bad JSON, a missing key, a value of
        the wrong type) raises :class:`ConfigError` naming the file and what is wrong.
        """
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"history file not found: {path}")
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"{path}: cannot read the history file: {error}") from None
        except json.JSONDecodeError as error:
            raise ConfigError(
                f"{path}: not a history file: invalid JSON ({error}; truncated?)"
            ) from None
        except RecursionError:
            raise ConfigError(f"{path}: not a history file: JSON nested too deeply") from None
        try:
            return cls._from_dict(data)
        except ConfigError as error:
            raise ConfigError(f"{path}: not a valid history file: {error}") from None

    @classmethod
    def _from_dict(cls, data: Any) -> History:
        """Check the JSON data of a saved history and build it; :class:`ConfigError` names the
        bad field."""
        if not isinstance(data, dict):
            raise ConfigError(f"expected a JSON object, got {_json_type(data)}")
        missing = [key for key in _KEYS if key not in data]
        if missing:
            raise ConfigError(f"missing key(s) {missing}")
        for key in ("regime", "config"):
            if not isinstance(data[key], dict):
                raise ConfigError(f"{key!r} must be an object, got {_json_type(data[key])}")
        if not isinstance(data["epochs"], list):
            raise ConfigError(f"'epochs' must be a list, got {_json_type(data['epochs'])}")
        epochs: list[dict[str, float]] = []
        for number, row in enumerate(data["epochs"], start=1):
            if not isinstance(row, dict):
                raise ConfigError(f"epochs[{number - 1}] must be an object, got {_json_type(row)}")
            if epochs and row.keys() != epochs[0].keys():
                raise ConfigError(
                    f"epochs[{number - 1}] has columns {sorted(row)}, "
                    f"unlike epochs[0]: {sorted(epochs[0])}"
                )
            for name, value in row.items():
                if value is not None and (
                    isinstance(value, bool) or not isinstance(value, int | float)
                ):
                    raise ConfigError(
                        f"epochs[{number - 1}][{name!r}] must be a number or null, "
                        f"got {_json_type(value)}"
                    )
            epochs.append({k: (math.nan if v is None else v) for k, v in row.items()})
        best_epoch = data["best_epoch"]
        if isinstance(best_epoch, bool) or not isinstance(best_epoch, int):
            raise ConfigError(f"'best_epoch' must be an integer, got {_json_type(best_epoch)}")
        if not 0 <= best_epoch <= len(epochs):
            raise ConfigError(
                f"'best_epoch' {best_epoch} is not between 0 and the {len(epochs)} epoch(s)"
            )
        if not isinstance(data["stopped_early"], bool):
            raise ConfigError(
                f"'stopped_early' must be true or false, got {_json_type(data['stopped_early'])}"
            )
        return cls(
            regime=data["regime"],
            config=data["config"],
            epochs=epochs,
            best_epoch=best_epoch,
            stopped_early=data["stopped_early"],
        )


_KEYS = ("regime", "config", "epochs", "best_epoch", "stopped_early")


def _json_type(value: Any) -> str:
    """A JSON value's kind and a short excerpt, for error messages."""
    kinds = {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
        type(None): "null",
    }
    kind = kinds.get(type(value), type(value).__name__)
    if isinstance(value, dict | list):
        return kind
    return f"{kind} ({json.dumps(value)[:40]})"
