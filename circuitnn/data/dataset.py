"""The :class:`Dataset` every loader returns: fixed train/validation/test splits and their scaler.

A data set is a feature matrix ``x`` (N × F) and a target ``y`` (N,): class indices for
classification, real values for regression. :func:`make_dataset` splits it by a seed (stratified
by class for classification), fits a :class:`Standardizer` on the *training* split only and applies
it to all three splits, so the statistics of the validation and test rows never leak into
training, and predictions map back to the target's own units with
``dataset.scaler.inverse_target(prediction)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from circuitnn.errors import ConfigError

TASKS = ("classification", "regression")
Split = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Standardizer:
    """Affine maps ``x → (x − mean) / scale`` fitted on a training split.

    ``feature_mean`` / ``feature_scale`` (F,) in the features' own units (a constant column gets
    scale 1, so it maps to 0 instead of dividing by zero); ``target_mean`` / ``target_scale`` in
    the target's units (0 and 1 when the target is not standardized: classification, or
    ``standardize_target=False``).
    """

    feature_mean: np.ndarray
    feature_scale: np.ndarray
    target_mean: float = 0.0
    target_scale: float = 1.0

    @classmethod
    def fit(
        cls, x: np.ndarray, y: np.ndarray | None = None, *, features: bool = True
    ) -> Standardizer:
        """Statistics of ``x`` (when ``features``) and of the regression target ``y`` (when
        given); population standard deviations."""
        x = np.asarray(x, dtype=np.float64)
        count = x.shape[1]
        mean, scale = np.zeros(count), np.ones(count)
        if features:
            mean = x.mean(axis=0)
            scale = _scale(x.std(axis=0))
        target_mean, target_scale = 0.0, 1.0
        if y is not None:
            values = np.asarray(y, dtype=np.float64)
            target_mean = float(values.mean())
            target_scale = float(_scale(np.array([values.std()]))[0])
        return cls(mean, scale, target_mean, target_scale)

    def transform_features(self, x: np.ndarray) -> np.ndarray:
        """Standardized features (float32)."""
        return ((np.asarray(x, dtype=np.float64) - self.feature_mean) / self.feature_scale).astype(
            np.float32
        )

    def inverse_features(self, x: np.ndarray) -> np.ndarray:
        """Features back in their own units (float64)."""
        return np.asarray(x, dtype=np.float64) * self.feature_scale + self.feature_mean

    def transform_target(self, y: np.ndarray) -> np.ndarray:
        """Standardized regression target (float32)."""
        return ((np.asarray(y, dtype=np.float64) - self.target_mean) / self.target_scale).astype(
            np.float32
        )

    def inverse_target(self, y: Any) -> np.ndarray:
        """Predictions (or targets) in standardized units back in the target's units (float64);
        accepts arrays or tensors."""
        if hasattr(y, "detach"):
            y = y.detach().cpu().numpy()
        return np.asarray(y, dtype=np.float64) * self.target_scale + self.target_mean

    def target_error(self, error: float) -> float:
        """An error (RMSE, MAE) in standardized units in the target's units."""
        return float(error) * self.target_scale

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly (lists of floats)."""
        return {
            "feature_mean": self.feature_mean.tolist(),
            "feature_scale": self.feature_scale.tolist(),
            "target_mean": self.target_mean,
            "target_scale": self.target_scale,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Standardizer:
        """Inverse of :meth:`to_dict`."""
        return cls(
            np.asarray(values["feature_mean"], dtype=np.float64),
            np.asarray(values["feature_scale"], dtype=np.float64),
            float(values["target_mean"]),
            float(values["target_scale"]),
        )


def _scale(std: np.ndarray) -> np.ndarray:
    tiny = np.finfo(np.float64).eps * 16
    return np.where(std > tiny, std, 1.0)


@dataclass(frozen=True)
class Dataset:
    """Train / validation / test splits of one table, ready for :func:`circuitnn.train.train`.

    ``train``, ``validation``, ``test``: ``(x, y)`` pairs of numpy arrays, ``x`` float32 (N × F,
    standardized unless the loader was told not to), ``y`` int64 class indices (classification)
    or float32 (regression, standardized when ``scaler.target_scale != 1`` or its mean ≠ 0).
    ``feature_names`` (F), ``target_name``, ``task`` (``"classification"`` / ``"regression"``),
    ``scaler`` (maps back to the original units), ``classes`` (the original label of every class
    index; empty for regression), ``indices``: the rows of the source table in each split, and
    ``source``: where it came from (a path or a built-in name).

    ``train(model, ds.train, validation=ds.validation, config=TrainConfig(task=ds.task))``.
    """

    name: str
    task: str
    train: Split
    validation: Split
    test: Split
    feature_names: tuple[str, ...]
    target_name: str
    scaler: Standardizer
    classes: tuple[str, ...] = ()
    indices: dict[str, np.ndarray] = field(default_factory=dict, compare=False)
    source: str = ""

    @property
    def inputs(self) -> int:
        """Number of features F (the network's input width)."""
        return len(self.feature_names)

    @property
    def outputs(self) -> int:
        """The network's output width: the number of classes, or 1 for regression."""
        return len(self.classes) if self.task == "classification" else 1

    @property
    def sizes(self) -> dict[str, int]:
        """Rows per split."""
        return {name: len(split[1]) for name, split in self.splits().items()}

    def splits(self) -> dict[str, Split]:
        """``{"train": ..., "validation": ..., "test": ...}``."""
        return {"train": self.train, "validation": self.validation, "test": self.test}

    def describe(self) -> dict[str, Any]:
        """Name, task, sizes, features and target (JSON-friendly), e.g. for experiment configs."""
        return {
            "name": self.name,
            "task": self.task,
            "source": self.source,
            "sizes": self.sizes,
            "features": list(self.feature_names),
            "target": self.target_name,
            "classes": len(self.classes) if self.task == "classification" else None,
            "target_scale": self.scaler.target_scale,
        }


def _fraction(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
        raise ConfigError(f"{name} must be a fraction in (0, 1), got {value!r}")
    value = float(value)
    if not (0.0 < value < 1.0) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a fraction in (0, 1), got {value!r}")
    return value


def split_counts(rows: int, validation: float, test: float) -> tuple[int, int, int]:
    """Rows in (train, validation, test): the validation and test fractions rounded, at least
    one row each, at least two for training (to fit the scaler); ConfigError if ``rows`` cannot
    give that."""
    validation = _fraction("validation", validation)
    test = _fraction("test", test)
    if validation + test >= 1.0:
        raise ConfigError(
            f"validation + test must leave rows for training, got {validation + test}"
        )
    n_val = max(1, round(validation * rows))
    n_test = max(1, round(test * rows))
    n_train = rows - n_val - n_test
    if n_train < 2:
        raise ConfigError(
            f"too few rows for the splits: {rows} rows give {n_train} for training, {n_val} for "
            f"validation and {n_test} for test (need >= 2, 1 and 1)"
        )
    return n_train, n_val, n_test


def split_indices(
    rows: int,
    *,
    validation: float = 0.15,
    test: float = 0.15,
    seed: int = 0,
    labels: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Disjoint sorted row indices ``{"train", "validation", "test"}`` covering ``range(rows)``.

    The split depends only on ``rows``, the fractions, ``seed`` and (for a stratified split) the
    ``labels``: with labels, every class is split in the same proportions (largest remainders),
    so each split keeps the class balance.
    """
    _, n_val, n_test = split_counts(rows, validation, test)
    rng = np.random.default_rng(seed)
    if labels is None:
        order = rng.permutation(rows)
        chosen = {"test": order[:n_test], "validation": order[n_test : n_test + n_val]}
    else:
        chosen = _stratified(np.asarray(labels), n_val, n_test, rng)
    taken = np.zeros(rows, dtype=bool)
    for index in chosen.values():
        taken[index] = True
    return {
        "train": np.flatnonzero(~taken),
        "validation": np.sort(chosen["validation"]),
        "test": np.sort(chosen["test"]),
    }


def _stratified(
    labels: np.ndarray, n_val: int, n_test: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    classes, inverse = np.unique(labels, return_inverse=True)
    members = [rng.permutation(np.flatnonzero(inverse == k)) for k in range(len(classes))]
    sizes = np.array([len(m) for m in members], dtype=float)
    rows = sizes.sum()
    test_quota = sizes * n_test / rows
    test_counts = _apportion(test_quota, n_test, sizes)
    # ties go to the classes the test split shortchanged, so the training split stays balanced
    val_counts = _apportion(
        sizes * n_val / rows, n_val, sizes - test_counts, tie=test_counts - test_quota
    )
    test = [m[:t] for m, t in zip(members, test_counts, strict=True)]
    val = [m[t : t + v] for m, t, v in zip(members, test_counts, val_counts, strict=True)]
    return {"test": np.concatenate(test), "validation": np.concatenate(val)}


def _apportion(
    quotas: np.ndarray, total: int, room: np.ndarray, tie: np.ndarray | None = None
) -> np.ndarray:
    """Integer counts summing to ``total`` (largest remainders first, equal remainders in
    increasing ``tie``), each at most ``room``."""
    counts = np.minimum(np.floor(quotas), room).astype(int)
    remainder = np.round(quotas - np.floor(quotas), 9)
    order = np.lexsort((np.zeros_like(quotas) if tie is None else tie, -remainder))
    while counts.sum() < total:
        progressed = False
        for k in order:
            if counts.sum() >= total:
                break
            if counts[k] < room[k]:
                counts[k] += 1
                progressed = True
        if not progressed:
            break
    return counts


def make_dataset(
    x: np.ndarray,
    y: np.ndarray,
    *,
    task: str = "regression",
    feature_names: tuple[str, ...] | list[str] | None = None,
    target_name: str = "target",
    name: str = "data",
    source: str = "",
    validation: float = 0.15,
    test: float = 0.15,
    seed: int = 0,
    standardize: bool = True,
    standardize_target: bool = True,
) -> Dataset:
    """A :class:`Dataset` from a feature matrix ``x`` (N × F, finite numbers) and targets ``y``
    (N,), split by ``seed`` into ``validation`` / ``test`` fractions (stratified for
    classification) with the rest for training.

    ``standardize``: features to zero mean, unit variance with the training split's statistics;
    ``standardize_target``: the same for a regression target. Classification targets may be any
    labels (numbers or text): they become class indices 0…K−1 in sorted order, their original
    labels kept in ``classes``.
    """
    if task not in TASKS:
        raise ConfigError(f"task must be one of {TASKS}, got {task!r}")
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 2:
        raise ConfigError(f"{name}: features must be a 2-D array (rows × features), got {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise ConfigError(f"{name}: target must be 1-D with one value per row, got {y.shape}")
    if len(x) == 0:
        raise ConfigError(f"{name}: no rows")
    names = (
        tuple(feature_names)
        if feature_names is not None
        else tuple(f"x{j}" for j in range(x.shape[1]))
    )
    if len(names) != x.shape[1]:
        raise ConfigError(f"{name}: {len(names)} feature names for {x.shape[1]} features")
    classes: tuple[str, ...] = ()
    if task == "classification":
        labels, y = np.unique(y, return_inverse=True)
        y = y.astype(np.int64)
        classes = tuple(_label(value) for value in labels)
        if len(classes) < 2:
            raise ConfigError(f"{name}: classification needs >= 2 classes, got {list(classes)}")
    else:
        y = y.astype(np.float64)
    x = x.astype(np.float64)
    index = split_indices(
        len(x),
        validation=validation,
        test=test,
        seed=seed,
        labels=y if task == "classification" else None,
    )
    train_x, train_y = x[index["train"]], y[index["train"]]
    regression_target = train_y if task == "regression" and standardize_target else None
    scaler = Standardizer.fit(train_x, regression_target, features=standardize)

    def prepared(rows: np.ndarray) -> Split:
        features = scaler.transform_features(x[rows])
        if task == "classification":
            return features, y[rows]
        return features, scaler.transform_target(y[rows])

    return Dataset(
        name=name,
        task=task,
        train=prepared(index["train"]),
        validation=prepared(index["validation"]),
        test=prepared(index["test"]),
        feature_names=names,
        target_name=target_name,
        scaler=scaler,
        classes=classes,
        indices=index,
        source=source,
    )


def _label(value: Any) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)
