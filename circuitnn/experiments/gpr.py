"""GPR-optimal neuron activation functions of a one-hidden-layer network, and how closely a circuit
curve can take their shape.

**The idea** (Manzhos and Ihara's neural networks with optimal neuron activation functions from
additive Gaussian process regression, 2023): a first-order *additive* Gaussian process over
redundant coordinates ``y_i = w_i·x`` (i = 1…N, more or other directions than inputs) has the
posterior mean ``f(x) = Σ_i f_i(w_i·x)`` — exactly a one-hidden-layer network with first-layer
weights ``w_i``, a linear readout and an activation function ``f_i`` of its own for every neuron.

**What "optimal" means here.** The directions are fixed first (rows of a seeded Gaussian matrix,
each normalized to unit length and then scaled so that ``y_i`` has unit variance over the training
inputs). The kernel is ``k(x, x') = c·Σ_i exp(−(y_i − y'_i)²/(2ℓ²)) + s²·δ(x, x')``; its amplitude
``c``, length ``ℓ`` and noise ``s²`` maximize the marginal likelihood of the training targets
(scikit-learn's :class:`~sklearn.gaussian_process.GaussianProcessRegressor`). The posterior mean
is then the Bayes-optimal (minimum expected squared error) predictor under that prior among the
functions of the additive form, and each neuron's **optimal activation** is its component

    f_i(t) = c·Σ_j α_j·exp(−(t − y_{j,i})²/(2ℓ²)),  α = (K + s²I)⁻¹·y,

a smooth function of the neuron's input ``t`` in the units of ``y_i``. :func:`fit_additive_gpr`
fits it and :class:`AdditiveGPR` evaluates ``f_i``; :meth:`AdditiveGPR.predict` checks that
the components add up to the regressor's own prediction.

**Matching a circuit.** A circuit neuron realizes ``a·g(b·t + d) + e``: the network's first-layer
weight and bias scale and shift its input, the readout weight and bias its output; ``g`` is the
circuit's nominal curve in network units (:class:`~circuitnn.nn.Scaling`). :func:`match_shape`
finds ``a, b, d, e`` by least squares over the training points (``a`` and ``e`` solved linearly for
each ``b, d``; ``b, d`` refined by :func:`scipy.optimize.least_squares` from a small grid of starts)
and reports the fraction of the activation's variance over the data the circuit shape leaves
unexplained (0: a perfect match, 1: no better than a constant). The input gain is kept within
:data:`GAIN_BOUNDS` (per unit standard deviation of the neuron's input) and the shift within
±:data:`SHIFT_BOUND` network units, and the circuit's output must swing over the data (its
standard deviation at least :data:`MIN_SWING` network units, half the nominal swing being one;
enforced by a penalty): a smaller gain, or an operating point far out on a saturated tail, would
run the circuit on a sliver of its curve where any smooth curve looks linear, and the large
readout weight needed then multiplies the circuit's mismatch and noise just as much (a
near-linear optimal activation would otherwise "match" every circuit and wreck every circuit
network).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import (
    ConstantKernel,
    Hyperparameter,
    Kernel,
    StationaryKernelMixin,
    WhiteKernel,
)

from circuitnn.errors import ConfigError

Curve = Callable[[np.ndarray], np.ndarray]
GAIN_BOUNDS = (0.25, 8.0)  # b, network input units per standard deviation of the neuron input
SHIFT_BOUND = 3.0  # |d|, network input units (one unit moves the nominal's steepest part by one)
MIN_SWING = 0.1  # std over the data of the circuit's output, network units (half swing = 1)


class AdditiveRBF(StationaryKernelMixin, Kernel):
    """``k(y, y') = Σ_i exp(−(y_i − y'_i)²/(2ℓ²))`` over the columns of the (projected) inputs:
    a first-order additive squared-exponential kernel with one length ``ℓ`` (``length_scale``)."""

    def __init__(
        self, length_scale: float = 1.0, length_scale_bounds: tuple[float, float] = (1e-2, 1e2)
    ) -> None:
        self.length_scale = length_scale
        self.length_scale_bounds = length_scale_bounds

    @property
    def hyperparameter_length_scale(self) -> Hyperparameter:
        """The length ℓ, fitted on a log scale within its bounds."""
        return Hyperparameter("length_scale", "numeric", self.length_scale_bounds)

    def __call__(
        self, X: np.ndarray, Y: np.ndarray | None = None, eval_gradient: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """The kernel matrix (and its gradient by log ℓ when ``eval_gradient``)."""
        first = np.atleast_2d(X)
        second = first if Y is None else np.atleast_2d(Y)
        if eval_gradient and Y is not None:
            raise ValueError("the gradient is only available for Y = None")
        squared = (first[:, None, :] - second[None, :, :]) ** 2
        scale = 2.0 * self.length_scale**2
        parts = np.exp(-squared / scale)
        matrix = parts.sum(axis=-1)
        if not eval_gradient:
            return matrix
        gradient = (parts * squared / self.length_scale**2).sum(axis=-1)[:, :, None]
        return matrix, gradient

    def diag(self, X: np.ndarray) -> np.ndarray:
        """The kernel's diagonal: the number of components at every point."""
        return np.full(np.atleast_2d(X).shape[0], float(np.atleast_2d(X).shape[1]))


