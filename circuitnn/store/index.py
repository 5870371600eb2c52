"""The store's index and its families: :class:`Store` (keys, load, commit, lock).\n"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from circuitnn.errors import ConfigError, StoreError, StoreFilterMissing
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
from circuitnn.store.paths import shown, writable_folder
from circuitnn.store.writers import AnalysisWriter, FamilyWriter


class StoreWarning(UserWarning):
    """Something in a store was skipped (a damaged family); the message names it."""


def _damaged_text(path: Path, damaged: dict[str, str]) -> str:
    first = next(iter(damaged.values()))
    return (
        f"store {path}: skipped {len(damaged)} damaged famil"
        f"{'y' if len(damaged) == 1 else 'ies'} ({', '.join(k[:12] for k in damaged)}): {first}"
    )


def _listing(rows: list[dict[str, Any]]) -> str:
    """Families as ``KEY (n=…, seed=…, T °C, corner, parameters that differ)``."""
    differing = {
        name
        for row in rows
        for name, value in row["parameters"].items()
        if any(other["parameters"].get(name) != value for other in rows)
    }
    described = []
    for row in rows:
        parts = [f"n={row['n']}", f"seed={row['seed']}", f"{row['temperature']:g} °C"]
        if row["chip_size"] != 1:
            parts.append(f"chip_size={row['chip_size']}")
        if row["corner"]:
            parts.append(f"corner {row['corner']}")
        parts += [f"{name}={row['parameters'][name]:g}" for name in sorted(differing)]
        described.append(f"{row['key']} ({', '.join(parts)})")
    return "; ".join(described)


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
        if self.path.is_dir():
            raise ConfigError(f"store {shown(self.path)} is a folder, not a store's index file")
        with open_store_file(self.path, f"store {self.path}") as handle:
            yield handle

    @contextlib.contextmanager
    def _family(self, key: str) -> Iterator[Any]:
        """The HDF5 group of family ``key``, read-only (its own file, or the index file for a store
        of the older layout); a damaged family's :class:`StoreError` says how to set it aside."""
        path = self._file_of(key)
        if path == self.path:
            with self._open() as handle:
                yield families_group(handle)[key]
            return
        repair = f"circuitnn store repair {shown(self.path)} sets it aside to be extracted again"
        if not path.exists():
            raise StoreError(
                f"store {self.path}: the file of family {key[:12]}, {path}, is missing "
                f"(a store is its index file and its folder; move and copy them together; "
                f"{repair})"
            )
        try:
            with open_store_file(path, f"store {self.path}: family file {path}") as handle:
                yield handle["families"][key]
        except StoreFilterMissing:  # not damage: no repair
            raise
        except StoreError as error:
            raise StoreError(f"{error} ({repair})") from None

    def check_writable(self) -> None:
        """:class:`ConfigError` (before any simulation) unless families can be committed here: the
        index is not a folder, its folder and ``PATH.d`` are folders (or can be made) we write."""
        what = f"store {shown(self.path)}"
        if self.path.is_dir():
            raise ConfigError(
                f"{what} is a folder; give the path of the store's index file, such as "
                f"{shown(self.path / 'families.h5')}"
            )
        writable_folder(self.path.parent, what)
        if self.folder.exists():
            if not self.folder.is_dir():
                raise ConfigError(
                    f"{what}: {shown(self.folder)} is a file, but it must be the store's folder"
                )
            writable_folder(self.folder, what)

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

    def family_files(self) -> dict[str, Path]:
        """Each family's file by key (its own, or the index for the older one-file layout), from
        one read of the index."""
        import h5py

        if not self.path.exists():
            return {}
        with self._open() as handle:
            families = families_group(handle)
            links = {key: families.get(key, getlink=True) for key in families}
        return {
            key: self.folder / Path(link.filename).name
            if isinstance(link, h5py.ExternalLink)
            else self.path
            for key, link in links.items()
        }

    def __contains__(self, key: str) -> bool:
        return key in self.keys()

    def describe(self, damaged: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """One row per readable family, oldest first: key, neuron, n, failed count, seed,
        chip size, temperature, corner, nominal parameters, created. A family whose file cannot
        be read is left out: its key and the reason go into ``damaged`` when given, else a
        :class:`StoreWarning` names them."""
        rows = []
        skipped: dict[str, str] = {}
        for key in self.keys():
            try:
                with self._family(key) as group:
                    attrs = group.attrs
                    rows.append(
                        {
                            "key": key,
                            "neuron": as_text(attrs["neuron"]),
                            "n": int(attrs["n"]),
                            "failed": int(np.count_nonzero(group["status"][()] != 1)),
                            "seed": int(attrs["seed"]),
                            "chip_size": int(attrs.get("chip_size", 1)),
                            "temperature": float(attrs["temperature"]),
                            "corner": as_text(attrs["corner"]),
                            "parameters": json.loads(attrs["nominal_parameters"]),
                            "created": as_text(attrs["created"]),
                        }
                    )
            except StoreError as error:
                skipped[key] = str(error).splitlines()[0]
        if damaged is not None:
            damaged.update(skipped)
        elif skipped:
            warnings.warn(_damaged_text(self.path, skipped), StoreWarning, stacklevel=2)
        return sorted(rows, key=lambda row: row["created"])

    def resolve(self, selector: str | None = None) -> str:
        """The key of the family named by a key, a unique key prefix or a neuron name (which
        must name one family: several are a :class:`StoreError` listing them); no selector: the
        newest family. Damaged families are skipped with a :class:`StoreWarning`."""
        keys = self.keys()
        if not keys:
            raise StoreError(f"store {self.path} holds no families")
        by_key = [key for key in keys if selector is not None and key.startswith(selector)]
        if selector in keys or len(by_key) == 1:  # (reads no other family's file)
            return selector if selector in keys else by_key[0]
        damaged: dict[str, str] = {}
        rows = self.describe(damaged)
        if damaged:
            warnings.warn(_damaged_text(self.path, damaged), StoreWarning, stacklevel=2)
        if selector is None:
            if not rows:
                raise StoreError(f"store {self.path}: no family can be read")
            return str(rows[-1]["key"])
        by_neuron = [row for row in rows if row["neuron"] == selector]
        if len(by_neuron) == 1:
            return str(by_neuron[0]["key"])
        if len(by_neuron) > 1:
            raise StoreError(
                f"{selector!r} names {len(by_neuron)} families in {self.path}; load one by its "
                f"key: {_listing(by_neuron)}"
            )
        if len(by_key) > 1:
            raise StoreError(f"{selector!r} matches several families in {self.path}: {by_key}")
        hint = f" ({len(damaged)} damaged famil{'y' if len(damaged) == 1 else 'ies'} skipped)"
        raise StoreError(f"no family {selector!r} in {self.path}{hint if damaged else ''}")

    def matching(self, selector: str) -> list[str]:
        """Keys of the readable families named by a key, key prefix or neuron name (all of
        them), oldest first."""
        keys = self.keys()
        if selector in keys:
            return [selector]
        rows = self.describe()
        return [
            row["key"]
            for row in rows
            if row["neuron"] == selector or row["key"].startswith(selector)
        ]

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
        """Instances ``rows`` (increasing) of dataset ``name`` of family ``key``, not the rest."""
        (block,) = self.read_row_blocks(key, name, [rows])
        return block

    def read_row_blocks(self, key: str, name: str, blocks: list[Any]) -> Iterator[np.ndarray]:
        """:meth:`read_rows` of each of ``blocks`` in turn, from one opening of the file."""
        with self._family(key) as group:
            dataset = group[name]
            for rows in (np.asarray(block, dtype=np.int64) for block in blocks):
                whole = len(rows) and rows[-1] - rows[0] + 1 == len(rows)  # a slice: faster
                yield dataset[rows[0] : rows[-1] + 1] if whole else dataset[rows]

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

    def commit_written(self, writer: FamilyWriter, lock_timeout: float = 600.0) -> bool:
        """Add the family that ``writer`` finished writing (slice by slice, in its scratch file)
        atomically, under the lock file: the scratch file is renamed to the family's file in the
        store's folder (no copy) and the index gains a link to it. Returns False when another
        process had committed the same family first (the store keeps that one)."""
        if not writer.finished:
            raise StoreError(f"family {writer.key[:12]} is not completely written; not committed")
        added = False
        with self.lock(lock_timeout):
            if writer.key not in self:
                self.folder.mkdir(exist_ok=True)
                self._move_in(writer.key, writer.path)
                self._add_to_index(writer.key)
                added = True
        writer.discard()
        return added

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
