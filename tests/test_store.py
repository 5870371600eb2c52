"""The HDF5 store: readable with plain h5py, units recorded, damage reported, families found."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import DATA, assert_same_family, options

from circuitnn import extract_family
from circuitnn.errors import ConfigError, StoreError
from circuitnn.family import FAILED, OK, Family
from circuitnn.family.descriptors import DESCRIPTOR_UNITS
from circuitnn.spice import ngspice_version
from circuitnn.store import Store
from circuitnn.store.files import SCHEMA_VERSION


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Family, Family]:
    """A store holding a divider family (with a supply) and a diode family (without one)."""
    path = tmp_path_factory.mktemp("store") / "families.h5"
    divider = extract_family(
        DATA / "divider.toml", n=5, seed=1, chip_size=2, store=path, options=options()
    )
    diode = extract_family(DATA / "diode_r.toml", n=3, seed=2, store=path, options=options())
    return path, divider, diode


def _text(value: object) -> object:
    """Text attributes are fixed-length UTF-8 (checksummed, in the object header): h5py reads
    them as bytes."""
    return value.decode() if isinstance(value, bytes) else value


def test_family_reads_back_with_plain_h5py(stored: tuple[Path, Family, Family]) -> None:
    path, divider, _ = stored
    with h5py.File(path, "r") as handle:
        assert _text(handle.attrs["format"]) == "circuitnn-store"
        assert handle.attrs["schema_version"] == SCHEMA_VERSION
        group = handle["families"][divider.key]
        expected = {
            "input": (divider.grid, "V"),
            "curves": (divider.curves, "V"),
            "nominal_curve": (divider.nominal_curve, "V"),
            "supply_current": (divider.supply_current, "A"),
            "input_current": (divider.input_current, "A"),
            "power": (divider.power, "W"),
        }
        for name, (values, unit) in expected.items():
            np.testing.assert_array_equal(group[name][()], values, err_msg=name)
            assert _text(group[name].attrs["units"]) == unit, name
        assert group["curves"].shape == (5, 41)
        assert group["supply_current"].shape == (5, 1, 41)

        parameters = group["parameters"]
        assert json.loads(parameters.attrs["columns"]) == ["r1", "r2", "rs"]
        np.testing.assert_array_equal(parameters[()], divider.parameters)
        np.testing.assert_array_equal(group["chip"][()], [0, 0, 1, 1, 2])
        np.testing.assert_array_equal(group["status"][()], np.ones(5))
        assert "1 = ok" in _text(group["status"].attrs["meaning"])
        reasons = [r.decode() if isinstance(r, bytes) else r for r in group["failure_reason"][()]]
        assert reasons == [""] * 5

        descriptors = group["descriptors"]
        assert set(descriptors) == set(DESCRIPTOR_UNITS) - {"hysteresis"}  # (swept up only)
        assert _text(descriptors["midpoint"].attrs["units"]) == "V"
        assert _text(descriptors["gain"].attrs["units"]) == "V / V"
        assert _text(descriptors["mean_power"].attrs["units"]) == "W"
        for name in descriptors:
            np.testing.assert_array_equal(descriptors[name][()], divider.descriptors[name])
        # the divider's gain is r2/(r1+r2) exactly, its mean power known in closed form
        r1, r2, _ = divider.parameters.T
        np.testing.assert_allclose(descriptors["gain"][()], r2 / (r1 + r2), rtol=1e-9)

        attrs = {name: _text(value) for name, value in group.attrs.items()}
        assert attrs["neuron"] == "divider"
        assert attrs["n"] == 5 and attrs["seed"] == 1 and attrs["chip_size"] == 2
        assert attrs["temperature"] == 27.0
        assert attrs["output_unit"] == "V"
        assert attrs["ngspice_version"] == ngspice_version()
        assert attrs["ngspice_version"].startswith("ngspice-")
        assert attrs["circuitnn_version"]
        assert ".subckt divider" in attrs["netlist"]
        assert json.loads(attrs["supplies"]) == ["vdd"]
        assert json.loads(attrs["nominal_parameters"]) == {"r1": 1e3, "r2": 3e3, "rs": 1e4}
        assert attrs["created"]


def test_store_load_returns_the_same_family(stored: tuple[Path, Family, Family]) -> None:
    path, divider, diode = stored
    store = Store(path)
    assert_same_family(store.load(divider.key), divider)
    loaded = store.load(diode.key)
    assert_same_family(loaded, diode)
    assert loaded.supplies == ()
    assert loaded.supply_current.shape == (3, 0, 61)
    assert loaded.output_unit == "V"


def test_rows_are_read_and_overwritten_alone(
    stored: tuple[Path, Family, Family], tmp_path: Path
) -> None:
    """``read_rows`` gives just the instances asked for; ``update_rows`` (the retry of failed
    instances) overwrites just those instances' columns and reasons, in that family alone (a
    new copy of its file renamed over it; the index untouched), under the store's lock."""
    path, divider, diode = stored
    store = Store(path).copy(tmp_path / "copy.h5")
    assert repr(store) == f"Store({str(tmp_path / 'copy.h5')!r})"
    rows = np.array([1, 3])
    np.testing.assert_array_equal(
        store.read_rows(divider.key, "curves", rows), divider.curves[rows]
    )
    np.testing.assert_array_equal(store.read_rows(divider.key, "power", [4]), divider.power[[4]])
    assert store.read_rows(divider.key, "curves", []).shape == (0, divider.curves.shape[1])

    curves = divider.curves[rows] * 2.0 + 1.0
    status = np.array([FAILED, OK], dtype=divider.status.dtype)
    index = (store.path.stat().st_ino, store.path.read_bytes())
    family_file = store.family_path(divider.key).stat().st_ino
    store.update_rows(
        divider.key, [1, 3], {"curves": curves, "status": status}, ["refused again", ""]
    )
    # a new copy of the family's file was renamed over it; the index was left as it was
    assert store.family_path(divider.key).stat().st_ino != family_file
    assert (store.path.stat().st_ino, store.path.read_bytes()) == index
    updated = store.load(divider.key)
    expected = divider.curves.copy()
    expected[rows] = curves
    np.testing.assert_array_equal(updated.curves, expected)
    assert updated.status.tolist() == [OK, FAILED, OK, OK, OK]
    assert updated.reasons == ["", "refused again", "", "", ""]
    assert {row["key"]: row["failed"] for row in store.describe()} == {divider.key: 1, diode.key: 0}
    np.testing.assert_array_equal(updated.power, divider.power)  # a column not given: kept
    assert_same_family(store.load(diode.key), diode)
    assert_same_family(Store(path).load(divider.key), divider)  # the original store untouched
    assert not list(store.folder.glob(".*.tmp"))

    other = Store(store.path)  # e.g. another process committing to the same store
    with other.lock(timeout=1), pytest.raises(StoreError, match="locked"):
        store.update_rows(divider.key, rows, {"curves": divider.curves[rows]}, ["", ""], 0.2)
    np.testing.assert_array_equal(store.load(divider.key).curves, expected)


