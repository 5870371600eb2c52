"""Small-signal and transient analyses at a bias use the operating point on the stored branch.

A circuit with hysteresis has two (or more) operating points at an input inside its window;
ngspice picks one from a fresh start. The noise, AC and step benches therefore hold each
instance's output at its stored DC value while the operating point is found (``.nodeset``), and
the operating point ngspice settles on is checked against the stored curve (:func:`off_branch`).
"""

from __future__ import annotations

import numpy as np

from circuitnn.extract.independence import CHECK_FACTOR
from circuitnn.neuron.simulator import Simulator


def branch_values(
    grid: np.ndarray, curves: np.ndarray, inputs: np.ndarray, direction: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each curve (rows of N×K on the increasing ``grid``) at each input (B,): the stored
    value where the sweep last was before reaching that input (the grid point at or below it
    going up, at or above it going down: the branch the sweep was on), and the lowest and
    highest stored value of the grid points around the input. Each N×B."""
    grid = np.asarray(grid, dtype=np.float64)
    inputs = np.asarray(inputs, dtype=np.float64)
    step = (grid[-1] - grid[0]) / (len(grid) - 1)
    position = (inputs - grid[0]) / step
    below = np.clip(np.floor(position + 1e-9).astype(int), 0, len(grid) - 1)
    above = np.clip(np.ceil(position - 1e-9).astype(int), 0, len(grid) - 1)
    at = below if direction == "up" else above
    curves = np.atleast_2d(curves)
    first, second = curves[:, below], curves[:, above]
    return curves[:, at], np.minimum(first, second), np.maximum(first, second)


def off_branch(
    values: np.ndarray, low: np.ndarray, high: np.ndarray, simulator: Simulator, current: bool
) -> np.ndarray:
    """Which operating-point outputs (any shape) lie outside the stored curve's values around
    their input, by more than two converged solutions may differ at the family's tolerance."""
    slack = CHECK_FACTOR * simulator.tolerance(np.maximum(np.abs(low), np.abs(high)), current)
    with np.errstate(invalid="ignore"):
        return ~((values >= low - slack) & (values <= high + slack))
