"""Campaigns: a design grid × Monte Carlo × analyses, run from one TOML file, resumable.

A campaign file holds one ``[campaign]`` table::

    [campaign]
    name = "diode sizing"          # optional label
    neuron = "diode_relu"          # built-in name, or a spec path relative to this file
    n = 2000                       # Monte Carlo instances per point
    seed = 0                       # same seed at every point (common random numbers)
    chip_size = 1                  # optional: neurons sharing one die-to-die draw
    corner = "slow"                # optional: a corner named in the spec
    temperature = 27.0             # optional °C (or sweep "temperature" in the grid)
    store = "families.h5"          # optional, relative to this file (default OUT/families.h5)

    [campaign.grid]                # one family per combination (the last varies fastest)
    r = ["1k", "2k", "4k"]         # numbers or SPICE strings
    temperature = [27, 85]         # °C

    [campaign.noise]               # optional: output noise (fields of NoiseAnalysis)
    bias_points = 5
    points_per_decade = 5

    [campaign.speed]               # optional: bandwidth and settling (fields of SpeedAnalysis)

    [campaign.run]                 # how to run; never changes the numbers
    backend = "dask"               # loky | dask | ray
    scheduler = "tcp://host:8786"  # optional: an existing cluster (default: a local one)
    jobs = 2
    chunk_size = 100               # optional (default: automatic)
    engine = "subprocess"
    timeout = 300

Every point's family streams into the store and is committed atomically; a killed campaign
rerun skips the finished points (store cache) and resumes the unfinished one (journal). One
progress bar runs over the whole campaign; :func:`summary_table` gives the per-point summary.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from circuitnn.errors import ConfigError
from circuitnn.neuron.units import parse_spice, shown
from circuitnn.neuron.variation import MonteCarlo
from circuitnn.toml_file import read_toml

KEYS = {
    "name",
    "neuron",
    "n",
    "seed",
    "chip_size",
    "corner",
    "temperature",
    "store",
    "allow_control",
}


TABLES = {"grid", "noise", "speed", "run"}


RUN_KEYS = {"backend", "scheduler", "jobs", "chunk_size", "engine", "timeout"}


SUMMARY = ("swing", "midpoint", "gain", "mean_power")


@dataclass(frozen=True)
class Campaign:
    """A parsed campaign file: what to simulate (neuron, grid, n, seed, chips, corner,
    temperature °C, analyses), where to store it and how to run it (``run``: RunOptions fields)."""

    source: Path
    neuron: str
    grid: dict[str, list[float]]
    n: int
    seed: int = 0
    name: str = ""
    chip_size: int = 1
    corner: str | None = None
    temperature: float | None = None
    store: Path | None = None
    allow_control: bool = False
    noise: Any = None
    speed: Any = None
    run: dict[str, Any] = field(default_factory=dict)

    @property
    def points(self) -> int:
        """Number of grid points (families)."""
        return int(np.prod([len(values) for values in self.grid.values()]))

    @property
    def analyses(self) -> list[str]:
        """The analyses run at every point (``dc`` always)."""
        return ["dc"] + ["noise"] * (self.noise is not None) + ["speed"] * (self.speed is not None)


@dataclass(frozen=True)
class PointSummary:
    """One point of a finished campaign: its grid values, family key, instances, failed
    instances, wall seconds, descriptor statistics over the ok instances (name → mean, std) and,
    with noise, the mean σ_out at the middle bias point (output unit, RMS)."""

    point: dict[str, float]
    key: str
    instances: int
    failed: int
    seconds: float
    descriptors: dict[str, tuple[float, float]]
    output_unit: str
    sigma: float | None = None


@dataclass(frozen=True)
class CampaignResult:
    """Every point's summary, the store, the campaign's wall seconds, and the points as table
    rows (:func:`circuitnn.campaign.table.point_row`, for ``campaign.csv``)."""

    campaign: Campaign
    store: Path
    points: list[PointSummary]
    seconds: float
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def instances(self) -> int:
        """Monte Carlo instances over all points."""
        return sum(point.instances for point in self.points)

    def to_json(self) -> dict[str, Any]:
        """Plain data (for ``campaign.json``)."""
        return {
            "name": self.campaign.name,
            "neuron": self.campaign.neuron,
            "store": str(self.store),
            "seconds": self.seconds,
            "points": [dataclasses.asdict(point) for point in self.points],
        }


def is_campaign(path: str | Path) -> bool:
    """Whether ``path`` is a TOML file with a ``[campaign]`` table (False if unreadable)."""
    try:
        return isinstance(tomllib.loads(Path(path).read_text()).get("campaign"), dict)
    except (OSError, UnicodeDecodeError, ValueError):  # ValueError: TOMLDecodeError, or an
        return False  # integer of more than 4300 digits


def load_campaign(path: str | Path) -> Campaign:
    """Parse and check a campaign file; :class:`ConfigError` names the file and the bad field."""
    path = Path(path)
    data = read_toml(path, "campaign")
    try:
        return _parse(path, data)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def _parse(path: Path, data: dict[str, Any]) -> Campaign:
    if set(data) != {"campaign"}:
        others = sorted(set(data) - {"campaign"})
        raise ConfigError(
            "a campaign file holds one [campaign] table"
            + (f"; unknown top-level key(s) {others}" if others else "; none found")
        )
    if not isinstance(data["campaign"], dict):
        raise ConfigError(f"[campaign] must be a table, got {shown(data['campaign'])}")
    table = data["campaign"]
    unknown = set(table) - KEYS - TABLES
    if unknown:
        raise ConfigError(
            f"[campaign] unknown key(s) {sorted(unknown)}; known: {sorted(KEYS | TABLES)}"
        )
    if "neuron" not in table:
        raise ConfigError("[campaign] neuron is missing")
    neuron = table["neuron"]
    if not isinstance(neuron, str) or not neuron:
        raise ConfigError(f"[campaign] neuron must be a name or a spec path, got {neuron!r}")
    if "n" not in table:
        raise ConfigError("[campaign] n is missing")
    n = _integer(table["n"], "n", 1)
    seed = _integer(table.get("seed", 0), "seed", 0)
    if seed >= 2**63:
        raise ConfigError(f"[campaign] seed must be below 2**63, got {shown(seed)}")
    chip_size = _integer(table.get("chip_size", 1), "chip_size", 1)
    try:
        MonteCarlo(n=n, seed=seed, chip_size=chip_size)
    except ConfigError as error:
        raise ConfigError(f"[campaign] {error}") from None
    corner = table.get("corner")
    if corner is not None and (not isinstance(corner, str) or not corner):
        raise ConfigError(f"[campaign] corner must be a corner name, got {corner!r}")
    temperature = table.get("temperature")
    if temperature is not None:
        temperature = parse_spice(temperature, "[campaign] temperature (°C)")
    name = table.get("name", path.stem)
    if not isinstance(name, str):
        raise ConfigError(f"[campaign] name must be text, got {name!r}")
    allow_control = table.get("allow_control", False)
    if not isinstance(allow_control, bool):
        raise ConfigError(f"[campaign] allow_control must be true or false, got {allow_control!r}")
    store = table.get("store")
    if store is not None:
        if not isinstance(store, str) or not store.strip() or "\0" in store:
            raise ConfigError(f"[campaign] store must be a file path, got {store!r}")
        store = Path(store) if Path(store).is_absolute() else path.parent / store

    if "grid" not in table:
        raise ConfigError("[campaign] grid is missing: add a [campaign.grid] table")
    grid_table = table["grid"]
    if not isinstance(grid_table, dict) or not grid_table:
        raise ConfigError("[campaign.grid] must be a table of parameter = [values]")
    grid: dict[str, list[float]] = {}
    for key, values in grid_table.items():
        label = f"[campaign.grid] {key}"
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{label} must be a non-empty list of values, got {values!r}")
        if key.lower() in grid:
            first = next(other for other in grid_table if other.lower() == key.lower())
            raise ConfigError(
                f"{label}: parameter {key.lower()!r} is given twice ({first!r} and {key!r}; "
                "names are case-insensitive)"
            )
        grid[key.lower()] = [parse_spice(value, label) for value in values]
    if temperature is not None and "temperature" in grid:
        raise ConfigError("[campaign] temperature is both fixed and swept in [campaign.grid]")

    noise = _analysis(table, "noise")
    speed = _analysis(table, "speed")
    run = table.get("run", {})
    if not isinstance(run, dict):
        raise ConfigError("[campaign.run] must be a table")
    unknown = set(run) - RUN_KEYS
    if unknown:
        raise ConfigError(
            f"[campaign.run] unknown key(s) {sorted(unknown)}; known: {sorted(RUN_KEYS)}"
        )
    campaign = Campaign(
        source=path,
        neuron=_neuron(path.parent, neuron),
        grid=grid,
        n=n,
        seed=seed,
        name=name,
        chip_size=chip_size,
        corner=corner,
        temperature=temperature,
        store=store,
        allow_control=allow_control,
        noise=noise,
        speed=speed,
        run=dict(run),
    )
    _check(campaign)
    return campaign


def options(campaign: Campaign, overrides: dict[str, Any] | None = None) -> Any:
    """The campaign's RunOptions (``[campaign.run]``), with ``overrides`` (e.g. from the CLI)."""
    from circuitnn.extract.options import RunOptions

    return RunOptions(**{**campaign.run, **(overrides or {})})


