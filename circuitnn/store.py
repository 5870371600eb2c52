"""The HDF5 store of families: an index file, and one HDF5 file per family beside it.

Layout: the store ``PATH`` (say ``families.h5``) is a small index file whose group ``families``
holds one HDF5 external link per family, named by the family's content hash, to the family's own
file ``PATH.d/KEY.h5``; plain h5py follows the links (``h5py.File(PATH)["families"][KEY]``).

Crash safety: finished chunks of a running extraction go to a journal folder beside the store
(``STORE.partial/KEY/``, one ``.npz`` per chunk, each written to a temporary name and renamed), so
a killed run loses at most the chunks in flight and a rerun resumes. The family is written slice by
slice, as chunks arrive, into a scratch HDF5 file in that folder (:class:`FamilyWriter`; a scratch
file is never trusted after a crash: a rerun writes a new one from the journal). A complete family
is committed under an exclusive lock file by renaming its scratch file into ``PATH.d/`` and then
rewriting the index atomically (copy, add the link, rename over); an analysis added later goes into
a copy of the family's file that is renamed over it. So readers and a killed writer only ever see
old or new files — never a half-written one — and a commit costs the size of one family (or of the
index), not of the store. This is the only module that imports h5py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import errno
import fcntl
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from circuitnn.errors import CircuitnnError, StoreError
from circuitnn.family import Family, NoiseData, SpeedData

SCHEMA_VERSION = 1
# HDF5 1.10 file format or later: its superblock, object headers and chunk indexes carry
# checksums, and every numeric dataset a Fletcher-32 checksum per HDF5 chunk, so a damaged file
# is refused with a StoreError when read instead of returning wrong numbers (readable by HDF5 >=
# 1.10). Variable-length strings (text attributes, failure reasons) live in HDF5's global heap,
# which has no checksum.
LIBVER = ("v110", "latest")


class Store:
    """An HDF5 store of families at ``path`` (created on first commit).

    ``path`` is the store's index file; each family lives in its own HDF5 file in the folder
    ``PATH.d/`` beside it (``KEY.h5``), and the index holds an HDF5 external link to it at
    ``/families/KEY``, so plain h5py reads ``h5py.File(PATH)["families"][KEY]`` across the link.
    Committing a family renames its finished file into the folder and rewrites only the small
    index: the cost of a commit does not grow with the store. (Stores written before this layout,
    with the families inside the one file, are read and extended as they are.)
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    @property
    def folder(self) -> Path:
        """The folder of the store's family files (``PATH.d``)."""
        return self.path.with_name(self.path.name + ".d")

    def family_path(self, key: str) -> Path:
        """The file of family ``key`` (whether or not it exists yet)."""
        return self.folder / f"{key}.h5"

    @contextlib.contextmanager
    def _open(self) -> Iterator[Any]:
        """The index file, read-only; any failure inside is a :class:`StoreError` naming it."""
        if not self.path.exists():
            raise StoreError(f"store {self.path} does not exist")
        with _open_store_file(self.path, f"store {self.path}") as handle:
            yield handle

    @contextlib.contextmanager
    def _family(self, key: str) -> Iterator[Any]:
        """The HDF5 group of family ``key``, read-only (from its own file, or from the index file
        for a store of the older one-file layout)."""
        path = self._file_of(key)
        if path == self.path:
            with self._open() as handle:
                yield _families(handle)[key]
            return
        if not path.exists():
            raise StoreError(
                f"store {self.path}: the file of family {key[:12]}, {path}, is missing "
                "(a store is its index file and its folder; move and copy them together)"
            )
        with _open_store_file(path, f"store {self.path}: family file {path}") as handle:
            yield handle["families"][key]

    def copy(self, target: str | Path) -> Store:
        """Copy the store — its index file and its folder of family files — to the index path
        ``target`` (which must not exist yet), under the store's lock; the copy."""
        copy = Store(target)
        if copy.path.exists() or copy.folder.exists():
            raise StoreError(f"cannot copy {self.path} to {copy.path}: it exists already")
        with self.lock():
            try:
                shutil.copyfile(self.path, copy.path)
                if self.folder.exists():
                    shutil.copytree(self.folder, copy.folder)
            except OSError as error:
                raise StoreError(f"cannot copy {self.path} to {copy.path}: {error}") from None
        return copy

    def keys(self) -> list[str]:
        """Keys of the families in the store (empty if the file does not exist yet)."""
        if not self.path.exists():
            return []
        with self._open() as handle:
            return sorted(_families(handle).keys())

    def __contains__(self, key: str) -> bool:
        return key in self.keys()

    def describe(self) -> list[dict[str, Any]]:
        """One row per family: key, neuron, n, failed count, seed, temperature, corner, created."""
        rows = []
        for key in self.keys():
            with self._family(key) as group:
                rows.append(
                    {
                        "key": key,
                        "neuron": _text(group.attrs["neuron"]),
                        "n": int(group.attrs["n"]),
                        "failed": int(np.count_nonzero(group["status"][()] != 1)),
                        "seed": int(group.attrs["seed"]),
                        "temperature": float(group.attrs["temperature"]),
                        "corner": _text(group.attrs["corner"]),
                        "parameters": json.loads(group.attrs["nominal_parameters"]),
                        "created": _text(group.attrs["created"]),
                    }
                )
        return sorted(rows, key=lambda row: row["created"])

    def resolve(self, selector: str | None = None) -> str:
        """The key of the family named by a key, a unique key prefix or a neuron name (newest)."""
        keys = self.keys()
        if not keys:
            raise StoreError(f"store {self.path} holds no families")
        by_key = [key for key in keys if selector is not None and key.startswith(selector)]
        if selector in keys or len(by_key) == 1:  # (reads no other family's file)
            return selector if selector in keys else by_key[0]
        rows = self.describe()
        if selector is None:
            return rows[-1]["key"]
        by_neuron = [row["key"] for row in rows if row["neuron"] == selector]
        if by_neuron:
            return by_neuron[-1]
        if len(by_key) > 1:
            raise StoreError(f"{selector!r} matches several families in {self.path}: {by_key}")
        raise StoreError(f"no family {selector!r} in {self.path}")

    def load(
        self,
        selector: str | None = None,
        noise: str | None = None,
        speed: str | None = None,
        arrays: bool = True,
    ) -> Family:
        """Read a family (by key, key prefix or neuron name; default the newest) into memory.

        ``noise``/``speed`` name the analysis to attach (its key); by default the newest one
        stored with the family, if any. ``arrays=False`` skips the N×K arrays (``curves``,
        ``supply_current``, ``input_current``, ``power`` then have 0 rows, and no analysis is
        attached): the bookkeeping of a large family (status, parameters, descriptors, nominal
        curve) in little memory.
        """
        key = self.resolve(selector)
        with self._family(key) as group:
            attrs = {name: _plain(value) for name, value in group.attrs.items()}
            descriptors = {name: group["descriptors"][name][()] for name in group["descriptors"]}

            def big(name: str) -> np.ndarray:
                dataset = group[name]
                if arrays:
                    return dataset[()]
                return np.empty((0, *dataset.shape[1:]), dtype=dataset.dtype)

            return Family(
                key=key,
                neuron=str(attrs["neuron"]),
                grid=group["input"][()],
                curves=big("curves"),
                nominal_curve=group["nominal_curve"][()],
                supply_current=big("supply_current"),
                supplies=tuple(json.loads(attrs["supplies"])),
                input_current=big("input_current"),
                power=big("power"),
                parameter_names=tuple(json.loads(group["parameters"].attrs["columns"])),
                parameters=group["parameters"][()],
                chip=group["chip"][()],
                status=group["status"][()],
                reasons=[_text(r) for r in group["failure_reason"][()]],
                descriptors=descriptors,
                output_unit=str(attrs["output_unit"]),
                attrs=attrs,
                noise=_read_analysis(group, "noise", noise, NoiseData) if arrays else None,
                speed=_read_analysis(group, "speed", speed, SpeedData) if arrays else None,
            )

    def analyses(self, key: str) -> list[str]:
        """Keys of the analyses (``noise-…``, ``speed-…``) stored with family ``key``."""
        with self._family(key) as group:
            return sorted(name for name in group if name.startswith(("noise-", "speed-")))

    def commit(self, family: Family, lock_timeout: float = 600.0) -> None:
        """Add ``family`` (held in memory) atomically, under the lock file: its file is written
        as a new file (temporary, then renamed) in the store's folder and the index gains a link
        to it."""
        with self.lock(lock_timeout):
            if family.key in self:
                return
            self.folder.mkdir(exist_ok=True)
            target = self.family_path(family.key)
            target.unlink(missing_ok=True)  # left unlinked by a killed commit
            _rewrite(
                target,
                lambda path: _write_family(path, family),
                grows=_nbytes(vars(family)) + family.n * REASON_BYTES,
                what=f"family {family.key[:12]} to {self.path}",
            )
            self._add_to_index(family.key)

    def commit_written(self, writer: FamilyWriter, lock_timeout: float = 600.0) -> None:
        """Add the family that ``writer`` finished writing (slice by slice, in its scratch file)
        atomically, under the lock file: the scratch file is renamed to the family's file in the
        store's folder (no copy) and the index gains a link to it."""
        if not writer.finished:
            raise StoreError(f"family {writer.key[:12]} is not completely written; not committed")
        with self.lock(lock_timeout):
            if writer.key not in self:
                self.folder.mkdir(exist_ok=True)
                self._move_in(writer.key, writer.path)
                self._add_to_index(writer.key)
        writer.discard()

    def commit_analysis(
        self,
        key: str,
        data: NoiseData | SpeedData,
        written: AnalysisWriter | None = None,
        lock_timeout: float = 600.0,
    ) -> None:
        """Add a noise or speed analysis to the stored family ``key``, atomically: a copy of
        the family's file (only that family's) gains the analysis and is renamed over it.
        ``written``: an :class:`AnalysisWriter` whose per-instance arrays (streamed to its scratch
        file) stand for the same-named fields of ``data``, copied chunk by chunk."""
        if not self.path.exists() or key not in self.keys():
            raise StoreError(f"cannot add {data.key} to {self.path}: no family {key} there")
        scratch = written.finish() if written is not None else None
        with self.lock(lock_timeout):
            if data.key not in self.analyses(key):
                _rewrite(
                    self._file_of(key),
                    lambda path: _write_analysis(path, key, data, scratch),
                    grows=_nbytes(vars(data))
                    + len(data.reasons) * REASON_BYTES
                    + (_size(scratch) if scratch else 0),
                    what=f"analysis {data.key[:18]} of family {key[:12]} in {self.path}",
                )
        if written is not None:
            written.discard()

    def load_analysis(self, key: str, kind: str, name: str, arrays: bool = True) -> Any:
        """Analysis ``name`` (a ``noise-…`` or ``speed-…`` key) of family ``key``, or None.
        ``arrays=False`` leaves out its per-instance spectra (:data:`ANALYSIS_ROWS`: 0 rows)."""
        cls = NoiseData if kind == "noise" else SpeedData
        with self._family(key) as group:
            return _read_analysis(group, kind, name, cls, arrays)

    def _file_of(self, key: str) -> Path:
        """The file holding family ``key``'s group: its own, or the index (older layout)."""
        import h5py

        with self._open() as handle:
            families = _families(handle)
            if key not in families:
                raise StoreError(f"no family {key} in {self.path}")
            link = families.get(key, getlink=True)
        if isinstance(link, h5py.ExternalLink):  # (read in the folder of this store's index)
            return self.folder / Path(link.filename).name
        return self.path

    def _move_in(self, key: str, finished: Path) -> None:
        """Rename the finished family file ``finished`` (fsynced) to family ``key``'s file."""
        with open(finished, "rb") as handle:
            os.fsync(handle.fileno())
        try:
            os.replace(finished, self.family_path(key))
            _fsync_folder(self.folder)
        except OSError as error:
            raise StoreError(
                f"could not move family {key[:12]} into {self.folder}: {error}"
            ) from None

    def _add_to_index(self, key: str) -> None:
        """Link family ``key``'s file into the index (rewritten atomically); if the index cannot
        be rewritten, the family's file is removed again and the store is as it was."""
        try:
            _rewrite(
                self.path,
                lambda path: _add_link(path, key, self.folder.name),
                grows=0,
                what=f"the index of {self.path}",
            )
        except BaseException:
            self.family_path(key).unlink(missing_ok=True)
            raise

    @contextlib.contextmanager
    def lock(self, timeout: float = 600.0) -> Iterator[None]:
        """Hold the store's exclusive lock file; :class:`StoreError` after ``timeout`` seconds."""
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(lock_path, "a")  # noqa: SIM115 (closed by the with below)
        except OSError as error:
            raise StoreError(f"cannot create the lock file {lock_path}: {error}") from None
        with handle:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise StoreError(
                            f"store {self.path} is locked by another process (waited {timeout:g} s)"
                        ) from None
                    time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def family_writer(
        self, journal: Journal, key: str, n: int, chunk_rows: int = 256
    ) -> FamilyWriter:
        """A :class:`FamilyWriter` for family ``key`` (``n`` instances) into a new scratch file
        of ``journal``'s folder; HDF5 chunks of at most ``chunk_rows`` instances."""
        return FamilyWriter(journal.scratch_path("family"), key, n, chunk_rows)

    def journal(self, key: str, chunk_size: int) -> Journal:
        """The journal of unfinished family ``key`` extracted in chunks of ``chunk_size``."""
        return Journal(self.path.with_name(self.path.name + ".partial") / f"{key}-c{chunk_size}")


