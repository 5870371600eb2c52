"""The HDF5 store of families: one file, one group per family, named by a content hash.

Crash safety: finished chunks of a running extraction go to a journal folder beside the store
(``STORE.partial/KEY/``, one ``.npz`` per chunk, each written to a temporary name and renamed), so
a killed run loses at most the chunks in flight and a rerun resumes. The family is written slice by
slice, as chunks arrive, into a scratch HDF5 file in that folder (:class:`FamilyWriter`; a scratch
file is never trusted after a crash: a rerun writes a new one from the journal). A complete family
is committed by copying the store to a temporary file (a reflink clone where the file system has
them), copying the family's group into it and atomically renaming it over the store, under an
exclusive lock file, so readers and a killed writer only ever see the old or the new file — never
a half-written one. This is the only module that imports h5py.
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
    """An HDF5 file of families at ``path`` (created on first commit)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    @contextlib.contextmanager
    def _open(self) -> Iterator[Any]:
        import h5py

        if not self.path.exists():
            raise StoreError(f"store {self.path} does not exist")
        try:
            handle = h5py.File(self.path, "r")
        except Exception as error:  # OSError mostly; whatever a damaged file makes HDF5 say
            raise StoreError(
                f"store {self.path} cannot be read as HDF5 (corrupt or truncated?): {error}"
            ) from None
        try:
            if _text(handle.attrs.get("format", "")) != "circuitnn-store":
                raise StoreError(f"{self.path} is an HDF5 file but not a circuitnn store")
            yield handle
        except CircuitnnError:
            raise
        except Exception as error:
            # a damaged file fails in many ways (OSError from HDF5, a checksum or filter error, a
            # group where a dataset belongs, an attribute of the wrong type or bad JSON): the
            # caller gets one clear StoreError naming the file
            raise StoreError(
                f"store {self.path} is damaged: {type(error).__name__}: {error}"
            ) from None
        finally:
            with contextlib.suppress(Exception):
                handle.close()

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
        if not self.path.exists():
            return []
        rows = []
        with self._open() as handle:
            for key, group in _families(handle).items():
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
        rows = self.describe()
        if not rows:
            raise StoreError(f"store {self.path} holds no families")
        if selector is None:
            return rows[-1]["key"]
        by_key = [row["key"] for row in rows if row["key"].startswith(selector)]
        if len(by_key) == 1:
            return by_key[0]
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
        with self._open() as handle:
            group = handle["families"][key]
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
        with self._open() as handle:
            if key not in _families(handle):
                raise StoreError(f"no family {key} in {self.path}")
            group = handle["families"][key]
            return sorted(name for name in group if name.startswith(("noise-", "speed-")))

    def commit(self, family: Family, lock_timeout: float = 600.0) -> None:
        """Add ``family`` (held in memory) atomically (copy, write, rename) under the lock file."""
        self._replace(
            family.key,
            lambda path: _write_family(path, family),
            lock_timeout,
            skip=lambda: family.key in self.keys(),
            grows=_nbytes(vars(family)) + family.n * REASON_BYTES,
        )

    def commit_written(self, writer: FamilyWriter, lock_timeout: float = 600.0) -> None:
        """Add the family that ``writer`` finished writing (slice by slice, in its scratch file)
        atomically: under the lock file, the store is copied, the family's group copied in from
        the scratch file (chunk by chunk, so memory stays small) and the copy renamed over the
        store. The scratch file is deleted afterwards."""
        if not writer.finished:
            raise StoreError(f"family {writer.key[:12]} is not completely written; not committed")
        self._replace(
            writer.key,
            lambda path: _copy_group(writer.path, path, f"families/{writer.key}"),
            lock_timeout,
            skip=lambda: writer.key in self.keys(),
            grows=2 * _size(writer.path),
        )
        writer.discard()

    def commit_analysis(
        self, key: str, data: NoiseData | SpeedData, lock_timeout: float = 600.0
    ) -> None:
        """Add a noise or speed analysis to the stored family ``key``, atomically."""
        if not self.path.exists() or key not in self.keys():
            raise StoreError(f"cannot add {data.key} to {self.path}: no family {key} there")
        self._replace(
            key,
            lambda path: _write_analysis(path, key, data),
            lock_timeout,
            skip=lambda: data.key in self.analyses(key),
            grows=_nbytes(vars(data)) + len(data.reasons) * REASON_BYTES,
        )

    def _replace(
        self,
        key: str,
        write: Callable[[Path], None],
        lock_timeout: float,
        skip: Callable[[], bool],
        grows: int = 0,
    ) -> None:
        """Copy the store, ``write`` into the copy, rename it over the store, under the lock; the
        disk space for the copy and for ``grows`` more bytes is reserved before HDF5 writes."""
        with self.lock(lock_timeout):  # (creates the store's folder)
            if self.path.exists() and skip():
                return
            # temporaries exist only while their writer holds the lock: these are a dead one's
            for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):
                stale.unlink(missing_ok=True)
            temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            try:
                if self.path.exists():
                    _clone_or_copy(self.path, temporary)
                else:
                    _empty_store(temporary)
                _reserve(
                    temporary, temporary.stat().st_size + grows, f"the new copy of {self.path}"
                )
                write(temporary)
                with open(temporary, "rb") as handle:
                    os.fsync(handle.fileno())
                os.replace(temporary, self.path)
                _fsync_folder(self.path.parent)
            except CircuitnnError:
                raise
            except Exception as error:  # OSError; h5py may say RuntimeError (disk full on close)
                raise StoreError(
                    f"could not write family {key[:12]} to {self.path}: {error} "
                    "(the store was left as it was)"
                ) from None
            finally:
                temporary.unlink(missing_ok=True)

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
        import h5py

        self.path, self.key, self.n = Path(path), key, n
        self.chunk_rows = max(1, chunk_rows)
        self.finished = False
        try:
            self._file = h5py.File(
                self.path, mode, libver=LIBVER, rdcc_nbytes=self.CACHE_BYTES, rdcc_nslots=1021
            )
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


def _copy_group(scratch: Path, path: Path, group: str) -> None:
    """Copy ``group`` of the finished scratch file into the (temporary copy of the) store."""
    import h5py

    with h5py.File(scratch, "r") as source, h5py.File(path, "a", libver=LIBVER) as target:
        target.attrs["format"] = _attr("circuitnn-store")
        target.attrs["schema_version"] = SCHEMA_VERSION
        parent, _, name = group.rpartition("/")
        source.copy(source[group], target.require_group(parent), name=name)


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


def _write_analysis(path: Path, key: str, data: NoiseData | SpeedData) -> None:
    import h5py

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
    with h5py.File(path, "a", libver=LIBVER) as handle:
        group = handle["families"][key].create_group(data.key)
        group.attrs["kind"] = _attr(type(data).__name__)
        group.attrs["created"] = _attr(datetime.datetime.now(datetime.UTC).isoformat())
        for field in dataclasses.fields(data):
            value = getattr(data, field.name)
            if field.name == "key":
                continue
            if field.name == "reasons":
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
    """An HDF5 file of the store's format (:data:`LIBVER`)."""
    import h5py

    return h5py.File(path, mode, libver=LIBVER, rdcc_nbytes=cache_bytes, rdcc_nslots=1021)


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


def _read_analysis(group: Any, kind: str, wanted: str | None, cls: type) -> Any:
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
        elif field.name in data:
            values[field.name] = data[field.name][()]
        else:
            values[field.name] = float(data.attrs[field.name])
    return cls(**values)
