"""The ``circuitnn`` argument parser: subcommands and their options.

Every option's help names its default and its choices, and every subcommand's help ends with
examples. The option groups several subcommands share, with the library's defaults their help
shows, are :mod:`circuitnn.cli.option_groups` (a test compares those defaults with the library's,
so that ``--help`` stays true without importing the library for it).
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
from circuitnn.cli.option_groups import add_monte_carlo, add_run_options
from circuitnn.cli.studies import experiment_command, run_command

DEFAULT_STORE = "output/families.h5"


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
    add_run_options(run, jobs_default=-1)
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
    add_monte_carlo(extract)
    extract.add_argument(
        "--store", default=DEFAULT_STORE, help=f"HDF5 store (default: {DEFAULT_STORE})"
    )
    extract.add_argument(
        "--plot",
        metavar="PICTURE",
        help="also write a picture of the family here (.png added without an extension; "
        "png, pdf, svg, jpg, tif, webp, eps; default: none)",
    )
    add_run_options(extract)
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
    add_monte_carlo(sweep, n_default=500)
    sweep.add_argument(
        "--store", default=DEFAULT_STORE, help=f"HDF5 store (default: {DEFAULT_STORE})"
    )
    sweep.add_argument(
        "--out",
        default="output/sweep",
        help="folder for sweep.json and the plots (default: output/sweep)",
    )
    add_run_options(sweep)
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
    add_run_options(campaign, jobs_default=None)
    campaign.set_defaults(handler=campaign_command)
    kernel = _command(
        commands,
        "kernel",
        "build the compiled CPU lookup of the torch layers, or say which lookup runs",
        ("circuitnn kernel build", "circuitnn kernel status"),
        description="build: compile circuitnn's CPU lookup kernel for this torch and Python "
        "(a C++20 compiler: $CXX or g++) into $CIRCUITNN_KERNEL_DIR or ~/.cache/circuitnn/kernels; "
        "status: the lookup the layers use (compiled, or torch's operations, and why).",
    )
    kernel.add_argument("action", choices=("build", "status"), help="what to do")
    kernel.set_defaults(handler=kernel_command)
    add_codesign_parser(commands, _command, add_run_options)
    return parser
