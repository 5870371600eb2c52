"""Reading a user's HDF5 table (for :func:`circuitnn.data.load_table`): read-only, into plain
numpy arrays, so that circuitnn.data needs no h5py of its own (h5py stays inside the store)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from circuitnn.errors import ConfigError
from circuitnn.store.files import h5py_with_filters

if TYPE_CHECKING:
    import h5py


def read_hdf5(path: Path, key: str | None = None) -> dict[str, np.ndarray]:
    """Named arrays of an HDF5 table: the datasets of the group ``key`` (default the root; its
    subgroups and scalar datasets are skipped), or the one dataset ``key`` (a compound dataset
    gives its fields, a plain one itself). ConfigError when the file is not HDF5 or ``key`` is
    not in it."""
    h5py = h5py_with_filters()

    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise ConfigError(f"{path}: not a readable HDF5 file: {error}") from None
    with handle:
        node = handle
        if key not in (None, "", "/"):
            if key not in handle:
                raise ConfigError(
                    f"{path}: no group or dataset {key!r}; the file holds: "
                    f"{', '.join(_members(handle)) or 'nothing'}"
                )
            node = handle[key]
        if isinstance(node, h5py.Dataset):
            return {node.name.rsplit("/", 1)[-1]: node[()]}
        arrays = {
            name: item[()]
            for name, item in node.items()
            if isinstance(item, h5py.Dataset) and item.ndim > 0  # scalars are metadata
        }
        if not arrays:
            where = "the file" if node is handle else f"group {key!r}"
            groups = [name for name, item in node.items() if isinstance(item, h5py.Group)]
            hint = f" (groups: {', '.join(groups)}; pass key=...)" if groups else ""
            raise ConfigError(f"{path}: empty table: {where} holds no datasets{hint}")
        return arrays


def _members(handle: h5py.Group) -> list[str]:
    names: list[str] = []
    handle.visit(names.append)
    return names
