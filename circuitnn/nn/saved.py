"""What a :class:`~circuitnn.nn.CircuitActivation` saves besides its curves: its family's identity.

A layer's ``state_dict`` holds its chip (``chip``, ``table``, ``nominal_curve`` and, with noise
data, ``sigma_table``, ``nominal_sigma``) and, as ``identity``, a :class:`SavedLayer`: which family
the chip came from, the scaling and grid its tables are expressed on, and the layer's settings.
That is everything the layer computes with, so a model reloads without the family's store. The
identity is UTF-8 JSON in a uint8 tensor, so a state_dict holds tensors only: ``torch.load(...,
weights_only=True)``, safetensors and code that handles every entry as a tensor all keep working.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import torch

from circuitnn.errors import ConfigError
from circuitnn.nn._check import choice, number, positive
from circuitnn.nn.fit import FORMS
from circuitnn.nn.interp import EXTRAPOLATIONS
from circuitnn.nn.scaling import Scaling

FORMAT = 1
MODES = ("sampled", "nominal", "fitted")
_SCALING = ("input_offset", "input_scale", "output_offset", "output_scale")


@dataclass(frozen=True)
class SavedLayer:
    """A layer's family (``key``, ``neuron``, ``output_unit``), the ``scaling`` and uniform grid
    (``grid_start`` V, ``grid_step`` V) of its tables, and its settings (``fit_form``, ``mode``,
    ``extrapolation``, and the sweep ``branch`` it follows: None, "up" or "down")."""

    key: str
    neuron: str
    output_unit: str
    scaling: Scaling
    grid_start: float
    grid_step: float
    fit_form: str
    mode: str
    extrapolation: str
    branch: str | None = None

    def family_name(self) -> str:
        """``"<key prefix> (<neuron>)"``: how errors name the family."""
        return f"{self.key[:12]} ({self.neuron})"

    def to_tensor(self, device: torch.device | None = None) -> torch.Tensor:
        """The identity as UTF-8 JSON bytes in a uint8 tensor (floats round-trip exactly)."""
        text = json.dumps(self.to_dict(), sort_keys=True).encode()
        return torch.frombuffer(bytearray(text), dtype=torch.uint8).to(device)

    @classmethod
    def from_tensor(cls, tensor: Any, where: str) -> SavedLayer:
        """Read back :meth:`to_tensor`; ConfigError naming ``where`` if it is not one."""
        if not isinstance(tensor, torch.Tensor) or tensor.dtype != torch.uint8 or tensor.dim() != 1:
            raise ConfigError(
                f"{where} must be a 1-D uint8 tensor (UTF-8 JSON), got {tensor!r:.80}"
            )
        try:
            data = json.loads(tensor.cpu().numpy().tobytes().decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as error:
            raise ConfigError(f"{where} does not hold UTF-8 JSON: {error}") from None
        return cls.from_dict(data, where)

    def to_dict(self) -> dict[str, Any]:
        """The identity as plain values."""
        return {
            "format": FORMAT,
            "family_key": self.key,
            "neuron": self.neuron,
            "output_unit": self.output_unit,
            "scaling": {name: getattr(self.scaling, name) for name in _SCALING},
            "grid_start": self.grid_start,
            "grid_step": self.grid_step,
            "fit_form": self.fit_form,
            "mode": self.mode,
            "extrapolation": self.extrapolation,
            "branch": self.branch,
        }

    @classmethod
    def from_dict(cls, extra: Any, where: str) -> SavedLayer:
        """Read back :meth:`to_dict`; ConfigError naming ``where`` and the field."""
        if not isinstance(extra, dict):
            raise ConfigError(f"{where} must be a dict, got {type(extra).__name__}")
        if extra.get("format") != FORMAT:
            raise ConfigError(f"{where}.format must be {FORMAT}, got {extra.get('format')!r}")

        def text(name: str) -> str:
            value = extra.get(name)
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{where}.{name} must be a non-empty string, got {value!r}")
            return value

        scaling = extra.get("scaling")
        if not isinstance(scaling, dict) or set(scaling) != set(_SCALING):
            raise ConfigError(f"{where}.scaling must be a dict with keys {', '.join(_SCALING)}")
        return cls(
            key=text("family_key"),
            neuron=text("neuron"),
            output_unit=text("output_unit"),
            scaling=Scaling(**{name: scaling[name] for name in _SCALING}),
            grid_start=number(f"{where}.grid_start", extra.get("grid_start")),
            grid_step=positive(f"{where}.grid_step", extra.get("grid_step")),
            fit_form=choice(f"{where}.fit_form", extra.get("fit_form"), FORMS),
            mode=choice(f"{where}.mode", extra.get("mode"), MODES),
            extrapolation=choice(
                f"{where}.extrapolation", extra.get("extrapolation"), EXTRAPOLATIONS
            ),
            branch=_branch(f"{where}.branch", extra.get("branch")),
        )


def _branch(where: str, value: Any) -> str | None:
    if value is not None and value not in ("up", "down"):
        raise ConfigError(f"{where} must be null, 'up' or 'down', got {value!r}")
    return value


def before_load(module: Any, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    """Check the saved family against the layer's (or fill an empty layer from it) before torch
    copies the tensors (a load_state_dict pre-hook of :class:`~circuitnn.nn.CircuitActivation`)."""
    where = f"{prefix}identity"
    layer = f"layer {prefix.rstrip('.')!r}" if prefix else "the layer"
    if where not in state_dict:
        if module.empty:
            raise ConfigError(
                f"cannot fill the empty CircuitActivation {layer}: the state_dict has no "
                f"{where!r} (its family's identity); was it saved from a CircuitActivation?"
            )
        return  # torch reports the missing key
    saved = SavedLayer.from_tensor(state_dict[where], where)
    if module.empty:
        table = state_dict.get(f"{prefix}table")
        if not isinstance(table, torch.Tensor) or table.dim() != 2 or table.shape[1] < 2:
            raise ConfigError(f"{prefix}table must be a (neurons, grid points >= 2) tensor")
        module._adopt(saved, int(table.shape[1]), f"{prefix}sigma_table" in state_dict)
        module.identity = state_dict[where].detach().clone().to(module.fit_params.device)
        return
    if saved.key != module.family_key:
        raise ConfigError(
            f"cannot load the state_dict into {layer}: it holds a chip of family "
            f"{saved.family_name()}, but this CircuitActivation was built from family "
            f"{module.family_name()}; build it from that family, or with family=None to take "
            "the family from the state_dict"
        )
    if (saved.scaling, (saved.grid_start, saved.grid_step)) != (module.scaling, module._grid):
        raise ConfigError(
            f"cannot load the state_dict into {layer}: family {saved.family_name()} was saved "
            f"with {saved.scaling} on grid start {saved.grid_start:g} V, step "
            f"{saved.grid_step:g} V, this layer uses {module.scaling} on start "
            f"{module._grid[0]:g} V, step {module._grid[1]:g} V"
        )
    module.fit_form, module._mode, module._extrapolation = (
        saved.fit_form,
        saved.mode,
        saved.extrapolation,
    )
    module.identity = state_dict[where].detach().clone().to(module.fit_params.device)
