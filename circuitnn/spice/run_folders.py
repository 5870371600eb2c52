"""ngspice's run folders: one temporary folder per subprocess run, removed afterwards in a
thread of its own (freeing a raw file's pages is no wait of the run's caller); those still
queued when the process exits are removed then."""

from __future__ import annotations

import atexit
import contextlib
import os
import queue
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def run_folder() -> Iterator[Path]:
    """A temporary folder for one ngspice run, removed afterwards in :data:`_BIN`'s thread."""
    folder = Path(tempfile.mkdtemp(prefix="circuitnn-"))
    try:
        yield folder
    finally:
        _BIN.put(folder)


class _Bin:
    """Removes ngspice's run folders in a thread of its own: deleting a run's raw files frees
    their pages (about 1 MiB a DC chunk of 100 instances), work its caller need not wait for.
    Folders still queued when the process exits are removed then."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Path | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None  # the process whose thread empties the queue
        self._closed = False

    def put(self, folder: Path) -> None:
        """Remove ``folder`` soon (at once once the bin is closed)."""
        with self._lock:
            if not self._closed and self._pid != os.getpid():  # first use (or a forked child)
                self._queue = queue.SimpleQueue()
                self._thread = threading.Thread(target=self._empty, name="circuitnn-bin")
                self._thread.daemon = True
                self._thread.start()
                self._pid = os.getpid()
                atexit.register(self.close)
            if not self._closed:
                self._queue.put(folder)
                return
        shutil.rmtree(folder, ignore_errors=True)

    def _empty(self) -> None:
        while (folder := self._queue.get()) is not None:
            shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        """Remove the queued folders and stop the thread (at exit); later folders are removed
        at once."""
        with self._lock:
            self._closed = True
            thread = self._thread if self._pid == os.getpid() else None
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join(timeout=60)


_BIN = _Bin()
