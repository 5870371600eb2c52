"""Running a campaign: every grid point's family under one progress bar; the per-point summary."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from circuitnn.campaign.file import (
    SUMMARY,
    Campaign,
    CampaignResult,
    PointSummary,
    load_campaign,
    options,
)
from circuitnn.errors import ConfigError


def run_campaign(
    campaign: Campaign | str | Path,
    *,
    store: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    out: str | Path = "output",
) -> CampaignResult:
    """Run every point of a campaign (a :class:`Campaign` or a campaign file) into one store.

    ``store`` overrides the file's (default ``OUT/families.h5``); ``overrides`` replace
    ``[campaign.run]`` settings (``jobs``, ``backend``, ``progress`` …). Points already in the
    store are not simulated again. Returns the per-point summary (:func:`summary_table`).
    """
    from circuitnn.campaign.sweep import iterate_sweep
    from circuitnn.neuron.builtin import get_neuron
    from circuitnn.store import Store

    if not isinstance(campaign, Campaign):
        campaign = load_campaign(campaign)
    try:
        run_options = options(campaign, overrides)
    except (ConfigError, TypeError) as error:
        raise ConfigError(f"{campaign.source}: [campaign.run] {error}") from None
    target = Store(store or campaign.store or Path(out) / "families.h5")
    spec = get_neuron(campaign.neuron, allow_control=campaign.allow_control)
    from circuitnn.campaign.table import point_row

    began = time.perf_counter()
    summaries, rows = [], []
    for point in iterate_sweep(
        spec,
        campaign.grid,
        campaign.n,
        campaign.seed,
        store=target,
        options=run_options,
        chip_size=campaign.chip_size,
        corner=campaign.corner,
        temperature=campaign.temperature,
        noise=campaign.noise,
        speed=campaign.speed,
        arrays=False,
    ):
        summaries.append(summarize(point.point, point.family, point.seconds))
        rows.append(point_row(len(rows), spec, point.point, point.family, point.seconds))
    return CampaignResult(campaign, target.path, summaries, time.perf_counter() - began, rows)


def summarize(point: dict[str, float], family: Any, seconds: float) -> PointSummary:
    """The summary of one point's family (works on a family loaded without its big arrays)."""
    stats = family.summary()
    sigma = None
    noise = getattr(family, "noise", None)
    if noise is not None:
        middle = noise.sigma[noise.status == 1, len(noise.bias) // 2]
        middle = middle[np.isfinite(middle)]
        sigma = float(np.mean(middle)) if len(middle) else float("nan")
    return PointSummary(
        point=dict(point),
        key=family.key,
        instances=family.n,
        failed=len(family.failed),
        seconds=seconds,
        descriptors={
            name: (stats[name]["mean"], stats[name]["std"]) for name in SUMMARY if name in stats
        },
        output_unit=family.output_unit,
        sigma=sigma,
    )


def summary_table(result: CampaignResult) -> str:
    """The per-point summary: point, instances, failed, seconds, descriptors (mean ± std)."""
    points = result.points
    labels = [", ".join(f"{k}={v:g}" for k, v in p.point.items()) for p in points]
    width = max([len("point"), *map(len, labels)])
    unit = points[0].output_unit if points else ""
    columns = [
        f"swing [{unit}]",
        "midpoint [V]",
        f"gain [{unit}/V]",
        "mean_power [W]",
    ]
    noisy = any(p.sigma is not None for p in points)
    if noisy:
        columns.append(f"σ_out mid [{unit}]")
    header = f"{'point':<{width}}  {'inst':>6}  {'failed':>6}  {'s':>7}  " + "  ".join(
        f"{c:>21}" for c in columns
    )
    lines = [header, "-" * len(header)]
    for label, p in zip(labels, points, strict=True):
        cells = [_mean_std(*p.descriptors.get(name, (np.nan, np.nan))) for name in SUMMARY]
        if noisy:
            cells.append(f"{p.sigma:>21.4g}" if p.sigma is not None else f"{'-':>21}")
        lines.append(
            f"{label:<{width}}  {p.instances:>6d}  {p.failed:>6d}  {p.seconds:>7.1f}  "
            + "  ".join(cells)
        )
    rate = result.instances / result.seconds if result.seconds > 0 else float("nan")
    lines.append(
        f"{len(points)} points, {result.instances} instances "
        f"({', '.join(result.campaign.analyses)}) in {result.seconds:.1f} s "
        f"({rate:.1f} instances/s); store: {result.store}"
    )
    return "\n".join(lines)


def _mean_std(mean: float, std: float) -> str:
    return f"{mean:>10.4g} ± {std:<8.3g}"


def write_json(result: CampaignResult, path: str | Path) -> Path:
    """Write the summary as JSON (NaN as null)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_plain(result.to_json()), indent=2))
    return path


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
