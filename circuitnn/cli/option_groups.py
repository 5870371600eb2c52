"""Option groups that several ``circuitnn`` subcommands share (Monte Carlo, noise, simulator
tolerances, how the runs are made), with the library's defaults their help shows."""

from __future__ import annotations

import argparse

from circuitnn.neuron.simulator import DEFAULT_ABSTOL, DEFAULT_RELTOL, DEFAULT_VNTOL

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


def add_monte_carlo(parser: argparse.ArgumentParser, n_default: int = 1000) -> None:
    """The options of a Monte Carlo family (``--n`` instances, seed, chips, corner, °C), its
    noise and speed analyses and ngspice's tolerances (``extract``, ``sweep``)."""
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


def add_run_options(parser: argparse.ArgumentParser, jobs_default: int | None = 1) -> None:
    """How the runs are made: workers, chunk size, engine, timeout (s), backend and scheduler;
    ``jobs_default`` None: a campaign file's ``[campaign.run]`` gives the defaults."""
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
