"""Differentiable per-neuron table lookup on a uniform grid, with no search.

Every neuron ``j`` owns a curve sampled at ``K`` uniformly spaced inputs. An input ``x`` maps to a
fractional grid index ``t = scale·x + shift``; on segment ``i`` (between grid points ``i`` and
``i+1``) the curve is the straight line ``y = C[j, i] + D[j, i]·x``. :func:`segment_table` stores
these lines as ``K + 1`` rows of ``(C, D)`` per neuron:

- row 0 serves ``t < 0`` and row ``K`` serves ``t ≥ K-1`` (outside the grid);
- row ``i + 1`` serves segment ``i`` (``i ≤ t < i + 1``).

So the row is ``trunc(clamp(t + 1, 0, K))`` with no search, and each element costs one 8-byte
gather (the (C, D) pair is read as one packed element through a dtype view) and a few elementwise
operations. The output is ``x·D``, then ``+ C``: two roundings, in float32 and float64 (separate
operations, so no fused multiply-add changes a bit on any machine; 16-bit floats take one
``addcmul``, computed in float32 and rounded once). The row index is computed from ``x``
detached, so autograd's own backward is the lookup's: ``grad · D`` (the slope of the
piecewise-linear curve; at a grid point exactly, the right-hand segment's slope), itself
differentiable in ``grad``, with no Python ``autograd.Function`` in the way.

On CPU, for float32, the whole lookup runs in the compiled kernel of :mod:`circuitnn.nn.kernel`
when it is built (one pass on every torch thread, the same values and gradients bit for bit).
Otherwise the gather is ``index_select`` on the 1-D packed table, which runs on one thread on
CPU; the parallel gathers torch offers were measured slower (``take``, advanced indexing,
``embedding_bag``, ``torch.gather``; see docs/pytorch.md, "Benchmark").

Outside the grid, ``extrapolation`` decides:

- ``"linear"``: rows 0 and K repeat the first and last segments, so the curve continues with its end
  slopes (value and gradient finite; a rising ReLU keeps rising);
- ``"clamp"``: rows 0 and K are flat at the end values, so the output holds and the gradient is 0.

Non-finite inputs give non-finite outputs (never an indexing error).
"""

from __future__ import annotations

import torch

from circuitnn.nn import kernel

EXTRAPOLATIONS = ("linear", "clamp")
# A pair of two elements of dtype X is read as one element of the dtype twice as wide.
_PACKED = {
    torch.float16: torch.int32,
    torch.bfloat16: torch.int32,
    torch.float32: torch.float64,
    torch.float64: torch.complex128,
}
# The integer type as wide as a float type: the row index is written over the scaled input. In a
# network the lookup runs on cold caches (after a matmul), where each fresh buffer costs more than
# the pass that fills it.
_SAME_WIDTH_INDEX = {torch.float32: torch.int32, torch.float64: torch.int64}
# x·D, then + C, as the compiled kernel (addcmul may be one fused multiply-add, or not, by machine)
_TWO_ROUNDINGS = (torch.float32, torch.float64)


