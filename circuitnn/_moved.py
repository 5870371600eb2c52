"""Old import paths of the simulation side (before the packages of circuitnn 0.2), kept for one
release: ``import circuitnn.pipeline`` still works, with a :class:`DeprecationWarning` naming the
new home. Each old module is an alias whose attributes come from its new module(s).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings
from typing import Any

# old module (under circuitnn.) -> its new modules, searched in order for each attribute
MOVED: dict[str, tuple[str, ...]] = {
    "units": ("neuron.units",),
    "netlist": ("neuron.netlist", "neuron.safety"),
    "spec": ("neuron.spec", "neuron.spec_file"),
    "circuits": ("neuron.builtin",),
    "variation": ("neuron.variation",),
    "testbench": ("spice.benches", "spice.bench_results"),
    "analyses": ("spice.analyses",),
    "simulate": ("extract.dc_chunk", "extract.isolation", "family"),
    "simulate_analyses": ("extract.analysis_chunks",),
    "pipeline": ("extract.pipeline", "extract.options", "extract.sinks"),
    "analysis_pipeline": ("extract.noise", "extract.speed", "extract.analysis_rows"),
    "noise": ("extract.spectra",),
    "speed": ("extract.response",),
    "journaled": ("extract.journaled",),
    "parallel": ("extract.parallel", "extract.clusters"),
    "plots": ("extract.plots", "campaign.plots"),
    "sweep": ("campaign.sweep",),
    "main_job": ("job.config", "job.run"),
    "main_stages": ("job.stages_train", "job.stages_eval"),
    "main_report": ("job.report",),
    "main_plots": ("job.plots",),
}
REMOVED_IN = "0.3"


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, targets: tuple[str, ...]) -> None:
        self.targets = tuple(f"circuitnn.{target}" for target in targets)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = types.ModuleType(spec.name)
        targets = self.targets

        def __getattr__(name: str) -> Any:
            for target in targets:
                found = importlib.import_module(target)
                if hasattr(found, name):
                    return getattr(found, name)
            raise AttributeError(f"module {spec.name!r} has no attribute {name!r}")

        module.__getattr__ = __getattr__  # type: ignore[method-assign]
        module.__doc__ = f"Deprecated alias of {', '.join(targets)}."
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        warnings.warn(
            f"{module.__name__} moved to {' and '.join(self.targets)}; the old import path "
            f"will be removed in circuitnn {REMOVED_IN} (see docs/architecture.md)",
            DeprecationWarning,
            stacklevel=2,
        )


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        head, _, tail = fullname.partition(".")
        if head != "circuitnn" or tail not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(MOVED[tail]))


def install() -> None:
    """Put the finder of the old paths on ``sys.meta_path`` (once)."""
    if not any(isinstance(finder, _MovedFinder) for finder in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
