"""Design sweeps: one Monte Carlo family per point of a parameter grid (a designer's main loop).

One progress bar runs over the whole sweep (every point, every analysis: rate and time left);
each point's family streams into the store, and only its bookkeeping stays in memory when the
caller asks for ``arrays=False``, so memory does not grow with the number of points.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from circuitnn.errors import ConfigError
from circuitnn.extract.journaled import overall_progress, progress_bar
from circuitnn.extract.options import RunOptions
from circuitnn.extract.pipeline import extract_family
from circuitnn.family import Family
from circuitnn.neuron.builtin import get_neuron
from circuitnn.neuron.spec import NeuronSpec
from circuitnn.neuron.units import parse_spice
from circuitnn.store import Store

TEMPERATURE = "temperature"


@dataclass(frozen=True)
class SweepPoint:
    """One grid point (parameter → value, SI units; ``temperature`` in °C) and its family;
    ``seconds`` of wall time it took (≈ 0 when it came from the store's cache)."""

    point: dict[str, float]
    family: Family
    seconds: float = 0.0


def parse_grid(assignments: list[str]) -> dict[str, list[float]]:
    """Parse ``["w=1u,2u,4u", "ibias=10u,20u"]`` into ``{"w": [1e-6, 2e-6, 4e-6], ...}``."""
    grid: dict[str, list[float]] = {}
    if isinstance(assignments, str):
        raise ConfigError(f"--param: expected a list of NAME=V1,V2,... texts, got {assignments!r}")
    for text in assignments:
        if not isinstance(text, str):
            raise ConfigError(f"--param {text!r}: expected a NAME=V1,V2,... text")
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
    **extract: Any,
) -> list[SweepPoint]:
    """Extract one family per grid point (same seed at every point: common random numbers).

    ``grid`` maps parameter names (or ``temperature``) to value lists; extra keyword arguments
    (``chip_size``, ``corner``, ``noise``, ``speed``, ``arrays``) go to
    :func:`~circuitnn.extract.pipeline.extract_family`.
    """
    return list(iterate_sweep(neuron, grid, n, seed, store=store, options=options, **extract))


def iterate_sweep(
    neuron: str | Path | NeuronSpec,
    grid: dict[str, list[float]],
    n: int = 500,
    seed: int = 0,
    *,
    store: str | Path | Store | None = None,
    options: RunOptions | None = None,
    **extract: Any,
) -> Iterator[SweepPoint]:
    """:func:`sweep_families`, one point at a time, under one progress bar over all points."""
    spec = get_neuron(neuron)
    points = check_grid(spec, grid)
    specs = [apply_point(spec, point) for point in points]  # every point checked before any runs
    options = options or RunOptions()
    analyses = (
        1
        + (extract.get("noise") not in (None, False))
        + 2 * (extract.get("speed") not in (None, False))
    )
    per_point = n * analyses
    bar = progress_bar(
        per_point * len(points), 0, spec.name, options.progress, leave=True, unit="sim"
    )
    try:
        for number, point in enumerate(points, start=1):
            label = ", ".join(f"{k}={v:g}" for k, v in point.items())
            bar.set_description_str(f"[{number}/{len(points)}] {label}", refresh=True)
            before, began = bar.n, time.perf_counter()
            with overall_progress(bar):
                family = extract_family(
                    specs[number - 1], n, seed, store=store, options=options, **extract
                )
            done = bar.n - before
            if done == 0:  # from the store's cache: no work, so no effect on the rate
                bar.total -= per_point
                bar.refresh()
            elif done < per_point:  # analyses skip the instances whose DC run failed
                bar.update(per_point - done)
            bar.set_postfix(failed=len(family.failed), refresh=False)
            yield SweepPoint(point=point, family=family, seconds=time.perf_counter() - began)
    finally:
        bar.close()


def check_grid(spec: NeuronSpec, grid: dict[str, list[float]]) -> list[dict[str, float]]:
    """The grid's points, after checking every name is a parameter of ``spec`` (or temperature)
    and parsing every value as a number (SPICE suffixes allowed; anything else is refused)."""
    if not isinstance(grid, dict) or not grid:
        raise ConfigError("a sweep needs at least one parameter with values")
    parsed: dict[str, list[float]] = {}
    for name, values in grid.items():
        if name != TEMPERATURE and name not in spec.parameters:
            raise ConfigError(
                f"sweep parameter {name!r} is not a parameter of {spec.name} "
                f"(has {', '.join(spec.parameters)}, or temperature)"
            )
        if isinstance(values, str) or not isinstance(values, list | tuple):
            raise ConfigError(f"sweep parameter {name!r}: expected a list of values: {values!r}")
        if not values:
            raise ConfigError(f"sweep parameter {name!r} has no values")
        parsed[name] = [parse_spice(value, f"sweep parameter {name}") for value in values]
        repeated = [
            value for number, value in enumerate(parsed[name]) if value in parsed[name][:number]
        ]
        if repeated:
            raise ConfigError(
                f"sweep parameter {name!r}: {repeated[0]:g} is given twice (each grid point is "
                "one family: give each value once)"
            )
    return grid_points(parsed)
