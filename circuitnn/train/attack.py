"""Projected sign-gradient attack on the weights inside a relative box ±ζ·|θ|.

Shared by adversarial-weight-perturbation training and the worst-case evaluation: starting from a
random point of the box (or its centre), ``steps`` times move every parameter by
``step_fraction·ζ·|θ|`` in the sign of the objective's gradient, then clip back into the box. The
result is a perturbation δ (detached) with ``|δ| ≤ ζ·|θ|`` elementwise.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from circuitnn.nn._check import integer, non_negative, positive

Parameters = dict[str, torch.Tensor]


def perturbable(model: nn.Module, biases: bool = True) -> dict[str, nn.Parameter]:
    """The trainable parameters an attack may move (biases too unless ``biases=False``)."""
    return {
        name: parameter
        for name, parameter in model.named_parameters()
        if parameter.requires_grad and (biases or not name.endswith("bias"))
    }


def shifted(params: dict[str, nn.Parameter], delta: Parameters) -> Parameters:
    """``θ + δ`` as tensors that stay differentiable in θ (for ``torch.func.functional_call``)."""
    return {name: parameter + delta[name] for name, parameter in params.items()}


def projected_attack(
    params: dict[str, nn.Parameter],
    objective: Callable[[Parameters], torch.Tensor],
    zeta: float,
    steps: int = 5,
    step_fraction: float | None = None,
    generator: torch.Generator | None = None,
    random_start: bool = True,
) -> Parameters:
    """The perturbation δ (``|δ| ≤ ζ|θ|``) that increases ``objective(θ + δ)``.

    ``objective`` maps perturbed parameters (name → tensor) to a scalar; it is differentiated with
    respect to δ only. ``step_fraction`` of the box half-width per step (default ``2.5/steps``);
    ``generator`` (CPU) draws the random start.
    """
    non_negative("zeta", zeta)
    integer("steps", steps, minimum=0)
    fraction = (
        2.5 / max(steps, 1) if step_fraction is None else positive("step_fraction", step_fraction)
    )
    bounds = {name: zeta * p.detach().abs() for name, p in params.items()}
    delta: Parameters = {}
    for name, bound in bounds.items():
        if random_start:
            noise = torch.rand(bound.shape, generator=generator, dtype=torch.float64)
            delta[name] = (2 * noise - 1).to(bound) * bound
        else:
            delta[name] = torch.zeros_like(bound)
    if zeta == 0 or steps == 0:
        return delta
    base = {name: p.detach() for name, p in params.items()}
    for _ in range(steps):
        moving = {name: d.clone().requires_grad_(True) for name, d in delta.items()}
        value = objective({name: base[name] + moving[name] for name in base})
        grads = torch.autograd.grad(value, list(moving.values()), allow_unused=True)
        with torch.no_grad():
            for (name, d), grad in zip(moving.items(), grads, strict=True):
                if grad is None:
                    delta[name] = d.detach()
                    continue
                step = d.detach() + fraction * bounds[name] * grad.sign()
                delta[name] = torch.maximum(torch.minimum(step, bounds[name]), -bounds[name])
    return delta
