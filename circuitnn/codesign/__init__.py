"""Co-design: which circuit should my network use? Accuracy, yield, energy, latency and area over
a design space of a neuron, with uncertainty, as a Pareto front.

Above the simulation side and the PyTorch side (see ``docs/architecture.md``): for every design
point, :mod:`circuitnn.extract` gives the family (cached, resumable, parallel), :mod:`circuitnn.nn`
/ :mod:`circuitnn.train` / :mod:`circuitnn.evaluate` the network trained on its nominal curves and
judged over Monte Carlo chips. ``config`` (settings), ``config_file`` (reading a ``[codesign]``
TOML file), ``space`` (design points, units, the area proxy), ``metrics`` (statistics, energy and
latency), ``point`` (one point's network, torch), ``search`` (Optuna), ``front`` (Pareto front,
selections), ``table`` (the CSV), ``run`` (:func:`run_codesign`), ``plots`` and ``report``.
"""

from __future__ import annotations

from circuitnn._lazy import lazy_exports

_EXPORTS = {
    "CodesignConfig": "config",
    "TaskSettings": "config",
    "SearchSpace": "config",
    "Selection": "config",
    "Condition": "config",
    "Objective": "config",
    "config_from_dict": "config_file",
    "load_codesign": "config_file",
    "CodesignResult": "run",
    "run_codesign": "run",
    "area_proxy": "space",
    "pareto_mask": "front",
    "select": "front",
    "read_table": "table",
}
__all__ = list(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