def test_row_blocks_are_exactly_the_rows_asked_for(stored: tuple[Path, Family, Family]) -> None:
    """``read_row_blocks`` gives, block by block, just the instances each block names: runs of
    consecutive rows (from the first row or not, up to the last row or not), rows with gaps,
    one row, none — the same numbers as the family in memory, no row more or less."""
    path, divider, _ = stored
    blocks = [[0, 1], [1, 2], [2], [1, 2, 3], [3, 4], [0, 3], [1, 4], [0, 2, 4], [], [0]]
    for name in ("curves", "status"):
        read = list(Store(path).read_row_blocks(divider.key, name, blocks))
        assert len(read) == len(blocks)
        for block, values in zip(blocks, read, strict=True):
            expected = getattr(divider, name)[np.array(block, dtype=int)]
            assert values.shape == expected.shape, (name, block)
            np.testing.assert_array_equal(values, expected, err_msg=f"{name} {block}")


def test_retrying_no_instances_leaves_the_family_as_it_was(
    stored: tuple[Path, Family, Family], tmp_path: Path
) -> None:
    """``update_rows`` of no instances (a plain empty list of rows, no reasons) succeeds and
    changes no instance."""
    path, divider, _ = stored
    store = Store(path).copy(tmp_path / "copy.h5")
    empty = divider.curves[:0]
    store.update_rows(divider.key, [], {"curves": empty, "status": divider.status[:0]}, [])
    assert_same_family(store.load(divider.key), divider)


