"""The HDF5 store of families: one file, one group per family, named by a content hash.

Crash safety: finished chunks of a running extraction go to a journal folder beside the store
(``STORE.partial/KEY/``, one ``.npz`` per chunk, each written to a temporary name and renamed), so
a killed run loses at most the chunks in flight and a rerun resumes. A complete family is committed
by copying the store to a temporary file, adding the group there and atomically renaming it over
the store, under an exclusive lock file, so readers and a killed writer only ever see the old or
the new file — never a half-written one. This is the only module that imports h5py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import fcntl
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from circuitnn.errors import StoreError
from circuitnn.family import Family, NoiseData, SpeedData

SCHEMA_VERSION = 1


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
        except OSError as error:
            raise StoreError(
                f"store {self.path} cannot be read as HDF5 (corrupt or truncated?): {error}"
            ) from None
        try:
            if handle.attrs.get("format") != "circuitnn-store":
                raise StoreError(f"{self.path} is an HDF5 file but not a circuitnn store")
            yield handle
        except (OSError, KeyError, ValueError, RuntimeError) as error:
            raise StoreError(f"store {self.path} is damaged: {error}") from None
        finally:
            handle.close()

    def keys(self) -> list[str]:
        """Keys of the families in the store (empty if the file does not exist yet)."""
        if not self.path.exists():
            return []
        with self._open() as handle:
            return sorted(handle.get("families", {}).keys())

    def __contains__(self, key: str) -> bool:
        return key in self.keys()

    def describe(self) -> list[dict[str, Any]]:
        """One row per family: key, neuron, n, failed count, seed, temperature, corner, created."""
        if not self.path.exists():
            return []
        rows = []
        with self._open() as handle:
            for key, group in handle.get("families", {}).items():
                rows.append(
                    {
                        "key": key,
                        "neuron": str(group.attrs["neuron"]),
                        "n": int(group.attrs["n"]),
                        "failed": int(np.count_nonzero(group["status"][()] != 1)),
                        "seed": int(group.attrs["seed"]),
                        "temperature": float(group.attrs["temperature"]),
                        "corner": str(group.attrs["corner"]),
                        "parameters": json.loads(group.attrs["nominal_parameters"]),
                        "created": str(group.attrs["created"]),
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
        self, selector: str | None = None, noise: str | None = None, speed: str | None = None
    ) -> Family:
        """Read a family (by key, key prefix or neuron name; default the newest) into memory.

        ``noise``/``speed`` name the analysis to attach (its key); by default the newest one
        stored with the family, if any.
        """
        key = self.resolve(selector)
        with self._open() as handle:
            group = handle["families"][key]
            attrs = {name: _plain(value) for name, value in group.attrs.items()}
            descriptors = {name: group["descriptors"][name][()] for name in group["descriptors"]}
            return Family(
                key=key,
                neuron=str(attrs["neuron"]),
                grid=group["input"][()],
                curves=group["curves"][()],
                nominal_curve=group["nominal_curve"][()],
                supply_current=group["supply_current"][()],
                supplies=tuple(json.loads(attrs["supplies"])),
                input_current=group["input_current"][()],
                power=group["power"][()],
                parameter_names=tuple(json.loads(group["parameters"].attrs["columns"])),
                parameters=group["parameters"][()],
                chip=group["chip"][()],
                status=group["status"][()],
                reasons=[_text(r) for r in group["failure_reason"][()]],
                descriptors=descriptors,
                output_unit=str(attrs["output_unit"]),
                attrs=attrs,
                noise=_read_analysis(group, "noise", noise, NoiseData),
                speed=_read_analysis(group, "speed", speed, SpeedData),
            )

    def analyses(self, key: str) -> list[str]:
        """Keys of the analyses (``noise-…``, ``speed-…``) stored with family ``key``."""
        with self._open() as handle:
            group = handle["families"].get(key)
            if group is None:
                raise StoreError(f"no family {key} in {self.path}")
            return sorted(name for name in group if name.startswith(("noise-", "speed-")))

    def commit(self, family: Family, lock_timeout: float = 600.0) -> None:
        """Add ``family`` atomically (copy, write, rename) under the store's lock file."""
        self._replace(
            family.key,
            lambda path: _write_family(path, family),
            lock_timeout,
            skip=lambda: family.key in self.keys(),
        )

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
        )

    def _replace(
        self, key: str, write: Callable[[Path], None], lock_timeout: float, skip: Callable[[], bool]
    ) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock(lock_timeout):
            if self.path.exists() and skip():
                return
            temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            try:
                if self.path.exists():
                    shutil.copyfile(self.path, temporary)
                write(temporary)
                with open(temporary, "rb") as handle:
                    os.fsync(handle.fileno())
                os.replace(temporary, self.path)
                _fsync_folder(self.path.parent)
            except OSError as error:
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
        with open(lock_path, "a") as handle:
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

    def journal(self, key: str, chunk_size: int) -> Journal:
        """The journal of unfinished family ``key`` extracted in chunks of ``chunk_size``."""
        return Journal(self.path.with_name(self.path.name + ".partial") / f"{key}-c{chunk_size}")


