"""Data sets for training and judging analog networks (numpy only; no torch needed).

- :class:`Dataset`: train / validation / test ``(x, y)`` splits, feature and target names, the
  task and the :class:`Standardizer` that maps predictions back to the target's units; feed it to
  ``circuitnn.train.train(model, ds.train, validation=ds.validation,
  config=TrainConfig(task=ds.task))``;
- :func:`load_table`: a user's CSV, NPZ or HDF5 table (named feature columns and a target column),
  checked value by value, split by seed and standardized on the training split;
- built-ins, offline: :func:`digits` (classification), :func:`diabetes` (regression),
  :func:`smooth_regression` and :func:`friedman` (generated), by name through :func:`builtin`;
  :func:`load_digits` is the older ``((x, y), (x, y))`` form (also ``circuitnn.train.load_digits``).
"""

from circuitnn.data.builtin import (
    BUILTINS,
    builtin,
    diabetes,
    digits,
    friedman,
    load_digits,
    smooth_regression,
)
from circuitnn.data.dataset import Dataset, Standardizer, make_dataset, split_indices
from circuitnn.data.tables import load_table, read_table

__all__ = [
    "BUILTINS",
    "Dataset",
    "Standardizer",
    "builtin",
    "diabetes",
    "digits",
    "friedman",
    "load_digits",
    "load_table",
    "make_dataset",
    "read_table",
    "smooth_regression",
    "split_indices",
]
