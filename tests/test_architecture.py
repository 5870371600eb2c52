"""The layering rules of docs/architecture.md, checked on every import statement of the package
(module level and inside functions) by reading the source with ``ast``: a forbidden edge fails
with the rule it breaks."""

from __future__ import annotations

import ast
import importlib
import sys
import warnings
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "circuitnn"

# the rooms of the house, in the order of the flow; "base" is the shared vocabulary
# (errors, Family, TOML reading, lazy-import helpers) that every room may use
BASE = {"errors", "family", "toml_file", "_lazy", "_moved", "_torch", "_matplotlib", "_version"}
ALLOWED: dict[str, set[str]] = {
    "base": set(),
    "neuron": {"base"},
    "spice": {"base", "neuron"},
    "store": {"base"},
    "extract": {"base", "neuron", "spice", "store"},
    "campaign": {"base", "neuron", "spice", "store", "extract"},
    "nn": {"base"},
    "data": {"base", "store"},
    "train": {"base", "nn", "data"},
    "evaluate": {"base", "nn", "data", "train"},
    "experiments": {
        "base",
        "neuron",
        "spice",
        "campaign",
        "store",
        "extract",
        "nn",
        "data",
        "train",
        "evaluate",
    },
    "codesign": {
        "base",
        "neuron",
        "spice",
        "store",
        "extract",
        "campaign",
        "nn",
        "data",
        "train",
        "evaluate",
        "experiments",
    },
    "job": {
        "base",
        "neuron",
        "spice",
        "store",
        "extract",
        "nn",
        "data",
        "train",
        "evaluate",
        "experiments",
        "campaign",
        "codesign",
    },
    "cli": {
        "base",
        "neuron",
        "spice",
        "store",
        "extract",
        "campaign",
        "nn",
        "data",
        "train",
        "evaluate",
        "experiments",
        "codesign",
        "job",
    },
    "top": {"base", "cli"},  # circuitnn/__init__.py and __main__.py
}
# third-party packages only one room may import (the rule, and the rooms allowed)
OWNED = {
    "subprocess": (
        "only circuitnn.spice starts ngspice (and circuitnn.nn.kernel the C++ compiler)",
        {"spice", "nn"},
    ),
    "PySpice": ("only circuitnn.spice talks to libngspice", {"spice"}),
    "h5py": ("only circuitnn.store touches HDF5", {"store"}),
    "hdf5plugin": ("only circuitnn.store touches HDF5", {"store"}),
    "joblib": ("only circuitnn.extract.parallel runs worker processes", {"extract"}),
    "distributed": ("only circuitnn.extract.parallel runs worker processes", {"extract"}),
    "ray": ("only circuitnn.extract.parallel runs worker processes", {"extract"}),
    "optuna": ("only circuitnn.codesign runs the design search", {"codesign"}),
    "pandas": ("only circuitnn.codesign reads tables back as DataFrames", {"codesign"}),
    "torch": (
        "the simulation side runs without PyTorch",
        {"base", "nn", "train", "evaluate", "data", "experiments", "codesign", "job"},
    ),
}
# deliberate exceptions, each with its reason and the release that removes it
EXCEPTIONS = {
    ("nn", "circuitnn.nn._deprecated", "store"): "deprecated selector strings (removed in 0.3)",
}


def _room(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ("__main__",):
        return "top"
    return "base" if parts[1] in BASE else parts[1]


def _modules(package: Path = PACKAGE) -> list[tuple[str, Path]]:
    found = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package.parent).with_suffix("")
        parts = list(relative.parts)
        if parts[-1] == "__init__":
            parts.pop()
        found.append((".".join(parts), path))
    return found


def _imports(module: str, path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target == "circuitnn":  # from circuitnn import x: x is a submodule or a name
                names += [(node.lineno, f"circuitnn.{alias.name}") for alias in node.names]
            else:
                names.append((node.lineno, target))
    return names


def _violations(package: Path = PACKAGE) -> list[str]:
    problems = []
    for module, path in _modules(package):
        room = _room(module)
        for line, target in _imports(module, path):
            top = target.split(".")[0]
            where = f"{path.relative_to(package.parent)}:{line} imports {target}"
            if top == "circuitnn":
                other = _room(target)
                if other == room or other in ALLOWED[room]:
                    continue
                if (room, module, other) in EXCEPTIONS:
                    continue
                problems.append(
                    f"{where}: circuitnn.{room} may import only "
                    f"{', '.join(sorted(ALLOWED[room])) or 'nothing of circuitnn'} "
                    f"(not circuitnn.{other}; see docs/architecture.md)"
                )
            elif top in OWNED:
                rule, rooms = OWNED[top]
                if room not in rooms and (room, module, top) not in EXCEPTIONS:
                    problems.append(f"{where}: {rule}")
    return problems


def test_every_import_follows_the_layering_rules() -> None:
    problems = _violations()
    assert not problems, "\n".join(problems)


def test_the_checker_catches_forbidden_edges(tmp_path: Path) -> None:
    """The checker itself, on a small package: an upward import (the store importing the
    extraction), a layer reaching into the store (nn) and h5py outside the store are each named
    with their rule; allowed edges pass."""
    package = tmp_path / "circuitnn"
    files = {
        "store/writers.py": "def f():\n    from circuitnn.extract.pipeline import extract_family\n",
        "nn/layer.py": "from circuitnn.store import Store\nimport h5py\n",
        "extract/run.py": "from circuitnn.store import Store\nfrom circuitnn.neuron import x\n",
    }
    for name, text in files.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    problems = _violations(package)
    assert len(problems) == 3, problems
    assert "circuitnn/store/writers.py:2 imports circuitnn.extract.pipeline" in problems[2]
    assert "circuitnn.store may import only base" in problems[2]
    assert any("nn/layer.py:1" in p and "not circuitnn.store" in p for p in problems)
    assert any(
        "nn/layer.py:2 imports h5py: only circuitnn.store touches HDF5" in p for p in problems
    )


def test_every_room_is_a_known_package() -> None:
    rooms = {_room(module) for module, _ in _modules()}
    assert rooms <= set(ALLOWED), rooms - set(ALLOWED)


OLD_PATHS = {
    "circuitnn.pipeline": ("extract_family", "circuitnn.extract.pipeline"),
    "circuitnn.spec": ("load_spec", "circuitnn.neuron.spec_file"),
    "circuitnn.variation": ("MonteCarlo", "circuitnn.neuron.variation"),
    "circuitnn.analyses": ("NoiseAnalysis", "circuitnn.spice.analyses"),
    "circuitnn.main_job": ("MainJobConfig", "circuitnn.job.config"),
    "circuitnn.simulate": ("OK", "circuitnn.family"),
}


@pytest.mark.parametrize("old", sorted(OLD_PATHS))
def test_old_import_paths_still_work_with_a_deprecation_warning(old: str) -> None:
    name, new = OLD_PATHS[old]
    sys.modules.pop(old, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
        value = getattr(module, name)
    assert value is getattr(importlib.import_module(new), name)
    messages = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
    assert any(old in text and "moved to" in text for text in messages), messages
