"""The simulation commands of the ``circuitnn`` command line (also ``python -m circuitnn``):
``extract``, ``sweep``, ``campaign``, ``neurons``, ``show`` and ``store`` (what they print:
:mod:`circuitnn.cli.printing`)."""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any

from circuitnn.cli.printing import print_neuron, print_run, print_summary
from circuitnn.errors import ConfigError


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


def run_options(args: argparse.Namespace) -> Any:
    from circuitnn.extract.options import RunOptions

    return RunOptions(**_given_options(args))


def campaign_command(args: argparse.Namespace, jobs_default: int | None = None) -> int:
    from circuitnn.campaign.run import run_campaign, summary_table, write_json
    from circuitnn.campaign.table import write_table
    from circuitnn.store.paths import writable_folder

    writable_folder(args.out, "--out")
    overrides = _given_options(args)
    if jobs_default is not None and overrides.get("jobs") == jobs_default:
        overrides.pop("jobs")  # `circuitnn run FILE`: its default (-1) is not the user's choice
    result = run_campaign(
        args.file, store=getattr(args, "store", None), overrides=overrides, out=args.out
    )
    print(summary_table(result))
    print(f"summary: {write_json(result, Path(args.out) / 'campaign.json')}")
    print(f"table: {write_table(Path(args.out) / 'campaign.csv', result.rows)}")
    return 0


def _spec(args: argparse.Namespace) -> Any:
    from circuitnn.neuron.builtin import get_neuron

    return get_neuron(args.neuron, allow_control=args.allow_control)


def _monte_carlo(args: argparse.Namespace) -> dict[str, Any]:
    from circuitnn.spice.analyses import NoiseAnalysis, SpeedAnalysis

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
        "simulator": _simulator(args),
        "retry": args.retry_failed,
    }


def _simulator(args: argparse.Namespace) -> dict[str, Any]:
    """The simulator settings given on the command line (``--reltol``, ``--spice-option``…)."""
    given: dict[str, Any] = {
        name: getattr(args, name)
        for name in ("reltol", "abstol", "vntol")
        if getattr(args, name) is not None
    }
    options = {}
    for assignment in args.spice_option:
        name, equals, value = assignment.partition("=")
        if not equals or not name.strip():
            raise ConfigError(f"--spice-option {assignment!r}: expected NAME=NUMBER")
        options[name.strip()] = value.strip()
    if options:
        given["options"] = options
    return given


def neurons_command(args: argparse.Namespace) -> int:
    from circuitnn.neuron.builtin import builtin_neurons, get_neuron, kit_neurons
    from circuitnn.neuron.pdk import SKY130_INSTALL, kit_available

    for name in builtin_neurons():
        print_neuron(name, get_neuron(name))
    for name, kit in kit_neurons().items():
        if kit_available(kit):
            spec = get_neuron(name)
            print_neuron(name, spec)
            sections = ", ".join(spec.pdk.sections[:5])
            print(f"  kit: {kit} (installed), corner {spec.pdk.corner} (--corner: {sections}, …)")
        else:
            advice = SKY130_INSTALL if kit == "sky130" else "install it"
            print(f"{name}: needs the {kit} kit, not installed: {advice}")
    return 0


def extract_command(args: argparse.Namespace) -> int:
    """One family; exit status 1 when every instance failed."""
    from circuitnn.errors import SimulatorWarning
    from circuitnn.extract.pipeline import extract_family
    from circuitnn.extract.plots import picture_path, plot_all
    from circuitnn.store.paths import writable_file

    plot = writable_file(picture_path(args.plot), "--plot") if args.plot else None
    corners: list[str | None] = [None]
    if args.corner:
        corners = [corner.strip() for corner in args.corner.split(",")]
        if not all(corners):
            raise ConfigError(f"--corner {args.corner!r}: empty corner name in the list")
    status = 0
    for corner in corners:  # (several: one family each, e.g. the kit's tt,ff,ss)
        settings = {**_monte_carlo(args), "corner": corner}
        began = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SimulatorWarning)  # printed below, from the family
            family = extract_family(
                _spec(args),
                args.n,
                args.seed,
                store=args.store,
                options=run_options(args),
                **settings,
            )
        seconds = time.perf_counter() - began
        at = f" at corner {corner}" if len(corners) > 1 else ""
        print(
            f"{family.neuron}: {family.n} instances{at}, {len(family.failed)} failed, "
            f"family {family.key} in {args.store} ({seconds:.1f} s)"
        )
        print_run(family)
        print_summary(family)
        if plot is not None:
            target = plot if len(corners) == 1 else plot.with_stem(f"{plot.stem}-{corner}")
            for picture in plot_all(family, target):
                print(f"picture: {picture}")
        status = max(status, 1 if len(family.failed) == family.n else 0)
    return status


