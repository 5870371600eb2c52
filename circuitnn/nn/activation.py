"""``CircuitActivation``: a layer of analog neurons, each with its own simulated transfer curve."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from circuitnn.errors import ConfigError
from circuitnn.family import Family
from circuitnn.nn._check import choice, integer
from circuitnn.nn._deprecated import resolve_family
from circuitnn.nn.fit import FORMS, choose_form, evaluate_fit, fit_curves
from circuitnn.nn.interp import EXTRAPOLATIONS, lookup, neuron_offsets, segment_table
from circuitnn.nn.random import SeedLike, cpu_generator
from circuitnn.nn.scaling import Scaling
from circuitnn.nn.tables import FamilyTables

MODES = ("sampled", "nominal", "fitted")
_EXACT = ("pool", "nominal_curve", "table", "sigma_pool", "nominal_sigma", "sigma_table")


def _neuron_shape(shape: int | Sequence[int]) -> tuple[int, ...]:
    if isinstance(shape, int | np.integer) and not isinstance(shape, bool):
        shape = (int(shape),)
    if not isinstance(shape, Sequence) or not shape:
        raise ConfigError(f"shape must be a positive int or a tuple of them, got {shape!r}")
    return tuple(integer("shape", size, minimum=1) for size in shape)


class CircuitActivation(nn.Module):
    """A layer of analog neurons whose activation functions come from a simulated family.

    Args:
        family: a :class:`~circuitnn.family.Family`, or a selector (key, key prefix or neuron name)
            of a family in ``store``.
        shape: the neurons of the layer, matching the trailing dimensions of the input: ``n`` for
            an MLP layer of width n (input ``(..., n)``); ``(C, 1, 1)`` for one neuron per channel
            of a conv layer (input ``(B, C, H, W)``, shared over positions); ``(C, H, W)`` for one
            neuron per position.
        store: path of the HDF5 store when ``family`` is a selector.
        mode: ``"sampled"`` (each neuron its own instance: inhomogeneous), ``"nominal"`` (every
            neuron the nominal curve: homogeneous) or ``"fitted"`` (each neuron an analytic fit of
            its sampled curve; see :mod:`circuitnn.nn.fit`). Settable later via :attr:`mode`.
        scaling: a :class:`Scaling` or an anchor name (``"midpoint"``, ``"knee"``) for
            :meth:`Scaling.from_nominal`; set once from the family's nominal curve.
        extrapolation: outside the simulated input range, ``"linear"`` continues each curve with
            its end slope, ``"clamp"`` holds the end value (zero gradient). See
            :mod:`circuitnn.nn.interp`.
        fit: the analytic form of ``"fitted"`` mode: ``"auto"`` (the better fit to the nominal),
            ``"tanh"`` or ``"softplus"``.
        generator: seed source of the first chip (int seed, CPU ``torch.Generator`` or None for
            torch's global RNG).
        branch: for a family with hysteresis swept both ways, ``"up"`` or ``"down"``: which
            branch the neurons follow; None (default): the family's main branch (its curves).

    Network input ``u`` stands for ``scaling.to_volts(u)`` volts; the output is the neuron's output
    in network units. A *chip* is the set of instances the neurons were drawn from (without
    replacement when the family has enough usable instances); it is saved in ``state_dict``
    (``chip``: instance indices into the family, ``table``: their curves, ``sigma_table``: their
    output noise when the family has noise data), so a saved model reloads the same chip.
    """

    def __init__(
        self,
        family: Family | str,
        shape: int | Sequence[int],
        *,
        store: str | Path | None = None,
        mode: str = "sampled",
        scaling: Scaling | str = "midpoint",
        extrapolation: str = "linear",
        fit: str = "auto",
        generator: SeedLike = None,
        branch: str | None = None,
    ) -> None:
        super().__init__()
        self.shape = _neuron_shape(shape)
        self._extrapolation = choice("extrapolation", extrapolation, EXTRAPOLATIONS)
        choice("fit", fit, ("auto", *FORMS))
        choice("mode", mode, MODES)
        tables = FamilyTables.from_family(resolve_family(family, store), scaling, branch)
        self.branch = branch
        self.tables = tables
        self.scaling = tables.scaling
        self.family_key = tables.key
        self.neuron = tables.neuron
        self.points = tables.points
        self._scale = tables.scaling.input_scale / tables.grid_step
        self._shift = (tables.scaling.input_offset - tables.grid_start) / tables.grid_step
        self.fit_form = choose_form(tables.network_grid, tables.nominal) if fit == "auto" else fit
        n = int(np.prod(self.shape))
        dtype = torch.get_default_dtype()
        exact = torch.float64
        # Curves are kept in float64 whatever the module's dtype (see _apply); the line tables
        # used by forward follow the module's dtype.
        self.register_buffer("pool", torch.as_tensor(tables.curves, dtype=exact), persistent=False)
        nominal = torch.as_tensor(tables.nominal, dtype=exact)[None, :]
        self.register_buffer("nominal_curve", nominal, persistent=False)
        self.register_buffer("offsets", neuron_offsets(self.shape, self.points), persistent=False)
        self.register_buffer("chip", torch.zeros(n, dtype=torch.long))
        self.register_buffer("table", torch.zeros(n, self.points, dtype=exact))
        rows = (n * (self.points + 1), 2)
        self.register_buffer("lines", torch.zeros(rows, dtype=dtype), persistent=False)
        self.register_buffer(
            "nominal_lines", torch.zeros(self.points + 1, 2, dtype=dtype), persistent=False
        )
        self.register_buffer(
            "fit_params", torch.zeros(*self.shape, 4, dtype=dtype), persistent=False
        )
        if tables.sigma is not None:
            sigma = torch.as_tensor(tables.sigma, dtype=exact)
            self.register_buffer("sigma_pool", sigma, persistent=False)
            median = sigma.median(dim=0).values[None, :]
            self.register_buffer("nominal_sigma", median, persistent=False)
            self.register_buffer("sigma_table", torch.zeros(n, self.points, dtype=exact))
            self.register_buffer("sigma_lines", torch.zeros(rows, dtype=dtype), persistent=False)
            self.register_buffer(
                "nominal_sigma_lines",
                torch.zeros(self.points + 1, 2, dtype=dtype),
                persistent=False,
            )
        else:
            self.register_buffer("sigma_pool", None, persistent=False)
            self.register_buffer("nominal_sigma", None, persistent=False)
            self.register_buffer("sigma_table", None)
        self._mode = mode
        self._fitted = False
        self.register_load_state_dict_post_hook(_after_load)
        self.resample(generator)

    # ----------------------------------------------------------------- chip

    @property
    def mode(self) -> str:
        """``"sampled"``, ``"nominal"`` or ``"fitted"`` (settable)."""
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        self._mode = choice("mode", mode, MODES)
        if mode == "fitted":
            self._ensure_fit()

    @property
    def extrapolation(self) -> str:
        """``"linear"`` or ``"clamp"`` outside the simulated input range (settable)."""
        return self._extrapolation

    @extrapolation.setter
    def extrapolation(self, extrapolation: str) -> None:
        self._extrapolation = choice("extrapolation", extrapolation, EXTRAPOLATIONS)
        self._refresh()

    @property
    def width(self) -> int:
        """Number of neurons."""
        return int(np.prod(self.shape))

    @property
    def has_noise(self) -> bool:
        """Whether the family had noise data (so :class:`~circuitnn.nn.CircuitNoise` can use it)."""
        return self.sigma_table is not None

    @torch.no_grad()
    def resample(self, generator: SeedLike = None) -> None:
        """Draw a new chip: ``width`` instances of the family (without replacement when enough
        usable instances exist), from ``generator`` (int seed, CPU generator, or None)."""
        source = cpu_generator(generator)
        pool = self.pool.shape[0]
        if self.width <= pool:
            picks = torch.randperm(pool, generator=source)[: self.width]
        else:
            picks = torch.randint(pool, (self.width,), generator=source)
        self.set_chip(picks.to(self.pool.device))

    @torch.no_grad()
    def set_chip(self, picks: torch.Tensor) -> None:
        """Use the usable instances ``picks`` (positions in the usable pool, (width,)) as the
        chip."""
        picks = torch.as_tensor(picks, dtype=torch.long, device=self.pool.device)
        if picks.shape != (self.width,):
            raise ConfigError(
                f"chip picks must have shape ({self.width},), got {tuple(picks.shape)}"
            )
        instances = torch.as_tensor(self.tables.instances, device=picks.device)
        self.chip.copy_(instances[picks])
        self.table.copy_(self.pool[picks])
        if self.sigma_pool is not None:
            self.sigma_table.copy_(self.sigma_pool[picks])
        self._refresh()

    def _lines(self, values: torch.Tensor, extrapolation: str) -> torch.Tensor:
        return segment_table(values, self._scale, self._shift, extrapolation, self.lines.dtype)

    def _apply(self, fn: Any, recurse: bool = True) -> CircuitActivation:
        # Moves and dtype casts apply to the line tables; the curves stay float64 (on the new
        # device), so a float64 model evaluates the family's curves exactly after .double().
        exact = {name: self._buffers[name] for name in _EXACT if self._buffers[name] is not None}
        super()._apply(fn, recurse)
        device = self.lines.device
        for name, tensor in exact.items():
            self._buffers[name] = tensor.to(device=device, dtype=torch.float64)
        self._refresh()
        return self

    @torch.no_grad()
    def _refresh(self) -> None:
        """Rebuild the derived line tables from the chip (after a resample, a load, a setting)."""
        self.lines.copy_(self._lines(self.table, self._extrapolation))
        self.nominal_lines.copy_(self._lines(self.nominal_curve, self._extrapolation))
        if self.sigma_table is not None:
            self.sigma_lines.copy_(self._lines(self.sigma_table, "clamp"))
            self.nominal_sigma_lines.copy_(self._lines(self.nominal_sigma, "clamp"))
        self._fitted = False
        if self._mode == "fitted":
            self._ensure_fit()

    @torch.no_grad()
    def _ensure_fit(self) -> None:
        if self._fitted:
            return
        table = self.table.detach().cpu().double().numpy()
        params, _ = fit_curves(self.fit_form, self.tables.network_grid, table)
        fitted = torch.as_tensor(params, dtype=self.fit_params.dtype, device=self.fit_params.device)
        self.fit_params.copy_(fitted.reshape(*self.shape, 4))
        self._fitted = True

    def chip_curves(self) -> np.ndarray:
        """The chip's curves in the family's output unit on the family grid ((width, K))."""
        table = self.table.detach().cpu().double().numpy()
        return self.scaling.to_circuit_output(table)

    # -------------------------------------------------------------- forward

    def _check(self, x: torch.Tensor) -> None:
        tail = x.shape[x.dim() - len(self.shape) :] if x.dim() >= len(self.shape) else ()
        if len(tail) != len(self.shape) or any(
            s != 1 and s != t for s, t in zip(self.shape, tail, strict=True)
        ):
            raise ConfigError(
                f"CircuitActivation of shape {self.shape} got input of shape {tuple(x.shape)}"
            )

    def _lookup(self, x: torch.Tensor, lines: torch.Tensor, per_neuron: bool) -> torch.Tensor:
        offsets = self.offsets if per_neuron else None
        return lookup(x, lines, offsets, self.points, self._scale, self._shift)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The neurons' outputs (network units) at network inputs ``x`` (..., *shape)."""
        self._check(x)
        if self._mode == "sampled":
            return self._lookup(x, self.lines, True)
        if self._mode == "nominal":
            return self._lookup(x, self.nominal_lines, False)
        self._ensure_fit()
        return evaluate_fit(self.fit_form, self.fit_params, x)

    def sigma(self, x: torch.Tensor) -> torch.Tensor:
        """RMS output noise σ_out (network units) of each neuron at network inputs ``x``: the
        chip's own (sampled and fitted modes) or the family's median (nominal mode); linear between
        the noise bias points, constant outside them."""
        if self.sigma_table is None:
            raise ConfigError(
                f"family {self.family_key[:12]} ({self.neuron}) has no noise data "
                "(Family.noise is None): extract it with the noise analysis to use circuit noise"
            )
        self._check(x)
        if self._mode == "nominal":
            return self._lookup(x, self.nominal_sigma_lines, False)
        return self._lookup(x, self.sigma_lines, True)

    def extra_repr(self) -> str:
        return (
            f"{self.neuron} [{self.family_key[:12]}], shape={self.shape}, mode={self._mode!r}, "
            f"extrapolation={self._extrapolation!r}, fit={self.fit_form!r}"
        )


def _after_load(module: nn.Module, incompatible: Any) -> None:
    if isinstance(module, CircuitActivation):
        with torch.no_grad():
            module._refresh()
