"""Analytic fits of activation curves (in network units), batched over neurons.

Forms (``p = (a, log b, c, d)``, ``b > 0``):

- ``"tanh"``: ``a·tanh(b·(u - c)) + d`` (sigmoid-shaped curves; a logistic is the same family);
- ``"softplus"``: ``a·softplus(b·(u - c))/b + d`` (ReLU-shaped curves: slope ``a`` far right,
  knee at ``c``, knee sharpness ``b``).

Every row is fitted by its own Levenberg–Marquardt least-squares iteration, all rows at once in
numpy (no per-neuron Python loop). :func:`choose_form` picks the form with the lower squared error
on a reference curve (the family's nominal).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from circuitnn.errors import ConfigError

FORMS = ("tanh", "softplus")


def _evaluate(form: str, p: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values (n×K) and Jacobian (n×K×4) of ``form`` with parameters ``p`` (n×4) at ``u`` (K,)."""
    a, b, c = p[:, 0:1], np.exp(p[:, 1:2]), p[:, 2:3]
    shifted = u[None, :] - c
    z = b * shifted
    jacobian = np.empty((*z.shape, 4))
    if form == "tanh":
        th = np.tanh(z)
        dz = a * (1 - th**2)
        y = a * th + p[:, 3:4]
        jacobian[..., 0] = th
        jacobian[..., 1] = dz * z  # d/dlog b = b·d/db = dz·b·shifted
        jacobian[..., 2] = -dz * b
    else:
        softplus = np.logaddexp(0.0, z)
        sigmoid = 0.5 * (1 + np.tanh(0.5 * z))
        y = a * softplus / b + p[:, 3:4]
        jacobian[..., 0] = softplus / b
        jacobian[..., 1] = a * (sigmoid * z - softplus) / b
        jacobian[..., 2] = -a * sigmoid
    jacobian[..., 3] = 1.0
    return y, jacobian


def _initial(form: str, u: np.ndarray, curves: np.ndarray) -> np.ndarray:
    low, high = curves.min(axis=1), curves.max(axis=1)
    rising = curves[:, -1] >= curves[:, 0]
    slope = np.gradient(curves, u, axis=1)
    steepest = np.argmax(np.abs(slope), axis=1)
    rows = np.arange(len(curves))
    max_slope = np.maximum(np.abs(slope[rows, steepest]), 1e-12)
    span = float(u[-1] - u[0])
    p = np.zeros((len(curves), 4))
    if form == "tanh":
        half = np.maximum(0.5 * (high - low), 1e-12)
        p[:, 0] = np.where(rising, half, -half)
        p[:, 1] = np.log(np.maximum(max_slope / half, 1e-6))
        middle = 0.5 * (high + low)
        p[:, 2] = u[np.argmin(np.abs(curves - middle[:, None]), axis=1)]
        p[:, 3] = middle
    else:
        end_slope = (curves[:, -1] - curves[:, -2]) / (u[-1] - u[-2])
        floor = np.where(end_slope >= 0, low, high)
        p[:, 0] = np.where(np.abs(end_slope) > 1e-12, end_slope, max_slope)
        p[:, 1] = np.log(20.0 / span)
        p[:, 2] = u[-1] - (curves[:, -1] - floor) / p[:, 0]
        p[:, 3] = floor
    return p


def fit_curves(
    form: str, u: np.ndarray, curves: np.ndarray, iterations: int = 200
) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares parameters (n×4, ``(a, log b, c, d)``) of ``form`` for each row of ``curves``
    (n×K) sampled at ``u`` (K,), and each row's RMS residual (n,)."""
    if form not in FORMS:
        raise ConfigError(f"fit form must be one of {FORMS}, got {form!r}")
    u = np.asarray(u, dtype=np.float64)
    curves = np.atleast_2d(np.asarray(curves, dtype=np.float64))
    _check_grid(u, curves)
    p = _initial(form, u, curves)
    y, jacobian = _evaluate(form, p, u)
    cost = np.sum((y - curves) ** 2, axis=1)
    damping = np.full(len(curves), 1e-3)
    eye = np.eye(4)
    for _ in range(iterations):
        residual = y - curves
        normal = np.einsum("nki,nkj->nij", jacobian, jacobian)
        gradient = np.einsum("nki,nk->ni", jacobian, residual)
        diagonal = np.einsum("nii->ni", normal)
        system = normal + damping[:, None, None] * (diagonal[:, :, None] * eye + 1e-12 * eye)
        try:
            step = np.linalg.solve(system, -gradient[..., None])[..., 0]
        except np.linalg.LinAlgError:
            break
        trial = p + step
        trial[:, 1] = np.clip(trial[:, 1], -20, 20)
        y_trial, jacobian_trial = _evaluate(form, trial, u)
        cost_trial = np.sum((y_trial - curves) ** 2, axis=1)
        better = np.isfinite(cost_trial) & (cost_trial < cost)
        p = np.where(better[:, None], trial, p)
        y = np.where(better[:, None], y_trial, y)
        jacobian = np.where(better[:, None, None], jacobian_trial, jacobian)
        converged = np.all(~better | (cost - cost_trial <= 1e-15 * (1 + cost)))
        cost = np.where(better, cost_trial, cost)
        damping = np.where(better, damping / 3, damping * 4).clip(1e-12, 1e12)
        if converged and np.all(damping > 1e6):
            break
    return p, np.sqrt(cost / curves.shape[1])


def _check_grid(u: np.ndarray, curves: np.ndarray) -> None:
    """Refuse a grid no curve can be fitted on (the initial guess divides by its steps)."""
    if u.ndim != 1 or len(u) < 2:
        raise ConfigError(f"a fit needs a 1-D grid of at least 2 inputs, got shape {u.shape}")
    if not np.all(np.isfinite(u)) or np.any(np.diff(u) <= 0):
        raise ConfigError(
            f"a fit needs a finite, strictly increasing grid, got {len(u)} inputs from "
            f"{u[0]:g} to {u[-1]:g} (not increasing at input {_first_bad(u)})"
        )
    if curves.shape[1] != len(u):
        raise ConfigError(f"curves have {curves.shape[1]} points but the grid has {len(u)}")


def _first_bad(u: np.ndarray) -> int:
    """The index of the first input that is not finite or not above the one before."""
    bad = ~np.isfinite(u)
    bad[1:] |= ~(np.diff(u) > 0)
    return int(np.argmax(bad))


def choose_form(u: np.ndarray, curve: np.ndarray) -> str:
    """The form with the lower RMS residual on ``curve`` (K,) sampled at ``u``."""
    errors = {form: float(fit_curves(form, u, curve[None, :])[1][0]) for form in FORMS}
    return min(errors, key=errors.__getitem__)


def evaluate_fit(form: str, params: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """``form`` with per-neuron parameters at ``u``; ``params`` (..., 4) broadcasts against ``u``
    with the parameter index last (differentiable in ``u``)."""
    a, b, c, d = params.unbind(-1)
    b = b.exp()
    if form == "tanh":
        return a * torch.tanh(b * (u - c)) + d
    return a * F.softplus(b * (u - c)) / b + d
