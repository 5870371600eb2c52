"""Data for training and evaluation: ``(inputs, targets)`` pairs of arrays or tensors."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from circuitnn.data.builtin import load_digits
from circuitnn.errors import ConfigError

Data = tuple[Any, Any]

__all__ = ["Data", "as_tensors", "batches", "load_digits", "model_dtype"]


def model_dtype(model: nn.Module) -> torch.dtype:
    """The floating dtype of ``model``'s parameters (torch's default when it has none)."""
    for tensor in model.parameters():
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.get_default_dtype()


def as_tensors(
    data: Data,
    field: str = "data",
    device: torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` as tensors on ``device``; floating inputs (and floating targets) in ``dtype``
    (default: torch's default dtype for arrays, a tensor's own dtype for tensors)."""
    if not isinstance(data, Sequence) or len(data) != 2:
        raise ConfigError(f"{field} must be a pair (inputs, targets)")
    x, y = (torch.as_tensor(item) for item in data)
    if x.shape[0] != y.shape[0]:
        raise ConfigError(f"{field}: {x.shape[0]} inputs but {y.shape[0]} targets")
    if x.shape[0] == 0:
        raise ConfigError(f"{field} is empty")
    for index, tensor in enumerate((x, y)):
        if not tensor.is_floating_point():
            continue
        target = dtype or (tensor.dtype if isinstance(data[index], torch.Tensor) else None)
        converted = tensor.to(target or torch.get_default_dtype())
        if index == 0:
            x = converted
        else:
            y = converted
    return x.to(device), y.to(device)


def batches(
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    generator: torch.Generator | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Mini-batches, shuffled by ``generator`` (a CPU generator) or in order when None."""
    count = x.shape[0]
    order = None if generator is None else torch.randperm(count, generator=generator).to(x.device)
    for start in range(0, count, batch_size):
        if order is None:
            yield x[start : start + batch_size], y[start : start + batch_size]
        else:
            index = order[start : start + batch_size]
            yield x[index], y[index]
