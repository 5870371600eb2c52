"""Writers that fill a family (or an analysis' spectra) into a scratch HDF5 file, slice by slice.

Each holds one chunk at a time plus HDF5's chunk cache: bounded memory for any family size.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from circuitnn.errors import StoreError
from circuitnn.family import STATUS_MEANING
from circuitnn.store.files import (
    REASON_BYTES,
    SCHEMA_VERSION,
    attr_value,
    checksummed,
    compressed,
    fixed_text,
    h5py_file,
    reserve_space,
)

EXTRA_UNITS = {"run_alone": "code (see the family's run_alone_meaning)", "curves_down": "@"}
"""Units of the optional per-instance datasets (``@``: the family's output unit)."""


class FamilyWriter:
    """Writes one family into a group of an HDF5 file, slice by slice, in bounded memory.

    Per-instance arrays arrive in row slices in any order (:meth:`write_rows`, one call per
    chunk); each dataset is created, chunked and compressed, at its full size (``n`` rows) on its
    first slice and stays open, so the writer holds one chunk at a time plus HDF5's chunk cache
    (at most :attr:`CACHE_BYTES` per dataset).
    :meth:`write_header` writes what is known before any chunk (grid, parameter table,
    provenance), :meth:`finish` the nominal curve; then :meth:`Store.commit_written` commits it.
    A scratch file is written in mode ``w`` and never reused after a crash.
    """

    CACHE_BYTES = 4 * 2**20  # HDF5 chunk cache per dataset, bytes
    CHUNK_BYTES = 2**20  # largest HDF5 chunk, bytes

    def __init__(
        self, path: Path, key: str, n: int, chunk_rows: int = 256, mode: str = "w"
    ) -> None:

        self.path, self.key, self.n = Path(path), key, n
        self.chunk_rows = max(1, chunk_rows)
        self.finished = False
        try:
            self._file = h5py_file(self.path, mode, self.CACHE_BYTES)
            self._file.attrs["format"] = attr_value("circuitnn-store")
            self._file.attrs["schema_version"] = SCHEMA_VERSION
            self._group = self._file.require_group("families").create_group(key)
        except (OSError, ValueError) as error:
            raise StoreError(f"cannot write family {key[:12]} to {self.path}: {error}") from None
        self._unit = ""
        self._mode = mode
        # datasets stay open between slices: closing one flushes HDF5's cache of its partly
        # written chunks, which the next slice reads back and compresses again (4000 instances
        # in slices of 100: 1.2 CPU s instead of 0.26)
        self._datasets: dict[str, Any] = {}

    def __enter__(self) -> FamilyWriter:
        return self

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        if kind is not None:
            self.discard()

    def write_header(
        self,
        attrs: dict[str, Any],
        grid: np.ndarray,
        output_unit: str,
        parameter_names: tuple[str, ...],
        parameters: np.ndarray,
        chip: np.ndarray,
    ) -> None:
        """Provenance attributes, the input grid (V), the parameter table (N×P, SI) and dies."""
        self._unit = output_unit
        for name, value in attrs.items():
            self._group.attrs[name] = attr_value(value)
        self._put("input", grid, "V")
        table = self._put("parameters", parameters, "SI (see columns)")
        table.attrs["columns"] = attr_value(json.dumps(list(parameter_names)))
        self._put("chip", chip)

    def write_rows(
        self,
        start: int,
        curves: np.ndarray,
        supply_current: np.ndarray,
        input_current: np.ndarray,
        power: np.ndarray,
        status: np.ndarray,
        reasons: list[str],
        descriptors: dict[str, np.ndarray],
        extra: dict[str, np.ndarray] | None = None,
    ) -> None:
        """Instances ``start``…: curves (output unit), currents (A), power (W), status, failure
        reasons and descriptors (each with its unit); ``extra``: ``run_alone`` (codes) and
        ``curves_down`` (output unit) when given."""
        from circuitnn.family.descriptors import descriptor_unit

        unit = self._unit
        try:
            if self._mode == "w":  # the scratch file: claim the whole family's disk space now
                self._mode = "r+"
                row = sum(a.nbytes for a in (curves, supply_current, input_current, power, status))
                row += sum(d.nbytes for d in descriptors.values())
                row = row / max(1, len(status)) + REASON_BYTES
                self._file.close()
                need = self.path.stat().st_size + int(1.1 * row * self.n)
                reserve_space(self.path, need, f"the scratch file of family {self.key[:12]}")
                self._datasets.clear()
                self._file = h5py_file(self.path, "r+", self.CACHE_BYTES)
                self._group = self._file["families"][self.key]
            for name, values, dataset_unit, compress in (
                ("curves", curves, unit, True),
                ("supply_current", supply_current, "A", supply_current.shape[1] > 0),
                ("input_current", input_current, "A", input_current.shape[1] > 0),
                ("power", power, "W", True),
            ):
                self._rows(name, start, values, dataset_unit, compress)
            for name, values in (extra or {}).items():
                self._rows(name, start, values, EXTRA_UNITS.get(name, "").replace("@", unit), True)
            if "status" not in self._group:
                self._create("status", status, None, False).attrs["meaning"] = attr_value(
                    STATUS_MEANING
                )
            self._rows("status", start, status)
            self._rows("failure_reason", start, fixed_text(reasons), compress=True)
            for name, values in descriptors.items():
                units = descriptor_unit(name).replace("output unit", unit)
                self._rows(f"descriptors/{name}", start, values, units)
        except (OSError, ValueError, TypeError, RuntimeError) as error:
            raise StoreError(
                f"cannot write instances {start}… of family {self.key[:12]} to {self.path}: {error}"
            ) from None

    def finish(
        self,
        nominal_curve: np.ndarray,
        attrs: dict[str, Any] | None = None,
        extra: dict[str, np.ndarray] | None = None,
    ) -> None:
        """Write the nominal instance's curve (and last attributes, e.g. the creation time, and
        whole-family arrays such as ``nominal_curve_down``) and close the file (ready to
        commit)."""
        try:
            self._put("nominal_curve", nominal_curve, self._unit)
            for name, values in (extra or {}).items():
                self._put(name, values, self._unit)
            for name, value in (attrs or {}).items():
                self._group.attrs[name] = attr_value(value)
            missing = [name for name in ("curves", "status") if name not in self._group]
            if missing:
                raise StoreError(f"family {self.key[:12]}: no instances written ({missing})")
            self._file.flush()
            self._file.close()
        except (OSError, RuntimeError) as error:  # h5py reports a failed flush as RuntimeError
            raise StoreError(
                f"cannot finish family {self.key[:12]} in {self.path}: {error}"
            ) from None
        self.finished = True

    def discard(self) -> None:
        """Close and delete the scratch file (after a failure, or once committed)."""
        with contextlib.suppress(Exception):
            self._file.close()
        self.path.unlink(missing_ok=True)

    def _put(self, name: str, data: np.ndarray, unit: str | None = None) -> Any:
        dataset = self._group.create_dataset(name, data=data, **checksummed(data))
        if unit is not None:
            dataset.attrs["units"] = attr_value(unit)
        return dataset

    def _rows(
        self,
        name: str,
        start: int,
        values: np.ndarray,
        unit: str | None = None,
        compress: bool = False,
    ) -> Any:
        """Write ``values`` into rows ``start``… of dataset ``name`` (created on first use)."""
        dataset = self._datasets.get(name)
        if dataset is None:
            dataset = self._group.get(name)
            if dataset is None:
                dataset = self._create(name, values, unit, compress)
            self._datasets[name] = dataset
        dataset[start : start + len(values)] = values
        return dataset

    def _create(self, name: str, values: np.ndarray, unit: str | None, compress: bool) -> Any:
        import h5py

        shape = (self.n, *values.shape[1:])
        options: dict[str, Any] = {}
        if values.dtype == object:
            options["dtype"] = h5py.string_dtype()
        else:
            options["dtype"] = values.dtype
        if compress:
            row_bytes = max(1, int(np.prod(values.shape[1:])) * values.dtype.itemsize)
            rows = max(1, min(self.n, self.chunk_rows, self.CHUNK_BYTES // row_bytes))
            options.update(chunks=(rows, *values.shape[1:]), **compressed(values.dtype.kind != "S"))
        options.update(checksummed(values))
        dataset = self._group.create_dataset(name, shape=shape, **options)
        if unit is not None:
            dataset.attrs["units"] = attr_value(unit)
        return dataset


ANALYSIS_ROWS = {"noise": ("psd", "input_psd"), "speed": ("response",)}


"""The per-instance spectra of each analysis: the arrays streamed by :class:`AnalysisWriter`."""


class AnalysisWriter:
    """Writes an analysis' per-instance spectra (:data:`ANALYSIS_ROWS`) into a scratch HDF5 file
    as chunks arrive, so an analysis of any size is made in bounded memory; each dataset is
    created on its first rows (NaN in the rows never written: instances whose DC run failed) and
    :meth:`Store.commit_analysis` copies it into the family's file chunk by chunk."""

    CACHE_BYTES = FamilyWriter.CACHE_BYTES
    CHUNK_BYTES = FamilyWriter.CHUNK_BYTES

    def __init__(self, path: Path, n: int, chunk_rows: int = 256) -> None:
        self.path, self.n, self.chunk_rows = Path(path), n, max(1, chunk_rows)
        self._written: dict[str, np.ndarray] = {}  # per dataset: which rows hold values
        self._datasets: dict[str, Any] = {}  # kept open, as in FamilyWriter
        try:
            self._file = h5py_file(self.path, "w", self.CACHE_BYTES)
        except (OSError, ValueError) as error:
            raise StoreError(f"cannot write an analysis to {self.path}: {error}") from None

    def __enter__(self) -> AnalysisWriter:
        return self

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        if kind is not None:
            self.discard()

    def write(self, name: str, rows: np.ndarray, values: np.ndarray) -> None:
        """Instances ``rows`` (increasing) of dataset ``name`` (shape N×…): ``values``."""
        if len(rows) == 0:
            return
        first, last = int(rows[0]), int(rows[-1]) + 1
        block = np.full((last - first, *values.shape[1:]), np.nan, dtype=values.dtype)
        block[rows - first] = values
        try:
            dataset = self._datasets.get(name)
            if dataset is None:
                row_bytes = max(1, int(np.prod(values.shape[1:])) * values.dtype.itemsize)
                chunk = max(1, min(self.n, self.chunk_rows, self.CHUNK_BYTES // row_bytes))
                dataset = self._file.create_dataset(
                    name,
                    shape=(self.n, *values.shape[1:]),
                    dtype=values.dtype,
                    chunks=(chunk, *values.shape[1:]),
                    fletcher32=True,  # uncompressed: lzf saved 4 % of a spectrum at 5 µs/kB
                )
                self._datasets[name] = dataset
            dataset[first:last] = block
            self._written.setdefault(name, np.zeros(self.n, dtype=bool))[first:last] = True
        except (OSError, ValueError, TypeError, RuntimeError) as error:
            raise StoreError(
                f"cannot write instances {first}…{last - 1} of {name} to {self.path}: {error}"
            ) from None

    def finish(self) -> Path:
        """Fill the rows never written with NaN and close the file; its path, for
        :meth:`Store.commit_analysis`."""
        try:
            for name, written in self._written.items():
                dataset = self._datasets[name]
                edges = np.flatnonzero(np.diff(np.concatenate([[1], written, [1]]).astype(int)))
                for first, last in zip(edges[::2], edges[1::2], strict=True):
                    for start in range(first, last, self.chunk_rows):
                        stop = min(last, start + self.chunk_rows)
                        dataset[start:stop] = np.full(
                            (stop - start, *dataset.shape[1:]), np.nan, dataset.dtype
                        )
            self._file.flush()
            self._file.close()
        except (OSError, RuntimeError) as error:
            raise StoreError(f"cannot finish the analysis in {self.path}: {error}") from None
        return self.path

    def discard(self) -> None:
        """Close and delete the scratch file (after a failure, or once committed)."""
        with contextlib.suppress(Exception):
            self._file.close()
        self.path.unlink(missing_ok=True)
