"""Budget-limited search over continuous ranges with Optuna's samplers.

The search looks for the best design under the first selection (``[[codesign.select]]``): its
column is the objective and its ``require`` conditions are Optuna constraints (a value ≤ 0 is
met), so the samplers that model constraints (GP, TPE, NSGA-II) steer towards designs that meet
them. ``gp`` (the default) is Gaussian-process Bayesian optimisation, the sampler meant for small
budgets of expensive evaluations (each point here is a Monte Carlo family plus a trained
network); ``startup`` points are drawn at random before the model takes over. The sampler is
seeded by the config's seed, so a rerun proposes the same points and finds them cached.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from circuitnn.codesign.config import CodesignConfig, SearchSpace, Selection
from circuitnn.errors import ConfigError

Row = dict[str, Any]


def constraint_values(row: Row, selection: Selection) -> list[float]:
    """One value per condition, ≤ 0 where the row meets it (Optuna's convention); a missing or
    non-finite value counts as violated by 1."""
    values = []
    for condition in selection.require:
        value = row.get(condition.column)
        if not isinstance(value, int | float) or not math.isfinite(value):
            values.append(1.0)
        elif condition.op in (">=", ">"):
            values.append(condition.value - float(value))
        else:
            values.append(float(value) - condition.value)
    return values


def make_sampler(space: SearchSpace, seed: int) -> Any:
    """The Optuna sampler named by ``space.sampler``, seeded (constraints reach it through
    ``Trial.set_constraint``)."""
    import optuna

    if space.sampler == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=space.startup)
    if space.sampler == "tpe":
        return optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=space.startup, multivariate=True
        )
    if space.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(2, space.startup))
    if space.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ConfigError(f"unknown sampler {space.sampler!r}")


def run_search(
    space: SearchSpace, config: CodesignConfig, evaluate: Callable[[dict[str, Any]], Row]
) -> list[Row]:
    """Evaluate ``space.budget`` design points proposed by the sampler; returns their rows."""
    try:
        import optuna
    except ImportError:
        raise ConfigError("the search needs optuna: pip install 'circuitnn[codesign]'") from None
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # not its per-trial lines
    selection = config.selections[0]
    sampler = make_sampler(space, config.seed)
    direction = "minimize" if selection.lowest else "maximize"
    study = optuna.create_study(direction=direction, sampler=sampler)
    rows = []
    for _ in range(space.budget):
        trial = study.ask()
        settings: dict[str, Any] = {}
        for name, (low, high) in space.ranges.items():
            settings[name] = trial.suggest_float(name, low, high, log=low > 0)
        for name, choices in space.choices.items():
            settings[name] = trial.suggest_categorical(name, list(choices))
        row = evaluate(settings)
        rows.append(row)
        value = row.get(selection.column)
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise ConfigError(
                f"search: the design point has no finite {selection.column!r} to optimise"
            )
        for condition, excess in zip(
            selection.require, constraint_values(row, selection), strict=True
        ):
            trial.set_constraint(condition.text(), excess)
        study.tell(trial, float(value))
    return rows
