#!/usr/bin/env python
"""End-to-end extraction benchmark for circuitnn.

One command, every ratio measured in the same run::

    .venv/bin/python benchmarks/bench_extract.py            # N = 4000 mos_diffpair_level1
    .venv/bin/python benchmarks/bench_extract.py --n 1000   # another size
    .venv/bin/python benchmarks/bench_extract.py --quick    # smoke run (~15 s, for tests)

It times ``extract_family`` (sample → netlist → simulate → parse → HDF5 store, a fresh store every
time, so never a cache hit) and compares it with

  (a) as information, a naive loop of one PySpice simulation per sample (two variants: PySpice's
      Circuit/simulator API, and NgSpiceShared with a one-instance netlist), measured on a subset
      of the samples in a separate process and extrapolated per sample to N;
  (b) ngspice's floor: the best raw ``ngspice -b -r`` configuration of the same work (the plain
      batched netlists, no self-check or nominal run, in chunks of 50-500 instances, with and
      without the bench's ``.options noopiter``, each reading the realized device parameters
      with one ``.op`` before its sweep as circuitnn does; the same without that ``.op`` is
      printed as information), compared on CPU seconds (the machine is
      shared: other processes inflate wall time, hardly CPU time); target ≤ 1.15× with 1 job;
      also plain ``ngspice -b -r`` on the very netlists circuitnn renders (information);
  (c) circuitnn with 2 jobs against 1 job (loky pool warmed once before timing), target ≥ 1.7×,
      with the machine's own 2-process calibration printed beside it, the bound the run's own
      work allows (the main process's CPU beside the workers) and, as information, the same
      extraction without a store (family in memory) with 1 and 2 jobs;
  (d) both engines, "subprocess" and "shared";
  (e) peak memory (RSS) of a fresh process running one extraction, its loky workers and its
      ngspice processes, sampled by psutil in a thread;
  (f) what batching safely costs: raw ngspice on the batched netlists with and without each
      chunk's self-check instance (the cost of the self-check), and a bistable neuron (a CMOS
      Schmitt trigger, tests/data/schmitt.toml) whose instances must run alone: the share that
      did, and circuitnn's time against raw ngspice on its batched (coupled, wrong) netlists.

The neuron is the textbook (level-1, square-law) diff pair, ``mos_diffpair_level1``: the built-in
``mos_diffpair`` has BSIM4 cards, 20-40x more ngspice work per instance.

It also splits the time of the 1-job runs into stages (render, ngspice, raw parse, assemble,
journal, HDF5, ...) with timers wrapped around the library's functions, analyses the 2-job runs
(serial main-process work vs the parallel phase), sweeps the chunk size, and runs a few
experiments (ngspice alone per chunk size, edited netlists, HDF5 compression, journal fsync).
See benchmarks/README.md for what every printed line means.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

NEURON = "mos_diffpair_level1"
BISTABLE = ROOT / "tests" / "data" / "schmitt.toml"
MIB = 1024 * 1024


# --------------------------------------------------------------------------------------------
# memory and CPU monitoring
# --------------------------------------------------------------------------------------------


class Monitor:
    """Samples RSS of this process and of all its descendants (psutil) in a background thread.

    ``with monitor.phase(name):`` records, for that phase, the peak RSS of the main process, of
    the Python children (loky workers, a naive-loop child) summed, of the ngspice processes summed,
    and of the total; plus the CPU time that processes *outside* this benchmark's process tree used
    meanwhile ("foreign" CPU: other jobs on the machine, which make timings noisy) and the
    hypervisor's steal time.
    """

    def __init__(self, interval: float = 0.05, sampling: bool = True) -> None:
        self.interval = interval
        self.sampling = sampling
        self.phases: dict[str, dict[str, float]] = {}
        self.runs: list[dict[str, float]] = []
        self._current: dict[str, float] | None = None
        self._stop = threading.Event()
        try:
            import psutil

            self._psutil = psutil
            self._process = psutil.Process()
        except ImportError:  # pragma: no cover - psutil is in the dev extra
            self._psutil = None
            self._process = None
        self._thread = threading.Thread(target=self._run, name="rss-monitor", daemon=True)
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        return self._psutil is not None

    def start(self) -> None:
        if self.available and self.sampling:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def sample(self) -> tuple[int, int, int]:
        """RSS in bytes: (main process, python children summed, ngspice children summed)."""
        assert self._process is not None
        main = self._process.memory_info().rss
        python = ngspice = 0
        for child in self._process.children(recursive=True):
            with contextlib.suppress(self._psutil.Error):
                rss = child.memory_info().rss
                if "ngspice" in child.name():
                    ngspice += rss
                else:
                    python += rss
        return main, python, ngspice

    def _update(self, record: dict[str, float], main: int, python: int, ngspice: int) -> None:
        record["main"] = max(record["main"], main)
        record["python"] = max(record["python"], python)
        record["ngspice"] = max(record["ngspice"], ngspice)
        record["total"] = max(record["total"], main + python + ngspice)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                sizes = self.sample()
            except self._psutil.Error:
                continue
            with self._lock:
                if self._current is not None:
                    self._update(self._current, *sizes)
            self._stop.wait(self.interval)

    def cpu(self) -> tuple[float, float, float]:
        """(steal, system-wide busy, this process tree) CPU-seconds, cumulative."""
        if not self.available:
            return 0.0, 0.0, 0.0
        times = self._psutil.cpu_times()
        busy = times.user + times.nice + times.system + getattr(times, "irq", 0.0)
        busy += getattr(times, "softirq", 0.0)
        ours = 0.0
        for process in [self._process, *self._process.children(recursive=True)]:
            with contextlib.suppress(self._psutil.Error):
                t = process.cpu_times()
                ours += t.user + t.system + t.children_user + t.children_system
        return getattr(times, "steal", 0.0), busy, ours

    def wait_idle(self, max_wait: float, threshold: float = 0.15, window: float = 0.5) -> float:
        """Wait (up to ``max_wait`` s) until other processes use < ``threshold`` CPUs; seconds
        waited."""
        if not self.available or max_wait <= 0:
            return 0.0
        began = time.perf_counter()
        while True:
            _, busy0, ours0 = self.cpu()
            time.sleep(window)
            _, busy1, ours1 = self.cpu()
            foreign = (busy1 - busy0) - (ours1 - ours0)
            waited = time.perf_counter() - began
            if foreign / window < threshold or waited >= max_wait:
                return waited

    @contextlib.contextmanager
    def phase(self, name: str):
        record = {"main": 0.0, "python": 0.0, "ngspice": 0.0, "total": 0.0}
        steal0, busy0, ours0 = self.cpu()
        if self.available and self.sampling:
            self._update(record, *self.sample())
        with self._lock:
            self._current = record
        began = time.perf_counter()
        try:
            yield record
        finally:
            wall = time.perf_counter() - began
            if self.available and self.sampling:
                self._update(record, *self.sample())
            with self._lock:
                self._current = None
            steal1, busy1, ours1 = self.cpu()
            record["wall"] = wall
            record["steal"] = steal1 - steal0
            record["ours"] = ours1 - ours0
            record["foreign"] = max(0.0, (busy1 - busy0) - (ours1 - ours0))
            self.runs.append({"phase": name, **record})
            previous = self.phases.get(name)
            if previous is None:
                self.phases[name] = dict(record)
            else:
                for key in ("main", "python", "ngspice", "total"):
                    previous[key] = max(previous[key], record[key])
                for key in ("wall", "steal", "ours", "foreign"):
                    previous[key] = previous.get(key, 0.0) + record[key]


# --------------------------------------------------------------------------------------------
# stage timers wrapped around library functions
# --------------------------------------------------------------------------------------------


class StageTimer:
    """Exclusive wall time per stage, from timers wrapped around library functions.

    A stage's exclusive time excludes the time of other timed stages called inside it, so the
    main thread's stages add up to the total with "other" as the remainder. Stages timed in
    other threads (the writer thread) overlap the main thread's: they are kept apart, in
    ``background``.
    """

    def __init__(self) -> None:
        self.exclusive: dict[str, float] = defaultdict(float)
        self.background: dict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self._local = threading.local()  # each thread's stack of open stages
        self._patches: list[tuple[Any, str, Any, bool]] = []
        self.missing: list[str] = []

    def wrap(self, function: Any, stage: str) -> Any:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            stack = self._local.__dict__.setdefault("stack", [])
            frame = [0.0]
            stack.append(frame)
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - began
                stack.pop()
                main = threading.current_thread() is threading.main_thread()
                (self.exclusive if main else self.background)[stage] += elapsed - frame[0]
                self.calls[stage] += 1
                if stack:
                    stack[-1][0] += elapsed

        return timed

    def patch(self, owner: Any, name: str, stage: str) -> None:
        """Replace ``owner.name`` by a timed wrapper (skipped, and noted, if it does not exist)."""
        if not hasattr(owner, name):
            self.missing.append(f"{getattr(owner, '__name__', owner)}.{name}")
            return
        had_own = name in getattr(owner, "__dict__", {})
        original = owner.__dict__[name] if had_own else getattr(owner, name)
        function = getattr(owner, name)
        if isinstance(original, staticmethod):
            replacement: Any = staticmethod(self.wrap(original.__func__, stage))
        else:
            replacement = self.wrap(function, stage)
        setattr(owner, name, replacement)
        self._patches.append((owner, name, original, had_own))

    def patch_value(self, owner: Any, name: str, value: Any) -> None:
        had_own = name in getattr(owner, "__dict__", {})
        self._patches.append((owner, name, getattr(owner, name, None), had_own))
        setattr(owner, name, value)

    def restore(self) -> None:
        for owner, name, original, had_own in reversed(self._patches):
            if had_own:
                setattr(owner, name, original)
            else:
                with contextlib.suppress(AttributeError):
                    delattr(owner, name)
        self._patches.clear()


class ChunkLog:
    """Wraps ``pipeline.run_tasks``: when each chunk came back and how long its worker took."""

    def __init__(self) -> None:
        self.began = 0.0
        self.ended = 0.0
        self.arrivals: list[tuple[float, int, float, int]] = []  # (t, start, seconds, runs)

    def wrap(self, run_tasks: Any) -> Any:
        @functools.wraps(run_tasks)
        def logged(*args: Any, **kwargs: Any):
            self.began = time.perf_counter()
            try:
                for number, chunk in run_tasks(*args, **kwargs):
                    fields = chunk if isinstance(chunk, dict) else vars(chunk)
                    self.arrivals.append(
                        (
                            time.perf_counter() - self.began,
                            int(fields.get("start", -1)),
                            float(fields.get("seconds", float("nan"))),
                            int(fields.get("runs", 0)),
                        )
                    )
                    yield number, chunk
            finally:
                self.ended = time.perf_counter()

        return logged

    @property
    def phase(self) -> float:
        return self.ended - self.began if self.ended else float("nan")

    @property
    def worker_busy(self) -> float:
        return sum(seconds for _, _, seconds, _ in self.arrivals)


def instrument(engine: str, jobs: int, timer: StageTimer, chunks: ChunkLog, benches: list[str]):
    """Patch timers into the library for one run; returns nothing, undo with ``timer.restore()``."""
    import circuitnn.extract.dc_chunk as simulate
    import circuitnn.extract.journaled as journaled
    import circuitnn.extract.pipeline as pipeline
    import circuitnn.spice.engines as engines
    import circuitnn.spice.ngspice_process as ngspice_process
    import circuitnn.store as store
    import circuitnn.store.index as store_index

    timer.patch(pipeline, "family_key", "family key + ngspice -v")
    timer.patch(store.Store, "__contains__", "store lookup (cache check)")
    timer.patch(pipeline, "sample_parameters", "sample parameters")
    timer.patch(store.Journal, "save_arrays", "journal write (npz)")
    timer.patch(store.Journal, "load_arrays", "journal read (resume check)")
    timer.patch(store.Journal, "clear", "journal clear")
    timer.patch(pipeline, "_nominal", "nominal run (glue)")
    timer.patch(pipeline, "_assemble", "assemble family (concat, power, attrs)")
    timer.patch(pipeline, "describe", "descriptors (describe)")
    timer.patch(store.Store, "commit", "HDF5 commit: lock, fsync, rename")
    timer.patch(store_index, "write_family", "HDF5 write (h5py + blosc-lz4)")
    timer.patch(store.FamilyWriter, "write_rows", "HDF5 write by chunk (streaming, blosc-lz4)")
    timer.patch(store.Store, "commit_written", "HDF5 commit: fsync, rename, index rewrite")
    timer.patch(pipeline, "static_power", "power per chunk")
    timer.patch(journaled, "progress_bar", "progress bar setup")
    timer.patch_value(journaled, "run_tasks", chunks.wrap(journaled.run_tasks))
    if jobs != 1:
        return  # everything below runs inside the workers, out of reach of these timers
    timer.patch(pipeline, "simulate_chunk", "simulate_chunk (glue)")
    original_render = simulate.render_dc_bench

    def render_and_capture(*args: Any, **kwargs: Any) -> Any:
        bench = original_render(*args, **kwargs)
        table = args[1]
        if len(table) > 1 or int(table.index[0]) < 0:  # (a chunk, or the nominal circuit; not
            benches.append(bench.text)  # the self-check instances run alone beside a chunk)
        return bench

    timer.patch_value(simulate, "render_dc_bench", timer.wrap(render_and_capture, "render netlist"))
    timer.patch(simulate, "assemble", "assemble arrays (testbench.assemble)")
    timer.patch(engines, "raise_for_log", "classify ngspice log")
    if engine == "subprocess":
        timer.patch(
            engines.SubprocessEngine, "_execute", "engine I/O: tempdir, write .cir, read .raw"
        )
        timer.patch(ngspice_process, "_run_with_deadline", "ngspice process (ngspice -b)")
        timer.patch(engines, "read_raw", "parse raw file")
    else:  # libngspice runs in the engine's helper process: one round trip per run
        timer.patch(engines.SharedEngine, "_execute", "shared engine: helper round trip")


# --------------------------------------------------------------------------------------------
# the measurements
# --------------------------------------------------------------------------------------------


def run_circuitnn(
    n: int,
    seed: int,
    engine: str,
    jobs: int,
    chunk_size: int,
    workdir: Path,
    keep_family: bool = False,
) -> dict[str, Any]:
    """One end-to-end extraction into a fresh store, instrumented; returns timings and checks."""
    from circuitnn.extract.options import RunOptions
    from circuitnn.extract.pipeline import extract_family

    folder = Path(tempfile.mkdtemp(prefix="store-", dir=workdir))
    timer, chunks, benches = StageTimer(), ChunkLog(), []
    options = RunOptions(jobs=jobs, chunk_size=chunk_size, engine=engine, progress=False)
    instrument(engine, jobs, timer, chunks, benches)
    try:
        cpu, critical, began = cpu_seconds(), critical_cpu_seconds(), time.perf_counter()
        main = own_cpu_seconds()
        family = extract_family(NEURON, n=n, seed=seed, store=folder / "store.h5", options=options)
        seconds, cpu = time.perf_counter() - began, cpu_seconds() - cpu
        critical = critical_cpu_seconds() - critical
        main = own_cpu_seconds() - main
    finally:
        timer.restore()
    size = (folder / "store.h5").stat().st_size
    leftovers = [p.name for p in folder.iterdir() if p.name not in ("store.h5", "store.h5.lock")]
    shutil.rmtree(folder, ignore_errors=True)
    failed = int(np.count_nonzero(family.status != 1))
    return {
        "seconds": seconds,
        "cpu": cpu,  # complete for 1 job only (loky workers are not finished children)
        "critical_cpu": critical,
        "main_cpu": main,  # this process, all its threads (not its children)
        "failed": failed,
        "shape": list(family.curves.shape),
        "store_bytes": size,
        "leftovers": leftovers,
        "stages": dict(timer.exclusive),
        "background_stages": dict(timer.background),
        "calls": dict(timer.calls),
        "missing": timer.missing,
        "chunk_phase": chunks.phase,
        "worker_busy": chunks.worker_busy,
        "arrivals": chunks.arrivals,
        "benches": benches,
        "reference_curves": family.curves[:5].copy(),
        "family": family if keep_family else None,
    }


def run_in_memory(n: int, seed: int, jobs: int, chunk_size: int) -> float:
    """Seconds of the same extraction without a store (the family kept in memory: no journal,
    no HDF5), default engine: what the store's per-chunk work costs beside the simulation."""
    from circuitnn.extract.options import RunOptions
    from circuitnn.extract.pipeline import extract_family

    options = RunOptions(jobs=jobs, chunk_size=chunk_size, progress=False)
    began = time.perf_counter()
    extract_family(NEURON, n=n, seed=seed, options=options)
    return time.perf_counter() - began


