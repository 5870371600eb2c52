"""Settings of the small-signal and transient analyses run on a family beyond its DC sweep.

Frozen dataclasses, validated against a spec; their ``identity()`` is hashed into the key under
which the results are stored beside the family, so asking again is a cache hit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from typing import TypeGuard

import numpy as np

from circuitnn.errors import ConfigError
from circuitnn.neuron.spec import NeuronSpec
from circuitnn.neuron.units import shown

# Bias points of a noise analysis: each is an ngspice noise run of every instance (the bias
# inputs are allocated when a campaign is checked, so an absurd count must not get that far)
MAX_BIAS_POINTS = 10_000


def _positive_int(value: object, field: str, most: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{field} must be a positive integer, got {shown(value)}")
    if most is not None and value > most:
        raise ConfigError(f"{field} must be at most {most}, got {shown(value)}")
    return value


def _finite(value: object) -> TypeGuard[int | float]:
    """Whether ``value`` is a real number (not a bool) that converts to a finite float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond the float range
        return False


def _positive(value: object, field: str) -> float:
    if not _finite(value):
        raise ConfigError(f"{field} must be a finite number, got {shown(value)}")
    if value <= 0:
        raise ConfigError(f"{field} must be positive, got {value!r}")
    return float(value)


def _frequency_grid(fmin: float, fmax: float, points_per_decade: int) -> None:
    _positive(fmin, "fmin (Hz)")
    _positive(fmax, "fmax (Hz)")
    _positive_int(points_per_decade, "points_per_decade")
    if not fmax > fmin:
        raise ConfigError(f"fmax ({fmax:g} Hz) must exceed fmin ({fmin:g} Hz)")


NOISE_NETLIST_REVISION = 2  # part of a noise analysis' key (see NoiseAnalysis.identity)


def analysis_key(kind: str, identity: dict[str, object]) -> str:
    """Short content hash naming one analysis of a family (``noise-…`` or ``speed-…``)."""
    text = json.dumps(identity, sort_keys=True, default=float)
    return f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


@dataclass(frozen=True)
class NoiseAnalysis:
    """Output noise spectra of every instance at several bias points of the input sweep.

    ``bias_points`` evenly spaced inputs across the sweep (inclusive), or explicit ``bias`` volts;
    frequencies ``fmin``…``fmax`` Hz with ``points_per_decade``; ``bandwidth`` (Hz) is the signal
    bandwidth over which σ_out is integrated (from ``fmin``). ``input_referred`` adds an ``.ac`` at
    each bias to refer the noise to the input (about half of ngspice's time; without it
    ``input_psd`` is NaN).
    """

    bias_points: int = 9
    bias: tuple[float, ...] | None = None
    fmin: float = 1.0
    fmax: float = 1e9
    points_per_decade: int = 10
    bandwidth: float = 1e6
    input_referred: bool = True

    def __post_init__(self) -> None:
        _positive_int(self.bias_points, "bias_points", most=MAX_BIAS_POINTS)
        if not isinstance(self.input_referred, bool):
            raise ConfigError(f"input_referred must be true or false, got {self.input_referred!r}")
        _frequency_grid(self.fmin, self.fmax, self.points_per_decade)
        _positive(self.bandwidth, "bandwidth (Hz)")
        if self.bandwidth <= self.fmin:
            raise ConfigError(
                f"bandwidth ({self.bandwidth:g} Hz) must exceed fmin ({self.fmin:g} Hz): "
                "the integration band would be empty"
            )
        if self.bias is not None:
            if not isinstance(self.bias, tuple | list):
                raise ConfigError(f"bias: expected a list of volts, got {shown(self.bias)}")
            if len(self.bias) == 0:
                raise ConfigError("bias: give at least one bias point (V)")
            if len(self.bias) > MAX_BIAS_POINTS:
                raise ConfigError(
                    f"bias: at most {MAX_BIAS_POINTS} bias points, got {len(self.bias)}"
                )
            for value in self.bias:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ConfigError(f"bias: {shown(value)} is not a number")
                if not _finite(value):
                    raise ConfigError(f"bias: {shown(value)} is not a finite number")

    def biases(self, spec: NeuronSpec) -> np.ndarray:
        """The bias inputs (V); :class:`ConfigError` if one lies outside the spec's sweep."""
        sweep = spec.sweep
        if self.bias is None:
            return np.linspace(sweep.start, sweep.stop, self.bias_points)
        values = np.asarray(self.bias, dtype=np.float64)
        outside = values[(values < sweep.start) | (values > sweep.stop)]
        if len(outside):
            raise ConfigError(
                f"bias {outside[0]:g} V lies outside the input sweep of {spec.name} "
                f"({sweep.start:g}…{sweep.stop:g} V)"
            )
        return values

    def identity(self, spec: NeuronSpec) -> dict[str, object]:
        """What determines the results (the resolved bias points included, and the revision of
        the noise chunk netlist: a batch found its operating points held to the stored curves
        before revision 2, which can move a spectrum in its last digits)."""
        data = dataclasses.asdict(self)
        data["bias"] = [float(b) for b in self.biases(spec)]
        data.pop("bias_points")
        data["netlist"] = NOISE_NETLIST_REVISION
        return data


@dataclass(frozen=True)
class SpeedAnalysis:
    """Small-signal bandwidth and large-signal settling of every instance.

    ``bias`` (V) is where the ``.ac`` analysis linearizes (default: the nominal curve's midpoint);
    frequencies ``fmin``…``fmax`` Hz with ``points_per_decade``. The transient steps the input from
    the sweep's start to its stop in ``rise_time`` seconds (default 1/1000 of the simulated time)
    and the settling time is when the output stays within ``tolerance`` (fraction of the instance's
    own step) of its final value. ``stop_time`` (s) defaults to 20 time constants of the slowest
    instance, from the ``.ac`` result.
    """

    bias: float | None = None
    fmin: float = 1.0
    fmax: float = 1e12
    points_per_decade: int = 10
    tolerance: float = 0.02
    rise_time: float | None = None
    stop_time: float | None = None

    def __post_init__(self) -> None:
        _frequency_grid(self.fmin, self.fmax, self.points_per_decade)
        if _positive(self.tolerance, "tolerance") >= 0.5:
            raise ConfigError(f"tolerance must be in (0, 0.5), got {self.tolerance!r}")
        for name in ("rise_time", "stop_time"):
            value = getattr(self, name)
            if value is not None:
                _positive(value, f"{name} (s)")
        if self.bias is not None and not _finite(self.bias):
            raise ConfigError(f"bias must be a finite number of volts, got {shown(self.bias)}")

    def check(self, spec: NeuronSpec) -> None:
        """:class:`ConfigError` if ``bias`` lies outside the spec's input sweep."""
        sweep = spec.sweep
        if self.bias is not None and not sweep.start <= self.bias <= sweep.stop:
            raise ConfigError(
                f"bias {self.bias:g} V lies outside the input sweep of {spec.name} "
                f"({sweep.start:g}…{sweep.stop:g} V)"
            )

    def identity(self) -> dict[str, object]:
        """What determines the results."""
        return dataclasses.asdict(self)
