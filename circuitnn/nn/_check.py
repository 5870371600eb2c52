"""Validation helpers shared by the torch side: every failure is a ConfigError naming the field."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from circuitnn.errors import ConfigError


def number(field: str, value: Any) -> float:
    """``value`` as a finite float, or ConfigError naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            import numpy as np

            if isinstance(value, np.integer | np.floating):
                value = float(value)
            else:
                raise TypeError
        except TypeError:
            raise ConfigError(f"{field} must be a number, got {value!r}") from None
    value = float(value)
    if not math.isfinite(value):
        raise ConfigError(f"{field} must be finite, got {value!r}")
    return value


def non_negative(field: str, value: Any) -> float:
    """A finite float ≥ 0."""
    value = number(field, value)
    if value < 0:
        raise ConfigError(f"{field} must be >= 0, got {value!r}")
    return value


def positive(field: str, value: Any) -> float:
    """A finite float > 0."""
    value = number(field, value)
    if value <= 0:
        raise ConfigError(f"{field} must be > 0, got {value!r}")
    return value


def unit_interval(field: str, value: Any, *, open_right: bool = False) -> float:
    """A float in [0, 1] (or [0, 1) with ``open_right``)."""
    value = number(field, value)
    if value < 0 or value > 1 or (open_right and value == 1):
        bracket = ")" if open_right else "]"
        raise ConfigError(f"{field} must be in [0, 1{bracket}, got {value!r}")
    return value


def integer(field: str, value: Any, minimum: int | None = None) -> int:
    """An int (not a bool), at least ``minimum`` when given."""
    import numpy as np

    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ConfigError(f"{field} must be an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ConfigError(f"{field} must be at least {minimum}, got {value}")
    return value


def choice(field: str, value: Any, options: Iterable[str]) -> str:
    """One of ``options``."""
    options = tuple(options)
    if value not in options:
        raise ConfigError(f"{field} must be one of {', '.join(map(repr, options))}; got {value!r}")
    return value


def flag(field: str, value: Any) -> bool:
    """A bool."""
    if not isinstance(value, bool):
        raise ConfigError(f"{field} must be True or False, got {value!r}")
    return value
