"""Running a co-design: every design point's family, network and metrics; the front; the files.

Each design point is cached twice: its family in the HDF5 store (a rerun simulates nothing, a
killed extraction resumes from its journal) and its finished row in ``OUT/points/KEY.json``
(written atomically once the point is judged), so an interrupted run redoes only the point it
was working on. The key hashes the family's key, the analyses, the task and the seed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from circuitnn._version import __version__
from circuitnn.codesign.config import CodesignConfig
from circuitnn.codesign.config_file import load_codesign
from circuitnn.codesign.front import pareto_mask, select
from circuitnn.codesign.space import (
    area_proxy,
    check_name,
    check_value,
    column_name,
    point_spec,
)
from circuitnn.codesign.table import (
    Row,
    check_columns,
    circuit_columns,
    settings_columns,
    write_csv,
)
from circuitnn.errors import ConfigError

Say = Callable[[str], None]
ROW_SCHEMA = 1  # bump when a cached row's columns change meaning


@dataclass
class CodesignResult:
    """A finished co-design: its rows (one per design point, in order), which are on the Pareto
    front, the row each selection chose (None: no design met its constraints), the files
    written and the time spent (``timings``: simulation, training, evaluation, seconds summed
    over the points computed in this run; ``reused`` points came from an earlier run)."""

    config: CodesignConfig
    out: Path
    rows: list[Row]
    front: list[int]
    chosen: dict[str, int | None]
    table: Path
    figures: dict[str, Path] = field(default_factory=dict)
    summary: Path | None = None
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    reused: int = 0
    simulated: int = 0
    columns: dict[str, str] = field(default_factory=dict)

    @property
    def metric(self) -> str:
        """``accuracy`` or ``rmse``."""
        return self.config.task.metric

    def frame(self) -> Any:
        """The table as a pandas DataFrame (needs pandas)."""
        from circuitnn.codesign.table import read_table

        return read_table(self.table)


def run_codesign(
    config: CodesignConfig | str | Path,
    out: str | Path = "output/codesign",
    *,
    store: str | Path | None = None,
    options: Any = None,
    say: Say | None = None,
    grid: bool = True,
    search: bool = True,
    pictures: bool = True,
) -> CodesignResult:
    """Run a co-design (a :class:`CodesignConfig` or a co-design file) into folder ``out``.

    ``store`` overrides the config's HDF5 store (default ``OUT/families.h5``); ``options`` a
    :class:`~circuitnn.extract.options.RunOptions` (default: the config's ``[codesign.run]``,
    chunks of ⌈n / jobs⌉ instances); ``say`` gets one line per design point; ``grid`` /
    ``search`` run those parts of the design space when the config has them. Writes
    ``OUT/codesign.csv``, ``OUT/points/*.json``, the pictures, ``OUT/summary.md`` and
    ``OUT/result.json``.
    """
    from circuitnn.neuron.builtin import get_neuron

    if not isinstance(config, CodesignConfig):
        config = load_codesign(config)
    from circuitnn.store.paths import writable_file, writable_folder

    say = say or (lambda line: None)
    out = writable_folder(out, "--out (the co-design's output folder)")
    spec = get_neuron(config.neuron, allow_control=config.allow_control)
    grid_points = _grid_points(spec, config) if grid and config.grid else []
    space = config.search if search else None
    if space is not None:
        for name in (*space.ranges, *space.choices):
            check_name(spec, name)
        for name, values in space.choices.items():
            for value in values:
                check_value(spec, name, value, f"[codesign.search] {name}")
    if not grid_points and space is None:
        raise ConfigError("nothing to run: the design space has no grid and no search")
    check_columns(config, spec)
    options = run_options(config, options)
    target = writable_file(store or config.store or out / "families.h5", "--store")
    target.parent.mkdir(parents=True, exist_ok=True)
    runner = _PointRunner(config, spec, out, target, options, say)
    began = time.perf_counter()
    rows = []
    with _torch_threads(1):
        for settings in grid_points:
            rows.append(runner.evaluate(settings, "grid"))
        if space is not None:
            from circuitnn.codesign.search import run_search

            rows += run_search(space, config, lambda s: runner.evaluate(s, "search"))
    result = finish(config, out, rows, pictures=pictures)
    result.seconds = time.perf_counter() - began
    result.timings = runner.timings
    result.reused, result.simulated = runner.reused, runner.simulated
    return result


def finish(
    config: CodesignConfig, out: Path, rows: list[Row], *, pictures: bool = True
) -> CodesignResult:
    """Mark the front and the selections on ``rows``, write the table, pictures and summary."""
    from circuitnn.codesign.report import write_summary
    from circuitnn.neuron.builtin import get_neuron

    spec = get_neuron(config.neuron, allow_control=config.allow_control)
    names = [*config.grid, *(config.search.ranges if config.search else ())]
    names += list(config.search.choices) if config.search else []
    for objective in config.objectives:
        if rows and objective.column not in rows[0]:
            raise ConfigError(
                f"objective {objective.column!r} is not a column of the table "
                f"(columns: {', '.join(rows[0])})"
            )
    mask = pareto_mask(rows, config.objectives)
    chosen = {selection.name: select(rows, selection) for selection in config.selections}
    for index, row in enumerate(rows):
        row["pareto"] = bool(mask[index])
        row["selected"] = "; ".join(name for name, i in chosen.items() if i == index)
    result = CodesignResult(
        config,
        out,
        rows,
        [int(i) for i in mask.nonzero()[0]],
        chosen,
        write_csv(out / "codesign.csv", rows),
        columns={name: column_name(spec, name) for name in names},
    )
    if pictures and rows:
        from circuitnn.codesign.plots import plot_effects, plot_front

        result.figures["accuracy vs energy"] = plot_front(result, out / "front.png")
        result.figures.update(plot_effects(result, out))
    result.summary = write_summary(result)
    return result


def _grid_points(spec: Any, config: CodesignConfig) -> list[dict[str, Any]]:
    names = [check_name(spec, name) for name in config.grid]
    if len(set(names)) != len(names):
        raise ConfigError("[codesign.grid] a name is given twice (names are case-insensitive)")
    values = [
        [check_value(spec, name, value, f"[codesign.grid] {name}") for value in config.grid[key]]
        for name, key in zip(names, config.grid, strict=True)
    ]
    fixed = {"corner": config.corner, "temperature": config.temperature}
    for name, value in fixed.items():
        if value is not None and name in names:
            raise ConfigError(f"[codesign] {name} is both fixed and in [codesign.grid]")
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]


def run_options(config: CodesignConfig, options: Any = None) -> Any:
    """``options`` if given, else the RunOptions of ``[codesign.run]`` (no progress bar;
    the automatic chunk size, which keeps every worker busy, unless the file sets chunk_size)."""
    from circuitnn.extract.options import RunOptions

    if options is not None:
        return options
    settings = {"progress": False, **config.run}
    try:
        return RunOptions(**settings)
    except TypeError as error:
        raise ConfigError(f"[codesign.run] {error}") from None


@contextlib.contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class _PointRunner:
    """Evaluates design points one at a time, each from its cache file when it has one."""

    def __init__(
        self, config: CodesignConfig, spec: Any, out: Path, store: Path, options: Any, say: Say
    ) -> None:
        self.config, self.spec, self.out, self.store = config, spec, out, store
        self.options, self.say = options, say
        self.points = 0
        self.reused = self.simulated = 0
        self.timings = {"simulation": 0.0, "training": 0.0, "evaluation": 0.0}
        self._dataset: Any = None

    def evaluate(self, settings: dict[str, Any], source: str) -> Row:
        """The row of one design point (from its cache file, or computed and cached)."""
        from circuitnn.extract.pipeline import family_key
        from circuitnn.neuron.variation import MonteCarlo

        config = self.config
        spec, corner = point_spec(self.spec, settings)
        if config.temperature is not None and "temperature" not in settings:
            spec = spec.with_temperature(config.temperature)
        corner = corner or config.corner
        mc = MonteCarlo(n=config.n, seed=config.seed, chip_size=config.chip_size, corner=corner)
        spec.nominal(corner)
        key = point_key(family_key(spec, mc), spec, config)
        cache = self.out / "points" / f"{key}.json"
        self.points += 1
        label = ", ".join(f"{k}={_shown(v)}" for k, v in settings.items())
        head = {"point": self.points - 1, "source": source}
        if cache.is_file():
            try:
                row = {**head, **json.loads(cache.read_text())}
                self.reused += 1
                self.say(f"[{self.points}] {label}: cached ({cache.name})")
                return row
            except (OSError, ValueError):  # a damaged cache file: compute the point again
                pass
        row = {**head, **self._compute(spec, corner, settings)}
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_name(f".{cache.name}.{os.getpid()}.partial")
        stored = {k: v for k, v in row.items() if k not in head}
        partial.write_text(json.dumps(stored, indent=1))
        partial.replace(cache)
        metric = config.task.metric
        self.say(
            f"[{self.points}] {label}: {metric} {row[f'{metric}_mean']:.3f} "
            f"(nominal {row[f'{metric}_nominal']:.3f}), yield {row['yield']:.2f}, "
            f"{row['energy_J']:.3g} J, {row['latency_s']:.3g} s "
            f"({row['family_source']} {row['simulation_s']:.1f} s, train "
            f"{row['training_s']:.1f} s, judge {row['evaluation_s']:.1f} s)"
        )
        return row

    def _compute(self, spec: Any, corner: str | None, settings: dict[str, Any]) -> Row:
        from circuitnn.codesign.point import evaluate_point, load_dataset
        from circuitnn.extract.pipeline import extract_family
        from circuitnn.store import Store

        config = self.config
        store = Store(self.store)
        began = time.perf_counter()
        known = set(store.keys()) if self.store.exists() else set()
        family = extract_family(
            spec,
            config.n,
            config.seed,
            store=store,
            chip_size=config.chip_size,
            corner=corner,
            options=self.options,
            noise=config.noise,
            speed=config.speed,
        )
        simulation = time.perf_counter() - began
        source = "store" if family.key in known else "simulated"
        if source == "simulated":
            self.simulated += 1
        if self._dataset is None:
            self._dataset = load_dataset(config.task, config.seed)
        metrics = evaluate_point(
            family, self._dataset, config.task, config.seed, config.yield_fraction
        )
        hidden = sum(config.task.widths)
        row = {
            **settings_columns(spec, settings, config, corner),
            **circuit_columns(family, area_proxy(spec), hidden),
            **{k: v for k, v in metrics.items() if not k.endswith("_s") or k == "latency_s"},
            "family_source": source,
            "simulation_s": simulation,
            "training_s": metrics["training_s"],
            "evaluation_s": metrics["evaluation_s"],
            "family_key": family.key,
        }
        for name, seconds in (
            ("simulation", simulation),
            ("training", metrics["training_s"]),
            ("evaluation", metrics["evaluation_s"]),
        ):
            self.timings[name] += seconds
        return row


def point_key(family: str, spec: Any, config: CodesignConfig) -> str:
    """Content hash naming one design point's row: its family, the analyses, the task, the
    seed, the yield fraction, circuitnn's version and the row schema."""
    identity = {
        "family": family,
        "noise": config.noise.identity(spec),
        "speed": config.speed.identity(),
        "task": dataclasses.asdict(config.task),
        "seed": config.seed,
        "yield_fraction": config.yield_fraction,
        "version": __version__,
        "schema": ROW_SCHEMA,
    }
    text = json.dumps(identity, sort_keys=True, default=float)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
