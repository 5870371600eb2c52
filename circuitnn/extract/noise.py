"""Add a noise analysis to a family: chunked, parallel, journaled, stored beside it."""

from __future__ import annotations

from typing import Any

import numpy as np

from circuitnn.extract.analysis_chunks import (
    simulate_noise_chunk,
)
from circuitnn.extract.analysis_rows import (
    branch_direction,
    cached_analysis,
    commit_analysis,
    dc_failures,
    family_table,
    ok_chunks,
    rows_sink,
    stored_curve_blocks,
)
from circuitnn.extract.journaled import stream_journaled
from circuitnn.extract.operating_point import branch_values
from circuitnn.extract.spectra import fit_white_flicker, integrated_sigma
from circuitnn.family import OK, Family, NoiseData
from circuitnn.neuron.spec import NeuronSpec
from circuitnn.spice.analyses import NoiseAnalysis, analysis_key
from circuitnn.store import Store


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
    cached = cached_analysis(store, family.key, key, "noise", arrays)
    if cached is not None:
        return cached
    if store is not None:
        store.check_writable()
    size = options.resolved(family.n).noise_chunk_size  # a noise chunk of its own size
    journal = store.journal(f"{family.key}-{key}", size) if store else None
    table = family_table(family)
    chunks = ok_chunks(family, size)
    direction = branch_direction(family)
    biases = analysis.biases(spec)
    grid = spec.sweep.grid()

    # each task carries its rows' stored DC values at and around the biases (N×B each, V or
    # A), not their N×K curves: a dask client and a local cluster's scheduler (in this
    # process) keep their last 50 messages, tasks included (extract.clusters). With the
    # curves, a task of 250 diode_relu instances was 0.6 MB, and bench_campaign's writer
    # peaked 25 MiB higher.
    expected = (
        None if curves is None else branch_values(grid, curves, biases, direction)
        for curves in stored_curve_blocks(family, store, chunks)
    )
    tasks = [
        (
            f"noise-{rows[0]:09d}",
            (spec, table.rows(rows), analysis, options.timeout, 1, None, direction, values),
        )
        for rows, values in zip(chunks, expected, strict=True)
    ]
    status, reasons = dc_failures(family)
    sigma = np.full((family.n, len(biases)), np.nan)
    white, flicker, alpha = (np.full_like(sigma, np.nan) for _ in range(3))
    frequency = np.array([])
    band = analysis.bandwidth
    with rows_sink(store, journal, family.n, size) as sink:
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
        return commit_analysis(store, family.key, data, journal, sink, arrays)
