"""Fault-injection suite: every fault of the reliability matrix, each injected for real.

Faults in the circuit run the real ngspice (a non-converging instance, a netlist ngspice rejects);
fake ngspice programs (the ``fake_ngspice`` fixture) stand in only for a hang or a crash of
ngspice itself; worker deaths are real SIGKILL/SIGSEGV of real loky workers; a killed run is a real
SIGKILL of a child process running a real extraction; concurrent writers are two real processes;
damaged stores are real files truncated or with a flipped byte; a full disk is a real file-size
limit (``RLIMIT_FSIZE``, so the kernel fails the write with EFBIG) in a child process, or, for the
journal, numpy's writer raising ``OSError(ENOSPC)`` after writing part of the file.

Each test checks what happened (the error's type and a message naming the file, instance or
chunk) and that no finished work was lost: earlier families intact and loadable, finished chunks
kept, and a rerun equal to an uninterrupted run. README.md ("Reliability") repeats this matrix.

The matrix (fault → what happens → data lost; tests):

1. an instance does not converge → it is recorded failed with ngspice's reason naming it (the chunk
   is bisected); the rest of its chunk is kept → none.  ``test_1_*``
2. ngspice rejects the netlist → ``NetlistError`` quoting ngspice and the line; nothing is
   written → none.  ``test_2_*``
3. ngspice hangs → killed at the timeout, retried once, then its chunk's instances are recorded
   failed for a retry (status 3, "did not finish within"); the campaign goes on; the next run
   of the family simulates them again → none (once ngspice finishes).  ``test_3_*``
4. a worker process is killed or segfaults → the chunks it had are rerun, each alone in a fresh
   worker, and the run goes on; a chunk that kills its worker every time is given up with a
   ``SimulationError`` naming it once all other chunks finished; a segfault of ngspice itself fails
   that chunk's instances with the signal → none.  ``test_4_*``
5. the whole run is killed (SIGKILL) mid-run or mid-write → the store opens unchanged; finished
   chunks are kept in the journal; a rerun resumes and equals an uninterrupted run → the chunks in
   flight only (recomputed).  ``test_5_*``
6. two processes write to one store at once → both families intact (the lock file queues the
   writers); past ``lock_timeout`` a ``StoreError`` "locked by another process" → none.
   ``test_6_*``
7. a truncated or corrupted HDF5 store (its index file or a family's file) → ``StoreError`` naming
   the file (checksums catch flipped bytes), the file left as it is; other families still load;
   a damaged journal chunk is recomputed → the damaged family only.  ``test_7_*`` (and
   ``test_store.py::test_damaged_store_*``)
8. disk full while writing (a chunk's journal file, a family's scratch file, the new copy of a
   family's file gaining an analysis) → ``StoreError`` naming the file; the store unchanged;
   finished chunks kept; a rerun resumes → none.  ``test_8_*``
9. every instance of a family fails → ``circuitnn extract`` prints the count and the first
   reasons and exits with status 1; ``--retry-failed`` simulates a stored family's failed
   instances again (a failure that does not recur is then gone) → none.  ``test_9_*``
10. instances coupled in a batch (a bistable neuron whose batched run moves instances onto
    another branch) → the jumping curves, and every instance of a chunk whose self-check
    deviates, are simulated alone; each stored curve is its isolated run → none.
    ``test_independence.py``
11. an instance whose parameters ngspice refuses (a negative channel length: a BSIM4 fatal
    error that stops the batch, or a level-1 warning with curves above the rail) → that instance
    fails with ngspice's words, the rest of its chunk is kept → none.
    ``test_strict_specs.py::test_an_instance_ngspice_refuses_fails_alone``
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from helpers import DATA, assert_same_family, data_spec, options
from scipy.optimize import brentq

import circuitnn.extract.pipeline
from circuitnn import extract_family
from circuitnn.campaign.sweep import apply_point, sweep_families
from circuitnn.errors import NetlistError, SimulationError, SimulationTimeout, StoreError
from circuitnn.extract.dc_chunk import simulate_chunk
from circuitnn.extract.pipeline import family_key
from circuitnn.family import FAILED, OK, RETRY, Family
from circuitnn.neuron.builtin import get_neuron
from circuitnn.neuron.units import format_spice
from circuitnn.neuron.variation import MonteCarlo, ParameterTable, sample_parameters
from circuitnn.spice import get_engine
from circuitnn.spice.analyses import NoiseAnalysis
from circuitnn.spice.benches import render_dc_bench
from circuitnn.store import Store
from circuitnn.store.files import RESERVE_MARGIN

# --- shared helpers -----------------------------------------------------------------------


def _earlier(store: Path) -> Family:
    """Put a family in the store first: the fault must leave it intact."""
    return extract_family(DATA / "diode_r.toml", n=3, seed=2, store=store, options=options())


def _files(folder: Path) -> set[str]:
    """Every file under ``folder``, relative (leftovers of a failed run show here)."""
    return {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()}


def _snapshot(store: Path) -> dict[str, bytes]:
    """The bytes of a store: its index file and the file of every family it links."""
    files, keys = {"index": store.read_bytes()}, Store(store).keys()
    for key in keys:
        files[key] = Store(store).family_path(key).read_bytes()
    return files


def _store_files(store: Path, *others: str) -> set[str]:
    """The files a clean store in ``store``'s folder has (index, lock, one per family), and
    ``others``: with :func:`_files`, what a run should leave (no journal, scratch or temporary)."""
    folder = Store(store).folder.name
    keys = Store(store).keys()
    families = {f"{folder}/{key}.h5" for key in keys}
    return {store.name, f"{store.name}.lock", *families, *others}


@pytest.fixture
def simulated(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the first instance of every chunk this process simulates (-1: the nominal)."""
    real = circuitnn.extract.dc_chunk.simulate_chunk
    starts: list[int] = []

    def counting(spec: Any, table: Any, *args: Any, **kwargs: Any) -> Any:
        starts.append(int(table.index[0]))
        return real(spec, table, *args, **kwargs)

    monkeypatch.setattr(circuitnn.extract.pipeline, "simulate_chunk", counting)
    return starts


