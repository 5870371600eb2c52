"""Pieces shared by the experiments: the circuit MLP they train, their option overrides, replicate
seeds and per-replicate tables with intervals."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
from torch import nn

from circuitnn.errors import ConfigError
from circuitnn.experiments.stats import mean_effect
from circuitnn.family import Family
from circuitnn.nn import CircuitSpec, LayerSpec, MLPSpec, build_mlp, torch_threads

S = TypeVar("S")
Row = dict[str, Any]

__all__ = [
    "circuit_mlp",
    "column",
    "fmt",
    "interval_table",
    "override",
    "replicate_seeds",
    "torch_threads",
]


def circuit_mlp(
    families: Sequence[Family], inputs: int, widths: Sequence[int], outputs: int, seed: int
) -> nn.Sequential:
    """An analog MLP ``inputs → widths → outputs`` whose hidden layer *i* is made of neurons of
    ``families[i % len(families)]`` (each neuron its own sampled curve: one chip drawn from
    ``seed``); the readout is a plain analog linear layer. Modules are named ``linear1``,
    ``act1``, …, ``output``."""
    if not families:
        raise ConfigError("circuit_mlp needs at least one family")
    layers = tuple(
        LayerSpec(int(width), CircuitSpec(families[index % len(families)]))
        for index, width in enumerate(widths)
    )
    return build_mlp(MLPSpec(inputs, layers, outputs), seed=seed)


def override(settings: S, options: Mapping[str, Any], experiment: str, extra: str = "") -> S:
    """``settings`` (a frozen dataclass) with the fields named in ``options`` replaced, each value
    converted to the field's current type (tuples element-wise); an unknown name or a value of the
    wrong kind is a :class:`ConfigError` naming the experiment and the option."""
    fields = {item.name: getattr(settings, item.name) for item in dataclasses.fields(settings)}
    unknown = sorted(set(options) - set(fields))
    if unknown:
        known = ", ".join([*([extra] if extra else []), *fields])
        raise ConfigError(f"{experiment}: unknown option(s) {unknown}; known: {known}")
    changes: dict[str, Any] = {}
    for name, value in options.items():
        current = fields[name]
        try:
            if isinstance(current, tuple):
                values = value if isinstance(value, list | tuple) else (value,)
                kind = type(current[0]) if current else float
                changes[name] = tuple(kind(v) for v in values)
            elif isinstance(current, dict):
                changes[name] = {str(k): float(v) for k, v in dict(value).items()}
            else:
                changes[name] = type(current)(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{experiment}: option {name}={value!r} is not valid") from None
    return dataclasses.replace(settings, **changes)  # type: ignore[type-var]


def fmt(value: float | None, digits: int = 3) -> str:
    """A number for a sentence (``n/a`` for None / NaN)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}g}"


def replicate_seeds(seed: int, replicates: int) -> list[int]:
    """The seeds of ``replicates`` independent replicates: ``seed, seed + 1, …``."""
    return [int(seed) + index for index in range(int(replicates))]


def column(rows: Sequence[Row], name: str, **where: Any) -> np.ndarray:
    """``name`` of the rows matching ``where`` (key = value), in replicate order."""
    members = [r for r in rows if all(r.get(k) == v for k, v in where.items())]
    members.sort(key=lambda r: r.get("replicate", 0))
    return np.array([float(r[name]) for r in members], dtype=np.float64)


def interval_table(rows: Sequence[Row], by: Sequence[str], columns: Sequence[str]) -> list[Row]:
    """Per group of rows equal in ``by`` (one row per replicate): each of ``columns`` as its mean
    over replicates with the 95 % t interval (``NAME``, ``NAME_low``, ``NAME_high``) and the
    replicate count."""
    groups: dict[tuple[Any, ...], list[Row]] = {}
    for row in rows:
        groups.setdefault(tuple(row[key] for key in by), []).append(row)
    table = []
    for key, members in groups.items():
        out: Row = dict(zip(by, key, strict=True))
        out["replicates"] = len(members)
        for name in columns:
            values = [float(m[name]) for m in members if m.get(name) is not None]
            effect = mean_effect(values, name)
            estimate = effect.estimate if effect.ok else _nanmean(values)
            out[name] = estimate
            out[f"{name}_low"] = effect.low
            out[f"{name}_high"] = effect.high
        table.append(out)
    return table


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan
