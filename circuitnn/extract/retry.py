"""Simulate failed instances of a stored family again, and write them back into it.

A timeout or a crash of ngspice is not a property of the circuit: instances that failed that way
(status 3) are simulated again whenever their family is asked for, so a cached family never keeps
a transient failure. ``retry_failed(…, everything=True)`` (``--retry-failed``) simulates every
failed instance again.
"""

from __future__ import annotations

import json

import numpy as np

from circuitnn.extract.dc_chunk import ChunkResult, simulate_chunk
from circuitnn.extract.journaled import stream_journaled
from circuitnn.extract.options import RunOptions
from circuitnn.extract.rows import chunk_descriptors, chunk_extra, static_power
from circuitnn.family import OK, RETRY
from circuitnn.neuron.spec import NeuronSpec
from circuitnn.neuron.variation import MonteCarlo, sample_parameters
from circuitnn.store import Store


def retry_failed(
    store: Store,
    spec: NeuronSpec,
    mc: MonteCarlo,
    key: str,
    options: RunOptions,
    everything: bool = False,
) -> int:
    """Simulate again the instances of stored family ``key`` that ngspice timed out or crashed
    on (or, with ``everything``, every failed instance) and write their rows back into the
    store; returns how many were simulated. The family's noise and speed analyses are dropped
    when an instance's status changes (they were computed without it)."""
    family = store.load(key, arrays=False)
    wanted = family.status != OK if everything else family.status == RETRY
    rows = np.flatnonzero(wanted)
    if len(rows) == 0:
        return 0
    known = tuple(json.loads(str(family.attrs.get("ngspice_warnings", "[]"))))
    table = sample_parameters(spec, mc)
    size = options.resolved(mc.n).chunk_size
    chunks = [rows[start : start + size] for start in range(0, len(rows), size)]
    tasks = [
        (
            f"retry-{chunk[0]:09d}",
            (
                spec,
                table.rows(chunk),
                options.engine,
                options.timeout,
                1,
                options.self_check,
                known,
            ),
        )
        for chunk in chunks
    ]
    grid = spec.sweep.grid()
    columns: dict[str, list[np.ndarray]] = {}
    reasons: list[list[str]] = [[] for _ in chunks]
    for number, arrays in stream_journaled(
        simulate_chunk, tasks, [len(c) for c in chunks], None, options, f"retrying {spec.name}"
    ):
        chunk = ChunkResult.from_arrays(arrays)
        power = static_power(spec, chunk.supply_current, chunk.input_current)
        values = {
            "curves": chunk.curves,
            "supply_current": chunk.supply_current,
            "input_current": chunk.input_current,
            "power": power,
            "status": chunk.status,
            **chunk_extra(chunk),
            **{
                f"descriptors/{name}": value
                for name, value in chunk_descriptors(grid, chunk, power).items()
            },
        }
        for name, value in values.items():  # (chunks arrive in any order)
            columns.setdefault(name, [np.empty(0)] * len(chunks))[number] = value
        reasons[number] = chunk.reasons
    merged = {name: np.concatenate(parts) for name, parts in columns.items()}
    store.update_rows(key, rows, merged, [text for part in reasons for text in part])
    return len(rows)
