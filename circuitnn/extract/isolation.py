"""Failure isolation: run a chunk of instances, bisecting failed runs down to the guilty ones."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from circuitnn.errors import (
    InstanceRejected,
    NetlistError,
    SimulationError,
    SimulationTimeout,
    SimulatorCrash,
)
from circuitnn.family import FAILED, OK, RETRY


@dataclass
class Isolated:
    """Arrays (instance-major, NaN where failed), status, reasons and cost of an isolated run;
    ``alone`` marks the rows whose result came from a run of that row alone."""

    arrays: dict[str, np.ndarray]
    status: np.ndarray
    reasons: list[str]
    runs: int
    seconds: float
    alone: np.ndarray


def run_isolated(
    name: str,
    index: np.ndarray,
    shapes: dict[str, tuple[int, ...]],
    run: Callable[[np.ndarray, str], dict[str, np.ndarray]],
    retries: int = 1,
    dtype: type = np.float64,
    own: bool = False,
) -> Isolated:
    """Call ``run(rows, what)`` on all rows, bisecting failures down to single instances.

    ``run`` returns arrays whose first axis follows ``rows``, and optionally ``"failure"``: per
    row a reason to fail it ("" to keep it); ``shapes`` gives each array's per-instance shape
    (used where every instance failed). A run that does not converge or crashes ngspice is split
    in halves; one whose instances ngspice refuses (:class:`InstanceRejected`) fails those and
    runs the others again; a timed-out run is retried ``retries`` times and then its rows are
    marked failed; :class:`NetlistError` propagates. Rows with non-finite values are failed too.
    Timeouts and crashes leave status :data:`RETRY` (simulated again on the next run).
    ``own``: ``run`` returns arrays of its own, kept as they are (not copied) from a run of every
    row.
    """
    count = len(index)
    arrays: dict[str, np.ndarray] = {}

    def array(key: str) -> np.ndarray:  # made (NaN) when first needed
        if key not in arrays:
            arrays[key] = np.full((count, *shapes[key]), np.nan, dtype=dtype)
        return arrays[key]

    def adopt(key: str, values: np.ndarray) -> bool:
        if not (own and len(values) == count and key not in arrays and values.dtype == dtype):
            return False
        if not (values.flags.c_contiguous and values.flags.writeable):
            return False
        arrays[key] = values
        return True

    status = np.zeros(count, dtype=np.int8)
    reasons = [""] * count
    alone = np.zeros(count, dtype=bool)
    runs = 0
    began = time.perf_counter()

    def fail(rows: np.ndarray, reason: str, code: int = FAILED) -> None:
        status[rows] = code
        for key in shapes:
            array(key)[rows] = np.nan
        for row in rows:
            reasons[row] = reason

    pending = [np.arange(count)]
    while pending:
        rows = pending.pop()
        what = (
            f"{name} nominal instance"
            if len(rows) == 1 and index[rows[0]] < 0
            else f"{name} instances {_describe(index[rows])}"
        )
        for attempt in range(retries + 1):
            try:
                runs += 1
                produced = run(rows, what)
            except NetlistError:
                raise
            except SimulationTimeout as error:
                if attempt < retries:
                    continue
                fail(rows, _first_line(error), RETRY)
            except InstanceRejected as error:
                named = np.array(sorted(p for p in error.positions if p < len(rows)), dtype=int)
                if len(named) == 0 and len(rows) > 1:
                    half = len(rows) // 2
                    pending += [rows[half:], rows[:half]]
                    break
                named = named if len(named) else np.arange(len(rows))
                for row in rows[named]:
                    fail(np.array([row]), f"{name} instances {int(index[row])}: {error.detail}")
                rest = np.delete(rows, named)
                if len(rest):
                    pending.append(rest)
            except SimulationError as error:
                if len(rows) == 1:
                    fail(
                        rows,
                        _first_line(error),
                        RETRY if isinstance(error, SimulatorCrash) else FAILED,
                    )
                else:
                    half = len(rows) // 2
                    pending += [rows[half:], rows[:half]]
            else:
                failure = produced.pop("failure", None)
                finite = np.ones(len(rows), dtype=bool)
                for key, values in produced.items():
                    if adopt(key, values):
                        pass
                    elif values.shape[1:] != array(key).shape[1:]:
                        arrays[key] = _resized(arrays[key], values.shape[1:])
                        arrays[key][rows] = values
                    else:
                        arrays[key][rows] = values
                    finite &= np.isfinite(values.reshape(len(rows), -1)).all(axis=1)
                status[rows] = np.where(finite, OK, FAILED)
                alone[rows] = len(rows) == 1
                for row in rows[~finite]:
                    reasons[row] = "non-finite output"
                if failure is not None:
                    for row, reason in zip(rows, failure, strict=True):
                        if reason:
                            fail(np.array([row]), str(reason))
            break
    arrays = {key: array(key) for key in shapes}
    return Isolated(arrays, status, reasons, runs, time.perf_counter() - began, alone)


def _resized(values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return np.full((len(values), *shape), np.nan, dtype=values.dtype)


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _describe(index: np.ndarray) -> str:
    if len(index) == 1:
        return str(int(index[0]))
    return f"{int(index[0])}-{int(index[-1])}"
