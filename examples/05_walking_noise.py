"""Experiment 3: Walking Noise — which layer of a circuit network is most sensitive to noise, and
what training with noise does to the network's weights.

Trains MLPs of mos_diffpair and cmos_inverter neurons (simulated by ngspice on first use, then read
from the store) on digits, clean and with additive, multiplicative and mixed neuron noise (and a CNN
on the digit images and an MLP on a regression task, clean and with additive noise); walks each
noise through the layers one at a time (and all at once) to find the midpoint level where the score
is halfway to chance; compares weight magnitudes per layer and a weight binarization index over a
sweep of multiplicative training noise levels, over several replicates.

Run:  .venv/bin/python examples/05_walking_noise.py --quick      (well under a minute)
      .venv/bin/python examples/05_walking_noise.py              (full size, a few minutes)
      .venv/bin/python examples/05_walking_noise.py --widths 64,64 --train-additive 0.5
Writes tables (CSV, result.json), PNG plots and summary.md to --out (default
output/examples/walking-noise).
"""

from __future__ import annotations

import argparse

from circuitnn.experiments import run_experiment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the reduced size used by the tests")
    parser.add_argument("--out", default="output/examples/walking-noise", help="output folder")
    parser.add_argument("--store", default=None, help="HDF5 store of families (default OUT/)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="ngspice worker processes")
    parser.add_argument("--widths", default=None, help="hidden widths, e.g. 64,64,64")
    parser.add_argument("--replicates", type=int, default=None, help="replicates (default 4)")
    parser.add_argument("--train-additive", type=float, default=None, help="training σ")
    args = parser.parse_args()
    options: dict[str, object] = {}
    if args.widths:
        options["widths"] = [int(width) for width in args.widths.split(",")]
    if args.train_additive is not None:
        options["train_additive"] = args.train_additive
    result = run_experiment(
        "walking-noise",
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
