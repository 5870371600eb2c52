"""The HDF5 store: readable with plain h5py, units recorded, damage reported, families found."""

from __future__ import annotations

import itertools
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
from circuitnn.store.writers import AnalysisWriter, FamilyWriter


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


def _test_header(writer: FamilyWriter, n: int, points: int) -> None:
    """The header of a family of ``n`` instances on ``points`` grid points, one parameter."""
    writer.write_header(
        {"neuron": "test"},
        np.linspace(0, 1, points),
        "V",
        ("a",),
        np.zeros((n, 1)),
        np.zeros(n, dtype=np.int64),
    )


def test_writer_keeps_every_slice_when_chunks_are_evicted_and_read_back(tmp_path: Path) -> None:
    """Slices arriving in any order, each a part of HDF5 chunks it shares with other slices,
    with a chunk cache far smaller than the family (so partly written chunks are compressed,
    evicted and read back): every row reads back bit for bit, in the store's own reader."""

    rng = np.random.default_rng(5)
    n, points, rows = 700, 1500, 60  # 12 kB per curve: HDF5 chunks of 87 rows
    curves = rng.normal(size=(n, points))
    supply = rng.normal(size=(n, 1, points))
    power = rng.normal(size=(n, points))
    status = np.full(n, OK, dtype=np.int8)
    midpoint = rng.normal(size=n)

    class SmallCache(FamilyWriter):
        CACHE_BYTES = 2**16  # 64 KiB: one HDF5 chunk of curves is 1 MiB

    writer = SmallCache(tmp_path / "scratch.h5", "k" * 64, n)
    _test_header(writer, n, points)
    starts = list(range(0, n, rows))
    rng.shuffle(starts)
    for start in starts:
        part = slice(start, start + rows)
        writer.write_rows(
            start,
            curves[part],
            supply[part],
            np.zeros((len(curves[part]), 0, points)),
            power[part],
            status[part],
            [""] * len(status[part]),
            {"midpoint": midpoint[part]},
        )
    writer.finish(curves[0])
    with h5py.File(tmp_path / "scratch.h5", "r") as handle:
        group = handle["families"]["k" * 64]
        assert group["curves"].chunks[0] < n  # chunked: slices share and split chunks
        assert group["curves"][()].tobytes() == curves.tobytes()
        assert group["supply_current"][()].tobytes() == supply.tobytes()
        assert group["power"][()].tobytes() == power.tobytes()
        assert group["descriptors/midpoint"][()].tobytes() == midpoint.tobytes()
        assert (group["status"][()] == OK).all()


# --- the journal of an extraction in progress (circuitnn/store/journal.py) --------------------


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


# --- the scratch-file writers (circuitnn/store/writers.py) -------------------------------------


