"""User tables (CSV, NPZ, HDF5) with named columns → a :class:`~circuitnn.data.Dataset`.

``load_table("qm9.csv", target="zpve", features=["mu", "alpha", "homo"])`` reads the named
columns, checks every value (a ConfigError names the file, the column and the first bad row:
missing columns with the available ones listed, NaN or infinite values, text that is not a
number, an empty file, too few rows for the splits, an unreadable file), then splits and
standardizes as :func:`~circuitnn.data.make_dataset` does. Only the selected columns are checked,
so a table may carry other columns (identifiers, SMILES strings) that are left out.

Layouts: a CSV/TSV file with one header line of column names (lines starting with ``#`` before or
between rows and blank lines are skipped); an NPZ file with one array per column; an HDF5 group
with one dataset per column, or one compound (structured) dataset whose fields are the columns
(``key=`` names the group or dataset inside the file, default the root). A 2-D array ``X``
(rows × d) in NPZ or HDF5 gives the columns ``X[0]`` … ``X[d-1]``, and ``features=["X"]``
selects them all.
"""

from __future__ import annotations

import csv
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from circuitnn.data.dataset import TASKS, Dataset, make_dataset
from circuitnn.errors import ConfigError

FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".npz": "npz",
    ".h5": "hdf5",
    ".hdf5": "hdf5",
    ".hdf": "hdf5",
}
SHOWN_COLUMNS = 30  # available columns listed in an error message at most


@dataclass(frozen=True)
class Table:
    """Columns of a file: ``columns`` name → 1-D array (numbers or text), ``groups`` name → the
    column names a 2-D array expanded into, ``lines``: the file line of every row (CSV only)."""

    path: Path
    columns: dict[str, np.ndarray]
    groups: dict[str, tuple[str, ...]]
    lines: np.ndarray | None = None

    @property
    def rows(self) -> int:
        """Number of rows (0 for a table without columns)."""
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def where(self, row: int) -> str:
        """``row N`` (1-based, header not counted) and the file line for CSV, or the array
        index for NPZ / HDF5."""
        if self.lines is not None:
            return f"row {row + 1} (line {int(self.lines[row])})"
        return f"row {row + 1} (index {row})"


def table_format(path: str | Path, format: str | None = None) -> str:
    """``"csv"``, ``"npz"`` or ``"hdf5"`` from ``format`` or the file's suffix."""
    if format is not None:
        if format not in set(FORMATS.values()):
            raise ConfigError(f"format must be one of csv, npz, hdf5, got {format!r}")
        return format
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ConfigError(
            f"{path}: cannot tell the table format from the suffix {suffix!r} "
            f"(known: {', '.join(FORMATS)}); pass format='csv' | 'npz' | 'hdf5'"
        )
    return FORMATS[suffix]


def read_table(
    path: str | Path,
    *,
    format: str | None = None,
    delimiter: str | None = None,
    key: str | None = None,
) -> Table:
    """Every column of a CSV, NPZ or HDF5 file, unchecked (see the module docstring for the
    layouts); ConfigError when the file cannot be read or holds no rows."""
    path = Path(path)
    kind = table_format(path, format)
    if not path.exists():
        raise ConfigError(f"{path}: cannot read the table: no such file")
    if not path.is_file():
        raise ConfigError(f"{path}: cannot read the table: not a file")
    if path.stat().st_size == 0:
        raise ConfigError(f"{path}: empty file")
    if kind == "csv":
        table = _read_csv(path, delimiter)
    elif kind == "npz":
        table = _from_arrays(path, _read_npz(path))
    else:
        from circuitnn.store.tables import read_hdf5

        table = _from_arrays(path, read_hdf5(path, key))
    if not table.columns:
        raise ConfigError(f"{path}: empty table (no columns)")
    if table.rows == 0:
        raise ConfigError(f"{path}: empty table (no data rows)")
    return table


