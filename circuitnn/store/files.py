"""The HDF5 store of families: an index file, and one HDF5 file per family beside it.

Layout: the store ``PATH`` (say ``families.h5``) is a small index file whose group ``families``
holds one HDF5 external link per family, named by the family's content hash, to the family's own
file ``PATH.d/KEY.h5``; plain h5py follows the links (``h5py.File(PATH)["families"][KEY]``).

Crash safety: finished chunks of a running extraction go to a journal folder beside the store
(``STORE.partial/KEY/``, one ``.npz`` per chunk, each written to a temporary name and renamed), so
a killed run loses at most the chunks in flight and a rerun resumes. The family is written slice by
slice, as chunks arrive, into a scratch HDF5 file in that folder (:class:`FamilyWriter`; a scratch
file is never trusted after a crash: a rerun writes a new one from the journal). A complete family
is committed under an exclusive lock file by renaming its scratch file into ``PATH.d/`` and then
rewriting the index atomically (copy, add the link, rename over); an analysis added later goes into
a copy of the family's file that is renamed over it. So readers and a killed writer only ever see
old or new files — never a half-written one — and a commit costs the size of one family (or of the
index), not of the store.

Compression: the large datasets are compressed with Blosc (LZ4, numbers byte-shuffled), a
lossless HDF5 filter that ships with ``hdf5plugin``; plain h5py reads them after
``import hdf5plugin``, which registers the filter (files written before used h5py's LZF, which
h5py reads without it).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from circuitnn.errors import CircuitnnError, StoreError, StoreFilterMissing

SCHEMA_VERSION = 2  # 2: run_alone, curves_down, status 3, simulator settings in the key


# HDF5 1.10 file format or later: its superblock, object headers and chunk indexes carry
# checksums, and every numeric dataset a Fletcher-32 checksum per HDF5 chunk, so a damaged file
# is refused with a StoreError when read instead of returning wrong numbers (readable by HDF5 >=
# 1.10). Variable-length strings (text attributes, failure reasons) live in HDF5's global heap,
# which has no checksum.
LIBVER = ("v110", "latest")


@contextlib.contextmanager
def open_store_file(path: Path, what: str) -> Iterator[Any]:
    """Open a store's HDF5 file read-only; whatever fails inside (HDF5 errors, checksum and
    filter failures, wrong types, bad JSON) becomes one :class:`StoreError` naming ``what``."""
    h5py = h5py_with_filters()

    if path.is_dir():
        raise StoreError(f"{what} is a folder, not a store's index file")
    try:
        handle = h5py.File(path, "r")
    except Exception as error:  # OSError mostly; whatever a damaged file makes HDF5 say
        errno_code = getattr(error, "errno", None)
        reason = (
            os.strerror(errno_code)
            if errno_code
            else (str(error).strip().splitlines() or [type(error).__name__])[0]
        )
        raise StoreError(
            f"{what} cannot be read as HDF5 (corrupt or truncated?): {reason}"
        ) from None
    try:
        if as_text(handle.attrs.get("format", "")) != "circuitnn-store":
            raise StoreError(f"{what} is an HDF5 file but not a circuitnn store")
        yield handle
    except CircuitnnError:
        raise
    except Exception as error:
        if _filter_missing(error):
            raise StoreFilterMissing(
                f"{what} needs an HDF5 compression filter this Python cannot load ({error}); "
                "the file is not damaged: the store's Blosc filter comes with hdf5plugin (pip "
                "install hdf5plugin), another filter with its HDF5 plugin on HDF5_PLUGIN_PATH"
            ) from None
        raise StoreError(f"{what} is damaged: {type(error).__name__}: {error}") from None
    finally:
        with contextlib.suppress(Exception):
            handle.close()


def _filter_missing(error: Exception) -> bool:
    """Whether HDF5 failed for want of a filter plugin (HDF5 1.x: "required filter ... is not
    registered"; 2.x: it "can't open directory" of plugins), not because the file is damaged."""
    text = str(error)
    return "not registered" in text or ("can't open directory" in text and "plugin" in text)


def rewrite_atomically(
    target: Path, write: Callable[[Path], None], grows: int, what: str, fresh: bool = False
) -> None:
    """Change an HDF5 file atomically (call under the store's lock): copy it (or start an empty
    store file: always with ``fresh``), reserve the disk space for the copy and ``grows`` more
    bytes, ``write`` into the copy, fsync it and rename it over ``target``. Readers and a killed
    writer only ever see the old or the new file; on any failure the old one stays and the copy
    is removed."""
    for stale in target.parent.glob(f".{target.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        if target.exists() and not fresh:
            _clone_or_copy(target, temporary)
        else:
            _empty_store(temporary)
        reserve_space(temporary, temporary.stat().st_size + grows, f"the new copy of {target}")
        write(temporary)
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        fsync_folder(target.parent)
    except CircuitnnError:
        raise
    except Exception as error:  # OSError; h5py may say RuntimeError (disk full on close)
        raise StoreError(
            f"could not write {what}: {error} (the store was left as it was)"
        ) from None
    finally:
        temporary.unlink(missing_ok=True)


def add_link(path: Path, key: str, folder: str) -> None:
    """Link family ``key`` (group ``/families/KEY`` of ``folder/KEY.h5``, ``folder`` relative to
    the index's folder) into the index file at ``path``, and point the links of the other
    families to ``folder`` too (an index copied or renamed with its folder keeps working with
    circuitnn, which reads the links' file names in ``folder``, and becomes right for plain h5py
    again on the next commit)."""
    import h5py

    with h5py_file(path, "a") as handle:
        families = handle.require_group("families")
        for name in list(families.keys()):
            if isinstance(families.get(name, getlink=True), h5py.ExternalLink):
                del families[name]
                families[name] = h5py.ExternalLink(f"{folder}/{name}.h5", f"/families/{name}")
        families[key] = h5py.ExternalLink(f"{folder}/{key}.h5", f"/families/{key}")


def _clone_or_copy(source: Path, target: Path) -> None:
    """Copy a file: a copy-on-write clone (FICLONE: btrfs, XFS, ...) where the file system has
    them (instant, whatever the size), else an in-kernel copy."""
    ficlone = 0x40049409
    with open(source, "rb") as src, open(target, "wb") as dst:
        try:
            fcntl.ioctl(dst.fileno(), ficlone, src.fileno())
            return
        except OSError:
            pass
    shutil.copyfile(source, target)


def fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def plain_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def as_text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


REASON_BYTES = 256  # longest failure reason kept, UTF-8 bytes (a longer one is cut, with "…")


def attr_value(value: Any) -> Any:
    """An attribute value as HDF5 keeps it inside the object's checksummed header: text as a
    fixed-length UTF-8 string. (h5py writes ``str`` as a variable-length string, which lives in
    HDF5's global heap: no checksum, and a damaged global heap can hang HDF5's reader.) h5py
    reads such an attribute back as ``bytes``."""
    if not isinstance(value, str):
        return value
    import h5py

    encoded = value.encode("utf-8")
    return np.array(encoded, dtype=h5py.string_dtype("utf-8", max(1, len(encoded))))


def fixed_text(texts: Any) -> np.ndarray:
    """Texts as a fixed-length UTF-8 array of :data:`REASON_BYTES` (not variable-length strings,
    for the reasons given in :func:`attr_value`)."""
    import h5py

    rows = []
    for text in texts:
        encoded = str(text).encode("utf-8")
        if len(encoded) > REASON_BYTES:
            cut = "…".encode()
            encoded = encoded[: REASON_BYTES - len(cut)].decode("utf-8", "ignore").encode() + cut
        rows.append(encoded)
    return np.array(rows, dtype=h5py.string_dtype("utf-8", REASON_BYTES)).reshape(len(rows))


RESERVE_MARGIN = 1 << 20  # bytes reserved beyond an estimate (HDF5 metadata, chunk indexes)


def reserve_space(path: Path, size: int, what: str) -> None:
    """Claim the disk space for ``path`` to grow to ``size`` (+ a margin) bytes before HDF5 writes
    into it.

    HDF5 does not survive a failed write well (a full disk has made it abort with a double free
    inside ``H5Ocopy``, or crash when a file whose flush failed is closed), so the space is
    claimed first with ``posix_fallocate``: a full disk, a quota or a file-size limit then fails
    here with a clean :class:`StoreError`, before HDF5 writes a byte. HDF5 cuts the file back to
    its real end when it closes a file it opened after this. File systems without fallocate are
    left as they are.
    """
    try:
        descriptor = os.open(path, os.O_RDWR)
    except OSError:
        return
    try:
        os.posix_fallocate(descriptor, 0, size + RESERVE_MARGIN)
    except OSError as error:
        if error.errno in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            return
        raise StoreError(
            f"not enough space for {what} ({path}): it needs about "
            f"{(size + RESERVE_MARGIN) / 2**20:.1f} MiB ({error}); nothing was written to it"
        ) from None
    finally:
        os.close(descriptor)


def file_size(path: Path) -> int:
    """A file's size in bytes (0 if it is gone)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def array_bytes(values: dict[str, Any]) -> int:
    """Bytes of the arrays among ``values`` (and in dicts of arrays): an uncompressed size."""
    total = 0
    for value in values.values():
        if isinstance(value, np.ndarray):
            total += value.nbytes
        elif isinstance(value, dict):
            total += array_bytes(value)
    return total


def h5py_file(path: Path, mode: str, cache_bytes: int = 1 << 20) -> Any:
    """A file this process writes alone, in the store's format (:data:`LIBVER`): a scratch file
    or a temporary copy, which only its writer (holding the store's lock) opens.

    Without HDF5's own file lock: HDF5 takes it with ``flock``, which a child forked meanwhile
    (an ngspice run started by another thread) shares until it execs, so a scratch file closed
    and reopened by the writer thread at that moment would fail to open (EAGAIN)."""
    return h5py_with_filters().File(
        path, mode, libver=LIBVER, rdcc_nbytes=cache_bytes, rdcc_nslots=1021, locking=False
    )


def h5py_with_filters() -> Any:
    """h5py, with hdf5plugin's compression filters registered (importing hdf5plugin registers
    them with HDF5, once per process): the store's datasets need its Blosc filter."""
    import h5py
    import hdf5plugin  # noqa: F401

    return h5py


def compressed(shuffle: bool = True) -> dict[str, Any]:
    """Dataset options of the store's lossless compression: Blosc with LZ4 at level 5, one
    thread, the bytes of each number shuffled first (``shuffle``; not for text). Beside h5py's
    LZF with its shuffle it makes files of the same size (within 2 %) at about a fifth of the CPU
    time to write and two thirds to read (a 4000 × 401 family; ``benchmarks/bench_extract.py``
    prints both)."""
    import hdf5plugin

    order = hdf5plugin.Blosc.SHUFFLE if shuffle else hdf5plugin.Blosc.NOSHUFFLE
    return dict(hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=order))


def _empty_store(path: Path) -> None:
    """A new store file holding no family yet."""
    with h5py_file(path, "w") as handle:
        handle.attrs["format"] = attr_value("circuitnn-store")
        handle.attrs["schema_version"] = SCHEMA_VERSION
        handle.create_group("families")


def families_group(handle: Any) -> Any:
    """The group of families (empty before the first). Not ``handle.get``: h5py turns a damaged
    object header (a checksum error) into KeyError, which ``get`` would hide as "no families"."""
    if "families" not in handle:
        return {}
    return handle["families"]


def checksummed(data: np.ndarray) -> dict[str, Any]:
    """Dataset options adding a Fletcher-32 checksum (numeric and fixed-size arrays; HDF5 cannot
    filter scalars or variable-length strings)."""
    array = np.asarray(data)
    return {"fletcher32": True} if array.ndim > 0 and array.dtype != object else {}
