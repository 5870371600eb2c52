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
from circuitnn.journaled import stream_journaled
from circuitnn.noise import fit_white_flicker, integrated_sigma
from circuitnn.simulate import FAILED, OK
from circuitnn.simulate_analyses import (
    simulate_ac_chunk,
    simulate_noise_chunk,
    simulate_step_chunk,
)
from circuitnn.spec import NeuronSpec
from circuitnn.speed import bandwidth_3db, settling_time
from circuitnn.store import AnalysisWriter, Journal, Store
from circuitnn.variation import ParameterTable


def add_noise(
    family: Family,
    spec: NeuronSpec,
    analysis: NoiseAnalysis,
    store: Store | None,
    options: Any,
    arrays: bool = True,
) -> NoiseData:
    """Noise of every ok instance of ``family`` (cached in ``store`` beside the family).

    With a store, each chunk's spectra go to a scratch file as the chunk arrives (bounded
    memory); ``arrays=False`` then returns the analysis without them (``psd`` and ``input_psd``
    with 0 rows; the σ and fit arrays are complete)."""
    key = analysis_key("noise", analysis.identity(spec))
    cached = _cached(store, family.key, key, "noise", arrays)
    if cached is not None:
        return cached
    journal = store.journal(f"{family.key}-{key}", options.chunk_size) if store else None
    table = _table(family)
    chunks = _chunks(family, options.chunk_size)
    tasks = [
        (f"noise-{rows[0]:09d}", (spec, table.rows(rows), analysis, options.timeout))
        for rows in chunks
    ]
    biases = analysis.biases(spec)
    status, reasons = _dc_failures(family)
    sigma = np.full((family.n, len(biases)), np.nan)
    white, flicker, alpha = (np.full_like(sigma, np.nan) for _ in range(3))
    frequency = np.array([])
    band = analysis.bandwidth
    with _rows_sink(store, journal, family.n, options.chunk_size) as sink:
        results = stream_journaled(
            simulate_noise_chunk,
            tasks,
            [len(r) for r in chunks],
            journal,
            options,
            f"noise {spec.name}",
        )
        for number, result in results:
            rows = chunks[number]
            status[rows] = result["status"]
            for row, reason in zip(rows, result["reasons"], strict=True):
                reasons[row] = str(reason)
            psd = result["psd"]
            sink.write("psd", rows, psd)
            if "gain" in result:
                with np.errstate(divide="ignore", invalid="ignore"):
                    sink.write("input_psd", rows, psd / result["gain"])  # inf where gain is 0
            ok = result["status"] == OK
            if not ok.any():
                continue
            own = np.asarray(result["frequency"][np.argmax(ok)], dtype=np.float64)
            frequency = own if frequency.size == 0 else frequency
            sigma[rows[ok]] = integrated_sigma(own, psd[ok], band)
            inside = own <= band
            white[rows[ok]], flicker[rows[ok]], alpha[rows[ok]] = fit_white_flicker(
                own[inside], psd[ok][..., inside]
            )
        spectra = sink.arrays((len(biases), len(frequency)), ("psd", "input_psd"))
        data = NoiseData(
            bias=biases,
            frequency=frequency,
            psd=spectra["psd"],
            input_psd=spectra["input_psd"],
            sigma=sigma,
            bandwidth=band,
            white=white,
            flicker=flicker,
            alpha=alpha,
            status=status,
            reasons=reasons,
            key=key,
        )
        return _commit(store, family.key, data, journal, sink, arrays)


