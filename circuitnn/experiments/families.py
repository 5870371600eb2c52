"""The circuit families an experiment uses: extracted with noise once, then read from the store."""

from __future__ import annotations

from pathlib import Path

from circuitnn.extract.options import RunOptions
from circuitnn.extract.pipeline import extract_family
from circuitnn.family import Family
from circuitnn.spice.analyses import NoiseAnalysis

# instances per family: enough for chips of a few hundred distinct neurons / a test-sized run
FULL_INSTANCES = 600
QUICK_INSTANCES = 120
FAMILY_NOISE = NoiseAnalysis(bias_points=9, points_per_decade=4, bandwidth=1e6)


def circuit_families(
    neurons: tuple[str, ...] | list[str],
    store: str | Path,
    *,
    quick: bool = False,
    seed: int = 0,
    jobs: int = 1,
    instances: int | None = None,
    progress: bool = False,
) -> dict[str, Family]:
    """Families of ``neurons`` (built-in names or spec paths) with noise data, from ``store``.

    Missing families are simulated with ngspice first (``jobs`` worker processes) and cached in
    ``store``, so a second call runs nothing. ``instances`` overrides the Monte Carlo size
    (default :data:`QUICK_INSTANCES` when ``quick`` else :data:`FULL_INSTANCES`).
    """
    n = instances or (QUICK_INSTANCES if quick else FULL_INSTANCES)
    options = RunOptions(jobs=jobs, progress=progress)
    return {
        str(neuron): extract_family(
            neuron, n=n, seed=seed, store=store, options=options, noise=FAMILY_NOISE
        )
        for neuron in neurons
    }
