"""The ``circuitnn`` command line (also ``python -m circuitnn``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

from circuitnn.errors import CircuitnnError, ConfigError

DEFAULT_STORE = "output/families.h5"
DEFAULT_RUN = {
    "neurons": ["diode_relu", "cmos_inverter", "mos_diffpair", "mirror_relu", "bjt_diffpair"],
    "n": 1000,
    "seed": 0,
}


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
        "run", help="the main job: extract the built-in families, store, plots"
    )
    run.add_argument(
        "config", nargs="?", help="TOML with neurons = [...], n, seed (default: built-in)"
    )
    run.add_argument("--out", default="output", help="output folder (default: output)")
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


def _options(args: argparse.Namespace) -> Any:
    from circuitnn.pipeline import RunOptions

    given = {
        "jobs": args.jobs,
        "chunk_size": args.chunk_size,
        "engine": args.engine,
        "timeout": args.timeout,
        "progress": not args.quiet,
    }
    return RunOptions(**{key: value for key, value in given.items() if value is not None})


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
    from circuitnn.pipeline import extract_family
    from circuitnn.plots import plot_family

    config = _run_config(Path(args.config)) if args.config else dict(DEFAULT_RUN)
    out = Path(args.out)
    store = out / "families.h5"
    options = _options(args)
    jobs = (os.cpu_count() or 1) if options.jobs == -1 else options.jobs
    print(
        f"circuitnn run: {len(config['neurons'])} neuron families × {config['n']} Monte Carlo "
        f"instances (seed {config['seed']}), {jobs} job(s) → {out}/",
        flush=True,
    )
    began = time.perf_counter()
    for neuron in config["neurons"]:
        start = time.perf_counter()
        family = extract_family(
            neuron, int(config["n"]), int(config["seed"]), store=store, options=options
        )
        picture = plot_family(family, out / "plots" / f"{family.neuron}.png")
        summary = family.summary()
        print(
            f"  {family.neuron:14s} {family.n} instances, {len(family.failed)} failed, "
            f"swing {summary['swing']['mean']:.4g} ± {summary['swing']['std']:.2g} "
            f"{family.output_unit}, midpoint {summary['midpoint']['mean']:.4g} ± "
            f"{summary['midpoint']['std']:.2g} V  ({time.perf_counter() - start:.1f} s) "
            f"→ {picture}",
            flush=True,
        )
    print(f"store: {store}\nplots: {out / 'plots'}\ndone in {time.perf_counter() - began:.1f} s")
    return 0


def _run_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None
    unknown = set(data) - set(DEFAULT_RUN)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {sorted(unknown)}; known: {sorted(DEFAULT_RUN)}")
    config = {**DEFAULT_RUN, **data}
    neurons = config["neurons"]
    if not isinstance(neurons, list) or not neurons or not all(isinstance(n, str) for n in neurons):
        raise ConfigError(f"{path}: neurons must be a non-empty list of names or spec paths")
    for key in ("n", "seed"):
        if isinstance(config[key], bool) or not isinstance(config[key], int) or config[key] < 0:
            raise ConfigError(f"{path}: {key} must be a non-negative integer, got {config[key]!r}")
    config["neurons"] = [_relative_to(path.parent, name) for name in neurons]
    return config


def _relative_to(folder: Path, name: str) -> str:
    """A spec path relative to the config's folder, or the name unchanged (built-in, absolute)."""
    candidate = folder / name
    return str(candidate) if not Path(name).is_absolute() and candidate.is_file() else name
