"""Experiment 4: robustness of circuit networks to weight mismatch — clean training, dropout, noise
injection, weight smoothing and adversarial weight perturbation (AWP), under random and under
worst-case relative weight perturbation, and the flatness of the minima they find.

Trains MLPs of mos_diffpair and cmos_inverter neurons (simulated by ngspice on first use, then read
from the store) on digits with each regime; evaluates accuracy with every weight scaled by
(1 + ζz) at random and with the worst perturbation inside ±ζ|θ| found by a projected
sign-gradient attack, across ζ; measures the loss increase along random filter-normalized
directions.

Run:  .venv/bin/python examples/06_parameter_robustness.py --quick      (well under a minute)
      .venv/bin/python examples/06_parameter_robustness.py              (full size, a few minutes)
      .venv/bin/python examples/06_parameter_robustness.py --awp-zeta 0.1,0.2 --zetas 0.05,0.1,0.2
Writes tables (CSV, result.json), PNG plots and summary.md to --out (default
output/examples/parameter-robustness).
"""

from __future__ import annotations

import argparse

from circuitnn.experiments import run_experiment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the reduced size used by the tests")
    parser.add_argument(
        "--out", default="output/examples/parameter-robustness", help="output folder"
    )
    parser.add_argument("--store", default=None, help="HDF5 store of families (default OUT/)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="ngspice worker processes")
    parser.add_argument("--zetas", default=None, help="relative bounds ζ, e.g. 0.05,0.1,0.2")
    parser.add_argument(
        "--awp-zeta", default=None, help="AWP's grid of training bounds ζ, e.g. 0.1,0.2"
    )
    parser.add_argument("--replicates", type=int, default=None, help="replicates (default 5)")
    args = parser.parse_args()
    options: dict[str, object] = {}
    if args.zetas:
        options["zetas"] = [float(zeta) for zeta in args.zetas.split(",")]
    if args.awp_zeta is not None:
        options["awp_zeta"] = [float(zeta) for zeta in args.awp_zeta.split(",")]
    result = run_experiment(
        "parameter-robustness",
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