def test_a_failed_update_names_the_family_and_leaves_the_store_as_it_was(
    stored: tuple[Path, Family, Family], tmp_path: Path
) -> None:
    """When the rows cannot be written (here: curves of the wrong length), ``update_rows``
    raises a :class:`StoreError` naming what it wrote (the family's key, first 12 characters,
    and the store) and the family's file is as before, with no temporary copy left."""
    path, divider, diode = stored
    store = Store(path).copy(tmp_path / "copy.h5")
    before = store.family_path(divider.key).read_bytes()
    wrong = np.zeros((2, divider.curves.shape[1] + 3))
    with pytest.raises(StoreError) as caught:
        store.update_rows(divider.key, [1, 3], {"curves": wrong}, ["", ""])
    assert (
        f"could not write instances retried in family {divider.key[:12]} of {store.path}: "
        in str(caught.value)
    )
    assert "(the store was left as it was)" in str(caught.value)
    assert store.family_path(divider.key).read_bytes() == before
    assert sorted(p.name for p in store.folder.iterdir()) == sorted(
        f"{key}.h5" for key in (divider.key, diode.key)
    )
    with pytest.raises(StoreError) as caught:  # a family the store does not hold
        store.update_rows("0" * 64, [1], {"curves": divider.curves[[1]]}, [""])
    assert str(caught.value) == f"no family {'0' * 64} in {store.path}"


def test_update_rows_claims_the_space_of_its_columns_and_reasons_first(
    stored: tuple[Path, Family, Family], tmp_path: Path
) -> None:
    """Before HDF5 writes, ``update_rows`` claims disk space for the copy of the family's file
    plus the new columns' bytes plus :data:`REASON_BYTES` per failure reason (and the margin
    :data:`RESERVE_MARGIN`). Under a real file-size limit (RLIMIT_FSIZE, the kernel refusing
    to grow a file past it, as a full disk would) that leaves room for the columns but not the
    reasons, it fails with a :class:`StoreError` "not enough space" and the family is kept as it
    was; with room for both, the same update goes through."""
    import resource
    import signal

    from circuitnn.store.files import REASON_BYTES, RESERVE_MARGIN

    path, divider, _ = stored
    store = Store(path).copy(tmp_path / "copy.h5")
    family_file = store.family_path(divider.key)
    before = family_file.read_bytes()
    rows = [0, 2, 4]
    curves = divider.curves[rows] + 1.0
    reasons = ["retried", "", "retried"]
    columns_only = len(before) + RESERVE_MARGIN + curves.nbytes  # bytes

    def update_under_limit(limit: int) -> None:
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG, not a signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
        try:
            store.update_rows(divider.key, rows, {"curves": curves}, reasons)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            signal.signal(signal.SIGXFSZ, handler)

    with pytest.raises(StoreError, match=r"not enough space for the new copy of .*File too large"):
        update_under_limit(columns_only)
    assert family_file.read_bytes() == before
    update_under_limit(columns_only + len(reasons) * REASON_BYTES)
    updated = store.load(divider.key)
    np.testing.assert_array_equal(updated.curves[rows], curves)
    assert updated.reasons == ["retried", "", "", "", "retried"]


