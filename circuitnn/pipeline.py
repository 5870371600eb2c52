"""Extract a family: sample → render → simulate (in parallel chunks) → describe → store.

A family is identified by a content hash of everything that determines its numbers; asking for a
family already in the store is a cache hit that runs no simulation, and an interrupted extraction
resumes from the chunks its journal holds. Chunks stream from the workers to the one writer as
they finish: each is journaled, described and handed to a writer thread that writes it into the
family's rows while the next chunks simulate, so the writer holds a few chunks (plus the N-long
bookkeeping arrays) however large the family.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from circuitnn import __version__
from circuitnn.analyses import NoiseAnalysis, SpeedAnalysis
from circuitnn.analysis_pipeline import add_noise, add_speed
from circuitnn.circuits import get_neuron
from circuitnn.errors import ConfigError
from circuitnn.extract import describe
from circuitnn.family import Family
from circuitnn.journaled import stream_journaled
from circuitnn.parallel import check_backend
from circuitnn.simulate import ChunkResult, simulate_chunk
from circuitnn.spec import NeuronSpec
from circuitnn.spice.engines import DEFAULT_ENGINE, available_engines, ngspice_version
from circuitnn.store import SCHEMA_VERSION, Journal, Store
from circuitnn.testbench import input_voltages
from circuitnn.units import _shown
from circuitnn.variation import MonteCarlo, nominal_table, sample_parameters

DEFAULT_CHUNK_SIZE = 250
WRITES_IN_FLIGHT = 2  # chunks handed to the writer thread and not yet written
MAX_JOBS = 1024  # local worker processes (more would exhaust the machine before any run)
MAX_CHUNK_SIZE = 100_000  # instances in one ngspice run (its cost per instance rises past ~500)
# The longest timeout (s) per ngspice run: about 11.6 days. The subprocess engine's wait polls
# with a timeout in milliseconds that must fit a C int (at most 24.8 days); beyond, every chunk
# would fail with an OverflowError instead of running.
MAX_TIMEOUT = 1e6


@dataclass(frozen=True)
class RunOptions:
    """How to run an extraction (none of it changes the results beyond solver tolerance).

    ``jobs`` worker processes (-1 = all cores); ``chunk_size`` instances per ngspice run (fixed, so
    results do not depend on ``jobs``); ``engine`` "subprocess" or "shared"; ``timeout`` seconds per
    ngspice run; ``backend`` "loky" (local processes), "dask" or "ray" (bit-identical results on
    each); ``scheduler`` the address of an existing dask scheduler or Ray cluster (default: a
    local cluster of ``jobs`` worker processes); ``progress`` shows a progress bar.
    """

    jobs: int = 1
    chunk_size: int = DEFAULT_CHUNK_SIZE
    engine: str = DEFAULT_ENGINE
    timeout: float = 300.0
    backend: str = "loky"
    progress: bool = True
    scheduler: str | None = None

    def __post_init__(self) -> None:
        if (
            isinstance(self.chunk_size, bool)
            or not isinstance(self.chunk_size, int)
            or self.chunk_size < 1
        ):
            raise ConfigError(f"chunk_size must be a positive integer, got {self.chunk_size!r}")
        if self.chunk_size > MAX_CHUNK_SIZE:
            raise ConfigError(
                f"chunk_size must be at most {MAX_CHUNK_SIZE} instances per ngspice run, got "
                f"{_shown(self.chunk_size)}"
            )
        if self.engine not in available_engines():
            raise ConfigError(
                f"engine {self.engine!r} must be one of {', '.join(available_engines())}"
            )
        timeout = self.timeout
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not 0 < timeout <= MAX_TIMEOUT
        ):
            raise ConfigError(
                f"timeout must be positive seconds, at most {MAX_TIMEOUT:g}, got {_shown(timeout)}"
            )
        jobs = self.jobs
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs == 0 or jobs < -1:
            raise ConfigError(f"jobs must be a positive integer or -1 (all cores), got {jobs!r}")
        if jobs > MAX_JOBS:
            raise ConfigError(
                f"jobs must be at most {MAX_JOBS} worker processes, got {_shown(jobs)} "
                "(a cluster's size comes from --scheduler, not --jobs)"
            )
        check_backend(self.backend, self.scheduler)


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
) -> Family:
    """Simulate ``n`` Monte Carlo instances of ``neuron`` and return (and store) the family.

    ``neuron``: a built-in name, a spec/netlist path or a :class:`NeuronSpec`. ``temperature`` in
    °C overrides the spec's. With a ``store`` the family is streamed into it chunk by chunk and
    cached there (a second identical call runs nothing) and a killed run resumes; without one it
    is only returned. ``noise`` and ``speed`` (settings, or True for the defaults) add those
    analyses; on a stored family they run alone, without repeating the DC sweep.
    ``arrays=False`` (with a store) returns the family without its N×K arrays (see
    :meth:`Store.load`), for campaigns whose families are read from the store later.
    """
    spec = get_neuron(neuron)
    if temperature is not None:
        spec = spec.with_temperature(temperature)
    mc = MonteCarlo(n=n, seed=seed, chip_size=chip_size, corner=corner)
    options = options or RunOptions()
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
        if key not in target:
            _extract_to_store(target, spec, mc, key, options)
        else:  # a journal left by a run killed between its commit and the clean-up
            target.journal(key, options.chunk_size).clear()
        family = target.load(key, arrays=arrays)
    if noise is not None:
        family.noise = add_noise(family, spec, noise, target, options, arrays)
    if speed is not None:
        family.speed = add_speed(family, spec, speed, target, options, arrays)
    return family


class FamilySink(Protocol):
    """Where a family's pieces go as they are made: a :class:`~circuitnn.store.FamilyWriter`
    (HDF5, bounded memory) or a :class:`MemoryFamily`."""

    def write_header(
        self,
        attrs: dict[str, Any],
        grid: np.ndarray,
        output_unit: str,
        parameter_names: tuple[str, ...],
        parameters: np.ndarray,
        chip: np.ndarray,
    ) -> None: ...

    def write_rows(
        self,
        start: int,
        curves: np.ndarray,
        supply_current: np.ndarray,
        input_current: np.ndarray,
        power: np.ndarray,
        status: np.ndarray,
        reasons: list[str],
        descriptors: dict[str, np.ndarray],
    ) -> None: ...

    def finish(self, nominal_curve: np.ndarray, attrs: dict[str, Any] | None = None) -> None: ...


def _extract_to_store(
    store: Store, spec: NeuronSpec, mc: MonteCarlo, key: str, options: RunOptions
) -> None:
    """Stream the family into a scratch file beside ``store`` and commit it (crash-safe)."""
    journal = store.journal(key, options.chunk_size)
    try:
        with store.family_writer(journal, key, mc.n, options.chunk_size) as writer:
            _extract_into(writer, spec, mc, options, journal)
        store.commit_written(writer)
    finally:
        journal.tidy()
    journal.clear()


def _extract_into(
    sink: FamilySink,
    spec: NeuronSpec,
    mc: MonteCarlo,
    options: RunOptions,
    journal: Journal | None,
) -> None:
    """Simulate every chunk (journaled, in parallel) and hand each to ``sink`` as it arrives."""
    table = sample_parameters(spec, mc)
    grid = spec.sweep.grid()
    sink.write_header(
        _attrs(spec, mc, options), grid, spec.output.unit, table.names, table.values, table.chip
    )
    starts = range(0, mc.n, options.chunk_size)
    tables = [sample_parameters(spec, mc, s, min(s + options.chunk_size, mc.n)) for s in starts]
    tasks = [
        (f"chunk-{table.index[0]:09d}", (spec, table, options.engine, options.timeout))
        for table in tables
    ]
    # the sink writes (HDF5 compression, checksums) in a thread of their own, so they overlap the
    # simulation of the next chunks; at most WRITES_IN_FLIGHT chunks wait for it
    with ThreadPoolExecutor(1, thread_name_prefix="circuitnn-writer") as writer:
        writes: deque[Future[None]] = deque()
        for _, arrays in stream_journaled(
            simulate_chunk,
            tasks,
            [len(t) for t in tables],
            journal,
            options,
            f"simulating {spec.name}",
            describe=lambda task: f"{spec.name} chunk {task[1].index[0]}-{task[1].index[-1]}",
        ):
            chunk = ChunkResult.from_arrays(arrays)
            power = _power(spec, chunk.supply_current, chunk.input_current)
            writes.append(
                writer.submit(
                    sink.write_rows,
                    chunk.start,
                    chunk.curves,
                    chunk.supply_current,
                    chunk.input_current,
                    power,
                    chunk.status,
                    chunk.reasons,
                    describe(grid, chunk.curves, power),
                )
            )
            del chunk, arrays, power
            while len(writes) > WRITES_IN_FLIGHT or (writes and writes[0].done()):
                writes.popleft().result()  # a failed write raises here
        while writes:
            writes.popleft().result()
    nominal = _nominal(spec, mc, options, journal)
    sink.finish(nominal.curves[0], {"created": _now()})


def _nominal(
    spec: NeuronSpec, mc: MonteCarlo, options: RunOptions, journal: Journal | None
) -> ChunkResult:
    saved = journal.load_arrays("nominal") if journal is not None else None
    if saved is not None:
        return ChunkResult.from_arrays(saved)
    arrays = simulate_chunk(
        spec, nominal_table(spec, mc.corner), options.engine, options.timeout
    ).to_arrays()
    if journal is not None:
        journal.save_arrays("nominal", arrays)
    return ChunkResult.from_arrays(arrays)


def _power(spec: NeuronSpec, supply_current: np.ndarray, input_current: np.ndarray) -> np.ndarray:
    """Static power (N×K, W) delivered by the supplies and the measured inputs."""
    volts = np.array(list(spec.ports.supplies.values()), dtype=np.float64)
    power = np.einsum("nsk,s->nk", supply_current, volts)
    power += np.einsum("nik,ik->nk", input_current, input_voltages(spec))
    return power


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
        "ngspice_version": ngspice_version(),
        "circuitnn_version": __version__,
        "schema_version": SCHEMA_VERSION,
    }


class MemoryFamily:
    """A :class:`FamilySink` that fills in-memory arrays and returns them as a :class:`Family`."""

    def __init__(self, key: str, spec: NeuronSpec, n: int) -> None:
        self.key, self.spec, self.n = key, spec, n
        self._arrays: dict[str, np.ndarray] = {}
        self._descriptors: dict[str, np.ndarray] = {}
        self._reasons = [""] * n
        self._header: dict[str, Any] = {}

    def write_header(
        self,
        attrs: dict[str, Any],
        grid: np.ndarray,
        output_unit: str,
        parameter_names: tuple[str, ...],
        parameters: np.ndarray,
        chip: np.ndarray,
    ) -> None:
        """Keep the provenance, grid and parameter table."""
        self._header = {
            "attrs": dict(attrs),
            "grid": grid,
            "output_unit": output_unit,
            "parameter_names": parameter_names,
            "parameters": parameters,
            "chip": chip,
        }

    def write_rows(
        self,
        start: int,
        curves: np.ndarray,
        supply_current: np.ndarray,
        input_current: np.ndarray,
        power: np.ndarray,
        status: np.ndarray,
        reasons: list[str],
        descriptors: dict[str, np.ndarray],
    ) -> None:
        """Copy one chunk's rows into the family's arrays."""
        stop = start + len(status)
        for name, values, target in (
            ("curves", curves, self._arrays),
            ("supply_current", supply_current, self._arrays),
            ("input_current", input_current, self._arrays),
            ("power", power, self._arrays),
            ("status", status, self._arrays),
            *((name, values, self._descriptors) for name, values in descriptors.items()),
        ):
            if name not in target:
                target[name] = np.empty((self.n, *values.shape[1:]), dtype=values.dtype)
            target[name][start:stop] = values
        self._reasons[start:stop] = list(reasons)

    def finish(self, nominal_curve: np.ndarray, attrs: dict[str, Any] | None = None) -> None:
        """Keep the nominal curve and the last attributes."""
        self._header["nominal_curve"] = nominal_curve
        self._header["attrs"].update(attrs or {})

    def family(self) -> Family:
        """The finished family."""
        header, arrays = self._header, self._arrays
        return Family(
            key=self.key,
            neuron=self.spec.name,
            grid=header["grid"],
            curves=arrays["curves"],
            nominal_curve=header["nominal_curve"],
            supply_current=arrays["supply_current"],
            supplies=tuple(self.spec.ports.supplies),
            input_current=arrays["input_current"],
            power=arrays["power"],
            parameter_names=header["parameter_names"],
            parameters=header["parameters"],
            chip=header["chip"],
            status=arrays["status"],
            reasons=self._reasons,
            descriptors=self._descriptors,
            output_unit=header["output_unit"],
            attrs=header["attrs"],
        )
