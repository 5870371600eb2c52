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
    "hysteresis": "V",
}


# realized device parameters: vth_<device>, … (what circuitnn.neuron.devices records)
DEVICE_UNITS = {"vth": "V", "id": "A", "gm": "S", "ic": "A", "vbe": "V"}


def descriptor_unit(name: str) -> str:
    """The unit of descriptor ``name`` (a curve descriptor, or a realized device parameter
    ``<quantity>_<device>``); "" when unknown."""
    if name in DESCRIPTOR_UNITS:
        return DESCRIPTOR_UNITS[name]
    return DEVICE_UNITS.get(name.split("_", 1)[0], "") if "_" in name else ""


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


def hysteresis(grid: np.ndarray, up: np.ndarray, down: np.ndarray) -> np.ndarray:
    """Width (V) of the hysteresis window of each instance: the distance between the input where
    its up-sweep branch first crosses the middle level (halfway between the lowest and highest
    output of both branches), going up, and where its down-sweep branch first crosses it, going
    down. 0 for a single-valued curve (within the solver tolerance); NaN for a flat or failed one.
    ``up``, ``down`` (N×K) on the increasing ``grid`` (K,)."""
    up = np.atleast_2d(np.asarray(up, dtype=np.float64))
    down = np.atleast_2d(np.asarray(down, dtype=np.float64))
    with np.errstate(invalid="ignore"):
        low = np.minimum(np.min(up, axis=1), np.min(down, axis=1))
        high = np.maximum(np.max(up, axis=1), np.max(down, axis=1))
        half = 0.5 * (low + high)
        rising = _crossing(grid, up, half)
        falling = _crossing(grid[::-1], down[:, ::-1], half)  # going down the grid
        width = np.abs(rising - falling)
    return np.where(high > low, width, np.nan)


def _crossing(grid: np.ndarray, curves: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Where each curve first crosses ``level`` along ``grid`` (increasing or decreasing;
    linear between points); NaN where it never does."""
    above = curves >= level[:, None]
    change = above[:, 1:] != above[:, :-1]
    first = np.argmax(change, axis=1)
    rows = np.arange(len(curves))
    y0 = curves[rows, first] - level
    y1 = curves[rows, first + 1] - level
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(y1 != y0, y0 / (y0 - y1), 0.5)
    x = grid[first] + fraction * (grid[first + 1] - grid[first])
    return np.where(change.any(axis=1), x, np.nan)