class Journal:
    """Finished chunks of an extraction in progress, one atomically written ``.npz`` each."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def save_arrays(self, name: str, arrays: dict[str, np.ndarray]) -> None:
        """Record named arrays as ``name.npz`` (atomic: a killed write leaves no partial file).

        :class:`StoreError` naming the file when it cannot be written (disk full, no permission);
        the temporary file is removed and the journal's other chunks are kept.
        """
        final = self.folder / f"{name}.npz"
        # one temporary per process: two runs of the same family may journal the same chunk
        temporary = self.folder / f"{name}.{os.getpid()}.tmp"
        for attempt in range(2):
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                with open(temporary, "wb") as handle:
                    np.savez(handle, **arrays)
                # no fsync: a killed process loses nothing in the page cache, and a chunk left
                # unreadable by a power cut is discarded by load_arrays and recomputed
                os.replace(temporary, final)
                return
            except FileNotFoundError:
                if attempt:  # the folder vanished twice: not another run's clear() racing us
                    raise StoreError(f"cannot journal {final}: its folder vanished") from None
            except OSError as error:
                temporary.unlink(missing_ok=True)
                raise StoreError(
                    f"cannot journal {name} to {final}: {error} (the chunks journaled before "
                    "are kept; free space and rerun to resume)"
                ) from None

    def load_arrays(self, name: str) -> dict[str, np.ndarray] | None:
        """Arrays saved as ``name``, or None if absent or unreadable (then recomputed).

        Never unpickles: an entry holding Python objects is refused like a damaged one.
        """
        path = self.folder / f"{name}.npz"
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return {key: data[key] for key in data.files}
        except Exception:  # truncated, bad CRC (zipfile.BadZipFile), bad header, pickled objects
            path.unlink(missing_ok=True)
            return None

    def scratch_path(self, kind: str) -> Path:
        """A scratch HDF5 file of this process in the journal's folder (``KIND-PID.h5``)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        return self.folder / f"{kind}-{os.getpid()}.h5"

    def tidy(self) -> None:
        """Remove the journal's folder if nothing is in it (after a run that failed early)."""
        with contextlib.suppress(OSError):
            self.folder.rmdir()
            self.folder.parent.rmdir()

    def clear(self) -> None:
        """Delete the journal (after its family was committed) — all but the scratch file of
        another live process extracting the same family (it finds the family committed and
        deletes its own); a dead process' scratch file goes."""
        for path in self.folder.glob("*"):
            owner = path.stem.rpartition("-")[2]
            if path.suffix == ".h5" and owner.isdigit() and _alive(int(owner)):
                continue
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    path.unlink()
        with contextlib.suppress(OSError):
            self.folder.rmdir()
        with contextlib.suppress(OSError):
            self.folder.parent.rmdir()


