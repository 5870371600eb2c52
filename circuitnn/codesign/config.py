"""Co-design settings: neuron, design space (grid and/or search), task, objectives, selections
(frozen dataclasses, checked when made; :mod:`circuitnn.codesign.config_file` reads them from a
``[codesign]`` TOML file)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from circuitnn.errors import ConfigError
from circuitnn.neuron.units import shown
from circuitnn.spice.analyses import NoiseAnalysis, SpeedAnalysis

DATASETS = ("digits", "diabetes", "smooth", "friedman")
SAMPLERS = ("gp", "tpe", "nsga2", "random")
# the codesign's default analyses: output noise only inside the signal band, no input referral
DEFAULT_NOISE = NoiseAnalysis(
    bias_points=5, points_per_decade=3, fmax=1e6, bandwidth=1e6, input_referred=False
)
DEFAULT_SPEED = SpeedAnalysis(points_per_decade=5)


@dataclass(frozen=True)
class TaskSettings:
    """The network each design point trains and how it is judged.

    ``dataset`` a built-in of :mod:`circuitnn.data` (digits: accuracy; diabetes, smooth,
    friedman: RMSE); ``widths`` hidden layers (every hidden neuron is the design's circuit on its
    nominal curve, with its simulated noise); ``epochs``, ``batch_size``, ``lr`` (Adam);
    ``noise_training`` additive σ (network units) injected in training, 0 for clean training;
    ``chips`` Monte Carlo chips (each neuron its own instance: the circuit's mismatch) and
    ``draws`` noise draws per chip (its own noise); ``midpoint`` whether to find the additive
    noise midpoint (the level where the metric is halfway to chance).
    """

    dataset: str = "digits"
    widths: tuple[int, ...] = (32,)
    epochs: int = 15
    batch_size: int = 64
    lr: float = 3e-3
    noise_training: float = 0.0
    chips: int = 32
    draws: int = 8
    midpoint: bool = True
    validation_fraction: float = 0.15
    test_fraction: float = 0.3

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ConfigError(f"dataset must be one of {', '.join(DATASETS)}, got {self.dataset!r}")
        widths = self.widths
        if isinstance(widths, str) or not isinstance(widths, list | tuple) or not widths:
            raise ConfigError(f"widths must be a non-empty list of layer widths, got {widths!r}")
        for width in widths:
            check_integer("widths", width, 1)
        object.__setattr__(self, "widths", tuple(widths))
        check_integer("epochs", self.epochs, 1)
        check_integer("batch_size", self.batch_size, 1)
        check_integer("chips", self.chips, 2)
        check_integer("draws", self.draws, 1)
        check_number("lr", self.lr, 0.0, open_low=True)
        check_number("noise_training", self.noise_training, 0.0)
        check_number("validation_fraction", self.validation_fraction, 0.0, 0.5, open_low=True)
        check_number("test_fraction", self.test_fraction, 0.0, 0.5, open_low=True)
        if not isinstance(self.midpoint, bool):
            raise ConfigError(f"midpoint must be true or false, got {self.midpoint!r}")

    @property
    def metric(self) -> str:
        """``accuracy`` (digits) or ``rmse`` (the regression data sets)."""
        return "accuracy" if self.dataset == "digits" else "rmse"


@dataclass(frozen=True)
class Condition:
    """``column op value`` (``yield >= 0.95``) on the co-design table."""

    column: str
    op: str
    value: float

    def holds(self, row: dict[str, Any]) -> bool:
        """Whether ``row`` meets the condition (a missing or NaN value does not)."""
        value = row.get(self.column)
        if not isinstance(value, int | float) or not math.isfinite(value):
            return False
        return {
            ">=": value >= self.value,
            "<=": value <= self.value,
            ">": value > self.value,
            "<": value < self.value,
        }[self.op]

    def text(self) -> str:
        """The condition as written (``yield >= 0.95``)."""
        return f"{self.column} {self.op} {self.value:g}"


@dataclass(frozen=True)
class Selection:
    """The best design under constraints: every ``require`` condition met, then the lowest
    (``minimize``) or highest (``maximize``) value of one column."""

    name: str
    require: tuple[Condition, ...]
    column: str
    lowest: bool

    @property
    def goal(self) -> str:
        """``lowest energy_J`` or ``highest accuracy_p5``."""
        return f"{'lowest' if self.lowest else 'highest'} {self.column}"


@dataclass(frozen=True)
class Objective:
    """A column of the table and its direction, for the Pareto front."""

    column: str
    lowest: bool

    def text(self) -> str:
        """``energy_J:min``."""
        return f"{self.column}:{'min' if self.lowest else 'max'}"


@dataclass(frozen=True)
class SearchSpace:
    """A budget-limited search: ``budget`` design points proposed by ``sampler`` over
    ``ranges`` (name → (low, high), log axis when both are positive) and ``choices`` (name →
    values); ``startup`` points drawn at random (Sobol-like) before the model-based sampler."""

    budget: int
    sampler: str = "gp"
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    choices: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    startup: int = 2


@dataclass(frozen=True)
class CodesignConfig:
    """Everything a co-design run needs (the file form: :mod:`circuitnn.codesign.config_file`).

    ``neuron`` a built-in name or a spec path; ``n`` Monte Carlo instances per design point,
    ``seed`` (the same at every point: common random numbers), ``chip_size`` neurons sharing one
    die-to-die draw, ``corner`` and ``temperature`` (°C) when not part of the design space;
    ``grid`` name → values (one point per combination) and/or ``search``; ``task``; the Pareto
    ``objectives``; ``selections``; ``yield_fraction`` (a chip yields when its metric keeps this
    fraction of the nominal network's: accuracy ≥ f·nominal, RMSE ≤ nominal/f); ``noise`` and
    ``speed`` analyses; ``store`` (None: ``OUT/families.h5``); ``run`` RunOptions fields.
    """

    neuron: str
    n: int = 300
    seed: int = 0
    chip_size: int = 1
    corner: str | None = None
    temperature: float | None = None
    grid: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    search: SearchSpace | None = None
    task: TaskSettings = field(default_factory=TaskSettings)
    objectives: tuple[Objective, ...] = ()
    selections: tuple[Selection, ...] = ()
    yield_fraction: float = 0.95
    noise: NoiseAnalysis = DEFAULT_NOISE
    speed: SpeedAnalysis = DEFAULT_SPEED
    store: str | None = None
    name: str = "codesign"
    allow_control: bool = False
    run: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_integer("n", self.n, 2)
        check_integer("seed", self.seed, 0)
        check_integer("chip_size", self.chip_size, 1)
        check_number("yield_fraction", self.yield_fraction, 0.0, 1.0, open_low=True)
        if not self.grid and self.search is None:
            raise ConfigError("give a design space: [codesign.grid] and/or [codesign.search]")
        if not self.objectives:
            metric = self.task.metric
            default = (
                Objective(f"{metric}_p5", False)
                if metric == "accuracy"
                else Objective("rmse_p95", True)
            )
            object.__setattr__(self, "objectives", (default, Objective("energy_J", True)))
        if not self.selections:
            percent = f"{100 * self.yield_fraction:g} %"
            default = Selection(
                f"{percent} of the nominal {self.task.metric} on 95 % of chips at the lowest "
                "energy",
                (Condition("yield", ">=", 0.95),),
                "energy_J",
                True,
            )
            object.__setattr__(self, "selections", (default,))


def check_integer(name: str, value: Any, least: int) -> None:
    """:class:`ConfigError` unless ``value`` (called ``name``) is an integer >= ``least``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ConfigError(f"{name} must be an integer >= {least}, got {shown(value)}")


def check_number(
    name: str, value: Any, low: float, high: float | None = None, *, open_low: bool = False
) -> None:
    """:class:`ConfigError` unless ``value`` (called ``name``) is a finite number above ``low``
    (or at it, unless ``open_low``) and at most ``high``."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if open_low else value >= low) and (high is None or value <= high)
    if not ok:
        bound = f"{'>' if open_low else '>='} {low:g}" + (f" and <= {high:g}" if high else "")
        raise ConfigError(f"{name} must be a number {bound}, got {shown(value)}")
