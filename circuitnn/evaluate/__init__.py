"""Robustness evaluation of analog networks (imports torch).

- :func:`monte_carlo`: chips × noise draws, vectorized over draws → :class:`MonteCarloResult`;
- :func:`robustness_curve`, :func:`midpoint`, :func:`layer_sweep` (Walking Noise);
- :func:`worst_case`: the projected weight attack at a relative bound ζ;
- :func:`layer_snr`: per-layer signal-to-noise ratio from activations;
- :func:`propagate_noise`: per-layer noise predicted analytically, checked by Monte Carlo.
"""

from circuitnn._torch import require_torch

require_torch("circuitnn.evaluate")


from circuitnn.evaluate.montecarlo import MonteCarloResult, monte_carlo
from circuitnn.evaluate.perturb import as_perturbation
from circuitnn.evaluate.propagation import LayerNoise, NoisePropagation, propagate_noise
from circuitnn.evaluate.robustness import (
    Midpoint,
    RobustnessCurve,
    layer_sweep,
    midpoint,
    robustness_curve,
)
from circuitnn.evaluate.snr import LayerSNR, layer_snr
from circuitnn.evaluate.worst_case import WorstCase, worst_case

__all__ = [
    "LayerNoise",
    "LayerSNR",
    "Midpoint",
    "MonteCarloResult",
    "NoisePropagation",
    "RobustnessCurve",
    "WorstCase",
    "as_perturbation",
    "layer_snr",
    "layer_sweep",
    "midpoint",
    "monte_carlo",
    "propagate_noise",
    "robustness_curve",
    "worst_case",
]
