"""circuitnn.data: table loaders (CSV, NPZ, HDF5), standardization, splits, bad files, built-ins."""

from __future__ import annotations

import math
import re
from pathlib import Path

import h5py
import numpy as np
import pytest

import circuitnn.data as data
from circuitnn.data import Dataset, Standardizer, load_table, make_dataset, split_indices
from circuitnn.errors import ConfigError

ROWS = 60


def table_values(rows: int = ROWS, seed: int = 0) -> dict[str, np.ndarray]:
    """Columns of a small materials-like table: three features, a target and a text id."""
    rng = np.random.default_rng(seed)
    a = rng.normal(3.0, 2.0, rows)
    b = rng.uniform(-5.0, 5.0, rows)
    c = rng.normal(-1.0, 0.1, rows)
    y = 2.0 * a - b + 10.0 * c + rng.normal(0, 0.1, rows)
    return {"a": a, "b": b, "c": c, "energy": y}


def write_csv(path: Path, columns: dict[str, np.ndarray], delimiter: str = ",") -> Path:
    names = ["id", *columns]
    lines = ["# a comment line before the header", delimiter.join(names)]
    for row in range(len(next(iter(columns.values())))):
        cells = [f"mol{row}"] + [repr(float(columns[n][row])) for n in columns]
        lines.append(delimiter.join(cells))
    path.write_text("\n".join(lines) + "\n")
    return path


def write_rows(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def check_round_trip(ds: Dataset, columns: dict[str, np.ndarray], features: list[str]) -> None:
    """Every split maps back to the source rows; the training split is standardized."""
    original_x = np.column_stack([columns[name] for name in features])
    original_y = columns["energy"]
    for split, (x, y) in ds.splits().items():
        rows = ds.indices[split]
        # float32 storage: agreement to ~1e-6 of each column's spread
        np.testing.assert_allclose(
            ds.scaler.inverse_features(x), original_x[rows], rtol=1e-5, atol=1e-5
        )
        np.testing.assert_allclose(
            ds.scaler.inverse_target(y), original_y[rows], rtol=1e-5, atol=1e-4
        )
    x, y = ds.train
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=0), 1.0, atol=1e-5)
    assert abs(float(y.mean())) < 1e-5 and float(y.std()) == pytest.approx(1.0, abs=1e-5)
    train_rows = ds.indices["train"]
    assert ds.scaler.target_mean == pytest.approx(original_y[train_rows].mean())
    assert ds.scaler.target_scale == pytest.approx(original_y[train_rows].std())


# ---- loaders -------------------------------------------------------------------------------


def test_csv_round_trip(tmp_path: Path) -> None:
    columns = table_values()
    path = write_csv(tmp_path / "materials.csv", columns)
    ds = load_table(path, target="energy", features=["a", "c"], seed=3)
    assert ds.task == "regression" and ds.name == "materials" and ds.source == str(path)
    assert ds.feature_names == ("a", "c") and ds.target_name == "energy"
    assert ds.inputs == 2 and ds.outputs == 1
    assert ds.sizes == {"train": 42, "validation": 9, "test": 9}
    assert ds.train[0].dtype == np.float32 and ds.train[1].dtype == np.float32
    check_round_trip(ds, columns, ["a", "c"])
    error = ds.scaler.target_error(0.5)
    assert error == pytest.approx(0.5 * ds.scaler.target_scale)


@pytest.mark.parametrize(("suffix", "delimiter"), [(".tsv", "\t"), (".csv", ";"), (".txt", "\t")])
def test_csv_delimiters(tmp_path: Path, suffix: str, delimiter: str) -> None:
    columns = table_values()
    path = write_csv(tmp_path / f"t{suffix}", columns, delimiter)
    ds = load_table(path, target="energy", features=["a", "b", "c"])
    check_round_trip(ds, columns, ["a", "b", "c"])