def rendered_benches(n: int, seed: int, chunk_size: int) -> list[Any]:
    """The DC benches circuitnn renders for this family (chunks, then the nominal instance)."""
    from circuitnn.neuron.builtin import get_neuron
    from circuitnn.neuron.variation import MonteCarlo, nominal_table, sample_parameters
    from circuitnn.spice.benches import render_dc_bench

    spec = get_neuron(NEURON)
    mc = MonteCarlo(n=n, seed=seed)
    benches = [
        render_dc_bench(spec, sample_parameters(spec, mc, start, min(start + chunk_size, n)))
        for start in range(0, n, chunk_size)
    ]
    return [*benches, render_dc_bench(spec, nominal_table(spec, mc.corner))]


def render_benches(n: int, seed: int, chunk_size: int) -> list[str]:
    """The netlists of :func:`rendered_benches`."""
    return [bench.text for bench in rendered_benches(n, seed, chunk_size)]


FLOOR_SIZES = (50, 100, 250, 500)  # chunk sizes searched for ngspice's floor (quick: 50, 100)
WITHOUT_DEVICES = "info: "  # label prefix of a floor configuration that leaves out work


def with_devices(bench: Any) -> str:
    """``bench`` as one raw ``ngspice -b -r`` netlist that also reads the realized device
    parameters as circuitnn's chunk does (one ``.op`` before the sweep, in the same process):
    part of the same work whenever the neuron records them."""
    from circuitnn.neuron.builtin import get_neuron
    from circuitnn.neuron.devices import records_devices
    from circuitnn.spice.devices import device_prelude
    from circuitnn.spice.session import Job, session_netlist

    spec = get_neuron(NEURON)
    if not records_devices(spec):
        return bench.text
    saved = tuple(bench.vectors)
    prelude = device_prelude(spec, bench.instances, saved)
    return session_netlist([Job(bench.text, saved, None, "floor", (), prelude)])[0]


