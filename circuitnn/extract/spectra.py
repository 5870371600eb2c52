"""Noise spectra → per-instance PSD, integrated σ and a white + flicker fit (pure numpy).

ngspice's ``.noise`` with a summary interval reports every device's contribution to the chosen
output as an amplitude density (V/√Hz). The batched bench observes the *sum* of all instances'
outputs, and instances share nothing but ideal sources, so each device's contribution to that sum
is its contribution to its own instance's output: grouping the devices by instance gives every
instance's own output PSD from one analysis (O(N) for the family, not O(N²)).

ngspice names a device's total ``onoise_<type>.<path>`` (level 1–3 MOSFETs, BJTs, diodes,
resistors; its parts ``…_1overf``, ``…_id``, …) or ``onoise.<type>.<path>`` (BSIM3/BSIM4 and the
foundry models built on them; parts ``….1overf``, ``….id``, …); the totals of all devices add
up to ngspice's own ``onoise_spectrum``, which :func:`unattributed` checks.
"""

from __future__ import annotations

import functools
import re

import numpy as np

_INSTANCE = re.compile(r"\.xn(\d+)\.")
_SEPARATOR = re.compile(r"[_.]")  # between a device's total and the name of one of its parts
ROUNDING = 1e-12  # relative cost per point below which a second fit term counts as round-off


def device_totals(names: list[str]) -> list[str]:
    """Names of the per-device total vectors among ngspice's ``onoise_*``/``onoise.*`` vectors
    (a device's parts, named ``<total>_<part>`` or ``<total>.<part>``, are dropped)."""
    return list(_device_totals(tuple(names)))


@functools.lru_cache(maxsize=8)  # every chunk of a family's size has the same names
def _device_totals(names: tuple[str, ...]) -> tuple[str, ...]:
    candidates = {
        n
        for n in names
        if n.startswith(("onoise_", "onoise.")) and n not in ("onoise_spectrum", "onoise_total")
    }
    start = len("onoise") + 1
    totals = [
        name
        for name in candidates
        if not any(name[: cut.start()] in candidates for cut in _SEPARATOR.finditer(name, start))
    ]
    return tuple(sorted(totals))


