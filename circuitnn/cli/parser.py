"""The ``circuitnn`` argument parser: subcommands and their options.

Every option's help names its default and its choices, and every subcommand's help ends with
examples. The defaults written here are the library's (``RunOptions``, ``NoiseAnalysis``, …): a
test compares them, so that ``--help`` stays true without importing the library for it.
"""

from __future__ import annotations

import argparse
import textwrap
from typing import NoReturn

from circuitnn._version import __version__
from circuitnn.cli.codesign import add_codesign_parser
from circuitnn.cli.commands import (
    campaign_command,
    extract_command,
    kernel_command,
    neurons_command,
    show_command,
    store_command,
    sweep_command,
)
from circuitnn.cli.studies import experiment_command, run_command
from circuitnn.neuron.simulator import DEFAULT_ABSTOL, DEFAULT_RELTOL, DEFAULT_VNTOL

DEFAULT_STORE = "output/families.h5"


# the library's defaults, shown in --help (tests/test_cli_help.py checks them against the library)
DEFAULTS = {
    "chunk_size": None,  # automatic (RunOptions.resolved)
    "engine": "subprocess",
    "engines": ("subprocess", "shared"),
    "timeout": 300.0,
    "backend": "loky",
    "backends": ("loky", "dask", "ray"),
    "bias_points": 9,
    "bandwidth": 1e6,
    "fmin": 1.0,
    "fmax": 1e9,
    "ppd": 10,
    "dask_connect": 10.0,
}


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (with where to find help)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def _command(
    commands: argparse._SubParsersAction,  # type: ignore[type-arg]
    name: str,
    summary: str,
    examples: tuple[str, ...],
    description: str | None = None,
) -> argparse.ArgumentParser:
    return commands.add_parser(  # type: ignore[no-any-return]
        name,
        help=summary,
        description=textwrap.fill(description or summary[0].upper() + summary[1:] + ".", 90),
        epilog=_examples(*examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="circuitnn",
        description="Simulate analog neuron circuits under process variation and cache their "
        "activation-function families in HDF5.",
        epilog=_examples(
            "circuitnn run --quick                 # the whole pipeline, small",
            "circuitnn extract mos_diffpair --n 2000 --jobs 2",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"circuitnn {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = _command(
        commands,
        "run",
        "the main job: families → analog MLP → robustness → report (or a campaign file)",
        (
            "circuitnn run --quick --out results/smoke",
            "circuitnn run examples/run_default.toml --out results --jobs 2",
        ),
    )
    run.add_argument(
        "config",
        nargs="?",
        help="main-job TOML (default: built-in, as examples/run_default.toml) or a campaign file",
    )
    run.add_argument("--out", default="output", help="output folder (default: output)")
    run.add_argument(
        "--quick",
        action="store_true",
        help="reduced size, a smoke run of every stage (main job only: a campaign file runs as "
        "written)",
    )
    _add_run_options(run, jobs_default=-1)
    run.set_defaults(handler=run_command)

    neurons = _command(
        commands,
        "neurons",
        "list the built-in neurons: ports, sweep, parameters, variations, corners",
        ("circuitnn neurons",),
    )
    neurons.set_defaults(handler=neurons_command)

    extract = _command(
        commands,
        "extract",
        "Monte Carlo family of one neuron",
        (
            "circuitnn extract mos_diffpair --n 2000 --jobs 2 --plot fan.png",
            "circuitnn extract examples/user_neuron/cs_stage.toml --noise --speed",
        ),
    )
    extract.add_argument("neuron", help="built-in name, or path to a spec .toml / its netlist")
    _add_monte_carlo(extract)
    extract.add_argument(
        "--store", default=DEFAULT_STORE, help=f"HDF5 store (default: {DEFAULT_STORE})"
    )
    extract.add_argument(
        "--plot",
        metavar="PICTURE",
        help="also write a picture of the family here (.png added without an extension; "
        "png, pdf, svg, jpg, tif, webp, eps; default: none)",
    )
    _add_run_options(extract)
    extract.set_defaults(handler=extract_command)

    sweep = _command(
        commands,
        "sweep",
        "a design grid: one family per parameter point",
        (
            "circuitnn sweep diode_relu --param r=5k,10k,20k --n 500",
            "circuitnn sweep mos_diffpair --param rd=5k,10k --param temperature=27,85",
        ),
    )
    sweep.add_argument("neuron", help="built-in name, or path to a spec .toml / its netlist")
    sweep.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=V1,V2,...",
        help="swept parameter values (SPICE suffixes ok); repeat for a grid; "
        "'temperature' sweeps °C (no default: give at least one)",
    )
    _add_monte_carlo(sweep, n_default=500)
    sweep.add_argument(
        "--store", default=DEFAULT_STORE, help=f"HDF5 store (default: {DEFAULT_STORE})"
    )
    sweep.add_argument(
        "--out",
        default="output/sweep",
        help="folder for sweep.json and the plots (default: output/sweep)",
    )
    _add_run_options(sweep)
    sweep.set_defaults(handler=sweep_command)

    show = _command(
        commands,
        "show",
        "summary table and pictures of stored families",
        ("circuitnn show output/families.h5", "circuitnn show output/families.h5 mos_diffpair"),
    )
    show.add_argument("store", help="HDF5 store file")
    show.add_argument("family", nargs="?", help="key, key prefix or neuron name (default: all)")
    show.add_argument(
        "--out", help="folder for the pictures (default: STORE_DIR/plots, beside the store)"
    )
    show.set_defaults(handler=show_command)

    store = _command(
        commands,
        "store",
        "check, repair or remove families of a store",
        (
            "circuitnn store check output/families.h5",
            "circuitnn store repair output/families.h5",
            "circuitnn store remove output/families.h5 3f2a9c",
        ),
        description="check: read every family (checksums included) and list the damaged ones; "
        "repair: rebuild the index from the intact family files, setting damaged ones aside as "
        "KEY.h5.damaged so they can be extracted again; remove: drop one family (key, key "
        "prefix or neuron name). Exit status 1 when check finds damage.",
    )
    store.add_argument("action", choices=("check", "repair", "remove"), help="what to do")
    store.add_argument("store", help="HDF5 store file (the index, e.g. output/families.h5)")
    store.add_argument(
        "family", nargs="?", help="key, key prefix or neuron name (remove: required; default: all)"
    )
    store.set_defaults(handler=store_command)

    experiment = _command(
        commands,
        "experiment",
        "one of the studies' experiments: tables, plots, findings",
        ("circuitnn experiment --list", "circuitnn experiment walking-noise --quick"),
    )
    experiment.add_argument("name", nargs="?", help="experiment name (see --list)")
    experiment.add_argument("--list", action="store_true", help="list the experiments and exit")
    experiment.add_argument("--out", help="output folder (default: results/NAME)")
    experiment.add_argument("--quick", action="store_true", help="reduced size (as in the tests)")
    experiment.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    experiment.add_argument(
        "--replicates",
        type=int,
        help="independent repetitions the confidence intervals are computed over (seeds SEED, "
        "SEED+1, …; default: the experiment's own, e.g. 5 for inhomogeneity, 2 with --quick)",
    )
    experiment.add_argument(
        "--store", help="HDF5 store of the circuit families (default: OUT/families.h5)"
    )
    experiment.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="ngspice workers for missing families, -1 = all cores (default: 1)",
    )
    experiment.set_defaults(handler=experiment_command)

    campaign = _command(
        commands,
        "campaign",
        "a campaign file: design grid × Monte Carlo × analyses, resumable",
        (
            "circuitnn campaign diode.toml --out runs/diode",
            "circuitnn campaign diode.toml --backend dask --jobs 4",
        ),
    )
    campaign.add_argument("file", help="campaign TOML with a [campaign] table")
    campaign.add_argument(
        "--out", default="output", help="folder for campaign.json (and store) (default: output)"
    )
    campaign.add_argument("--store", help="HDF5 store (default: the file's, else OUT/families.h5)")
    _add_run_options(campaign, jobs_default=None)
    campaign.set_defaults(handler=campaign_command)
    kernel = _command(
        commands,
        "kernel",
        "build the compiled CPU lookup of the torch layers, or say which lookup runs",
        ("circuitnn kernel build", "circuitnn kernel status"),
        description="build: compile circuitnn's CPU lookup kernel for this torch and Python "
        "(a C++17 compiler: $CXX or g++) into $CIRCUITNN_KERNEL_DIR or ~/.cache/circuitnn/kernels; "
        "status: the lookup the layers use (compiled, or torch's operations, and why).",
    )
    kernel.add_argument("action", choices=("build", "status"), help="what to do")
    kernel.set_defaults(handler=kernel_command)
    add_codesign_parser(commands, _command, _add_run_options)
    return parser


