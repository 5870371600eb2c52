"""Add noise and speed analyses to a family: chunked, parallel, journaled, stored beside it.

The family's DC results are reused, never recomputed: asking for noise on a stored family runs
only the noise analysis and adds it to the family's group in the store.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from circuitnn.family import FAILED, OK, Family, NoiseData
from circuitnn.neuron.variation import ParameterTable
from circuitnn.store import Store
from circuitnn.store.journal import Journal
from circuitnn.store.writers import AnalysisWriter


class _MemoryRows:
    """Per-instance arrays held in memory (no store): what :class:`AnalysisWriter` writes."""

    def __init__(self, n: int) -> None:
        self.n, self._arrays = n, {}

    def __enter__(self) -> _MemoryRows:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def write(self, name: str, rows: np.ndarray, values: np.ndarray) -> None:
        if name not in self._arrays:
            self._arrays[name] = np.full((self.n, *values.shape[1:]), np.nan, values.dtype)
        self._arrays[name][rows] = values

    def arrays(
        self, shape: tuple[int, ...], names: tuple[str, ...], dtype: Any = np.float64
    ) -> dict[str, np.ndarray]:
        """The arrays written (NaN-filled ``(n, *shape)`` for one never written)."""
        return {
            name: self._arrays.get(name, np.full((self.n, *shape), np.nan, dtype)) for name in names
        }


class _StoreRows(AnalysisWriter):
    """An :class:`AnalysisWriter` (scratch file beside the store) whose arrays are left out of
    the analysis until the commit copies them in."""

    def arrays(
        self, shape: tuple[int, ...], names: tuple[str, ...], dtype: Any = np.float64
    ) -> dict[str, np.ndarray]:
        """Placeholders with 0 rows: the arrays are in the scratch file."""
        return {name: np.empty((0, *shape), dtype) for name in names}


def rows_sink(
    store: Store | None, journal: Journal | None, n: int, chunk_rows: int
) -> _MemoryRows | _StoreRows:
    if store is None or journal is None:
        return _MemoryRows(n)
    return _StoreRows(journal.scratch_path("analysis"), n, chunk_rows)


def cached_analysis(store: Store | None, family_key: str, key: str, kind: str, arrays: bool) -> Any:
    if store is None or not store.path.exists() or family_key not in store:
        return None
    if key not in store.analyses(family_key):
        return None
    return store.load_analysis(family_key, kind, key, arrays)


def commit_analysis(
    store: Store | None,
    family_key: str,
    data: Any,
    journal: Journal | None,
    sink: _MemoryRows | _StoreRows,
    arrays: bool,
) -> Any:
    """Store the analysis (its streamed arrays from ``sink``) and clear its journal; the analysis
    as :func:`cached_analysis` would return it."""
    if store is None:
        return data
    store.commit_analysis(family_key, data, sink if isinstance(sink, _StoreRows) else None)
    if journal is not None:
        journal.clear()
    kind = "noise" if isinstance(data, NoiseData) else "speed"
    return store.load_analysis(family_key, kind, data.key, arrays)


def family_table(family: Family) -> ParameterTable:
    return ParameterTable(
        family.parameter_names, family.parameters, np.arange(family.n), family.chip
    )


def branch_direction(family: Family) -> str:
    """The sweep direction of the family's main branch (``curves``)."""
    return "down" if family.attrs.get("direction") == "down" else "up"


def stored_curves(family: Family, store: Store | None, rows: np.ndarray) -> np.ndarray | None:
    """The stored DC curves (main branch) of instances ``rows``: from the family in memory, or
    from the store when it was loaded without its arrays."""
    if len(family.curves) == family.n:
        return np.asarray(family.curves[rows])
    if store is not None and len(rows):
        return store.read_rows(family.key, "curves", rows)
    return None


def stored_curve_blocks(
    family: Family, store: Store | None, blocks: list[np.ndarray]
) -> Iterator[np.ndarray | None]:
    """:func:`stored_curves` of each of ``blocks`` in turn (from one opening of the store's
    file)."""
    if len(family.curves) == family.n or store is None:
        for rows in blocks:
            yield stored_curves(family, store, rows)
        return
    yield from store.read_row_blocks(family.key, "curves", blocks)


def ok_chunks(family: Family, size: int) -> list[np.ndarray]:
    good = np.flatnonzero(family.ok)
    return [good[i : i + size] for i in range(0, len(good), size)]


def dc_failures(family: Family) -> tuple[np.ndarray, list[str]]:
    status = np.where(family.ok, OK, FAILED).astype(np.int8)
    reasons = [
        f"DC simulation failed: {r}" if not ok else ""
        for r, ok in zip(family.reasons, family.ok, strict=True)
    ]
    return status, reasons


def fail_instance(status: np.ndarray, reasons: list[str], row: int, reason: str) -> None:
    """Mark instance ``row`` of an analysis failed with ``reason`` (its first reason stays)."""
    status[row] = FAILED
    reasons[row] = reasons[row] or reason


def merge_failures(
    status: np.ndarray, reasons: list[str], rows: np.ndarray, result: dict[str, np.ndarray]
) -> None:
    failed = result["status"] != OK
    status[rows[failed]] = FAILED
    for row, reason in zip(rows[failed], result["reasons"][failed], strict=True):
        reasons[row] = reasons[row] or str(reason)