def add_speed(
    family: Family,
    spec: NeuronSpec,
    analysis: SpeedAnalysis,
    store: Store | None,
    options: Any,
    arrays: bool = True,
) -> SpeedData:
    """Bandwidth, settling time and energy per activation of every ok instance of ``family``
    (small-signal responses streamed as :func:`add_noise` streams spectra)."""
    analysis.check(spec)
    bias = analysis.bias
    if bias is None:
        middle = midpoints(family.grid, family.nominal_curve[None, :])[0]
        bias = float(middle) if np.isfinite(middle) else 0.5 * (spec.sweep.start + spec.sweep.stop)
    key = analysis_key("speed", {**analysis.identity(), "bias": bias})
    cached = _cached(store, family.key, key, "speed", arrays)
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
    status, reasons = _dc_failures(family)
    bandwidth = np.full(family.n, np.nan)
    frequency = np.array([])
    with _rows_sink(store, journal, family.n, options.chunk_size) as sink:
        ac = stream_journaled(
            simulate_ac_chunk, ac_tasks, sizes, journal, options, f"ac {spec.name}"
        )
        for number, result in ac:
            rows = chunks[number]
            sink.write("response", rows, result["response"])
            _merge(status, reasons, rows, result)
            ok = result["status"] == OK
            if ok.any():
                own = np.asarray(result["frequency"][np.argmax(ok)], dtype=np.float64)
                frequency = own if frequency.size == 0 else frequency
                bandwidth[rows[ok]] = bandwidth_3db(own, result["response"][ok])
        bandwidth[status != OK] = np.nan
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
        settling = np.full(family.n, np.nan)
        steps = stream_journaled(
            simulate_step_chunk, step_tasks, sizes, journal, options, f"step {spec.name}"
        )
        for number, result in steps:
            rows = chunks[number]
            _merge(status, reasons, rows, result)
            ok = result["status"] == OK
            settling[rows[ok]] = settling_time(
                result["time"], result["waveform"][ok], step_time, analysis.tolerance
            )
        settling[status != OK] = np.nan
        data = SpeedData(
            bias=bias,
            frequency=frequency,
            response=sink.arrays((len(frequency),), ("response",), np.complex128)["response"],
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
        return _commit(store, family.key, data, journal, sink, arrays)


class _MemoryRows:
    """Per-instance arrays held in memory (no store): what :class:`AnalysisWriter` writes."""

    def __init__(self, n: int) -> None:
        self.n, self._arrays = n, {}

    def __enter__(self) -> _MemoryRows:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def write(self, name: str, rows: np.ndarray, values: np.ndarray) -> None:
        if name not in self._arrays:
            self._arrays[name] = np.full((self.n, *values.shape[1:]), np.nan, values.dtype)
        self._arrays[name][rows] = values

    def arrays(
        self, shape: tuple[int, ...], names: tuple[str, ...], dtype: Any = np.float64
    ) -> dict[str, np.ndarray]:
        """The arrays written (NaN-filled ``(n, *shape)`` for one never written)."""
        return {
            name: self._arrays.get(name, np.full((self.n, *shape), np.nan, dtype)) for name in names
        }


class _StoreRows(AnalysisWriter):
    """An :class:`AnalysisWriter` (scratch file beside the store) whose arrays are left out of
    the analysis until the commit copies them in."""

    def arrays(
        self, shape: tuple[int, ...], names: tuple[str, ...], dtype: Any = np.float64
    ) -> dict[str, np.ndarray]:
        """Placeholders with 0 rows: the arrays are in the scratch file."""
        return {name: np.empty((0, *shape), dtype) for name in names}


def _rows_sink(
    store: Store | None, journal: Journal | None, n: int, chunk_rows: int
) -> _MemoryRows | _StoreRows:
    if store is None or journal is None:
        return _MemoryRows(n)
    return _StoreRows(journal.scratch_path("analysis"), n, chunk_rows)


def _cached(store: Store | None, family_key: str, key: str, kind: str, arrays: bool) -> Any:
    if store is None or not store.path.exists() or family_key not in store:
        return None
    if key not in store.analyses(family_key):
        return None
    return store.load_analysis(family_key, kind, key, arrays)


def _commit(
    store: Store | None,
    family_key: str,
    data: Any,
    journal: Journal | None,
    sink: _MemoryRows | _StoreRows,
    arrays: bool,
) -> Any:
    """Store the analysis (its streamed arrays from ``sink``) and clear its journal; the analysis
    as :func:`_cached` would return it."""
    if store is None:
        return data
    store.commit_analysis(family_key, data, sink if isinstance(sink, _StoreRows) else None)
    if journal is not None:
        journal.clear()
    kind = "noise" if isinstance(data, NoiseData) else "speed"
    return store.load_analysis(family_key, kind, data.key, arrays)


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