def _add_monte_carlo(parser: argparse.ArgumentParser, n_default: int = 1000) -> None:
    parser.add_argument(
        "--n", type=int, default=n_default, help=f"instances (default: {n_default})"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--chip-size", type=int, default=1, help="neurons sharing one die-to-die draw (default: 1)"
    )
    parser.add_argument(
        "--corner",
        help="process corner named in the spec, or a section of its foundry kit (tt, ff, …); "
        "several, comma-separated, extract one family each (default: none)",
    )
    parser.add_argument("--temp", type=float, help="temperature in °C (default: the spec's)")
    parser.add_argument(
        "--allow-control",
        action="store_true",
        help="accept netlists with .control blocks, shell commands or other cards a neuron does "
        "not need (they run programs: only for netlists you trust)",
    )
    analyses = parser.add_argument_group("noise and speed analyses")
    analyses.add_argument("--noise", action="store_true", help="add output noise spectra")
    analyses.add_argument(
        "--bandwidth",
        type=float,
        default=DEFAULTS["bandwidth"],
        help=f"signal bandwidth in Hz for the RMS noise σ_out (default: {DEFAULTS['bandwidth']:g})",
    )
    analyses.add_argument(
        "--bias-points",
        type=int,
        default=DEFAULTS["bias_points"],
        help=f"noise bias points across the sweep (default: {DEFAULTS['bias_points']})",
    )
    analyses.add_argument(
        "--fmin",
        type=float,
        default=DEFAULTS["fmin"],
        help=f"lowest frequency in Hz, noise and speed (default: {DEFAULTS['fmin']:g})",
    )
    analyses.add_argument(
        "--fmax",
        type=float,
        default=DEFAULTS["fmax"],
        help=f"highest noise frequency in Hz (default: {DEFAULTS['fmax']:g})",
    )
    analyses.add_argument(
        "--ppd",
        type=int,
        default=DEFAULTS["ppd"],
        help=f"frequency points per decade (default: {DEFAULTS['ppd']})",
    )
    analyses.add_argument(
        "--no-input-referred",
        dest="input_referred",
        action="store_false",
        help="skip the .ac runs that refer the noise to the input (about half the noise time; "
        "default: input-referred noise is computed)",
    )
    analyses.add_argument(
        "--speed",
        action="store_true",
        help="add −3 dB bandwidth, settling time and energy per activation",
    )
    simulator = parser.add_argument_group("ngspice tolerances (part of the family's key)")
    spec_or = "default: the spec's [simulator] value, else ngspice's"
    simulator.add_argument(
        "--reltol", type=float, help=f"relative tolerance ({spec_or} {DEFAULT_RELTOL:g})"
    )
    simulator.add_argument(
        "--abstol", type=float, help=f"absolute current tolerance, A ({spec_or} {DEFAULT_ABSTOL:g})"
    )
    simulator.add_argument(
        "--vntol", type=float, help=f"absolute voltage tolerance, V ({spec_or} {DEFAULT_VNTOL:g})"
    )
    simulator.add_argument(
        "--spice-option",
        action="append",
        default=[],
        metavar="NAME=NUMBER",
        help="a numeric ngspice option (gmin, itl1, itl2, gminsteps, …); repeat for more "
        "(default: the spec's [simulator] options)",
    )
    parser.add_argument(
        "--retry-failed",
        action="store_true",
        help="simulate the failed instances of a stored family again",
    )