def _text_attr(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@pytest.mark.parametrize(
    ("n", "chunk_rows", "points", "chunk", "supplies"),
    [
        (10, 4, 6, 4, 1),  # chunks of chunk_rows instances
        (3, 4, 6, 3, 0),  # no larger than the family (and no supply, the input current kept)
        (5, 1, 6, 1, 1),  # one instance per chunk when asked
        (3, 4, 2**16, 2, 1),  # at most CHUNK_BYTES (1 MiB): two curves of 512 KiB
    ],
)
def test_family_writer_lays_out_each_dataset_as_documented(
    tmp_path: Path, n: int, chunk_rows: int, points: int, chunk: int, supplies: int
) -> None:
    """A family written by :class:`FamilyWriter` (a header, slices out of order, the optional
    ``run_alone`` and ``curves_down``, and at the finish ``nominal_curve_down`` and attributes)
    reads back with plain h5py: every value; each dataset's units (the family's output unit for
    the curves, both branches, and output-unit descriptors); the per-instance curves, currents,
    power, optional arrays and failure reasons compressed (lzf, shuffled) in HDF5 chunks of
    ``chunk_rows`` instances (fewer in a smaller family, and at most CHUNK_BYTES = 1 MiB each,
    at least one instance), a current with no rows (no supply, or no input current measured)
    and the status and descriptors not compressed; every numeric dataset
    checksummed (Fletcher-32); the status' meaning; the file marked a circuitnn store of the
    current schema. The writer is then ``finished``."""
    from circuitnn.family import STATUS_MEANING

    rng = np.random.default_rng(3)
    key = "f" * 64
    grid = np.linspace(0.0, 1.0, points)
    parameters, chip = rng.normal(size=(n, 2)), np.arange(n) // 2
    curves, down = rng.normal(size=(n, points)), rng.normal(size=(n, points))
    supply, inputs = (
        rng.normal(size=(n, supplies, points)),
        rng.normal(size=(n, 1 - supplies, points)),
    )
    power = rng.normal(size=(n, points))
    status = np.where(np.arange(n) == 1, FAILED, OK).astype(np.int8)
    reasons = ["did not converge" if s == FAILED else "" for s in status]
    alone = (np.arange(n) % 3).astype(np.int8)
    descriptors = {"gain": rng.normal(size=n), "midpoint": rng.normal(size=n)}

    writer = FamilyWriter(tmp_path / "scratch.h5", key, n, chunk_rows)
    writer.write_header({"neuron": "test", "n": n}, grid, "uA", ("a", "b"), parameters, chip)
    split = n // 2
    for part in (slice(split, n), slice(0, split)):  # the later instances first
        writer.write_rows(
            part.start,
            curves[part],
            supply[part],
            inputs[part],
            power[part],
            status[part],
            reasons[part],
            {name: values[part] for name, values in descriptors.items()},
            {"run_alone": alone[part], "curves_down": down[part]},
        )
    assert not writer.finished
    writer.finish(curves[0] / 2, {"created": "today"}, {"nominal_curve_down": down[0] / 2})
    assert writer.finished

    with h5py.File(tmp_path / "scratch.h5", "r") as handle:
        assert _text_attr(handle.attrs["format"]) == "circuitnn-store"
        assert handle.attrs["schema_version"] == SCHEMA_VERSION
        group = handle["families"][key]
        assert {name: _text_attr(value) for name, value in group.attrs.items()} == {
            "neuron": "test",
            "n": str(n),
            "created": "today",
        }
        expected = {  # name: (values, units, compressed in chunks)
            "input": (grid, "V", False),
            "parameters": (parameters, "SI (see columns)", False),
            "chip": (chip, None, False),
            "curves": (curves, "uA", True),
            "supply_current": (supply, "A", supplies > 0),
            "input_current": (inputs, "A", supplies == 0),
            "power": (power, "W", True),
            "status": (status, None, False),
            "run_alone": (alone, "code (see the family's run_alone_meaning)", True),
            "curves_down": (down, "uA", True),
            "nominal_curve": (curves[0] / 2, "uA", False),
            "nominal_curve_down": (down[0] / 2, "uA", False),
            "descriptors/gain": (descriptors["gain"], "uA / V", False),
            "descriptors/midpoint": (descriptors["midpoint"], "V", False),
        }
        for name, (values, units, compressed) in expected.items():
            dataset = group[name]
            assert dataset.dtype == values.dtype, name
            assert dataset[()].tobytes() == values.tobytes(), name
            assert (_text_attr(dataset.attrs["units"]) if "units" in dataset.attrs else None) == (
                units
            ), name
            assert dataset.fletcher32, name
            if compressed:
                assert (dataset.compression, dataset.shuffle) == ("lzf", True), name
                instance = values[0].nbytes  # bytes: the largest chunk holds 1 MiB at most
                rows = max(1, min(n, chunk_rows, 2**20 // instance))
                assert dataset.chunks == (rows, *values.shape[1:]), name
            else:
                assert dataset.compression is None, name
        assert group["curves"].chunks == (chunk, points)
        assert json.loads(group["parameters"].attrs["columns"]) == ["a", "b"]
        assert _text_attr(group["status"].attrs["meaning"]) == STATUS_MEANING
        failure = group["failure_reason"]
        assert [_text_attr(text) for text in failure[()]] == reasons
        assert (failure.compression, failure.chunks) == ("lzf", (min(n, chunk_rows),))
        assert sorted(group["descriptors"]) == ["gain", "midpoint"]


def _write_slices(writer: object, starts: list[int], n: int, points: int, devices: int = 0) -> None:
    """Write a family of ``n`` instances (1 supply, no input current, 2 descriptors and
    ``devices`` threshold voltages) in slices starting at ``starts``: curves ``i + x`` for
    instance ``i``."""
    for start, stop in itertools.pairwise([*starts, n]):
        rows = np.arange(start, stop)
        curves = rows[:, None] + np.linspace(0.0, 1.0, points)
        writer.write_rows(  # type: ignore[attr-defined]
            start,
            curves,
            curves[:, None, :] * 1e-3,
            np.zeros((len(rows), 0, points)),
            curves * 1e-3,
            np.full(len(rows), OK, dtype=np.int8),
            [""] * len(rows),
            {
                "gain": rows * 0.5,
                "midpoint": rows * 0.25,
                **{f"vth_m{device}": rows * 1e-3 for device in range(devices)},
            },
        )


@pytest.mark.parametrize("first", [1, 100], ids=["first slice of 1", "first slice of 100"])
def test_family_writer_claims_the_whole_family_s_space_on_its_first_slice(
    tmp_path: Path, first: int
) -> None:
    """On its first slice the scratch file claims the disk space of the whole family: the bytes
    of every per-instance array (per instance, from that slice, however many instances it holds)
    plus :data:`REASON_BYTES` per failure reason, with some margin. Under a real file-size limit
    (RLIMIT_FSIZE, as a full disk) of just that uncompressed size it fails at once with a
    :class:`StoreError` "not enough space" naming the scratch file and the family; under a limit
    a quarter larger the whole family is written and reads back."""
    import resource
    import signal

    from circuitnn.store.files import REASON_BYTES, RESERVE_MARGIN

    n, points, key, devices = 2000, 41, "0123456789abcdef" * 4, 38
    # curves, supply current (1 supply), power (float64), status (int8), 2 + 38 descriptors
    # (float64), a failure reason
    instance = 3 * points * 8 + 1 + (2 + devices) * 8 + REASON_BYTES
    uncompressed = n * instance + RESERVE_MARGIN

    def written_under(limit: int, name: str) -> Path:
        path = tmp_path / name
        writer = FamilyWriter(path, key, n, 256)
        _test_header(writer, n, points)
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG, not a signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
        try:
            _write_slices(writer, [0, first, 1000], n, points, devices)
            writer.finish(np.linspace(0, 1, points))
        except BaseException:
            writer.discard()
            raise
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            signal.signal(signal.SIGXFSZ, handler)
        return path

    with pytest.raises(StoreError) as caught:
        written_under(uncompressed, "small.h5")
    assert str(caught.value).startswith(
        f"not enough space for the scratch file of family {key[:12]} ({tmp_path / 'small.h5'}): "
    )
    assert str(caught.value).endswith("File too large); nothing was written to it")
    path = written_under(uncompressed + n * instance // 4, "large.h5")
    with h5py.File(path, "r") as handle:
        curves = handle["families"][key]["curves"][()]
    np.testing.assert_array_equal(curves, np.arange(n)[:, None] + np.linspace(0, 1, points))


def test_family_writer_errors_name_the_family_and_the_file(tmp_path: Path) -> None:
    """:class:`StoreError` naming the family (its key's first 12 characters) and the scratch
    file when it cannot be created (its folder is missing), when a slice cannot be written (the
    wrong number of points), and when it is finished with no instance written; leaving a
    ``with`` block by an error deletes the scratch file, leaving it normally keeps it (to be
    committed), and deleting it twice is fine."""

    key = "0123456789abcdef" * 4
    missing = tmp_path / "missing" / "scratch.h5"
    with pytest.raises(StoreError) as caught:
        FamilyWriter(missing, key, 3)
    assert str(caught.value).startswith(f"cannot write family {key[:12]} to {missing}: ")

    def header(writer: FamilyWriter) -> None:
        writer.write_header({}, np.linspace(0, 1, 5), "V", ("a",), np.zeros((3, 1)), np.zeros(3))

    path = tmp_path / "scratch.h5"
    with pytest.raises(StoreError) as caught, FamilyWriter(path, key, 3) as writer:
        header(writer)
        _write_slices(writer, [0], 2, 5)
        _write_slices(writer, [2], 3, 6)  # 6 points, not 5
    assert str(caught.value).startswith(
        f"cannot write instances 2… of family {key[:12]} to {path}: "
    )
    assert not path.exists()

    with FamilyWriter(path, key, 3) as writer:
        header(writer)
        with pytest.raises(StoreError) as caught:
            writer.finish(np.zeros(5))
    assert str(caught.value) == (f"family {key[:12]}: no instances written (['curves', 'status'])")
    assert not writer.finished and path.exists()
    writer.discard()
    writer.discard()
    assert not path.exists()


def test_analysis_writer_fills_the_rows_never_written_with_nan(tmp_path: Path) -> None:
    """:class:`AnalysisWriter` writes each named dataset (N×…, created on its first rows) as rows
    arrive, in any order and with gaps; ``finish`` fills every row never written with NaN
    (also runs of them longer than a chunk) and returns the file's path. A write of no rows is
    ignored; a dataset never written is not made. Datasets are checksummed, not compressed, in
    HDF5 chunks of ``chunk_rows`` instances (fewer in a smaller analysis, and at most
    CHUNK_BYTES = 1 MiB each). A write that does not
    fit is a :class:`StoreError` naming the instances, the dataset and the file; leaving a
    ``with`` block by an error deletes the file, as does ``discard`` (twice is fine)."""

    n, frequencies = 20, 4
    psd = np.arange(n * frequencies, dtype=float).reshape(n, frequencies) / 3.0 + 1.0
    expected = np.full((n, frequencies), np.nan)
    path = tmp_path / "analysis.h5"
    writer = AnalysisWriter(path, n, chunk_rows=3)
    for rows in ([5, 7], [1, 2], [], [18]):  # never: 0, 3-4, 6, 8-17, 19
        writer.write("psd", np.array(rows, dtype=int), psd[rows])
        expected[rows] = psd[rows]
    response = np.arange(n * 2, dtype=np.float32).reshape(n, 2) - 5.0
    writer.write("response", np.arange(n), response)
    with pytest.raises(StoreError) as caught:
        writer.write("psd", np.array([3, 4]), np.zeros((2, frequencies + 1)))
    assert str(caught.value).startswith(f"cannot write instances 3…4 of psd to {path}: ")
    assert writer.finish() == path
    with h5py.File(path, "r") as handle:
        assert sorted(handle) == ["psd", "response"]
        assert handle["psd"].dtype == np.float64  # (not rounded to float32)
        np.testing.assert_array_equal(handle["psd"][()], expected)
        assert handle["response"][()].tobytes() == response.tobytes()
        for name, width in (("psd", frequencies), ("response", 2)):
            dataset = handle[name]
            assert dataset.chunks == (3, width) and dataset.fletcher32, name
            assert dataset.compression is None, name
    small = AnalysisWriter(tmp_path / "small.h5", 2, chunk_rows=3)
    small.write("psd", np.array([1]), psd[[1]])
    with h5py.File(small.finish(), "r") as handle:
        assert handle["psd"].chunks == (2, frequencies)
        np.testing.assert_array_equal(handle["psd"][()], [np.full(frequencies, np.nan), psd[1]])
    for chunk_rows, width, rows in ((1, 4, 1), (4, 2**16, 2)):  # 2 rows of 512 KiB: 1 MiB
        wide = AnalysisWriter(tmp_path / f"wide{width}.h5", 3, chunk_rows)
        wide.write("psd", np.array([0]), np.ones((1, width)))
        with h5py.File(wide.finish(), "r") as handle:
            assert handle["psd"].chunks == (rows, width)
    writer.discard()
    writer.discard()
    assert not path.exists()

    with pytest.raises(StoreError), AnalysisWriter(path, n) as failing:
        failing.write("psd", np.array([0]), psd[[0]])
        failing.write("psd", np.array([1]), np.zeros((1, frequencies + 1)))
    assert not path.exists()
    with AnalysisWriter(path, n) as kept:
        kept.write("psd", np.array([0]), psd[[0]])
    assert kept.finish() == path and path.exists()
    missing = tmp_path / "missing" / "analysis.h5"
    with pytest.raises(StoreError, match=r"cannot write an analysis to .*missing/analysis\.h5"):
        AnalysisWriter(missing, n)


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


def test_commit_written_commits_a_finished_family_once_or_leaves_the_store_as_it_was(
    tmp_path: Path,
) -> None:
    """``commit_written`` refuses a writer that is not finished (:class:`StoreError` naming the
    family; nothing committed); commits a finished one by moving its scratch file into the
    store's folder (True); a second writer of the same family finds it committed (False: the
    store keeps the first, the second's scratch file is deleted); and when the index cannot be
    rewritten (a real file-size limit, RLIMIT_FSIZE, too small for the index's new copy) the
    family's file is removed again and the store holds what it held."""
    import resource
    import signal

    from circuitnn.store.files import RESERVE_MARGIN

    store = Store(tmp_path / "families.h5")
    first, second = "a" * 64, "b" * 64

    def writer(key: str, finished: bool = True) -> object:
        written = store.family_writer(store.journal(key, 4), key, 3, chunk_rows=2)
        written.write_header({}, np.linspace(0, 1, 5), "V", ("a",), np.zeros((3, 1)), np.zeros(3))
        _write_slices(written, [0], 3, 5)
        if finished:
            written.finish(np.zeros(5))
        return written

    unfinished = writer(first, finished=False)
    with pytest.raises(StoreError) as caught:
        store.commit_written(unfinished)
    assert str(caught.value) == f"family {first[:12]} is not completely written; not committed"
    assert store.keys() == []
    unfinished.discard()

    done = writer(first)
    assert store.commit_written(done) is True
    assert store.keys() == [first] and not done.path.exists()
    again = writer(first)
    assert store.commit_written(again) is False
    assert store.keys() == [first] and not again.path.exists()
    with h5py.File(store.family_path(first), "r") as handle:
        assert handle["families"][first]["curves"].shape == (3, 5)
        assert handle["families"][first]["curves"].chunks == (2, 5)  # chunk_rows instances

    late = writer(second)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG, not a signal
    resource.setrlimit(resource.RLIMIT_FSIZE, (RESERVE_MARGIN, hard))
    try:
        with pytest.raises(
            StoreError, match=rf"not enough space for the new copy of {store.path} "
        ):
            store.commit_written(late)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)
    assert store.keys() == [first]
    assert sorted(p.name for p in store.folder.iterdir()) == [f"{first}.h5"]


def test_commit_analysis_adds_an_analysis_once_to_a_stored_family_claiming_its_space(
    tmp_path: Path,
) -> None:
    """``commit_analysis`` adds a noise analysis only to a family the store holds: to a store
    that does not exist yet, or one without that family, it is a :class:`StoreError` naming the
    analysis, the store and the family. It claims disk space for the copy of the family's file
    plus the analysis' arrays plus :data:`REASON_BYTES` per failure reason (and the margin
    :data:`RESERVE_MARGIN`): under a real file-size limit (RLIMIT_FSIZE, as a full disk) one
    byte short of that it is a :class:`StoreError` "not enough space" and the family keeps no
    analysis; at that limit it is added, and it loads back; adding it again changes nothing."""
    import resource
    import signal

    from circuitnn.spice.analyses import NoiseAnalysis
    from circuitnn.store.files import REASON_BYTES, RESERVE_MARGIN, array_bytes

    small = NoiseAnalysis(bias_points=2, fmin=1.0, fmax=1e6, points_per_decade=2, bandwidth=1e5)
    family = extract_family(DATA / "divider.toml", n=4, seed=1, noise=small, options=options())
    data = family.noise
    assert data is not None and len(data.reasons) == family.n
    store = Store(tmp_path / "families.h5")
    message = f"cannot add {data.key} to {store.path}: no family {family.key} there"
    with pytest.raises(StoreError) as caught:
        store.commit_analysis(family.key, data)
    assert str(caught.value) == message
    other = extract_family(DATA / "diode_r.toml", n=3, seed=1, options=options())
    store.commit(other)
    with pytest.raises(StoreError) as caught:
        store.commit_analysis(family.key, data)
    assert str(caught.value) == message

    store.commit(family)
    file = store.family_path(family.key)
    needed = file.stat().st_size + array_bytes(vars(data)) + family.n * REASON_BYTES
    needed += RESERVE_MARGIN

    def commit_under_limit(limit: int) -> None:
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG, not a signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
        try:
            store.commit_analysis(family.key, data)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            signal.signal(signal.SIGXFSZ, handler)

    with pytest.raises(StoreError, match=r"not enough space for the new copy of .*File too large"):
        commit_under_limit(needed - 1)
    assert store.analyses(family.key) == []
    commit_under_limit(needed)
    assert store.analyses(family.key) == [data.key]
    loaded = store.load(family.key)
    assert loaded.noise is not None
    np.testing.assert_array_equal(loaded.noise.sigma, data.sigma)
    before = file.read_bytes()
    store.commit_analysis(family.key, data)
    assert store.analyses(family.key) == [data.key] and file.read_bytes() == before


def test_commit_analysis_stores_the_spectra_streamed_by_an_analysis_writer(tmp_path: Path) -> None:
    """Given an :class:`AnalysisWriter`, ``commit_analysis`` takes the analysis' per-instance
    spectra from the writer's file (the analysis itself holds none of their rows): stored as
    written, NaN in the rows never written; the writer's file is then deleted. Loaded with
    ``arrays=False`` the analysis leaves those spectra out (0 rows)."""
    import dataclasses

    from circuitnn.spice.analyses import NoiseAnalysis

    small = NoiseAnalysis(bias_points=2, fmin=1.0, fmax=1e6, points_per_decade=2, bandwidth=1e5)
    family = extract_family(DATA / "divider.toml", n=4, seed=1, noise=small, options=options())
    data = family.noise
    assert data is not None
    store = Store(tmp_path / "families.h5")
    store.commit(family)
    writer = AnalysisWriter(tmp_path / "scratch.h5", family.n, chunk_rows=2)
    psd = data.psd * 2.0
    writer.write("psd", np.arange(3), psd[:3])  # the last instance never written
    writer.write("input_psd", np.arange(4), np.ones_like(data.input_psd))
    empty = {name: getattr(data, name)[:0] for name in ("psd", "input_psd")}
    store.commit_analysis(family.key, dataclasses.replace(data, **empty), writer)
    assert not writer.path.exists()

    stored = store.load_analysis(family.key, "noise", data.key)
    expected = psd.copy()
    expected[3] = np.nan
    np.testing.assert_array_equal(stored.psd, expected)
    np.testing.assert_array_equal(stored.input_psd, np.ones_like(data.input_psd))
    np.testing.assert_array_equal(stored.sigma, data.sigma)
    lean = store.load_analysis(family.key, "noise", data.key, arrays=False)  # no spectra
    assert lean.psd.shape == (0, *psd.shape[1:]) and lean.input_psd.shape[0] == 0
    np.testing.assert_array_equal(lean.sigma, data.sigma)


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
