"""Pictures of a design sweep: each descriptor against one swept parameter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from circuitnn._matplotlib import pyplot
from circuitnn.extract.plots import DESCRIPTOR_LABELS


def plot_sweep(
    rows: list[dict[str, Any]],
    parameter: str,
    path: str | Path,
    descriptors: tuple[str, ...] = ("swing", "midpoint", "gain", "mean_power"),
) -> Path:
    """Write a PNG of descriptor mean ± σ against swept ``parameter`` (a line per other point)."""
    plt = pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(1, len(descriptors), figsize=(4.2 * len(descriptors), 3.6))
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        others = ", ".join(f"{k}={v:g}" for k, v in row["point"].items() if k != parameter)
        groups.setdefault(others, []).append(row)
    for axis, name in zip(np.atleast_1d(axes), descriptors, strict=True):
        for label, members in groups.items():
            members = sorted(members, key=lambda r: r["point"][parameter])
            x = [r["point"][parameter] for r in members]
            mean = np.array([r["summary"][name]["mean"] for r in members])
            std = np.array([r["summary"][name]["std"] for r in members])
            axis.errorbar(x, mean, yerr=std, marker="o", capsize=3, label=label or None)
        axis.set_xlabel(parameter)
        axis.set_ylabel(
            DESCRIPTOR_LABELS.get(name, name).format(unit=rows[0]["unit"]) if rows else name
        )
        axis.grid(alpha=0.3)
        if len(groups) > 1:
            axis.legend(fontsize=7)
    figure.suptitle("mean ± σ over Monte Carlo instances")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
