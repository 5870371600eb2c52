"""The Pareto front of the design points and the best design under each selection's constraints.

Both work on the table's rows (name → value) by point estimates; the intervals are in the table
beside them for a reader to judge how close two designs are.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from circuitnn.codesign.config import Objective, Selection
from circuitnn.errors import ConfigError

Row = dict[str, Any]


def pareto_mask(rows: list[Row], objectives: tuple[Objective, ...]) -> np.ndarray:
    """Which rows are on the Pareto front: no other row is at least as good in every objective
    and better in one. A row with a missing or non-finite objective is never on the front."""
    if not rows:
        return np.zeros(0, dtype=bool)
    for objective in objectives:
        if objective.column not in rows[0]:
            raise ConfigError(f"objective {objective.column!r} is not a column of the table")
    # every objective as "lower is better"
    costs = np.array(
        [[_cost(row, objective) for objective in objectives] for row in rows], dtype=np.float64
    )
    valid = np.all(np.isfinite(costs), axis=1)
    on_front = valid.copy()
    for index in np.flatnonzero(valid):
        others = costs[valid]
        dominated = np.any(
            np.all(others <= costs[index], axis=1) & np.any(others < costs[index], axis=1)
        )
        on_front[index] = not dominated
    return on_front


def _cost(row: Row, objective: Objective) -> float:
    value = row.get(objective.column)
    if not isinstance(value, int | float) or not math.isfinite(value):
        return math.nan
    return float(value) if objective.lowest else -float(value)


def select(rows: list[Row], selection: Selection) -> int | None:
    """Index of the best row meeting every condition of ``selection`` (ties: the first), or
    None when no row meets them."""
    for name in (selection.column, *(c.column for c in selection.require)):
        if rows and name not in rows[0]:
            raise ConfigError(
                f"selection {selection.name!r}: {name!r} is not a column of the table"
            )
    best, best_value = None, math.inf
    for index, row in enumerate(rows):
        if not all(condition.holds(row) for condition in selection.require):
            continue
        value = row.get(selection.column)
        if not isinstance(value, int | float) or not math.isfinite(value):
            continue
        key = value if selection.lowest else -value
        if key < best_value:
            best, best_value = index, key
    return best