def _read_csv(path: Path, delimiter: str | None) -> Table:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the table as text (CSV): {error}") from None
    numbered = [
        (number, line)
        for number, line in enumerate(text.splitlines(), 1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not numbered:
        raise ConfigError(f"{path}: empty file (no header line)")
    header_line = numbered[0][1]
    if delimiter is None:
        delimiter = "\t" if path.suffix.lower() == ".tsv" else _delimiter(header_line)
    try:
        parsed = list(csv.reader([line for _, line in numbered], delimiter=delimiter))
    except csv.Error as error:
        raise ConfigError(f"{path}: not a readable CSV file: {error}") from None
    names = [name.strip() for name in parsed[0]]
    for index, name in enumerate(names):
        if not name:
            raise ConfigError(
                f"{path}: column {index + 1} of the header (line {numbered[0][0]}) has no name"
            )
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigError(f"{path}: duplicate column names in the header: {duplicates}")
    rows = parsed[1:]
    for (number, _), cells in zip(numbered[1:], rows, strict=True):
        if len(cells) != len(names):
            raise ConfigError(
                f"{path}: line {number} has {len(cells)} cells but the header names "
                f"{len(names)} columns (delimiter {delimiter!r})"
            )
    columns = {
        name: np.array([cells[j].strip() for cells in rows], dtype=object)
        for j, name in enumerate(names)
    }
    lines = np.array([number for number, _ in numbered[1:]], dtype=np.int64)
    return Table(path, columns, {}, lines)


def _delimiter(header: str) -> str:
    for candidate in (",", "\t", ";"):
        if candidate in header:
            return candidate
    return ","


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    if not zipfile.is_zipfile(path):
        raise ConfigError(f"{path}: not a readable NPZ file (not a zip archive of .npy arrays)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise ConfigError(
                f"{path}: holds object arrays (pickled), which are not read; store numbers or "
                "fixed-width strings"
            ) from None
        raise ConfigError(f"{path}: not a readable NPZ file: {error}") from None
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        raise ConfigError(f"{path}: not a readable NPZ file: {error}") from None


def _from_arrays(path: Path, arrays: dict[str, np.ndarray]) -> Table:
    """Columns from named arrays: 1-D arrays as they are, 2-D arrays split into ``name[j]``,
    structured arrays into their fields; all must have the same number of rows."""
    columns: dict[str, np.ndarray] = {}
    groups: dict[str, tuple[str, ...]] = {}
    lengths: dict[str, int] = {}
    for name, array in arrays.items():
        array = np.asarray(array)
        if array.dtype.names:
            for field in array.dtype.names:
                columns[field] = _text_or_number(array[field])
            lengths[name] = len(array)
        elif array.ndim == 1:
            columns[name] = _text_or_number(array)
            lengths[name] = len(array)
        elif array.ndim == 2:
            members = tuple(f"{name}[{j}]" for j in range(array.shape[1]))
            for j, member in enumerate(members):
                columns[member] = _text_or_number(array[:, j])
            groups[name] = members
            lengths[name] = len(array)
        else:
            raise ConfigError(
                f"{path}: array {name!r} has shape {array.shape}; columns must be 1-D (or 2-D: "
                "rows × features)"
            )
    if len(set(lengths.values())) > 1:
        raise ConfigError(
            f"{path}: columns have different numbers of rows: "
            + ", ".join(f"{name} {count}" for name, count in lengths.items())
        )
    return Table(path, columns, groups)


def _text_or_number(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "S":
        return np.array([item.decode("utf-8", "replace") for item in values], dtype=object)
    if values.dtype.kind == "O":
        return np.array(
            [
                item.decode("utf-8", "replace") if isinstance(item, bytes) else item
                for item in values
            ],
            dtype=object,
        )
    return values


def select(
    table: Table, target: str, features: list[str] | tuple[str, ...] | None
) -> tuple[list[str], str]:
    """The feature column names (groups expanded, file order when ``features`` is None: every
    column but the target) and the target; ConfigError listing what is available."""
    available = list(table.columns)
    if target in table.groups:
        raise ConfigError(
            f"{table.path}: target {target!r} is a 2-D array; name one column "
            f"such as {table.groups[target][0]!r}"
        )
    if target not in table.columns:
        raise ConfigError(
            f"{table.path}: no target column {target!r}; available columns: {_shown(available)}"
        )
    if features is None:
        names = [name for name in available if name != target]
    else:
        if isinstance(features, str):
            features = [features]
        missing = [n for n in features if n not in table.columns and n not in table.groups]
        if missing:
            plural = "s" if len(missing) > 1 else ""
            raise ConfigError(
                f"{table.path}: no column{plural} {', '.join(map(repr, missing))}; available "
                f"columns: {_shown(available)}"
            )
        names = []
        for name in features:
            names += list(table.groups.get(name, (name,)))
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ConfigError(f"{table.path}: feature columns named twice: {duplicates}")
    if target in names:
        raise ConfigError(f"{table.path}: the target {target!r} is also listed as a feature")
    if not names:
        raise ConfigError(f"{table.path}: no feature columns (the table has only {target!r})")
    return names, target


def _shown(names: list[str]) -> str:
    if len(names) <= SHOWN_COLUMNS:
        return ", ".join(names)
    return ", ".join(names[:SHOWN_COLUMNS]) + f", … ({len(names)} in all)"


def numeric_column(table: Table, name: str) -> np.ndarray:
    """Column ``name`` as finite float64; ConfigError naming the column and the first row that
    is empty, not a number (quoting the text), NaN or infinite."""
    values = table.columns[name]
    if values.dtype.kind in "biuf":
        numbers = values.astype(np.float64)
    elif values.dtype.kind == "O" or values.dtype.kind == "U":
        numbers = np.empty(len(values), dtype=np.float64)
        for row, item in enumerate(values):
            numbers[row] = _number(table, name, row, item)
    else:
        raise ConfigError(f"{table.path}: column {name!r} holds {values.dtype} values, not numbers")
    bad = np.flatnonzero(~np.isfinite(numbers))
    if len(bad):
        row = int(bad[0])
        kind = "NaN" if np.isnan(numbers[row]) else "an infinite value"
        raise ConfigError(
            f"{table.path}: column {name!r} has {kind} at {table.where(row)} "
            f"({len(bad)} non-finite value{'s' if len(bad) > 1 else ''} in all)"
        )
    return numbers


def _number(table: Table, name: str, row: int, item: Any) -> float:
    if isinstance(item, int | float | np.integer | np.floating) and not isinstance(item, bool):
        return float(item)
    text = str(item).strip()
    if not text:
        raise ConfigError(f"{table.path}: column {name!r} has an empty cell at {table.where(row)}")
    try:
        return float(text)
    except ValueError:
        raise ConfigError(
            f"{table.path}: column {name!r} is not numeric at {table.where(row)}: {text!r}"
        ) from None


def label_column(table: Table, name: str) -> np.ndarray:
    """A classification target: numbers where every value is one, else the stripped text; an
    empty cell or a NaN is a ConfigError naming the row."""
    values = table.columns[name]
    if values.dtype.kind in "biuf":
        return numeric_column(table, name)
    texts = [str(item).strip() for item in values]
    for row, text in enumerate(texts):
        if not text:
            raise ConfigError(
                f"{table.path}: column {name!r} has an empty cell at {table.where(row)}"
            )
    try:
        return numeric_column(table, name)
    except ConfigError as error:
        if "not numeric" not in str(error):
            raise
    return np.array(texts, dtype=object)


def load_table(
    path: str | Path,
    *,
    target: str,
    features: list[str] | tuple[str, ...] | None = None,
    task: str = "regression",
    format: str | None = None,
    validation: float = 0.15,
    test: float = 0.15,
    seed: int = 0,
    standardize: bool = True,
    standardize_target: bool = True,
    delimiter: str | None = None,
    key: str | None = None,
    name: str | None = None,
) -> Dataset:
    """A :class:`~circuitnn.data.Dataset` from the ``features`` columns (None: all but the
    target) and the ``target`` column of a CSV / NPZ / HDF5 table.

    ``task``: ``"regression"`` (numeric target, standardized unless ``standardize_target`` is
    False) or ``"classification"`` (any labels, numbers or text). ``validation`` / ``test``:
    fractions of the rows, split by ``seed``; ``standardize``: features scaled with the training
    split's statistics. ``format`` overrides the suffix; ``delimiter`` (CSV; default the first of
    ``,``, tab, ``;`` in the header); ``key``: the HDF5 group or compound dataset holding the
    columns. ``name`` defaults to the file's stem.
    """
    if task not in TASKS:
        raise ConfigError(f"task must be one of {TASKS}, got {task!r}")
    table = read_table(path, format=format, delimiter=delimiter, key=key)
    names, target = select(table, target, features)
    x = np.column_stack([numeric_column(table, column) for column in names])
    y = label_column(table, target) if task == "classification" else numeric_column(table, target)
    try:
        return make_dataset(
            x,
            y,
            task=task,
            feature_names=names,
            target_name=target,
            name=name or table.path.stem,
            source=str(table.path),
            validation=validation,
            test=test,
            seed=seed,
            standardize=standardize,
            standardize_target=standardize_target,
        )
    except ConfigError as error:
        raise ConfigError(f"{table.path}: {error}") from None
