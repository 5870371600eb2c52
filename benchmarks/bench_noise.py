#!/usr/bin/env python
"""Noise-extraction benchmark for circuitnn.

One command::

    .venv/bin/python benchmarks/bench_noise.py            # N = 1000 mos_diffpair_level1 instances
    .venv/bin/python benchmarks/bench_noise.py --n 400    # another size
    .venv/bin/python benchmarks/bench_noise.py --quick    # smoke run (a few seconds)

The analysis: 9 bias points across the sweep, 10 points per decade from 1 Hz to
1 GHz (91 frequencies), σ over 1 MHz. The DC family is extracted first into a store (not timed);
every timed circuitnn run is ``extract_family(..., noise=NoiseAnalysis())`` on a fresh copy of
that store (so the DC sweep is a cache hit and the noise analysis is never one): rendering, one
ngspice run per chunk (noise + AC at every bias), raw parsing, per-instance PSDs, σ, the fit,
journal and HDF5 commit. It is compared, in interleaved rounds (min and median printed), with

  (a) ngspice's floor: raw ``ngspice -b`` on the chunk netlists of the same family, in chunks
      of 25, 50, 100 and 250 instances, each as circuitnn renders them now and as it rendered
      them before (one circuit per bias, no ``.options noopiter``, every vector saved): the
      cheapest of these 8 configurations; target circuitnn ≤ 1.2× it;
  (b) today's netlist, kept as the baseline: the old rendering in the old chunks of 250;
      target circuitnn ≥ 1.5× faster, with the PSDs of both compared (equal results);
  (c) circuitnn with 2 jobs against 1 job;
  (d) naive loops, as information: for every instance and every bias, a one-instance netlist
      with a ``.noise`` analysis in libngspice through PySpice, timed on a subset of instances
      (in a child process) and **extrapolated** per instance to N;

and it measures the scaling of one ngspice run with the chunk size.

(a) and (b) are judged on CPU seconds (this process and its ngspice children, for 1 job; the
machine is shared, and other processes inflate wall time, hardly CPU time), wall time beside.
Output lines: ``name  seconds  ratio  target  PASS/FAIL``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

NEURON = "mos_diffpair_level1"  # the textbook (square-law) pair; mos_diffpair has BSIM4 cards
SEED = 0


def analysis() -> Any:
    from circuitnn.spice.analyses import NoiseAnalysis

    return NoiseAnalysis(bias_points=9, fmin=1.0, fmax=1e9, points_per_decade=10, bandwidth=1e6)


def options(jobs: int, chunk_size: int | None) -> Any:
    from circuitnn.extract.options import RunOptions

    return RunOptions(jobs=jobs, chunk_size=chunk_size, progress=False)


# ------------------------------------------------------------------ circuitnn


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and of its finished children so far: a
    1-job run's own work plus its ngspice processes, which other processes on a shared machine
    do not inflate as they do wall time."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def make_dc_store(n: int, chunk_size: int | None, folder: Path) -> Path:
    from circuitnn import extract_family

    path = folder / "dc.h5"
    extract_family(NEURON, n=n, seed=SEED, store=path, options=options(2, chunk_size))
    return path


def time_circuitnn(
    dc_store: Path, n: int, jobs: int, chunk_size: int | None, folder: Path
) -> tuple[float, float, np.ndarray]:
    """Wall seconds of ``extract_family(noise=...)`` on a fresh copy of the DC store, its CPU
    seconds (this process and its ngspice children: complete for 1 job only), and its PSDs."""
    from circuitnn import extract_family
    from circuitnn.store import Store

    path = Store(dc_store).copy(folder / f"noise-{jobs}-{time.monotonic_ns()}.h5").path
    cpu, began = cpu_seconds(), time.perf_counter()
    family = extract_family(
        NEURON, n=n, seed=SEED, store=path, options=options(jobs, chunk_size), noise=analysis()
    )
    seconds, cpu = time.perf_counter() - began, cpu_seconds() - cpu
    assert family.noise is not None and (family.noise.status == 1).all(), "noise run failed"
    path.unlink()
    shutil.rmtree(Store(path).folder)
    return seconds, cpu, family.noise.psd


def warm_pool(jobs: int) -> None:
    """Start the loky workers once (and import circuitnn in them) before anything is timed."""
    from circuitnn.extract.parallel import run_tasks

    list(run_tasks(_noop, [(k,) for k in range(2 * jobs)], jobs, "loky"))


def _noop(k: int) -> int:
    import circuitnn.extract.analysis_chunks  # noqa: F401

    return k


# ------------------------------------------------------------------ raw ngspice


TODAY = "today"  # the netlist before noopiter and the outputs-only AC save: the baseline
CURRENT = "current"


def chunk_netlists(n: int, chunk_size: int, variant: str = CURRENT) -> list[Any]:
    """The netlists circuitnn renders for the noise run of the family in chunks of
    ``chunk_size``: each chunk's control script, the circuits it sources and the raw files that
    hold its noise spectra, in bias order (one file with a plot per bias; "today": a file per
    bias). ``variant`` "today": as circuitnn rendered them before
    this benchmark's netlist changes, the baseline kept inside the benchmark: one circuit per
    bias, sourced in turn, without ``.options noopiter``; the operating point first, saving
    every vector, and the AC run saving every vector."""
    from circuitnn.neuron.builtin import get_neuron
    from circuitnn.neuron.variation import MonteCarlo, sample_parameters
    from circuitnn.spice.benches import SWEEP_SOURCE, bench_options, render_noise_bench

    spec = get_neuron(NEURON)
    noise = analysis()
    biases = noise.biases(spec)
    table = sample_parameters(spec, MonteCarlo(n=n, seed=SEED))
    cards = {f".options {option}" for option in bench_options(spec)}

    def today(text: str, sources: dict[str, str]) -> tuple[str, dict[str, str], list[str]]:
        circuit = [line for line in sources["circuit.cir"].splitlines() if line not in cards]
        at = next(k for k, line in enumerate(circuit) if line.startswith(f"{SWEEP_SOURCE} x 0 DC "))
        noise_line = next(line for line in text.splitlines() if line.startswith("noise "))
        ac_line = next(line for line in text.splitlines() if line.startswith("ac "))
        control = [*text.splitlines()[:3]]  # title, .control, set filetype=binary
        old_sources = {}
        for j, bias in enumerate(biases):
            lines = list(circuit)
            lines[at] = f"{SWEEP_SOURCE} x 0 DC {float(bias)!r} AC 1"
            old_sources[f"bias{j}.cir"] = "\n".join(lines) + "\n"
            control += [
                f"source bias{j}.cir",
                "op",
                f"write op{j}.raw all",
                "destroy all",
                noise_line,
                "setplot previous",
                f"write noise{j}.raw all",
                "destroy all",
                ac_line,
                f"write ac{j}.raw all",
                "destroy all",
                "remcirc",
            ]
        control += ["quit", ".endc", ".end"]
        return "\n".join(control) + "\n", old_sources, [f"noise{j}.raw" for j in range(len(biases))]

    texts = []
    for start in range(0, n, chunk_size):
        rows = np.arange(start, min(start + chunk_size, n))
        bench, sources, files = render_noise_bench(spec, table.rows(rows), noise, biases)
        text, spectra = bench.text, files[:1]  # one file, a plot per bias
        if variant == TODAY:
            text, sources, spectra = today(text, sources)  # a file per bias
        texts.append((text, sources, spectra, len(rows)))
    return texts


def time_raw(texts: list[Any], folder: Path, spectra: bool = False) -> tuple[float, float, Any]:
    """Sum of the ``ngspice -n -b chunk.cir`` subprocess calls (each writes its raw files): wall
    and CPU seconds; with ``spectra``, every instance's output PSD read back from them
    (N×B×F)."""
    from circuitnn.extract.spectra import instance_psd
    from circuitnn.spice.rawfile import read_raw

    ngspice = os.environ.get("CIRCUITNN_NGSPICE") or shutil.which("ngspice") or "ngspice"
    total = cpu = 0.0
    psd = []
    for number, (text, sources, files, size) in enumerate(texts):
        work = folder / f"raw{number}"
        work.mkdir()
        (work / "bench.cir").write_text(text)
        for name, content in sources.items():
            (work / name).write_text(content)
        env = {**os.environ, "SPICE_ASCIIRAWFILE": "0"}
        before, began = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        done = subprocess.run(
            [ngspice, "-n", "-b", "bench.cir"], capture_output=True, cwd=work, env=env, check=False
        )
        total += time.perf_counter() - began
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu += after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        plots = [plot for name in files for plot in read_raw((work / name).read_bytes())]
        # the noise spectra at every bias (and the AC response and operating point beside)
        assert done.returncode == 0 and len(plots) == analysis().bias_points, (
            done.returncode,
            len(plots),
        )
        if spectra:
            psd.append(np.stack([instance_psd(plot.vectors, size) for plot in plots], axis=1))
        shutil.rmtree(work)
    return total, cpu, (np.concatenate(psd) if spectra else None)


# ------------------------------------------------------------------ naive loop


def naive_netlist(spec: Any, names: tuple[str, ...], row: np.ndarray, bias: float) -> str:
    """What a user would write for one instance at one bias: its own little test bench."""
    from circuitnn.neuron.units import format_spice

    params = " ".join(f"{n}={format_spice(float(v))}" for n, v in zip(names, row, strict=True))
    load = format_spice(spec.output.load_capacitance)
    vdd = format_spice(spec.ports.supplies["vdd"])
    return "\n".join(
        [
            f"naive noise {NEURON}",
            spec.netlist_text.rstrip(),
            f"vx x 0 DC {format_spice(bias)} AC 1",
            f"vcm cm 0 DC {format_spice(spec.sweep.common_mode)}",
            "einp inp cm x 0 0.5",
            "einn inn cm x 0 -0.5",
            f"vdd vdd 0 DC {vdd}",
            f"xn inp inn outp outn vdd 0 {spec.subckt.name} {params}",
            f"cl0 outp 0 {load}",
            f"cl1 outn 0 {load}",
            f".temp {format_spice(spec.temperature)}",
            ".noise v(outp,outn) vx dec 10 1 1g",
            ".end",
        ]
    )


def circuit_api_noise(
    spec: Any, names: tuple[str, ...], row: np.ndarray, bias: float, ng: Any, spectrum: Any
) -> np.ndarray:
    """One noise run through PySpice's Circuit / simulator API (what its docs show)."""
    from PySpice.Spice.Netlist import Circuit

    circuit = Circuit(f"naive noise {NEURON}")
    circuit.raw_spice = spec.netlist_text
    circuit.V("x", "x", circuit.gnd, f"DC {bias} AC 1")
    circuit.V("cm", "cm", circuit.gnd, spec.sweep.common_mode)
    circuit.VCVS("p", "inp", "cm", "x", circuit.gnd, 0.5)
    circuit.VCVS("n", "inn", "cm", "x", circuit.gnd, -0.5)
    circuit.V("dd", "vdd", circuit.gnd, spec.ports.supplies["vdd"])
    params = {name: float(v) for name, v in zip(names, row, strict=True)}
    circuit.X("n", spec.subckt.name, "inp", "inn", "outp", "outn", "vdd", circuit.gnd, **params)
    circuit.C("l0", "outp", circuit.gnd, spec.output.load_capacitance)
    circuit.C("l1", "outn", circuit.gnd, spec.output.load_capacitance)
    simulator = circuit.simulator(
        temperature=spec.temperature,
        nominal_temperature=spec.temperature,
        simulator="ngspice-shared",
        ngspice_shared=ng,
    )
    simulator.noise("outp", "outn", "vx", "dec", 10, 1, 1e9)
    return spectrum()


