"""Running the main job: the stages in order, one console line each, then the report."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from circuitnn.errors import ConfigError
from circuitnn.job.config import STAGES, MainJobConfig, check_families

Say = Callable[[str], None]


def _print(line: str) -> None:
    print(line, flush=True)


def run_main_job(
    config: MainJobConfig,
    out: str | Path,
    *,
    options: Any = None,
    say: Say = _print,
    progress: bool = False,
) -> Path:
    """Run the whole pipeline into folder ``out`` and return the Markdown report's path.

    ``options``: a :class:`~circuitnn.extract.options.RunOptions` for the ngspice extraction (jobs,
    chunk size, engine, timeout; default: all cores, no progress bar); ``say`` receives one line
    per stage (default: print); ``progress`` shows a bar over the training epochs (default:
    quiet). Raises ConfigError for bad settings or an unusable dataset, before anything runs.
    """
    _require(config)
    from circuitnn.extract.options import RunOptions

    check_families(config)
    from circuitnn.job import stages_eval, stages_train
    from circuitnn.job.report import python_command, settings_section, write_report
    from circuitnn.nn import torch_threads

    options = options if options is not None else RunOptions(jobs=-1, progress=False)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = (os.cpu_count() or 1) if options.jobs == -1 else options.jobs
    began = time.perf_counter()
    say(
        f"circuitnn run: main job → {out}/ ({len(config.families)} "
        f"famil{'y' if len(config.families) == 1 else 'ies'} × {config.n} "
        f"instances, {config.dataset}, hidden {list(config.widths)}, seed {config.seed}, "
        f"{jobs} ngspice job(s), {config.threads} torch thread(s))"
    )
    timings: dict[str, float] = {}
    clock = _Clock(say, timings)
    with clock("families"):
        families = stages_train.families_stage(config, out, options, clock.note)
    with torch_threads(config.threads):
        with clock("training"):
            trained = stages_train.training_stage(config, out, families, clock.note, progress)
        with clock("robustness"):
            robustness = stages_eval.robustness_stage(config, out, trained, clock.note)
        with clock("midpoints"):
            midpoints = stages_eval.midpoints_stage(config, out, trained, clock.note)
        with clock("chips"):
            chips = stages_eval.chips_stage(config, out, trained, clock.note)
        with clock("retraining"):
            retraining = stages_eval.retraining_stage(config, out, trained, clock.note, progress)
    with clock("codesign"):
        codesign = _codesign(config, out, options, clock.note)
    with clock("report"):
        found = stages_eval.findings(trained, chips, retraining, midpoints)
        settings = settings_section(
            config,
            out,
            timings=dict(timings),
            jobs=jobs,
            families=families.families,
            command=python_command(),
        )
        sections = [
            families.result,
            trained.result,
            robustness,
            midpoints,
            chips,
            retraining,
            *codesign,
            settings,
        ]
        headline = stages_eval.headline(config, trained, chips, retraining)
        report = write_report(config, out, sections, findings=found, headline=headline)
        tables = sum(len(section.tables) for section in sections)
        figures = sum(len(section.figures) for section in sections)
        clock.note(
            f"{len(sections)} sections, {tables} tables, {figures} figures"
            + ("; report.md + report.html" if config.html else "; report.md")
        )
    say(f"report: {report}")
    say(f"done in {time.perf_counter() - began:.1f} s")
    return report


def _codesign(config: MainJobConfig, out: Path, options: Any, note: Callable[[str], None]) -> list:
    """The co-design section (none when ``codesign_size`` is ``"off"``)."""
    if config.codesign_size == "off":
        note('off (codesign_size = "off")')
        return []
    from circuitnn.job.stages_codesign import codesign_stage

    return [codesign_stage(config, out, options, note, config.codesign_size == "quick")]


def _require(config: MainJobConfig) -> None:
    """ConfigError (before anything is simulated) if PyTorch, scikit-learn or ase is missing."""
    import importlib.util

    needed = {"torch": "PyTorch"}
    if config.dataset in ("digits", "diabetes"):
        needed["sklearn"] = "scikit-learn (for the bundled data sets)"
    missing = [name for module, name in needed.items() if importlib.util.find_spec(module) is None]
    if config.dataset == "g2-zpe" and importlib.util.find_spec("ase") is None:
        raise ConfigError(
            "dataset g2-zpe needs ase (its molecules and zero-point energies): "
            "pip install 'circuitnn[materials]'"
        )
    if missing:
        raise ConfigError(
            f"the main job needs {' and '.join(missing)}: pip install 'circuitnn[torch]' "
            "(CPU build first: pip install torch==2.13.0), or run scripts/setup.sh"
        )


class _Clock:
    """Times each stage and prints one line per stage when it ends: ``[i/N] name  note (s)``."""

    def __init__(self, say: Say, timings: dict[str, float]) -> None:
        self._say = say
        self._timings = timings
        self._notes: list[str] = []
        self._name = ""

    def note(self, text: str) -> None:
        """Add ``text`` to the current stage's line."""
        self._notes.append(text)

    def __call__(self, name: str) -> _Clock:
        self._name = name
        return self

    def __enter__(self) -> _Clock:
        self._notes = []
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        seconds = time.perf_counter() - self._started
        self._timings[self._name] = seconds
        if exc[0] is None:
            index = STAGES.index(self._name) + 1
            text = "; ".join(self._notes)
            self._say(f"[{index}/{len(STAGES)}] {self._name:<11s} {text} ({seconds:.1f} s)")
