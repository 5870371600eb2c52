"""Experiment 5: the neuron activations that are optimal for the data (additive Gaussian process
regression) and the simulated circuit that comes closest to them.

Fits an additive GP over random directions of the inputs (a one-hidden-layer network whose every
neuron has its own optimal activation), fits each built-in circuit's nominal curve (and a design
sweep of one parameter, default the mos_diffpair load resistor) to those activations by an affine
rescaling, and scores the resulting circuit networks on sampled chips with the circuit noise on.
Run:  .venv/bin/python examples/07_gpr_activations.py --quick      (about half a minute)
      .venv/bin/python examples/07_gpr_activations.py              (full size, a minute or two)
      .venv/bin/python examples/07_gpr_activations.py --sweep cmos_inverter:w_p=1u,2.5u,6u
Writes tables (CSV, result.json), PNG plots and summary.md to --out (default
output/examples/gpr-activations).
"""

from __future__ import annotations

import argparse

from circuitnn.experiments import run_experiment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the reduced size used by the tests")
    parser.add_argument("--out", default="output/examples/gpr-activations", help="output folder")
    parser.add_argument("--store", default=None, help="HDF5 store of families (default OUT/)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="ngspice worker processes")
    parser.add_argument("--regression", default="g2-zpe", help="g2-zpe | smooth | friedman")
    parser.add_argument("--sweep", default=None, help="NEURON:PARAMETER=V1,V2,... design sweep")
    parser.add_argument("--replicates", type=int, default=None, help="replicates (default 5)")
    args = parser.parse_args()
    options: dict[str, object] = {}
    if args.sweep:
        neuron, assignment = args.sweep.split(":", 1)
        parameter, values = assignment.split("=", 1)
        options |= {
            "sweep_neuron": neuron,
            "sweep_parameter": parameter,
            "sweep_values": values.split(","),
        }
    result = run_experiment(
        "gpr-activations",
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
