"""Where results may be written: checked before any simulation, so a bad path is one line at
the start instead of a traceback after hours of work.

A folder is usable when it is a folder (or can be made: the nearest existing folder above it is a
folder) and a file can be created in it — tried for real, with a temporary file that is removed
at once, so read-only file systems, permissions and quotas all count (and ``root`` is not fooled
by permission bits it ignores).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from circuitnn.errors import ConfigError


def shown(path: str | Path) -> str:
    """A path for a one-line message (quoted with escapes when it holds unprintable text)."""
    text = str(path)
    return text if text.isprintable() else repr(text)


def writable_folder(path: str | Path, what: str) -> Path:
    """``path`` if results can be written into it (it need not exist yet); :class:`ConfigError`
    naming ``what`` otherwise."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{what}: {shown(path)} is a file, not a folder")
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(
            f"{what}: {shown(existing)} is a file, so {shown(path)} cannot be a folder"
        )
    try:
        descriptor, probe = tempfile.mkstemp(prefix=".circuitnn-probe-", dir=existing)
    except OSError as error:
        raise ConfigError(
            f"{what}: cannot write into {shown(existing)}: {error.strerror or error}"
        ) from None
    os.close(descriptor)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return path


def writable_file(path: str | Path, what: str) -> Path:
    """``path`` if a file can be written there: not a folder, in a usable folder
    (:func:`writable_folder`); :class:`ConfigError` naming ``what`` otherwise."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise ConfigError(f"{what}: {shown(path)} is a folder, not a file")
    writable_folder(path.parent, what)
    return path
