"""The ``circuitnn run`` and ``circuitnn experiment`` subcommands."""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from circuitnn.cli.commands import campaign_command, run_options
from circuitnn.errors import ConfigError


def experiment_command(args: argparse.Namespace) -> int:
    from circuitnn.experiments import EXPERIMENTS, run_experiment

    if args.list:
        print("\n".join(EXPERIMENTS))
        return 0
    if not args.name or args.name not in EXPERIMENTS:
        given = f"unknown experiment {args.name!r}" if args.name else "give an experiment NAME"
        raise ConfigError(f"{given}; known: {', '.join(EXPERIMENTS)}")
    from circuitnn.store.paths import writable_folder

    out = writable_folder(args.out or Path("results") / args.name, "--out")
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


def run_command(args: argparse.Namespace) -> int:
    from circuitnn.campaign.file import is_campaign

    if args.config and is_campaign(args.config):
        if args.quick:
            raise ConfigError(
                f"{args.config} is a campaign file, which runs as written: --quick applies to "
                "the main job only (make n or the grid smaller in the file for a quick run)"
            )
        args.file = args.config
        return campaign_command(args, jobs_default=-1)
    from circuitnn.job.config import MainJobConfig, load_config
    from circuitnn.job.run import run_main_job
    from circuitnn.store.paths import writable_folder

    writable_folder(args.out, "--out")
    config = load_config(args.config) if args.config else MainJobConfig()
    if args.quick:
        config = config.quick()
    options = dataclasses.replace(run_options(args), progress=False)  # one line per stage instead
    report = run_main_job(
        config,
        args.out,
        options=options,
        say=(lambda line: None) if args.quiet else _say,
        progress=not args.quiet,  # a bar over the training epochs (stderr; gone when done)
    )
    if args.quiet:
        print(f"report: {report}")
    return 0


def _say(line: str) -> None:
    print(line, flush=True)
