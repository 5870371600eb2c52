"""The ``circuitnn`` command line (also ``python -m circuitnn``)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

from circuitnn.errors import CircuitnnError, ConfigError

DEFAULT_STORE = "output/families.h5"


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 2 user error, 1 other failure)."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except CircuitnnError as error:
        print(f"circuitnn: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("circuitnn: interrupted (finished chunks are kept; rerun to resume)", file=sys.stderr)
        return 130
    except BrokenPipeError:
        sys.stderr.close()
        return 0


def _parser() -> argparse.ArgumentParser:
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
    run.set_defaults(handler=_run)

    neurons = commands.add_parser(
        "neurons", help="list built-in neurons, parameters and variations"
    )
    neurons.set_defaults(handler=_neurons)

    extract = commands.add_parser("extract", help="Monte Carlo family of one neuron")
    extract.add_argument("neuron", help="built-in name, or path to a spec .toml / its netlist")
    _add_monte_carlo(extract)
    extract.add_argument(
        "--store", default=DEFAULT_STORE, help=f"HDF5 store (default {DEFAULT_STORE})"
    )
    extract.add_argument("--plot", metavar="PNG", help="also write a picture of the family here")
    _add_run_options(extract)
    extract.set_defaults(handler=_extract)

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
    sweep.set_defaults(handler=_sweep)

    show = commands.add_parser("show", help="summary table and picture of stored families")
    show.add_argument("store", help="HDF5 store file")
    show.add_argument("family", nargs="?", help="key, key prefix or neuron name (default: all)")
    show.add_argument("--out", help="folder for PNGs (default: beside the store)")
    show.set_defaults(handler=_show)

    experiment = commands.add_parser(
        "experiment", help="one of the studies' experiments: tables, plots, findings"
    )
    experiment.add_argument("name", nargs="?", help="experiment name (see --list)")
    experiment.add_argument("--list", action="store_true", help="list the experiments and exit")
    experiment.add_argument("--out", help="output folder (default results/NAME)")
    experiment.add_argument("--quick", action="store_true", help="reduced size (as in the tests)")
    experiment.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    experiment.add_argument(
        "--replicates",
        type=int,
        help="independent repetitions the confidence intervals are computed over (seeds SEED, "
        "SEED+1, …; default: the experiment's)",
    )
    experiment.add_argument(
        "--store", help="HDF5 store of the circuit families (default OUT/families.h5)"
    )
    experiment.add_argument(
        "--jobs", type=int, default=1, help="ngspice workers for missing families, -1 = all cores"
    )
    experiment.set_defaults(handler=_experiment)

    campaign = commands.add_parser(
        "campaign", help="a campaign file: design grid × Monte Carlo × analyses, resumable"
    )
    campaign.add_argument("file", help="campaign TOML with a [campaign] table")
    campaign.add_argument("--out", default="output", help="folder for campaign.json (and store)")
    campaign.add_argument("--store", help="HDF5 store (default: the file's, else OUT/families.h5)")
    _add_run_options(campaign, jobs_default=None)
    campaign.set_defaults(handler=_campaign)
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


def _given_options(args: argparse.Namespace) -> dict[str, Any]:
    given = {
        "jobs": args.jobs,
        "chunk_size": args.chunk_size,
        "engine": args.engine,
        "timeout": args.timeout,
        "backend": args.backend,
        "scheduler": args.scheduler,
        "progress": not args.quiet,
    }
    return {key: value for key, value in given.items() if value is not None}


def _options(args: argparse.Namespace) -> Any:
    from circuitnn.pipeline import RunOptions

    return RunOptions(**_given_options(args))


def _campaign(args: argparse.Namespace, jobs_default: int | None = None) -> int:
    from circuitnn.campaign import run_campaign, summary_table, write_json

    overrides = _given_options(args)
    if jobs_default is not None and overrides.get("jobs") == jobs_default:
        overrides.pop("jobs")  # `circuitnn run FILE`: its default (-1) is not the user's choice
    result = run_campaign(
        args.file, store=getattr(args, "store", None), overrides=overrides, out=args.out
    )
    print(summary_table(result))
    print(f"summary: {write_json(result, Path(args.out) / 'campaign.json')}")
    return 0


def _spec(args: argparse.Namespace) -> Any:
    from circuitnn.circuits import get_neuron

    return get_neuron(args.neuron, allow_control=args.allow_control)


def _monte_carlo(args: argparse.Namespace) -> dict[str, Any]:
    from circuitnn.analyses import NoiseAnalysis, SpeedAnalysis

    noise = speed = None
    if args.noise:
        noise = NoiseAnalysis(
            bias_points=args.bias_points,
            fmin=args.fmin,
            fmax=args.fmax,
            points_per_decade=args.ppd,
            bandwidth=args.bandwidth,
            input_referred=args.input_referred,
        )
    if args.speed:
        speed = SpeedAnalysis(fmin=args.fmin, points_per_decade=args.ppd)
    return {
        "chip_size": args.chip_size,
        "corner": args.corner,
        "temperature": args.temp,
        "noise": noise,
        "speed": speed,
    }


def _neurons(args: argparse.Namespace) -> int:
    from circuitnn.circuits import builtin_neurons, get_neuron

    for name in builtin_neurons():
        spec = get_neuron(name)
        print(f"{name}: {spec.description}")
        sweep = spec.sweep
        kind = "differential" if spec.ports.differential_input else "single-ended"
        print(
            f"  input {kind} {sweep.start:g}…{sweep.stop:g} V ({sweep.points} points); "
            f"output {spec.output.quantity} [{spec.output.unit}]; "
            f"supplies {spec.ports.supplies or 'none'}; {spec.temperature:g} °C"
        )
        params = ", ".join(f"{k}={v:.6g}" for k, v in spec.parameters.items())
        print(f"  parameters: {params}")
        for variation in spec.variations:
            parts = []
            for scope, dist in (("global", variation.global_), ("local", variation.local)):
                if dist is not None:
                    parts.append(f"{scope} {_distribution_text(dist)}")
            print(f"  varies {variation.parameter}: {'; '.join(parts)}")
        if spec.corners:
            print(f"  corners: {', '.join(spec.corners)}")
    return 0


def _distribution_text(dist: Any) -> str:
    if dist.pelgrom is not None:
        return f"{dist.distribution} σ = {dist.pelgrom:g}/√({dist.area[0]}·{dist.area[1]})"
    if dist.relative is not None:
        return f"{dist.distribution} σ = {dist.relative:g} relative"
    return f"{dist.distribution} σ = {dist.sigma:g}"


def _extract(args: argparse.Namespace) -> int:
    from circuitnn.pipeline import extract_family
    from circuitnn.plots import plot_all

    began = time.perf_counter()
    family = extract_family(
        _spec(args),
        args.n,
        args.seed,
        store=args.store,
        options=_options(args),
        **_monte_carlo(args),
    )
    seconds = time.perf_counter() - began
    print(
        f"{family.neuron}: {family.n} instances, {len(family.failed)} failed, "
        f"family {family.key} in {args.store} ({seconds:.1f} s)"
    )
    _print_summary(family)
    if args.plot:
        for picture in plot_all(family, args.plot):
            print(f"picture: {picture}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from circuitnn.plots import plot_sweep
    from circuitnn.sweep import parse_grid, sweep_families

    grid = parse_grid(args.param)
    results = sweep_families(
        _spec(args),
        grid,
        args.n,
        args.seed,
        store=args.store,
        options=_options(args),
        arrays=False,  # the table needs the descriptors only: memory flat in the points
        **_monte_carlo(args),
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "point": r.point,
            "key": r.family.key,
            "failed": len(r.family.failed),
            "unit": r.family.output_unit,
            "summary": r.family.summary(),
        }
        for r in results
    ]
    table = out / "sweep.json"
    table.write_text(json.dumps(rows, indent=2))
    print(f"\n{'point':40s} {'failed':>6s} " + " ".join(f"{n:>22s}" for n in _COLUMNS))
    for row in rows:
        label = ", ".join(f"{k}={v:g}" for k, v in row["point"].items())
        cells = " ".join(_cell(row["summary"][n]) for n in _COLUMNS)
        print(f"{label:40s} {row['failed']:6d} {cells}")
    pictures = [plot_sweep(rows, name, out / f"sweep_{name}.png") for name in grid]
    print(f"\ntable: {table}\npictures: {', '.join(map(str, pictures))}\nstore: {args.store}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from circuitnn.plots import plot_all
    from circuitnn.store import Store

    store = Store(args.store)
    if not store.path.exists():
        raise ConfigError(f"store {store.path} does not exist")
    keys = [store.resolve(args.family)] if args.family else [row["key"] for row in store.describe()]
    out = Path(args.out) if args.out else store.path.parent / "plots"
    for key in keys:
        family = store.load(key)
        attrs = family.attrs
        print(
            f"{family.neuron}  key {key}  n={family.n}  failed={len(family.failed)}  "
            f"seed={attrs['seed']}  T={attrs['temperature']:g} °C  "
            f"corner={attrs['corner'] or '-'}  "
            f"{attrs['ngspice_version']}  created {attrs['created']}"
        )
        _print_summary(family)
        for index in family.failed[:5]:
            print(f"  failed instance {index}: {family.reasons[index]}")
        for picture in plot_all(family, out / f"{family.neuron}-{key[:12]}.png"):
            print(f"  picture: {picture}")
        print()
    return 0


def _experiment(args: argparse.Namespace) -> int:
    from circuitnn.experiments import EXPERIMENTS, run_experiment

    if args.list:
        print("\n".join(EXPERIMENTS))
        return 0
    if not args.name or args.name not in EXPERIMENTS:
        given = f"unknown experiment {args.name!r}" if args.name else "give an experiment NAME"
        raise ConfigError(f"{given}; known: {', '.join(EXPERIMENTS)}")
    out = Path(args.out) if args.out else Path("results") / args.name
    began = time.perf_counter()
    result = run_experiment(
        args.name,
        out,
        quick=args.quick,
        seed=args.seed,
        store=args.store,
        jobs=args.jobs,
        replicates=args.replicates,
    )
    result.print_summary()
    print(
        f"tables: {', '.join(f'{name}.csv' for name in result.tables)}, result.json\n"
        f"figures: {', '.join(str(path) for path in result.figures.values())}\n"
        f"report: {out / 'summary.md'}\ndone in {time.perf_counter() - began:.1f} s"
    )
    return 0


_COLUMNS = ("swing", "midpoint", "gain", "mean_power")


def _cell(stats: dict[str, float]) -> str:
    return f"{stats['mean']:>11.4g} ± {stats['std']:<8.3g}"


def _print_analyses(family: Any) -> None:
    import numpy as np

    if family.noise is not None:
        noise = family.noise
        ok = noise.status == 1
        print(
            f"  noise ({noise.key}): {int(ok.sum())} ok, σ_out over {noise.bandwidth:g} Hz "
            f"[{family.output_unit} RMS]:"
        )
        for bias, column in zip(noise.bias, noise.sigma.T, strict=True):
            values = column[ok]
            print(
                f"    x = {bias:+8.4g} V   mean {np.mean(values):10.4g}   "
                f"std {np.std(values):10.4g}"
            )
    if family.speed is not None:
        speed = family.speed
        ok = speed.status == 1
        for name, unit in (("bandwidth", "Hz"), ("settling_time", "s"), ("energy", "J")):
            values = getattr(speed, name)[ok]
            values = values[np.isfinite(values)]
            if len(values):
                print(
                    f"  {name:14s} mean {np.mean(values):10.4g} {unit:2s}  "
                    f"std {np.std(values):10.4g}  ({len(values)} instances)"
                )


def _print_summary(family: Any) -> None:
    print(f"  {'descriptor':12s} {'mean':>12s} {'std':>11s} {'min':>11s} {'max':>11s}")
    for name, stats in family.summary().items():
        print(
            f"  {name:12s} {stats['mean']:12.5g} {stats['std']:11.4g} "
            f"{stats['min']:11.4g} {stats['max']:11.4g}"
        )
    _print_analyses(family)


def _run(args: argparse.Namespace) -> int:
    from circuitnn.campaign import is_campaign

    if args.config and is_campaign(args.config):
        args.file = args.config
        return _campaign(args, jobs_default=-1)
    from circuitnn.main_job import MainJobConfig, load_config, run_main_job

    config = load_config(args.config) if args.config else MainJobConfig()
    if args.quick:
        config = config.quick()
    options = dataclasses.replace(_options(args), progress=False)  # one line per stage instead
    report = run_main_job(
        config, args.out, options=options, say=(lambda line: None) if args.quiet else _say
    )
    if args.quiet:
        print(f"report: {report}")
    return 0


def _say(line: str) -> None:
    print(line, flush=True)
