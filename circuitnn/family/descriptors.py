"""Descriptors of transfer curves: swing, midpoint, gain, slope, monotonicity, power.

Pure numpy on arrays of curves (N×K) over a uniform input grid (K,); rows with NaN (failed
instances) give NaN descriptors.
"""

from __future__ import annotations

import numpy as np

DESCRIPTOR_UNITS = {
    "swing": "output unit",
    "midpoint": "V",
    "gain": "output unit / V",
    "max_slope": "output unit / V",
    "monotonic": "1 = monotonic",
    "mean_power": "W",
}


def slopes(grid: np.ndarray, curves: np.ndarray) -> np.ndarray:
    """dy/dx of every curve by second-order finite differences (output unit per volt)."""
    return np.gradient(curves, grid, axis=-1)


def midpoints(grid: np.ndarray, curves: np.ndarray) -> np.ndarray:
    """Input (V) where each curve first crosses halfway between its minimum and maximum."""
    low = np.min(curves, axis=-1, keepdims=True)
    high = np.max(curves, axis=-1, keepdims=True)
    half = 0.5 * (low + high)
    above = curves >= half
    crossing = np.argmax(above[:, 1:] != above[:, :-1], axis=1)
    rows = np.arange(len(curves))
    y0 = curves[rows, crossing] - half[:, 0]
    y1 = curves[rows, crossing + 1] - half[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(y1 != y0, y0 / (y0 - y1), 0.5)
    x = grid[crossing] + fraction * (grid[1] - grid[0])
    flat = (high[:, 0] - low[:, 0]) <= 0
    return np.where(flat | np.isnan(half[:, 0]), np.nan, x)


def describe(
    grid: np.ndarray, curves: np.ndarray, power: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """All descriptors of ``curves`` (N×K) on ``grid`` (K,); ``power`` (N×K, W) adds mean power.

    ``gain`` is the slope at the midpoint, ``max_slope`` the largest |dy/dx|, ``monotonic`` is 1
    when every step moves the same way (steps below 1e-6 of the swing are ignored).
    """
    curves = np.atleast_2d(np.asarray(curves, dtype=np.float64))
    with np.errstate(invalid="ignore"):
        swing = np.max(curves, axis=1) - np.min(curves, axis=1)
        slope = slopes(grid, curves)
        middle = midpoints(grid, curves)
        gain = np.array(
            [
                np.interp(m, grid, s) if np.isfinite(m) else np.nan
                for m, s in zip(middle, slope, strict=True)
            ]
        )
        steps = np.diff(curves, axis=1)
        tolerance = 1e-6 * swing[:, None]
        rising = np.all(steps >= -tolerance, axis=1)
        falling = np.all(steps <= tolerance, axis=1)
        monotonic = np.where(np.isnan(swing), np.nan, (rising | falling).astype(np.float64))
        result = {
            "swing": swing,
            "midpoint": middle,
            "gain": gain,
            "max_slope": np.max(np.abs(slope), axis=1),
            "monotonic": monotonic,
        }
        if power is not None:
            result["mean_power"] = np.mean(power, axis=1)
    return result