def test_matching_names_families_by_key_prefix_or_neuron(
    stored: tuple[Path, Family, Family],
) -> None:
    """``matching`` (the families ``circuitnn store remove`` deletes) gives the keys named by a
    whole key, a neuron name, or a key prefix (every family whose key starts with it), oldest
    first; none for a selector that names nothing."""
    path, divider, diode = stored
    store = Store(path)
    assert store.matching(divider.key) == [divider.key]
    assert store.matching("diode_r") == [diode.key]
    assert store.matching(divider.key[:20]) == [divider.key]
    assert store.matching(diode.key[:-1]) == [diode.key]
    assert store.matching("") == [divider.key, diode.key]  # (the divider was stored first)
    assert store.matching("zzzz") == []


def test_copy_refuses_an_existing_index_or_folder_and_names_a_failed_copy(
    stored: tuple[Path, Family, Family], tmp_path: Path
) -> None:
    """``copy`` refuses a target whose index file exists, or whose folder does (either one is
    enough), and leaves it as it was; a copy that fails (the store does not exist) is a
    :class:`StoreError` naming both paths."""
    path, _, _ = stored
    target = Store(tmp_path / "target.h5")
    target.path.write_bytes(b"someone else's file")
    with pytest.raises(StoreError, match="exists already"):
        Store(path).copy(target.path)
    assert target.path.read_bytes() == b"someone else's file"
    assert not target.folder.exists()
    target.path.unlink()
    target.folder.mkdir()
    (target.folder / "kept.h5").write_bytes(b"kept")
    with pytest.raises(StoreError, match="exists already"):
        Store(path).copy(target.path)
    assert not target.path.exists()
    assert [p.name for p in target.folder.iterdir()] == ["kept.h5"]

    missing = Store(tmp_path / "none.h5")
    with pytest.raises(StoreError) as caught:
        missing.copy(tmp_path / "copy.h5")
    assert str(caught.value).startswith(f"cannot copy {missing.path} to {tmp_path / 'copy.h5'}: ")


def test_commit_claims_the_space_of_the_family_s_arrays_and_reasons_first(tmp_path: Path) -> None:
    """Before HDF5 writes, ``commit`` claims disk space for the family's new file: the bytes of
    its arrays plus :data:`REASON_BYTES` per instance (its failure reasons) and the margin
    :data:`RESERVE_MARGIN`. Under a real file-size limit (RLIMIT_FSIZE, as a full disk) of just
    that size (no room for the file's own HDF5 metadata) it is a :class:`StoreError` "not
    enough space" naming the family's file, and the store holds nothing; with room for it, the
    same commit goes through."""
    import resource
    import signal

    from circuitnn.store.files import REASON_BYTES, RESERVE_MARGIN

    family = extract_family(DATA / "divider.toml", n=200, seed=9, options=options())
    arrays = [value for value in vars(family).values() if isinstance(value, np.ndarray)]
    arrays += list(family.descriptors.values())
    reasons = family.n * REASON_BYTES
    needed = sum(a.nbytes for a in arrays) + reasons + RESERVE_MARGIN
    store = Store(tmp_path / "families.h5")

    def commit_under_limit(limit: int) -> None:
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG, not a signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
        try:
            store.commit(family)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            signal.signal(signal.SIGXFSZ, handler)

    with pytest.raises(StoreError) as caught:
        commit_under_limit(needed)
    assert str(caught.value).startswith(
        f"not enough space for the new copy of {store.family_path(family.key)} "
    )
    assert store.keys() == []
    assert not store.family_path(family.key).exists()
    commit_under_limit(needed + 2 * reasons)
    assert_same_family(store.load(family.key), family)