def _check(campaign: Campaign) -> None:
    """Everything that can be checked before simulating: neuron, grid names, analyses, options."""
    from circuitnn.campaign.sweep import apply_point, check_grid
    from circuitnn.neuron.builtin import get_neuron

    try:
        options(campaign)
    except ConfigError as error:
        raise ConfigError(f"[campaign.run] {error}") from None
    except TypeError as error:
        raise ConfigError(f"[campaign.run] {error}") from None
    try:
        spec = get_neuron(campaign.neuron, allow_control=campaign.allow_control)
    except ConfigError as error:
        raise ConfigError(f"[campaign] neuron: {error}") from None
    try:
        points = check_grid(spec, campaign.grid)
    except ConfigError as error:
        raise ConfigError(f"[campaign.grid] {error}") from None
    try:
        spec.nominal(campaign.corner)
    except ConfigError as error:
        raise ConfigError(f"[campaign] corner: {error}") from None
    for point in points:
        try:
            varied = apply_point(spec, point)
        except ConfigError as error:
            raise ConfigError(f"[campaign.grid] {error}") from None
        if campaign.noise is not None:
            try:
                campaign.noise.biases(varied)
            except ConfigError as error:
                raise ConfigError(f"[campaign.noise] {error}") from None
        if campaign.speed is not None:
            try:
                campaign.speed.check(varied)
            except ConfigError as error:
                raise ConfigError(f"[campaign.speed] {error}") from None


