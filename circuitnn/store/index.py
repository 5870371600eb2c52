from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from circuitnn.errors import StoreError
from circuitnn.family import Family, NoiseData, SpeedData
from circuitnn.store.family_file import read_analysis, write_analysis, write_family, write_rows
from circuitnn.store.files import (
    REASON_BYTES,
    add_link,
    array_bytes,
    as_text,
    families_group,
    file_size,
    fsync_folder,
    open_store_file,
    plain_value,
    rewrite_atomically,
)
from circuitnn.store.journal import Journal
from circuitnn.store.writers import AnalysisWriter, FamilyWriter


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
        with open_store_file(self.path, f"store {self.path}") as handle:
            yield handle

    @contextlib.contextmanager
    def _family(self, key: str) -> Iterator[Any]:
        """The HDF5 group of family ``key``, read-only (from its own file, or from the index file
        for a store of the older one-file layout)."""
        path = self._file_of(key)
        if path == self.path:
            with self._open() as handle:
                yield families_group(handle)[key]
            return
        if not path.exists():
            raise StoreError(
                f"store {self.path}: the file of family {key[:12]}, {path}, is missing "
                "(a store is its index file and its folder; move and copy them together)"
            )
        with open_store_file(path, f"store {self.path}: family file {path}") as handle:
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
            return sorted(families_group(handle).keys())

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
                        "neuron": as_text(group.attrs["neuron"]),
                        "n": int(group.attrs["n"]),
                        "failed": int(np.count_nonzero(group["status"][()] != 1)),
                        "seed": int(group.attrs["seed"]),
                        "temperature": float(group.attrs["temperature"]),
                        "corner": as_text(group.attrs["corner"]),
                        "parameters": json.loads(group.attrs["nominal_parameters"]),
                        "created": as_text(group.attrs["created"]),
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
            attrs = {name: plain_value(value) for name, value in group.attrs.items()}
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
                reasons=[as_text(r) for r in group["failure_reason"][()]],
                descriptors=descriptors,
                output_unit=str(attrs["output_unit"]),
                attrs=attrs,
                noise=read_analysis(group, "noise", noise, NoiseData) if arrays else None,
                speed=read_analysis(group, "speed", speed, SpeedData) if arrays else None,
                run_alone=group["run_alone"][()] if "run_alone" in group else None,
                curves_down=big("curves_down") if "curves_down" in group else None,
                nominal_curve_down=(
                    group["nominal_curve_down"][()] if "nominal_curve_down" in group else None
                ),
            )

    def read_rows(self, key: str, name: str, rows: np.ndarray) -> np.ndarray:
        """Instances ``rows`` (increasing) of dataset ``name`` (e.g. ``curves``) of family
        ``key``, without loading the rest."""
        with self._family(key) as group:
            return group[name][np.asarray(rows, dtype=np.int64)]

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
            rewrite_atomically(
                target,
                lambda path: write_family(path, family),
                grows=array_bytes(vars(family)) + family.n * REASON_BYTES,
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
                rewrite_atomically(
                    self._file_of(key),
                    lambda path: write_analysis(path, key, data, scratch),
                    grows=array_bytes(vars(data))
                    + len(data.reasons) * REASON_BYTES
                    + (file_size(scratch) if scratch else 0),
                    what=f"analysis {data.key[:18]} of family {key[:12]} in {self.path}",
                )
        if written is not None:
            written.discard()

    def update_rows(
        self,
        key: str,
        rows: np.ndarray,
        columns: dict[str, np.ndarray],
        reasons: list[str],
        lock_timeout: float = 600.0,
    ) -> None:
        """Overwrite instances ``rows`` of stored family ``key`` (instances simulated again):
        the datasets named in ``columns`` and the failure reasons, atomically (a copy of the
        family's file, renamed over it). Its analyses go if an instance's status changed."""
        rows = np.asarray(rows, dtype=np.int64)
        with self.lock(lock_timeout):
            rewrite_atomically(
                self._file_of(key),
                lambda path: write_rows(path, key, rows, columns, reasons),
                grows=array_bytes(columns) + len(reasons) * REASON_BYTES,
                what=f"instances retried in family {key[:12]} of {self.path}",
            )

    def load_analysis(self, key: str, kind: str, name: str, arrays: bool = True) -> Any:
        """Analysis ``name`` (a ``noise-…`` or ``speed-…`` key) of family ``key``, or None.
        ``arrays=False`` leaves out its per-instance spectra (:data:`ANALYSIS_ROWS`: 0 rows)."""
        cls = NoiseData if kind == "noise" else SpeedData
        with self._family(key) as group:
            return read_analysis(group, kind, name, cls, arrays)

    def _file_of(self, key: str) -> Path:
        """The file holding family ``key``'s group: its own, or the index (older layout)."""
        import h5py

        with self._open() as handle:
            families = families_group(handle)
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
            fsync_folder(self.folder)
        except OSError as error:
            raise StoreError(
                f"could not move family {key[:12]} into {self.folder}: {error}"
            ) from None

    def _add_to_index(self, key: str) -> None:
        """Link family ``key``'s file into the index (rewritten atomically); if the index cannot
        be rewritten, the family's file is removed again and the store is as it was."""
        try:
            rewrite_atomically(
                self.path,
                lambda path: add_link(path, key, self.folder.name),
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
