"""Experiment 1: neuron noise, per-neuron inhomogeneity and retraining on the chip.

Trains networks of mos_diffpair and cmos_inverter neurons (simulated by ngspice on first use,
then read from the store) on a regression task (zero-point energies of the G2 molecules by
default) and a classification task, measures the error versus neuron noise for 1–4 hidden
layers, over a width grid (optimal size and larger) and an overfitting grid, the damage a chip's
inhomogeneous curves do to a network trained on the nominal curve, and the repair by retraining
on each chip, over several replicates.

Run:  .venv/bin/python examples/03_inhomogeneity.py --quick      (about half a minute)
      .venv/bin/python examples/03_inhomogeneity.py              (full size, a few minutes)
      .venv/bin/python examples/03_inhomogeneity.py --table qm9.csv --target zpve
Writes tables (CSV, result.json), PNG plots and summary.md to --out (default
output/examples/inhomogeneity).
"""

from __future__ import annotations

import argparse

from circuitnn.experiments import run_experiment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the reduced size used by the tests")
    parser.add_argument("--out", default="output/examples/inhomogeneity", help="output folder")
    parser.add_argument("--store", default=None, help="HDF5 store of families (default OUT/)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="ngspice worker processes")
    parser.add_argument(
        "--regression", default="g2-zpe", help="g2-zpe | smooth | friedman | diabetes"
    )
    parser.add_argument("--replicates", type=int, default=None, help="replicates (default 5)")
    parser.add_argument("--table", default=None, help="a CSV / NPZ / HDF5 regression table")
    parser.add_argument("--target", default=None, help="the table's target column")
    parser.add_argument("--features", default=None, help="comma-separated feature columns")
    args = parser.parse_args()
    options = {}
    if args.table:
        options = {"table": args.table, "target": args.target}
        if args.features:
            options["features"] = args.features.split(",")
    result = run_experiment(
        "inhomogeneity",
        args.out,
        quick=args.quick,
        seed=args.seed,
        store=args.store,
        jobs=args.jobs,
        regression=args.regression,
        replicates=args.replicates,
        **options,
    )
    result.print_summary()


if __name__ == "__main__":
    main()
