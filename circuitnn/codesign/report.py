"""The co-design's summary page (``OUT/summary.md``) and ``OUT/result.json``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from circuitnn.experiments.result import markdown_table

ENERGY_NOTE = (
    "Energy per inference = Σ over hidden layers of (slowest neuron's settling time × the "
    "layer's summed static power), latency = Σ of those settling times, per chip from the "
    "simulated instances its neurons are (static power: each instance's mean over its input "
    "sweep; settling: its full-range input step to 2 %). Not counted: the weights and their "
    "drivers, input DACs, output ADCs, the linear readout, bias generation outside the neuron's "
    "netlist, idle leakage, and charging energy beyond the static supply current during settling."
)
AREA_NOTE = (
    "Area proxy = Σ W·L·M over the MOSFETs (M lines) of the neuron's .subckt at the design "
    "point's nominal values; resistors, capacitors, diodes, BJTs and nested subcircuits are not "
    "counted. The network's area multiplies it by the hidden neurons."
)


def headline_columns(result: Any) -> list[str]:
    """The columns the summary's tables show: settings, then the main metrics."""
    metric = result.metric
    tail = "p5" if metric == "accuracy" else "p95"
    settings = [c for c in result.columns.values() if c in result.rows[0]]
    wanted = [
        *settings,
        f"{metric}_nominal",
        f"{metric}_mean",
        f"{metric}_{tail}",
        "yield",
        "noise_midpoint",
        "energy_J",
        "latency_s",
        "area_um2",
        "midpoint_sigma_V",
    ]
    return [c for c in wanted if c in result.rows[0]]


def short_rows(result: Any, indices: list[int]) -> list[dict[str, Any]]:
    """Rows ``indices`` with the headline columns, each value with its 95 % interval."""
    columns = headline_columns(result)
    rows = []
    for index in indices:
        row = result.rows[index]
        shown: dict[str, Any] = {"point": row["point"]}
        for column in columns:
            value = row[column]
            low, high = row.get(f"{column}_ci_low"), row.get(f"{column}_ci_high")
            if isinstance(low, float) and isinstance(high, float) and math.isfinite(low):
                shown[column] = f"{value:.4g} [{low:.4g}, {high:.4g}]"
            else:
                shown[column] = value
        rows.append(shown)
    return rows


def selection_lines(result: Any) -> list[str]:
    """One line per selection: the row it chose, or that no design met its constraints."""
    lines = []
    for selection in result.config.selections:
        index = result.chosen[selection.name]
        needs = " and ".join(c.text() for c in selection.require) or "no constraint"
        if index is None:
            lines.append(f"- **{selection.name}** ({needs}, {selection.goal}): no design meets it")
            continue
        row = result.rows[index]
        settings = ", ".join(f"{c} = {row[c]:.4g}" for c in result.columns.values() if c in row)
        lines.append(
            f"- **{selection.name}** ({needs}, {selection.goal}): point {row['point']} "
            f"({settings}): {selection.column} = {row[selection.column]:.4g}"
        )
    return lines


def write_summary(result: Any) -> Path:
    """Write ``summary.md`` (front, selections, notes) and ``result.json``; return summary.md."""
    config = result.config
    out = result.out
    out.mkdir(parents=True, exist_ok=True)
    objectives = ", ".join(o.text() for o in config.objectives)
    lines = [
        f"# Co-design: {config.neuron}",
        "",
        f"{len(result.rows)} design points ({config.n} Monte Carlo instances each, seed "
        f"{config.seed}); network hidden {list(config.task.widths)} on `{config.task.dataset}`, "
        f"judged on {config.task.chips} chips × {config.task.draws} noise draws; yield: a chip "
        f"keeps {100 * config.yield_fraction:g} % of the nominal {result.metric}. Intervals "
        "are 95 % (bootstrap over chips; Wilson for the yield).",
        "",
        "## Chosen designs",
        "",
        *selection_lines(result),
        "",
        f"## Pareto front ({objectives})",
        "",
        markdown_table(short_rows(result, result.front)) if result.front else "(empty)",
        "",
        f"Every point: `{result.table.name}` (one row per design point; "
        "`pandas.read_csv` loads it).",
        "",
        ENERGY_NOTE,
        "",
        AREA_NOTE,
        "",
    ]
    for name, path in result.figures.items():
        lines += [f"![{name}]({Path(path).relative_to(out).as_posix()})", ""]
    page = out / "summary.md"
    page.write_text("\n".join(lines))
    document = {
        "neuron": config.neuron,
        "objectives": [o.text() for o in config.objectives],
        "front": result.front,
        "chosen": result.chosen,
        "table": str(result.table),
        "figures": {name: str(path) for name, path in result.figures.items()},
        "points": len(result.rows),
    }
    (out / "result.json").write_text(json.dumps(document, indent=1) + "\n")
    return page
