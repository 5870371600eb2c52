"""The ``circuitnn codesign`` subcommand."""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable


def add_codesign_parser(
    commands: argparse._SubParsersAction,  # type: ignore[type-arg]
    command: Callable[..., argparse.ArgumentParser],
    run_options: Callable[..., None],
) -> None:
    """Register ``circuitnn codesign CONFIG.toml``; ``command`` makes a subcommand's parser (with
    its examples), ``run_options`` adds --jobs etc."""
    codesign = command(
        commands,
        "codesign",
        "which circuit should my network use: a design space → accuracy, yield, energy, "
        "latency, area, Pareto front",
        (
            "circuitnn codesign examples/codesign.toml --out results/codesign",
            "circuitnn codesign examples/codesign.toml --grid-only --jobs 2",
        ),
    )
    codesign.add_argument("config", help="co-design TOML with a [codesign] table")
    codesign.add_argument(
        "--out", default="output/codesign", help="output folder (default: output/codesign)"
    )
    codesign.add_argument(
        "--store", help="HDF5 store (default: the file's store, else OUT/families.h5)"
    )
    part = codesign.add_mutually_exclusive_group()
    part.add_argument("--grid-only", action="store_true", help="skip [codesign.search]")
    part.add_argument("--search-only", action="store_true", help="skip [codesign.grid]")
    run_options(codesign, jobs_default=None)
    codesign.set_defaults(handler=codesign_command)


def codesign_command(args: argparse.Namespace) -> int:
    from circuitnn.cli.commands import _given_options
    from circuitnn.codesign.config_file import load_codesign
    from circuitnn.codesign.report import selection_lines
    from circuitnn.codesign.run import run_codesign, run_options

    config = load_codesign(args.config)
    given = _given_options(args)
    given.setdefault("progress", False)
    settings = {**config.run, **given}
    options = run_options(dataclasses.replace(config, run=settings))
    began = time.perf_counter()
    result = run_codesign(
        config,
        args.out,
        store=args.store,
        options=options,
        say=None if args.quiet else (lambda line: print(line, flush=True)),
        grid=not args.search_only,
        search=not args.grid_only,
    )
    timings = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in result.timings.items())
    print(
        f"{len(result.rows)} design points ({result.reused} from an earlier run, "
        f"{result.simulated} families simulated): {timings}"
    )
    print("\n".join(line.removeprefix("- ").replace("**", "") for line in selection_lines(result)))
    print(f"Pareto front: points {', '.join(str(result.rows[i]['point']) for i in result.front)}")
    print(f"table: {result.table}\nsummary: {result.summary}")
    for path in result.figures.values():
        print(f"picture: {path}")
    print(f"done in {time.perf_counter() - began:.1f} s")
    return 0
