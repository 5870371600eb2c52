"""Pieces shared by the ``walking-noise`` and ``parameter-robustness`` experiments: the circuit MLP
they train, their option overrides and small statistics over seeds."""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from circuitnn.errors import ConfigError
from circuitnn.family import Family
from circuitnn.nn import CircuitSpec, LayerSpec, MLPSpec, build_mlp

S = TypeVar("S")


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


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Within the block torch computes on ``count`` threads (put back afterwards). The
    experiments' networks are small enough that one thread is as fast as several and far steadier
    on a busy machine, where idle-spinning worker threads can slow small operations tenfold."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(count)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


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


def mean_and_sem(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean of the finite ``values`` (NaN, NaN when none; SEM 0
    for a single value)."""
    finite = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if finite.size == 0:
        return math.nan, math.nan
    sem = float(finite.std(ddof=1) / math.sqrt(finite.size)) if finite.size > 1 else 0.0
    return float(finite.mean()), sem


def geometric_mean(values: Sequence[float]) -> float:
    """Geometric mean of the positive finite ``values`` (NaN when none)."""
    usable = [v for v in values if v is not None and math.isfinite(v) and v > 0]
    return float(np.exp(np.mean(np.log(usable)))) if usable else math.nan


def fmt(value: float | None, digits: int = 3) -> str:
    """A number for a sentence (``n/a`` for None / NaN)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}g}"
