"""Experiments by name, for ``circuitnn experiment NAME`` and :func:`run_experiment`."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from circuitnn.errors import ConfigError
from circuitnn.experiments.result import ExperimentResult

# name → module; each module's ``run(out, *, quick, seed, store, jobs, **options)`` does the work
EXPERIMENTS: dict[str, str] = {
    "inhomogeneity": "circuitnn.experiments.inhomogeneity",
    "propagation": "circuitnn.experiments.propagation",
    "walking-noise": "circuitnn.experiments.walking_noise",
    "parameter-robustness": "circuitnn.experiments.parameter_robustness",
}


def run_experiment(
    name: str,
    out: str | Path,
    *,
    quick: bool = False,
    seed: int = 0,
    store: str | Path | None = None,
    jobs: int = 1,
    **options: Any,
) -> ExperimentResult:
    """Run experiment ``name`` writing into ``out``; ``quick`` is the reduced size used by tests.

    ``store``: the HDF5 store holding (or receiving) the circuit families it needs (default
    ``OUT/families.h5``); ``jobs``: ngspice worker processes for any extraction it needs.
    """
    if name not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}")
    runner = importlib.import_module(EXPERIMENTS[name]).run
    out = Path(out)
    result: ExperimentResult = runner(
        out,
        quick=quick,
        seed=seed,
        store=Path(store) if store else out / "families.h5",
        jobs=jobs,
        **options,
    )
    result.write()
    return result