def _journal_chunks(folder: Path) -> set[int]:
    return {int(path.stem.split("-")[1]) for path in folder.glob("chunk-*.npz")}


def _run_child(script: str, *args: object, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# --- 1. an instance that does not converge -------------------------------------------------


def _singular_table(g_values: list[float]) -> ParameterTable:
    spec = data_spec("singular")
    values = np.array([[g, 0.5] for g in g_values])  # columns g, u (u = 0.5: geff = g)
    assert spec.parameter_names == ("g", "u")
    index = np.arange(100, 100 + len(g_values))
    return ParameterTable(spec.parameter_names, values, index, index)


def _singular_solution(x: float, g: float) -> float:
    """(1 - g)·v = 1m·tanh(x) + 1u·|v|³, the root near 1m·tanh(x)/(1 - g)."""
    scale = 2e-3 * abs(np.tanh(x)) / (1 - g) + 1e-12
    return brentq(
        lambda v: (1 - g) * v - 1e-3 * np.tanh(x) - 1e-6 * abs(v) ** 3,
        -2 * scale,
        2 * scale,
        xtol=1e-18,
    )


def test_1_non_converging_instance_fails_alone_with_its_reason() -> None:
    spec = data_spec("singular")
    g_values = [0.5, 0.25, 1.0, 0.75, 0.4, 0.6]
    bad = 2
    result = simulate_chunk(spec, _singular_table(g_values))
    assert result.start == 100
    assert result.status[bad] == FAILED
    assert np.isnan(result.curves[bad]).all()
    reason = result.reasons[bad]
    assert reason.startswith("singular instances 102: ")  # names the instance by its index
    cause = reason.removeprefix("singular instances 102: ").lower()
    assert "timestep too small" in cause or "trouble with node" in cause
    good = [k for k in range(len(g_values)) if k != bad]
    assert np.all(result.status[good] == OK)
    assert all(result.reasons[k] == "" for k in good)
    assert result.runs > 1  # the chunk was split to isolate the bad instance

    # the good instances are what they are when simulated in a chunk of their own
    clean = simulate_chunk(spec, _singular_table([g_values[k] for k in good]))
    assert np.all(clean.status == OK) and clean.runs == 1
    # (within ngspice's convergence tolerance: reltol = 1e-3, vntol = 1 µV; a sub-batch may stop
    # its Newton iteration at -0.9 µV where the exact answer is 0)
    np.testing.assert_allclose(result.curves[good], clean.curves, rtol=1e-3, atol=1e-6)
    # ... and what the circuit equation says (to the same tolerance: ngspice accepts its
    # extrapolated first guess when the Newton update is below vntol)
    for row, k in enumerate(good):
        expected = [_singular_solution(x, g_values[k]) for x in spec.sweep.grid()]
        np.testing.assert_allclose(clean.curves[row], expected, rtol=1e-3, atol=1e-6)


def test_1_failed_instances_are_kept_in_the_family_and_the_store(
    tmp_path: Path, simulated: list[int]
) -> None:
    """u > 0.75 makes an instance's matrix singular: those, and only those, fail."""
    store = tmp_path / "families.h5"
    family = extract_family(
        DATA / "singular.toml", n=16, seed=3, store=store, options=options(chunk_size=5)
    )
    expected_failed = np.flatnonzero(family.parameter("u") > 0.75)
    assert len(expected_failed) >= 2
    assert family.n == 16
    np.testing.assert_array_equal(family.failed, expected_failed)
    assert np.all(np.isnan(family.curves[expected_failed]))
    assert np.all(np.isfinite(family.curves[family.ok]))  # the rest of each chunk is kept
    for k in range(16):
        assert (family.reasons[k] != "") == (k in expected_failed)
        if k in expected_failed:
            assert re.match(rf"singular instances {k}: ", family.reasons[k])
    assert np.all(np.isnan(family.descriptors["midpoint"][expected_failed]))
    loaded = Store(store).load()
    np.testing.assert_array_equal(loaded.status, family.status)
    assert loaded.reasons == family.reasons
    assert Store(store).describe()[0]["failed"] == len(expected_failed)
    # the failures are part of the finished family: asking again simulates nothing
    count = len(simulated)
    again = extract_family(
        DATA / "singular.toml", n=16, seed=3, store=store, options=options(chunk_size=5)
    )
    assert len(simulated) == count
    assert_same_family(again, family)


# --- 2. a netlist ngspice rejects ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("bad_model", ["nosuchdiodemodel"]),
        ("bad_syntax", ["too few nodes", "r2 out"]),
    ],
)
def test_2_rejected_netlist_raises_netlist_error_and_writes_nothing(
    tmp_path: Path, name: str, quoted: list[str]
) -> None:
    store = tmp_path / "families.h5"
    earlier = _earlier(store)
    before, files = _snapshot(store), _files(tmp_path)
    with pytest.raises(NetlistError) as caught:
        extract_family(DATA / f"{name}.toml", n=6, seed=0, store=store, options=options())
    message = str(caught.value).lower()
    # the nominal circuit runs first: a netlist error stops the family before any chunk
    assert f"{name} nominal instance: ngspice rejected the netlist" in message
    for text in quoted:  # ngspice's own message and the offending line
        assert text in message
    assert _snapshot(store) == before  # nothing written: no family, no journal, no scratch
    assert _files(tmp_path) == files
    assert_same_family(Store(store).load(earlier.key), earlier)
    # simulate_chunk does not turn it into failed instances either: it would fail them all
    spec = data_spec(name)
    with pytest.raises(NetlistError):
        simulate_chunk(spec, sample_parameters(spec, MonteCarlo(n=3)))


