"""The Monte Carlo side of :func:`~circuitnn.evaluate.propagation.propagate_noise`: the noisy
network run ``draws`` times (vectorized) and the variance over draws measured at each reported
layer, to check the analytic prediction against."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from circuitnn.evaluate.montecarlo import MAX_ROWS
from circuitnn.evaluate.snr import _outputs
from circuitnn.nn.draws import draws as draw_dimension


@dataclass
class Measurement:
    """What the noisy passes measured at one layer: per-sample variances over draws (chunk by
    chunk), squared deviations per draw, the sums of neuron pairs' covariances and of variances,
    and per-sample covariance matrices when asked (network units²)."""

    variance: list[torch.Tensor] = field(default_factory=list)
    per_draw: torch.Tensor | None = None  # Σ of squared deviations per draw (D,)
    pair_sum: float = 0.0
    trace: float = 0.0
    covariance: list[torch.Tensor] = field(default_factory=list)


@torch.no_grad()
def measure(
    model: nn.Module,
    x: torch.Tensor,
    names: list[str],
    draws: int,
    covariance: bool,
) -> dict[str, Measurement]:
    """Variances over ``draws`` noisy passes at ``names`` (the noise already in place)."""
    found = {name: Measurement() for name in names}
    chunk = max(1, MAX_ROWS // draws)
    for start in range(0, x.shape[0], chunk):
        rows = x[start : start + chunk]
        with draw_dimension(draws, batch=rows.shape[0]):
            outputs = _outputs(model, tuple(names), rows)
        for name in names:
            out = outputs[name].reshape(outputs[name].shape[0], -1).double()
            if out.shape[0] == rows.shape[0]:  # no noise source before: every draw the same
                deviation = out.new_zeros((draws, *out.shape))
            else:
                out = out.reshape(draws, rows.shape[0], -1)
                deviation = out - out.mean(dim=0)
            variance = deviation.square().sum(dim=0) / (draws - 1)
            record = found[name]
            record.variance.append(variance)
            per_draw = deviation.square().sum(dim=(1, 2))
            record.per_draw = per_draw if record.per_draw is None else record.per_draw + per_draw
            total = float(deviation.sum(dim=-1).square().sum()) / (draws - 1)
            record.trace += float(variance.sum())
            record.pair_sum += total - float(variance.sum())
            if covariance:
                outer = torch.einsum("dbi,dbj->bij", deviation, deviation) / (draws - 1)
                record.covariance.append(outer)
    return found
