"""Reading a co-design file into :class:`~circuitnn.codesign.config.CodesignConfig`, checked
before anything runs (errors name the file and the bad key).

A co-design file holds one ``[codesign]`` table (``examples/codesign.toml`` documents every
key)::

    [codesign]
    neuron = "mos_diffpair"        # built-in, or a spec path relative to this file
    n = 300                        # Monte Carlo instances per design point
    seed = 0
    objectives = ["accuracy_p5:max", "energy_J:min"]   # the Pareto front's columns
    yield_fraction = 0.95          # a chip yields when it keeps this fraction of the nominal

    [codesign.grid]                # one design point per combination (last varies fastest)
    l = ["0.15u", "0.3u", "0.6u"]
    ibias = ["2.5u", "5u", "10u", "20u"]

    [codesign.search]              # and/or: a budget-limited search over ranges
    budget = 6
    sampler = "gp"                 # gp | tpe | nsga2 | random
    l = ["0.15u", "0.6u"]          # [low, high], searched on a log axis
    corner = ["tt", "ss"]          # corners: a choice among them
    temperature = { choices = [27, 85] }   # any other discrete choice

    [codesign.task]                # data set and network (see TaskSettings)
    [[codesign.select]]            # the best design under constraints
    name = "95 % of nominal on 95 % of chips at the lowest energy"
    require = ["yield >= 0.95"]
    minimize = "energy_J"
    [codesign.noise] / [codesign.speed] / [codesign.run]   as in campaign files
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from circuitnn.codesign.config import (
    DEFAULT_NOISE,
    DEFAULT_SPEED,
    SAMPLERS,
    CodesignConfig,
    Condition,
    Objective,
    SearchSpace,
    Selection,
    TaskSettings,
    check_integer,
)
from circuitnn.errors import ConfigError
from circuitnn.neuron.units import parse_spice, shown
from circuitnn.spice.analyses import NoiseAnalysis, SpeedAnalysis
from circuitnn.toml_file import read_toml

_CONDITION = re.compile(r"^\s*([A-Za-z_][\w]*)\s*(>=|<=|>|<)\s*(\S+)\s*$")


def parse_objective(text: Any) -> Objective:
    """``"energy_J:min"`` → Objective; :class:`ConfigError` for anything else."""
    if not isinstance(text, str) or text.count(":") != 1:
        raise ConfigError(f"objectives: expected 'COLUMN:min' or 'COLUMN:max', got {shown(text)}")
    column, direction = (part.strip() for part in text.split(":"))
    if direction not in ("min", "max") or not column:
        raise ConfigError(f"objectives: expected 'COLUMN:min' or 'COLUMN:max', got {text!r}")
    return Objective(column, direction == "min")


def parse_selection(table: Any, index: int) -> Selection:
    """One ``[[codesign.select]]`` table → Selection."""
    where = f"[[codesign.select]] #{index + 1}"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = set(table) - {"name", "require", "minimize", "maximize"}
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}")
    if ("minimize" in table) == ("maximize" in table):
        raise ConfigError(f"{where}: give exactly one of minimize or maximize (a column)")
    column = table.get("minimize", table.get("maximize"))
    if not isinstance(column, str) or not column:
        raise ConfigError(f"{where}: minimize/maximize must name a column, got {shown(column)}")
    require = table.get("require", [])
    if isinstance(require, str):
        require = [require]
    if not isinstance(require, list):
        raise ConfigError(f"{where}: require must be a list of 'COLUMN >= VALUE' texts")
    conditions = []
    for text in require:
        match = _CONDITION.match(text) if isinstance(text, str) else None
        if match is None:
            raise ConfigError(
                f"{where}: require {shown(text)} is not 'COLUMN OP VALUE' (OP one of >= <= > <)"
            )
        try:
            value = float(match.group(3))
        except ValueError:
            raise ConfigError(
                f"{where}: require {text!r}: {match.group(3)!r} is not a number"
            ) from None
        conditions.append(Condition(match.group(1), match.group(2), value))
    name = table.get("name", f"{'lowest' if 'minimize' in table else 'highest'} {column}")
    if not isinstance(name, str):
        raise ConfigError(f"{where}: name must be text")
    return Selection(name, tuple(conditions), column, "minimize" in table)


def load_codesign(path: str | Path) -> CodesignConfig:
    """Read and check a co-design file; errors name the file and the bad key."""
    path = Path(path)
    data = read_toml(path, "codesign")
    try:
        return config_from_dict(data, path.parent)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


KEYS = {"name", "neuron", "n", "seed", "chip_size", "corner", "temperature", "store"}
KEYS |= {"objectives", "yield_fraction", "allow_control"}
TABLES = {"grid", "search", "task", "select", "noise", "speed", "run"}
RUN_KEYS = {"backend", "scheduler", "jobs", "chunk_size", "engine", "timeout"}


def config_from_dict(data: dict[str, Any], folder: str | Path = ".") -> CodesignConfig:
    """A :class:`CodesignConfig` from the TOML data of a co-design file (paths relative to
    ``folder``)."""
    if set(data) != {"codesign"} or not isinstance(data["codesign"], dict):
        raise ConfigError("a co-design file holds one [codesign] table")
    table = data["codesign"]
    unknown = set(table) - KEYS - TABLES
    if unknown:
        raise ConfigError(f"[codesign] unknown key(s) {sorted(unknown)}; known: {sorted(KEYS)}")
    if "neuron" not in table or not isinstance(table["neuron"], str) or not table["neuron"]:
        raise ConfigError("[codesign] neuron is missing (a built-in name or a spec path)")
    neuron = table["neuron"]
    candidate = Path(folder) / neuron
    if not Path(neuron).is_absolute() and candidate.is_file():
        neuron = str(candidate)
    grid = table.get("grid", {})
    if not isinstance(grid, dict):
        raise ConfigError("[codesign.grid] must be a table of name = [values]")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"[codesign.grid] {key} must be a non-empty list: {shown(values)}")
    task = table.get("task", {})
    if not isinstance(task, dict):
        raise ConfigError("[codesign.task] must be a table")
    known = {f.name for f in dataclasses.fields(TaskSettings)}
    if set(task) - known:
        raise ConfigError(
            f"[codesign.task] unknown key(s) {sorted(set(task) - known)}; known: {sorted(known)}"
        )
    try:
        settings = TaskSettings(**task)
    except ConfigError as error:
        raise ConfigError(f"[codesign.task] {error}") from None
    objectives = table.get("objectives")
    if objectives is not None and (not isinstance(objectives, list) or len(objectives) < 2):
        raise ConfigError("[codesign] objectives must list at least two 'COLUMN:min|max'")
    selections = table.get("select", [])
    if isinstance(selections, dict):
        selections = [selections]
    if not isinstance(selections, list):
        raise ConfigError("[[codesign.select]] must be tables")
    run = table.get("run", {})
    if not isinstance(run, dict) or set(run) - RUN_KEYS:
        raise ConfigError(f"[codesign.run] must be a table with keys among {sorted(RUN_KEYS)}")
    store = table.get("store")
    if store is not None:
        if not isinstance(store, str) or not store:
            raise ConfigError(f"[codesign] store must be a file path, got {shown(store)}")
        store = store if Path(store).is_absolute() else str(Path(folder) / store)
    values: dict[str, Any] = {
        "neuron": neuron,
        "grid": {key.lower(): tuple(values) for key, values in grid.items()},
        "search": _search(table.get("search")),
        "task": settings,
        "objectives": tuple(parse_objective(o) for o in objectives or ()),
        "selections": tuple(parse_selection(s, i) for i, s in enumerate(selections)),
        "noise": _analysis(table, "noise", NoiseAnalysis, DEFAULT_NOISE),
        "speed": _analysis(table, "speed", SpeedAnalysis, DEFAULT_SPEED),
        "store": store,
        "run": dict(run),
    }
    for key in ("name", "n", "seed", "chip_size", "corner", "yield_fraction", "allow_control"):
        if key in table:
            values[key] = table[key]
    if "temperature" in table:
        values["temperature"] = table["temperature"]
    try:
        return CodesignConfig(**values)
    except ConfigError as error:
        raise ConfigError(f"[codesign] {error}") from None


def _search(table: Any) -> SearchSpace | None:
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ConfigError("[codesign.search] must be a table")
    settings = {k: table[k] for k in ("budget", "sampler", "startup") if k in table}
    if "budget" not in settings:
        raise ConfigError("[codesign.search] budget is missing (design points to evaluate)")
    check_integer("[codesign.search] budget", settings["budget"], 1)
    sampler = settings.get("sampler", "gp")
    if sampler not in SAMPLERS:
        raise ConfigError(f"[codesign.search] sampler must be one of {SAMPLERS}, got {sampler!r}")
    startup = settings.get("startup", 2)
    check_integer("[codesign.search] startup", startup, 1)
    ranges: dict[str, tuple[float, float]] = {}
    choices: dict[str, tuple[Any, ...]] = {}
    for key, values in table.items():
        if key in ("budget", "sampler", "startup"):
            continue
        where = f"[codesign.search] {key}"
        if isinstance(values, dict) and set(values) == {"choices"}:
            values = values["choices"]
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{where}: choices must be a non-empty list")
            choices[key.lower()] = tuple(values)
            continue
        if key.lower() == "corner":
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{where}: expected a list of corner names")
            choices["corner"] = tuple(values)
            continue
        if not isinstance(values, list):
            raise ConfigError(f"{where}: expected [low, high] or {{choices = [...]}}")
        if len(values) != 2:
            raise ConfigError(f"{where}: a range is [low, high], got {len(values)} values")
        low, high = (parse_spice(v, where) for v in values)
        if not high > low:
            raise ConfigError(f"{where}: high ({high:g}) must exceed low ({low:g})")
        ranges[key.lower()] = (low, high)
    if not ranges and not choices:
        raise ConfigError("[codesign.search] names no parameter range to search")
    return SearchSpace(settings["budget"], sampler, ranges, choices, startup)


def _analysis(table: dict[str, Any], kind: str, cls: type, default: Any) -> Any:
    settings = table.get(kind)
    if settings is None:
        return default
    if not isinstance(settings, dict):
        raise ConfigError(f"[codesign.{kind}] must be a table")
    known = {f.name for f in dataclasses.fields(cls)}
    if set(settings) - known:
        raise ConfigError(
            f"[codesign.{kind}] unknown key(s) {sorted(set(settings) - known)}; "
            f"known: {sorted(known)}"
        )
    values = {**dataclasses.asdict(default), **settings}
    if isinstance(values.get("bias"), list):
        values["bias"] = tuple(values["bias"])
    try:
        return cls(**values)
    except (ConfigError, TypeError) as error:
        raise ConfigError(f"[codesign.{kind}] {error}") from None