# --- 3. ngspice hangs ------------------------------------------------------------------------


def _divider_chunk() -> tuple[Any, ParameterTable]:
    spec = data_spec("divider")
    return spec, sample_parameters(spec, MonteCarlo(n=3, seed=0))


def test_3_hung_ngspice_is_stopped_by_the_timeout(fake_ngspice: Callable[[str], Path]) -> None:
    fake_ngspice("exec sleep 60")
    spec, table = _divider_chunk()
    bench = render_dc_bench(spec, table)
    began = time.monotonic()
    with pytest.raises(SimulationTimeout, match=r"job: ngspice did not finish within 0\.5 s"):
        get_engine("subprocess").run(bench.text, bench.vectors, spec.sweep.points, 0.5, "job")
    assert time.monotonic() - began < 5

    began = time.monotonic()
    result = simulate_chunk(spec, table, timeout=0.5, retries=1)
    elapsed = time.monotonic() - began
    assert result.runs == 2  # the first try and one retry, then it gives up
    assert 1.0 <= elapsed < 8
    assert np.all(result.status == RETRY)  # not the circuit's fault: simulated again next time
    assert np.isnan(result.curves).all()
    assert all(
        r == "divider instances 0-2: ngspice did not finish within 0.5 s and was stopped"
        for r in result.reasons
    )