def test_describe_and_resolve(stored: tuple[Path, Family, Family]) -> None:
    path, divider, diode = stored
    store = Store(path)
    rows = {row["neuron"]: row for row in store.describe()}
    assert set(rows) == {"divider", "diode_r"}
    assert rows["divider"]["key"] == divider.key
    assert rows["divider"]["n"] == 5 and rows["divider"]["seed"] == 1
    assert rows["divider"]["failed"] == 0
    assert rows["divider"]["chip_size"] == 2 and rows["diode_r"]["chip_size"] == 1
    with h5py.File(path, "r") as handle:  # the creation times, oldest first
        created = {
            key: _text(handle["families"][key].attrs["created"]) for key in handle["families"]
        }
    assert [(row["key"], row["created"]) for row in store.describe()] == [
        (divider.key, created[divider.key]),
        (diode.key, created[diode.key]),
    ]
    assert rows["diode_r"]["parameters"] == {"is": 1e-14, "n": 1.5, "r": 1e3}
    assert sorted(store.keys()) == sorted([divider.key, diode.key])
    assert divider.key in store

    assert store.resolve("divider") == divider.key
    assert store.resolve("diode_r") == diode.key
    assert store.resolve(divider.key) == divider.key
    prefix = next(
        divider.key[:length]
        for length in range(1, 24)
        if not diode.key.startswith(divider.key[:length])
    )
    assert store.resolve(prefix) == divider.key
    assert store.resolve(None) == diode.key  # the newest (stored after the divider)
    with pytest.raises(StoreError) as caught:
        store.resolve("")  # a prefix of every key
    assert str(caught.value) == (
        f"'' matches several families in {path}: {sorted([divider.key, diode.key])}"
    )
    with pytest.raises(StoreError) as caught:
        store.resolve("cmos_inverter")
    assert str(caught.value) == f"no family 'cmos_inverter' in {path}"  # (none damaged)
    with pytest.raises(StoreError, match="no family"):
        store.load("zzzz")


def test_commit_is_idempotent(stored: tuple[Path, Family, Family], tmp_path: Path) -> None:
    path, divider, _ = stored
    copy = tmp_path / "copy.h5"  # a store is its index file and its folder of family files
    store = Store(path).copy(copy)
    store.commit(divider)
    assert sorted(store.keys()) == sorted(Store(path).keys())
    assert_same_family(store.load(divider.key), divider)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_damaged_store_gives_store_error_naming_the_file(
    stored: tuple[Path, Family, Family], tmp_path: Path, damage: str
) -> None:
    path, divider, _ = stored
    bad = tmp_path / "damaged.h5"
    if damage == "garbage":
        bad.write_bytes(b"this is not an HDF5 file\n" * 100)
    elif damage == "truncated":
        data = path.read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    else:
        bad.write_bytes(b"")
    store = Store(bad)
    for action in (store.keys, store.describe, lambda: store.load(divider.key)):
        with pytest.raises(StoreError, match=r"damaged\.h5"):
            action()
    # an extraction aimed at it refuses before simulating anything, and leaves it as it was
    before = bad.read_bytes()
    with pytest.raises(StoreError, match=r"damaged\.h5"):
        extract_family(DATA / "divider.toml", n=5, seed=1, store=bad, options=options())
    assert bad.read_bytes() == before


def test_foreign_hdf5_file_is_not_a_store(tmp_path: Path) -> None:
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as handle:
        handle["x"] = np.arange(3)
    with pytest.raises(StoreError, match=r"other\.h5.*not a circuitnn store"):
        Store(path).keys()


def test_missing_store_is_empty_until_written(tmp_path: Path) -> None:
    store = Store(tmp_path / "new" / "families.h5")
    assert store.keys() == []
    assert store.describe() == []
    with pytest.raises(StoreError, match="holds no families"):
        store.load()


def test_held_lock_times_out_with_store_error(tmp_path: Path) -> None:
    store = Store(tmp_path / "families.h5")
    other = Store(tmp_path / "families.h5")  # e.g. another process writing the same file
    with store.lock(timeout=1), pytest.raises(StoreError, match="locked"), other.lock(timeout=0.2):
        pass
    with store.lock(timeout=0.2):  # released again
        pass


