"""Experiments by name, for ``circuitnn experiment NAME`` and :func:`run_experiment`."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import torch

from circuitnn.errors import ConfigError
from circuitnn.experiments.result import ExperimentResult
from circuitnn.nn import torch_threads

# name → module; each module's ``run(out, *, quick, seed, store, jobs, replicates, **options)``
# does the work and its ``REPLICATES`` gives the default replicate counts (quick, full)
EXPERIMENTS: dict[str, str] = {
    "inhomogeneity": "circuitnn.experiments.inhomogeneity",
    "propagation": "circuitnn.experiments.propagation",
    "walking-noise": "circuitnn.experiments.walking_noise",
    "parameter-robustness": "circuitnn.experiments.parameter_robustness",
    "gpr-activations": "circuitnn.experiments.gpr_activations",
}
MAX_REPLICATES = 1000


def default_replicates(name: str, quick: bool = False) -> int:
    """The replicates experiment ``name`` runs unless told otherwise."""
    module = importlib.import_module(_module(name))
    quick_count, full_count = module.REPLICATES
    return int(quick_count if quick else full_count)


def _module(name: str) -> str:
    if name not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]


def run_experiment(
    name: str,
    out: str | Path,
    *,
    quick: bool = False,
    seed: int = 0,
    store: str | Path | None = None,
    jobs: int = 1,
    replicates: int | None = None,
    threads: int = 1,
    **options: Any,
) -> ExperimentResult:
    """Run experiment ``name`` writing into ``out``; ``quick`` is the reduced size used by tests.

    ``replicates``: independent repetitions (seeds ``seed``, ``seed + 1``, …: new data split,
    initial weights, chips and noise draws) every finding's confidence interval is computed over
    (at least 2; default: the experiment's, see :func:`default_replicates`); ``store``: the HDF5
    store holding (or receiving) the circuit families it needs (default ``OUT/families.h5``);
    ``jobs``: ngspice worker processes for any extraction it needs; ``threads``: torch (and BLAS)
    threads while it runs (:func:`~circuitnn.nn.torch_threads`; 1 is fastest for these small
    networks).
    """
    module = importlib.import_module(_module(name))
    count = default_replicates(name, quick) if replicates is None else replicates
    if isinstance(count, bool) or not isinstance(count, int) or not 2 <= count <= MAX_REPLICATES:
        raise ConfigError(
            f"{name}: replicates must be an integer from 2 (an interval needs two) to "
            f"{MAX_REPLICATES}, got {replicates!r}"
        )
    out = Path(out)
    with torch_threads(threads):
        result: ExperimentResult = module.run(
            out,
            quick=quick,
            seed=seed,
            store=Path(store) if store else out / "families.h5",
            jobs=jobs,
            replicates=count,
            **options,
        )
        result.config["torch_threads"] = torch.get_num_threads()
    result.write()
    return result
