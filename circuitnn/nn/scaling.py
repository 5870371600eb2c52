"""Volts ↔ network units: one affine map per family, set from the nominal curve.

A neuron's curve y(x) maps input volts x to an output y in the family's output unit (V or A).
Networks want dimensionless numbers of order one, so a :class:`Scaling` converts a network input
``u`` to volts and the circuit's output back to network units::

    x = input_offset + input_scale · u            (V)
    y_net = (y - output_offset) / output_scale    (dimensionless)

The same map serves every instance of a family, so instance-to-instance differences (gain, offset,
swing) survive into network units unchanged in relative size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from circuitnn.errors import ConfigError
from circuitnn.nn._check import choice, number

ANCHORS = ("midpoint", "knee")


@dataclass(frozen=True)
class Scaling:
    """The affine maps between network units and circuit units.

    ``input_offset`` V: the input that network input 0 stands for; ``input_scale`` V per network
    unit; ``output_offset`` (output unit): the output that network output 0 stands for;
    ``output_scale`` (output unit per network unit; negative flips a falling curve so that it rises
    in network units).
    """

    input_offset: float
    input_scale: float
    output_offset: float
    output_scale: float

    def __post_init__(self) -> None:
        for name in ("input_offset", "input_scale", "output_offset", "output_scale"):
            object.__setattr__(self, name, number(f"Scaling.{name}", getattr(self, name)))
        if self.input_scale <= 0:
            raise ConfigError(f"Scaling.input_scale must be > 0 V, got {self.input_scale!r}")
        if self.output_scale == 0:
            raise ConfigError("Scaling.output_scale must be nonzero")

    @classmethod
    def from_nominal(
        cls,
        grid: np.ndarray,
        nominal: np.ndarray,
        anchor: str = "midpoint",
        rising: bool = True,
    ) -> Scaling:
        """The scaling that makes the nominal curve a standard activation in network units.

        Output: half the nominal swing is one network unit. Input: one network unit is the input
        step over which the steepest part of the nominal curve moves one output network unit, so
        the nominal's largest slope is exactly 1 in network units. ``anchor`` picks the origin:

        - ``"midpoint"``: (0, 0) is where the nominal crosses halfway between its minimum and
          maximum (a tanh-shaped curve becomes ≈ tanh: range ±1, slope 1 at 0);
        - ``"knee"``: the origin is where the tangent at the steepest point meets the curve's floor
          (its minimum), which lies at output 0 (a ReLU-shaped curve becomes ≈ ReLU).

        ``rising=True`` flips falling curves (inverters) so that they rise in network units.
        """
        choice("Scaling anchor", anchor, ANCHORS)
        grid = np.asarray(grid, dtype=np.float64)
        nominal = np.asarray(nominal, dtype=np.float64)
        if grid.ndim != 1 or nominal.shape != grid.shape or len(grid) < 2:
            raise ConfigError(
                f"nominal curve shape {nominal.shape} does not match grid shape {grid.shape}"
            )
        if not np.all(np.isfinite(nominal)):
            raise ConfigError("nominal curve holds non-finite values; cannot set the scaling")
        sign = -1.0 if rising and nominal[-1] < nominal[0] else 1.0
        oriented = sign * nominal
        low, high = float(oriented.min()), float(oriented.max())
        half = 0.5 * (high - low)
        if half <= 0:
            raise ConfigError("nominal curve is flat (zero swing); cannot set the scaling")
        slope = np.gradient(oriented, grid)
        steepest = int(np.argmax(np.abs(slope)))
        max_slope = float(abs(slope[steepest]))
        input_scale = half / max_slope
        if anchor == "midpoint":
            level = low + half
            above = oriented >= level
            crossing = int(np.argmax(above[1:] != above[:-1]))
            y0, y1 = oriented[crossing] - level, oriented[crossing + 1] - level
            fraction = y0 / (y0 - y1) if y1 != y0 else 0.5
            x_origin = float(grid[crossing] + fraction * (grid[crossing + 1] - grid[crossing]))
            y_origin = level
        else:
            y_origin = low
            x_origin = float(grid[steepest] - (oriented[steepest] - low) / slope[steepest])
        return cls(
            input_offset=x_origin,
            input_scale=input_scale,
            output_offset=sign * y_origin,
            output_scale=sign * half,
        )

    def to_volts(self, u: np.ndarray) -> np.ndarray:
        """Network input → volts."""
        return self.input_offset + self.input_scale * np.asarray(u, dtype=np.float64)

    def to_network_input(self, x: np.ndarray) -> np.ndarray:
        """Volts → network input."""
        return (np.asarray(x, dtype=np.float64) - self.input_offset) / self.input_scale

    def to_network_output(self, y: np.ndarray) -> np.ndarray:
        """Circuit output (output unit) → network output."""
        return (np.asarray(y, dtype=np.float64) - self.output_offset) / self.output_scale

    def to_circuit_output(self, y: np.ndarray) -> np.ndarray:
        """Network output → circuit output (output unit)."""
        return self.output_offset + self.output_scale * np.asarray(y, dtype=np.float64)
