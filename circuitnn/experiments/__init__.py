"""The studies' experiments, each a function returning an :class:`ExperimentResult` (imports torch).

``run_experiment("walking-noise", out="results/walking", quick=True)`` runs one by name; the CLI is
``circuitnn experiment NAME``. Every experiment writes its tables (CSV and JSON), PNG plots and a
``summary.md`` to its output folder, and checks the source study's findings against its own numbers
(:class:`Finding`: the claim, whether it held, the numbers).
"""

from circuitnn._torch import require_torch

require_torch("circuitnn.experiments")


from circuitnn.experiments.registry import EXPERIMENTS, run_experiment
from circuitnn.experiments.result import ExperimentResult, Finding

__all__ = ["EXPERIMENTS", "ExperimentResult", "Finding", "run_experiment"]
