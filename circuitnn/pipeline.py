"""Extract a family: sample → render → simulate (in parallel chunks) → describe → store.

A family is identified by a content hash of everything that determines its numbers; asking for a
family already in the store is a cache hit that runs no simulation, and an interrupted extraction
resumes from the chunks its journal holds.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from circuitnn import __version__
from circuitnn.analyses import NoiseAnalysis, SpeedAnalysis
from circuitnn.analysis_pipeline import add_noise, add_speed
from circuitnn.circuits import get_neuron
from circuitnn.errors import ConfigError
from circuitnn.extract import describe
from circuitnn.family import Family
from circuitnn.journaled import run_journaled
from circuitnn.simulate import ChunkResult, simulate_chunk
from circuitnn.spec import NeuronSpec
from circuitnn.spice.engines import DEFAULT_ENGINE, available_engines, ngspice_version
from circuitnn.store import SCHEMA_VERSION, Journal, Store
from circuitnn.testbench import input_voltages
from circuitnn.variation import MonteCarlo, nominal_table, sample_parameters

DEFAULT_CHUNK_SIZE = 250


@dataclass(frozen=True)
class RunOptions:
    """How to run an extraction (none of it changes the results beyond solver tolerance).

    ``jobs`` worker processes (-1 = all cores); ``chunk_size`` instances per ngspice run (fixed, so
    results do not depend on ``jobs``); ``engine`` "subprocess" or "shared"; ``timeout`` seconds per
    ngspice run; ``backend`` a joblib backend name; ``progress`` shows a progress bar.
    """

    jobs: int = 1
    chunk_size: int = DEFAULT_CHUNK_SIZE
    engine: str = DEFAULT_ENGINE
    timeout: float = 300.0
    backend: str = "loky"
    progress: bool = True

    def __post_init__(self) -> None:
        if (
            isinstance(self.chunk_size, bool)
            or not isinstance(self.chunk_size, int)
            or self.chunk_size < 1
        ):
            raise ConfigError(f"chunk_size must be a positive integer, got {self.chunk_size!r}")
        if self.engine not in available_engines():
            raise ConfigError(
                f"engine {self.engine!r} must be one of {', '.join(available_engines())}"
            )
        if not self.timeout > 0:
            raise ConfigError(f"timeout must be positive seconds, got {self.timeout!r}")


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
) -> Family:
    """Simulate ``n`` Monte Carlo instances of ``neuron`` and return (and store) the family.

    ``neuron``: a built-in name, a spec/netlist path or a :class:`NeuronSpec`. ``temperature`` in
    °C overrides the spec's. With a ``store`` the family is cached there (a second identical call
    runs nothing) and a killed run resumes; without one it is only returned. ``noise`` and
    ``speed`` (settings, or True for the defaults) add those analyses; on a stored family they run
    alone, without repeating the DC sweep.
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
    if target is not None and key in target:
        family = target.load(key)
    else:
        journal = target.journal(key, options.chunk_size) if target is not None else None
        chunks = _run_chunks(spec, mc, options, journal)
        nominal = _nominal(spec, mc, options, journal)
        family = _assemble(spec, mc, key, chunks, nominal, options)
        if target is not None:
            target.commit(family)
            assert journal is not None
            journal.clear()
    if noise is not None:
        family.noise = add_noise(family, spec, noise, target, options)
    if speed is not None:
        family.speed = add_speed(family, spec, speed, target, options)
    return family


def _run_chunks(
    spec: NeuronSpec, mc: MonteCarlo, options: RunOptions, journal: Journal | None
) -> list[ChunkResult]:
    starts = range(0, mc.n, options.chunk_size)
    tables = [sample_parameters(spec, mc, s, min(s + options.chunk_size, mc.n)) for s in starts]
    tasks = [
        (f"chunk-{table.index[0]:09d}", (spec, table, options.engine, options.timeout))
        for table in tables
    ]
    results = run_journaled(
        simulate_chunk,
        tasks,
        [len(t) for t in tables],
        journal,
        options,
        f"simulating {spec.name}",
        describe=lambda task: f"{spec.name} chunk {task[1].index[0]}-{task[1].index[-1]}",
    )
    return [ChunkResult.from_arrays(arrays) for arrays in results]


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


def _assemble(
    spec: NeuronSpec,
    mc: MonteCarlo,
    key: str,
    chunks: list[ChunkResult],
    nominal: ChunkResult,
    options: RunOptions,
) -> Family:
    table = sample_parameters(spec, mc)
    curves = np.concatenate([c.curves for c in chunks])
    supply_current = np.concatenate([c.supply_current for c in chunks])
    input_current = np.concatenate([c.input_current for c in chunks])
    volts = np.array(list(spec.ports.supplies.values()), dtype=np.float64)
    power = np.einsum("nsk,s->nk", supply_current, volts)
    power += np.einsum("nik,ik->nk", input_current, input_voltages(spec))
    grid = spec.sweep.grid()
    status = np.concatenate([c.status for c in chunks])
    reasons = [reason for c in chunks for reason in c.reasons]
    attrs = {
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
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds"),
    }
    return Family(
        key=key,
        neuron=spec.name,
        grid=grid,
        curves=curves,
        nominal_curve=nominal.curves[0],
        supply_current=supply_current,
        supplies=tuple(spec.ports.supplies),
        input_current=input_current,
        power=power,
        parameter_names=table.names,
        parameters=table.values,
        chip=table.chip,
        status=status,
        reasons=reasons,
        descriptors=describe(grid, curves, power),
        output_unit=spec.output.unit,
        attrs=attrs,
    )
