"""Reading and writing a family's HDF5 group and its analyses (the schema in one place)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
from pathlib import Path
from typing import Any

import numpy as np

from circuitnn.family import Family, NoiseData, SpeedData
from circuitnn.store.files import (
    as_text,
    attr_value,
    checksummed,
    compressed,
    fixed_text,
    h5py_file,
)
from circuitnn.store.writers import ANALYSIS_ROWS, FamilyWriter


def write_family(path: Path, family: Family) -> None:
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
            {
                name: values
                for name, values in (
                    ("run_alone", family.run_alone),
                    ("curves_down", family.curves_down),
                )
                if values is not None
            },
        )
        down = family.nominal_curve_down
        writer.finish(
            family.nominal_curve, None, {} if down is None else {"nominal_curve_down": down}
        )


def write_analysis(
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
        handle = files.enter_context(h5py_file(path, "a"))
        source = files.enter_context(h5py_file(scratch, "r")) if scratch is not None else {}
        group = handle["families"][key].create_group(data.key)
        group.attrs["kind"] = attr_value(type(data).__name__)
        group.attrs["created"] = attr_value(datetime.datetime.now(datetime.UTC).isoformat())
        for field in dataclasses.fields(data):
            value = getattr(data, field.name)
            if field.name == "key":
                continue
            if field.name in source:
                source.copy(source[field.name], group, name=field.name)
                group[field.name].attrs["units"] = attr_value(units[field.name])
            elif field.name == "reasons":
                reasons = fixed_text(value)
                group.create_dataset(
                    "failure_reason",
                    data=reasons,
                    **compressed(shuffle=False),
                    **checksummed(reasons),
                )
            elif isinstance(value, np.ndarray) and value.ndim > 0:
                options = compressed()
                dataset = group.create_dataset(
                    field.name,
                    data=value,
                    **(options if value.size > 4096 else {}),
                    **checksummed(value),
                )
                if field.name in units:
                    dataset.attrs["units"] = attr_value(units[field.name])
            else:
                group.attrs[field.name] = float(value)
                if field.name in units:
                    group.attrs[f"{field.name}_units"] = attr_value(units[field.name])


def read_analysis(group: Any, kind: str, wanted: str | None, cls: type, arrays: bool = True) -> Any:
    names = [name for name in group if name.startswith(f"{kind}-")]
    if wanted is not None:
        if wanted not in names:
            return None
        chosen = wanted
    elif not names:
        return None
    else:
        chosen = max(names, key=lambda name: as_text(group[name].attrs.get("created", "")))
    data = group[chosen]
    values: dict[str, Any] = {"key": chosen}
    for field in dataclasses.fields(cls):
        if field.name == "key":
            continue
        if field.name == "reasons":
            values["reasons"] = [as_text(r) for r in data["failure_reason"][()]]
        elif field.name in data and not arrays and field.name in ANALYSIS_ROWS[kind]:
            dataset = data[field.name]
            values[field.name] = np.empty((0, *dataset.shape[1:]), dtype=dataset.dtype)
        elif field.name in data:
            values[field.name] = data[field.name][()]
        else:
            values[field.name] = float(data.attrs[field.name])
    return cls(**values)


def write_rows(
    path: Path, key: str, rows: np.ndarray, columns: dict[str, np.ndarray], reasons: list[str]
) -> bool:
    """Overwrite instances ``rows`` (increasing) of family ``key`` in the file at ``path``:
    each dataset named in ``columns`` (``descriptors/NAME`` for a descriptor) and the failure
    reasons; an optional dataset the family lacks is created. When an instance's status
    changes, the family's noise and speed analyses are deleted (they were computed without
    it); returns whether that happened."""
    with h5py_file(path, "a") as handle:
        group = handle["families"][key]
        before = group["status"][rows]
        for name, values in columns.items():
            if name not in group:
                dataset = group.create_dataset(
                    name,
                    shape=(len(group["status"]), *values.shape[1:]),
                    dtype=values.dtype,
                    fillvalue=np.nan if values.dtype.kind == "f" else 0,
                    **checksummed(values),
                )
                del dataset
            group[name][rows] = values
        group["failure_reason"][rows] = fixed_text(reasons)
        changed = bool(np.any(before != group["status"][rows]))
        if changed:
            for name in [name for name in group if name.startswith(("noise-", "speed-"))]:
                del group[name]
        group.attrs["retried"] = attr_value(datetime.datetime.now(datetime.UTC).isoformat())
    return changed