def test_csv_all_numeric_columns_by_default(tmp_path: Path) -> None:
    columns = table_values()
    path = tmp_path / "plain.csv"
    names = list(columns)
    rows = [",".join(repr(float(columns[n][i])) for n in names) for i in range(ROWS)]
    write_rows(path, ",".join(names), rows)
    ds = load_table(path, target="energy")
    assert ds.feature_names == ("a", "b", "c")
    check_round_trip(ds, columns, ["a", "b", "c"])


def test_npz_columns_and_2d_groups(tmp_path: Path) -> None:
    columns = table_values()
    path = tmp_path / "table.npz"
    np.savez(
        path,
        a=columns["a"],
        energy=columns["energy"],
        X=np.column_stack([columns["b"], columns["c"]]),
        name=np.array([f"m{i}" for i in range(ROWS)]),
    )
    ds = load_table(path, target="energy", features=["a", "X"])
    assert ds.feature_names == ("a", "X[0]", "X[1]")
    check_round_trip(
        ds, {**columns, "X[0]": columns["b"], "X[1]": columns["c"]}, ["a", "X[0]", "X[1]"]
    )
    single = load_table(path, target="energy", features=["X[1]"])
    assert single.feature_names == ("X[1]",)


def test_hdf5_group_and_compound_dataset(tmp_path: Path) -> None:
    columns = table_values()
    path = tmp_path / "table.h5"
    record = np.zeros(ROWS, dtype=[("a", "f8"), ("b", "f8"), ("c", "f8"), ("energy", "f8")])
    for name in record.dtype.names:
        record[name] = columns[name]
    with h5py.File(path, "w") as handle:
        group = handle.create_group("qm9")
        for name, values in columns.items():
            group.create_dataset(name, data=values)
        group.create_dataset("smiles", data=np.array([f"C{i}" for i in range(ROWS)], dtype="S8"))
        group.create_dataset("version", data=3)  # a scalar: metadata, skipped
        handle.create_dataset("records", data=record)
    ds = load_table(path, target="energy", features=["a", "b", "c"], key="qm9")
    check_round_trip(ds, columns, ["a", "b", "c"])
    compound = load_table(path, target="energy", key="records", seed=4)
    assert compound.feature_names == ("a", "b", "c")
    check_round_trip(compound, columns, ["a", "b", "c"])
    with pytest.raises(ConfigError, match=r"table\.h5: no group or dataset 'nope'.*qm9"):
        load_table(path, target="energy", key="nope")
    nested = tmp_path / "groups.h5"
    with h5py.File(nested, "w") as handle:
        handle.create_group("qm9").create_dataset("energy", data=np.arange(5.0))
    with pytest.raises(ConfigError, match=r"holds no datasets \(groups: qm9; pass key"):
        load_table(nested, target="energy")


def test_classification_table_with_text_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    labels = np.array(["cubic", "tetragonal", "orthorhombic"])[np.arange(90) % 3]
    x = rng.normal(size=(90, 2))
    rows = [f"{float(x[i, 0])!r},{float(x[i, 1])!r},{labels[i]}" for i in range(90)]
    path = write_rows(tmp_path / "phases.csv", "f0,f1,phase", rows)
    ds = load_table(path, target="phase", task="classification", seed=2)
    assert ds.classes == ("cubic", "orthorhombic", "tetragonal") and ds.outputs == 3
    assert ds.train[1].dtype == np.int64
    assert ds.scaler.target_mean == 0.0 and ds.scaler.target_scale == 1.0
    for _, y in ds.splits().values():
        counts = np.bincount(y, minlength=3)
        assert counts.max() - counts.min() <= 1, "stratified: every split keeps the balance"
    restored = np.array(ds.classes)[ds.test[1]]
    np.testing.assert_array_equal(restored, labels[ds.indices["test"]])


def test_training_api_consumes_a_dataset() -> None:
    pytest.importorskip("torch")
    from circuitnn.nn import build_mlp, mlp_spec
    from circuitnn.train import TrainConfig, train

    ds = data.smooth_regression(rows=200, features=3, seed=0)
    model = build_mlp(mlp_spec(ds.inputs, (8,), ds.outputs), seed=0)
    history = train(
        model, ds.train, validation=ds.validation, config=TrainConfig(task=ds.task, epochs=2)
    )
    assert len(history.epochs) == 2 and math.isfinite(history.best["val_rmse"])


