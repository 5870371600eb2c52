"""Stopping: SIGTERM stops a run like Ctrl-C (workers, resource trackers and ngspice go, the
journal stays and a rerun resumes bit-identically), both engines honour the timeout, and a hung
ngspice's own children are killed with it. Signals are sent for real."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import assert_same_family, data_spec, options

from circuitnn import extract_family
from circuitnn.errors import SimulationTimeout
from circuitnn.neuron.variation import nominal_table
from circuitnn.spice import get_engine
from circuitnn.spice.benches import render_dc_bench
from circuitnn.store import Store

# a transient that takes ngspice minutes (a picosecond step over a second)
ENDLESS = """* far too many time steps
V1 in 0 SIN(0 1 1meg)
R1 in out 1k
C1 out 0 1n
.tran 1p 1
.save v(out)
.end
"""


def _session(leader: int) -> list[str]:
    """The processes of session ``leader`` (a command started with start_new_session)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == leader:
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:120])
        except (OSError, IndexError, ValueError):
            continue
    return found


def _wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find the processes")
def test_sigterm_stops_every_process_and_the_rerun_resumes(tmp_path: Path) -> None:
    store = tmp_path / "families.h5"
    command = [sys.executable, "-m", "circuitnn", "extract", "diode_relu", "--n", "240"]
    command += ["--chunk-size", "10", "--jobs", "2", "--store", str(store), "--quiet"]
    run = subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    journal = store.with_name("families.h5.partial")
    try:
        assert _wait_for(lambda: len(list(journal.glob("*/chunk-*.npz"))) >= 3, 120)
        assert len(_session(run.pid)) >= 3  # the writer, its workers and their helpers
        run.send_signal(signal.SIGTERM)
        _, error = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == 128 + signal.SIGTERM
    assert error.strip() == "circuitnn: terminated (finished chunks are kept; rerun to resume)"
    assert _wait_for(lambda: not _session(run.pid), 10), _session(run.pid)  # nothing left
    kept = sorted(path.name for path in journal.glob("*/*"))
    # no scratch file left: the chunks and the nominal circuit's run
    assert kept and all(name.startswith("chunk-") or name == "nominal.npz" for name in kept)
    assert not store.exists()

    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert not journal.exists()  # resumed from it, then cleared
    reference = extract_family("diode_relu", n=240, options=options(chunk_size=10))
    assert_same_family(Store(store).load(reference.key), reference)


@pytest.mark.parametrize("engine", ["subprocess", "shared"])
def test_both_engines_honour_the_timeout(engine: str) -> None:
    """The shared engine once ran a hung netlist to its end (86 s with a 3 s timeout)."""
    solver = get_engine(engine)
    began = time.perf_counter()
    with pytest.raises(SimulationTimeout, match="did not finish within 2 s"):
        solver.run(ENDLESS, ["v(out)"], None, 2.0, "endless")
    assert time.perf_counter() - began < 6
    spec = data_spec("divider")  # and the engine works again afterwards
    bench = render_dc_bench(spec, nominal_table(spec))
    vectors = solver.run(bench.text, bench.vectors, spec.sweep.points, 30, "after", bench.includes)
    assert len(vectors["v(o0_0)"]) == spec.sweep.points


def test_the_timeout_holds_without_pidfd(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the kernel has no pidfd (not Linux 5.3+) the subprocess engine waits by polling:
    a hung ngspice is still stopped at its timeout, and a quick one still finishes."""

    def missing(pid: int) -> int:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(os, "pidfd_open", missing)
    test_both_engines_honour_the_timeout("subprocess")


def test_a_hung_ngspice_is_killed_with_its_children(
    fake_ngspice: Callable[[str], Path], tmp_path: Path
) -> None:
    """The whole process group goes, not only the direct child (a shell's own children hold on
    otherwise)."""
    pid_file = tmp_path / "child.pid"
    fake_ngspice(f"sleep 300 &\necho $! > {pid_file}\nwait")
    spec = data_spec("divider")
    bench = render_dc_bench(spec, nominal_table(spec))
    with pytest.raises(SimulationTimeout):
        get_engine("subprocess").run(bench.text, bench.vectors, spec.sweep.points, 1.0, "hung")
    child = int(pid_file.read_text())
    assert _wait_for(lambda: not _alive(child), 5), "the hung ngspice's child still runs"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat")
    return not (state.exists() and state.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def test_an_extraction_in_this_process_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """In one process (--jobs 1), SIGTERM interrupts ngspice's run; its process group is killed
    and the scratch file removed."""
    script = "import sys\nfrom circuitnn.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    store = tmp_path / "s.h5"
    command = [sys.executable, "-c", script, "extract", "mos_diffpair", "--n", "4000"]
    command += ["--chunk-size", "200", "--store", str(store), "--quiet"]
    run = subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert _wait_for(lambda: any("ngspice" in p for p in _session(run.pid)), 60)
        run.send_signal(signal.SIGTERM)
        _, error = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == 143 and "terminated" in error
    assert _wait_for(lambda: not _session(run.pid), 10), _session(run.pid)
    assert not list(tmp_path.glob("s.h5.partial/*/*.h5"))


def test_no_run_folder_outlives_the_process(tmp_path: Path) -> None:
    """ngspice's run folders are removed in a thread of their own after each run; the ones
    still queued when the process exits are removed then (a process that runs ngspice and exits
    at once leaves none in its temporary folder)."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    script = (
        "from circuitnn.spice import get_engine\n"
        "netlist = 'divider\\nv1 in 0 1\\nr1 in out 1k\\nr2 out 0 1k\\n.op\\n.end\\n'\n"
        "for _ in range(5):\n"
        "    get_engine('subprocess').run(netlist, ['v(out)'], 1, 60)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "TMPDIR": str(scratch)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert list(scratch.iterdir()) == []
