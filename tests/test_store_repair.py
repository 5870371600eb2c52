"""A damaged store: one broken family no longer takes the others down, `circuitnn store
check|repair|remove` finds it, rebuilds the index from the intact family files and lets the
broken family be extracted again; loading by a neuron name that names several families is an
error listing them. Real HDF5 files, damaged for real."""

from __future__ import annotations

import warnings
from pathlib import Path

import h5py
import pytest
from helpers import DATA, assert_same_family, options

from circuitnn import extract_family
from circuitnn.cli import main
from circuitnn.errors import StoreError, StoreFilterMissing
from circuitnn.family import Family
from circuitnn.store import Store
from circuitnn.store.repair import repair_store


def _two_families(tmp_path: Path) -> tuple[Path, Family, Family]:
    store = tmp_path / "families.h5"
    divider = extract_family(DATA / "divider.toml", n=5, seed=1, store=store, options=options())
    diode = extract_family(DATA / "diode_r.toml", n=5, seed=1, store=store, options=options())
    return store, divider, diode


def _delete(path: Path) -> None:
    path.unlink()


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("damage", [_delete, _truncate], ids=["deleted", "truncated"])
def test_a_damaged_family_is_skipped_reported_and_repaired(
    damage: object, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    store, divider, diode = _two_families(tmp_path)
    damage(Store(store).family_path(divider.key))  # type: ignore[operator]

    # show: the healthy family, and the damaged one reported (before: the whole store failed)
    assert main(["show", str(store), "--out", str(tmp_path / "plots")]) == 0
    shown = capsys.readouterr().out
    assert f"diode_r  key {diode.key}" in shown
    assert f"damaged family {divider.key}" in shown and "circuitnn store repair" in shown
    # loading the healthy neuron by name works, with a warning naming the damaged family
    with pytest.warns(UserWarning, match=divider.key[:12]):  # (a circuitnn.store.StoreWarning)
        assert_same_family(Store(store).load("diode_r"), diode)
    # the damaged family's own extraction says how to get past it (one line, exit 1)
    args = ["extract", str(DATA / "divider.toml"), "--n", "5", "--seed", "1"]
    args += ["--store", str(store), "--chunk-size", "4", "--quiet"]
    assert main(args) == 1
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "circuitnn store repair" in error

    assert main(["store", "check", str(store)]) == 1
    report = capsys.readouterr().out
    assert f"{divider.key}" in report and "DAMAGED" in report and f"{diode.key}" in report

    assert main(["store", "repair", str(store)]) == 0
    assert "index rebuilt with 1 intact family" in capsys.readouterr().out
    assert Store(store).keys() == [diode.key]
    assert main(["store", "check", str(store)]) == 0
    capsys.readouterr()

    again = extract_family(DATA / "divider.toml", n=5, seed=1, store=store, options=options())
    assert_same_family(again, divider)  # extracted again, the same numbers
    assert sorted(Store(store).keys()) == sorted([divider.key, diode.key])


def test_a_damaged_index_is_rebuilt_from_the_family_files(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    store, divider, diode = _two_families(tmp_path)
    store.write_bytes(b"\0" * 4096)  # the index is gone; every family file is intact
    assert main(["show", str(store)]) == 1
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "cannot be read as HDF5" in error
    assert main(["store", "check", str(store)]) == 1
    assert "index damaged" in capsys.readouterr().out
    assert main(["store", "repair", str(store)]) == 0
    assert "index rebuilt with 2 intact families" in capsys.readouterr().out
    assert_same_family(Store(store).load(divider.key), divider)
    assert_same_family(Store(store).load(diode.key), diode)


def test_a_name_with_several_families_is_an_error_listing_them(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    store = tmp_path / "families.h5"
    small = extract_family(DATA / "divider.toml", n=3, seed=1, store=store, options=options())
    spec = DATA / "divider.toml"
    other = extract_family(spec, n=3, seed=1, store=store, options=options(), temperature=85.0)
    with pytest.raises(StoreError) as caught:
        Store(store).load("divider")
    message = str(caught.value)
    assert "'divider' names 2 families" in message
    assert f"{small.key} (n=3, seed=1, 27 °C)" in message
    assert f"{other.key} (n=3, seed=1, 85 °C)" in message
    assert_same_family(Store(store).load(other.key), other)  # a key names one
    assert main(["show", str(store), "divider", "--out", str(tmp_path / "plots")]) == 0
    assert capsys.readouterr().out.count("divider  key") == 2  # show lists them all

    assert main(["store", "remove", str(store), "divider"]) == 1
    assert "names 2 families" in capsys.readouterr().err
    assert main(["store", "remove", str(store), small.key[:10]]) == 0
    assert Store(store).keys() == [other.key]
    assert not Store(store).family_path(small.key).exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing damaged, nothing ambiguous: no warning
        assert_same_family(Store(store).load("divider"), other)


def test_the_listing_of_several_families_shows_how_they_differ(tmp_path: Path) -> None:
    """The families a neuron name names, listed one per ``KEY (…)`` and separated by ``; ``,
    oldest first: each with its n, seed and temperature, its chip size when not 1, its corner
    when given, and the nominal parameters that differ among them (a corner's additive offsets:
    ``high`` adds 100 Ω to r1 and takes 1 kΩ from rs)."""
    store = tmp_path / "families.h5"
    spec = DATA / "divider.toml"
    plain = extract_family(spec, n=3, seed=1, store=store, options=options())
    chips = extract_family(spec, n=3, seed=1, chip_size=2, store=store, options=options())
    high = extract_family(spec, n=3, seed=1, corner="high", store=store, options=options())
    with pytest.raises(StoreError) as caught:
        Store(store).resolve("divider")
    assert str(caught.value) == (
        f"'divider' names 3 families in {store}; load one by its key: "
        f"{plain.key} (n=3, seed=1, 27 °C, r1=1000, rs=10000); "
        f"{chips.key} (n=3, seed=1, 27 °C, chip_size=2, r1=1000, rs=10000); "
        f"{high.key} (n=3, seed=1, 27 °C, corner high, r1=1100, rs=9000)"
    )


def test_the_warning_of_damaged_families_names_them_and_the_first_reason(tmp_path: Path) -> None:
    """Families whose files are gone are skipped with a :class:`StoreWarning` that counts them
    ("1 damaged family", "2 damaged families"), names them by their keys' first 12 characters
    (in key order) and gives the first one's reason."""
    from circuitnn.store.index import StoreWarning

    path, divider, diode = _two_families(tmp_path)
    third = extract_family(DATA / "divider.toml", n=5, seed=2, store=path, options=options())
    store = Store(path)
    first, second = sorted([divider.key, third.key])

    def reason(key: str) -> str:
        return f"store {path}: the file of family {key[:12]}, {store.family_path(key)}, is missing"

    store.family_path(first).unlink()
    with pytest.warns(StoreWarning) as caught:
        assert [row["key"] for row in store.describe()] == sorted(
            [diode.key, second], key=[divider.key, diode.key, third.key].index
        )
    (warning,) = caught
    assert str(warning.message).startswith(
        f"store {path}: skipped 1 damaged family ({first[:12]}): {reason(first)} ("
    )
    store.family_path(second).unlink()
    with pytest.warns(StoreWarning) as caught:
        assert [row["key"] for row in store.describe()] == [diode.key]
    (message,) = [str(w.message) for w in caught]
    assert message.startswith(
        f"store {path}: skipped 2 damaged families ({first[:12]}, {second[:12]}): {reason(first)} ("
    )


def test_resolve_picks_the_newest_and_says_why_a_selector_names_no_family(tmp_path: Path) -> None:
    """``resolve``: no selector names the newest readable family; a neuron name the one readable
    family of that neuron. Damaged families are skipped with a :class:`StoreWarning`, and a
    selector that names no family says how many were skipped ("1 damaged family", "2 damaged
    families"); with every family damaged, no selector is an error saying no
    family can be read."""
    from circuitnn.store.index import StoreWarning

    path = tmp_path / "families.h5"
    spec = DATA / "divider.toml"
    older = extract_family(spec, n=3, seed=1, store=path, options=options())
    newer = extract_family(spec, n=3, seed=2, store=path, options=options())
    diode = extract_family(DATA / "diode_r.toml", n=3, seed=1, store=path, options=options())
    store = Store(path)
    assert store.resolve(None) == diode.key
    assert store.resolve("diode_r") == diode.key

    store.family_path(older.key).unlink()
    with pytest.warns(StoreWarning) as caught:
        assert store.resolve("divider") == newer.key
    (warning,) = caught
    assert type(warning.message) is StoreWarning
    assert str(warning.message).startswith(f"store {path}: skipped 1 damaged family ")
    with pytest.warns(StoreWarning), pytest.raises(StoreError) as error:
        store.resolve("nothing")
    assert str(error.value) == f"no family 'nothing' in {path} (1 damaged family skipped)"

    store.family_path(newer.key).unlink()
    with pytest.warns(StoreWarning), pytest.raises(StoreError) as error:
        store.resolve("nothing")
    assert str(error.value) == f"no family 'nothing' in {path} (2 damaged families skipped)"
    with pytest.warns(StoreWarning):
        assert store.resolve(None) == diode.key

    store.family_path(diode.key).unlink()
    with pytest.warns(StoreWarning), pytest.raises(StoreError) as error:
        store.resolve(None)
    assert str(error.value) == f"store {path}: no family can be read"


def test_a_dataset_whose_filter_is_missing_is_named_not_called_damaged(tmp_path: Path) -> None:
    """A family file holding a dataset compressed with a filter this Python cannot load (here a
    number no plugin has) is not damaged: loading it raises :class:`StoreFilterMissing` naming
    the file and hdf5plugin, without the advice to repair; ``repair_store`` raises it too and
    leaves the file where it is (not renamed ``.damaged``, not unlinked)."""
    path = tmp_path / "store.h5"
    family = extract_family(DATA / "divider.toml", n=5, seed=4, store=path, options=options())
    store = Store(path)
    file = store.family_files()[family.key]
    with h5py.File(file, "r+") as handle:
        group = handle["families"][family.key]
        values = group["power"][()]
        del group["power"]
        unknown = group.create_dataset(
            "power",
            shape=values.shape,
            dtype=values.dtype,
            chunks=values.shape,
            compression=32999,  # a filter number no installed plugin provides
            allow_unknown_filter=True,
        )
        unknown.id.write_direct_chunk((0, 0), values.tobytes())
    before = sorted(p.name for p in file.parent.iterdir())

    with pytest.raises(StoreFilterMissing) as raised:
        Store(path).load(family.key)
    message = str(raised.value)
    assert str(file) in message and "not damaged" in message and "hdf5plugin" in message
    assert "repair" not in message
    with pytest.raises(StoreFilterMissing):
        repair_store(Store(path))
    assert sorted(p.name for p in file.parent.iterdir()) == before