# ---- standardization and splits ------------------------------------------------------------


def test_standardizer_round_trip_and_constant_column() -> None:
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.normal(5, 3, 50), np.full(50, 7.0)])
    y = rng.normal(-2, 4, 50)
    scaler = Standardizer.fit(x, y)
    assert scaler.feature_scale[1] == 1.0, "a constant column is not divided by zero"
    z = scaler.transform_features(x)
    assert np.all(z[:, 1] == 0) and np.isfinite(z).all()
    np.testing.assert_allclose(scaler.inverse_features(z), x, rtol=1e-6)
    np.testing.assert_allclose(scaler.inverse_target(scaler.transform_target(y)), y, rtol=1e-5)
    again = Standardizer.from_dict(scaler.to_dict())
    np.testing.assert_array_equal(again.feature_mean, scaler.feature_mean)
    assert again.target_scale == scaler.target_scale
    torch = pytest.importorskip("torch")
    tensor = torch.as_tensor(scaler.transform_target(y))
    np.testing.assert_allclose(scaler.inverse_target(tensor), y, rtol=1e-5)


def test_statistics_come_from_the_training_split_only() -> None:
    x = np.arange(100.0).reshape(-1, 1)
    y = np.arange(100.0) ** 2
    ds = make_dataset(x, y, seed=0)
    train_rows = ds.indices["train"]
    assert ds.scaler.feature_mean[0] == pytest.approx(x[train_rows].mean())
    assert ds.scaler.feature_mean[0] != pytest.approx(x.mean(), abs=1e-9)
    unscaled = make_dataset(x, y, seed=0, standardize=False, standardize_target=False)
    np.testing.assert_array_equal(unscaled.train[0][:, 0], x[train_rows, 0])
    np.testing.assert_array_equal(unscaled.train[1], y[train_rows])


def test_splits_are_disjoint_cover_and_repeat_by_seed() -> None:
    first = split_indices(103, validation=0.2, test=0.1, seed=5)
    again = split_indices(103, validation=0.2, test=0.1, seed=5)
    other = split_indices(103, validation=0.2, test=0.1, seed=6)
    for name in first:
        np.testing.assert_array_equal(first[name], again[name])
    assert not np.array_equal(first["test"], other["test"])
    joined = np.concatenate(list(first.values()))
    assert sorted(joined.tolist()) == list(range(103)), "disjoint and covering"
    assert [len(first[k]) for k in ("train", "validation", "test")] == [72, 21, 10]


def test_split_depends_on_seed_not_on_values(tmp_path: Path) -> None:
    one = make_dataset(np.random.default_rng(0).normal(size=(80, 2)), np.arange(80.0), seed=9)
    two = make_dataset(np.random.default_rng(1).normal(size=(80, 2)), -np.arange(80.0), seed=9)
    for name in one.indices:
        np.testing.assert_array_equal(one.indices[name], two.indices[name])


def test_stratified_split_repeats_and_covers() -> None:
    labels = np.repeat(np.arange(4), [40, 25, 10, 5])
    first = split_indices(80, seed=1, labels=labels)
    again = split_indices(80, seed=1, labels=labels)
    for name in first:
        np.testing.assert_array_equal(first[name], again[name])
    assert sorted(np.concatenate(list(first.values())).tolist()) == list(range(80))
    assert len(first["test"]) == 12 and len(first["validation"]) == 12
    test_counts = np.bincount(labels[first["test"]], minlength=4)
    np.testing.assert_array_equal(test_counts, [6, 4, 1, 1])


# ---- bad files ------------------------------------------------------------------------------


def bad_csv(tmp_path: Path, rows: list[str], header: str = "a,b,y") -> Path:
    good = [f"{i}.0,{2 * i}.5,{i * i}.0" for i in range(20)]
    return write_rows(tmp_path / "bad.csv", header, good[:5] + rows + good[5:])