def lookup(
    x: torch.Tensor,
    table: torch.Tensor,
    offsets: torch.Tensor | None,
    points: int,
    scale: float,
    shift: float,
) -> torch.Tensor:
    """Evaluate per-neuron piecewise-linear curves at ``x``.

    ``table``: the ``(n·(K+1)) × 2`` table of :func:`segment_table` built with the same ``scale``
    and ``shift``; ``offsets`` (int32, broadcastable against ``x``): the first row ``(K+1)·j`` of
    the neuron each element of ``x`` belongs to, or None when every element uses neuron 0;
    ``points`` K. Returns ``x`` broadcast with ``offsets``; differentiable in ``x`` (not in
    ``table``).
    """
    if table.requires_grad:
        table = table.detach()
    compiled = kernel.lookup(x, table, offsets, points, scale, shift)
    if compiled is not None:  # the same values and gradients as below, in one pass
        return compiled
    rows = int(points) + 1
    t = x.detach() * float(scale)
    t.add_(float(shift) + 1.0).nan_to_num_(nan=0.0).clamp_(0, rows - 1)
    wide = table.shape[0] >= 2**31
    same_width = _SAME_WIDTH_INDEX.get(t.dtype)
    if same_width is not None and (same_width == torch.int64 or not wide):
        index = t.view(same_width)  # the rows overwrite t: no fresh index buffer
        index.copy_(t)
    else:
        index = t.long() if wide else t.int()
    if offsets is not None:
        offsets = offsets.to(index.dtype)
        if _broadcasts_into(offsets.shape, index.shape):
            index += offsets
        else:
            index = index + offsets
    packed = _PACKED.get(table.dtype)
    if packed is not None:
        pairs = table.view(packed).view(-1).index_select(0, index.reshape(-1)).view(table.dtype)
    else:
        pairs = table.index_select(0, index.reshape(-1))
    intercept, slope = pairs.view(*index.shape, 2).unbind(-1)
    reuse = index.dtype == _SAME_WIDTH_INDEX.get(x.dtype) and x.dtype == table.dtype
    out = None
    if reuse and not (x.requires_grad and torch.is_grad_enabled()):
        # Without autograd the output, too, goes where the index was (inference on many draws:
        # every fresh buffer of that size is paged in anew).
        out = index.view(x.dtype)
    # Only x carries a gradient, so autograd's own backward is the lookup's: grad·slope.
    if torch.promote_types(x.dtype, table.dtype) in _TWO_ROUNDINGS:
        return torch.mul(x, slope, out=out).add_(intercept)
    return torch.addcmul(intercept, x, slope, out=out)


def _broadcasts_into(shape: torch.Size, target: torch.Size) -> bool:
    """Whether a tensor of ``shape`` broadcasts to ``target`` without growing it."""
    return len(shape) <= len(target) and all(
        size in (1, other) for size, other in zip(reversed(shape), reversed(target), strict=False)
    )


def segment_table(
    values: torch.Tensor,
    scale: float,
    shift: float,
    extrapolation: str = "linear",
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """The ``(n·(K+1)) × 2`` table of line intercepts and slopes ``(C, D)`` (``y = C + D·x``) of the
    curves ``values`` (``n × K``, sampled at ``t = 0 … K-1`` where ``t = scale·x + shift``), with
    ``extrapolation`` ``"linear"`` or ``"clamp"`` in the end rows. Computed in float64, returned
    in ``dtype`` (default: ``values``' dtype)."""
    if extrapolation not in EXTRAPOLATIONS:
        raise ValueError(f"extrapolation must be one of {EXTRAPOLATIONS}, got {extrapolation!r}")
    v = values.detach().to(torch.float64)
    n, points = v.shape
    if points < 2:
        raise ValueError("a curve needs at least 2 grid points")
    step = v[:, 1:] - v[:, :-1]  # per grid index
    start = torch.arange(points - 1, dtype=torch.float64, device=v.device)
    intercept = v[:, :-1] + (shift - start) * step
    slope = scale * step
    lines = torch.empty(n, points + 1, 2, dtype=torch.float64, device=v.device)
    lines[:, 1:points, 0] = intercept
    lines[:, 1:points, 1] = slope
    if extrapolation == "linear":
        lines[:, 0] = lines[:, 1]
        lines[:, points] = lines[:, points - 1]
    else:
        lines[:, 0, 0], lines[:, 0, 1] = v[:, 0], 0.0
        lines[:, points, 0], lines[:, points, 1] = v[:, -1], 0.0
    return lines.reshape(-1, 2).to(dtype or values.dtype).contiguous()


def neuron_offsets(
    shape: tuple[int, ...], points: int, device: torch.device | None = None
) -> torch.Tensor:
    """int32 first-row offsets ``(K+1)·j`` of the neurons of ``shape`` (for :func:`lookup`)."""
    count = 1
    for size in shape:
        count *= size
    offsets = torch.arange(count, dtype=torch.int64, device=device) * (points + 1)
    if count * (points + 1) < 2**31:
        offsets = offsets.int()
    return offsets.reshape(shape)
