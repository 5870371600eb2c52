"""A family prepared for the torch side: its usable instances as tables in network units."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from circuitnn.errors import ConfigError
from circuitnn.family import Family
from circuitnn.nn._check import choice
from circuitnn.nn.scaling import ANCHORS, Scaling


@dataclass(frozen=True)
class FamilyTables:
    """The usable instances of a family, in network units, on its uniform grid.

    ``instances`` (M,) indices into the family of the instances kept (status ok, finite curve and,
    when the family has noise, finite σ); ``curves`` (M×K) and ``nominal`` (K,) in network units;
    ``sigma`` (M×K) RMS output noise in network units on the grid (σ_out/|output_scale|, linearly
    interpolated between the noise bias points and held constant outside them) or None;
    ``grid_start`` V and ``grid_step`` V of the uniform grid; ``scaling`` shared by all instances.
    """

    key: str
    neuron: str
    output_unit: str
    instances: np.ndarray
    curves: np.ndarray
    nominal: np.ndarray
    sigma: np.ndarray | None
    grid_start: float
    grid_step: float
    scaling: Scaling

    @property
    def points(self) -> int:
        """Grid points K."""
        return self.curves.shape[1]

    @property
    def network_grid(self) -> np.ndarray:
        """The grid in network input units (K,)."""
        grid = self.grid_start + self.grid_step * np.arange(self.points)
        return self.scaling.to_network_input(grid)

    @classmethod
    def from_family(
        cls, family: Family, scaling: Scaling | str = "midpoint", branch: str | None = None
    ) -> FamilyTables:
        """Validate ``family`` (uniform grid, usable instances) and convert it.

        ``branch``: which sweep branch of a family with hysteresis to use, ``"up"`` or
        ``"down"`` (a family swept ``"both"`` ways stores both); None, the default, is the
        family's main branch (``family.curves``)."""
        grid = np.asarray(family.grid, dtype=np.float64)
        if grid.ndim != 1 or len(grid) < 2:
            raise ConfigError(f"family {family.key[:12]}: grid must be 1-D with >= 2 points")
        step = (grid[-1] - grid[0]) / (len(grid) - 1)
        if step <= 0 or not np.allclose(np.diff(grid), step, rtol=1e-6, atol=1e-12 * abs(step)):
            raise ConfigError(
                f"family {family.key[:12]}: input grid is not uniform and increasing "
                "(CircuitActivation needs a uniform sweep)"
            )
        if branch is not None:
            choice("branch", branch, ("up", "down"))
        try:
            chosen, nominal = family.branch(branch)
        except ValueError as error:
            raise ConfigError(str(error)) from None
        main = chosen is family.curves
        curves = np.asarray(chosen, dtype=np.float64)
        keep = np.asarray(family.ok) & np.all(np.isfinite(curves), axis=1)
        noise = family.noise
        if noise is not None and not main:
            raise ConfigError(
                f"family {family.key[:12]}: its noise was simulated at operating points on its "
                f"main branch, not the {branch!r} branch; use branch=None, or a family without "
                "noise"
            )
        if noise is not None:
            sigma_volts = np.asarray(noise.sigma, dtype=np.float64)
            keep &= np.all(np.isfinite(sigma_volts), axis=1)
            noise_status = getattr(noise, "status", None)
            if noise_status is not None:
                keep &= np.asarray(noise_status) == 1
        instances = np.flatnonzero(keep)
        if len(instances) == 0:
            raise ConfigError(f"family {family.key[:12]} has no usable (ok, finite) instances")
        if isinstance(scaling, str):
            choice("scaling", scaling, ANCHORS)
            scaling = Scaling.from_nominal(grid, nominal, anchor=scaling)
        elif not isinstance(scaling, Scaling):
            raise ConfigError(f"scaling must be a Scaling or one of {ANCHORS}, got {scaling!r}")
        sigma = None
        if noise is not None:
            bias = np.asarray(noise.bias, dtype=np.float64)
            rows = sigma_volts[instances]
            if len(bias) == 1:
                on_grid = np.repeat(rows, len(grid), axis=1)
            else:
                on_grid = np.stack([np.interp(grid, bias, row) for row in rows])
            sigma = on_grid / abs(scaling.output_scale)
        return cls(
            key=family.key,
            neuron=family.neuron,
            output_unit=family.output_unit,
            instances=instances,
            curves=scaling.to_network_output(curves[instances]),
            nominal=scaling.to_network_output(nominal),
            sigma=sigma,
            grid_start=float(grid[0]),
            grid_step=float(step),
            scaling=scaling,
        )