def _analysis(table: dict[str, Any], kind: str) -> Any:
    from circuitnn.spice.analyses import NoiseAnalysis, SpeedAnalysis

    settings = table.get(kind)
    if settings is None or settings is False:
        return None
    if settings is True:
        settings = {}
    if not isinstance(settings, dict):
        raise ConfigError(f"[campaign.{kind}] must be a table (or true for the defaults)")
    cls = NoiseAnalysis if kind == "noise" else SpeedAnalysis
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(settings) - known
    if unknown:
        raise ConfigError(
            f"[campaign.{kind}] unknown key(s) {sorted(unknown)}; known: {sorted(known)}"
        )
    values = dict(settings)
    if isinstance(values.get("bias"), list):
        values["bias"] = tuple(values["bias"])
    try:
        return cls(**values)
    except (ConfigError, TypeError) as error:
        raise ConfigError(f"[campaign.{kind}] {error}") from None


def _integer(value: Any, name: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        kind = "a positive" if least == 1 else "a non-negative"
        raise ConfigError(f"[campaign] {name} must be {kind} integer, got {shown(value)}")
    return value


def _neuron(folder: Path, name: str) -> str:
    """A spec path relative to the campaign file's folder, or the name unchanged (built-in)."""
    candidate = folder / name
    try:
        found = not Path(name).is_absolute() and candidate.is_file()
    except OSError:  # a name too long for a path, say: not a file here
        found = False
    return str(candidate) if found else name
