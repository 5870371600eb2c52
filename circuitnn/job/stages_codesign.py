"""The main job's co-design stage: a small design space of the built-in differential pair, its
Pareto front and the best design under the yield constraint (see :mod:`circuitnn.codesign`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from circuitnn.codesign.config import CodesignConfig, TaskSettings
from circuitnn.experiments.result import ExperimentResult
from circuitnn.job.config import MainJobConfig
from circuitnn.job.stages_train import Note

NEURON = "mos_diffpair"
# tail current (energy) against channel length (area, and mismatch by Pelgrom)
GRID = {"l": ("0.15u", "0.6u"), "ibias": ("2.5u", "20u")}
QUICK_GRID = {"l": ("0.15u", "0.6u"), "ibias": ("2.5u",)}  # a smoke run: two families


def codesign_config(config: MainJobConfig, quick: bool) -> CodesignConfig:
    """The default design space at the main job's seed and data set (smaller when ``quick``)."""
    task = TaskSettings(
        dataset=config.dataset,
        widths=(8,) if quick else (16,),
        epochs=4 if quick else 10,
        batch_size=config.batch_size,
        lr=config.lr,
        chips=8 if quick else 16,
        draws=2 if quick else 4,
        validation_fraction=config.validation_fraction,
        test_fraction=config.test_fraction,
    )
    return CodesignConfig(
        neuron=NEURON,
        n=60 if quick else 120,
        seed=config.seed,
        grid=dict(QUICK_GRID if quick else GRID),
        task=task,
    )


def codesign_stage(
    config: MainJobConfig, out: Path, options: Any, note: Note, quick: bool
) -> ExperimentResult:
    """Run the default co-design into ``OUT/codesign/design`` and make its report section. Its
    families go to a store of their own, ``OUT/codesign/families.h5``: in the main job's store
    five ``mos_diffpair`` families would make the name ambiguous for ``Store.load``."""
    from circuitnn.codesign.report import AREA_NOTE, ENERGY_NOTE, selection_lines, short_rows
    from circuitnn.codesign.run import run_codesign

    design = codesign_config(config, quick)
    folder = out / "codesign"
    result = run_codesign(design, folder / "design", store=folder / "families.h5", options=options)
    task = design.task
    space = QUICK_GRID if quick else GRID
    grid = " × ".join(f"{name} ∈ {{{', '.join(values)}}}" for name, values in space.items())
    section = ExperimentResult(
        "Co-design",
        folder,
        {"neuron": NEURON, "grid": space, "n": design.n, "seed": design.seed, **vars(task)},
        tables={
            "front": short_rows(result, result.front),
            "points": short_rows(result, list(range(len(result.rows)))),
        },
        figures=dict(result.figures),
        summary=[
            f"Which `{NEURON}` should the network use? Design space {grid} (channel length: "
            "area and, by Pelgrom, mismatch; tail current: power), "
            f"{design.n} Monte Carlo instances per point with noise and speed. At each point an "
            f"MLP (hidden {list(task.widths)}) of that circuit is trained on its nominal curves "
            f"and judged on {task.chips} chips × {task.draws} noise draws. Intervals are 95 %.",
            "",
            *selection_lines(result),
            "",
            f"Every point, every setting and metric: `{result.table.relative_to(out)}` "
            "(one row per design point, `pandas.read_csv` loads it); `circuitnn codesign "
            "FILE.toml` runs your own design space (`examples/codesign.toml`).",
            "",
            ENERGY_NOTE,
            "",
            AREA_NOTE,
        ],
    )
    front = ", ".join(str(result.rows[i]["point"]) for i in result.front)
    chosen = next(iter(result.chosen.values()))
    pick = "none meets the yield" if chosen is None else f"point {chosen}"
    note(
        f"{len(result.rows)} points of {NEURON} ({', '.join(space)}): front {front}; "
        f"lowest energy at yield ≥ 0.95: {pick}"
        + (f" ({result.simulated} simulated)" if result.simulated else "")
    )
    return section