def floor_netlists(
    n: int, seed: int, sizes: tuple[int, ...], workdir: Path, chunk_size: int
) -> dict:
    """ngspice's floor for this family: the plain batched DC netlists (no self-check instance,
    no nominal run) in chunks of each size, each reading the realized device parameters as
    circuitnn does (one ``.op`` before the sweep), with the bench's own ``.options`` cards
    (``noopiter``) and without them: the best raw ``ngspice -b`` configuration of the same
    work is found by timing each. Beside them (label :data:`WITHOUT_DEVICES`, not a candidate):
    ``chunk_size`` without the devices' ``.op``, what reading them costs. Returns (label →
    netlist paths)."""
    from circuitnn.neuron.builtin import get_neuron
    from circuitnn.spice.benches import bench_options

    cards = {f".options {option}" for option in bench_options(get_neuron(NEURON))}
    configs = {}
    for size in sizes:
        benches = rendered_benches(n, seed, size)[:-1]  # without the nominal run
        texts = [with_devices(bench) for bench in benches]
        plain = ["\n".join(x for x in t.splitlines() if x not in cards) + "\n" for t in texts]
        configs[f"chunk {size}, bench options"] = write_netlists(texts, workdir / f"f{size}o")
        configs[f"chunk {size}, no options"] = write_netlists(plain, workdir / f"f{size}p")
    bare = [bench.text for bench in rendered_benches(n, seed, chunk_size)[:-1]]
    label = f"{WITHOUT_DEVICES}chunk {chunk_size}, bench options, without the devices' .op"
    configs[label] = write_netlists(bare, workdir / "fbare")
    return configs


def ngspice_path() -> str:
    return os.environ.get("CIRCUITNN_NGSPICE") or shutil.which("ngspice") or "ngspice"


def write_netlists(texts: list[str], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, text in enumerate(texts):
        path = folder / f"bench{number:04d}.cir"
        path.write_text(text)
        paths.append(path)
    return paths


def _ngspice(path: Path) -> tuple[float, int]:
    raw = path.with_suffix(".raw")
    env = {**os.environ, "SPICE_ASCIIRAWFILE": "0"}
    began = time.perf_counter()
    done = subprocess.run(
        [ngspice_path(), "-n", "-b", "-r", str(raw), str(path)],
        capture_output=True,
        cwd=path.parent,
        env=env,
        check=False,
    )
    elapsed = time.perf_counter() - began
    ok = done.returncode == 0 and raw.is_file() and raw.stat().st_size > 0
    raw.unlink(missing_ok=True)
    return elapsed, 0 if ok else 1


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and its finished children: a 1-job run's
    own work and its ngspice processes, which other processes on a shared machine do not
    inflate as they inflate wall time."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def own_cpu_seconds() -> float:
    """CPU seconds (user + system) of this process alone, all its threads."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def critical_cpu_seconds() -> float:
    """CPU seconds of this thread and of the finished children: a 1-job run's critical path
    (its main thread and its ngspice processes; the writer thread's HDF5 work overlaps them on
    another core)."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.thread_time() + children.ru_utime + children.ru_stime


def run_raw(paths: list[Path], parallel: int = 1) -> dict[str, Any]:
    """``ngspice -b -r`` on every netlist: sequentially (sum of the subprocess calls) or
    ``parallel`` at a time (wall time of the whole batch)."""
    if parallel == 1:
        cpu = cpu_seconds()
        results = [_ngspice(path) for path in paths]
        return {
            "seconds": sum(r[0] for r in results),
            "cpu": cpu_seconds() - cpu,
            "errors": sum(r[1] for r in results),
        }
    from concurrent.futures import ThreadPoolExecutor

    began = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        results = list(pool.map(_ngspice, paths))
    return {"seconds": time.perf_counter() - began, "errors": sum(r[1] for r in results)}


def _child_command(*extra: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), *extra]


def _child_json(command: list[str], what: str) -> dict[str, Any]:
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    wall = time.perf_counter() - began
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{what} failed with code {done.returncode}:\n{done.stderr[-3000:]}")
    result = json.loads(lines[-1])
    result["process_wall"] = wall
    return result


def run_naive(mode: str, samples: int, n: int, seed: int) -> dict[str, Any]:
    """The naive loop in a fresh Python process (libngspice keeps global state per process)."""
    return _child_json(
        _child_command(
            "--naive-child",
            mode,
            "--naive-samples",
            str(samples),
            "--n",
            str(n),
            "--seed",
            str(seed),
        ),
        f"naive loop ({mode})",
    )


def run_fresh(engine: str, jobs: int, n: int, seed: int, chunk_size: int) -> dict[str, Any]:
    """One extraction in a fresh Python process, as a one-off ``circuitnn extract`` call would
    run it (interpreter start, imports, cold loky pool included)."""
    return _child_json(
        _child_command(
            "--extract-child",
            f"{engine}:{jobs}",
            "--n",
            str(n),
            "--seed",
            str(seed),
            "--chunk-size",
            str(chunk_size),
        ),
        f"fresh-process extraction ({engine}, {jobs} jobs)",
    )


def extract_child(spec: str, n: int, seed: int, chunk_size: int) -> None:
    """Body of a fresh-process extraction: time and peak memory of the whole process tree."""
    began = time.perf_counter()
    engine, jobs = spec.split(":")
    monitor = Monitor(interval=0.05)
    monitor.start()
    folder = Path(tempfile.mkdtemp(prefix="circuitnn-bench-fresh-"))
    try:
        with monitor.phase("extract") as record:
            from circuitnn.extract.options import RunOptions
            from circuitnn.extract.pipeline import extract_family

            options = RunOptions(
                jobs=int(jobs), chunk_size=chunk_size, engine=engine, progress=False
            )
            family = extract_family(
                NEURON, n=n, seed=seed, store=folder / "store.h5", options=options
            )
            failed = int(np.count_nonzero(family.status != 1))
            del family
        seconds = time.perf_counter() - began
    finally:
        shutdown_pool()
        monitor.stop()
        shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps({"seconds": seconds, "failed": failed, **record}))


