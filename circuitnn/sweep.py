"""Design sweeps: one Monte Carlo family per point of a parameter grid (a designer's main loop)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from circuitnn.circuits import get_neuron
from circuitnn.errors import ConfigError
from circuitnn.family import Family
from circuitnn.pipeline import RunOptions, extract_family
from circuitnn.spec import NeuronSpec
from circuitnn.store import Store
from circuitnn.units import parse_spice

TEMPERATURE = "temperature"


@dataclass(frozen=True)
class SweepPoint:
    """One grid point (parameter → value, SI units; ``temperature`` in °C) and its family."""

    point: dict[str, float]
    family: Family


def parse_grid(assignments: list[str]) -> dict[str, list[float]]:
    """Parse ``["w=1u,2u,4u", "ibias=10u,20u"]`` into ``{"w": [1e-6, 2e-6, 4e-6], ...}``."""
    grid: dict[str, list[float]] = {}
    for text in assignments:
        name, sep, values = text.partition("=")
        name = name.strip().lower()
        if not sep or not name or not values.strip():
            raise ConfigError(f"--param {text!r}: expected NAME=V1,V2,... (e.g. w=1u,2u,4u)")
        if name in grid:
            raise ConfigError(f"--param {name}: given twice")
        grid[name] = [parse_spice(value, f"--param {name}") for value in values.split(",")]
    return grid


def grid_points(grid: dict[str, list[float]]) -> list[dict[str, float]]:
    """Every combination of the grid's values (the last parameter varies fastest)."""
    names = list(grid)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*grid.values())]


def apply_point(spec: NeuronSpec, point: dict[str, float]) -> NeuronSpec:
    """The spec with a grid point's values (``temperature`` sets the simulation temperature)."""
    values = {k: v for k, v in point.items() if k != TEMPERATURE}
    updated = spec.with_parameters(**values) if values else spec
    return updated.with_temperature(point[TEMPERATURE]) if TEMPERATURE in point else updated


def sweep_families(
    neuron: str | Path | NeuronSpec,
    grid: dict[str, list[float]],
    n: int = 500,
    seed: int = 0,
    *,
    store: str | Path | Store | None = None,
    options: RunOptions | None = None,
    **monte_carlo: Any,
) -> list[SweepPoint]:
    """Extract one family per grid point (same seed at every point: common random numbers).

    ``grid`` maps parameter names (or ``temperature``) to value lists; extra keyword arguments
    (``chip_size``, ``corner``) go to :func:`~circuitnn.pipeline.extract_family`.
    """
    spec = get_neuron(neuron)
    if not grid:
        raise ConfigError("a sweep needs at least one parameter with values")
    for name in grid:
        if name != TEMPERATURE and name not in spec.parameters:
            raise ConfigError(
                f"sweep parameter {name!r} is not a parameter of {spec.name} "
                f"(has {', '.join(spec.parameters)}, or temperature)"
            )
    points = grid_points(grid)
    results = []
    for number, point in enumerate(points, start=1):
        label = ", ".join(f"{k}={v:g}" for k, v in point.items())
        if options is None or options.progress:
            print(f"[{number}/{len(points)}] {spec.name}: {label}", flush=True)
        family = extract_family(
            apply_point(spec, point), n, seed, store=store, options=options, **monte_carlo
        )
        results.append(SweepPoint(point=point, family=family))
    return results