def _add_run_options(parser: argparse.ArgumentParser, jobs_default: int | None = 1) -> None:
    campaign = jobs_default is None  # a campaign file's [campaign.run] gives the defaults
    source = ", or the campaign file's" if campaign else ""
    jobs = "1" if campaign else str(jobs_default)
    parser.add_argument(
        "--jobs",
        type=int,
        default=jobs_default,
        help=f"worker processes, -1 = all cores (default: {jobs}{source})",
    )
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        help="instances per ngspice run (default: automatic, at most 100 for the DC sweep and "
        f"50 for noise and at least one chunk per worker{source})",
    )
    parser.add_argument(
        "--engine",
        default=None,
        choices=DEFAULTS["engines"],
        help="how ngspice runs: subprocess (ngspice -b per run) or shared (libngspice through "
        f"PySpice) (default: {DEFAULTS['engine']}{source})",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help=f"seconds per ngspice run, then it is stopped (default: {DEFAULTS['timeout']:g}"
        f"{source})",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--backend",
        choices=DEFAULTS["backends"],
        default=None,
        help="where the workers run: loky (local processes), dask or ray "
        f"(default: {DEFAULTS['backend']}{source})",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="an existing dask scheduler (tcp://host:8786) or Ray cluster, which exchanges "
        "pickled tasks with this process: only one you trust (default: a local cluster; a dask "
        f"scheduler must answer within {DEFAULTS['dask_connect']:g} s)",
    )