def naive_child(mode: str, samples: int, n: int, seed: int) -> None:
    """Body of the child process: one PySpice simulation per sample, each timed."""
    from naive_pyspice import tolerant_ngspice

    from circuitnn.neuron.builtin import get_neuron
    from circuitnn.neuron.variation import MonteCarlo, sample_parameters
    from circuitnn.spice.benches import render_dc_bench

    spec = get_neuron(NEURON)
    table = sample_parameters(spec, MonteCarlo(n=n, seed=seed), 0, min(samples, n))
    sweep = spec.sweep
    init_began = time.perf_counter()
    ng = tolerant_ngspice()
    init_seconds = time.perf_counter() - init_began
    curves, times = [], []

    if True:  # no sampling thread here: it would compete with the timed loop for the GIL
        if mode == "circuit":
            from PySpice.Spice.Netlist import Circuit

            supply = next(iter(spec.ports.supplies))
            for row in table.values:
                began = time.perf_counter()
                circuit = Circuit(f"naive {NEURON}")
                circuit.raw_spice = spec.netlist_text
                circuit.V("x", "x", circuit.gnd, sweep.start)
                circuit.V("cm", "cm", circuit.gnd, sweep.common_mode)
                circuit.VCVS("p", "inp", "cm", "x", circuit.gnd, 0.5)
                circuit.VCVS("n", "inn", "cm", "x", circuit.gnd, -0.5)
                circuit.V("dd", supply, circuit.gnd, spec.ports.supplies[supply])
                params = {name: float(v) for name, v in zip(table.names, row, strict=True)}
                circuit.X(
                    "n",
                    spec.subckt.name,
                    "inp",
                    "inn",
                    "outp",
                    "outn",
                    supply,
                    circuit.gnd,
                    **params,
                )
                simulator = circuit.simulator(
                    temperature=spec.temperature,
                    nominal_temperature=spec.temperature,
                    simulator="ngspice-shared",
                    ngspice_shared=ng,
                )
                analysis = simulator.dc(vx=slice(sweep.start, sweep.stop, sweep.step))
                curve = np.asarray(analysis["outp"]) - np.asarray(analysis["outn"])
                current = -np.asarray(analysis.branches["vdd"])
                times.append(time.perf_counter() - began)
                curves.append(curve)
                assert current.shape == curve.shape
        elif mode == "shared":
            for k in range(len(table)):
                began = time.perf_counter()
                bench = render_dc_bench(spec, table.rows(slice(k, k + 1)))
                ng.destroy()
                ng.load_circuit(bench.text)
                ng.run()
                plot = ng.plot(None, ng.last_plot)
                vectors = {}
                for name in bench.vectors:
                    key = name[2:-1] + ("#branch" if name.startswith("i(") else "")
                    vectors[name] = np.asarray(plot[key].to_waveform())
                ng.remove_circuit()
                out = bench.output_vectors[0]
                curve = vectors[out[0]] - vectors[out[1]]
                times.append(time.perf_counter() - began)
                curves.append(curve)
        else:
            raise SystemExit(f"unknown naive mode {mode!r}")
    try:
        import psutil

        rss = psutil.Process().memory_info().rss
    except ImportError:  # pragma: no cover
        rss = 0

    warm = times[1:] if len(times) > 1 else times
    half = max(1, len(warm) // 2)
    print(
        json.dumps(
            {
                "mode": mode,
                "samples": len(times),
                "init_seconds": init_seconds,
                "first_seconds": times[0],
                "per_sample": statistics.fmean(warm),
                "per_sample_first_half": statistics.fmean(warm[:half]),
                "per_sample_second_half": statistics.fmean(warm[-half:]),
                "total_seconds": sum(times),
                "rss_bytes": rss,
                "curves": np.asarray(curves[:5]).tolist(),
            }
        )
    )


def _burn(count: int) -> int:
    total = 0
    for value in range(count):
        total += value * value
    return total


def cpu_calibration(rounds: int = 3) -> dict[str, float]:
    """How well this machine runs 2 CPU-bound processes at once (the ceiling for (c))."""
    from joblib import Parallel, delayed

    count = 3_000_000
    with Parallel(n_jobs=2, backend="loky") as parallel:
        parallel(delayed(_burn)(10) for _ in range(2))
        speedups = []
        for _ in range(rounds):
            began = time.perf_counter()
            for _ in range(2):
                _burn(count)
            serial = time.perf_counter() - began
            began = time.perf_counter()
            parallel(delayed(_burn)(count) for _ in range(2))
            speedups.append(serial / (time.perf_counter() - began))
    return {"best": max(speedups), "median": statistics.median(speedups)}


def _warm_worker(pause: float) -> tuple[int, float]:
    began = time.perf_counter()
    import circuitnn.extract.dc_chunk
    import circuitnn.extract.pipeline  # noqa: F401
    from circuitnn.spice.engines import get_engine
    from circuitnn.spice.ngspice_process import ngspice_version

    ngspice_version()
    get_engine("subprocess")
    get_engine("shared")  # loads libngspice once per worker
    imported = time.perf_counter() - began
    time.sleep(pause)  # keep this worker busy so the other worker takes the next warm-up task
    return os.getpid(), imported


def warm_pool(jobs: int, backend: str = "loky") -> dict[str, Any]:
    """Start the reusable loky pool and import circuitnn (+ libngspice) in every worker."""
    from joblib import Parallel, delayed

    began = time.perf_counter()
    results = Parallel(n_jobs=jobs, backend=backend)(
        delayed(_warm_worker)(0.3) for _ in range(jobs)
    )
    return {
        "seconds": time.perf_counter() - began,
        "workers": len({pid for pid, _ in results}),
        "import_seconds": max(imported for _, imported in results),
    }


def shutdown_pool() -> None:
    with contextlib.suppress(Exception):
        from joblib.externals.loky import reusable_executor

        executor = reusable_executor._executor
        if executor is not None:
            executor.shutdown(wait=True, kill_workers=True)
        reusable_executor._executor = None


def hdf5_experiment(family: Any, workdir: Path) -> list[dict[str, Any]]:
    """Write the family's large arrays with the store's settings and with alternatives (each
    chunked one checksummed, as the store's are)."""
    from circuitnn.store.files import compressed, h5py_with_filters

    h5py = h5py_with_filters()

    arrays = {
        name: getattr(family, name)
        for name in ("curves", "supply_current", "input_current", "power")
        if getattr(family, name, None) is not None
    }
    settings = {
        "gzip 1 + shuffle": {
            "compression": "gzip",
            "compression_opts": 1,
            "shuffle": True,
        },
        "lzf + shuffle (the store's before)": {"compression": "lzf", "shuffle": True},
        "blosc lz4 + shuffle (store default)": compressed(),
        "no compression (chunked)": {},
        "no compression, contiguous": None,
    }
    results = []
    for label, options in settings.items():
        best, size = float("inf"), 0
        for _ in range(2):
            path = workdir / "h5-experiment.h5"
            began = time.perf_counter()
            with h5py.File(path, "w") as handle:
                for name, data in arrays.items():
                    if options is None or data.size == 0:
                        handle.create_dataset(name, data=data)
                    else:
                        rows = max(1, min(len(data), 256))
                        handle.create_dataset(
                            name,
                            data=data,
                            chunks=(rows, *data.shape[1:]),
                            fletcher32=True,
                            **options,
                        )
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
            best = min(best, time.perf_counter() - began)
            size = path.stat().st_size
            path.unlink()
        results.append({"setting": label, "seconds": best, "bytes": size})
    return results


def raw_chunk_sweep(seed: int, sizes: list[int], workdir: Path) -> list[dict[str, float]]:
    """ngspice alone on one chunk of each size: seconds per instance (best of 2)."""
    results = []
    for size in sizes:
        texts = render_benches(size, seed, size)[:1]
        paths = write_netlists(texts, workdir / f"sweep-{size}")
        best = min(_ngspice(paths[0])[0] for _ in range(2))
        results.append({"chunk": size, "seconds": best, "ms_per_instance": 1e3 * best / size})
    return results


def _session_ngspice(folder: Path) -> float:
    """``ngspice -n -b -r`` on a session netlist (``session.cir``, sourcing the files beside
    it), as circuitnn runs it."""
    began = time.perf_counter()
    subprocess.run(
        [ngspice_path(), "-n", "-b", "-r", "job0.raw", "-o", "session.log", "session.cir"],
        capture_output=True,
        cwd=folder,
        check=False,
    )
    return time.perf_counter() - began


def self_check_cost(n: int, seed: int, chunk_size: int, repeats: int, workdir: Path) -> dict:
    """Raw ngspice on each chunk's batched netlist, alone and with the chunk's self-check
    instance run after it in the same process (what circuitnn runs): seconds, best of rounds."""
    from circuitnn.extract.independence import check_positions
    from circuitnn.neuron.builtin import get_neuron
    from circuitnn.neuron.variation import MonteCarlo, sample_parameters
    from circuitnn.spice.benches import render_dc_bench
    from circuitnn.spice.session import Job, session_netlist

    spec = get_neuron(NEURON)
    mc = MonteCarlo(n=n, seed=seed)
    folders = []
    for number, start in enumerate(range(0, n, chunk_size)):
        table = sample_parameters(spec, mc, start, min(start + chunk_size, n))
        jobs = [render_dc_bench(spec, table)]
        jobs += [render_dc_bench(spec, table.rows([p])) for p in check_positions(table.index, 1)]
        for variant, count in (("batch", 1), ("checked", len(jobs))):
            folder = workdir / f"selfcheck-{variant}-{number}"
            folder.mkdir(parents=True)
            text, files = session_netlist(
                [Job(b.text, tuple(b.vectors), spec.sweep.points, "bench") for b in jobs[:count]]
            )
            (folder / "session.cir").write_text(text)
            for name, content in files.items():
                (folder / name).write_text(content)
            folders.append((variant, folder))
    times: dict[str, list[float]] = {"batch": [], "checked": []}
    for _ in range(max(1, repeats)):
        for variant in ("batch", "checked"):
            times[variant].append(
                sum(_session_ngspice(folder) for v, folder in folders if v == variant)
            )
    return {variant: best(values) for variant, values in times.items()}


def bistable_run(n: int, seed: int, chunk_size: int, workdir: Path) -> dict[str, Any]:
    """The Schmitt trigger: circuitnn (1 job) against raw ngspice on its batched netlists."""
    from circuitnn.extract.options import RunOptions
    from circuitnn.extract.pipeline import extract_family
    from circuitnn.neuron.spec_file import load_spec
    from circuitnn.neuron.variation import MonteCarlo, nominal_table, sample_parameters
    from circuitnn.spice.benches import render_dc_bench

    spec = load_spec(BISTABLE)
    options = RunOptions(chunk_size=chunk_size, progress=False)
    began = time.perf_counter()
    family = extract_family(spec, n=n, seed=seed, store=workdir / "bistable.h5", options=options)
    seconds = time.perf_counter() - began
    mc = MonteCarlo(n=n, seed=seed)
    texts = [
        render_dc_bench(spec, sample_parameters(spec, mc, s, min(s + chunk_size, n))).text
        for s in range(0, n, chunk_size)
    ]
    texts.append(render_dc_bench(spec, nominal_table(spec)).text)
    raw = run_raw(write_netlists(texts, workdir / "bistable-raw"))
    codes = np.bincount(family.run_alone, minlength=5)
    return {
        "n": n,
        "seconds": seconds,
        "raw_seconds": raw["seconds"],
        "codes": codes.tolist(),
        "checked": int(family.attrs["self_check_instances"]),
        "failed_chunks": int(family.attrs["self_check_failed_chunks"]),
        "chunks": len(texts) - 1,
    }


def netlist_variants(
    n: int, seed: int, chunk_size: int, repeats: int, workdir: Path
) -> list[dict[str, Any]]:
    """ngspice alone on circuitnn's netlists and on edited copies: what do the per-instance input
    sense sources and the saved-vector list cost? (Edits are regexes on circuitnn's format; a
    variant whose edit does not apply is left out.)"""
    import re

    texts = render_benches(n, seed, chunk_size)[:-1]

    def no_sense(text: str) -> str:
        text = re.sub(r"^vi\d+_\d+ .*\n", "", text, flags=re.M)
        text = re.sub(r"^(xn\d+) i0_\d+ i1_\d+ ", r"\1 inp inn ", text, flags=re.M)
        text = re.sub(r"^(xn\d+) i0_\d+ ", r"\1 x ", text, flags=re.M)
        return re.sub(r" i\(vi\d+_\d+\)", "", text)

    def outputs_only(text: str) -> str:
        text = re.sub(r" i\((vi\d+|vs_\w+?)_\d+\)", "", text)
        return re.sub(r"^\.save\s*\n", "", text, flags=re.M)

    candidates = {
        "circuitnn's netlists": texts,
        "without input sense sources": [no_sense(t) for t in texts],
        "saving outputs only": [outputs_only(t) for t in texts],
        "both": [outputs_only(no_sense(t)) for t in texts],
    }
    variants = {"circuitnn's netlists": texts}
    for label, edited in candidates.items():
        if edited != texts and edited not in variants.values():
            variants[label] = edited
    paths = {
        label: write_netlists(v, workdir / f"variant-{i}")
        for i, (label, v) in enumerate(variants.items())
    }
    times: dict[str, list[float]] = defaultdict(list)
    for _ in range(repeats):
        for label, files in paths.items():
            result = run_raw(files)
            if result["errors"]:
                times[label].append(float("nan"))
            else:
                times[label].append(result["seconds"])
    base = best(times["circuitnn's netlists"])
    return [
        {"variant": label, "seconds": best(v), "relative": best(v) / base}
        for label, v in times.items()
    ]


def journal_experiment(family: Any, chunk_size: int, workdir: Path) -> dict[str, float]:
    """The journal's per-chunk ``np.savez``, with and without the ``fsync`` the store does."""
    arrays = {
        name: getattr(family, name)
        for name in ("curves", "supply_current", "input_current", "status")
        if getattr(family, name, None) is not None
    }
    n = len(family.status)
    results = {}
    for label, sync in (("savez + fsync", True), ("savez, no fsync (store)", False)):
        began = time.perf_counter()
        for start in range(0, n, chunk_size):
            path = workdir / f"journal-{start}.npz"
            with open(path, "wb") as handle:
                np.savez(handle, **{k: v[start : start + chunk_size] for k, v in arrays.items()})
                if sync:
                    handle.flush()
                    os.fsync(handle.fileno())
            path.unlink()
        results[label] = time.perf_counter() - began
    return results


# --------------------------------------------------------------------------------------------
# reporting
# --------------------------------------------------------------------------------------------


def _fmt_ratio(value: float, kind: str) -> str:
    if not np.isfinite(value):
        return "n/a"
    return f"{value:.2f}x {kind}"


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str, str]] = []
        self.verdicts: list[tuple[str, bool]] = []

    def add(self, name: str, seconds: float, ratio: str, target: str, verdict: str) -> None:
        self.rows.append(
            (name, f"{seconds:.2f}" if np.isfinite(seconds) else "n/a", ratio, target, verdict)
        )

    def judge(
        self, name: str, seconds: float, ratio: float, kind: str, target: float, at_least: bool
    ) -> None:
        ok = bool(np.isfinite(ratio) and (ratio >= target if at_least else ratio <= target))
        sign = ">=" if at_least else "<="
        self.add(
            name, seconds, _fmt_ratio(ratio, kind), f"{sign}{target:g}x", "PASS" if ok else "FAIL"
        )
        self.verdicts.append((name, ok))

    def render(self) -> str:
        widths = [max(len(row[i]) for row in [*self.rows, self.header]) for i in range(5)]
        lines = []
        for row in [self.header, *self.rows]:
            lines.append(
                f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:<{widths[2]}}  "
                f"{row[3]:<{widths[3]}}  {row[4]}"
            )
        return "\n".join(lines)

    header = ("name", "seconds", "ratio-vs-baseline", "target", "PASS/FAIL")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def best(values: list[float]) -> float:
    return min(values) if values else float("nan")


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--n", type=int, default=None, help="instances (default 4000; quick 300)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        help="chunk size of the main runs (default: circuitnn's default)",
    )
    parser.add_argument("--jobs", type=int, default=2, help="jobs of the parallel runs")
    parser.add_argument(
        "--bistable-n", type=int, default=500, help="Schmitt-trigger instances of (f) (500)"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="interleaved rounds of every timed run; the best is reported (default 3; quick 1)",
    )
    parser.add_argument(
        "--naive-samples",
        type=int,
        default=None,
        help="samples simulated by each naive loop (default 200; quick 10)",
    )
    parser.add_argument("--engines", default="subprocess,shared")
    parser.add_argument(
        "--sweep-chunks",
        default=None,
        help="extra chunk sizes timed in every round (default 50,100,250; '' = none)",
    )
    parser.add_argument(
        "--max-idle-wait",
        type=float,
        default=None,
        help="before each timed run wait up to this many seconds for other "
        "processes to go quiet (default 30; quick 0)",
    )
    parser.add_argument(
        "--foreign-limit",
        type=float,
        default=0.05,
        help="a timed run during which other processes used more than this fraction of "
        "the CPUs is discarded and repeated (default 0.05)",
    )
    parser.add_argument(
        "--retries", type=int, default=None, help="repeats of a discarded run (default 2; quick 0)"
    )
    parser.add_argument(
        "--max-extra",
        type=float,
        default=900.0,
        help="seconds in all that may go to waiting for quiet and repeating runs (default 900)",
    )
    parser.add_argument(
        "--no-experiments",
        action="store_true",
        help="skip the CPU calibration, ngspice, netlist and storage experiments",
    )
    parser.add_argument(
        "--no-fresh", action="store_true", help="skip the fresh-process (CLI-like) runs"
    )
    parser.add_argument("--quick", action="store_true", help="small smoke run (for tests)")
    parser.add_argument("--json", type=Path, default=None, help="also write results as JSON")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any target fails")
    parser.add_argument("--naive-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--extract-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.n = args.n or 300
        args.repeats = args.repeats or 1
        args.naive_samples = args.naive_samples or 10
        args.chunk_size = args.chunk_size or 100
        args.sweep_chunks = "" if args.sweep_chunks is None else args.sweep_chunks
        args.max_idle_wait = 0.0 if args.max_idle_wait is None else args.max_idle_wait
        args.retries = 0 if args.retries is None else args.retries
        args.no_experiments = True
        args.bistable_n = min(args.bistable_n, 40)
    args.n = args.n or 4000
    args.repeats = args.repeats or 3
    args.naive_samples = args.naive_samples or 200
    args.sweep_chunks = "50,100,250" if args.sweep_chunks is None else args.sweep_chunks
    args.max_idle_wait = 30.0 if args.max_idle_wait is None else args.max_idle_wait
    args.retries = 2 if args.retries is None else args.retries
    for name in ("n", "repeats", "naive_samples", "jobs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.chunk_size is not None and args.chunk_size < 1:
        parser.error("--chunk-size must be at least 1")
    return args


def _plural(count: int) -> str:
    return f"{count} job" if count == 1 else f"{count} jobs"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))
    if args.naive_child:
        naive_child(args.naive_child, args.naive_samples, args.n, args.seed)
        return 0

    import circuitnn
    from circuitnn.extract.options import RunOptions
    from circuitnn.spice.engines import DEFAULT_ENGINE
    from circuitnn.spice.ngspice_process import ngspice_version

    # circuitnn's automatic chunk size for this family (the same for 1 and 2 jobs from N = 200)
    chunk_size = args.chunk_size or RunOptions().resolved(args.n).chunk_size
    if args.extract_child:
        extract_child(args.extract_child, args.n, args.seed, chunk_size)
        return 0
    engines = [e for e in args.engines.split(",") if e]
    engines.sort(key=lambda e: e != DEFAULT_ENGINE)
    default_engine = engines[0]
    n, seed, jobs = args.n, args.seed, args.jobs
    job_counts = (1, jobs) if jobs != 1 else (1,)
    sweep_sizes = sorted({int(s) for s in args.sweep_chunks.split(",") if s.strip()} - {chunk_size})
    workdir = Path(tempfile.mkdtemp(prefix="circuitnn-bench-"))
    # no RSS sampling thread in this process: it would cost CPU during the timed runs; memory is
    # measured in the fresh-process runs. This monitor only accounts CPU at phase boundaries.
    monitor = Monitor(sampling=False)
    monitor.start()
    steal0, busy0, ours0 = monitor.cpu()
    t_start = time.perf_counter()
    header = (
        f"circuitnn {circuitnn.__version__} extraction benchmark: {NEURON}, N={n}, seed={seed}, "
        f"chunk_size={chunk_size} ({len(range(0, n, chunk_size))} chunks + 1 nominal run), "
        f"best of {args.repeats} interleaved rounds\n"
        f"python {platform.python_version()}, {ngspice_version()}, {os.cpu_count()} CPUs, "
        f"load average at start {', '.join(f'{x:.2f}' for x in os.getloadavg())}, "
        f"default engine {DEFAULT_ENGINE}"
    )
    log(header.replace("\n", " | "))
    runs: dict[tuple[str, int, int], list[dict[str, Any]]] = defaultdict(list)
    raw_runs: list[float] = []
    raw_info: dict[str, Any] = {}
    naive: dict[str, dict[str, Any]] = {}
    fresh: dict[tuple[str, int], dict[str, Any]] = {}
    experiments: dict[str, Any] = {}
    quiet = {"waited": 0.0, "retried": 0.0, "discarded": 0, "flagged": 0}
    cpus = os.cpu_count() or 1

    def measure(label: str, function: Any) -> tuple[Any, dict[str, float]]:
        """Run ``function`` as a timed phase after waiting for quiet; if other processes used
        more than ``--foreign-limit`` of the machine meanwhile, discard it and run it again
        (``--retries`` times, within the ``--max-extra`` seconds budget)."""
        for attempt in range(args.retries + 1):
            budget = args.max_extra - quiet["waited"] - quiet["retried"]
            quiet["waited"] += monitor.wait_idle(min(args.max_idle_wait, max(0.0, budget)))
            with monitor.phase(label) as record:
                result = function()
            busy = record["foreign"] > args.foreign_limit * cpus * max(record["wall"], 1e-9)
            budget = args.max_extra - quiet["waited"] - quiet["retried"]
            if not busy or attempt == args.retries or budget <= 0:
                if busy:
                    quiet["flagged"] += 1
                    log(
                        f"{label}: kept although other processes used "
                        f"{record['foreign']:.1f} CPU-s (no retries left)"
                    )
                record["contaminated"] = float(busy)
                return result, record
            quiet["discarded"] += 1
            quiet["retried"] += record["wall"]
            log(
                f"{label}: discarded, other processes used {record['foreign']:.1f} CPU-s "
                f"meanwhile; running it again"
            )
        raise AssertionError("unreachable")

    try:
        log("warm-up runs (not timed): imports, ngspice -v, h5py, libngspice, page cache")
        for engine in engines:
            run_circuitnn(min(n, 2 * chunk_size), seed + 1, engine, 1, chunk_size, workdir)

        shutdown_pool()
        with monitor.phase("loky pool start + warm-up"):
            pool = (
                warm_pool(jobs)
                if jobs > 1
                else {"seconds": 0.0, "workers": 0, "import_seconds": 0.0}
            )
        log(
            f"loky pool of {pool['workers']} workers started and warmed in {pool['seconds']:.2f} s "
            f"(worker imports {pool['import_seconds']:.2f} s)"
        )

        if jobs > 1:  # printed beside the 2-job speed-up (quick: one round)
            log("CPU calibration: 2 pure-Python processes vs 1 (this machine's ceiling for (c))")
            experiments["cpu"] = cpu_calibration(rounds=1 if args.quick else 5)

        variants = [(e, j, chunk_size) for e in engines for j in job_counts]
        variants += [(default_engine, j, size) for size in sweep_sizes for j in job_counts]
        texts_rendered = render_benches(n, seed, chunk_size)
        sizes = (50, 100) if args.quick else FLOOR_SIZES
        floor_paths = floor_netlists(n, seed, sizes, workdir / "floor", chunk_size)
        floor_runs: dict[str, list[float]] = {config: [] for config in floor_paths}
        raw_paths: list[Path] = []
        keep: dict[str, Any] = {}
        for round_number in range(args.repeats):
            for number, (engine, job_count, size) in enumerate(variants):
                label = f"circuitnn {engine} {_plural(job_count)}" + (
                    f" chunk {size}" if size != chunk_size else ""
                )
                last = round_number == args.repeats - 1 and number == 0
                result, record = measure(
                    label,
                    functools.partial(
                        run_circuitnn, n, seed, engine, job_count, size, workdir, keep_family=last
                    ),
                )
                result["foreign"] = record["foreign"]
                if last:
                    keep["family"] = result.pop("family")
                runs[(engine, job_count, size)].append(result)
                log(
                    f"round {round_number + 1}: {label}: {result['seconds']:.2f} s "
                    f"({result['failed']} failed, other processes used "
                    f"{record['foreign']:.1f} CPU-s meanwhile)"
                )
            if jobs > 1:
                for job_count in job_counts:
                    seconds, _ = measure(
                        f"circuitnn in memory {_plural(job_count)}",
                        functools.partial(run_in_memory, n, seed, job_count, chunk_size),
                    )
                    experiments.setdefault("memory", {}).setdefault(job_count, []).append(seconds)
            if not raw_paths:
                captured = next(
                    (
                        r["benches"]
                        for (e, j, c), rs in runs.items()
                        for r in rs
                        if j == 1 and c == chunk_size and r["benches"]
                    ),
                    None,
                )
                raw_info["source"] = "captured from circuitnn's run" if captured else "rendered"
                raw_info["identical"] = bool(captured) and sorted(captured) == sorted(
                    texts_rendered
                )
                raw_paths = write_netlists(captured or texts_rendered, workdir / "raw")
                raw_info["count"] = len(raw_paths)
                raw_info["bytes"] = sum(p.stat().st_size for p in raw_paths)
            raw, record = measure("raw ngspice sequential", functools.partial(run_raw, raw_paths))
            raw_runs.append(raw["seconds"])
            for config, paths in floor_paths.items():
                result, _ = measure(f"floor {config}", functools.partial(run_raw, paths))
                assert result["errors"] == 0, config
                floor_runs[config].append(result["cpu"])
            log(
                f"round {round_number + 1}: raw ngspice -b sequential: {raw['seconds']:.2f} s "
                f"({raw['errors']} errors, other processes {record['foreign']:.1f} CPU-s)"
            )
        for result in (r for rs in runs.values() for r in rs):
            result.pop("benches", None)
        experiments["floor"] = floor_runs

        if keep.get("family") is not None and not args.no_experiments:
            log("experiment: HDF5 compression settings and journal fsync")
            experiments["hdf5"] = hdf5_experiment(keep["family"], workdir)
            experiments["journal"] = journal_experiment(keep["family"], chunk_size, workdir)
        keep.clear()

        raw_parallel = []
        for _ in range(max(1, min(2, args.repeats))):
            result, _ = measure(
                f"raw ngspice {jobs} at a time", functools.partial(run_raw, raw_paths, jobs)
            )
            raw_parallel.append(result["seconds"])
        log(f"raw ngspice -b, {jobs} at a time: {best(raw_parallel):.2f} s")
        shutdown_pool()

        for mode in ("circuit", "shared"):
            naive[mode], _ = measure(
                f"naive loop ({mode})",
                functools.partial(run_naive, mode, args.naive_samples, n, seed),
            )
            log(
                f"naive {mode}: {1e3 * naive[mode]['per_sample']:.2f} ms/sample over "
                f"{naive[mode]['samples']} samples"
            )
        reference = runs[(default_engine, 1, chunk_size)][0]["reference_curves"]
        for result in naive.values():
            got = np.asarray(result.pop("curves"))[: len(reference)]
            result["max_abs_diff"] = float(np.max(np.abs(got - reference[: len(got)])))

        if not args.no_fresh:
            for engine in engines[:1] if args.quick else engines:
                for job_count in job_counts:
                    fresh[(engine, job_count)], _ = measure(
                        f"fresh process {engine} {_plural(job_count)}",
                        functools.partial(run_fresh, engine, job_count, n, seed, chunk_size),
                    )
                    log(
                        f"fresh process {engine} {_plural(job_count)}: "
                        f"{fresh[(engine, job_count)]['process_wall']:.2f} s"
                    )

        log("experiment: the cost of the self-check; a bistable neuron")
        experiments["self_check"] = self_check_cost(n, seed, chunk_size, args.repeats, workdir)
        experiments["bistable"] = bistable_run(min(n, args.bistable_n), seed, chunk_size, workdir)
        if not args.no_experiments:
            log("experiment: ngspice alone on one chunk of each size")
            sizes = sorted({1, 25, 50, 100, 250, 500, 1000, chunk_size, *sweep_sizes})
            experiments["raw_chunks"] = raw_chunk_sweep(seed, sizes, workdir)
            log("experiment: netlist variants (input sense sources, saved vectors)")
            experiments["variants"] = netlist_variants(
                min(n, 2 * chunk_size), seed, chunk_size, args.repeats, workdir
            )
    finally:
        shutdown_pool()
        monitor.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    steal1, busy1, ours1 = monitor.cpu()
    elapsed = time.perf_counter() - t_start

    report, table, passed, judged = build_report(
        header,
        args,
        engines,
        default_engine,
        jobs,
        job_counts,
        chunk_size,
        sweep_sizes,
        runs,
        raw_runs,
        raw_parallel,
        raw_info,
        naive,
        fresh,
        experiments,
        pool,
        monitor,
        {
            "steal": steal1 - steal0,
            "foreign": max(0.0, (busy1 - busy0) - (ours1 - ours0)),
            "elapsed": elapsed,
            **quiet,
        },
    )
    print(report, flush=True)
    if args.json:
        payload = {
            "n": n,
            "chunk_size": chunk_size,
            "jobs": jobs,
            "repeats": args.repeats,
            "engines": engines,
            "pool": pool,
            "raw": raw_info,
            "runs": {
                f"{e}/{j}/{c}": [
                    {k: v for k, v in r.items() if k != "reference_curves"} for r in rs
                ]
                for (e, j, c), rs in runs.items()
            },
            "raw_sequential": raw_runs,
            "raw_parallel": raw_parallel,
            "naive": naive,
            "fresh": {f"{e}/{j}": r for (e, j), r in fresh.items()},
            "memory": monitor.phases,
            "phases": monitor.runs,
            "experiments": experiments,
            "table": table.rows,
            "passed": passed,
            "judged": judged,
        }
        args.json.write_text(json.dumps(payload, indent=1, default=str))
    return 1 if args.strict and passed < judged else 0