def naive_child(mode: str, samples: int, n: int) -> None:
    """Child process: for each of ``samples`` instances, one PySpice noise run per bias."""
    from naive_pyspice import tolerant_ngspice

    from circuitnn.neuron.builtin import get_neuron
    from circuitnn.neuron.variation import MonteCarlo, sample_parameters

    spec = get_neuron(NEURON)
    table = sample_parameters(spec, MonteCarlo(n=n, seed=SEED), 0, min(samples, n))
    biases = analysis().biases(spec)
    ng = tolerant_ngspice(stdout_errors=False)
    times, spectra = [], []

    def spectrum() -> np.ndarray:
        plot = next(
            plot
            for plot in (ng.plot(None, name) for name in ng.plot_names)
            if "onoise_spectrum" in plot
        )
        return np.abs(np.asarray(plot["onoise_spectrum"].to_waveform())) ** 2

    for row in table.values:
        began = time.perf_counter()
        rows = []
        for bias in biases:
            if mode == "shared":
                ng.destroy()
                ng.load_circuit(naive_netlist(spec, table.names, row, float(bias)))
                ng.run()
                rows.append(spectrum())
                ng.remove_circuit()
            else:
                rows.append(circuit_api_noise(spec, table.names, row, float(bias), ng, spectrum))
        times.append(time.perf_counter() - began)
        spectra.append(np.asarray(rows))
    warm = times[1:] if len(times) > 1 else times
    print(
        json.dumps(
            {
                "mode": mode,
                "samples": len(times),
                "per_instance": statistics.fmean(warm),
                "first": times[0],
                "psd0": spectra[0].tolist(),
            }
        )
    )