def test_missing_columns_list_the_available_ones(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "m.csv", table_values())
    with pytest.raises(
        ConfigError,
        match=r"m\.csv: no columns 'x', 'z'; available columns: "
        r"id, a, b, c, energy",
    ):
        load_table(path, target="energy", features=["a", "x", "z"])
    with pytest.raises(ConfigError, match=r"no target column 'gap'; available columns: id, a"):
        load_table(path, target="gap", features=["a"])
    with pytest.raises(ConfigError, match="also listed as a feature"):
        load_table(path, target="energy", features=["a", "energy"])


def test_nan_and_inf_name_column_and_first_row(tmp_path: Path) -> None:
    path = bad_csv(tmp_path, ["5.0,nan,25.0", "6.0,inf,36.0"])
    with pytest.raises(
        ConfigError,
        match=r"bad\.csv: column 'b' has NaN at row 6 \(line 7\) "
        r"\(2 non-finite values in all\)",
    ):
        load_table(path, target="y")
    path = bad_csv(tmp_path, ["5.0,1.0,-inf"])
    with pytest.raises(ConfigError, match=r"column 'y' has an infinite value at row 6 \(line 7\)"):
        load_table(path, target="y")
    npz = tmp_path / "nan.npz"
    np.savez(npz, a=np.array([1.0, 2.0, np.nan, 4.0, 5.0]), y=np.arange(5.0))
    with pytest.raises(ConfigError, match=r"nan\.npz: column 'a' has NaN at row 3 \(index 2\)"):
        load_table(npz, target="y")


def test_non_numeric_names_column_row_and_text(tmp_path: Path) -> None:
    path = bad_csv(tmp_path, ["5.0,1.0,25.0", "6.0,n/a,36.0"])
    with pytest.raises(ConfigError, match=r"column 'b' is not numeric at row 7 \(line 8\): 'n/a'"):
        load_table(path, target="y")
    path = bad_csv(tmp_path, ["5.0,,25.0"])
    with pytest.raises(ConfigError, match=r"column 'b' has an empty cell at row 6 \(line 7\)"):
        load_table(path, target="y")
    path = write_csv(tmp_path / "ids.csv", table_values())
    with pytest.raises(
        ConfigError, match=r"column 'id' is not numeric at row 1 \(line 3\): 'mol0'"
    ):
        load_table(path, target="energy")  # all columns by default, the text id included


