"""Shared fixtures. Every simulation in this suite runs the real ngspice; the fake programs
below stand in for it only where a fault of ngspice itself (a hang, a crash) is under test."""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


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
