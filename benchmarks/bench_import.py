#!/usr/bin/env python
"""Import-time benchmark for circuitnn's PyTorch side: what `import circuitnn.nn` adds to torch.

One command::

    .venv/bin/python benchmarks/bench_import.py              # 15 fresh interpreters
    .venv/bin/python benchmarks/bench_import.py --rounds 30  # more on a noisy machine
    .venv/bin/python benchmarks/bench_import.py --quick      # smoke run (2 interpreters)

Every round starts a fresh interpreter that times ``import torch`` (the baseline) and then
``import circuitnn.nn`` on top of it, both with ``time.perf_counter`` in the same process, so the
two numbers of a round share the machine's state. The table shows min and median over the rounds;
the target is that circuitnn.nn adds at most 10 % of torch's own import time. The heavy libraries
that circuitnn.nn must not load eagerly (scipy, matplotlib, sklearn, h5py, pandas, PySpice) are
listed if any were imported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("scipy", "matplotlib", "sklearn", "h5py", "pandas", "PySpice")
TARGET = 0.10  # circuitnn.nn's import time / torch's import time

CHILD = f"""
import json, sys, time
start = time.perf_counter()
import torch
middle = time.perf_counter()
import circuitnn.nn
end = time.perf_counter()
heavy = sorted(name for name in {HEAVY!r} if name in sys.modules)
print(json.dumps({{"torch": middle - start, "circuitnn.nn": end - middle, "heavy": heavy}}))
"""


def one_round() -> dict:
    """Import times (s) of torch and of circuitnn.nn on top of it, in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"the timing interpreter failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="fresh interpreters (default 15)")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 2 interpreters, no warm-up"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write every round here")
    args = parser.parse_args()
    rounds = 2 if args.quick else args.rounds
    if rounds < 1:
        parser.error("--rounds must be at least 1")
    if not args.quick:
        one_round()  # warm the file cache; not counted
    results = [one_round() for _ in range(rounds)]
    torch_s = [r["torch"] for r in results]
    ours_s = [r["circuitnn.nn"] for r in results]
    ratio = min(ours_s) / min(torch_s)
    print("circuitnn import benchmark")
    warm = "" if args.quick else " (after one warm-up)"
    print(f"  Python {sys.version.split()[0]}, {rounds} fresh interpreters{warm}")
    print(f"  {'import':<34}{'min':>10}{'median':>10}{'ratio':>9}   target")
    print(f"  {'torch (baseline)':<34}{min(torch_s):>9.3f}s{statistics.median(torch_s):>9.3f}s")
    verdict = "PASS" if ratio <= TARGET else "FAIL"
    print(
        f"  {'circuitnn.nn on top of torch':<34}{min(ours_s):>9.3f}s"
        f"{statistics.median(ours_s):>9.3f}s{ratio:>8.2f}×   ≤{TARGET:.2f}×  {verdict}"
    )
    heavy = sorted({name for r in results for name in r["heavy"]})
    print(f"  heavy libraries loaded by circuitnn.nn: {', '.join(heavy) if heavy else 'none'}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
