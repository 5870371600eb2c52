"""Experiment 2: noise propagation through deep networks of circuit neurons.

Builds random (variance-preserving, untrained) networks of 8 hidden layers of mos_diffpair and
cmos_inverter neurons (simulated by ngspice on first use, then read from the store), puts additive,
multiplicative (each uncorrelated and correlated within a layer) and the circuits' own noise after
every layer, and compares each layer's noise measured by Monte Carlo with the analytic prediction
of circuitnn.evaluate.propagate_noise, at a neuron gain below 1 and above 1; the same for deep
networks of those neurons trained on digits.

Run:  .venv/bin/python examples/04_propagation.py --quick      (about 15 s once the families exist)
      .venv/bin/python examples/04_propagation.py              (full size, a few minutes)
Writes tables (layers.csv, configurations.csv, result.json), PNG plots and summary.md to --out
(default output/examples/propagation).
"""

from __future__ import annotations

import argparse

from circuitnn.experiments import run_experiment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the reduced size used by the tests")
    parser.add_argument("--out", default="output/examples/propagation", help="output folder")
    parser.add_argument("--store", default=None, help="HDF5 store of families (default OUT/)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="ngspice worker processes")
    parser.add_argument("--sigma", type=float, default=None, help="noise level (default 0.03)")
    parser.add_argument("--gains", default=None, help="slope gains below and above 1, e.g. 0.7,1.5")
    parser.add_argument("--replicates", type=int, default=None, help="replicates (default 4)")
    args = parser.parse_args()
    options = {}
    if args.sigma is not None:
        options["sigma"] = args.sigma
    if args.gains:
        options["gains"] = tuple(float(value) for value in args.gains.split(","))
    result = run_experiment(
        "propagation",
        args.out,
        quick=args.quick,
        seed=args.seed,
        store=args.store,
        jobs=args.jobs,
        replicates=args.replicates,
        **options,
    )
    result.print_summary()


if __name__ == "__main__":
    main()
