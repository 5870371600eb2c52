"""The draw dimension of vectorized Monte Carlo evaluation.

``D`` noise draws of a batch of ``B`` samples are evaluated in one forward pass whose dimension 0
holds ``D·B`` rows, draw-major (rows ``d·B … d·B + B - 1`` are draw *d*). Inside
``with draws(D):`` every noise source knows ``D``: per-forward weight noise draws ``D`` weight sets
(set *d* for draw *d*), activation noise draws independently per row anyway.

With ``draws(D, batch=B)`` the input may also be passed *unrepeated* (``B`` rows): the noiseless
front of the network then runs once, and the first noise source that is active expands its input
to ``D·B`` rows (:func:`expand`), so the draws share the deterministic prefix instead of computing
it ``D`` times. The random numbers are the same either way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

import torch

from circuitnn.errors import ConfigError
from circuitnn.nn._check import integer


@dataclass(frozen=True)
class DrawContext:
    """``count`` draws; ``batch``: the unrepeated batch size when inputs may arrive unrepeated."""

    count: int
    batch: int | None = None


_CURRENT: ContextVar[DrawContext | None] = ContextVar("circuitnn_draws", default=None)


@contextlib.contextmanager
def draws(count: int, *, batch: int | None = None) -> Iterator[DrawContext]:
    """Within the block, dimension 0 of the network's tensors is ``count`` draws × batch (or the
    unrepeated ``batch`` until the first noise source expands it)."""
    count = integer("draws", count, minimum=1)
    if batch is not None:
        integer("batch", batch, minimum=1)
    context = DrawContext(count, batch)
    token = _CURRENT.set(context)
    try:
        yield context
    finally:
        _CURRENT.reset(token)


def current() -> DrawContext | None:
    """The active draw context, if any."""
    return _CURRENT.get()


def draw_count(x: torch.Tensor) -> int:
    """The number of draws ``x`` holds (1 outside a draw context); checks the row count."""
    context = _CURRENT.get()
    if context is None or context.count == 1:
        return 1
    if context.batch is not None and x.shape[0] == context.batch:
        return 1  # not expanded yet: every draw still sees the same rows
    if x.shape[0] % context.count:
        raise ConfigError(
            f"a batch of {x.shape[0]} rows is not a multiple of draws={context.count}"
        )
    return context.count


def unexpanded(x: torch.Tensor) -> bool:
    """Whether ``x`` still holds the unrepeated batch inside ``draws(D, batch=B)`` with D > 1."""
    context = _CURRENT.get()
    return (
        context is not None
        and context.count > 1
        and context.batch is not None
        and x.shape[0] == context.batch
    )


def expand(x: torch.Tensor) -> torch.Tensor:
    """``x`` repeated to ``D·B`` rows if it still holds the unrepeated batch, else ``x``."""
    context = _CURRENT.get()
    if context is None or not unexpanded(x):
        return x
    return x.repeat(context.count, *([1] * (x.dim() - 1)))
