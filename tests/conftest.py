"""Shared fixtures. Every simulation in this suite runs the real ngspice; the fake programs
below stand in for it only where a fault of ngspice itself (a hang, a crash) is under test."""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under mutmut (a mutant's run: MUTANT_UNDER_TEST names it), the cheap tests first and each
    module's tests together (tests/mutant_order.py); any other run keeps pytest's order."""
    if "__mutmut_" not in os.environ.get("MUTANT_UNDER_TEST", ""):
        return
    stats = Path(__file__).resolve().parents[1] / "mutmut-stats.json"  # in mutants/
    if not stats.is_file():
        return
    from mutant_order import mutant_order

    seconds = json.loads(stats.read_text())["duration_by_test"]
    items[:] = mutant_order(items, seconds, {item.nodeid: _shared_fixtures(item) for item in items})


def _shared_fixtures(item: pytest.Item) -> frozenset[str]:
    """The suite's own fixtures of module or session scope that ``item`` needs."""
    definitions = getattr(item, "_fixtureinfo", None)
    if definitions is None:
        return frozenset()
    return frozenset(
        name
        for name, chain in definitions.name2fixturedefs.items()
        if chain and chain[-1].scope != "function" and chain[-1].baseid  # (pytest's own: "")
    )


@pytest.fixture(scope="session", autouse=True)
def _ngspice_replay() -> Iterator[None]:
    """With CIRCUITNN_NGSPICE_REPLAY (mutation runs: ``bash dev.sh mutants``), ngspice's runs
    are recorded there and replayed for the same input (tests/ngspice_replay.py); otherwise
    nothing changes."""
    folder = os.environ.get("CIRCUITNN_NGSPICE_REPLAY")
    program = shutil.which("ngspice")
    if not folder or program is None:
        yield
        return
    from ngspice_replay import replaying

    from circuitnn.spice import ngspice_process

    run = replaying(ngspice_process._run_with_deadline, Path(folder), program)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ngspice_process, "_run_with_deadline", run)
        yield


@pytest.fixture(autouse=True)
def _real_ngspice(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test inherits a CIRCUITNN_NGSPICE override from the environment."""
    monkeypatch.delenv("CIRCUITNN_NGSPICE", raising=False)


@pytest.fixture
def fake_ngspice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Path]:
    """Install a shell script as the ngspice program (CIRCUITNN_NGSPICE) for one test."""

    def install(body: str) -> Path:
        script = tmp_path / "fake-ngspice"
        script.write_text("#!/bin/sh\n" + body + "\n")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        monkeypatch.setenv("CIRCUITNN_NGSPICE", str(script))
        return script

    return install


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Run a module's torch tests on one thread (steady timings on a shared 2-core machine)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def quick_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding the quick-size families (with noise) of mos_diffpair and cmos_inverter,
    simulated once per test session by real ngspice; experiments' tests read it."""
    from circuitnn.experiments.families import circuit_families

    store = tmp_path_factory.mktemp("families") / "families.h5"
    circuit_families(("mos_diffpair", "cmos_inverter"), store, quick=True, seed=0)
    return store


@pytest.fixture(params=[1, 2], ids=["1 thread", "2 threads"])
def torch_threads(request):
    """Run the test with this many torch threads (torch imported only by the tests that use it)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


@pytest.fixture(params=["compiled", "torch"], ids=["compiled lookup", "torch lookup"])
def lookup_backend(request, monkeypatch):
    """Run the test with the layers' lookup on the compiled kernel (built here if the setup did
    not build it) and on torch's operations (``CIRCUITNN_LOOKUP``)."""
    from circuitnn.nn import kernel

    if request.param == "compiled":
        kernel.build()
    monkeypatch.setenv("CIRCUITNN_LOOKUP", request.param)
    assert kernel.backend() == request.param, kernel.why_not()
    return request.param