@dataclass
class AdditiveGPR:
    """A fitted additive GP: ``directions`` (N × D, rows ``w_i / s_i``: projected coordinates of
    unit training variance), ``points`` (n × N, the training inputs' coordinates), ``alpha`` (n),
    ``amplitude`` ``c``, ``length`` ``ℓ``, ``noise`` ``s²`` and the sklearn ``regressor``."""

    directions: np.ndarray
    points: np.ndarray
    alpha: np.ndarray
    amplitude: float
    length: float
    noise: float
    regressor: GaussianProcessRegressor

    @property
    def neurons(self) -> int:
        """N, the number of components (hidden neurons)."""
        return int(self.directions.shape[0])

    def coordinates(self, x: np.ndarray) -> np.ndarray:
        """The neurons' inputs ``y = x·directionsᵀ`` (n × N)."""
        return np.asarray(x, dtype=np.float64) @ self.directions.T

    def activation(self, neuron: int, t: np.ndarray) -> np.ndarray:
        """The optimal activation ``f_i(t)`` of ``neuron`` at inputs ``t`` (its coordinate)."""
        t = np.asarray(t, dtype=np.float64)
        column = self.points[:, neuron]
        weights = np.exp(-((t[:, None] - column[None, :]) ** 2) / (2.0 * self.length**2))
        return self.amplitude * weights @ self.alpha

    def predict(self, x: np.ndarray) -> np.ndarray:
        """``Σ_i f_i(y_i)``, the posterior mean as a one-hidden-layer network; equal (to rounding)
        to the regressor's own prediction, which this checks."""
        y = self.coordinates(x)
        total = sum(self.activation(i, y[:, i]) for i in range(self.neurons))
        reference = self.regressor.predict(y)
        if not np.allclose(total, reference, rtol=1e-6, atol=1e-8 * (1 + np.abs(reference).max())):
            raise ConfigError("the additive GP's components do not add up to its prediction")
        return np.asarray(total)


def directions(inputs: int, neurons: int, x: np.ndarray, seed: int) -> np.ndarray:
    """``neurons`` random unit directions in ``inputs`` dimensions, each divided by the standard
    deviation of its coordinate over ``x`` (so every coordinate has unit variance)."""
    if neurons < 1:
        raise ConfigError(f"neurons must be >= 1, got {neurons}")
    rng = np.random.default_rng(seed)
    rows = rng.standard_normal((neurons, inputs))
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    spread = (np.asarray(x, dtype=np.float64) @ rows.T).std(axis=0)
    if np.any(spread <= 0):
        raise ConfigError("a direction has no spread over the training inputs")
    return rows / spread[:, None]