def test_3_hung_chunk_is_failed_and_the_campaign_goes_on(
    tmp_path: Path, fake_ngspice: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep of two points; ngspice hangs on every run holding instance 4 of the first point
    (the fake program passes every other run to the real ngspice)."""
    grid = {"r2": [3e3, 6e3]}
    spec = data_spec("divider")
    table = sample_parameters(apply_point(spec, {"r2": 3e3}), MonteCarlo(n=8, seed=0))
    marker = f"r2={format_spice(table.values[4, table.names.index('r2')])} "
    real = shutil.which("ngspice")
    hangs = tmp_path / "hangs.log"
    fake_ngspice(
        'for last in "$@"; do :; done\n'
        f'if [ -f "$last" ] && grep -qF \'{marker}\' "$last"; then\n'
        f"  echo hang >> {hangs}; exec sleep 60\nfi\n"
        f'exec {real} "$@"'
    )
    store = tmp_path / "families.h5"
    run = options(timeout=1.5)
    points = sweep_families(DATA / "divider.toml", grid, n=8, seed=0, store=store, options=run)
    assert hangs.read_text().split() == ["hang", "hang"]  # the first try and one retry

    first, second = (point.family for point in points)
    np.testing.assert_array_equal(first.status, [OK] * 4 + [RETRY] * 4)
    expected = "divider instances 4-7: ngspice did not finish within 1.5 s and was stopped"
    assert first.reasons == [""] * 4 + [expected] * 4
    assert np.isnan(first.curves[4:]).all()

    monkeypatch.delenv("CIRCUITNN_NGSPICE")  # the same sweep, uninterrupted, real ngspice
    clean = sweep_families(
        DATA / "divider.toml", grid, n=8, seed=0, store=tmp_path / "clean.h5", options=run
    )
    assert_same_family(second, clean[1].family)  # the campaign went on: the next point is whole
    for name in ("curves", "supply_current", "input_current", "power", "parameters"):
        np.testing.assert_array_equal(
            getattr(first, name)[:4], getattr(clean[0].family, name)[:4], err_msg=name
        )
    assert sorted(Store(store).keys()) == sorted(point.family.key for point in clean)

    # the timeout was not cached as final: the next run simulates instances 4-7 again (only
    # them), and the family is then what an uninterrupted run gives
    again = sweep_families(DATA / "divider.toml", grid, n=8, seed=0, store=store, options=run)
    assert hangs.read_text().split() == ["hang", "hang"]  # (the fake is gone: no more hangs)
    assert_same_family(again[0].family, clean[0].family)
    assert again[0].family.attrs["retried"]
    np.testing.assert_array_equal(again[0].family.run_alone[:4], first.run_alone[:4])


# --- 4. a worker process is killed or segfaults ----------------------------------------------


def _simulate_or_die(spec: Any, table: Any, *args: Any, **kwargs: Any) -> Any:
    """simulate_chunk, except that a worker given instances 4… dies as the file ``die`` beside
    the spec's netlist says: ``once`` (SIGKILL, then the file is gone) or ``always-segv``."""
    order = Path(spec.netlist_source).parent / "die"
    if int(table.index[0]) == 4 and order.exists():
        how = order.read_text()
        if how == "once":
            order.unlink()
        os.kill(os.getpid(), signal.SIGSEGV if how == "always-segv" else signal.SIGKILL)
    return simulate_chunk(spec, table, *args, **kwargs)


def _divider_copy(folder: Path, die: str) -> Path:
    """The divider spec in ``folder`` (same family key as tests/data's), with a ``die`` order."""
    for suffix in (".toml", ".cir"):
        shutil.copy(DATA / f"divider{suffix}", folder / f"divider{suffix}")
    (folder / "die").write_text(die)
    return folder / "divider.toml"


def test_4_killed_worker_chunk_is_retried_on_another_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec_path = _divider_copy(tmp_path, "once")
    store = tmp_path / "families.h5"
    earlier = _earlier(store)
    monkeypatch.setattr(circuitnn.extract.pipeline, "simulate_chunk", _simulate_or_die)
    family = extract_family(spec_path, n=12, seed=0, store=store, options=options(jobs=2))
    assert not (tmp_path / "die").exists()  # a worker really was killed running chunk 4-7
    assert family.failed.size == 0
    monkeypatch.setattr(circuitnn.extract.pipeline, "simulate_chunk", simulate_chunk)
    reference = extract_family(DATA / "divider.toml", n=12, seed=0, options=options(jobs=1))
    assert_same_family(family, reference)
    assert_same_family(Store(store).load(family.key), reference)
    assert_same_family(Store(store).load(earlier.key), earlier)


def test_4_chunk_that_always_kills_its_worker_is_named_after_the_others_finish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, simulated: list[int]
) -> None:
    spec_path = _divider_copy(tmp_path, "always-segv")
    store = tmp_path / "families.h5"
    earlier = _earlier(store)
    before = _snapshot(store)
    counting = circuitnn.extract.pipeline.simulate_chunk
    monkeypatch.setattr(circuitnn.extract.pipeline, "simulate_chunk", _simulate_or_die)
    with pytest.raises(
        SimulationError,
        match=r"a worker process died each time it ran divider chunk 4-7 \(once with other "
        r"tasks, then 2 time\(s\) alone; last: .*\); every other task finished",
    ):
        extract_family(spec_path, n=12, seed=0, store=store, options=options(jobs=2))
    assert _snapshot(store) == before  # nothing half-done was committed
    key = family_key(get_neuron(spec_path), MonteCarlo(n=12, seed=0))
    journal = Store(store).journal(key, 4).folder
    assert _journal_chunks(journal) == {0, 8}  # the other chunks finished and were kept

    # fixed (e.g. a worker with more memory): the rerun simulates only the lost chunk
    (tmp_path / "die").unlink()
    monkeypatch.setattr(circuitnn.extract.pipeline, "simulate_chunk", counting)
    simulated.clear()
    family = extract_family(spec_path, n=12, seed=0, store=store, options=options())
    assert sorted(simulated) == [4]  # chunk 4-7 only (the nominal, run first, was journaled)
    reference = extract_family(DATA / "divider.toml", n=12, seed=0, options=options())
    assert_same_family(family, reference)
    assert_same_family(Store(store).load(earlier.key), earlier)
    assert not journal.exists()


def test_4_crashing_ngspice_marks_instances_failed(fake_ngspice: Callable[[str], Path]) -> None:
    fake_ngspice("kill -SEGV $$")
    spec, table = _divider_chunk()
    bench = render_dc_bench(spec, table)
    with pytest.raises(SimulationError, match=r"job: ngspice crashed \(signal 11\)"):
        get_engine("subprocess").run(bench.text, bench.vectors, spec.sweep.points, 10, "job")
    result = simulate_chunk(spec, table)
    assert np.all(result.status == RETRY)  # a crash of ngspice is retried on the next run
    for k in range(3):  # bisected down to each instance, each named in its reason
        assert result.reasons[k] == f"divider instances {k}: ngspice crashed (signal 11)"


# --- 5. the whole run is killed (SIGKILL) ----------------------------------------------------

NEURON, N, SEED, CHUNK = "bjt_diffpair", 80, 13, 2
CHUNKS = N // CHUNK

EXTRACT = """
import sys
from circuitnn import extract_family
from circuitnn.extract.options import RunOptions
extract_family(sys.argv[1], n=int(sys.argv[2]), seed=int(sys.argv[3]), store=sys.argv[4],
               options=RunOptions(chunk_size=int(sys.argv[5]), jobs=1, progress=False))
"""