NGSPICE_STAGES = (
    "ngspice process (ngspice -b)",
    "ngspice bg_run + wait (shared)",
    "ngspice load_circuit",
    "ngspice exec_command",
)


def ngspice_seconds(run: dict[str, Any]) -> float:
    """Seconds a 1-job run spent inside ngspice (process, or libngspice load + run + commands)."""
    seconds = sum(run["stages"].get(stage, 0.0) for stage in NGSPICE_STAGES)
    return seconds if seconds > 0 else float("nan")


def build_report(
    header,
    args,
    engines,
    default_engine,
    jobs,
    job_counts,
    chunk_size,
    sweep_sizes,
    runs,
    raw_runs,
    raw_parallel,
    raw_info,
    naive,
    fresh,
    experiments,
    pool,
    monitor,
    machine,
) -> tuple[str, Table, int, int]:
    from circuitnn.spice.engines import DEFAULT_ENGINE

    n = args.n
    out: list[str] = [header, ""]
    table = Table()
    best_time = {key: best([r["seconds"] for r in rs]) for key, rs in runs.items()}

    def fastest(engine: str, job_count: int, size: int = chunk_size) -> dict[str, Any]:
        return min(runs[(engine, job_count, size)], key=lambda r: r["seconds"])

    raw_seq = best(raw_runs)
    floor_runs = experiments.get("floor", {})
    candidates = [config for config in floor_runs if not config.startswith(WITHOUT_DEVICES)]
    floor_config = min(candidates, key=lambda config: best(floor_runs[config]))
    floor = best(floor_runs[floor_config])
    names = {"circuit": "PySpice Circuit API", "shared": "NgSpiceShared, 1-instance netlist"}
    naive_total = {mode: r["per_sample"] * n for mode, r in naive.items()}
    naive_mode = min(naive_total, key=naive_total.get)
    naive_base = naive_total[naive_mode]
    for mode in naive:
        table.add(
            f"naive loop, {names[mode]} (extrapolated: {naive[mode]['samples']} of {n})",
            naive_total[mode],
            "baseline (a)" if mode == naive_mode else "-",
            "-",
            "base",
        )
    table.add(
        f"raw ngspice -b floor, CPU s: best of {len(candidates)} configurations ({floor_config})",
        floor,
        "baseline (b)",
        "-",
        "base",
    )
    for config in floor_runs:
        if config.startswith(WITHOUT_DEVICES):
            bare = best(floor_runs[config])
            table.add(
                f"    raw ngspice -b, CPU s, {config.removeprefix(WITHOUT_DEVICES)}",
                bare,
                _fmt_ratio(floor / bare, "time") + " (floor / this)",
                "-",
                "info",
            )
    table.add(
        f"raw ngspice -b -r, circuitnn's {raw_info['count']} netlists, sequential, wall",
        raw_seq,
        "-",
        "-",
        "info",
    )
    if "cpu" in experiments:
        table.add(
            f"CPU calibration: pure-Python loop, {jobs} processes vs 1 (median of rounds)",
            float("nan"),
            _fmt_ratio(experiments["cpu"]["median"], "speed-up"),
            "-",
            "info",
        )
    table.add(
        f"raw ngspice -b -r, same netlists, {jobs} at a time",
        best(raw_parallel),
        _fmt_ratio(raw_seq / best(raw_parallel), "speed-up"),
        "-",
        "info",
    )
    for engine in engines:
        t1 = best_time[(engine, 1, chunk_size)]
        mark = " (default)" if engine == DEFAULT_ENGINE else ""
        judged = engine == default_engine  # the targets are the default engine's
        table.add(
            f"(a) circuitnn {engine}{mark}, 1 job, vs naive",
            t1,
            _fmt_ratio(naive_base / t1, "faster"),
            "-",
            "info",
        )
        if engine == "subprocess":  # CPU time is complete only when ngspice's processes end
            one = runs[(engine, 1, chunk_size)]
            critical = [r["critical_cpu"] for r in one]
            title = (
                f"(b) circuitnn {engine}{mark}, 1 job, critical-path CPU s "
                "(main thread + ngspice), vs the raw ngspice floor"
            )
            if judged:
                table.judge(title, min(critical), min(critical) / floor, "time", 1.15, False)
            else:
                table.add(
                    title, min(critical), _fmt_ratio(min(critical) / floor, "time"), "-", "info"
                )
            for label, values in (
                ("critical-path CPU s, medians", critical),
                ("all CPU s (writer thread too)", [r["cpu"] for r in one]),
            ):
                table.add(
                    f"    circuitnn 1 job / floor, {label}",
                    statistics.median(values) if "medians" in label else min(values),
                    _fmt_ratio(
                        (
                            statistics.median(values) / statistics.median(floor_runs[floor_config])
                            if "medians" in label
                            else min(values) / floor
                        ),
                        "time",
                    ),
                    "-",
                    "info",
                )
        inner = [r["seconds"] / ngspice_seconds(r) for r in runs[(engine, 1, chunk_size)]]
        if all(np.isfinite(inner)):
            table.add(
                "    same run: total / its own ngspice time (median of rounds)",
                t1,
                _fmt_ratio(statistics.median(inner), "time"),
                "-",
                "info",
            )
        if jobs > 1:
            t2 = best_time[(engine, jobs, chunk_size)]
            title = f"(c) circuitnn {engine}{mark}, {jobs} jobs (warm pool), vs 1 job"
            if "cpu" in experiments:
                title += f" (CPU calibration {experiments['cpu']['median']:.2f}x)"
            if judged:
                table.judge(title, t2, t1 / t2, "speed-up", 1.7, True)
            else:
                table.add(title, t2, _fmt_ratio(t1 / t2, "speed-up"), "-", "info")
            table.add(
                f"    circuitnn {engine}, {jobs} jobs, vs naive",
                t2,
                _fmt_ratio(naive_base / t2, "faster"),
                "-",
                "info",
            )
    if len(engines) > 1:
        for job_count in job_counts:
            a = best_time[(engines[0], job_count, chunk_size)]
            b = best_time[(engines[1], job_count, chunk_size)]
            table.add(
                f"(d) {engines[1]} vs {engines[0]} engine, {_plural(job_count)}",
                b,
                _fmt_ratio(a / b, "speed-up"),
                "-",
                "info",
            )
    for (engine, job_count), result in fresh.items():
        table.add(
            f"    fresh process (CLI-like), {engine}, {_plural(job_count)}",
            result["process_wall"],
            _fmt_ratio(naive_base / result["process_wall"], "faster than naive"),
            "-",
            "info",
        )
    out += [table.render(), ""]

    failures = {f"{e}/{j}/{c}": [r["failed"] for r in rs] for (e, j, c), rs in runs.items()}
    if any(any(f) for f in failures.values()):
        out.append(f"WARNING: failed instances per run: {failures}")
    out.append(
        "notes: (a) baseline = the faster naive loop: time per sample measured in its own process "
        "after one warm-up sample, times N; it leaves out library start-up and HDF5 writing. "
        + "; ".join(
            f"{names[m]}: {1e3 * r['per_sample']:.2f} ms/sample (first half "
            f"{1e3 * r['per_sample_first_half']:.2f}, last half "
            f"{1e3 * r['per_sample_second_half']:.2f}), curves equal circuitnn's to "
            f"{r['max_abs_diff']:.0e} V"
            for m, r in naive.items()
        )
    )
    out.append(
        f"       (b) {raw_info['count']} netlists ({raw_info['bytes'] / MIB:.1f} MiB) "
        f"{raw_info['source']}; identical to a fresh render: "
        f"{'yes' if raw_info['identical'] else 'NO'}; only the ngspice subprocess calls are "
        "timed (best of the rounds)."
    )
    if jobs > 1:
        out.append(
            "       (c) the loky pool was started and warmed once before timing "
            f"({pool['workers']} workers, {pool['seconds']:.2f} s, "
            f"worker imports {pool['import_seconds']:.2f} s); "
            "the fresh-process lines include interpreter start, imports and a cold pool."
        )
    spread = ", ".join(
        f"{e} {j}j"
        + (f" c{c}" if c != chunk_size else "")
        + f" {best([r['seconds'] for r in rs]):.2f}-{max(r['seconds'] for r in rs):.2f}"
        f" [{fastest(e, j, c)['foreign']:.1f}]"
        for (e, j, c), rs in runs.items()
    )
    out.append(
        f"       spread best-worst s [other processes' CPU-s during the best run]: {spread}, "
        f"raw {best(raw_runs):.2f}-{max(raw_runs):.2f}"
    )
    line = (
        f"       machine: other processes used {machine['foreign']:.0f} CPU-s and the "
        f"hypervisor stole {machine['steal']:.1f} CPU-s during the {machine['elapsed']:.0f} s "
        f"run; {machine['waited']:.0f} s spent waiting for quiet, {machine['discarded']} runs "
        f"discarded and repeated because other processes used > "
        f"{100 * args.foreign_limit:.0f}% of the CPUs, {machine['flagged']} kept anyway"
    )
    if "cpu" in experiments:
        line += (
            f"; CPU calibration, pure Python, 2 processes vs 1: best "
            f"{experiments['cpu']['best']:.2f}x, median {experiments['cpu']['median']:.2f}x"
        )
    out += [line, ""]

    for engine in engines:
        run = fastest(engine, 1)
        total = run["seconds"]
        stages = dict(run["stages"])
        stages["other (untimed glue)"] = total - sum(stages.values())
        out.append(f"time split, circuitnn {engine}, 1 job (fastest run, {total:.2f} s):")
        for stage, seconds in sorted(stages.items(), key=lambda item: -item[1]):
            if seconds < 0.0005 and stage != "other (untimed glue)":
                continue
            calls = run["calls"].get(stage, "")
            out.append(
                f"  {stage:<44} {seconds:7.3f} s {100 * seconds / total:5.1f}%"
                + (f"  {calls} calls" if calls else "")
            )
        for stage, seconds in sorted(run.get("background_stages", {}).items()):
            calls = run["calls"].get(stage, "")
            out.append(
                f"  {stage + ' [writer thread, overlaps]':<44} {seconds:7.3f} s"
                + (f"         {calls} calls" if calls else "")
            )
        if run["missing"]:
            out.append(f"  (not in this version, not timed: {', '.join(run['missing'])})")
        out.append("")

    if jobs > 1:
        for engine in engines:
            one, two = fastest(engine, 1), fastest(engine, jobs)
            serial1 = one["seconds"] - one["chunk_phase"]
            serial2 = two["seconds"] - two["chunk_phase"]
            amdahl = one["seconds"] / (serial1 + one["chunk_phase"] / jobs)
            out.append(
                f"{jobs}-job analysis, {engine}: 1 job {one['seconds']:.2f} s = chunk phase "
                f"{one['chunk_phase']:.2f} + serial {serial1:.2f}; {jobs} jobs "
                f"{two['seconds']:.2f} s = chunk phase {two['chunk_phase']:.2f} + serial "
                f"{serial2:.2f}"
            )
            per1 = [s for _, _, s, _ in one["arrivals"]]
            per2 = [s for _, _, s, _ in two["arrivals"]]
            out.append(
                f"  chunk phase {one['chunk_phase'] / two['chunk_phase']:.2f}x faster; summed "
                f"simulate_chunk time {one['worker_busy']:.2f} s (1 job) -> "
                f"{two['worker_busy']:.2f} s ({jobs} jobs): each chunk ran "
                f"{two['worker_busy'] / max(one['worker_busy'], 1e-9):.2f}x slower with {jobs} "
                f"at once (mean {statistics.fmean(per1):.2f} -> {statistics.fmean(per2):.2f} s); "
                f"worker utilisation {100 * two['worker_busy'] / (jobs * two['chunk_phase']):.0f}%"
                f"; Amdahl bound from the 1-job serial part {amdahl:.2f}x"
            )
            main_stages = sorted(
                ((k, v) for k, v in two["stages"].items() if v >= 0.005), key=lambda item: -item[1]
            )
            writer = two.get("background_stages", {})
            out.append(
                "  main process in the 2-job run: "
                + ", ".join(f"{k} {v:.2f} s" for k, v in main_stages)
                + "; its writer thread: "
                + (", ".join(f"{k} {v:.2f} s" for k, v in writer.items()) or "-")
            )
            # on a machine with as many cores as jobs, the main process's own CPU time during
            # the chunk phase (writer thread, results received) takes turns with the workers
            beside = max(0.0, two["main_cpu"] - serial2)
            bound = one["seconds"] / (serial2 + (one["chunk_phase"] + beside) / jobs)
            out.append(
                f"  bound from the work on {jobs} cores: (1-job chunk phase "
                f"{one['chunk_phase']:.2f} s + the main process's CPU beside the workers "
                f"{beside:.2f} s) / {jobs} + serial {serial2:.2f} s -> {bound:.2f}x "
                f"(main process {two['main_cpu']:.2f} CPU s in all)"
            )
            memory = experiments.get("memory", {})
            if engine == DEFAULT_ENGINE and 1 in memory and jobs in memory:
                one_m, two_m = best(memory[1]), best(memory[jobs])
                out.append(
                    f"  the same without a store (family in memory: no journal, no HDF5; best of "
                    f"rounds): 1 job {one_m:.2f} s, {jobs} jobs {two_m:.2f} s -> "
                    f"{one_m / two_m:.2f}x"
                )
        out.append("")

    out.append(
        f"(e) peak memory, RSS in MiB, sampled every 50 ms inside a fresh process running one "
        f"N={n} extraction (main = that process, workers = loky workers summed, ngspice = "
        "ngspice processes summed, total = largest simultaneous sum):"
    )
    out.append(f"  {'run':<34} {'main':>6} {'workers':>8} {'ngspice':>8} {'total':>6}")
    for (engine, job_count), r in fresh.items():
        out.append(
            f"  {'circuitnn ' + engine + ', ' + _plural(job_count):<34} {r['main'] / MIB:6.0f} "
            f"{r['python'] / MIB:8.0f} {r['ngspice'] / MIB:8.0f} {r['total'] / MIB:6.0f}"
        )
    for mode, r in naive.items():
        label = f"naive {mode} loop, {r['samples']} samples"
        out.append(f"  {label:<34} {r['rss_bytes'] / MIB:6.0f}   (RSS at the end of the loop)")
    if not fresh:
        out.append("  (fresh-process runs skipped: no memory figures)")
    out.append("")

    rows: dict[int, dict[int, float]] = defaultdict(dict)
    for (engine, job_count, size), rs in runs.items():
        if engine == default_engine:
            rows[size][job_count] = best([r["seconds"] for r in rs])
    ms = {r["chunk"]: r["ms_per_instance"] for r in experiments.get("raw_chunks", [])}
    if len(rows) > 1 or ms:
        out.append(
            f"chunk size, circuitnn {default_engine} (best of {args.repeats}; ngspice alone "
            "= one chunk of that size, ms per instance):"
        )
        for size in sorted(rows):
            one = rows[size].get(1, float("nan"))
            two = rows[size].get(jobs, float("nan"))
            out.append(
                f"  chunk {size:>5}: 1 job {one:6.2f} s, {jobs} jobs {two:6.2f} s "
                f"({one / two:4.2f}x), 1 job vs naive {naive_base / one:5.2f}x"
                + (f", ngspice alone {ms[size]:.2f} ms/inst" if size in ms else "")
            )
        if ms:
            out.append(
                "  ngspice alone, ms per instance by chunk size: "
                + ", ".join(f"{k}: {v:.2f}" for k, v in sorted(ms.items()))
            )
    if experiments.get("self_check") or experiments.get("bistable"):
        out.append("")
        out.append("(f) batching that never changes an answer:")
    if experiments.get("self_check"):
        cost = experiments["self_check"]
        out.append(
            f"  self-check on {NEURON} (one instance of each chunk run alone after the chunk, "
            f"same ngspice process), raw ngspice best of rounds: batched netlists "
            f"{cost['batch']:.2f} s, with the self-check {cost['checked']:.2f} s "
            f"(+{100 * (cost['checked'] / cost['batch'] - 1):.1f} %)"
        )
    if experiments.get("bistable"):
        b = experiments["bistable"]
        codes = b["codes"]
        alone = b["n"] - codes[0]
        out.append(
            f"  bistable neuron (Schmitt trigger, N={b['n']}, {b['chunks']} chunks): "
            f"{100 * alone / b['n']:.1f} % of instances simulated alone (self-check "
            f"{codes[2]}, jumping curves {codes[3]}, chunks off their self-check {codes[4]}: "
            f"{b['failed_chunks']} of {b['chunks']} chunks); circuitnn 1 job {b['seconds']:.2f} s "
            f"vs raw ngspice on its batched (coupled) netlists {b['raw_seconds']:.2f} s "
            f"({b['seconds'] / b['raw_seconds']:.2f}x: the price of right curves)"
        )
    if experiments.get("variants"):
        out.append(
            "ngspice alone on edited netlists (best of rounds, relative to circuitnn's): "
            + "; ".join(
                f"{r['variant']} {r['seconds']:.2f} s ({r['relative']:.2f}x)"
                for r in experiments["variants"]
            )
        )
    if experiments.get("hdf5"):
        out.append(
            "HDF5 write of the family's big arrays (best of 2): "
            + "; ".join(
                f"{r['setting']} {r['seconds']:.2f} s, {r['bytes'] / MIB:.0f} MiB"
                for r in experiments["hdf5"]
            )
        )
    if experiments.get("journal"):
        out.append(
            "journal writes for all chunks: "
            + "; ".join(f"{k} {v:.3f} s" for k, v in experiments["journal"].items())
        )

    passed = sum(ok for _, ok in table.verdicts)
    out.append("")
    out.append(
        f"targets: {passed}/{len(table.verdicts)} PASS"
        + (" (quick run: too small for the targets to mean anything)" if args.quick else "")
    )
    if len(engines) > 1:

        def score(engine: str) -> float:
            return sum(best_time[(engine, j, chunk_size)] for j in job_counts)

        faster = min(engines, key=score)
        slower = max(engines, key=score)
        out.append(
            f"engines: {faster} has the lower summed 1-job + {jobs}-job time "
            f"({score(slower) / score(faster):.2f}x; differences under ~10% are within "
            f"this machine's noise); default now: {DEFAULT_ENGINE}"
        )
    return "\n".join(out), table, passed, len(table.verdicts)


if __name__ == "__main__":
    sys.exit(main())
