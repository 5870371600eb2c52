"""The journal of an extraction in progress: chunks saved, replaced, dropped when unreadable,
scratch files tidied."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from circuitnn.errors import StoreError
from circuitnn.store import Store


def test_journal_saves_loads_and_replaces_chunks_and_drops_unreadable_ones(tmp_path: Path) -> None:
    """A journal (``STORE.partial/KEY-cN``, made with its parent on the first save) keeps named
    arrays as ``NAME.npz`` and loads them back bit for bit, dtypes kept; saving a name again
    replaces it; no temporary file stays. A name never saved loads as None; so does a chunk
    left damaged (truncated) or holding pickled Python objects (never unpickled), and its file
    is deleted (the chunk is recomputed)."""
    key = "k" * 64
    journal = Store(tmp_path / "families.h5").journal(key, 4)
    assert journal.folder == tmp_path / "families.h5.partial" / f"{key}-c4"
    assert journal.load_arrays("chunk-000000000") is None
    assert not journal.folder.parent.exists()

    chunk = {"curves": np.arange(12.0).reshape(3, 4), "status": np.array([1, 2, 1], np.int8)}
    journal.save_arrays("chunk-000000000", chunk)
    journal.save_arrays("nominal", {"curve": np.linspace(0.0, 1.0, 4)})
    loaded = journal.load_arrays("chunk-000000000")
    assert loaded is not None and sorted(loaded) == ["curves", "status"]
    for name, values in chunk.items():
        assert loaded[name].dtype == values.dtype and loaded[name].tobytes() == values.tobytes()
    journal.save_arrays("chunk-000000000", {"curves": -chunk["curves"]})  # saved again
    again = journal.load_arrays("chunk-000000000")
    assert again is not None and sorted(again) == ["curves"]
    np.testing.assert_array_equal(again["curves"], -chunk["curves"])
    assert sorted(p.name for p in journal.folder.iterdir()) == [
        "chunk-000000000.npz",
        "nominal.npz",
    ]

    nominal = journal.folder / "nominal.npz"
    nominal.write_bytes(nominal.read_bytes()[: nominal.stat().st_size // 2])
    assert journal.load_arrays("nominal") is None
    assert not nominal.exists()
    with open(journal.folder / "objects.npz", "wb") as handle:
        np.savez(handle, x=np.array([{"a": 1}, None], dtype=object))  # pickled by numpy
    assert journal.load_arrays("objects") is None
    assert sorted(p.name for p in journal.folder.iterdir()) == ["chunk-000000000.npz"]


def test_a_chunk_that_cannot_be_journaled_is_a_store_error_naming_it(tmp_path: Path) -> None:
    """A chunk that cannot be written — a real file-size limit (RLIMIT_FSIZE: the kernel refuses
    to grow a file past it, as a full disk does) reached mid-write — is a :class:`StoreError`
    naming the chunk and its file and saying the chunks journaled before are kept; the partly
    written temporary file is removed, the earlier chunk kept as it was."""
    import resource
    import signal

    kept = {"x": np.arange(4.0)}
    journal = Store(tmp_path / "families.h5").journal("k" * 64, 4)
    journal.save_arrays("chunk-000000000", kept)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG, not a signal
    resource.setrlimit(resource.RLIMIT_FSIZE, (2**20, hard))
    try:
        with pytest.raises(StoreError) as caught:
            journal.save_arrays("chunk-000000004", {"x": np.zeros(2**18)})  # 2 MiB
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)
    assert str(caught.value) == (
        f"cannot journal chunk-000000004 to {journal.folder / 'chunk-000000004.npz'}: "
        "[Errno 27] File too large (the chunks journaled before are kept; free space and rerun "
        "to resume)"
    )
    assert [p.name for p in journal.folder.iterdir()] == ["chunk-000000000.npz"]
    loaded = journal.load_arrays("chunk-000000000")
    assert loaded is not None
    np.testing.assert_array_equal(loaded["x"], kept["x"])


def test_a_journal_folder_that_is_a_file_is_a_store_error(tmp_path: Path) -> None:
    """When the journal's folder cannot be made (a file has its name), saving a chunk is a
    :class:`StoreError` naming the chunk's file (it was a bare NotADirectoryError: removing the
    temporary file that was never made failed), and the file is left as it was."""
    journal = Store(tmp_path / "families.h5").journal("b" * 64, 4)
    journal.folder.parent.mkdir()
    journal.folder.write_bytes(b"not a folder")
    with pytest.raises(
        StoreError, match=r"cannot journal chunk-000000001 to .*chunk-000000001\.npz"
    ):
        journal.save_arrays("chunk-000000001", {"x": np.arange(4.0)})
    assert journal.folder.read_bytes() == b"not a folder"


def test_journal_scratch_path_and_tidy(tmp_path: Path) -> None:
    """``scratch_path`` names this process' scratch file ``KIND-PID.h5`` in the journal's folder,
    making the folder and its parent when missing (any number of times); ``tidy`` removes the
    journal's folder and then the ``.partial`` folder only when they are empty, and quietly
    leaves a journal that holds chunks."""
    import os

    store = Store(tmp_path / "families.h5")
    first, second = store.journal("a" * 64, 4), store.journal("b" * 64, 8)
    scratch = first.scratch_path("family")
    assert scratch == first.folder / f"family-{os.getpid()}.h5"
    assert first.folder.is_dir() and not scratch.exists()
    assert first.scratch_path("analysis") == first.folder / f"analysis-{os.getpid()}.h5"
    second.save_arrays("nominal", {"x": np.zeros(2)})

    first.tidy()  # empty: removed; the .partial folder still holds the other journal
    assert not first.folder.exists()
    assert sorted(p.name for p in (tmp_path / "families.h5.partial").iterdir()) == [
        f"{'b' * 64}-c8"
    ]
    second.tidy()  # holds a chunk: kept as it is
    assert [p.name for p in second.folder.iterdir()] == ["nominal.npz"]
    (second.folder / "nominal.npz").unlink()
    second.tidy()
    assert not (tmp_path / "families.h5.partial").exists()


def test_journal_clear_keeps_only_the_scratch_files_of_live_processes(tmp_path: Path) -> None:
    """``clear`` deletes everything in the journal — chunks, the nominal run, stray temporaries,
    folders, this process' own scratch file and that of a dead process — except the scratch
    files (``KIND-PID.h5``, a kind may hold ``-``) of another live process, which it leaves
    running; then the journal's folder goes once that process is gone, and the ``.partial``
    folder once no other journal is in it."""
    import os
    import signal
    import subprocess
    import sys

    store = Store(tmp_path / "families.h5")
    journal, other = store.journal("a" * 64, 4), store.journal("b" * 64, 4)
    other.save_arrays("nominal", {"x": np.zeros(2)})
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    # SIGHUP as by default, even under nohup: a stray signal to it must end it, not be ignored
    live = subprocess.Popen(
        ["sleep", "60"], preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL)
    )
    try:
        live_files = [f"{kind}-{live.pid}.h5" for kind in ("family", "analysis", "speed-response")]
        live_files += [f"part{i}-{live.pid}.h5" for i in range(8)]
        gone = ["nominal.npz", "chunk-000000000.npz", "chunk-000000004.npz"]
        gone += [f"chunk-00000000{i}.{live.pid}.tmp" for i in (8, 9)]  # (not a scratch file)
        gone += [f"family-{dead.pid}.h5", f"family-{os.getpid()}.h5", f"analysis-{os.getpid()}.h5"]
        journal.folder.mkdir(parents=True)
        for name in live_files + gone:
            (journal.folder / name).write_bytes(b"x")
        (journal.folder / "subfolder").mkdir()
        (journal.folder / "subfolder" / "inside.npz").write_bytes(b"x")

        journal.clear()
        assert sorted(p.name for p in journal.folder.iterdir()) == sorted(live_files)
        with pytest.raises(subprocess.TimeoutExpired):  # left running (and untouched)
            live.wait(timeout=0.5)
    finally:
        live.kill()
        live.wait()
    journal.clear()
    assert not journal.folder.exists()
    assert [p.name for p in journal.folder.parent.iterdir()] == [other.folder.name]
    other.clear()
    assert not (tmp_path / "families.h5.partial").exists()
