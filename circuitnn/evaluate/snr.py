"""Per-layer signal-to-noise ratio measured from activations.

At each named layer the clean activations (the model with all its noise silenced) are compared
with ``draws`` noisy passes (vectorized): signal power = the variance of the clean activations
over the samples, averaged over neurons; noise power = the mean square of noisy − clean over
draws, samples and neurons. Noise injected upstream shows up downstream, so the profile shows how
noise accumulates (or is suppressed) with depth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from circuitnn.errors import ConfigError
from circuitnn.evaluate.perturb import Perturbation, as_perturbation, perturbed, seeded_noise
from circuitnn.nn._check import integer
from circuitnn.nn.draws import draws as draw_dimension
from circuitnn.nn.model import activation_layers, quiet
from circuitnn.train.data import model_dtype


@dataclass(frozen=True)
class LayerSNR:
    """``signal`` and ``noise`` power (network units²) at one layer; ``snr`` their ratio and
    ``snr_db`` = 10·log10(snr)."""

    signal: float
    noise: float

    @property
    def snr(self) -> float:
        """Signal power over noise power (inf without noise)."""
        return self.signal / self.noise if self.noise > 0 else math.inf

    @property
    def snr_db(self) -> float:
        """The ratio in decibels."""
        return 10 * math.log10(self.snr) if self.noise > 0 and self.signal > 0 else math.inf


def _outputs(model: nn.Module, names: tuple[str, ...], x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Run ``model`` on ``x`` and return the outputs of the named layers (hooks registered last,
    so they see any noise injected after a layer)."""
    modules = dict(model.named_modules())
    store: dict[str, torch.Tensor] = {}
    handles = []
    try:
        for name in names:
            if name not in modules:
                raise ConfigError(f"no layer {name!r} in the model")

            def hook(
                module: nn.Module, args: object, output: torch.Tensor, name: str = name
            ) -> None:
                store[name] = output.detach()

            handles.append(modules[name].register_forward_hook(hook))
        model(x)
    finally:
        for handle in handles:
            handle.remove()
    return store


@torch.no_grad()
def layer_snr(
    model: nn.Module,
    x: torch.Tensor,
    *,
    layers: tuple[str, ...] | None = None,
    draws: int = 32,
    seed: int = 0,
    noise: Perturbation | str | None = None,
    noise_layers: tuple[str, ...] | None = None,
) -> dict[str, LayerSNR]:
    """SNR of the activations at ``layers`` (default: every activation layer and the last
    module) for inputs ``x``: the model's own noise (evaluation switches), plus ``noise`` at
    ``noise_layers`` when given (the layer's output is measured after that noise)."""
    integer("draws", draws, minimum=2)
    if layers is None:
        children = [name for name, _ in model.named_children()]
        layers = tuple(dict.fromkeys((*activation_layers(model), *children[-1:])))
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    x = torch.as_tensor(x).to(device)
    if x.is_floating_point():
        x = x.to(model_dtype(model))
    perturbation = as_perturbation(noise) if noise is not None else None
    was_training = model.training
    model.eval()
    try:
        with quiet(model):
            clean = _outputs(model, layers, x)
        repeated = x.repeat(draws, *([1] * (x.dim() - 1)))
        with (
            seeded_noise(model, seed),
            perturbed(model, perturbation, noise_layers, seed),
            draw_dimension(draws),
        ):
            noisy = _outputs(model, layers, repeated)
    finally:
        model.train(was_training)
    result = {}
    for name in layers:
        reference = clean[name]
        samples = noisy[name].reshape(draws, *reference.shape)
        signal = reference.reshape(reference.shape[0], -1).double().var(dim=0).mean()
        difference = (samples - reference.unsqueeze(0)).double()
        result[name] = LayerSNR(float(signal), float(difference.pow(2).mean()))
    return result