class Journal:
    """Finished chunks of an extraction in progress, one atomically written ``.npz`` each."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def save_arrays(self, name: str, arrays: dict[str, np.ndarray]) -> None:
        """Record named arrays as ``name.npz`` (atomic: a killed write leaves no partial file)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.folder / f"{name}.npz"
        temporary = final.with_suffix(".tmp")
        with open(temporary, "wb") as handle:
            np.savez(handle, **arrays)
        # no fsync: a killed process loses nothing in the page cache, and a chunk left unreadable
        # by a power cut is discarded by load_arrays and recomputed
        os.replace(temporary, final)

    def load_arrays(self, name: str) -> dict[str, np.ndarray] | None:
        """Arrays saved as ``name``, or None if absent or unreadable (then recomputed)."""
        path = self.folder / f"{name}.npz"
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return {key: data[key] for key in data.files}
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)
            return None

    def clear(self) -> None:
        """Delete the journal (after its family was committed)."""
        shutil.rmtree(self.folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.folder.parent.rmdir()


def _write_family(path: Path, family: Family) -> None:
    import h5py

    with h5py.File(path, "a") as handle:
        handle.attrs["format"] = "circuitnn-store"
        handle.attrs["schema_version"] = SCHEMA_VERSION
        families = handle.require_group("families")
        group = families.create_group(family.key)
        for name, value in family.attrs.items():
            group.attrs[name] = value
        n, points = family.curves.shape
        compress = {"compression": "lzf", "shuffle": True}
        rows = max(1, min(n, 256))

        def put(name: str, data: np.ndarray, unit: str | None = None, **options: Any) -> Any:
            dataset = group.create_dataset(name, data=data, **options)
            if unit is not None:
                dataset.attrs["units"] = unit
            return dataset

        put("input", family.grid, "V")
        put("curves", family.curves, family.output_unit, chunks=(rows, points), **compress)
        put("nominal_curve", family.nominal_curve, family.output_unit)
        for name, currents in (
            ("supply_current", family.supply_current),
            ("input_current", family.input_current),
        ):
            width = currents.shape[1]
            put(
                name,
                currents,
                "A",
                chunks=(rows, width, points) if width else None,
                **(compress if width else {}),
            )
        put("power", family.power, "W", chunks=(rows, points), **compress)
        parameters = put("parameters", family.parameters, "SI (see columns)")
        parameters.attrs["columns"] = json.dumps(list(family.parameter_names))
        put("chip", family.chip)
        status = put("status", family.status)
        status.attrs["meaning"] = "1 = ok, 2 = failed (see failure_reason)"
        group.create_dataset(
            "failure_reason", data=np.array(family.reasons, dtype=object), dtype=h5py.string_dtype()
        )
        descriptors = group.create_group("descriptors")
        from circuitnn.extract import DESCRIPTOR_UNITS

        for name, values in family.descriptors.items():
            dataset = descriptors.create_dataset(name, data=values)
            dataset.attrs["units"] = DESCRIPTOR_UNITS.get(name, "").replace(
                "output unit", family.output_unit
            )


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
    return value.decode() if isinstance(value, bytes) else str(value)


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
    with h5py.File(path, "a") as handle:
        group = handle["families"][key].create_group(data.key)
        group.attrs["kind"] = type(data).__name__
        group.attrs["created"] = datetime.datetime.now(datetime.UTC).isoformat()
        for field in dataclasses.fields(data):
            value = getattr(data, field.name)
            if field.name == "key":
                continue
            if field.name == "reasons":
                group.create_dataset(
                    "failure_reason", data=np.array(value, dtype=object), dtype=h5py.string_dtype()
                )
            elif isinstance(value, np.ndarray) and value.ndim > 0:
                options = {"compression": "lzf", "shuffle": True}
                dataset = group.create_dataset(
                    field.name, data=value, **(options if value.size > 4096 else {})
                )
                if field.name in units:
                    dataset.attrs["units"] = units[field.name]
            else:
                group.attrs[field.name] = float(value)
                if field.name in units:
                    group.attrs[f"{field.name}_units"] = units[field.name]


def _read_analysis(group: Any, kind: str, wanted: str | None, cls: type) -> Any:
    names = [name for name in group if name.startswith(f"{kind}-")]
    if wanted is not None:
        if wanted not in names:
            return None
        chosen = wanted
    elif not names:
        return None
    else:
        chosen = max(names, key=lambda name: group[name].attrs.get("created", ""))
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