def run_naive(mode: str, samples: int, n: int) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--naive-child", mode, str(samples)]
    done = subprocess.run(
        [*command, "--n", str(n)], capture_output=True, text=True, check=False, cwd=ROOT
    )
    if done.returncode != 0:
        raise SystemExit(f"naive loop failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def naive_agreement(psd: np.ndarray, n: int) -> float:
    """Largest relative difference between the naive loop's instance-0 PSD (B×F) and
    circuitnn's for the same instance, simulated in a batch with others."""
    from circuitnn.extract.analysis_chunks import simulate_noise_chunk
    from circuitnn.neuron.builtin import get_neuron
    from circuitnn.neuron.variation import MonteCarlo, sample_parameters

    spec = get_neuron(NEURON)
    table = sample_parameters(spec, MonteCarlo(n=n, seed=SEED), 0, min(n, 4))
    batched = simulate_noise_chunk(spec, table, analysis())["psd"][0]
    return float(np.max(np.abs(psd / batched - 1)))


# ------------------------------------------------------------------ scaling


def scaling(sizes: list[int]) -> list[tuple[int, float]]:
    """Seconds per instance of one ``simulate_noise_chunk`` run of each size."""
    from circuitnn.extract.analysis_chunks import simulate_noise_chunk
    from circuitnn.neuron.builtin import get_neuron
    from circuitnn.neuron.variation import MonteCarlo, sample_parameters

    spec = get_neuron(NEURON)
    result = []
    for size in sizes:
        table = sample_parameters(spec, MonteCarlo(n=size, seed=SEED))
        began = time.perf_counter()
        out = simulate_noise_chunk(spec, table, analysis())
        seconds = time.perf_counter() - began
        assert (out["status"] == 1).all()
        result.append((size, seconds / size))
    return result


# ------------------------------------------------------------------ main


def line(name: str, seconds: float, ratio: str, target: str, verdict: str) -> None:
    print(f"{name:<58} {seconds:9.2f} s  {ratio:>9}  {target:>8}  {verdict}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="instances (default 1000)")
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--chunk-size", type=int, default=None, help="default: circuitnn's")
    parser.add_argument("--naive-samples", type=int, default=None, help="default 20 (quick: 3)")
    parser.add_argument("--repeats", type=int, default=None, help="best of (default 5, quick 1)")
    parser.add_argument("--naive-child", nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick and args.n == 1000:
        args.n = 40
    if args.naive_child is not None:
        naive_child(args.naive_child[0], int(args.naive_child[1]), args.n)
        return 0
    from circuitnn.extract.options import RunOptions
    from circuitnn.spice.ngspice_process import ngspice_version

    n = args.n
    chunk_size = RunOptions(chunk_size=args.chunk_size).resolved(n).noise_chunk_size
    samples = args.naive_samples or (3 if args.quick else 20)
    repeats = args.repeats or (1 if args.quick else 5)
    chunks = -(-n // chunk_size)
    # the raw configurations searched for ngspice's floor, and today's netlist (the baseline)
    sizes = [10, 20] if args.quick else [25, 50, 100, 250]
    today_size = 20 if args.quick else 250
    configs = [(CURRENT, size) for size in sizes] + [(TODAY, size) for size in sizes]
    print(
        f"# bench_noise: {NEURON}, N={n}, 9 bias points, 1 Hz-1 GHz at 10/decade, "
        f"circuitnn's chunk size {chunk_size} ({chunks} chunk(s)), {ngspice_version()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start, min and "
        f"median of {repeats} interleaved rounds",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench-noise-") as name:
        folder = Path(name)
        began = time.perf_counter()
        dc_store = make_dc_store(n, args.chunk_size, folder)
        print(f"# DC family (not timed below): {time.perf_counter() - began:.1f} s", flush=True)
        warm_pool(2)
        one, two, one_cpu = [], [], []
        raw: dict[tuple[str, int], list[float]] = {config: [] for config in configs}
        raw_cpu: dict[tuple[str, int], list[float]] = {config: [] for config in configs}
        texts = {(variant, size): chunk_netlists(n, size, variant) for variant, size in configs}
        ours = time_circuitnn(dc_store, n, 1, args.chunk_size, folder)[2]  # warm-up, and PSDs
        baseline_psd = time_raw(texts[(TODAY, today_size)], folder, spectra=True)[2]
        for _ in range(repeats):  # interleaved rounds: a slow spell of the machine hits all
            wall, cpu, _ = time_circuitnn(dc_store, n, 1, args.chunk_size, folder)
            one.append(wall)
            one_cpu.append(cpu)
            for config in configs:
                wall, cpu, _ = time_raw(texts[config], folder)
                raw[config].append(wall)
                raw_cpu[config].append(cpu)
            two.append(time_circuitnn(dc_store, n, 2, args.chunk_size, folder)[0])
        naive = {mode: run_naive(mode, samples, n) for mode in ("circuit", "shared")}
        per_instance = scaling([10, 50] if args.quick else [50, 200, 500])
    checks = {mode: naive_agreement(np.asarray(r["psd0"]), n) for mode, r in naive.items()}
    agreement = float(np.max(np.abs(ours / baseline_psd - 1)))
    base, base_cpu = min(one), min(one_cpu)
    floor_config = min(configs, key=lambda config: min(raw_cpu[config]))
    floor, floor_cpu = min(raw[floor_config]), min(raw_cpu[floor_config])
    baseline = (TODAY, today_size)
    today, today_cpu = min(raw[baseline]), min(raw_cpu[baseline])
    print(
        "# targets on CPU seconds (this process + its ngspice children, min of rounds; the "
        "machine is shared, and other processes inflate wall time, not CPU time); wall beside",
        flush=True,
    )
    line("circuitnn extract_family(noise=...), 1 job, CPU", base_cpu, "1.00x", "", "")
    line(
        f"raw ngspice floor, CPU: best of {len(configs)} configurations "
        f"({floor_config[0]} netlist, chunk {floor_config[1]})",
        floor_cpu,
        f"{base_cpu / floor_cpu:.2f}x",
        "<= 1.2x",
        "PASS" if base_cpu / floor_cpu <= 1.2 else "FAIL",
    )
    line(
        f"today's netlist (chunk {today_size}, no noopiter, full AC), raw ngspice, CPU",
        today_cpu,
        f"{today_cpu / base_cpu:.2f}x",
        ">= 1.5x",
        "PASS" if today_cpu / base_cpu >= 1.5 else "FAIL",
    )
    line("circuitnn extract_family(noise=...), 1 job, wall", base, "1.00x", "", "")
    line("raw ngspice floor configuration, wall", floor, f"{base / floor:.2f}x", "", "info")
    line("today's netlist, raw ngspice, wall", today, f"{today / base:.2f}x", "", "info")
    line(
        "circuitnn extract_family(noise=...), 2 jobs, wall",
        min(two),
        f"{base / min(two):.2f}x",
        "",
        "(speed-up over 1 job)",
    )
    titles = {"circuit": "PySpice Circuit API", "shared": "NgSpiceShared, 1-inst netlist"}
    for mode, result in naive.items():
        naive_total = result["per_instance"] * n
        line(
            f"naive loop, {titles[mode]} (extrap. {result['samples']} of {n}), wall",
            naive_total,
            f"{naive_total / base:.1f}x",
            "",
            "info",
        )
    print(
        f"# equal results: circuitnn's PSDs vs today's netlist's (chunk {today_size}): max "
        f"relative difference {agreement:.1e}; medians, CPU: floor ratio "
        f"{statistics.median(one_cpu) / statistics.median(raw_cpu[floor_config]):.2f}x, "
        f"today's {statistics.median(raw_cpu[baseline]) / statistics.median(one_cpu):.2f}x"
    )
    for config in configs:
        print(
            f"# raw {config[0]:7s} netlist, chunk {config[1]:4d}: CPU min "
            f"{1e3 * min(raw_cpu[config]) / n:.2f} ms/instance, median "
            f"{1e3 * statistics.median(raw_cpu[config]) / n:.2f}; wall min {min(raw[config]):.2f} s"
        )
    for size, seconds in per_instance:
        print(f"# one ngspice noise run of {size:4d} instances: {1e3 * seconds:.2f} ms/instance")
    for mode, result in naive.items():
        print(
            f"# naive {mode}: {1e3 * result['per_instance'] / 9:.2f} ms per noise run (first "
            f"instance {result['first']:.2f} s, excluded); its instance-0 PSD vs circuitnn's "
            f"batched one: max relative difference {checks[mode]:.1e}"
        )
    print(
        f"# all rounds: 1 job wall {[round(s, 2) for s in one]} CPU "
        f"{[round(s, 2) for s in one_cpu]}, 2 jobs wall {[round(s, 2) for s in two]}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