def _extract_and_kill(store: Path, journal: Path, wanted: int) -> None:
    """Run the extraction in a child process and SIGKILL it once ``wanted`` chunks are saved."""
    child = subprocess.Popen(
        [sys.executable, "-c", EXTRACT, NEURON, str(N), str(SEED), str(store), str(CHUNK)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while len(_journal_chunks(journal)) < wanted:
            if child.poll() is not None:
                pytest.fail(f"the extraction ended before it could be killed: {child.stderr}")
            if time.monotonic() > deadline:
                pytest.fail("the extraction wrote no journal chunks within 120 s")
            time.sleep(0.005)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL


def test_5_killed_run_resumes_from_its_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, simulated: list[int]
) -> None:
    store_path = tmp_path / "families.h5"
    store = Store(store_path)
    earlier = _earlier(store_path)  # already in the store: the killed run must not damage it

    key = family_key(get_neuron(NEURON), MonteCarlo(n=N, seed=SEED))
    journal = store.journal(key, CHUNK).folder
    _extract_and_kill(store_path, journal, wanted=4)

    saved = _journal_chunks(journal)
    assert 4 <= len(saved) < CHUNKS, "killed too late to test a resume"
    assert (journal / "nominal.npz").exists()  # the nominal circuit runs (and is kept) first
    # the store opens cleanly, unchanged: the unfinished family is not in it
    assert store.keys() == [earlier.key]
    with h5py.File(store_path, "r") as handle:
        assert list(handle["families"]) == [earlier.key]
    assert not list(tmp_path.glob(".families.h5.*.tmp"))

    simulated.clear()
    resumed = extract_family(NEURON, n=N, seed=SEED, store=store, options=options(chunk_size=CHUNK))
    chunk_starts = [start for start in simulated if start >= 0]
    assert sorted(chunk_starts) == sorted(set(range(0, N, CHUNK)) - saved)  # only the missing
    assert simulated.count(-1) == 0  # the nominal circuit came from the journal
    assert not journal.exists()  # committed, journal cleared
    assert sorted(store.keys()) == sorted([earlier.key, key])

    # the same family as an uninterrupted run in another store
    reference = extract_family(
        NEURON, n=N, seed=SEED, store=tmp_path / "reference.h5", options=options(chunk_size=CHUNK)
    )
    assert_same_family(resumed, reference)
    assert_same_family(store.load(key), reference)
    assert_same_family(store.load(earlier.key), earlier)


KILLED_WHILE_WRITING = """
import os, signal, sys
import h5py
from circuitnn import extract_family
from circuitnn.extract.options import RunOptions

where, spec, store = sys.argv[1:4]
if where == "family":  # the family's scratch HDF5 file, after some rows are written
    original = h5py.Dataset.__setitem__
    writes = []

    def dying(self, key, value):
        original(self, key, value)
        writes.append(key)
        if len(writes) == 6:
            os.kill(os.getpid(), signal.SIGKILL)

    h5py.Dataset.__setitem__ = dying
else:  # the store's temporary copy, written but not yet closed (HDF5 metadata not flushed)
    close = h5py.File.close

    def dying_close(self):
        if self.mode == "r+" and self.filename.endswith(".tmp"):
            os.kill(os.getpid(), signal.SIGKILL)
        close(self)

    h5py.File.close = dying_close
extract_family(spec, n=12, seed=5, store=store, options=RunOptions(chunk_size=4, progress=False))
"""


@pytest.mark.parametrize("where", ["family", "commit"])
def test_5_run_killed_mid_write_leaves_the_store_intact_and_resumes(
    tmp_path: Path, where: str, simulated: list[int]
) -> None:
    store = tmp_path / "families.h5"
    earlier = _earlier(store)
    before = _snapshot(store)
    child = _run_child(KILLED_WHILE_WRITING, where, DATA / "divider.toml", store)
    assert child.returncode == -signal.SIGKILL, child.stderr

    assert _snapshot(store) == before  # the store is the old file, untouched
    assert Store(store).keys() == [earlier.key]
    assert_same_family(Store(store).load(earlier.key), earlier)
    key = family_key(data_spec("divider"), MonteCarlo(n=12, seed=5))
    journal = Store(store).journal(key, 4).folder
    saved = _journal_chunks(journal)
    assert saved == ({0} if where == "family" else {0, 4, 8})
    leftovers = _files(tmp_path) - _store_files(store)
    assert any(name.endswith(".tmp") for name in leftovers) == (where == "commit")
    # killed while linking it: the family's file is in the folder, but not in the store
    assert (Store(store).family_path(key).exists()) == (where == "commit")
    assert key not in Store(store)

    simulated.clear()
    family = extract_family(DATA / "divider.toml", n=12, seed=5, store=store, options=options())
    assert sorted(s for s in simulated if s >= 0) == sorted({0, 4, 8} - saved)
    reference = extract_family(DATA / "divider.toml", n=12, seed=5, options=options())
    assert_same_family(family, reference)
    assert_same_family(Store(store).load(key), reference)
    assert_same_family(Store(store).load(earlier.key), earlier)
    assert _files(tmp_path) == _store_files(store)  # no stale file is left


# --- 6. two processes write to the same store at once ----------------------------------------

EXTRACT_MANY = """
import sys, time
from pathlib import Path
from circuitnn import extract_family
from circuitnn.extract.options import RunOptions

spec, store, go, *seeds = sys.argv[1:]
while not Path(go).exists():
    time.sleep(0.002)
for seed in seeds:
    extract_family(spec, n=3, seed=int(seed), store=store,
                   options=RunOptions(chunk_size=2, progress=False))
"""


def test_6_two_processes_writing_one_store_keep_every_family(tmp_path: Path) -> None:
    store = tmp_path / "families.h5"
    go = tmp_path / "go"
    seeds = {"a": [1, 2, 3, 100], "b": [4, 5, 6, 100]}  # seed 100: the same family, twice
    children = [
        subprocess.Popen(
            [sys.executable, "-c", EXTRACT_MANY, DATA / "divider.toml", store, go, *map(str, s)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for s in seeds.values()
    ]
    time.sleep(1.0)  # both have imported circuitnn and wait at the start line
    go.touch()
    for child in children:
        _, errors = child.communicate(timeout=120)
        assert child.returncode == 0, errors

    every = sorted({seed for s in seeds.values() for seed in s})
    references = {
        seed: extract_family(DATA / "divider.toml", n=3, seed=seed, options=options(chunk_size=2))
        for seed in every
    }
    assert sorted(Store(store).keys()) == sorted(f.key for f in references.values())
    for reference in references.values():
        assert_same_family(Store(store).load(reference.key), reference)
    assert _files(tmp_path) == _store_files(store, "go")


HOLD_LOCK = """
import sys, time
from pathlib import Path
from circuitnn.store import RESERVE_MARGIN, Store

with Store(sys.argv[1]).lock():
    Path(sys.argv[2]).touch()
    time.sleep(float(sys.argv[3]))
"""


def test_6_second_writer_waits_for_the_lock_or_gets_a_clear_error(tmp_path: Path) -> None:
    store = tmp_path / "families.h5"
    earlier = _earlier(store)
    before = _snapshot(store)
    family = extract_family(DATA / "divider.toml", n=3, seed=9, options=options())
    held = tmp_path / "held"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, store, held, "1.5"], stderr=subprocess.PIPE
    )
    try:
        while not held.exists():
            assert holder.poll() is None, holder.stderr
            time.sleep(0.01)
        with pytest.raises(StoreError, match=r"store .*families\.h5 is locked by another proc"):
            Store(store).commit(family, lock_timeout=0.3)
        assert _snapshot(store) == before
        began = time.monotonic()
        Store(store).commit(family)  # waits for the other writer, then commits
        assert time.monotonic() - began > 0.5
    finally:
        holder.wait(timeout=30)
    assert sorted(Store(store).keys()) == sorted([earlier.key, family.key])
    assert_same_family(Store(store).load(family.key), family)
    assert_same_family(Store(store).load(earlier.key), earlier)


# --- 7. a truncated or corrupted HDF5 file ---------------------------------------------------


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Family, Family]:
    """A store with two families: a divider and a diode."""
    path = tmp_path_factory.mktemp("healthy") / "families.h5"
    divider = extract_family(DATA / "divider.toml", n=6, seed=1, store=path, options=options())
    diode = _earlier(path)
    return path, divider, diode


