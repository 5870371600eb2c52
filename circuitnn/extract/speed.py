"""Add a speed analysis to a family: bandwidth from ``.ac``, settling from a step.

Chunked, parallel and journaled like the DC sweep, stored beside the family.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from circuitnn.extract.analysis_chunks import (
    simulate_ac_chunk,
    simulate_step_chunk,
)
from circuitnn.extract.analysis_rows import (
    branch_direction,
    cached_analysis,
    commit_analysis,
    dc_failures,
    fail_instance,
    family_table,
    merge_failures,
    ok_chunks,
    rows_sink,
    stored_curves,
)
from circuitnn.extract.journaled import stream_journaled
from circuitnn.extract.operating_point import branch_values
from circuitnn.extract.response import (
    bandwidth_3db,
    bandwidth_reasons,
    settling_reasons,
    settling_time,
)
from circuitnn.family import OK, Family, SpeedData
from circuitnn.family.descriptors import midpoints
from circuitnn.neuron.spec import NeuronSpec
from circuitnn.spice.analyses import SpeedAnalysis, analysis_key
from circuitnn.store import Store


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
    cached = cached_analysis(store, family.key, key, "speed", arrays)
    if cached is not None:
        return cached
    if store is not None:
        store.check_writable()
    options = options.resolved(family.n)
    journal = store.journal(f"{family.key}-{key}", options.chunk_size) if store else None
    table = family_table(family)
    chunks = ok_chunks(family, options.chunk_size)
    sizes = [len(r) for r in chunks]
    direction = branch_direction(family)
    voltage = spec.output.quantity == "voltage"
    grid = spec.sweep.grid()

    def held(rows: np.ndarray, at: float) -> np.ndarray | None:
        """Each row's stored output at input ``at`` (its branch), to hold while the operating
        point is found (voltage outputs only)."""
        curves = stored_curves(family, store, rows) if voltage else None
        return None if curves is None else branch_values(grid, curves, [at], direction)[0][:, 0]

    ac_tasks = [
        (
            f"ac-{rows[0]:09d}",
            (
                spec,
                table.rows(rows),
                analysis,
                bias,
                options.engine,
                options.timeout,
                1,
                held(rows, bias),
            ),
        )
        for rows in chunks
    ]
    status, reasons = dc_failures(family)
    bandwidth = np.full(family.n, np.nan)
    frequency = np.array([])
    with rows_sink(store, journal, family.n, options.chunk_size) as sink:
        ac = stream_journaled(
            simulate_ac_chunk, ac_tasks, sizes, journal, options, f"ac {spec.name}"
        )
        for number, result in ac:
            rows = chunks[number]
            sink.write("response", rows, result["response"])
            merge_failures(status, reasons, rows, result)
            ok = result["status"] == OK
            if ok.any():
                own = np.asarray(result["frequency"][np.argmax(ok)], dtype=np.float64)
                frequency = own if frequency.size == 0 else frequency
                bandwidth[rows[ok]] = bandwidth_3db(own, result["response"][ok])
                for row, why in zip(
                    rows[ok], bandwidth_reasons(own, result["response"][ok]), strict=True
                ):
                    if why:
                        fail_instance(status, reasons, row, why)
        bandwidth[status != OK] = np.nan
        settling = np.full(family.n, np.nan)
        step_time = stop_time = float("nan")  # (no step is simulated without a bandwidth)
        if np.isfinite(bandwidth).any():
            slowest = np.nanmin(bandwidth)
            stop_time = analysis.stop_time or 20.0 / (2 * np.pi * slowest)
            step_time = 0.05 * stop_time
            rise_time = analysis.rise_time or stop_time / 1000
            start = spec.sweep.start if direction == "up" else spec.sweep.stop
            steps = [rows[status[rows] == OK] for rows in chunks]
            steps = [rows for rows in steps if len(rows)]
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
                        1,
                        held(rows, start),
                        direction,
                    ),
                )
                for rows in steps
            ]
            results = stream_journaled(
                simulate_step_chunk,
                step_tasks,
                [len(r) for r in steps],
                journal,
                options,
                f"step {spec.name}",
            )
            for number, result in results:
                rows = steps[number]
                merge_failures(status, reasons, rows, result)
                ok = result["status"] == OK
                settling[rows[ok]] = settling_time(
                    result["time"], result["waveform"][ok], step_time, analysis.tolerance
                )
                for row, why in zip(
                    rows[ok],
                    settling_reasons(
                        result["time"],
                        result["waveform"][ok],
                        step_time,
                        analysis.tolerance,
                        rise_time,
                    ),
                    strict=True,
                ):
                    if why:
                        fail_instance(status, reasons, row, why)
        for row in np.flatnonzero((status == OK) & ~np.isfinite(settling)):
            fail_instance(status, reasons, row, "settling time undefined: no bandwidth found")
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
        return commit_analysis(store, family.key, data, journal, sink, arrays)