def fit_additive_gpr(
    x: np.ndarray, y: np.ndarray, neurons: int, seed: int, restarts: int = 2
) -> AdditiveGPR:
    """Fit the additive GP of the module docstring to standardized inputs ``x`` (n × D) and
    targets ``y`` (n; zero prior mean)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    rows = directions(x.shape[1], neurons, x, seed)
    points = x @ rows.T
    kernel = ConstantKernel(1.0 / neurons, (1e-4, 1e2)) * AdditiveRBF(1.0) + WhiteKernel(
        0.05, (1e-6, 1.0)
    )
    regressor = GaussianProcessRegressor(
        kernel, normalize_y=False, n_restarts_optimizer=restarts, random_state=seed
    )
    regressor.fit(points, y)
    fitted = regressor.kernel_
    return AdditiveGPR(
        directions=rows,
        points=points,
        alpha=np.asarray(regressor.alpha_, dtype=np.float64).reshape(-1),
        amplitude=float(fitted.k1.k1.constant_value),
        length=float(fitted.k1.k2.length_scale),
        noise=float(fitted.k2.noise_level),
        regressor=regressor,
    )


@dataclass(frozen=True)
class ShapeMatch:
    """The best ``a·g(b·t + d) + e`` fit of a curve ``g`` to an activation over the data:
    ``scale`` a, ``gain`` b, ``shift`` d, ``offset`` e, and ``unexplained``: the residual's share
    of the activation's variance (0 perfect, 1 no better than a constant)."""

    scale: float
    gain: float
    shift: float
    offset: float
    unexplained: float

    def __call__(self, curve: Curve, t: np.ndarray) -> np.ndarray:
        """The fitted circuit activation at ``t``."""
        return self.scale * curve(self.gain * np.asarray(t) + self.shift) + self.offset


def _linear_part(curve: Curve, t: np.ndarray, f: np.ndarray, gain: float, shift: float):
    """For fixed ``b, d``: the least-squares ``a, e`` and the residuals, with one more entry that
    penalizes an output swing below :data:`MIN_SWING` (zero above it)."""
    g = curve(gain * t + shift)
    design = np.stack([g, np.ones_like(g)], axis=1)
    (scale, offset), *_ = np.linalg.lstsq(design, f, rcond=None)
    residual = design @ np.array([scale, offset]) - f
    shortfall = max(0.0, 1.0 - float(np.std(g)) / MIN_SWING)
    penalty = 10.0 * shortfall * float(np.std(f)) * np.sqrt(len(f))
    return float(scale), float(offset), np.append(residual, penalty)


def match_shape(
    curve: Curve,
    t: np.ndarray,
    f: np.ndarray,
    gains: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0),
    shifts: tuple[float, ...] = (-2.0, -1.0, 0.0, 1.0, 2.0),
) -> ShapeMatch:
    """Fit ``a·curve(b·t + d) + e`` to the activation values ``f`` at the data points ``t``
    (module docstring; ``b`` within :data:`GAIN_BOUNDS` and ``|d|`` within :data:`SHIFT_BOUND`,
    the grid of starts inside them)."""
    t = np.asarray(t, dtype=np.float64)
    f = np.asarray(f, dtype=np.float64)
    variance = float(np.var(f))
    if not variance > 0:
        raise ConfigError("the activation is constant over the data: nothing to match")
    # start from the best of a small grid of (b, d), then refine both by least squares
    low, high = GAIN_BOUNDS
    starts = sorted(
        ((min(max(b, low), high), d) for b in gains for d in shifts),
        key=lambda p: float(np.sum(_linear_part(curve, t, f, *p)[2] ** 2)),
    )[:3]
    best: tuple[float, float, float] | None = None
    for gain, shift in starts:
        found = least_squares(
            lambda p: _linear_part(curve, t, f, p[0], p[1])[2],
            x0=np.array([gain, shift]),
            bounds=([GAIN_BOUNDS[0], -SHIFT_BOUND], [GAIN_BOUNDS[1], SHIFT_BOUND]),
            method="trf",
        )
        cost = float(np.sum(found.fun**2))
        if best is None or cost < best[0]:
            best = (cost, float(found.x[0]), float(found.x[1]))
    assert best is not None
    _, gain, shift = best
    scale, offset, residual = _linear_part(curve, t, f, gain, shift)
    unexplained = float(np.sum(residual[:-1] ** 2)) / (len(f) * variance)
    return ShapeMatch(scale, gain, shift, offset, float(min(max(unexplained, 0.0), 1.0)))


def linear(t: np.ndarray) -> np.ndarray:
    """The identity: the reference shape of a linear neuron."""
    return np.asarray(t, dtype=np.float64)


def tanh(t: np.ndarray) -> np.ndarray:
    """tanh: the reference shape of a conventional neuron."""
    return np.tanh(np.asarray(t, dtype=np.float64))


__all__ = [
    "AdditiveGPR",
    "AdditiveRBF",
    "ShapeMatch",
    "fit_additive_gpr",
    "linear",
    "match_shape",
    "tanh",
]