def sweep_command(args: argparse.Namespace) -> int:
    from circuitnn.campaign.plots import plot_sweep
    from circuitnn.campaign.sweep import parse_grid, sweep_families
    from circuitnn.campaign.table import point_row, write_table
    from circuitnn.store.paths import writable_folder

    out = writable_folder(args.out, "--out")
    grid = parse_grid(args.param)
    spec = _spec(args)
    results = sweep_families(
        spec,
        grid,
        args.n,
        args.seed,
        store=args.store,
        options=run_options(args),
        arrays=False,  # the table needs the descriptors only: memory flat in the points
        **_monte_carlo(args),
    )
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
    csv_rows = [point_row(i, spec, r.point, r.family, r.seconds) for i, r in enumerate(results)]
    csv_table = write_table(out / "sweep.csv", csv_rows)
    print(f"\n{'point':40s} {'failed':>6s} " + " ".join(f"{n:>22s}" for n in _COLUMNS))
    for row in rows:
        label = ", ".join(f"{k}={v:g}" for k, v in row["point"].items())
        cells = " ".join(_cell(row["summary"][n]) for n in _COLUMNS)
        print(f"{label:40s} {row['failed']:6d} {cells}")
    pictures = [plot_sweep(rows, name, out / f"sweep_{name}.png") for name in grid]
    print(f"\ntable: {table}\npictures: {', '.join(map(str, pictures))}\nstore: {args.store}")
    print(f"rows: {csv_table}")
    return 0


def show_command(args: argparse.Namespace) -> int:
    from circuitnn.extract.plots import plot_all
    from circuitnn.store import Store
    from circuitnn.store.paths import shown, writable_folder

    store = Store(args.store)
    if not store.path.exists():
        raise ConfigError(f"store {shown(store.path)} does not exist")
    if store.path.is_dir():
        raise ConfigError(f"store {shown(store.path)} is a folder, not a store's index file")
    out = writable_folder(args.out or store.path.parent / "plots", "--out")
    damaged: dict[str, str] = {}
    if args.family:
        keys = store.matching(args.family)
        if not keys:
            store.resolve(args.family)  # raises, naming what is there (and what is damaged)
    else:
        keys = [row["key"] for row in store.describe(damaged)]
    for key in keys:
        family = store.load(key)
        attrs = family.attrs
        print(
            f"{family.neuron}  key {key}  n={family.n}  failed={len(family.failed)}  "
            f"seed={attrs['seed']}  T={attrs['temperature']:g} °C  "
            f"corner={attrs['corner'] or '-'}  "
            f"{attrs['ngspice_version']}  created {attrs['created']}"
        )
        print_summary(family)
        for index in family.failed[:5]:
            print(f"  failed instance {index}: {family.reasons[index]}")
        for picture in plot_all(family, out / f"{family.neuron}-{key[:12]}.png"):
            print(f"  picture: {picture}")
        print()
    for key, reason in damaged.items():
        print(f"damaged family {key}: {reason}")
    if damaged:
        print(
            f"{len(damaged)} damaged famil{'y' if len(damaged) == 1 else 'ies'} skipped: "
            f"circuitnn store repair {shown(store.path)} sets them aside to be extracted again"
        )
    return 0


def store_command(args: argparse.Namespace) -> int:
    from circuitnn.store import Store
    from circuitnn.store.paths import shown
    from circuitnn.store.repair import check_store, remove_family, repair_store

    store = Store(args.store)
    if not store.path.exists() and not store.folder.is_dir():
        raise ConfigError(f"store {shown(store.path)} does not exist")
    if store.path.is_dir():
        raise ConfigError(f"store {shown(store.path)} is a folder, not a store's index file")
    if args.action == "remove":
        if not args.family:
            raise ConfigError("store remove needs the FAMILY to remove (a key or neuron name)")
        print(f"removed family {remove_family(store, args.family)} from {shown(store.path)}")
        return 0
    if args.action == "repair":
        state = repair_store(store)
        kept = [family for family in state.families if family.intact]
        print(
            f"{shown(store.path)}: index rebuilt with {len(kept)} intact famil"
            f"{'y' if len(kept) == 1 else 'ies'}"
        )
        for family in state.damaged:
            print(f"  set aside {family.key} ({family.neuron or 'unreadable'}): {family.problem}")
        return 0
    state = check_store(store, args.family)
    if state.index_problem:
        print(f"index damaged: {state.index_problem}")
    for family in state.families:
        verdict = "ok" if family.intact else f"DAMAGED: {family.problem}"
        linked = "" if family.linked else " (not in the index)"
        print(f"{family.key}  {family.neuron or '?':16s} {verdict}{linked}")
    if not state.healthy:
        print(f"repair with: circuitnn store repair {shown(store.path)}")
        return 1
    print(f"{len(state.families)} famil{'y' if len(state.families) == 1 else 'ies'} intact")
    return 0


_COLUMNS = ("swing", "midpoint", "gain", "mean_power")


def _cell(stats: dict[str, float]) -> str:
    return f"{stats['mean']:>11.4g} ± {stats['std']:<8.3g}"


def kernel_command(args: argparse.Namespace) -> int:
    from circuitnn.nn import kernel

    if args.action == "build":
        print(f"lookup kernel: {kernel.build()}")
    reason = kernel.why_not()
    print(f"lookup backend: {kernel.backend()}" + (f" ({reason})" if reason else ""))
    return 1 if args.action == "build" and reason else 0
