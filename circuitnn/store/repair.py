"""Checking and repairing a store: find damaged families, rebuild the index from intact family
files, set damaged families aside so they can be extracted again, remove one family.

A family is intact when its file opens, holds its group, and every dataset of it reads back whole
(each HDF5 chunk carries a Fletcher-32 checksum, so damage is found, not read as numbers). A
store's index holds only links, so a damaged index is rebuilt from the family files in
``STORE.d/`` (families of the older one-file layout live inside the index and are kept only when
the index is still readable).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from circuitnn.errors import CircuitnnError, StoreError, StoreFilterMissing
from circuitnn.store.files import (
    add_link,
    as_text,
    families_group,
    h5py_file,
    open_store_file,
    rewrite_atomically,
)
from circuitnn.store.index import Store

_KEY = re.compile(r"[0-9a-f]{24}")


@dataclass(frozen=True)
class FamilyState:
    """One family found in a store: its ``key``, ``neuron`` (when readable), whether the index
    links it (``linked``), where it lies (``path``: its own file, or the index for the older
    layout) and ``problem`` (None when intact)."""

    key: str
    neuron: str | None
    linked: bool
    path: Path
    problem: str | None = None

    @property
    def intact(self) -> bool:
        """Whether every dataset of the family reads back whole."""
        return self.problem is None


@dataclass(frozen=True)
class StoreState:
    """The result of :func:`check_store`: the index's ``problem`` (None when readable) and every
    family, linked or lying unlinked in the store's folder."""

    store: Path
    index_problem: str | None
    families: tuple[FamilyState, ...]

    @property
    def damaged(self) -> list[FamilyState]:
        """The families that are not intact."""
        return [family for family in self.families if not family.intact]

    @property
    def healthy(self) -> bool:
        """Whether the index and every linked family are intact (and none is left unlinked)."""
        return self.index_problem is None and all(
            family.intact and family.linked for family in self.families
        )


def check_store(store: Store, selector: str | None = None) -> StoreState:
    """Read every family of ``store`` whole (only those matching ``selector``, a key, key prefix
    or neuron name, if given) and report what is damaged. Reads, never writes."""
    linked: dict[str, Path] = {}
    index_problem = None
    if not store.path.exists():
        raise StoreError(f"store {store.path} does not exist")
    try:
        linked = store.family_files()
    except StoreError as error:
        index_problem = str(error)
    lying = {
        path.stem: path
        for path in sorted(store.folder.glob("*.h5"))
        if _KEY.fullmatch(path.stem) and path.is_file()
    }
    states = []
    for key in sorted({*linked, *lying}):
        path = linked.get(key, lying.get(key, store.family_path(key)))
        neuron, problem = _read_whole(store, key, path)
        state = FamilyState(key, neuron, key in linked, path, problem)
        if selector is None or key.startswith(selector) or neuron == selector:
            states.append(state)
    return StoreState(store.path, index_problem, tuple(states))


def _read_whole(store: Store, key: str, path: Path) -> tuple[str | None, str | None]:
    """The family's neuron and None, or what is wrong with it."""
    if not path.exists():
        return None, f"its file {path} is missing"
    neuron = None
    try:
        with open_store_file(path, f"family file {path}") as handle:
            group = families_group(handle)[key]
            neuron = as_text(group.attrs["neuron"])
            _read_datasets(group)
    except StoreFilterMissing:
        raise  # not damage: setting the family aside would throw away a good file
    except CircuitnnError as error:
        return neuron, str(error).splitlines()[0]
    except (KeyError, OSError, ValueError) as error:
        return neuron, f"{type(error).__name__}: {error}"
    return neuron, None


def _read_datasets(group: Any) -> None:
    import h5py

    def read(name: str, item: Any) -> None:
        if isinstance(item, h5py.Dataset):
            item[()]

    group.visititems(read)


def repair_store(store: Store, lock_timeout: float = 600.0) -> StoreState:
    """Rebuild ``store``'s index from its intact families and set damaged family files aside
    (renamed ``KEY.h5.damaged``), under the store's lock, so a rerun extracts them again; the
    state found before the repair."""
    with store.lock(lock_timeout):
        state = check_store(store)
        intact = [family for family in state.families if family.intact]
        own = [family.key for family in intact if family.path != store.path]
        inside = [family.key for family in intact if family.path == store.path]
        for family in state.damaged:
            if family.path != store.path and family.path.exists():
                os.replace(family.path, family.path.with_name(family.path.name + ".damaged"))
        rewrite_atomically(
            store.path,
            lambda path: _fill_index(path, store, own, inside),
            grows=0,
            what=f"the index of {store.path}",
            fresh=True,
        )
    return state


def _fill_index(path: Path, store: Store, own: list[str], inside: list[str]) -> None:
    """Link ``own`` families into the new index at ``path``; copy the older layout's families
    ``inside`` the old index into it."""
    for key in own:
        add_link(path, key, store.folder.name)
    if not inside:
        return
    with open_store_file(store.path, f"store {store.path}") as old, h5py_file(path, "a") as new:
        target = new.require_group("families")
        for key in inside:
            old.copy(families_group(old)[key], target, name=key)


def remove_family(store: Store, selector: str, lock_timeout: float = 600.0) -> str:
    """Remove one family from ``store`` (its link and its file), named by a key, a unique key
    prefix or a neuron name with one family; the key removed."""
    with store.lock(lock_timeout):
        matches = check_store(store, selector).families
        by_key = [family for family in matches if family.key.startswith(selector)]
        chosen = by_key or [family for family in matches if family.neuron == selector]
        if not chosen:
            raise StoreError(f"no family {selector!r} in {store.path}")
        if len(chosen) > 1:
            listed = ", ".join(f"{family.key} ({family.neuron})" for family in chosen)
            raise StoreError(
                f"{selector!r} names {len(chosen)} families in {store.path}: {listed}; give one key"
            )
        (family,) = chosen
        if family.linked:
            rewrite_atomically(
                store.path,
                lambda path: _drop_link(path, family.key),
                grows=0,
                what=f"the index of {store.path}",
            )
        if family.path != store.path:
            family.path.unlink(missing_ok=True)
    return family.key


def _drop_link(path: Path, key: str) -> None:
    with h5py_file(path, "a") as handle:
        del handle["families"][key]
