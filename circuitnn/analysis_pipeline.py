"""Add noise and speed analyses to a family: chunked, parallel, journaled, stored beside it.

The family's DC results are reused, never recomputed: asking for noise on a stored family runs
only the noise analysis and adds it to the family's group in the store.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from circuitnn.analyses import NoiseAnalysis, SpeedAnalysis, analysis_key
from circuitnn.extract import midpoints
from circuitnn.family import Family, NoiseData, SpeedData
from circuitnn.journaled import run_journaled
from circuitnn.noise import fit_white_flicker, integrated_sigma
from circuitnn.simulate import FAILED, OK
from circuitnn.simulate_analyses import (
    simulate_ac_chunk,
    simulate_noise_chunk,
    simulate_step_chunk,
)
from circuitnn.spec import NeuronSpec
from circuitnn.speed import bandwidth_3db, settling_time
from circuitnn.store import Journal, Store
from circuitnn.variation import ParameterTable


def add_noise(
    family: Family, spec: NeuronSpec, analysis: NoiseAnalysis, store: Store | None, options: Any
) -> NoiseData:
    """Noise of every ok instance of ``family`` (cached in ``store`` beside the family)."""
    key = analysis_key("noise", analysis.identity(spec))
    cached = _cached(store, family.key, key, "noise")
    if cached is not None:
        return cached
    journal = store.journal(f"{family.key}-{key}", options.chunk_size) if store else None
    table = _table(family)
    chunks = _chunks(family, options.chunk_size)
    tasks = [
        (f"noise-{rows[0]:09d}", (spec, table.rows(rows), analysis, options.timeout))
        for rows in chunks
    ]
    results = run_journaled(
        simulate_noise_chunk,
        tasks,
        [len(r) for r in chunks],
        journal,
        options,
        f"noise {spec.name}",
    )
    biases = analysis.biases(spec)
    frequency = _first_finite([r["frequency"] for r in results])
    psd = np.full((family.n, len(biases), len(frequency)), np.nan)
    input_psd = np.full_like(psd, np.nan)
    status, reasons = _dc_failures(family)
    for rows, result in zip(chunks, results, strict=True):
        psd[rows] = result["psd"]
        with np.errstate(divide="ignore", invalid="ignore"):
            if "gain" in result:
                input_psd[rows] = result["psd"] / result["gain"]  # inf where the gain is zero
        status[rows] = result["status"]
        for row, reason in zip(rows, result["reasons"], strict=True):
            reasons[row] = str(reason)
    good = status == OK
    sigma = np.full((family.n, len(biases)), np.nan)
    white, flicker, alpha = (np.full_like(sigma, np.nan) for _ in range(3))
    if good.any():
        sigma[good] = integrated_sigma(frequency, psd[good], analysis.bandwidth)
        band = frequency <= analysis.bandwidth
        white[good], flicker[good], alpha[good] = fit_white_flicker(
            frequency[band], psd[good][..., band]
        )
    data = NoiseData(
        bias=biases,
        frequency=frequency,
        psd=psd,
        input_psd=input_psd,
        sigma=sigma,
        bandwidth=analysis.bandwidth,
        white=white,
        flicker=flicker,
        alpha=alpha,
        status=status,
        reasons=reasons,
        key=key,
    )
    _commit(store, family.key, data, journal)
    return data


def add_speed(
    family: Family, spec: NeuronSpec, analysis: SpeedAnalysis, store: Store | None, options: Any
) -> SpeedData:
    """Bandwidth, settling time and energy per activation of every ok instance of ``family``."""
    analysis.check(spec)
    bias = analysis.bias
    if bias is None:
        middle = midpoints(family.grid, family.nominal_curve[None, :])[0]
        bias = float(middle) if np.isfinite(middle) else 0.5 * (spec.sweep.start + spec.sweep.stop)
    key = analysis_key("speed", {**analysis.identity(), "bias": bias})
    cached = _cached(store, family.key, key, "speed")
    if cached is not None:
        return cached
    journal = store.journal(f"{family.key}-{key}", options.chunk_size) if store else None
    table = _table(family)
    chunks = _chunks(family, options.chunk_size)
    sizes = [len(r) for r in chunks]
    ac_tasks = [
        (
            f"ac-{rows[0]:09d}",
            (spec, table.rows(rows), analysis, bias, options.engine, options.timeout),
        )
        for rows in chunks
    ]
    ac = run_journaled(simulate_ac_chunk, ac_tasks, sizes, journal, options, f"ac {spec.name}")
    frequency = _first_finite([r["frequency"] for r in ac])
    response = np.full((family.n, len(frequency)), np.nan, dtype=np.complex128)
    status, reasons = _dc_failures(family)
    for rows, result in zip(chunks, ac, strict=True):
        response[rows] = result["response"]
        _merge(status, reasons, rows, result)
    bandwidth = np.full(family.n, np.nan)
    bandwidth[status == OK] = bandwidth_3db(frequency, response[status == OK])
    slowest = np.nanmin(bandwidth) if np.isfinite(bandwidth).any() else analysis.fmax
    stop_time = analysis.stop_time or 20.0 / (2 * np.pi * slowest)
    step_time = 0.05 * stop_time
    rise_time = analysis.rise_time or stop_time / 1000
    step_tasks = [
        (
            f"step-{rows[0]:09d}",
            (
                spec,
                table.rows(rows),
                step_time,
                rise_time,
                stop_time,
                options.engine,
                options.timeout,
            ),
        )
        for rows in chunks
    ]
    steps = run_journaled(
        simulate_step_chunk, step_tasks, sizes, journal, options, f"step {spec.name}"
    )
    settling = np.full(family.n, np.nan)
    for rows, result in zip(chunks, steps, strict=True):
        _merge(status, reasons, rows, result)
        ok = result["status"] == OK
        settling[rows[ok]] = settling_time(
            result["time"], result["waveform"][ok], step_time, analysis.tolerance
        )
    settling[status != OK] = np.nan
    data = SpeedData(
        bias=bias,
        frequency=frequency,
        response=response,
        bandwidth=bandwidth,
        settling_time=settling,
        energy=family.descriptors["mean_power"] * settling,
        step_time=step_time,
        stop_time=stop_time,
        tolerance=analysis.tolerance,
        status=status,
        reasons=reasons,
        key=key,
    )
    _commit(store, family.key, data, journal)
    return data


def _cached(store: Store | None, family_key: str, key: str, kind: str) -> Any:
    if store is None or not store.path.exists() or family_key not in store:
        return None
    if key not in store.analyses(family_key):
        return None
    return getattr(store.load(family_key, **{kind: key}), kind)


def _commit(
    store: Store | None, family_key: str, data: NoiseData | SpeedData, journal: Journal | None
) -> None:
    if store is None:
        return
    store.commit_analysis(family_key, data)
    if journal is not None:
        journal.clear()


def _table(family: Family) -> ParameterTable:
    return ParameterTable(
        family.parameter_names, family.parameters, np.arange(family.n), family.chip
    )


def _chunks(family: Family, size: int) -> list[np.ndarray]:
    good = np.flatnonzero(family.ok)
    return [good[i : i + size] for i in range(0, len(good), size)]


def _dc_failures(family: Family) -> tuple[np.ndarray, list[str]]:
    status = np.where(family.ok, OK, FAILED).astype(np.int8)
    reasons = [
        f"DC simulation failed: {r}" if not ok else ""
        for r, ok in zip(family.reasons, family.ok, strict=True)
    ]
    return status, reasons


def _merge(
    status: np.ndarray, reasons: list[str], rows: np.ndarray, result: dict[str, np.ndarray]
) -> None:
    failed = result["status"] != OK
    status[rows[failed]] = FAILED
    for row, reason in zip(rows[failed], result["reasons"][failed], strict=True):
        reasons[row] = reasons[row] or str(reason)


def _first_finite(candidates: list[np.ndarray]) -> np.ndarray:
    for values in candidates:
        rows = values.reshape(len(values), -1)
        finite = np.isfinite(rows).all(axis=1)
        if finite.any():
            return np.asarray(values[np.argmax(finite)], dtype=np.float64)
    return np.array([])
