"""The co-design table: one row per design point, every setting and metric a column, units in
the names; written as CSV that ``pandas.read_csv`` loads as it is.

Columns (``M`` is the task's metric, ``accuracy`` or ``rmse``; ``U`` the neuron's output unit):

- settings: ``point``, ``source`` (grid / search), ``neuron``, ``n``, ``seed``, ``chip_size``,
  ``corner`` (``nominal`` when none), ``temperature_C``, the supplies (``vdd_V``) and each
  design parameter with its unit (``w_m``, ``ibias_A``; ``_SI`` when the netlist does not tell);
- circuit (over the family's ok instances): ``failed_instances``, ``midpoint_mean_V`` and
  ``midpoint_sigma_V`` (the threshold / offset spread), ``swing_mean_U``, ``gain_mean_U_per_V``,
  ``power_mean_W``, ``settling_time_mean_s``, ``bandwidth_mean_Hz``, ``sigma_out_mid_U`` (RMS
  output noise at the middle bias point), ``area_um2`` (Σ W·L of the neuron's MOSFETs) and
  ``area_network_um2`` (× hidden neurons);
- network: ``M_nominal`` (nominal curves), ``M_mean`` and ``M_p5`` (``M_p95`` for RMSE: the
  worst 5 % of chips) with ``_ci_low`` / ``_ci_high`` (95 %), ``M_chip_min``, ``yield`` (fraction
  of chips within ``yield_target_M``) with its interval, ``noise_midpoint`` (additive σ in
  network units where the metric is halfway to chance) with its interval, ``energy_J`` and
  ``latency_s`` per inference (mean over chips) with intervals, ``chips``, ``draws``;
- results: ``pareto`` (on the front of the objectives), ``selected`` (the selections that chose
  the row); bookkeeping: ``family_source`` (simulated / store), ``simulation_s``,
  ``training_s``, ``evaluation_s``, ``family_key``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from circuitnn.campaign.table import write_table as write_csv
from circuitnn.codesign.space import Area, area_proxy, column_name
from circuitnn.family import Family
from circuitnn.neuron.spec import NeuronSpec

Row = dict[str, Any]
__all__ = [
    "check_columns",
    "circuit_columns",
    "known_columns",
    "read_table",
    "settings_columns",
    "write_csv",
]


def settings_columns(
    spec: NeuronSpec, point: dict[str, Any], config: Any, corner: str | None
) -> Row:
    """The settings columns of a design point (``spec`` is the point's spec)."""
    row: Row = {
        "neuron": spec.name,
        "n": config.n,
        "seed": config.seed,
        "chip_size": config.chip_size,
        "corner": corner or "nominal",
        "temperature_C": spec.temperature,
    }
    for supply, volts in spec.ports.supplies.items():
        row[f"{supply}_V"] = volts
    for name, value in point.items():
        if name not in ("corner", "temperature") and name not in spec.ports.supplies:
            row[column_name(spec, name)] = float(value)
    return row


def circuit_columns(family: Family, area: Area | None, hidden: int) -> Row:
    """The circuit columns of a design point from its family (noise and speed included)."""
    unit = family.output_unit
    summary = family.summary()
    row: Row = {
        "failed_instances": len(family.failed),
        "midpoint_mean_V": summary["midpoint"]["mean"],
        "midpoint_sigma_V": summary["midpoint"]["std"],
        f"swing_mean_{unit}": summary["swing"]["mean"],
        f"gain_mean_{unit}_per_V": summary["gain"]["mean"],
        "power_mean_W": summary["mean_power"]["mean"],
    }
    if family.speed is not None:
        ok = family.speed.status == 1
        row["settling_time_mean_s"] = _mean(family.speed.settling_time[ok])
        row["bandwidth_mean_Hz"] = _mean(family.speed.bandwidth[ok])
    if family.noise is not None:
        noise = family.noise
        middle = noise.sigma[noise.status == 1, len(noise.bias) // 2]
        row[f"sigma_out_mid_{unit}"] = _mean(middle)
    if area is not None:
        row["area_um2"] = area.um2
        row["area_network_um2"] = area.um2 * hidden
    return row


def _mean(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    return float(np.mean(values)) if len(values) else math.nan


def known_columns(config: Any, spec: NeuronSpec) -> set[str]:
    """Every numeric column a run of ``config`` on ``spec`` writes (without running it), so
    objectives and selections can be checked before anything is simulated."""
    metric = config.task.metric
    tail = "p5" if metric == "accuracy" else "p95"
    unit = spec.output.unit
    names = [*config.grid, *(config.search.ranges if config.search else ())]
    columns = {column_name(spec, name) for name in names if name != "corner"}
    columns |= {"n", "seed", "chip_size", "temperature_C", "point"}
    columns |= {f"{supply}_V" for supply in spec.ports.supplies}
    columns |= {
        "failed_instances",
        "midpoint_mean_V",
        "midpoint_sigma_V",
        f"swing_mean_{unit}",
        f"gain_mean_{unit}_per_V",
        "power_mean_W",
        "settling_time_mean_s",
        "bandwidth_mean_Hz",
        f"sigma_out_mid_{unit}",
        f"{metric}_nominal",
        f"{metric}_chip_min",
        f"yield_target_{metric}",
        "chips",
        "draws",
        "simulation_s",
        "training_s",
        "evaluation_s",
    }
    estimated = [f"{metric}_mean", f"{metric}_{tail}", "yield", "energy_J", "latency_s"]
    if config.task.midpoint:
        estimated.append("noise_midpoint")
    if area_proxy(spec) is not None:
        columns |= {"area_um2", "area_network_um2"}
    for name in estimated:
        columns |= {name, f"{name}_ci_low", f"{name}_ci_high"}
    return columns


def check_columns(config: Any, spec: NeuronSpec) -> None:
    """:class:`ConfigError` naming an objective or selection column the run will not write."""
    from circuitnn.errors import ConfigError

    known = known_columns(config, spec)
    wanted = [(f"objective {o.text()}", o.column) for o in config.objectives]
    for selection in config.selections:
        wanted.append((f"selection {selection.name!r}", selection.column))
        wanted += [(f"selection {selection.name!r}", c.column) for c in selection.require]
    for where, column in wanted:
        if column not in known:
            hint = " (this neuron has no MOSFETs, so no area proxy)" if "area" in column else ""
            raise ConfigError(
                f"{where}: {column!r} is not a numeric column of the table{hint}; known: "
                f"{', '.join(sorted(known))}"
            )


def read_table(path: str | Path) -> Any:
    """A co-design (or sweep / campaign) CSV as a pandas DataFrame (needs pandas:
    ``pip install 'circuitnn[codesign]'``)."""
    try:
        import pandas
    except ImportError:
        from circuitnn.errors import ConfigError

        raise ConfigError(
            "reading the table needs pandas: pip install 'circuitnn[codesign]'"
        ) from None
    return pandas.read_csv(path, keep_default_na=True)