def test_empty_and_short_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ConfigError, match=r"empty\.csv: empty file"):
        load_table(empty, target="y")
    header = write_rows(tmp_path / "header.csv", "a,y", [])
    with pytest.raises(ConfigError, match=r"header\.csv: empty table \(no data rows\)"):
        load_table(header, target="y")
    comments = tmp_path / "comments.csv"
    comments.write_text("# nothing here\n\n")
    with pytest.raises(ConfigError, match="empty file"):
        load_table(comments, target="y")
    short = write_rows(tmp_path / "short.csv", "a,y", ["1,2", "2,3", "3,4"])
    with pytest.raises(ConfigError, match=r"short\.csv: too few rows for the splits: 3 rows"):
        load_table(short, target="y")
    npz = tmp_path / "empty.npz"
    np.savez(npz, a=np.array([]), y=np.array([]))
    with pytest.raises(ConfigError, match=r"empty\.npz: empty table \(no data rows\)"):
        load_table(npz, target="y")
    nothing = tmp_path / "nothing.npz"
    np.savez(nothing)
    with pytest.raises(ConfigError, match=r"nothing\.npz: empty"):
        load_table(nothing, target="y")
    h5 = tmp_path / "empty.h5"
    h5py.File(h5, "w").close()
    with pytest.raises(ConfigError, match=r"empty\.h5: empty table"):
        load_table(h5, target="y")


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.csv: cannot read the table: no such file"):
        load_table(tmp_path / "missing.csv", target="y")
    with pytest.raises(ConfigError, match="not a file"):
        load_table(tmp_path, target="y", format="csv")
    for name, kind in (("broken.npz", "NPZ"), ("broken.h5", "HDF5")):
        path = tmp_path / name
        path.write_bytes(b"this is not a real file of that kind")
        with pytest.raises(
            ConfigError, match=rf"{name.replace('.', '[.]')}: not a readable {kind}"
        ):
            load_table(path, target="y")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"a,y\n\xff\xfe\x00\x81,1\n")
    with pytest.raises(ConfigError, match=r"binary\.csv: cannot read the table as text"):
        load_table(binary, target="y")
    with pytest.raises(ConfigError, match=r"cannot tell the table format from the suffix '\.xls'"):
        load_table(tmp_path / "t.xls", target="y")
    ragged = write_rows(tmp_path / "ragged.csv", "a,b,y", ["1,2,3", "4,5"])
    with pytest.raises(
        ConfigError, match=r"ragged\.csv: line 3 has 2 cells but the header names 3"
    ):
        load_table(ragged, target="y")
    npz = tmp_path / "lengths.npz"
    np.savez(npz, a=np.arange(5.0), y=np.arange(6.0))
    with pytest.raises(ConfigError, match=r"different numbers of rows: a 5, y 6"):
        load_table(npz, target="y")
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, a=np.array([1, "x", None], dtype=object), y=np.arange(3.0))
    with pytest.raises(ConfigError, match="object arrays"):
        load_table(pickled, target="y")


# ---- built-ins ------------------------------------------------------------------------------


def test_builtin_digits_and_diabetes() -> None:
    pytest.importorskip("sklearn")
    digits = data.builtin("digits", seed=0)
    assert digits.task == "classification" and digits.inputs == 64 and digits.outputs == 10
    assert sum(digits.sizes.values()) == 1797
    assert digits.train[0].min() >= 0.0 and digits.train[0].max() <= 1.0
    diabetes = data.diabetes(seed=0)
    assert diabetes.task == "regression" and diabetes.inputs == 10 and diabetes.outputs == 1
    assert sum(diabetes.sizes.values()) == 442 and "bmi" in diabetes.feature_names
    assert 50 < diabetes.scaler.target_scale < 100  # progression: std ≈ 77 units
    old_train, old_test = data.load_digits(seed=0)
    assert old_train[0].shape == (1258, 64) and old_test[0].shape == (539, 64)
    from circuitnn.train import load_digits

    assert load_digits is data.load_digits


def test_generated_tasks() -> None:
    smooth = data.smooth_regression(rows=300, features=3, noise=0.0, seed=1)
    assert smooth.inputs == 3 and sum(smooth.sizes.values()) == 300
    again = data.smooth_regression(rows=300, features=3, noise=0.0, seed=1)
    np.testing.assert_array_equal(smooth.train[0], again.train[0])
    noisy = data.smooth_regression(rows=300, features=3, noise=0.5, seed=1)
    np.testing.assert_array_equal(smooth.train[0], noisy.train[0])  # same inputs, noisier target
    clean_y = smooth.scaler.inverse_target(smooth.train[1])
    noisy_y = noisy.scaler.inverse_target(noisy.train[1])
    ratio = np.std(noisy_y - clean_y) / np.std(clean_y)
    assert 0.4 < ratio < 0.6, ratio
    friedman = data.builtin("friedman", rows=200, features=7, seed=0)
    assert friedman.inputs == 7 and friedman.feature_names[-1] == "x6"
    with pytest.raises(ConfigError, match="friedman needs features >= 5"):
        data.friedman(features=3)
    with pytest.raises(ConfigError, match="unknown data set 'qm9'; built-in: digits"):
        data.builtin("qm9")
    with pytest.raises(ConfigError, match="noise must be a number >= 0"):
        data.smooth_regression(noise=-1.0)


