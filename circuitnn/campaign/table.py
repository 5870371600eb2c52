"""Sweeps and campaigns as one table: a row per grid point, every setting and statistic a column.

Columns: ``point``, ``neuron``, ``n``, ``seed``, ``chip_size``, ``corner`` (``nominal`` when
none), ``temperature_C``, the supplies (``vdd_V``), each swept parameter with its unit (``w_m``,
``r_Ohm``; ``_SI`` when the netlist does not tell, see :mod:`circuitnn.neuron.elements`),
``failed_instances``, ``seconds``, then mean and σ over the ok instances of each descriptor with
its unit (``swing_mean_V``, ``swing_sigma_V``, ``midpoint_mean_V``, ``gain_mean_V_per_V``,
``mean_power_mean_W`` …), with noise ``sigma_out_mid_U`` (mean RMS output noise at the middle
bias point), and ``family_key``. Written as CSV (``sweep.csv`` / ``campaign.csv``) that
``pandas.read_csv`` loads as it is.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from circuitnn.family import Family
from circuitnn.neuron.elements import column_name
from circuitnn.neuron.spec import NeuronSpec

Row = dict[str, Any]

DESCRIPTOR_UNITS = {
    "swing": "{unit}",
    "midpoint": "V",
    "gain": "{unit}_per_V",
    "max_slope": "{unit}_per_V",
    "mean_power": "W",
}


def point_row(
    number: int, spec: NeuronSpec, point: dict[str, float], family: Family, seconds: float
) -> Row:
    """The table row of one grid point's family (works on a family loaded without its arrays);
    ``spec`` is the neuron before the point's values were applied."""
    attrs = family.attrs
    unit = family.output_unit
    row: Row = {
        "point": number,
        "neuron": family.neuron,
        "n": family.n,
        "seed": int(attrs.get("seed", -1)),
        "chip_size": int(attrs.get("chip_size", 1)),
        "corner": attrs.get("corner") or "nominal",
        "temperature_C": float(attrs.get("temperature", spec.temperature)),
    }
    supplies = json.loads(attrs.get("supplies", "[]"))
    voltages = json.loads(attrs.get("supply_voltages", "[]"))
    for supply, volts in zip(supplies, voltages, strict=False):
        row[f"{supply}_V"] = float(volts)
    for name, value in point.items():
        if name != "temperature":
            row[column_name(spec, name)] = float(value)
    row["failed_instances"] = len(family.failed)
    row["seconds"] = seconds
    for name, stats in family.summary().items():
        if name == "monotonic":
            row["monotonic_fraction"] = stats["mean"]
            continue
        suffix = DESCRIPTOR_UNITS.get(name, "SI").format(unit=unit)
        row[f"{name}_mean_{suffix}"] = stats["mean"]
        row[f"{name}_sigma_{suffix}"] = stats["std"]
    noise = family.noise
    if noise is not None:
        middle = noise.sigma[noise.status == 1, len(noise.bias) // 2]
        middle = middle[np.isfinite(middle)]
        row[f"sigma_out_mid_{unit}"] = float(np.mean(middle)) if len(middle) else math.nan
    row["family_key"] = family.key
    return row


def write_table(path: str | Path, rows: list[Row]) -> Path:
    """The rows as CSV (the union of their columns in first-seen order; NaN as ``nan``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: _cell(row.get(key)) for key in columns})
    partial.replace(path)
    return path


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "nan"
    return value
