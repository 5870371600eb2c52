"""Batching never changes an answer: which instances of a batched run are simulated alone, and why.

All instances of a chunk share one ngspice run, hence one Newton iteration and one set of
fallbacks: measured on a bistable neuron (a CMOS Schmitt trigger), a fallback (gmin stepping
from a fresh start, which ngspice uses when a sweep point does not converge) moves instances onto
another branch, and near a fold the shared iterations land instances on another solution; those
curves jump where they should not. ngspice's log cannot place a fallback (the diff pair falls
back to gmin stepping at its first sweep point even alone), so the decision is made on the curves:

* an instance whose batched curve is discontinuous (:func:`discontinuous`) is re-run alone;
* each chunk runs a few of its instances alone as a self-check (:func:`check_positions`), in the
  same ngspice process; a batched curve off its isolated run by more than the family's tolerance
  (:func:`deviation_ratio`) re-runs every instance of the chunk alone.

Every instance records whether it ran alone and why (:data:`RUN_ALONE`).
"""

from __future__ import annotations

import numpy as np

from circuitnn.neuron.simulator import Simulator
from circuitnn.neuron.variation import uniforms

BATCHED, ALONE, SELF_CHECK, DISCONTINUOUS, CHUNK_DEVIATED = 0, 1, 2, 3, 4

RUN_ALONE = {
    BATCHED: "simulated in its batch",
    ALONE: "simulated alone (its batch held only it, or it was isolated from a failed batch)",
    SELF_CHECK: "simulated alone as its chunk's self-check",
    DISCONTINUOUS: "re-run alone: its batched curve jumps between neighbouring inputs",
    CHUNK_DEVIATED: "re-run alone: its chunk's self-check found a batched curve off its "
    "isolated run",
}
"""The codes of a family's ``run_alone`` dataset."""

JUMP = 0.5  # a step between neighbouring inputs of more than this share of the swing…
EDGE = 0.05  # …or of more than this share and more than EDGE_RATIO times both neighbouring steps
EDGE_RATIO = 4.0
CHECK_FACTOR = 4.0  # agreement expected of two converged solutions: this × reltol·|y| + floor


def discontinuous(curves: np.ndarray) -> np.ndarray:
    """Which curves (rows of N×K) jump: a step between neighbouring inputs larger than
    :data:`JUMP` of the curve's swing, or larger than :data:`EDGE` of it and more than
    :data:`EDGE_RATIO` times the steps on either side (a smooth steep curve rises over
    several steps of similar size; a fold drops at once)."""
    curves = np.atleast_2d(np.asarray(curves, dtype=np.float64))
    if curves.shape[1] < 2:
        return np.zeros(len(curves), dtype=bool)
    steps = np.abs(np.diff(curves, axis=1))
    swing = (np.max(curves, axis=1) - np.min(curves, axis=1))[:, None]
    neighbours = np.zeros_like(steps)  # the larger step on either side (0 beyond the ends)
    np.maximum(neighbours[:, 1:], steps[:, :-1], out=neighbours[:, 1:])
    np.maximum(neighbours[:, :-1], steps[:, 1:], out=neighbours[:, :-1])
    with np.errstate(invalid="ignore"):
        big = steps > JUMP * swing
        sharp = (steps > EDGE * swing) & (steps > EDGE_RATIO * neighbours)
    return np.any((big | sharp) & (swing > 0), axis=1)


def check_positions(index: np.ndarray, checks: int) -> np.ndarray:
    """Which places of a chunk (instances ``index``) its self-check runs alone: ``checks``
    distinct places drawn from (chunk's first instance, draw) — the same whatever the worker."""
    count = len(index)
    if count < 2 or checks < 1:
        return np.array([], dtype=np.int64)
    draws = uniforms(0, "self-check", int(index[0]) * 64 + np.arange(min(checks, count)))
    return np.unique((draws * count).astype(np.int64))


def deviation_ratio(
    batched: np.ndarray, isolated: np.ndarray, simulator: Simulator, current: bool
) -> tuple[float, float]:
    """(largest |batched − isolated| in output units, its largest ratio to the agreement
    expected of two solutions at the family's tolerance: :data:`CHECK_FACTOR` ×
    (reltol·|isolated| + vntol, or abstol for current outputs)). A ratio above 1 fails."""
    difference = np.abs(np.asarray(batched) - np.asarray(isolated))
    if not np.all(np.isfinite(difference)):
        return float("inf"), float("inf")
    allowed = CHECK_FACTOR * simulator.tolerance(isolated, current)
    return float(np.max(difference)), float(np.max(difference / allowed))
