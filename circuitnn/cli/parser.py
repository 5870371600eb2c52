"""The ``circuitnn`` argument parser: subcommands and their options."""

from __future__ import annotations

import argparse

from circuitnn.cli.commands import (
    campaign_command,
    extract_command,
    neurons_command,
    show_command,
    sweep_command,
)
from circuitnn.cli.studies import experiment_command, run_command

DEFAULT_STORE = "output/families.h5"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="circuitnn",
        description="Simulate analog neuron circuits under process variation and cache their "
        "activation-function families in HDF5.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="the main job: families → analog MLP → robustness → report (or a campaign file)",
    )
    run.add_argument(
        "config",
        nargs="?",
        help="main-job TOML (default: built-in, as examples/run_default.toml) or a campaign file",
    )
    run.add_argument("--out", default="output", help="output folder (default: output)")
    run.add_argument("--quick", action="store_true", help="reduced size (smoke run of every stage)")
    _add_run_options(run, jobs_default=-1)
    run.set_defaults(handler=run_command)

    neurons = commands.add_parser(
        "neurons", help="list built-in neurons, parameters and variations"
    )
    neurons.set_defaults(handler=neurons_command)

    extract = commands.add_parser("extract", help="Monte Carlo family of one neuron")
    extract.add_argument("neuron", help="built-in name, or path to a spec .toml / its netlist")
    _add_monte_carlo(extract)
    extract.add_argument(
        "--store", default=DEFAULT_STORE, help=f"HDF5 store (default {DEFAULT_STORE})"
    )
    extract.add_argument("--plot", metavar="PNG", help="also write a picture of the family here")
    _add_run_options(extract)
    extract.set_defaults(handler=extract_command)

    sweep = commands.add_parser("sweep", help="a design grid: one family per parameter point")
    sweep.add_argument("neuron", help="built-in name, or path to a spec .toml / its netlist")
    sweep.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=V1,V2,...",
        help="swept parameter values (SPICE suffixes ok); repeat for a grid; "
        "'temperature' sweeps °C",
    )
    _add_monte_carlo(sweep, n_default=500)
    sweep.add_argument(
        "--store", default=DEFAULT_STORE, help=f"HDF5 store (default {DEFAULT_STORE})"
    )
    sweep.add_argument("--out", default="output/sweep", help="folder for the table and plots")
    _add_run_options(sweep)
    sweep.set_defaults(handler=sweep_command)

    show = commands.add_parser("show", help="summary table and picture of stored families")
    show.add_argument("store", help="HDF5 store file")
    show.add_argument("family", nargs="?", help="key, key prefix or neuron name (default: all)")
    show.add_argument("--out", help="folder for PNGs (default: beside the store)")
    show.set_defaults(handler=show_command)

    experiment = commands.add_parser(
        "experiment", help="one of the studies' experiments: tables, plots, findings"
    )
    experiment.add_argument("name", nargs="?", help="experiment name (see --list)")
    experiment.add_argument("--list", action="store_true", help="list the experiments and exit")
    experiment.add_argument("--out", help="output folder (default results/NAME)")
    experiment.add_argument("--quick", action="store_true", help="reduced size (as in the tests)")
    experiment.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    experiment.add_argument(
        "--store", help="HDF5 store of the circuit families (default OUT/families.h5)"
    )
    experiment.add_argument(
        "--jobs", type=int, default=1, help="ngspice workers for missing families, -1 = all cores"
    )
    experiment.set_defaults(handler=experiment_command)

    campaign = commands.add_parser(
        "campaign", help="a campaign file: design grid × Monte Carlo × analyses, resumable"
    )
    campaign.add_argument("file", help="campaign TOML with a [campaign] table")
    campaign.add_argument("--out", default="output", help="folder for campaign.json (and store)")
    campaign.add_argument("--store", help="HDF5 store (default: the file's, else OUT/families.h5)")
    _add_run_options(campaign, jobs_default=None)
    campaign.set_defaults(handler=campaign_command)
    return parser


def _add_monte_carlo(parser: argparse.ArgumentParser, n_default: int = 1000) -> None:
    parser.add_argument("--n", type=int, default=n_default, help=f"instances (default {n_default})")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--chip-size", type=int, default=1, help="neurons sharing one die-to-die draw (default 1)"
    )
    parser.add_argument("--corner", help="process corner named in the spec")
    parser.add_argument("--temp", type=float, help="temperature in °C (default: the spec's)")
    parser.add_argument(
        "--allow-control",
        action="store_true",
        help="accept netlists with .control blocks or shell commands",
    )
    analyses = parser.add_argument_group("noise and speed analyses")
    analyses.add_argument("--noise", action="store_true", help="add output noise spectra")
    analyses.add_argument(
        "--bandwidth",
        type=float,
        default=1e6,
        help="signal bandwidth in Hz for the RMS noise σ_out (default 1e6)",
    )
    analyses.add_argument(
        "--bias-points", type=int, default=9, help="noise bias points across the sweep (default 9)"
    )
    analyses.add_argument("--fmin", type=float, default=1.0, help="lowest frequency, Hz")
    analyses.add_argument("--fmax", type=float, default=1e9, help="highest noise frequency, Hz")
    analyses.add_argument("--ppd", type=int, default=10, help="frequency points per decade")
    analyses.add_argument(
        "--no-input-referred",
        dest="input_referred",
        action="store_false",
        help="skip the .ac runs that refer the noise to the input (about half the noise time)",
    )
    analyses.add_argument(
        "--speed",
        action="store_true",
        help="add −3 dB bandwidth, settling time and energy per activation",
    )
    simulator = parser.add_argument_group("ngspice tolerances (part of the family's key)")
    simulator.add_argument("--reltol", type=float, help="relative tolerance (default 1e-3)")
    simulator.add_argument("--abstol", type=float, help="absolute current tolerance, A (1e-12)")
    simulator.add_argument("--vntol", type=float, help="absolute voltage tolerance, V (1e-6)")
    simulator.add_argument(
        "--spice-option",
        action="append",
        default=[],
        metavar="NAME=NUMBER",
        help="a numeric ngspice option (gmin, itl1, itl2, gminsteps, …); repeat for more",
    )
    parser.add_argument(
        "--retry-failed",
        action="store_true",
        help="simulate the failed instances of a stored family again",
    )


def _add_run_options(parser: argparse.ArgumentParser, jobs_default: int = 1) -> None:
    parser.add_argument(
        "--jobs",
        type=int,
        default=jobs_default,
        help=f"worker processes, -1 = all cores (default {jobs_default})",
    )
    parser.add_argument("--chunk-size", type=int, default=None, help="instances per ngspice run")
    parser.add_argument("--engine", default=None, help="subprocess or shared (PySpice)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per ngspice run")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--backend",
        choices=("loky", "dask", "ray"),
        default=None,
        help="where the workers run: loky (local processes, default), dask or ray",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="existing dask scheduler (tcp://host:8786) or Ray cluster; default: a local cluster",
    )