def test_each_family_has_its_own_file_and_a_commit_rewrites_only_the_index(
    stored: tuple[Path, Family, Family], tmp_path: Path
) -> None:
    path, divider, diode = stored
    copy = tmp_path / "families.h5"
    store = Store(path).copy(copy)
    with pytest.raises(StoreError, match="exists already"):
        Store(path).copy(copy)
    assert sorted(p.name for p in store.folder.iterdir()) == sorted(
        f"{key}.h5" for key in (divider.key, diode.key)
    )
    with h5py.File(copy, "r") as handle:  # the index links each family's file
        link = handle["families"].get(divider.key, getlink=True)
        assert isinstance(link, h5py.ExternalLink)
        assert link.filename == f"families.h5.d/{divider.key}.h5"
    files = [store.family_path(key) for key in (divider.key, diode.key)]
    before = [(p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in files]

    big = extract_family(DATA / "divider.toml", n=400, seed=7, options=options())
    store.commit(big)
    assert [(p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in files] == before
    assert store.family_path(big.key).stat().st_size > 10 * copy.stat().st_size  # index small
    assert_same_family(store.load(big.key), big)
    assert_same_family(store.load(divider.key), divider)


def test_store_of_the_one_file_layout_is_read_and_extended(
    stored: tuple[Path, Family, Family], tmp_path: Path
) -> None:
    """Stores written before the index-and-folder layout hold every family in the one file."""
    path, divider, diode = stored
    old = tmp_path / "old.h5"
    with h5py.File(path, "r") as source, h5py.File(old, "w") as target:
        for name, value in source.attrs.items():
            target.attrs[name] = value
        families = target.create_group("families")
        for key in (divider.key, diode.key):
            source.copy(source["families"][key], families, name=key)
    store = Store(old)
    assert_same_family(store.load(divider.key), divider)
    new = extract_family(DATA / "divider.toml", n=4, seed=8, options=options())
    store.commit(new)
    assert sorted(store.keys()) == sorted([divider.key, diode.key, new.key])
    assert [p.name for p in store.folder.iterdir()] == [f"{new.key}.h5"]
    assert store.family_files() == {
        divider.key: old,
        diode.key: old,
        new.key: store.folder / f"{new.key}.h5",
    }
    assert_same_family(store.load(diode.key), diode)
    assert_same_family(store.load(new.key), new)


def test_missing_family_file_is_a_store_error_naming_it(
    stored: tuple[Path, Family, Family], tmp_path: Path
) -> None:
    path, divider, diode = stored
    copy = tmp_path / "families.h5"
    store = Store(path).copy(copy)
    store.family_path(divider.key).unlink()
    with pytest.raises(StoreError, match=rf"family {divider.key[:12]}, .*{divider.key}\.h5, is"):
        store.load(divider.key)
    assert_same_family(store.load(diode.key), diode)


def test_a_family_of_schema_1_still_loads(
    stored: tuple[Path, Family, Family], tmp_path: Path
) -> None:
    """A family written before schema 2 has no ``run_alone``, no self-check attributes and only
    status 1/2: it loads, and says it does not know how its instances ran."""
    path, divider, _ = stored
    store = Store(path).copy(tmp_path / "schema1.h5")
    with h5py.File(store.family_path(divider.key), "r+") as handle:
        group = handle["families"][divider.key]
        del group["run_alone"]
        for name in [a for a in group.attrs if a.startswith("self_check_")]:
            del group.attrs[name]
        handle.attrs["schema_version"] = 1
    old = store.load(divider.key)
    assert old.run_alone is None and "self_check_instances" not in old.attrs
    np.testing.assert_array_equal(old.curves, divider.curves)
    assert old.branch()[0] is old.curves


def test_check_writable_refuses_a_path_where_no_family_can_be_committed(
    stored: tuple[Path, Family, Family], tmp_path: Path
) -> None:
    """``check_writable`` (run before any simulation) passes for a store with its folder and for
    a new store in a folder still to be made; it refuses, with a :class:`ConfigError` naming the
    store, an index path that is a folder (suggesting ``FOLDER/families.h5``), a store whose
    folder ``PATH.d`` is a file, and a store whose parent is a file."""
    path, _, _ = stored
    Store(path).check_writable()
    Store(tmp_path / "new" / "families.h5").check_writable()

    with pytest.raises(ConfigError) as caught:
        Store(tmp_path).check_writable()
    assert str(caught.value) == (
        f"store {tmp_path} is a folder; give the path of the store's index file, such as "
        f"{tmp_path / 'families.h5'}"
    )
    blocked = Store(tmp_path / "blocked.h5")
    blocked.folder.write_bytes(b"not a folder")
    with pytest.raises(ConfigError) as caught:
        blocked.check_writable()
    assert str(caught.value) == (
        f"store {blocked.path}: {blocked.folder} is a file, but it must be the store's folder"
    )
    inside = Store(tmp_path / "blocked.h5.d" / "families.h5")
    with pytest.raises(ConfigError) as caught:
        inside.check_writable()
    assert str(caught.value) == f"store {inside.path}: {blocked.folder} is a file, not a folder"


def test_load_reads_every_optional_field_and_arrays_false_empties_only_the_big_arrays(
    tmp_path: Path,
) -> None:
    """A family with run_alone codes, a down branch and two noise and two speed analyses reads
    back with all of them; the analysis named is the one attached (by default the newest);
    ``arrays=False`` gives the N×K arrays 0 rows of the same trailing shape and dtype (float32
    curves stay float32), attaches no analysis and reads everything else."""
    import dataclasses

    from circuitnn.family import SpeedData
    from circuitnn.nn import synthetic_family

    base = synthetic_family("tanh", n=6, seed=1, points=11)
    n = base.n
    family = dataclasses.replace(
        base,
        curves=base.curves.astype(np.float32),
        noise=None,
        run_alone=(np.arange(n) % 3).astype(np.int8),
        curves_down=base.curves - 0.01,
        nominal_curve_down=base.nominal_curve - 0.01,
    )
    store = Store(tmp_path / "families.h5")
    store.commit(family)
    assert base.noise is not None
    speed = SpeedData(
        bias=0.1,
        frequency=np.array([1.0, 10.0]),
        response=np.ones((n, 2), dtype=complex),
        bandwidth=np.full(n, 5.0),
        settling_time=np.full(n, 1e-6),
        energy=np.full(n, 1e-12),
        step_time=1e-7,
        stop_time=1e-5,
        tolerance=0.01,
        status=np.ones(n, dtype=np.int8),
        reasons=[""] * n,
    )
    for kind, data in (("noise", base.noise), ("speed", speed)):
        store.commit_analysis(family.key, dataclasses.replace(data, key=f"{kind}-a"))
        store.commit_analysis(family.key, dataclasses.replace(data, key=f"{kind}-b"))
    whole = store.load(family.key)
    for name in ("run_alone", "curves_down", "nominal_curve_down"):
        np.testing.assert_array_equal(getattr(whole, name), getattr(family, name), err_msg=name)
    for kind in ("noise", "speed"):
        default = getattr(whole, kind).key
        other = ({f"{kind}-a", f"{kind}-b"} - {default}).pop()
        assert getattr(store.load(family.key, **{kind: other}), kind).key == other
    lean = store.load(family.key, arrays=False)
    assert lean.noise is None and lean.speed is None
    for name in ("curves", "supply_current", "input_current", "power", "curves_down"):
        full, empty = getattr(whole, name), getattr(lean, name)
        assert (empty.shape, empty.dtype) == ((0, *full.shape[1:]), full.dtype), name
    assert whole.curves.dtype == np.float32
    for name in ("run_alone", "nominal_curve_down", "status", "parameters"):
        np.testing.assert_array_equal(getattr(lean, name), getattr(family, name), err_msg=name)
