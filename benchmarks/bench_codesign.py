#!/usr/bin/env python
"""Co-design benchmark: a 12-point design space of the differential pair.

One command::

    .venv/bin/python benchmarks/bench_codesign.py                 # the benchmark (a few minutes)
    .venv/bin/python benchmarks/bench_codesign.py --samplers gp,tpe,random   # compare samplers
    .venv/bin/python benchmarks/bench_codesign.py --quick         # smoke run (used by a test)

The design space: ``mos_diffpair``, channel length l ∈ {0.15, 0.3, 0.6} µm × tail current
ibias ∈ {2.5, 5, 10, 20} µA = 12 points, n = 300 Monte Carlo instances per family with noise and
speed, an MLP 64-16-10 of the pair's neurons on the digits (10 epochs), judged on 32 chips × 4
noise draws; 2 ngspice jobs, 1 torch thread. Three runs into a fresh folder:

  grid, fresh store        the baseline: every family simulated; total and its split
                           (simulation, training, evaluation: seconds summed over the points;
                           other: the rest — loading the data set, torch's first call, the
                           store's index, the table);
  grid, cached families    the same space into a new output folder on the same store: every
                           family from the store; target: no simulation (0 families simulated);
  search (per sampler)     a budget of 6 (half the grid) over the continuous ranges
                           l ∈ [0.15, 0.6] µm, ibias ∈ [2.5, 20] µA (log axes), new families;
                           target: its best design under the selection (≥ 95 % of the nominal
                           accuracy on ≥ 95 % of chips, lowest energy) meets the constraint at an
                           energy no higher than the grid's best design's upper 95 % bound.

Timings are one run each on a shared machine (load average printed); the search's success does
not depend on timing.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

L_VALUES = ["0.15u", "0.3u", "0.6u"]
I_VALUES = ["2.5u", "5u", "10u", "20u"]


def design(n: int, quick: bool, search: dict | None = None) -> dict:
    """The co-design table of the benchmark."""
    table: dict = {
        "neuron": "mos_diffpair",
        "n": n,
        "seed": 0,
        "grid": {"l": L_VALUES[::2] if quick else L_VALUES, "ibias": I_VALUES[::3]}
        if quick
        else {"l": L_VALUES, "ibias": I_VALUES},
        "task": {
            "widths": [16],
            "epochs": 3 if quick else 10,
            "chips": 8 if quick else 32,
            "draws": 2 if quick else 4,
        },
        "run": {"jobs": 2},
    }
    if search is not None:
        table["search"] = search
    return {"codesign": table}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--samplers", default="gp", help="search samplers to run (gp,tpe,...)")
    parser.add_argument("--out", help="working folder (default: a temporary one)")
    args = parser.parse_args()

    import circuitnn
    from circuitnn.codesign import config_from_dict, run_codesign
    from circuitnn.spice.ngspice_process import ngspice_version

    n = 40 if args.quick else 300
    budget = 2 if args.quick else 6
    samplers = [s.strip() for s in args.samplers.split(",") if s.strip()]
    with tempfile.TemporaryDirectory(prefix="bench-codesign-") as scratch:
        work = Path(args.out or scratch)
        points = 2 * len(I_VALUES[::3]) if args.quick else len(L_VALUES) * len(I_VALUES)
        print(
            f"circuitnn {circuitnn.__version__} co-design benchmark: mos_diffpair, {points} design "
            f"points (l × ibias), n={n} per family with noise and speed, MLP 64-16-10 on digits, "
            "2 ngspice jobs, 1 torch thread"
        )
        print(
            f"python {platform.python_version()}, {ngspice_version()}, {os.cpu_count()} CPUs, "
            f"load average at start {', '.join(f'{v:.2f}' for v in os.getloadavg())}"
        )
        print()
        grid_config = config_from_dict(design(n, args.quick))
        store = work / "families.h5"
        first = run_codesign(grid_config, work / "grid", store=store, pictures=False)
        _line("grid, fresh store", first)
        second = run_codesign(grid_config, work / "grid-again", store=store, pictures=False)
        _line("grid, cached families", second)
        print()
        (rule,) = [s for s in grid_config.selections]
        best = first.chosen[rule.name]
        targets = []
        no_simulation = second.simulated == 0 and first.simulated == len(first.rows)
        targets.append(no_simulation)
        print(
            f"second run: {second.simulated} families simulated, simulation "
            f"{second.timings['simulation']:.1f} s (loading {len(second.rows)} families from the "
            f"store) vs {first.timings['simulation']:.1f} s      target: 0 simulated   "
            f"{'PASS' if no_simulation else 'FAIL'}"
        )
        if best is None:
            print(f"grid: no design meets '{rule.name}': the search has nothing to reach")
            targets.append(False)
        else:
            row = first.rows[best]
            print(
                f"grid's best under '{rule.name}': l={row['l_m'] * 1e6:.3g} µm, "
                f"ibias={row['ibias_A'] * 1e6:.3g} µA, energy {row['energy_J']:.4g} J "
                f"[{row['energy_J_ci_low']:.4g}, {row['energy_J_ci_high']:.4g}], yield "
                f"{row['yield']:.3f}, accuracy_p5 {row['accuracy_p5']:.3f} "
                f"({len(first.rows)} evaluations)"
            )
            ranges = {"l": ["0.15u", "0.6u"], "ibias": ["2.5u", "20u"]}
            for sampler in samplers:
                space = {"budget": budget, "sampler": sampler, "startup": 2, **ranges}
                config = dataclasses.replace(
                    config_from_dict(design(n, args.quick, space)), grid={}
                )
                found = run_codesign(
                    config, work / f"search-{sampler}", store=store, grid=False, pictures=False
                )
                _line(f"search {sampler}, budget {budget}", found)
                pick = found.chosen[rule.name]
                if pick is None:
                    ok = False
                    text = "no design met the constraint"
                else:
                    hit = found.rows[pick]
                    ok = hit["energy_J"] <= row["energy_J_ci_high"]
                    text = (
                        f"l={hit['l_m'] * 1e6:.3g} µm, ibias={hit['ibias_A'] * 1e6:.3g} µA, "
                        f"energy {hit['energy_J']:.4g} J, yield {hit['yield']:.3f}, "
                        f"accuracy_p5 {hit['accuracy_p5']:.3f}"
                    )
                if sampler == samplers[0]:
                    targets.append(ok)
                print(
                    f"  {sampler}: best of {len(found.rows)} evaluations: {text}; "
                    f"target: energy <= {row['energy_J_ci_high']:.4g} J with "
                    f"<= {len(first.rows) // 2} evaluations   {'PASS' if ok else 'FAIL'}"
                )
        print()
        print(f"targets: {sum(targets)}/{len(targets)} PASS; load average at the end "
              f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}")  # fmt: skip
    return 0


def _line(name: str, result) -> None:
    split = ", ".join(f"{key} {seconds:.1f} s" for key, seconds in result.timings.items())
    split += f", other {result.seconds - sum(result.timings.values()):.1f} s"
    print(
        f"{name:28s} total {result.seconds:6.1f} s   ({split}; {result.simulated} families "
        f"simulated, {len(result.rows)} points)"
    )


if __name__ == "__main__":
    started = time.perf_counter()
    status = main()
    print(f"done in {time.perf_counter() - started:.1f} s")
    sys.exit(status)
