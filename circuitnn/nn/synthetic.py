"""Synthetic families (analytic curves with per-instance spread): tests, examples and benchmarks
without SPICE."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time

import numpy as np

from circuitnn.errors import ConfigError
from circuitnn.family import Family, NoiseData
from circuitnn.nn._check import choice, integer, non_negative, positive

SHAPES = ("tanh", "sigmoid", "softplus")


def _shape(shape: str, z: np.ndarray) -> np.ndarray:
    if shape == "tanh":
        return np.tanh(z)
    if shape == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    return np.logaddexp(0.0, z)


def synthetic_family(
    shape: str = "tanh",
    n: int = 200,
    seed: int = 0,
    *,
    points: int = 201,
    span: float = 1.0,
    gain: float = 5.0,
    amplitude: float = 0.5,
    gain_spread: float = 0.1,
    offset_spread: float = 0.02,
    amplitude_spread: float = 0.05,
    noise: float | None = 1e-3,
    noise_bias_points: int = 9,
    failed: int = 0,
) -> Family:
    """A family of ``n`` curves ``y = A_i·f(g_i·(x - x_i))`` on a uniform grid of ``points`` inputs
    over [-``span``, ``span``] V, output in V.

    ``f`` is tanh, the logistic sigmoid or softplus (``shape``); the nominal instance has gain
    ``gain`` (1/V), offset 0 V and amplitude ``amplitude`` V; instance *i* has ``g_i = gain·(1 +
    gain_spread·z)``, ``x_i = offset_spread·z`` V and ``A_i = amplitude·(1 + amplitude_spread·z)``
    with independent standard normals ``z`` from ``numpy.random.default_rng(seed)``. ``noise`` V:
    the RMS output noise of the nominal at zero input; the noise grows with |slope| (σ_i(x) =
    noise·(0.5 + 0.5·slope_i(x)/slope_nominal(0))) at ``noise_bias_points`` bias points; ``None``
    gives a family without noise data. The last ``failed`` instances are marked failed (NaN curves).
    """
    choice("shape", shape, SHAPES)
    n = integer("n", n, minimum=1)
    points = integer("points", points, minimum=2)
    positive("span", span)
    positive("gain", gain)
    positive("amplitude", amplitude)
    for name, value in (
        ("gain_spread", gain_spread),
        ("offset_spread", offset_spread),
        ("amplitude_spread", amplitude_spread),
    ):
        non_negative(name, value)
    if noise is not None:
        non_negative("noise", noise)
        integer("noise_bias_points", noise_bias_points, minimum=1)
    integer("failed", failed, minimum=0)
    if failed >= n:
        raise ConfigError(f"failed must be below n={n}, got {failed}")
    rng = np.random.default_rng(seed)
    g = gain * (1 + gain_spread * rng.standard_normal(n))
    x0 = offset_spread * rng.standard_normal(n)
    a = amplitude * (1 + amplitude_spread * rng.standard_normal(n))
    grid = np.linspace(-span, span, points)
    curves = a[:, None] * _shape(shape, g[:, None] * (grid[None, :] - x0[:, None]))
    nominal = amplitude * _shape(shape, gain * grid)
    status = np.ones(n, dtype=np.int8)
    reasons = [""] * n
    if failed:
        curves[n - failed :] = np.nan
        status[n - failed :] = 2
        reasons[n - failed :] = ["synthetic failure"] * failed
    parameters = np.stack([g, x0, a], axis=1)
    noise_data = None
    if noise is not None:
        bias = np.linspace(-span, span, noise_bias_points)
        eps = 1e-6
        slope = (
            a[:, None]
            * (
                _shape(shape, g[:, None] * (bias[None, :] + eps - x0[:, None]))
                - _shape(shape, g[:, None] * (bias[None, :] - eps - x0[:, None]))
            )
            / (2 * eps)
        )
        reference = amplitude * (_shape(shape, gain * eps) - _shape(shape, -gain * eps)) / (2 * eps)
        sigma = noise * (0.5 + 0.5 * np.abs(slope) / reference)
        sigma[status != 1] = np.nan
        frequency = np.array([1.0, 1e3, 1e6])
        psd = np.repeat((sigma**2 / 1e6)[:, :, None], len(frequency), axis=2)
        values = {
            "bias": bias,
            "frequency": frequency,
            "psd": psd,
            "input_psd": psd.copy(),
            "sigma": sigma,
            "bandwidth": 1e6,
            "white": sigma**2 / 1e6,
            "flicker": np.zeros_like(sigma),
            "alpha": np.ones_like(sigma),
            "status": status.copy(),
            "reasons": list(reasons),
            "key": "noise-synthetic",
        }
        names = {item.name for item in dataclasses.fields(NoiseData)}
        noise_data = NoiseData(**{k: v for k, v in values.items() if k in names})
    settings = {
        "shape": shape,
        "n": n,
        "seed": seed,
        "points": points,
        "span": span,
        "gain": gain,
        "amplitude": amplitude,
        "spreads": [gain_spread, offset_spread, amplitude_spread],
        "noise": noise,
        "noise_bias_points": noise_bias_points,
        "failed": failed,
    }
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:40]
    from circuitnn.family.descriptors import describe

    return Family(
        key=key,
        neuron=f"synthetic_{shape}",
        grid=grid,
        curves=curves,
        nominal_curve=nominal,
        supply_current=np.zeros((n, 0, points)),
        supplies=(),
        input_current=np.zeros((n, 1, points)),
        power=np.zeros((n, points)),
        parameter_names=("gain", "offset", "amplitude"),
        parameters=parameters,
        chip=np.arange(n),
        status=status,
        reasons=reasons,
        descriptors=describe(grid, curves, np.zeros((n, points))),
        output_unit="V",
        attrs={
            "neuron": f"synthetic_{shape}",
            "n": n,
            "seed": seed,
            "temperature": 27.0,
            "corner": "",
            "nominal_parameters": json.dumps({"gain": gain, "offset": 0.0, "amplitude": amplitude}),
            "supplies": "[]",
            "output_unit": "V",
            "output_quantity": "voltage",
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "synthetic": json.dumps(settings),
        },
        noise=noise_data,
    )