def unattributed(vectors: dict[str, np.ndarray], totals: list[str] | None = None) -> float:
    """How far the device totals miss ngspice's total output PSD (largest relative difference
    over frequency): near 0 when every device's noise was found, whatever ngspice named it.
    ``totals``: :func:`device_totals` of these vectors, when already known."""
    total = np.abs(vectors["onoise_spectrum"]) ** 2
    totals = device_totals(list(vectors)) if totals is None else totals
    found = (
        np.sum(np.abs(np.stack([vectors[name] for name in totals])) ** 2, axis=0)
        if totals
        else np.zeros_like(total)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        missing = np.abs(found - total) / total
    return float(np.max(np.where(total > 0, missing, np.abs(found))))


def device_instances(
    names: list[str], instances: int, totals: list[str] | None = None
) -> list[tuple[str, int]]:
    """``(device total vector, instance index)`` for every device inside an instance ``xnK``
    (``totals``: :func:`device_totals` of ``names``, when already known)."""
    totals = device_totals(names) if totals is None else totals
    return list(_device_instances(tuple(totals), instances))


@functools.lru_cache(maxsize=8)
def _device_instances(totals: tuple[str, ...], instances: int) -> tuple[tuple[str, int], ...]:
    pairs = []
    for name in totals:
        match = _INSTANCE.search(name)
        if match is not None and int(match.group(1)) < instances:
            pairs.append((name, int(match.group(1))))
    return tuple(pairs)


def instance_psd(
    vectors: dict[str, np.ndarray], instances: int, devices: list[tuple[str, int]] | None = None
) -> np.ndarray:
    """Output PSD of each instance (instances×F, output unit²/Hz) from ngspice's noise vectors.

    ``devices`` (from :func:`device_instances`) can be passed to reuse the grouping across runs.
    """
    devices = device_instances(list(vectors), instances) if devices is None else devices
    psd = np.zeros((instances, len(vectors["frequency"])))
    if devices:
        amplitudes = np.abs(np.stack([vectors[name] for name, _ in devices])) ** 2
        # each instance's devices added in their order, as psd[owner] += amplitude would
        for owners, rows in _ranks(tuple(owner for _, owner in devices)):
            psd[owners] += amplitudes[rows]
    return psd


@functools.lru_cache(maxsize=8)
def _ranks(owners: tuple[int, ...]) -> list[tuple[np.ndarray, np.ndarray]]:
    """``owners`` (each device's instance) by rank within its instance: for the first device of
    every instance, then the second, …: (the instances, the devices' positions)."""
    seen: dict[int, int] = {}
    ranks: list[tuple[list[int], list[int]]] = []
    for position, owner in enumerate(owners):
        rank = seen.get(owner, 0)
        seen[owner] = rank + 1
        if rank == len(ranks):
            ranks.append(([], []))
        ranks[rank][0].append(owner)
        ranks[rank][1].append(position)
    return [(np.array(o), np.array(p)) for o, p in ranks]


def integrated_sigma(frequency: np.ndarray, psd: np.ndarray, bandwidth: float) -> np.ndarray:
    """RMS noise over ``frequency[0]``…``bandwidth`` Hz: √∫S df (trapezoid in log f, S in log).

    ``psd`` (…×F); the band edge is interpolated log-log between grid points.
    """
    f = np.asarray(frequency, dtype=np.float64)
    edge = min(bandwidth, f[-1])
    inside = f < edge
    grid = np.append(f[inside], edge)
    log_s = np.log(np.maximum(psd, 1e-300)).reshape(-1, len(f))
    at_edge = _interp_rows(np.log(edge), np.log(f), log_s)
    values = np.concatenate([log_s[:, inside], at_edge[:, None]], axis=1)
    power = _loglog_trapezoid(grid, np.exp(values))
    return np.sqrt(power).reshape(psd.shape[:-1])


def _interp_rows(x: float, xp: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``np.interp(x, xp, row)`` of every row, bit for bit (numpy's formula; a row it would
    give NaN is handed to it)."""
    if not xp[0] <= x <= xp[-1]:  # outside the grid, or NaN: numpy's own answer
        return np.array([np.interp(x, xp, row) for row in rows])
    j = int(np.searchsorted(xp, x, side="right")) - 1
    if xp[j] == x:
        return rows[:, j].copy()
    low, high = rows[:, j], rows[:, j + 1]
    with np.errstate(invalid="ignore"):
        values = (high - low) / (xp[j + 1] - xp[j]) * (x - xp[j]) + low
    odd = np.flatnonzero(np.isnan(values))
    values[odd] = [np.interp(x, xp, rows[k]) for k in odd]
    return values


def _loglog_trapezoid(f: np.ndarray, s: np.ndarray) -> np.ndarray:
    """∫ S df assuming S is a power law between neighbouring points (exact for 1/f^α and white)."""
    f0, f1 = f[:-1], f[1:]
    s0, s1 = s[:, :-1], s[:, 1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.log(s1 / s0) / np.log(f1 / f0)
        exponent = slope + 1.0
        power_law = s0 * f0 * ((f1 / f0) ** exponent - 1.0) / exponent
        log_case = s0 * f0 * np.log(f1 / f0)
        pieces = np.where(np.abs(exponent) < 1e-9, log_case, power_law)
        pieces = np.where(np.isfinite(pieces), pieces, 0.5 * (s0 + s1) * (f1 - f0))
    return pieces.sum(axis=1)


def fit_white_flicker(
    frequency: np.ndarray, psd: np.ndarray, alphas: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit S(f) = white + flicker/f^alpha to every spectrum in ``psd`` (…×F).

    Relative least squares (errors weighted by 1/S), linear in (white, flicker) for fixed alpha,
    searched over ``alphas`` (default 0.5…2.5 in steps of 0.1), then on a grid five times finer
    around each spectrum's best value, refined by a parabola through the best three;
    both coefficients are constrained non-negative. Returns (white, flicker, alpha) arrays of
    shape ``psd.shape[:-1]``; flicker is in S·Hz^alpha; alpha is NaN where the fit finds no
    flicker at all.
    """
    f = np.asarray(frequency, dtype=np.float64)
    s = np.asarray(psd, dtype=np.float64).reshape(-1, len(f))
    alphas = np.linspace(0.5, 2.5, 21) if alphas is None else np.asarray(alphas, dtype=np.float64)
    sums = _Sums(f, s)
    coarse = sums.costs(alphas)  # rows × alphas
    nearest = np.argmin(coarse, axis=1)
    centre = alphas[nearest]
    step = (alphas[1] - alphas[0]) / 5 if len(alphas) > 1 else 0.0
    offsets = np.arange(-5, 6) * step  # a fine grid around each row's coarse optimum
    grid = alphas[:, None] + offsets[None, :]  # every fine exponent any row may try
    rows = np.arange(len(s))
    fine = sums.grouped_costs(grid, nearest).T  # offsets × rows
    best = np.argmin(fine, axis=0)
    inner = np.clip(best, 1, len(offsets) - 2)
    c0, c1, c2 = fine[inner - 1, rows], fine[inner, rows], fine[inner + 1, rows]
    curvature = c0 - 2 * c1 + c2
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(curvature > 0, 0.5 * (c0 - c2) / curvature, 0.0)
    # at an end of the fine grid there is no parabola: the best exponent evaluated stands
    alpha = centre + offsets[best] + np.where(best == inner, np.clip(shift, -1, 1), 0.0) * step
    white, flicker, _ = sums.solve_each(alpha)
    alpha = np.where(flicker > 0, alpha, np.nan)  # no flicker: its exponent is undefined
    shape = np.shape(psd)[:-1]
    return white.reshape(shape), flicker.reshape(shape), alpha.reshape(shape)


class _Sums:
    """The weighted sums of the relative least-squares fit of rows of ``s`` (S > 0 points only,
    weight 1/S): with them, the best (white, flicker) and its cost for any exponent α follow
    in closed form, so trying many exponents costs one matrix product, not a pass over the
    spectra each."""

    def __init__(self, f: np.ndarray, s: np.ndarray) -> None:
        valid = s > 0
        with np.errstate(divide="ignore"):
            self.a = np.where(valid, 1.0 / np.where(valid, s, 1.0), 0.0)  # white's coefficient
        self.a2 = self.a * self.a
        self.log_f = np.log(f)
        self.n = valid.sum(axis=1).astype(np.float64)
        self.aa, self.ay = self.a2.sum(axis=1), self.a.sum(axis=1)

    def costs(self, exponents: np.ndarray) -> np.ndarray:
        """The fit's cost for every row at every one of ``exponents`` (rows × exponents)."""
        return self._costs(np.arange(len(self.n)), exponents)

    def grouped_costs(self, exponents: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """The fit's cost for every row at the exponents of its group (``exponents``: groups ×
        size; ``groups``: each row's group): rows × size."""
        costs = np.empty((len(groups), exponents.shape[1]))
        for group in np.unique(groups):
            rows = np.flatnonzero(groups == group)
            costs[rows] = self._costs(rows, exponents[group])
        return costs

    def _costs(self, rows: np.ndarray, exponents: np.ndarray) -> np.ndarray:
        power = np.exp(-np.outer(exponents, self.log_f))  # f^-α, exponents × F
        a, a2 = self.a[rows], self.a2[rows]
        # (einsum, not a BLAS product: BLAS threads would spin on the core ngspice needs)
        ab, bb, by = (
            np.einsum("rf,ef->re", x, y) for x, y in ((a2, power), (a2, power * power), (a, power))
        )
        aa, ay, n = self.aa[rows, None], self.ay[rows, None], self.n[rows, None]
        return _solve(aa, ab, bb, ay, by, n)[2]

    def solve_each(self, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(white, flicker, cost) of every row at its own exponent ``alpha`` (rows,)."""
        power = np.exp(-alpha[:, None] * self.log_f[None, :])
        ab = np.sum(self.a2 * power, axis=1)
        bb = np.sum(self.a2 * power * power, axis=1)
        by = np.sum(self.a * power, axis=1)
        return _solve(self.aa, ab, bb, self.ay, by, self.n)


def _solve(
    aa: np.ndarray, ab: np.ndarray, bb: np.ndarray, ay: np.ndarray, by: np.ndarray, n: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least squares of a·white + b·flicker ≈ 1 from the sums Σa², Σab, Σb², Σa, Σb over n
    points (any broadcastable shapes), both coefficients ≥ 0: (white, flicker, cost)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        det = aa * bb - ab * ab
        white = (ay * bb - by * ab) / det
        flicker = (aa * by - ab * ay) / det
        only_white, only_flicker = ay / aa, by / bb
        white_cost = np.where(n > 0, n - ay * only_white, 0.0)
        flicker_cost = np.where(n > 0, n - by * only_flicker, 0.0)
    both = (white >= 0) & (flicker >= 0) & np.isfinite(det) & (det > 0)
    with np.errstate(invalid="ignore"):
        both_cost = _cost(white, flicker, aa, ab, bb, ay, by, n)
    # two terms only where they fit better than the better single term beyond rounding (a pure
    # white spectrum's closed form leaves a flicker of ~1e-32 that is only round-off)
    both &= both_cost < np.minimum(white_cost, flicker_cost) - ROUNDING * np.maximum(n, 1.0)
    white_wins = white_cost <= flicker_cost
    white = np.where(both, white, np.where(white_wins, only_white, 0.0))
    flicker = np.where(both, flicker, np.where(white_wins, 0.0, only_flicker))
    with np.errstate(invalid="ignore"):
        cost = _cost(white, flicker, aa, ab, bb, ay, by, n)
    return white, flicker, cost


def _cost(
    white: np.ndarray,
    flicker: np.ndarray,
    aa: np.ndarray,
    ab: np.ndarray,
    bb: np.ndarray,
    ay: np.ndarray,
    by: np.ndarray,
    n: np.ndarray,
) -> np.ndarray:
    """Σ (a·white + b·flicker − 1)² from the sums (see :func:`_solve`)."""
    return (
        white * white * aa
        + 2 * white * flicker * ab
        + flicker * flicker * bb
        - 2 * white * ay
        - 2 * flicker * by
        + n
    )
