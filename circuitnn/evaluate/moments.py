"""The first two moments of a noisy signal, carried through one layer at a time without sampling.

A :class:`Moments` holds, per input sample, the clean signal ``mean`` (B, N) and the covariance of
the noise perturbation around it: the full ``cov`` (B, N, N) or, in diagonal mode, only the
variances (B, N). Each function below maps the moments before a layer to the moments after it
(all in network units, float64):

- linear ``y = W x + b``: ``mean ↦ W·mean + b``, ``Σ ↦ W Σ Wᵀ`` (exact); per-forward weight noise
  adds, independently per output ``i``, ``σ²·Σ_k E[x_k²] (+σ²)`` (additive) or
  ``σ²·Σ_k W_ik² E[x_k²] (+σ² b_i²)`` (multiplicative), with ``E[x_k²] = mean_k² + Σ_kk`` (exact);
- elementwise activation ``f``: linearized at the clean pre-activation (the operating point),
  ``mean ↦ f(mean)``, ``Σ ↦ diag(s) Σ diag(s)`` with ``s = f'(mean)`` (a CircuitActivation's
  per-neuron segment slope, by autograd);
- additive noise ``x + σ z``: ``Σ ↦ Σ + σ² C``; multiplicative noise ``x (1 + σ z)``:
  ``Σ ↦ Σ + σ² C ∘ (Σ + mean meanᵀ)`` (exact: the noise variance follows the signal, σ²·x²);
  mixed noise composes the two in its order; circuit noise ``f(x) + scale·σ_out(x)·z`` adds
  ``scale² σ_out(mean)_i σ_out(mean)_j C_ij``. Here ``C = ρ 11ᵀ + (1 − ρ) I`` is the correlation
  of the draws ``z`` (ρ shared by the layer).

Diagonal mode ignores the correlations between neurons that shared weights create, so it is exact
only where every noise source is uncorrelated and no linear layer lies between a source and the
point measured; it is an approximation (good for wide random layers) elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from circuitnn.nn.weights import WeightNoiseSpec


@dataclass(frozen=True)
class Moments:
    """Clean ``mean`` (B, N) and noise covariance ``cov`` (B, N, N), or the variances (B, N) when
    ``diagonal``; network units, float64."""

    mean: torch.Tensor
    cov: torch.Tensor

    @property
    def diagonal(self) -> bool:
        """Whether only the variances are carried."""
        return self.cov.dim() == 2

    @property
    def variance(self) -> torch.Tensor:
        """Per-neuron noise variance (B, N)."""
        return self.cov if self.diagonal else torch.diagonal(self.cov, dim1=-2, dim2=-1)

    @classmethod
    def clean(cls, x: torch.Tensor, diagonal: bool) -> Moments:
        """The noiseless input ``x`` (B, N)."""
        mean = x.detach().to(torch.float64)
        batch, width = mean.shape
        shape = (batch, width) if diagonal else (batch, width, width)
        return cls(mean, mean.new_zeros(shape))


def _correlated(moments: Moments, scale: torch.Tensor, rho: float) -> torch.Tensor:
    """The covariance ``scale_i scale_j C_ij`` of draws ``scale·z`` with layer correlation ρ
    (``scale`` (B, N) or broadcastable), in the shape of ``moments.cov``."""
    scale = torch.broadcast_to(scale, moments.mean.shape)
    if moments.diagonal:
        return scale.square()
    outer = scale.unsqueeze(-1) * scale.unsqueeze(-2)
    if rho == 0.0:
        return torch.diag_embed(scale.square())
    correlation = torch.full_like(outer[0], rho)
    correlation.diagonal().fill_(1.0)
    return outer * correlation


def additive(moments: Moments, sigma: float, rho: float) -> Moments:
    """After ``x + σ z`` (σ network units, correlation ρ)."""
    noise = _correlated(moments, moments.mean.new_tensor(sigma), rho)
    return Moments(moments.mean, moments.cov + noise)


def multiplicative(moments: Moments, sigma: float, rho: float) -> Moments:
    """After ``x·(1 + σ z)`` (σ relative, correlation ρ): exact second moments."""
    mean, cov = moments.mean, moments.cov
    if moments.diagonal:
        return Moments(mean, cov + sigma**2 * (cov + mean.square()))
    second = cov + mean.unsqueeze(-1) * mean.unsqueeze(-2)  # E[x_i x_j]
    correlation = _correlated(moments, mean.new_ones(()), rho)
    return Moments(mean, cov + sigma**2 * correlation * second)


def mixed(moments: Moments, sigma_a: float, sigma_m: float, order: str, rho: float) -> Moments:
    """After :class:`~circuitnn.nn.MixedNoise` (independent additive and multiplicative draws)."""
    if order == "additive_first":
        return multiplicative(additive(moments, sigma_a, rho), sigma_m, rho)
    return additive(multiplicative(moments, sigma_m, rho), sigma_a, rho)


def circuit(moments: Moments, sigma_out: torch.Tensor, scale: float, rho: float) -> Moments:
    """After the activation, the circuit's own noise ``scale·σ_out(x)·z`` with σ_out (B, N)
    evaluated at the operating point."""
    noise = _correlated(moments, scale * sigma_out.detach().to(torch.float64), rho)
    return Moments(moments.mean, moments.cov + noise)


def elementwise(
    moments: Moments, function: Callable[[torch.Tensor], torch.Tensor], dtype: torch.dtype
) -> tuple[Moments, torch.Tensor]:
    """Through an elementwise activation linearized at the operating point: the new moments and
    the slopes ``f'(mean)`` (B, N). ``function`` (a module's ``forward``, so that no hook adds
    noise to the operating point) runs in ``dtype`` (the model's)."""
    with torch.enable_grad():
        point = moments.mean.to(dtype).detach().requires_grad_(True)
        value = function(point)
        (slope,) = torch.autograd.grad(value.sum(), point)
    slope = slope.detach().to(torch.float64)
    mean = value.detach().to(torch.float64)
    if moments.diagonal:
        cov = moments.cov * slope.square()
    else:
        cov = moments.cov * (slope.unsqueeze(-1) * slope.unsqueeze(-2))
    return Moments(mean, cov), slope


def linear(
    moments: Moments,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    noise: WeightNoiseSpec | None = None,
) -> Moments:
    """Through ``y = W x + b`` (``weight`` (N', N) and ``bias`` as the layer uses them, i.e. with a
    chip's fixed mismatch applied) with optional per-forward weight ``noise``."""
    weight = weight.detach().to(torch.float64)
    mean = moments.mean @ weight.T
    if bias is not None:
        bias = bias.detach().to(torch.float64)
        mean = mean + bias
    diagonal = moments.diagonal
    cov = moments.cov @ weight.square().T if diagonal else weight @ moments.cov @ weight.T
    if noise is not None and noise.sigma > 0:
        second = moments.mean.square() + moments.variance  # E[x_k²] (B, N)
        sigma2 = noise.sigma**2
        if noise.kind == "additive":
            extra = sigma2 * second.sum(dim=-1, keepdim=True).expand_as(mean)
            if bias is not None and noise.biases:
                extra = extra + sigma2
        else:
            extra = sigma2 * (second @ weight.square().T)
            if bias is not None and noise.biases:
                extra = extra + sigma2 * bias.square()
        cov = cov + extra if moments.diagonal else cov + torch.diag_embed(extra)
    return Moments(mean, cov)
