#!/usr/bin/env python
"""Campaign benchmark for circuitnn: backends, scaling, writer memory.

One command::

    .venv/bin/python benchmarks/bench_campaign.py            # 8 points × 2000 instances + noise
    .venv/bin/python benchmarks/bench_campaign.py --quick    # smoke run (used by a test)
    .venv/bin/python benchmarks/bench_campaign.py --repeats 2 --json out.json

The campaign: ``diode_relu``, a 4 × 2 grid (load resistor r × temperature) = 8 points, 2000
Monte Carlo instances per point, DC sweep plus output noise at 3 bias points from 1 Hz to 1 GHz
at 5 points per decade (input-referred), chunks of 250 instances. It runs through
:func:`circuitnn.campaign.run.run_campaign` into a fresh store three ways:

  loky, 1 worker    baseline (the chunks run in the main process, one after another);
  loky, 2 workers   scaling efficiency = speed-up over 1 worker / 2;
  dask, 2 workers   a local ``distributed`` cluster (2 worker processes, 1 thread each) through
                    joblib's dask backend; target: throughput within 15 % of loky's at 2 workers.

Each run happens in a fresh child process (so its peak RSS is its own); the pool or cluster is
started and warmed with a small extraction before the clock starts, and the store is new (no
cache hit). Throughput = instances / seconds (each instance gets the DC sweep and the noise
analysis). Writer memory: the peak RSS of the main process (the single writer; ``ru_maxrss``)
after 2, 4 and 8 points of the same run; target: flat (the peak after 8 points at most 10 %
above the peak after 2). Commit cost: seconds of every atomic commit (a family: its scratch file
renamed into the store's folder + the index rewritten; a noise analysis: a copy of the family's
file gains the analysis + fsync + rename), with the store's size (index and family files) before
it, for the first and last point: flat when a commit does not copy the store.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

NEURON = "diode_relu"
SEED = 0
CONFIGS = {  # name → (backend, workers)
    "loky, 1 worker": ("loky", 1),
    "loky, 2 workers": ("loky", 2),
    "dask, 2 workers": ("dask", 2),
}


def campaign_text(n: int, quick: bool, chunk_size: int) -> str:
    """The campaign file of the benchmark."""
    grid = 'r = ["5k", "10k"]' if quick else 'r = ["5k", "10k", "20k", "40k"]'
    temperatures = "[27]" if quick else "[27, 85]"
    ppd = 2 if quick else 5
    return f"""
[campaign]
name = "bench"
neuron = "{NEURON}"
n = {n}
seed = {SEED}

[campaign.grid]
{grid}
temperature = {temperatures}

[campaign.noise]
bias_points = 3
fmin = 1.0
fmax = 1e9
points_per_decade = {ppd}

