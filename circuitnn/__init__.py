"""circuitnn: analog neuron circuits (ngspice Monte Carlo) co-simulated with neural networks.

``import circuitnn`` is light; the heavy parts load when first used::

    import circuitnn
    family = circuitnn.extract_family("mos_diffpair", n=1000, seed=0, store="families.h5")
"""

from __future__ import annotations

from typing import Any

from circuitnn.errors import (
    CircuitnnError,
    ConfigError,
    ConvergenceError,
    NetlistError,
    SimulationError,
    SimulationTimeout,
    StoreError,
)

__version__ = "0.1.0"

_LAZY = {
    "extract_family": "circuitnn.pipeline",
    "RunOptions": "circuitnn.pipeline",
    "sweep_families": "circuitnn.sweep",
    "MonteCarlo": "circuitnn.variation",
    "sample_parameters": "circuitnn.variation",
    "NeuronSpec": "circuitnn.spec",
    "load_spec": "circuitnn.spec",
    "builtin_neurons": "circuitnn.circuits",
    "get_neuron": "circuitnn.circuits",
    "Family": "circuitnn.family",
    "Store": "circuitnn.store",
}

__all__ = [
    "CircuitnnError",
    "ConfigError",
    "ConvergenceError",
    "NetlistError",
    "SimulationError",
    "SimulationTimeout",
    "StoreError",
    "__version__",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'circuitnn' has no attribute {name!r}")
