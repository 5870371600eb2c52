"""A killed extraction leaves the store intact and a rerun simulates only the missing chunks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import h5py
import pytest
from helpers import DATA, assert_same_family, options

import circuitnn.pipeline
from circuitnn import extract_family
from circuitnn.circuits import get_neuron
from circuitnn.pipeline import family_key
from circuitnn.store import Store
from circuitnn.variation import MonteCarlo

NEURON, N, SEED, CHUNK = "bjt_diffpair", 160, 13, 2
CHUNKS = N // CHUNK

EXTRACT = """
import sys
from circuitnn import extract_family
from circuitnn.pipeline import RunOptions
extract_family(sys.argv[1], n=int(sys.argv[2]), seed=int(sys.argv[3]), store=sys.argv[4],
               options=RunOptions(chunk_size=int(sys.argv[5]), jobs=1, progress=False))
"""


def _journal_chunks(folder: Path) -> set[int]:
    return {int(path.stem.split("-")[1]) for path in folder.glob("chunk-*.npz")}


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


def test_killed_run_resumes_from_its_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_path = tmp_path / "families.h5"
    store = Store(store_path)
    # the store already holds a family, which the killed run must not damage
    earlier = extract_family(DATA / "divider.toml", n=3, seed=0, store=store, options=options())

    key = family_key(get_neuron(NEURON), MonteCarlo(n=N, seed=SEED))
    journal = store.journal(key, CHUNK).folder
    _extract_and_kill(store_path, journal, wanted=4)

    saved = _journal_chunks(journal)
    assert 4 <= len(saved) < CHUNKS, "killed too late to test a resume"
    assert not (journal / "nominal.npz").exists()  # the nominal run comes after the chunks
    # the store opens cleanly, unchanged: the unfinished family is not in it
    assert store.keys() == [earlier.key]
    with h5py.File(store_path, "r") as handle:
        assert list(handle["families"]) == [earlier.key]
    assert not list(tmp_path.glob(".families.h5.*.tmp"))

    # rerun, counting the simulations it really does
    real_simulate = circuitnn.pipeline.simulate_chunk
    simulated: list[int] = []

    def counting(spec: Any, table: Any, *args: Any, **kwargs: Any) -> Any:
        simulated.append(int(table.index[0]))
        return real_simulate(spec, table, *args, **kwargs)

    monkeypatch.setattr(circuitnn.pipeline, "simulate_chunk", counting)
    resumed = extract_family(NEURON, n=N, seed=SEED, store=store, options=options(chunk_size=CHUNK))
    chunk_starts = [start for start in simulated if start >= 0]
    assert sorted(chunk_starts) == sorted(set(range(0, N, CHUNK)) - saved)
    assert simulated.count(-1) == 1  # the nominal circuit, once
    assert not journal.exists()  # committed, journal cleared
    assert sorted(store.keys()) == sorted([earlier.key, key])

    # the same family as an uninterrupted run in another store
    monkeypatch.setattr(circuitnn.pipeline, "simulate_chunk", real_simulate)
    reference = extract_family(
        NEURON, n=N, seed=SEED, store=tmp_path / "reference.h5", options=options(chunk_size=CHUNK)
    )
    assert_same_family(resumed, reference)
    assert_same_family(store.load(key), reference)
    assert_same_family(store.load(earlier.key), earlier)


def test_unreadable_journal_chunk_is_recomputed(tmp_path: Path) -> None:
    spec_path = DATA / "divider.toml"
    store = Store(tmp_path / "s.h5")
    spec = get_neuron(spec_path)
    key = family_key(spec, MonteCarlo(n=6, seed=1))
    journal = store.journal(key, 2)
    journal.folder.mkdir(parents=True)
    (journal.folder / "chunk-000000002.npz").write_bytes(b"half a zip file")
    (journal.folder / "chunk-000000004.tmp").write_bytes(b"left by a killed write")
    family = extract_family(spec, n=6, seed=1, store=store, options=options(chunk_size=2))
    reference = extract_family(spec, n=6, seed=1, options=options(chunk_size=2))
    assert_same_family(family, reference)
    assert not journal.folder.exists()
