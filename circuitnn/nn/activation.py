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
from circuitnn.nn.saved import MODES, SavedLayer, before_load
from circuitnn.nn.scaling import Scaling
from circuitnn.nn.tables import FamilyTables

_EXACT = ("pool", "nominal_curve", "table", "sigma_pool", "nominal_sigma", "sigma_table")
_SAVED = ("identity", "chip", "table", "nominal_curve", "sigma_table", "nominal_sigma")
_DERIVED = ("pool", "sigma_pool", "offsets", "lines", "nominal_lines")
_DERIVED_NOISE = ("sigma_lines", "nominal_sigma_lines")


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
            of a family in ``store``; or None for an *empty* layer that ``load_state_dict`` fills
            (family identity, scaling, chip and settings all come from the state_dict; until
            then the layer cannot run).
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
    replacement when the family has enough usable instances). ``state_dict`` holds everything the
    layer computes with: ``chip`` (instance indices into the family), ``table`` (their curves),
    ``nominal_curve``, with noise data ``sigma_table`` and ``nominal_sigma``, and ``identity``:
    the family's key and neuron, the scaling, the grid and the settings (mode, extrapolation, fit
    form) as UTF-8 JSON in a uint8 tensor (see :mod:`circuitnn.nn.saved`). ``load_state_dict``
    restores all of it; into a layer built from another family it raises ConfigError naming both
    families. A layer filled from a state_dict has no other instances of its family:
    :meth:`resample` needs the layer built from the family.
    """

    def __init__(
        self,
        family: Family | str | None,
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
        self._mode = choice("mode", mode, MODES)
        self._fitted = False
        self.tables: FamilyTables | None = None
        self.family_key: str | None = None
        self.neuron: str | None = None
        self.output_unit: str | None = None
        self.scaling: Scaling | None = None
        self.points: int | None = None
        self.fit_form: str | None = None if fit == "auto" else fit
        self.branch: str | None = branch
        # fit_params exists from the start, so an empty layer follows .to()/.double() too.
        dtype = torch.get_default_dtype()
        self.register_buffer(
            "fit_params", torch.zeros(*self.shape, 4, dtype=dtype), persistent=False
        )
        for name in _SAVED:
            self.register_buffer(name, None)
        for name in _DERIVED + _DERIVED_NOISE:
            self.register_buffer(name, None, persistent=False)
        self.register_load_state_dict_pre_hook(before_load)
        self.register_load_state_dict_post_hook(_after_load)
        if family is None:
            return
        tables = FamilyTables.from_family(resolve_family(family, store), scaling, branch)
        self.tables = tables
        saved = SavedLayer(
            key=tables.key,
            neuron=tables.neuron,
            output_unit=tables.output_unit,
            scaling=tables.scaling,
            grid_start=tables.grid_start,
            grid_step=tables.grid_step,
            fit_form=self.fit_form or choose_form(tables.network_grid, tables.nominal),
            mode=self._mode,
            extrapolation=self._extrapolation,
            branch=branch,
        )
        self._adopt(saved, tables.points, tables.sigma is not None)
        exact = torch.float64
        # Curves are kept in float64 whatever the module's dtype (see _apply); the line tables
        # used by forward follow the module's dtype.
        self.pool = torch.as_tensor(tables.curves, dtype=exact)
        self.nominal_curve.copy_(torch.as_tensor(tables.nominal, dtype=exact)[None, :])
        if tables.sigma is not None:
            self.sigma_pool = torch.as_tensor(tables.sigma, dtype=exact)
            self.nominal_sigma.copy_(self.sigma_pool.median(dim=0).values[None, :])
        self.resample(generator)

    def _adopt(self, saved: SavedLayer, points: int, has_noise: bool) -> None:
        """Take the family's identity, scaling, grid and settings from ``saved`` and allocate the
        tables of ``points`` grid points (on the module's device; lines in its dtype)."""
        self.family_key, self.neuron, self.output_unit = saved.key, saved.neuron, saved.output_unit
        self.scaling, self.points, self.fit_form = saved.scaling, points, saved.fit_form
        self._mode, self._extrapolation = saved.mode, saved.extrapolation
        self.branch = saved.branch
        self._grid = (saved.grid_start, saved.grid_step)
        self._scale = saved.scaling.input_scale / saved.grid_step
        self._shift = (saved.scaling.input_offset - saved.grid_start) / saved.grid_step
        n, device, dtype = self.width, self.fit_params.device, self.fit_params.dtype
        exact = {"dtype": torch.float64, "device": device}
        rows = (n * (points + 1), 2)
        self.chip = torch.zeros(n, dtype=torch.long, device=device)
        self.table = torch.zeros(n, points, **exact)
        self.nominal_curve = torch.zeros(1, points, **exact)
        self.offsets = neuron_offsets(self.shape, points, device)
        self.lines = torch.zeros(rows, dtype=dtype, device=device)
        self.nominal_lines = torch.zeros(points + 1, 2, dtype=dtype, device=device)
        if has_noise:
            self.sigma_table = torch.zeros(n, points, **exact)
            self.nominal_sigma = torch.zeros(1, points, **exact)
            self.sigma_lines = torch.zeros(rows, dtype=dtype, device=device)
            self.nominal_sigma_lines = torch.zeros(points + 1, 2, dtype=dtype, device=device)

    def _saved(self) -> SavedLayer:
        start, step = self._grid
        return SavedLayer(
            key=self.family_key,
            neuron=self.neuron,
            output_unit=self.output_unit,
            scaling=self.scaling,
            grid_start=start,
            grid_step=step,
            fit_form=self.fit_form,
            mode=self._mode,
            extrapolation=self._extrapolation,
            branch=self.branch,
        )

    @property
    def empty(self) -> bool:
        """Whether the layer was built without a family and no state_dict has filled it yet."""
        return self.family_key is None

    def family_name(self) -> str:
        """``"<key prefix> (<neuron>)"`` of the layer's family (``"none (empty layer)"``)."""
        return "none (empty layer)" if self.empty else self._saved().family_name()

    def _require_family(self) -> None:
        if self.empty:
            raise ConfigError(
                "this CircuitActivation was built without a family (family=None): load a "
                "state_dict saved from a CircuitActivation into it, or build it from a Family"
            )

    def _write_identity(self) -> None:
        """Keep the ``identity`` buffer in step with the family and the settings."""
        if not self.empty:
            self.identity = self._saved().to_tensor(self.fit_params.device)

    # ----------------------------------------------------------------- chip

    @property
    def mode(self) -> str:
        """``"sampled"``, ``"nominal"`` or ``"fitted"`` (settable; an empty layer takes the saved
        mode when a state_dict fills it)."""
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        self._mode = choice("mode", mode, MODES)
        self._write_identity()
        if mode == "fitted" and not self.empty:  # an empty layer takes its mode from the load
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
        self._require_pool()
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
        self._require_pool()
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

    def _require_pool(self) -> None:
        self._require_family()
        if self.pool is None:
            raise ConfigError(
                f"family {self.family_name()}: this layer was filled from a state_dict, which "
                "holds its chip but not the family's other instances; to draw chips, build the "
                "layer from the Family (and load the state_dict into it)"
            )

    def _lines(self, values: torch.Tensor, extrapolation: str) -> torch.Tensor:
        return segment_table(values, self._scale, self._shift, extrapolation, self.lines.dtype)

    def _apply(self, fn: Any, recurse: bool = True) -> CircuitActivation:
        # Moves and dtype casts apply to the line tables; the curves stay float64 (on the new
        # device), so a float64 model evaluates the family's curves exactly after .double().
        exact = {name: self._buffers[name] for name in _EXACT if self._buffers[name] is not None}
        super()._apply(fn, recurse)
        device = self.fit_params.device
        for name, tensor in exact.items():
            self._buffers[name] = tensor.to(device=device, dtype=torch.float64)
        self._refresh()
        return self

    @torch.no_grad()
    def _refresh(self) -> None:
        """Rebuild the derived line tables from the chip (after a resample, a load, a setting)."""
        if self.empty:
            return
        self._write_identity()
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
        start, step = self._grid
        grid = self.scaling.to_network_input(start + step * np.arange(self.points))
        params, _ = fit_curves(self.fit_form, grid, table)
        fitted = torch.as_tensor(params, dtype=self.fit_params.dtype, device=self.fit_params.device)
        self.fit_params.copy_(fitted.reshape(*self.shape, 4))
        self._fitted = True

    def chip_curves(self) -> np.ndarray:
        """The chip's curves in the family's output unit on the family grid ((width, K))."""
        self._require_family()
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
        self._require_family()
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
        self._require_family()
        if self.sigma_table is None:
            raise ConfigError(
                f"family {self.family_name()} has no noise data "
                "(Family.noise is None): extract it with the noise analysis to use circuit noise"
            )
        self._check(x)
        if self._mode == "nominal":
            return self._lookup(x, self.nominal_sigma_lines, False)
        return self._lookup(x, self.sigma_lines, True)

    def extra_repr(self) -> str:
        if self.empty:
            return f"empty (family=None, filled by load_state_dict), shape={self.shape}"
        return (
            f"{self.neuron} [{self.family_key[:12]}], shape={self.shape}, mode={self._mode!r}, "
            f"extrapolation={self._extrapolation!r}, fit={self.fit_form!r}"
        )


def _after_load(module: nn.Module, incompatible: Any) -> None:
    if isinstance(module, CircuitActivation):
        with torch.no_grad():
            module._refresh()
