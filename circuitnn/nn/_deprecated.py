"""Family selectors (a key or neuron name plus ``store=PATH``) in the layers, kept for one release.

The layers take a :class:`~circuitnn.family.Family`; load one with
``circuitnn.Store(PATH).load(SELECTOR)``. This module is the one place on the PyTorch side that
reaches into the store, only for the deprecated form, and goes in circuitnn 0.3.
"""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path

from circuitnn.errors import ConfigError
from circuitnn.family import Family


def resolve_family(family: Family | str, store: str | Path | None = None) -> Family:
    """``family`` itself, or (deprecated) the family a selector (key, key prefix, neuron name)
    names in ``store``."""
    if isinstance(family, Family):
        return family
    if isinstance(family, str):
        if store is None:
            raise ConfigError(
                f"family {family!r} is a selector: pass a Family "
                f"(circuitnn.Store(PATH).load({family!r}))"
            )
        warnings.warn(
            "a family selector with store=PATH is deprecated and will be removed in circuitnn "
            f"0.3: pass circuitnn.Store({str(store)!r}).load({family!r}) instead",
            DeprecationWarning,
            stacklevel=3,
        )
        return importlib.import_module("circuitnn.store").Store(store).load(family)
    raise ConfigError(f"family must be a Family, got {type(family).__name__}")