[campaign.run]
chunk_size = {chunk_size}
"""


# ------------------------------------------------------------------ child: one timed run


def child(campaign_file: str, backend: str, workers: int, folder: str) -> dict[str, Any]:
    """Run the campaign once in this (fresh) process; return its measurements."""
    from circuitnn.campaign.file import load_campaign
    from circuitnn.campaign.run import run_campaign
    from circuitnn.extract import clusters
    from circuitnn.extract.options import RunOptions
    from circuitnn.extract.pipeline import extract_family
    from circuitnn.store import Store

    campaign = load_campaign(campaign_file)
    overrides = {"backend": backend, "jobs": workers, "progress": False}
    # start the pool or cluster, import circuitnn in every worker, warm ngspice and h5py
    warm = RunOptions(**{**campaign.run, **overrides, "chunk_size": 10})
    extract_family(
        NEURON, n=10 * 2 * workers, seed=99, store=Path(folder) / "warm.h5", options=warm
    )

    commits: list[dict[str, Any]] = []
    checkpoints: dict[int, float] = {}
    store_path = Path(folder) / "campaign.h5"
    timed = {"commit_written": Store.commit_written, "commit_analysis": Store.commit_analysis}

    def wrap(name: str, method: Any) -> Any:
        def timed_commit(self: Store, *args: Any, **kwargs: Any) -> Any:
            size = store_bytes(self)
            began = time.perf_counter()
            result = method(self, *args, **kwargs)
            commits.append(
                {"kind": name, "seconds": time.perf_counter() - began, "store_bytes": size}
            )
            if name == "commit_analysis":  # the last commit of a point
                checkpoints[len(checkpoints) + 1] = peak_rss_mib()
            return result

        return timed_commit

    for name, method in timed.items():
        setattr(Store, name, wrap(name, method))
    rss_before = current_rss_mib()
    began = time.perf_counter()
    result = run_campaign(campaign, store=store_path, overrides=overrides)
    seconds = time.perf_counter() - began
    clusters.shutdown()
    failed = sum(point.failed for point in result.points)
    return {
        "seconds": seconds,
        "instances": result.instances,
        "failed": failed,
        "rss_before_mib": rss_before,
        "peak_rss_mib": checkpoints,
        "commits": commits,
        "store_bytes": store_bytes(Store(store_path)),
    }


def store_bytes(store: Any) -> int:
    """Bytes of a store on disk: its index file and its family files."""
    files = [store.path, *(store.folder.iterdir() if store.folder.exists() else [])]
    return sum(path.stat().st_size for path in files if path.exists())


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (Linux ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mib() -> float:
    """Resident memory of this process now, MiB."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_child(campaign_file: Path, backend: str, workers: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-campaign-") as folder:
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                str(campaign_file),
                backend,
                str(workers),
                folder,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        raise SystemExit(f"child run {backend}/{workers} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ report


def report(results: dict[str, dict[str, Any]], points: int, n: int, chunk: int) -> list[str]:
    """The printed table and target lines."""
    lines = []
    best = results
    rate = {name: r["instances"] / r["seconds"] for name, r in best.items()}
    base = rate["loky, 1 worker"]
    lines.append(
        f"{'name':34s} {'seconds':>8s} {'inst/s':>8s}  {'ratio':28s} {'target':>8s}  PASS/FAIL"
    )
    verdicts = []
    for name, result in best.items():
        if name == "loky, 1 worker":
            ratio, target, verdict = "baseline", "-", "base"
        elif name == "loky, 2 workers":
            speedup = rate[name] / base
            ratio, target, verdict = (
                f"{speedup:.2f}x speed-up, {speedup / 2:.0%} efficiency",
                "-",
                "info",
            )
        else:
            against = rate[name] / rate["loky, 2 workers"]
            passed = against >= 0.85
            verdicts.append(passed)
            ratio = f"{against:.2f}x loky 2 workers' rate"
            target, verdict = ">=0.85x", "PASS" if passed else "FAIL"
        lines.append(
            f"{name:34s} {result['seconds']:8.1f} {rate[name]:8.1f}  {ratio:28s} {target:>8s}  "
            f"{verdict}"
        )
    dask_speedup = rate["dask, 2 workers"] / base
    lines.append(
        f"{'    dask, 2 workers vs loky 1 worker':34s} {'':8s} {'':8s}  "
        f"{dask_speedup:.2f}x speed-up, {dask_speedup / 2:.0%} efficiency"
    )
    failed = {name: r["failed"] for name, r in best.items()}
    lines.append(f"    failed instances per run: {failed}")

    marks = [m for m in (2, 4, 8) if m <= points] or [points]
    lines.append("")
    lines.append(
        "writer memory: peak RSS of the main process (MiB) after "
        + " / ".join(str(m) for m in marks)
        + " points (RSS before the campaign, after warm-up, in brackets)"
    )
    flat = True
    for name, result in best.items():
        peaks = {int(k): v for k, v in result["peak_rss_mib"].items()}
        values = [peaks[m] for m in marks]
        growth = values[-1] / values[0] - 1
        ok = growth <= 0.10
        flat &= ok
        lines.append(
            f"  {name:32s} "
            + " / ".join(f"{v:6.1f}" for v in values)
            + f"   [{result['rss_before_mib']:.1f}]   growth {growth:+.1%}"
            + f"   {'<=10%':>6s}  {'PASS' if ok else 'FAIL'}"
        )
    verdicts.append(flat)

    lines.append("")
    lines.append(
        "commits (family: rename + index rewrite; noise: copy of the family's file + write + "
        "fsync + rename), seconds [store size before, MiB]:"
    )
    for name, result in best.items():
        family = [c for c in result["commits"] if c["kind"] == "commit_written"]
        noise = [c for c in result["commits"] if c["kind"] == "commit_analysis"]
        lines.append(
            f"  {name:32s} family: first {_commit(family[0])}, last {_commit(family[-1])}; "
            f"noise: first {_commit(noise[0])}, last {_commit(noise[-1])}; "
            f"store at the end {result['store_bytes'] / 2**20:.1f} MiB"
        )
    lines.append("")
    lines.append(f"targets: {sum(verdicts)}/{len(verdicts)} PASS")
    return lines


def _commit(commit: dict[str, Any]) -> str:
    return f"{commit['seconds']:.3f} [{commit['store_bytes'] / 2**20:.1f}]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--n", type=int, default=None, help="instances per point (default 2000)")
    parser.add_argument("--chunk-size", type=int, default=250, help="instances per ngspice run")
    parser.add_argument("--repeats", type=int, default=1, help="rounds; the fastest is reported")
    parser.add_argument("--json", help="also write every measurement here")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        file, backend, workers, folder = args.child
        print(json.dumps(child(file, backend, int(workers), folder)))
        return 0

    n = args.n or (40 if args.quick else 2000)
    chunk = min(args.chunk_size, 20) if args.quick else args.chunk_size
    from circuitnn import __version__
    from circuitnn.spice.ngspice_process import ngspice_version

    with tempfile.TemporaryDirectory(prefix="bench-campaign-") as folder:
        campaign_file = Path(folder) / "campaign.toml"
        campaign_file.write_text(campaign_text(n, args.quick, chunk))
        from circuitnn.campaign.file import load_campaign

        campaign = load_campaign(campaign_file)
        points = campaign.points
        print(
            f"circuitnn {__version__} campaign benchmark: {NEURON}, {points} points × {n} "
            f"instances, DC + noise ({campaign.noise.bias_points} bias points, "
            f"{campaign.noise.fmin:g}-{campaign.noise.fmax:.0e} Hz at "
            f"{campaign.noise.points_per_decade}/decade), chunk size {chunk}, "
            f"best of {args.repeats}"
        )
        load = os.getloadavg()
        print(
            f"python {platform.python_version()}, {ngspice_version()}, {os.cpu_count()} CPUs, "
            f"load average at start {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}"
        )
        rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in CONFIGS}
        for round_number in range(args.repeats):
            for name, (backend, workers) in CONFIGS.items():
                print(f"[round {round_number + 1}] {name} …", file=sys.stderr, flush=True)
                rounds[name].append(run_child(campaign_file, backend, workers))
    best = {name: min(runs, key=lambda r: r["seconds"]) for name, runs in rounds.items()}
    print()
    for line in report(best, points, n, chunk):
        print(line)
    spread = ", ".join(
        f"{name} {min(r['seconds'] for r in runs):.1f}-{max(r['seconds'] for r in runs):.1f}"
        for name, runs in rounds.items()
    )
    print(f"spread best-worst s: {spread}; load average at the end {os.getloadavg()[0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rounds, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
