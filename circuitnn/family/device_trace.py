"""Tracing a family's curves to its devices: how closely each realized device parameter
(``vth_<device>``, ``id_<device>``, ``gm_<device>``, ``ic_<device>``, ``vbe_<device>``; see
:func:`~circuitnn.family.descriptors.descriptor_unit`) goes with a curve descriptor across the
instances, as Pearson's r with its confidence interval (Fisher's z transform, from
``scipy.stats.pearsonr``), so a designer sees which transistor sets, e.g., the spread of the
midpoint.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from circuitnn.errors import ConfigError
from circuitnn.family.descriptors import DESCRIPTOR_UNITS, DEVICE_UNITS, descriptor_unit


def device_parameters(descriptors: dict[str, np.ndarray]) -> list[str]:
    """The realized device parameters among ``descriptors``' names, in their order."""
    return [
        name
        for name in descriptors
        if name not in DESCRIPTOR_UNITS and "_" in name and name.split("_", 1)[0] in DEVICE_UNITS
    ]


def device_trace(
    descriptors: dict[str, np.ndarray],
    ok: np.ndarray,
    descriptor: str = "midpoint",
    confidence: float = 0.95,
) -> list[dict[str, Any]]:
    """One row per realized device parameter, the strongest correlation first: its mean and
    standard deviation (its own unit) over the ``ok`` instances, and Pearson's r with
    ``descriptor`` with its ``confidence`` interval, over the instances where both are finite
    (``n``). Where r cannot be computed (fewer than 3 instances, a constant column) the row
    says why in ``r`` and leaves the interval empty. ConfigError for an unknown descriptor."""
    from scipy import stats

    if descriptor not in descriptors:
        raise ConfigError(
            f"descriptor {descriptor!r} is not in this family ({', '.join(sorted(descriptors))})"
        )
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be between 0 and 1, got {confidence!r}")
    target = np.asarray(descriptors[descriptor], dtype=float)
    rows = []
    for name in device_parameters(descriptors):
        values = np.asarray(descriptors[name], dtype=float)
        usable = ok & np.isfinite(values) & np.isfinite(target)
        x, y = values[usable], target[usable]
        row: dict[str, Any] = {
            "device parameter": name,
            "unit": descriptor_unit(name),
            "n": int(usable.sum()),
            "mean": float(np.mean(x)) if len(x) else None,
            "std": float(np.std(x, ddof=1)) if len(x) > 1 else None,
            f"r with {descriptor}": None,
            "ci low": None,
            "ci high": None,
        }
        if len(x) < 3:
            row[f"r with {descriptor}"] = f"n/a: {len(x)} usable instances (3 needed)"
        elif np.ptp(x) == 0 or np.ptp(y) == 0:
            constant = name if np.ptp(x) == 0 else descriptor
            row[f"r with {descriptor}"] = f"n/a: {constant} is the same in every instance"
        else:
            result = stats.pearsonr(x, y)
            interval = result.confidence_interval(confidence)
            row[f"r with {descriptor}"] = float(result.statistic)
            row["ci low"], row["ci high"] = float(interval.low), float(interval.high)
        rows.append(row)

    def strength(row: dict[str, Any]) -> float:
        r = row[f"r with {descriptor}"]
        return -abs(r) if isinstance(r, float) else 0.0

    return sorted(rows, key=strength)
