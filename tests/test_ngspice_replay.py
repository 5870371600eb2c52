"""The replay of recorded ngspice runs that mutation runs use (tests/ngspice_replay.py): a
replayed run gives the files and output of the real run, and only a real run's are recorded."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from ngspice_replay import Runner, replaying

from circuitnn.errors import SimulationTimeout
from circuitnn.spice import ngspice_process

NETLIST = """* divider
v1 in 0 DC 1
r1 in out 1k
r2 out 0 3k
.dc v1 0 1 0.5
.end
"""
REAL = ngspice_process._run_with_deadline


def _program() -> str:
    program = shutil.which("ngspice")
    assert program is not None
    return program


def _counted(calls: list[str]) -> Runner:
    def run(command, folder, env, timeout, what):  # type: ignore[no-untyped-def]
        calls.append(what)
        return REAL(command, folder, env, timeout, what)

    return run


def _batch(
    monkeypatch: pytest.MonkeyPatch, runner: Runner, netlist: str = NETLIST, timeout: float = 60.0
) -> tuple[str, bytes]:
    """One ``ngspice -b -r`` run of ``netlist`` through ``runner`` in a new run folder: its log
    (the folder named ``<run>``) and its raw file."""
    monkeypatch.setattr(ngspice_process, "_run_with_deadline", runner)
    with tempfile.TemporaryDirectory() as name:
        raw = Path(name) / "out.raw"
        log = ngspice_process.run_batch(netlist, Path(name), timeout, "divider", str(raw))
        assert f"{name}/out.raw" in log  # ngspice names the raw file: in this run's folder
        return log.replace(name, "<run>"), raw.read_bytes()


def test_a_run_seen_twice_is_recorded_then_replayed_with_the_same_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    runner = replaying(_counted(calls), tmp_path / "replay", _program())
    first = _batch(monkeypatch, runner)
    second = _batch(monkeypatch, runner)
    assert len(calls) == 2  # seen once: run and marked; seen twice: run and recorded
    third = _batch(monkeypatch, runner)
    assert len(calls) == 2  # replayed: the second run's log and raw file, byte for byte
    assert third == second and b"Binary:" in third[1]
    assert first[1].split(b"Binary:")[1] == third[1].split(b"Binary:")[1]  # (the data)
    with pytest.raises(SimulationTimeout):  # a timeout near the run's own time: a real run
        _batch(monkeypatch, runner, timeout=1e-3)
    assert len(calls) == 3
    _batch(monkeypatch, runner, NETLIST.replace("3k", "2k"))  # another netlist, another key
    assert len(calls) == 4


@pytest.mark.parametrize("outcome", [(b"", b"", 1, False), (b"", b"", -9, False), None])
def test_only_the_real_programs_successful_runs_are_recorded(
    tmp_path: Path, outcome: tuple[bytes, bytes, int, bool] | None, fake_ngspice: Callable
) -> None:
    """A run that failed or crashed is never recorded; nor is a run of another program (a fault
    test's fake ngspice)."""
    calls: list[str] = []
    program = _program()
    if outcome is None:
        program_run = str(fake_ngspice("exit 0"))
        inner = _counted(calls)
    else:
        program_run = program

        def inner(command, folder, env, timeout, what):  # type: ignore[no-untyped-def]
            calls.append(what)
            return outcome

    runner = replaying(inner, tmp_path / "replay", program)
    for _ in range(3):
        with tempfile.TemporaryDirectory() as name:
            runner([program_run, "-b", "x.cir"], Path(name), {}, 10.0, "run")
    assert len(calls) == 3
    recorded = tmp_path / "replay"
    assert not recorded.exists() or [p for p in recorded.iterdir() if p.is_dir()] == []
