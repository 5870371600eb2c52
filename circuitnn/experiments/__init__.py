"""The studies' experiments, each a function returning an :class:`ExperimentResult` (imports torch).

``run_experiment("walking-noise", out="results/walking", quick=True)`` runs one by name; the CLI is
``circuitnn experiment NAME``. Every experiment runs ``replicates`` independent replicates, writes
its tables (CSV and JSON), PNG plots and a ``summary.md`` to its output folder, and decides each of
the source study's claims from effect sizes with confidence intervals over the replicates
(:class:`Finding`: the claim, its verdict — reproduced, contradicted or inconclusive —, the effects
and the numbers; the statistics are in :mod:`circuitnn.experiments.stats`). Every experiment runs
under :func:`circuitnn.nn.torch_threads` (one torch thread by default).
"""

from circuitnn._torch import require_torch

require_torch("circuitnn.experiments")


from circuitnn.experiments.registry import EXPERIMENTS, run_experiment
from circuitnn.experiments.result import ExperimentResult, Finding

__all__ = ["EXPERIMENTS", "ExperimentResult", "Finding", "run_experiment"]
