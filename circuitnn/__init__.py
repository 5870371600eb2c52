"""circuitnn: analog neuron circuits (ngspice Monte Carlo) co-simulated with neural networks.

``import circuitnn`` is light; the heavy parts load when first used::

    import circuitnn
    family = circuitnn.extract_family("mos_diffpair", n=1000, seed=0, store="families.h5")
"""

from __future__ import annotations

from typing import Any

from circuitnn import _moved
from circuitnn._version import __version__
from circuitnn.errors import (
    CircuitnnError,
    ConfigError,
    ConvergenceError,
    NetlistError,
    SimulationError,
    SimulationTimeout,
    StoreError,
)

_moved.install()

_LAZY = {
    "extract_family": "circuitnn.extract.pipeline",
    "RunOptions": "circuitnn.extract.options",
    "NoiseAnalysis": "circuitnn.spice.analyses",
    "SpeedAnalysis": "circuitnn.spice.analyses",
    "sweep_families": "circuitnn.campaign.sweep",
    "MonteCarlo": "circuitnn.neuron.variation",
    "sample_parameters": "circuitnn.neuron.variation",
    "NeuronSpec": "circuitnn.neuron.spec",
    "load_spec": "circuitnn.neuron.spec_file",
    "builtin_neurons": "circuitnn.neuron.builtin",
    "get_neuron": "circuitnn.neuron.builtin",
    "Family": "circuitnn.family",
    "NoiseData": "circuitnn.family",
    "SpeedData": "circuitnn.family",
    "Store": "circuitnn.store.index",
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