def test_g2_zpe_descriptors_from_the_stored_geometries() -> None:
    """Every G2 molecule with a zero-point energy, its descriptors counted from the geometry
    (checked by hand for methane, water and carbon dioxide) and a target that they predict: a
    least-squares linear fit on the training split explains the test split (R² > 0.98)."""
    pytest.importorskip("ase")
    from ase.build import molecule

    from circuitnn.data.materials import DESCRIPTORS, descriptors, g2_molecules

    molecules = g2_molecules()
    assert len(molecules) == 148
    names = {name: zpe for name, _, zpe in molecules}
    assert names["CH4"] == pytest.approx(27.6744)  # kcal/mol, as ase stores it
    column = {name: index for index, name in enumerate(DESCRIPTORS)}
    methane, water, co2 = (descriptors(molecule(name)) for name in ("CH4", "H2O", "CO2"))
    assert methane[column["n_H"]] == 4 and methane[column["n_C"]] == 1
    assert methane[column["modes"]] == 9 and methane[column["bonds_h"]] == 4
    assert water[column["modes"]] == 3 and water[column["bonds"]] == 2
    assert co2[column["modes"]] == 4 and co2[column["bonds_heavy"]] == 2  # linear: 3N − 5
    assert 1.08 < methane[column["mean_bond_length"]] < 1.1  # C–H, Å
    zpe = data.builtin("g2-zpe", seed=3)
    assert zpe.task == "regression" and zpe.inputs == len(DESCRIPTORS)
    assert sum(zpe.sizes.values()) == 148 and zpe.target_name == "zpe_kcal_per_mol"
    assert all(np.isfinite(split[0]).all() for split in zpe.splits().values())
    x, y = zpe.train
    fit, *_ = np.linalg.lstsq(np.c_[x, np.ones(len(x))], y, rcond=None)
    tx, ty = zpe.test
    predicted = np.c_[tx, np.ones(len(tx))] @ fit
    r2 = 1 - np.sum((predicted - ty) ** 2) / np.sum((ty - ty.mean()) ** 2)
    assert r2 > 0.98, r2
    assert zpe.scaler.target_error(1.0) == pytest.approx(zpe.scaler.target_scale)


def test_g2_zpe_without_ase_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_ase(name: str, *args, **kwargs):
        if name == "ase" or name.startswith("ase."):
            raise ImportError("no ase here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ase)
    monkeypatch.setattr("importlib.import_module", lambda name: no_ase(name))
    message = r"needs the ase package: pip install 'circuitnn\[materials\]'"
    with pytest.raises(ConfigError, match=message):
        data.builtin("g2-zpe")


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match=r"validation must be a fraction in \(0, 1\)"):
        split_indices(10, validation=1.5)
    with pytest.raises(ConfigError, match="validation \\+ test must leave rows"):
        split_indices(10, validation=0.5, test=0.5)
    with pytest.raises(ConfigError, match="task must be one of"):
        make_dataset(np.zeros((5, 1)), np.zeros(5), task="ranking")
    with pytest.raises(ConfigError, match="classification needs >= 2 classes"):
        make_dataset(np.zeros((10, 1)), np.zeros(10), task="classification")


def test_data_folder_readme_is_true() -> None:
    """data/README.md: the folder holds nothing else, and every name and path it cites exists."""
    root = Path(__file__).resolve().parents[1]
    text = (root / "data" / "README.md").read_text()
    assert sorted(p.name for p in (root / "data").iterdir()) == ["README.md"]
    assert "Nothing is stored in this folder" in text
    names = re.findall(r"`circuitnn\.data\.(\w+)`", text)
    assert len(names) >= 5
    missing = [name for name in names if not hasattr(data, name)]
    assert not missing, f"data/README.md cites circuitnn.data.{missing}"
    for folder in re.findall(r"`(tests/\w+/|docs/\w+\.md)`", text):
        assert (root / folder).exists(), folder
    sections = re.findall(r'section "([^"]+)"', text)
    assert sections and all(
        f"### {s}" in (root / "docs" / "pytorch.md").read_text() for s in sections
    )
