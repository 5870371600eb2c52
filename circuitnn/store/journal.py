"""The journal of an extraction in progress: its finished chunks, each an atomic ``.npz``."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import numpy as np

from circuitnn.errors import StoreError


class Journal:
    """Finished chunks of an extraction in progress, one atomically written ``.npz`` each."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def save_arrays(self, name: str, arrays: dict[str, np.ndarray]) -> None:
        """Record named arrays as ``name.npz`` (atomic: a killed write leaves no partial file).

        :class:`StoreError` naming the file when it cannot be written (disk full, no permission);
        the temporary file is removed and the journal's other chunks are kept.
        """
        final = self.folder / f"{name}.npz"
        # one temporary per process: two runs of the same family may journal the same chunk
        temporary = self.folder / f"{name}.{os.getpid()}.tmp"
        for attempt in range(2):
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                with open(temporary, "wb") as handle:
                    np.savez(handle, **arrays)
                # no fsync: a killed process loses nothing in the page cache, and a chunk left
                # unreadable by a power cut is discarded by load_arrays and recomputed
                os.replace(temporary, final)
                return
            except FileNotFoundError:
                if attempt:  # the folder vanished twice: not another run's clear() racing us
                    raise StoreError(f"cannot journal {final}: its folder vanished") from None
            except OSError as error:
                with contextlib.suppress(OSError):  # (none: its folder could not be made)
                    temporary.unlink()
                raise StoreError(
                    f"cannot journal {name} to {final}: {error} (the chunks journaled before "
                    "are kept; free space and rerun to resume)"
                ) from None

    def load_arrays(self, name: str) -> dict[str, np.ndarray] | None:
        """Arrays saved as ``name``, or None if absent or unreadable (then recomputed).

        Never unpickles: an entry holding Python objects is refused like a damaged one.
        """
        path = self.folder / f"{name}.npz"
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return {key: data[key] for key in data.files}
        except Exception:  # truncated, bad CRC (zipfile.BadZipFile), bad header, pickled objects
            path.unlink(missing_ok=True)
            return None

    def scratch_path(self, kind: str) -> Path:
        """A scratch HDF5 file of this process in the journal's folder (``KIND-PID.h5``)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        return self.folder / f"{kind}-{os.getpid()}.h5"

    def tidy(self) -> None:
        """Remove the journal's folder if nothing is in it (after a run that failed early)."""
        with contextlib.suppress(OSError):
            self.folder.rmdir()
            self.folder.parent.rmdir()

    def clear(self) -> None:
        """Delete the journal (after its family was committed) — all but the scratch file of
        another live process extracting the same family (it finds the family committed and
        deletes its own); a dead process' scratch file goes."""
        for path in self.folder.glob("*"):
            owner = path.stem.rpartition("-")[2]
            if path.suffix == ".h5" and owner.isdigit() and _alive(int(owner)):
                continue
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    path.unlink()
        with contextlib.suppress(OSError):
            self.folder.rmdir()
        with contextlib.suppress(OSError):
            self.folder.parent.rmdir()


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists (on this machine), other than this one."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True