class FamilyWriter:
    """Writes one family into a group of an HDF5 file, slice by slice, in bounded memory.

    Per-instance arrays arrive in row slices in any order (:meth:`write_rows`, one call per
    chunk); each dataset is created, chunked and compressed, at its full size (``n`` rows) on its
    first slice, so the writer holds one chunk at a time plus HDF5's chunk cache (a few MiB).
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
            self._file = _h5py_file(self.path, mode, self.CACHE_BYTES)
            self._file.attrs["format"] = _attr("circuitnn-store")
            self._file.attrs["schema_version"] = SCHEMA_VERSION
            self._group = self._file.require_group("families").create_group(key)
        except (OSError, ValueError) as error:
            raise StoreError(f"cannot write family {key[:12]} to {self.path}: {error}") from None
        self._unit = ""
        self._mode = mode

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
            self._group.attrs[name] = _attr(value)
        self._put("input", grid, "V")
        table = self._put("parameters", parameters, "SI (see columns)")
        table.attrs["columns"] = _attr(json.dumps(list(parameter_names)))
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
    ) -> None:
        """Instances ``start``…: curves (output unit), currents (A), power (W), status, failure
        reasons and descriptors (each with its unit)."""
        from circuitnn.extract import DESCRIPTOR_UNITS

        unit = self._unit
        try:
            if self._mode == "w":  # the scratch file: claim the whole family's disk space now
                self._mode = "r+"
                row = sum(a.nbytes for a in (curves, supply_current, input_current, power, status))
                row += sum(d.nbytes for d in descriptors.values())
                row = row / max(1, len(status)) + REASON_BYTES
                self._file.close()
                need = self.path.stat().st_size + int(1.1 * row * self.n)
                _reserve(self.path, need, f"the scratch file of family {self.key[:12]}")
                self._file = _h5py_file(self.path, "r+", self.CACHE_BYTES)
                self._group = self._file["families"][self.key]
            for name, values, dataset_unit, compress in (
                ("curves", curves, unit, True),
                ("supply_current", supply_current, "A", supply_current.shape[1] > 0),
                ("input_current", input_current, "A", input_current.shape[1] > 0),
                ("power", power, "W", True),
            ):
                self._rows(name, start, values, dataset_unit, compress)
            if "status" not in self._group:
                self._create("status", status, None, False).attrs["meaning"] = _attr(
                    "1 = ok, 2 = failed (see failure_reason)"
                )
            self._rows("status", start, status)
            self._rows("failure_reason", start, _fixed_text(reasons), compress=True)
            for name, values in descriptors.items():
                units = DESCRIPTOR_UNITS.get(name, "").replace("output unit", unit)
                self._rows(f"descriptors/{name}", start, values, units)
        except (OSError, ValueError, TypeError, RuntimeError) as error:
            raise StoreError(
                f"cannot write instances {start}… of family {self.key[:12]} to {self.path}: {error}"
            ) from None

    def finish(self, nominal_curve: np.ndarray, attrs: dict[str, Any] | None = None) -> None:
        """Write the nominal instance's curve (and last attributes, e.g. the creation time) and
        close the file (ready to commit)."""
        try:
            self._put("nominal_curve", nominal_curve, self._unit)
            for name, value in (attrs or {}).items():
                self._group.attrs[name] = _attr(value)
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
        dataset = self._group.create_dataset(name, data=data, **_checksummed(data))
        if unit is not None:
            dataset.attrs["units"] = _attr(unit)
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
        dataset = self._group.get(name)
        if dataset is None:
            dataset = self._create(name, values, unit, compress)
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
            options.update(chunks=(rows, *values.shape[1:]), compression="lzf", shuffle=True)
        options.update(_checksummed(values))
        dataset = self._group.create_dataset(name, shape=shape, **options)
        if unit is not None:
            dataset.attrs["units"] = _attr(unit)
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
        try:
            self._file = _h5py_file(self.path, "w", self.CACHE_BYTES)
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
            dataset = self._file.get(name)
            if dataset is None:
                row_bytes = max(1, int(np.prod(values.shape[1:])) * values.dtype.itemsize)
                chunk = max(1, min(self.n, self.chunk_rows, self.CHUNK_BYTES // row_bytes))
                dataset = self._file.create_dataset(
                    name,
                    shape=(self.n, *values.shape[1:]),
                    dtype=values.dtype,
                    chunks=(chunk, *values.shape[1:]),
                    compression="lzf",
                    shuffle=True,
                    fletcher32=True,
                )
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
                dataset = self._file[name]
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


def _write_family(path: Path, family: Family) -> None:
    """Write an in-memory family into the (temporary copy of the) store at ``path``."""
    with FamilyWriter(path, family.key, family.n, mode="a") as writer:
        writer.write_header(
            family.attrs,
            family.grid,
            family.output_unit,
            family.parameter_names,
            family.parameters,
            family.chip,
        )
        writer.write_rows(
            0,
            family.curves,
            family.supply_current,
            family.input_current,
            family.power,
            family.status,
            family.reasons,
            family.descriptors,
        )
        writer.finish(family.nominal_curve)


@contextlib.contextmanager
def _open_store_file(path: Path, what: str) -> Iterator[Any]:
    """Open a store's HDF5 file read-only; whatever fails inside (HDF5 errors, checksum and
    filter failures, wrong types, bad JSON) becomes one :class:`StoreError` naming ``what``."""
    import h5py

    try:
        handle = h5py.File(path, "r")
    except Exception as error:  # OSError mostly; whatever a damaged file makes HDF5 say
        raise StoreError(
            f"{what} cannot be read as HDF5 (corrupt or truncated?): {error}"
        ) from None
    try:
        if _text(handle.attrs.get("format", "")) != "circuitnn-store":
            raise StoreError(f"{what} is an HDF5 file but not a circuitnn store")
        yield handle
    except CircuitnnError:
        raise
    except Exception as error:
        raise StoreError(f"{what} is damaged: {type(error).__name__}: {error}") from None
    finally:
        with contextlib.suppress(Exception):
            handle.close()


def _rewrite(target: Path, write: Callable[[Path], None], grows: int, what: str) -> None:
    """Change an HDF5 file atomically (call under the store's lock): copy it (or start an empty
    store file), reserve the disk space for the copy and ``grows`` more bytes, ``write`` into the
    copy, fsync it and rename it over ``target``. Readers and a killed writer only ever see the
    old or the new file; on any failure the old one stays and the copy is removed."""
    for stale in target.parent.glob(f".{target.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        if target.exists():
            _clone_or_copy(target, temporary)
        else:
            _empty_store(temporary)
        _reserve(temporary, temporary.stat().st_size + grows, f"the new copy of {target}")
        write(temporary)
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        _fsync_folder(target.parent)
    except CircuitnnError:
        raise
    except Exception as error:  # OSError; h5py may say RuntimeError (disk full on close)
        raise StoreError(
            f"could not write {what}: {error} (the store was left as it was)"
        ) from None
    finally:
        temporary.unlink(missing_ok=True)


def _add_link(path: Path, key: str, folder: str) -> None:
    """Link family ``key`` (group ``/families/KEY`` of ``folder/KEY.h5``, ``folder`` relative to
    the index's folder) into the index file at ``path``, and point the links of the other
    families to ``folder`` too (an index copied or renamed with its folder keeps working with
    circuitnn, which reads the links' file names in ``folder``, and becomes right for plain h5py
    again on the next commit)."""
    import h5py

    with _h5py_file(path, "a") as handle:
        families = handle.require_group("families")
        for name in list(families.keys()):
            if isinstance(families.get(name, getlink=True), h5py.ExternalLink):
                del families[name]
                families[name] = h5py.ExternalLink(f"{folder}/{name}.h5", f"/families/{name}")
        families[key] = h5py.ExternalLink(f"{folder}/{key}.h5", f"/families/{key}")


def _clone_or_copy(source: Path, target: Path) -> None:
    """Copy a file: a copy-on-write clone (FICLONE: btrfs, XFS, ...) where the file system has
    them (instant, whatever the size), else an in-kernel copy."""
    ficlone = 0x40049409
    with open(source, "rb") as src, open(target, "wb") as dst:
        try:
            fcntl.ioctl(dst.fileno(), ficlone, src.fileno())
            return
        except OSError:
            pass
    shutil.copyfile(source, target)


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _write_analysis(
    path: Path, key: str, data: NoiseData | SpeedData, scratch: Path | None = None
) -> None:
    """Write ``data`` as group ``/families/KEY/DATA.KEY`` of the file at ``path``; datasets of
    the ``scratch`` file (an :class:`AnalysisWriter`'s) replace the same-named fields."""

    units = {
        "bias": "V",
        "frequency": "Hz",
        "psd": "output unit^2/Hz",
        "input_psd": "V^2/Hz",
        "sigma": "output unit (RMS)",
        "bandwidth": "Hz",
        "white": "output unit^2/Hz",
        "flicker": "output unit^2/Hz * Hz^alpha",
        "alpha": "1",
        "response": "output unit/V",
        "settling_time": "s",
        "energy": "J",
        "step_time": "s",
        "stop_time": "s",
        "tolerance": "fraction of the step",
    }
    with contextlib.ExitStack() as files:
        handle = files.enter_context(_h5py_file(path, "a"))
        source = files.enter_context(_h5py_file(scratch, "r")) if scratch is not None else {}
        group = handle["families"][key].create_group(data.key)
        group.attrs["kind"] = _attr(type(data).__name__)
        group.attrs["created"] = _attr(datetime.datetime.now(datetime.UTC).isoformat())
        for field in dataclasses.fields(data):
            value = getattr(data, field.name)
            if field.name == "key":
                continue
            if field.name in source:
                source.copy(source[field.name], group, name=field.name)
                group[field.name].attrs["units"] = _attr(units[field.name])
            elif field.name == "reasons":
                reasons = _fixed_text(value)
                group.create_dataset(
                    "failure_reason",
                    data=reasons,
                    compression="lzf",
                    **_checksummed(reasons),
                )
            elif isinstance(value, np.ndarray) and value.ndim > 0:
                options = {"compression": "lzf", "shuffle": True}
                dataset = group.create_dataset(
                    field.name,
                    data=value,
                    **(options if value.size > 4096 else {}),
                    **_checksummed(value),
                )
                if field.name in units:
                    dataset.attrs["units"] = _attr(units[field.name])
            else:
                group.attrs[field.name] = float(value)
                if field.name in units:
                    group.attrs[f"{field.name}_units"] = _attr(units[field.name])


REASON_BYTES = 256  # longest failure reason kept, UTF-8 bytes (a longer one is cut, with "…")


def _attr(value: Any) -> Any:
    """An attribute value as HDF5 keeps it inside the object's checksummed header: text as a
    fixed-length UTF-8 string. (h5py writes ``str`` as a variable-length string, which lives in
    HDF5's global heap: no checksum, and a damaged global heap can hang HDF5's reader.) h5py
    reads such an attribute back as ``bytes``."""
    if not isinstance(value, str):
        return value
    import h5py

    encoded = value.encode("utf-8")
    return np.array(encoded, dtype=h5py.string_dtype("utf-8", max(1, len(encoded))))


def _fixed_text(texts: Any) -> np.ndarray:
    """Texts as a fixed-length UTF-8 array of :data:`REASON_BYTES` (not variable-length strings,
    for the reasons given in :func:`_attr`)."""
    import h5py

    rows = []
    for text in texts:
        encoded = str(text).encode("utf-8")
        if len(encoded) > REASON_BYTES:
            cut = "…".encode()
            encoded = encoded[: REASON_BYTES - len(cut)].decode("utf-8", "ignore").encode() + cut
        rows.append(encoded)
    return np.array(rows, dtype=h5py.string_dtype("utf-8", REASON_BYTES)).reshape(len(rows))


RESERVE_MARGIN = 1 << 20  # bytes reserved beyond an estimate (HDF5 metadata, chunk indexes)


def _reserve(path: Path, size: int, what: str) -> None:
    """Claim the disk space for ``path`` to grow to ``size`` (+ a margin) bytes before HDF5 writes
    into it.

    HDF5 does not survive a failed write well (a full disk has made it abort with a double free
    inside ``H5Ocopy``, or crash when a file whose flush failed is closed), so the space is
    claimed first with ``posix_fallocate``: a full disk, a quota or a file-size limit then fails
    here with a clean :class:`StoreError`, before HDF5 writes a byte. HDF5 cuts the file back to
    its real end when it closes a file it opened after this. File systems without fallocate are
    left as they are.
    """
    try:
        descriptor = os.open(path, os.O_RDWR)
    except OSError:
        return
    try:
        os.posix_fallocate(descriptor, 0, size + RESERVE_MARGIN)
    except OSError as error:
        if error.errno in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            return
        raise StoreError(
            f"not enough space for {what} ({path}): it needs about "
            f"{(size + RESERVE_MARGIN) / 2**20:.1f} MiB ({error}); nothing was written to it"
        ) from None
    finally:
        os.close(descriptor)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists (on this machine), other than this one."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


def _size(path: Path) -> int:
    """A file's size in bytes (0 if it is gone)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _nbytes(values: dict[str, Any]) -> int:
    """Bytes of the arrays among ``values`` (and in dicts of arrays): an uncompressed size."""
    total = 0
    for value in values.values():
        if isinstance(value, np.ndarray):
            total += value.nbytes
        elif isinstance(value, dict):
            total += _nbytes(value)
    return total


def _h5py_file(path: Path, mode: str, cache_bytes: int = 1 << 20) -> Any:
    """A file this process writes alone, in the store's format (:data:`LIBVER`): a scratch file
    or a temporary copy, which only its writer (holding the store's lock) opens.

    Without HDF5's own file lock: HDF5 takes it with ``flock``, which a child forked meanwhile
    (an ngspice run started by another thread) shares until it execs, so a scratch file closed
    and reopened by the writer thread at that moment would fail to open (EAGAIN)."""
    import h5py

    return h5py.File(
        path, mode, libver=LIBVER, rdcc_nbytes=cache_bytes, rdcc_nslots=1021, locking=False
    )


def _empty_store(path: Path) -> None:
    """A new store file holding no family yet."""
    with _h5py_file(path, "w") as handle:
        handle.attrs["format"] = _attr("circuitnn-store")
        handle.attrs["schema_version"] = SCHEMA_VERSION
        handle.create_group("families")


def _families(handle: Any) -> Any:
    """The group of families (empty before the first). Not ``handle.get``: h5py turns a damaged
    object header (a checksum error) into KeyError, which ``get`` would hide as "no families"."""
    if "families" not in handle:
        return {}
    return handle["families"]


def _checksummed(data: np.ndarray) -> dict[str, Any]:
    """Dataset options adding a Fletcher-32 checksum (numeric and fixed-size arrays; HDF5 cannot
    filter scalars or variable-length strings)."""
    array = np.asarray(data)
    return {"fletcher32": True} if array.ndim > 0 and array.dtype != object else {}


def _read_analysis(
    group: Any, kind: str, wanted: str | None, cls: type, arrays: bool = True
) -> Any:
    names = [name for name in group if name.startswith(f"{kind}-")]
    if wanted is not None:
        if wanted not in names:
            return None
        chosen = wanted
    elif not names:
        return None
    else:
        chosen = max(names, key=lambda name: _text(group[name].attrs.get("created", "")))
    data = group[chosen]
    values: dict[str, Any] = {"key": chosen}
    for field in dataclasses.fields(cls):
        if field.name == "key":
            continue
        if field.name == "reasons":
            values["reasons"] = [_text(r) for r in data["failure_reason"][()]]
        elif field.name in data and not arrays and field.name in ANALYSIS_ROWS[kind]:
            dataset = data[field.name]
            values[field.name] = np.empty((0, *dataset.shape[1:]), dtype=dataset.dtype)
        elif field.name in data:
            values[field.name] = data[field.name][()]
        else:
            values[field.name] = float(data.attrs[field.name])
    return cls(**values)
