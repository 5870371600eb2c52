"""Extract a family: sample → render → simulate (in parallel chunks) → describe → store.

A family is identified by a content hash of everything that determines its numbers; asking for a
family already in the store is a cache hit that runs no simulation, and an interrupted extraction
resumes from the chunks its journal holds. Chunks stream from the workers to the one writer as
they finish: each is handed to a writer thread that journals it, computes its power and
descriptors and writes it into the family's rows while the next chunks simulate, so the writer
holds a few chunks (plus the N-long bookkeeping arrays) however large the family. A family
written to a store is returned with the N×K arrays kept as they were written, not read back.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import warnings
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from circuitnn._version import __version__
from circuitnn.errors import SimulatorWarning
from circuitnn.extract.dc_chunk import ChunkResult, simulate_chunk
from circuitnn.extract.independence import RUN_ALONE
from circuitnn.extract.journaled import progress_bar, stream_journaled
from circuitnn.extract.noise import add_noise
from circuitnn.extract.options import RunOptions
from circuitnn.extract.retry import retry_failed
from circuitnn.extract.rows import chunk_descriptors, chunk_extra, static_power
from circuitnn.extract.sinks import FamilySink, KeepingSink, MemoryFamily
from circuitnn.extract.speed import add_speed
from circuitnn.family import OK, Family
from circuitnn.neuron.builtin import get_neuron
from circuitnn.neuron.pdk import at_corner
from circuitnn.neuron.spec import NeuronSpec
from circuitnn.neuron.variation import (
    MonteCarlo,
    ParameterTable,
    nominal_table,
    sample_parameters,
)
from circuitnn.spice.analyses import NoiseAnalysis, SpeedAnalysis
from circuitnn.spice.benches import bench_identity
from circuitnn.spice.ngspice_process import ngspice_version
from circuitnn.store import Store
from circuitnn.store.files import SCHEMA_VERSION
from circuitnn.store.journal import Journal

# tasks handed to the writer thread and not yet done (a chunk's journal entry and its rows are
# one task each)
WRITES_IN_FLIGHT = 4

NOMINAL = "nominal"  # the journal name of the nominal circuit's run
KNEW_NOMINAL = "knew_nominal_warnings"  # marks a journaled chunk simulated knowing them


SAMPLING_BAR = 100_000  # instances from which sampling the parameters shows a progress bar
SAMPLING_BLOCK = 65_536  # instances sampled at once (each a pure function of its index)


def family_key(spec: NeuronSpec, mc: MonteCarlo, analyses: tuple[str, ...] = ("dc",)) -> str:
    """Content hash naming a family: spec, netlists, analyses, N, seed, chips, corner, versions."""
    identity = {
        "spec": spec.identity(),
        "analyses": list(analyses),
        "n": mc.n,
        "seed": mc.seed,
        "chip_size": mc.chip_size,
        "corner": mc.corner,
        "ngspice": ngspice_version(),
        "bench": bench_identity(spec),
        "schema": SCHEMA_VERSION,
    }
    text = json.dumps(identity, sort_keys=True, default=float)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def extract_family(
    neuron: str | Path | NeuronSpec,
    n: int = 1000,
    seed: int = 0,
    *,
    store: str | Path | Store | None = None,
    chip_size: int = 1,
    corner: str | None = None,
    temperature: float | None = None,
    options: RunOptions | None = None,
    noise: NoiseAnalysis | bool | None = None,
    speed: SpeedAnalysis | bool | None = None,
    arrays: bool = True,
    simulator: dict[str, Any] | None = None,
    retry: bool = False,
) -> Family:
    """Simulate ``n`` Monte Carlo instances of ``neuron`` and return (and store) the family.

    ``neuron``: a built-in name, a spec/netlist path or a :class:`NeuronSpec`. ``temperature`` in
    °C overrides the spec's. With a ``store`` the family is streamed into it chunk by chunk and
    cached there (a second identical call runs nothing) and a killed run resumes; without one it
    is only returned. ``noise`` and ``speed`` (settings, or True for the defaults) add those
    analyses; on a stored family they run alone, without repeating the DC sweep.
    ``arrays=False`` (with a store) returns the family without its N×K arrays (see
    :meth:`Store.load`), for campaigns whose families are read from the store later.
    ``simulator`` overrides the spec's simulator settings (``reltol``, ``abstol``, ``vntol``,
    ``options``: part of the family's key). Instances of a stored family that failed by a
    timeout or crash of ngspice are simulated again; ``retry=True`` simulates every failed one
    again.
    """
    spec = get_neuron(neuron)
    if temperature is not None:
        spec = spec.with_temperature(temperature)
    if simulator:
        spec = spec.with_simulator(**simulator)
    if corner is not None and spec.pdk is not None and corner not in spec.corners:
        spec = at_corner(spec, corner)  # the kit's own section
    mc = MonteCarlo(n=n, seed=seed, chip_size=chip_size, corner=corner)
    options = (options or RunOptions()).resolved(n)
    spec.nominal(corner)
    key = family_key(spec, mc)
    target = store if isinstance(store, Store) or store is None else Store(store)
    noise = NoiseAnalysis() if noise is True else (noise or None)
    speed = SpeedAnalysis() if speed is True else (speed or None)
    if noise is not None:
        noise.biases(spec)
    if speed is not None:
        speed.check(spec)
    if target is None:
        memory = MemoryFamily(key, spec, mc.n)
        _extract_into(memory, spec, mc, options, None)
        family = memory.family()
    else:
        written = None
        if key not in target:
            target.check_writable()
            written = _extract_to_store(target, spec, mc, key, options, arrays)
        else:  # a journal left by a run killed between its commit and the clean-up
            target.journal(key, options.chunk_size).clear()
            retry_failed(target, spec, mc, key, options, everything=retry)
        family = target.load(key, arrays=arrays and written is None)
        if written is not None:  # the arrays just written, not read back
            family = written.with_arrays(family) or target.load(key)
    if noise is not None:
        family.noise = add_noise(family, spec, noise, target, options, arrays)
    if speed is not None:
        family.speed = add_speed(family, spec, speed, target, options, arrays)
    return family


def _extract_to_store(
    store: Store, spec: NeuronSpec, mc: MonteCarlo, key: str, options: RunOptions, keep: bool
) -> KeepingSink | None:
    """Stream the family into a scratch file beside ``store`` and commit it (crash-safe).

    ``keep``: also keep its N×K arrays in memory and return them (None when another process
    committed the family first: the store's copy is the family then)."""
    journal = store.journal(key, options.chunk_size)
    try:
        with store.family_writer(journal, key, mc.n, options.chunk_size) as writer:
            sink = KeepingSink(writer, mc.n) if keep else writer
            _extract_into(sink, spec, mc, options, journal)
        added = store.commit_written(writer)
    finally:
        journal.tidy()
    journal.clear()
    return sink if isinstance(sink, KeepingSink) and added else None


def _extract_into(
    sink: FamilySink,
    spec: NeuronSpec,
    mc: MonteCarlo,
    options: RunOptions,
    journal: Journal | None,
) -> None:
    """Simulate every chunk (journaled, in parallel) and hand each to ``sink`` as it arrives.

    The nominal circuit is the first task, run alongside the chunks (with 1 job: before them):
    a netlist ngspice rejects stops the run there (no chunk can succeed either, so none is
    kept), and its warnings are the family's (shown once, stored). The chunks run before its
    warnings are known, collecting theirs; a chunk whose warnings are all the nominal's is what
    it would have been with them known (only a warning the nominal circuit does not get fails an
    instance), and a chunk with another warning is simulated again knowing them, so an instance
    warned about otherwise still fails with it. Chunks that arrive before the nominal wait for
    it (in memory).
    """
    tables = _sample(spec, mc, options)
    grid = spec.sweep.grid()
    sink.write_header(
        _attrs(spec, mc, options),
        grid,
        spec.output.unit,
        tables[0].names,
        np.concatenate([table.values for table in tables]),
        np.concatenate([table.chip for table in tables]),
    )
    nominal_task = (spec, nominal_table(spec, mc.corner), options.engine, options.timeout)
    tasks = [(NOMINAL, nominal_task)] + [
        (
            f"chunk-{table.index[0]:09d}",
            (spec, table, options.engine, options.timeout, 1, options.self_check, None),
        )
        for table in tables
    ]
    checks = _Checks()
    nominal: ChunkResult | None = None
    waiting: list[tuple[int, dict[str, np.ndarray]]] = []

    def chunk_of(number: int, arrays: dict[str, np.ndarray]) -> ChunkResult:
        """The chunk as if simulated knowing the nominal circuit's warnings."""
        assert nominal is not None
        chunk = ChunkResult.from_arrays(arrays)
        if KNEW_NOMINAL in arrays or set(chunk.warnings) <= set(nominal.warnings):
            return chunk
        name, (_, table, *settings) = tasks[number]
        chunk = simulate_chunk(spec, table, *settings[:-1], tuple(nominal.warnings))
        journal_later(name, {**chunk.to_arrays(), KNEW_NOMINAL: np.bool_(True)})
        return chunk

    # the journal entries and the sink's writes (HDF5 compression, checksums), with each chunk's
    # power and descriptors, are made in a thread of their own, in the order they are handed
    # over, so they overlap the simulation of the next chunks; at most WRITES_IN_FLIGHT tasks
    # wait for it
    with ThreadPoolExecutor(1, thread_name_prefix="circuitnn-writer") as writer:
        writes: deque[Future[None]] = deque()
        failed: list[BaseException] = []

        def in_order(task: Callable[..., None], *arguments: Any) -> None:
            if failed:
                return  # an earlier task failed: nothing after it is journaled or written
            try:
                task(*arguments)
            except BaseException as error:
                failed.append(error)
                raise

        def later(task: Callable[..., None], *arguments: Any) -> None:
            writes.append(writer.submit(in_order, task, *arguments))

        def journal_later(name: str, arrays: dict[str, np.ndarray]) -> None:
            if journal is not None:
                later(journal.save_arrays, name, arrays)

        for number, arrays in stream_journaled(
            simulate_chunk,
            tasks,
            [0] + [len(t) for t in tables],
            journal,
            options,
            f"simulating {spec.name}",
            describe=lambda task: _describe(spec, task, nominal_task),
            save=journal_later,
        ):
            if number == 0:
                nominal = _nominal(spec, arrays)
                ready, waiting = waiting, []
            elif nominal is None:
                waiting.append((number, arrays))
                continue
            else:
                ready = [(number, arrays)]
            for position, found in ready:
                chunk = chunk_of(position, found)
                checks.add(chunk)
                later(_write_chunk, sink, spec, grid, chunk)
                del chunk
                while len(writes) > WRITES_IN_FLIGHT or (writes and writes[0].done()):
                    writes.popleft().result()  # a failed write raises here
            del arrays, ready
        while writes:
            writes.popleft().result()
    assert nominal is not None
    known = tuple(nominal.warnings)
    extra = (
        {"nominal_curve_down": nominal.curves_down[0]} if nominal.curves_down is not None else {}
    )
    sink.finish(
        nominal.curves[0],
        {
            "created": _now(),
            **checks.attrs(),
            "ngspice_warnings": json.dumps(known),
            "nominal_failure": nominal.reasons[0] if nominal.status[0] != OK else "",
        },
        extra,
    )


def _write_chunk(sink: FamilySink, spec: NeuronSpec, grid: np.ndarray, chunk: ChunkResult) -> None:
    """Hand one chunk's rows, with their power and descriptors, to ``sink``."""
    power = static_power(spec, chunk.supply_current, chunk.input_current)
    sink.write_rows(
        chunk.start,
        chunk.curves,
        chunk.supply_current,
        chunk.input_current,
        power,
        chunk.status,
        chunk.reasons,
        chunk_descriptors(grid, chunk, power),
        chunk_extra(chunk),
    )


class _Checks:
    """What the chunks' self-checks and fallbacks add up to (family attributes)."""

    def __init__(self) -> None:
        self.instances = self.failed_chunks = self.chunks = self.aids = 0
        self.deviation = self.ratio = 0.0

    def add(self, chunk: ChunkResult) -> None:
        self.chunks += 1
        self.instances += chunk.checks
        self.failed_chunks += chunk.deviated
        self.aids += chunk.aids
        self.deviation = max(self.deviation, chunk.check_deviation)
        self.ratio = max(self.ratio, chunk.check_ratio)

    def attrs(self) -> dict[str, Any]:
        return {
            "self_check_instances": self.instances,
            "self_check_max_deviation": self.deviation,
            "self_check_max_ratio": self.ratio,
            "self_check_failed_chunks": self.failed_chunks,
            "convergence_aids": self.aids,
        }


def _sample(spec: NeuronSpec, mc: MonteCarlo, options: RunOptions) -> list[ParameterTable]:
    """The parameter table of every chunk (the same numbers however it is cut), with a progress
    bar from :data:`SAMPLING_BAR` instances on (sampling 10⁸ instances takes minutes)."""
    bar = progress_bar(mc.n, 0, f"sampling {spec.name}", options.progress and mc.n >= SAMPLING_BAR)
    tables = []
    size = options.chunk_size
    block = max(size, SAMPLING_BLOCK - SAMPLING_BLOCK % size)  # whole chunks, sampled at once
    try:
        for first in range(0, mc.n, block):
            sampled = sample_parameters(spec, mc, first, min(first + block, mc.n))
            tables += [sampled.rows(slice(at, at + size)) for at in range(0, len(sampled), size)]
            bar.update(len(sampled))
    finally:
        bar.close()
    return tables


def _describe(spec: NeuronSpec, task: tuple[Any, ...], nominal: tuple[Any, ...]) -> str:
    """How errors name a task: the nominal run or a chunk's instances."""
    if task is nominal:
        return f"{spec.name} nominal"
    return f"{spec.name} chunk {task[1].index[0]}-{task[1].index[-1]}"


def _nominal(spec: NeuronSpec, arrays: dict[str, np.ndarray]) -> ChunkResult:
    """The nominal circuit's result; its warnings (about the netlist) are shown once."""
    result = ChunkResult.from_arrays(arrays)
    if result.warnings:
        warnings.warn(
            f"{spec.name}: ngspice warns about the netlist: " + "; ".join(result.warnings),
            SimulatorWarning,
            stacklevel=5,
        )
    return result


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds")


def _attrs(spec: NeuronSpec, mc: MonteCarlo, options: RunOptions) -> dict[str, Any]:
    """The family's provenance (HDF5 attributes; ``created`` is added when it is finished)."""
    return {
        "neuron": spec.name,
        "description": spec.description,
        "n": mc.n,
        "seed": mc.seed,
        "chip_size": mc.chip_size,
        "corner": mc.corner or "",
        "temperature": spec.temperature,
        "output_quantity": spec.output.quantity,
        "output_unit": spec.output.unit,
        "supplies": json.dumps(list(spec.ports.supplies)),
        "supply_voltages": json.dumps(list(spec.ports.supplies.values())),
        "nominal_parameters": json.dumps(spec.nominal(mc.corner)),
        "spec": json.dumps(spec.identity(), default=float),
        "netlist": spec.netlist_text,
        "netlist_source": spec.netlist_source,
        "engine": options.engine,
        "chunk_size": options.chunk_size,
        "self_check": options.self_check,
        "direction": spec.sweep.direction,
        "simulator": json.dumps(spec.simulator.identity()),
        "run_alone_meaning": json.dumps({str(k): v for k, v in RUN_ALONE.items()}),
        "ngspice_version": ngspice_version(),
        "circuitnn_version": __version__,
        "schema_version": SCHEMA_VERSION,
    }