def _damage(store: Path, how: str, divider: Family) -> Path:
    """Damage the copy of a store at ``store``: its index file, or the divider's family file
    (``family-…``); returns the damaged file."""
    name = how.removeprefix("family-")
    bad = Store(store).family_path(divider.key) if how.startswith("family-") else store
    data = bytearray(bad.read_bytes())
    if name.startswith("truncated"):
        keep = {"truncated-10%": len(data) // 10, "truncated-50%": len(data) // 2}
        bad.write_bytes(data[: keep.get(name, len(data) - 1)])
        return bad
    if name == "flipped-superblock":
        offset = 20
    elif name == "flipped-index":  # a byte of the divider's name in the index of families
        offset = data.index(divider.key.encode()) + 5
    else:  # in the middle of a dataset's (compressed or plain) data: the checksum catches it
        with h5py.File(bad, "r") as handle:
            dataset = handle["families"][divider.key][name.removeprefix("flipped-")]
            chunk = dataset.id.get_chunk_info(0)
        offset = chunk.byte_offset + chunk.size // 2
    data[offset] ^= 0x5A
    bad.write_bytes(data)
    return bad


@pytest.mark.parametrize(
    "how",
    [
        "truncated-10%",
        "truncated-50%",
        "truncated-1-byte",
        "flipped-superblock",
        "flipped-index",
        "family-truncated-50%",
        "family-flipped-superblock",
        "family-flipped-curves",
        "family-flipped-parameters",
    ],
)
def test_7_damaged_store_is_a_store_error_naming_the_file(
    healthy: tuple[Path, Family, Family], tmp_path: Path, how: str, simulated: list[int]
) -> None:
    path, divider, diode = healthy
    simulated.clear()
    store_path = Store(path).copy(tmp_path / "damaged.h5").path  # index and folder
    bad = _damage(store_path, how, divider)
    store = Store(store_path)
    with pytest.raises(StoreError, match=r"store .*damaged\.h5.*(corrupt|damaged)") as caught:
        store.load(divider.key)
    assert str(bad) in str(caught.value)  # names the damaged file
    if how.startswith("family-"):
        # the divider's file is damaged (a damaged HDF5 chunk fails its Fletcher-32 checksum);
        # the index and the other family are untouched
        if how.endswith(("curves", "parameters")):
            assert "filter returned failure" in str(caught.value)
        assert sorted(store.keys()) == sorted([divider.key, diode.key])
        assert_same_family(store.load(diode.key), diode)
        return
    for action in (store.keys, store.describe):
        with pytest.raises(StoreError, match=r"damaged\.h5"):
            action()
    # an extraction aimed at it refuses before simulating anything, and leaves it as it was
    before = bad.read_bytes()
    with pytest.raises(StoreError, match=r"damaged\.h5"):
        extract_family(DATA / "divider.toml", n=5, seed=1, store=store, options=options())
    assert simulated == []
    assert bad.read_bytes() == before


def test_7_damaged_journal_chunks_are_recomputed(tmp_path: Path, simulated: list[int]) -> None:
    """A journaled chunk with a flipped byte fails its zip CRC, half a zip file does not open, a
    temporary left by a killed write is ignored: none is trusted, each is recomputed."""
    spec = data_spec("divider")
    store = Store(tmp_path / "families.h5")
    journal = store.journal(family_key(spec, MonteCarlo(n=12, seed=1)), 4)
    for start in (0, 4):
        table = sample_parameters(spec, MonteCarlo(n=12, seed=1), start, start + 4)
        journal.save_arrays(f"chunk-{start:09d}", simulate_chunk(spec, table).to_arrays())
    chunk = journal.folder / "chunk-000000004.npz"
    flipped = bytearray(chunk.read_bytes())
    flipped[len(flipped) // 2] ^= 0x01
    chunk.write_bytes(flipped)
    assert journal.load_arrays("chunk-000000004") is None  # refused, and deleted
    assert not chunk.exists()

    chunk.write_bytes(flipped)
    (journal.folder / "chunk-000000008.npz").write_bytes(b"half a zip file")
    (journal.folder / "chunk-000000008.4242.tmp").write_bytes(b"left by a killed write")
    simulated.clear()
    family = extract_family(DATA / "divider.toml", n=12, seed=1, store=store, options=options())
    assert sorted(simulated) == [-1, 4, 8]  # chunk 0 came from the journal
    reference = extract_family(DATA / "divider.toml", n=12, seed=1, options=options())
    assert_same_family(family, reference)
    assert not journal.folder.exists()


# --- 8. disk full while writing --------------------------------------------------------------


def test_8_disk_full_while_journaling_a_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, simulated: list[int]
) -> None:
    """Injection: numpy's writer writes part of the second chunk's file (the third journal entry,
    after the nominal circuit's), then fails with ENOSPC (what a full disk does to ``write``)."""
    store = tmp_path / "families.h5"
    earlier = _earlier(store)
    before = _snapshot(store)
    savez, calls = np.savez, []

    def full_disk(file: Any, *args: Any, **kwargs: Any) -> None:
        calls.append(file)
        if len(calls) == 3:
            file.write(b"PK\x03\x04 part of a chunk")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        savez(file, *args, **kwargs)

    monkeypatch.setattr(np, "savez", full_disk)
    with pytest.raises(StoreError) as caught:
        extract_family(DATA / "divider.toml", n=12, seed=1, store=store, options=options())
    message = str(caught.value)
    assert re.search(
        r"cannot journal chunk-000000004 to .*families\.h5\.partial/.*/"
        r"chunk-000000004\.npz: \[Errno 28\] No space left on device",
        message,
    )
    assert _snapshot(store) == before
    assert_same_family(Store(store).load(earlier.key), earlier)
    key = family_key(data_spec("divider"), MonteCarlo(n=12, seed=1))
    journal = Store(store).journal(key, 4).folder
    # the finished nominal run and chunk; no partial file
    assert _files(journal) == {"nominal.npz", "chunk-000000000.npz"}

    monkeypatch.setattr(np, "savez", savez)  # space freed: the rerun resumes
    simulated.clear()
    family = extract_family(DATA / "divider.toml", n=12, seed=1, store=store, options=options())
    assert sorted(simulated) == [4, 8]
    assert_same_family(family, extract_family(DATA / "divider.toml", n=12, seed=1))
    assert _files(tmp_path) == _store_files(store)


SMALL_NOISE = {"bias_points": 2, "fmin": 1.0, "fmax": 1e6, "points_per_decade": 2, "bandwidth": 1e5}

DISK_FULL = """
import json, resource, signal, sys
from circuitnn import extract_family
from circuitnn.spice.analyses import NoiseAnalysis
from circuitnn.errors import CircuitnnError
from circuitnn.extract.options import RunOptions

where, spec, store, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
SMALL_NOISE = json.loads(sys.argv[5])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
try:
    if where == "scratch":  # a new family
        extract_family(spec, n=12, seed=1, store=store,
                       options=RunOptions(chunk_size=4, progress=False))
    else:  # noise added to the stored family
        extract_family(spec, n=300, seed=0, store=store, noise=NoiseAnalysis(**SMALL_NOISE),
                       options=RunOptions(chunk_size=100, progress=False))
except CircuitnnError as error:
    print(json.dumps([type(error).__name__, str(error)]))
"""


@pytest.mark.parametrize("where", ["scratch", "analysis"])
def test_8_disk_full_while_writing_a_family_or_an_analysis(
    tmp_path: Path, where: str, simulated: list[int]
) -> None:
    """Injection: a real file-size limit (RLIMIT_FSIZE) in the child process running the
    extraction; the kernel refuses to grow a file past it (EFBIG, as ENOSPC on a full disk).
    ``scratch``: below what a new family's scratch HDF5 file needs; ``analysis``: noise added to
    a stored family, the limit above that family's file but below what its new copy with the
    noise needs. (The store claims that space before HDF5 writes.)"""
    store = tmp_path / "families.h5"
    spec = DATA / "divider.toml"
    earlier = extract_family(spec, n=300, seed=0, store=store, options=options(chunk_size=100))
    before = _snapshot(store)
    family_file = Store(store).family_path(earlier.key)
    if where == "scratch":
        limit = RESERVE_MARGIN // 2
    else:
        limit = family_file.stat().st_size + RESERVE_MARGIN // 2

    child = _run_child(DISK_FULL, where, spec, store, limit, json.dumps(SMALL_NOISE))
    assert child.returncode == 0, child.stderr
    kind, message = json.loads(child.stdout.splitlines()[-1])
    assert kind == "StoreError"
    written = "the scratch file of family" if where == "scratch" else "the new copy of"
    named = "families\\.h5\\.partial" if where == "scratch" else re.escape(str(family_file))
    assert re.search(
        rf"not enough space for {written} .*{named}.*: it needs about .* MiB "
        r"\(\[Errno 27\] File too large\); nothing was written to it",
        message,
    ), message
    assert _snapshot(store) == before  # the store was left as it was
    assert_same_family(Store(store).load(earlier.key), earlier)
    assert Store(store).analyses(earlier.key) == []

    simulated.clear()
    if where == "scratch":
        key = family_key(data_spec("divider"), MonteCarlo(n=12, seed=1))
        # the finished chunks are kept: the first, and those simulated while the writer thread
        # failed on it
        saved = _journal_chunks(Store(store).journal(key, 4).folder)
        assert 0 in saved
        family = extract_family(spec, n=12, seed=1, store=store, options=options())
        assert sorted(simulated) == sorted({0, 4, 8} - saved)  # (the nominal was journaled)
        assert_same_family(family, extract_family(spec, n=12, seed=1, options=options()))
    else:  # the noise chunks were journaled: the rerun adds the analysis from them
        analysis = NoiseAnalysis(**SMALL_NOISE)
        noisy = extract_family(
            spec, n=300, seed=0, store=store, noise=analysis, options=options(chunk_size=100)
        )
        assert simulated == []
        assert len(Store(store).analyses(earlier.key)) == 1
        alone = extract_family(spec, n=300, seed=0, noise=analysis, options=options())
        np.testing.assert_array_equal(noisy.noise.sigma, alone.noise.sigma)
    assert_same_family(Store(store).load(earlier.key, arrays=True), earlier)
    assert _files(tmp_path) == _store_files(store)


# --- 9. every instance fails; failed instances simulated again -------------------------------


def _all_singular(folder: Path) -> Path:
    """The singular circuit with u = 0.9 for every instance: each fails to converge."""
    shutil.copy(DATA / "singular.cir", folder / "singular.cir")
    text = (DATA / "singular.toml").read_text().replace("u = 0.5", "u = 0.9")
    text = text.replace('[variation.u]\nlocal = { distribution = "uniform", sigma = 0.2 }\n', "")
    (folder / "singular.toml").write_text(text)
    return folder / "singular.toml"


def test_9_a_family_whose_instances_all_fail_exits_with_status_1(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from circuitnn.cli import main

    spec = _all_singular(tmp_path)
    store = str(tmp_path / "f.h5")
    status = main(["extract", str(spec), "--n", "4", "--store", store, "--quiet"])
    out = capsys.readouterr().out
    assert status == 1
    assert "4 instances, 4 failed" in out
    assert "the nominal instance failed: singular nominal instance: " in out
    assert "4 of 4 instances failed; first reasons:" in out
    assert re.search(
        r"instance 0: singular instances 0: .*(timestep too small|trouble)", out, re.IGNORECASE
    )
    assert (
        main(["extract", str(DATA / "divider.toml"), "--n", "2", "--store", store, "--quiet"]) == 0
    )


def test_9_retry_failed_simulates_failed_instances_again(
    tmp_path: Path, fake_ngspice: Callable[[str], Path]
) -> None:
    """ngspice fails to converge on instance 2 once (a fake program that then steps aside):
    the failure is the circuit's as far as circuitnn can tell (status 2), so a rerun is a cache
    hit; ``retry=True`` (``--retry-failed``) simulates it again, and the family is then whole."""
    spec = data_spec("divider")
    table = sample_parameters(spec, MonteCarlo(n=6, seed=0))
    marker = f"r1={format_spice(table.values[2, 0])} "
    real, once = shutil.which("ngspice"), tmp_path / "failed-once"
    fake_ngspice(
        'log=""; prev=""\nfor arg in "$@"; do [ "$prev" = "-o" ] && log="$arg"; prev="$arg"; '
        'last="$arg"; done\n'
        f"if [ ! -f {once} ] && grep -qF '{marker}' \"$last\"; then\n"
        '  if [ "$(grep -c "^xn" "$last")" = "1" ]; then touch ' + str(once) + "; fi\n"
        '  printf "doAnalyses: iteration limit reached\\nrun simulation(s) aborted\\n" > "$log"\n'
        "  exit 0\nfi\n"
        f'exec {real} "$@"'
    )
    store = tmp_path / "f.h5"
    first = extract_family(DATA / "divider.toml", n=6, seed=0, store=store, options=options())
    assert first.status.tolist() == [OK, OK, FAILED, OK, OK, OK]
    assert "iteration limit" in first.reasons[2]
    again = extract_family(DATA / "divider.toml", n=6, seed=0, store=store, options=options())
    assert again.status.tolist() == first.status.tolist()  # a final failure: cached
    retried = extract_family(
        DATA / "divider.toml", n=6, seed=0, store=store, options=options(), retry=True
    )
    assert np.all(retried.status == OK)
    reference = extract_family(DATA / "divider.toml", n=6, seed=0, options=options())
    np.testing.assert_array_equal(retried.curves, reference.curves)
    assert_same_family(Store(store).load(retried.key), retried)
