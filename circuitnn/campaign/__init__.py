"""Design sweeps and campaign files: one family per grid point, resumable, on any backend.

Stage 5 of the flow (see ``docs/architecture.md``): builds on :mod:`circuitnn.extract`.
:mod:`~circuitnn.campaign.sweep` (grids and :func:`sweep_families`), :mod:`~circuitnn.campaign.file`
(reading and checking a campaign TOML), :mod:`~circuitnn.campaign.run` (running it, the summary).
"""

from __future__ import annotations

from circuitnn._lazy import lazy_exports

_EXPORTS = {
    "Campaign": "file",
    "CampaignResult": "file",
    "PointSummary": "file",
    "is_campaign": "file",
    "load_campaign": "file",
    "options": "file",
    "run_campaign": "run",
    "summarize": "run",
    "summary_table": "run",
    "write_json": "run",
    "SweepPoint": "sweep",
    "apply_point": "sweep",
    "check_grid": "sweep",
    "grid_points": "sweep",
    "iterate_sweep": "sweep",
    "parse_grid": "sweep",
    "sweep_families": "sweep",
    "plot_sweep": "plots",
    "point_row": "table",
    "write_table": "table",
}
__all__ = list(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
