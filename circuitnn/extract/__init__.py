"""Extraction: a neuron's Monte Carlo family from ngspice — chunks simulated in parallel and
journaled, failures isolated, curves described, noise and speed analysed, streamed to the store.

Stage 3 of the flow (see ``docs/architecture.md``). :func:`extract_family` is the entry point;
:class:`RunOptions` says how to run (never what the numbers are).
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

from circuitnn._lazy import lazy_exports

_EXPORTS = {
    "extract_family": "pipeline",
    "family_key": "pipeline",
    "RunOptions": "options",
    "add_noise": "noise",
    "add_speed": "speed",
}
# names of the old module ``circuitnn.extract`` (the curve descriptors), now beside the Family
_OLD_MODULE = {"describe", "midpoints", "slopes", "DESCRIPTOR_UNITS"}
__all__ = list(_EXPORTS)
_exports = lazy_exports(__name__, _EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _OLD_MODULE:
        warnings.warn(
            f"circuitnn.extract.{name} moved to circuitnn.family.descriptors.{name}; "
            "the old name will be removed in circuitnn 0.3",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module("circuitnn.family.descriptors"), name)
    return _exports(name)
