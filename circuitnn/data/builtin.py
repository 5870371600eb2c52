"""Built-in data sets, all offline: scikit-learn's bundled digits and diabetes, generated
tabular regression tasks (seeded, with a controllable noise level) and ``g2-zpe``, zero-point
energies of small molecules from the G2 set that ``ase`` ships (:mod:`circuitnn.data.materials`).

``builtin("diabetes", seed=0)`` returns a :class:`~circuitnn.data.Dataset` by name
(:data:`BUILTINS`); :func:`load_digits` keeps the older ``((x, y), (x, y))`` train/test form that
``circuitnn.train.load_digits`` re-exports.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from circuitnn.data.dataset import Dataset, make_dataset
from circuitnn.errors import ConfigError

Pair = tuple[np.ndarray, np.ndarray]


def _sklearn_datasets() -> Any:
    try:
        from sklearn import datasets
    except ImportError:
        raise ConfigError(
            "the bundled digits and diabetes data need scikit-learn: pip install "
            "'scikit-learn>=1.3' (or the 'torch' extra of circuitnn)"
        ) from None
    return datasets


def load_digits(
    test_fraction: float = 0.3, seed: int = 0, *, images: bool = False
) -> tuple[Pair, Pair]:
    """scikit-learn's bundled 8×8 digits (1797 images, 10 classes; needs scikit-learn), scaled to
    [0, 1], split into ``((x_train, y_train), (x_test, y_test))`` stratified by class with
    ``seed``; ``images=True`` gives (N, 1, 8, 8) inputs instead of (N, 64)."""
    bunch = _sklearn_datasets().load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), dtype=bool)
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        chosen = rng.choice(members, size=round(test_fraction * len(members)), replace=False)
        test[chosen] = True
    if images:
        x = x.reshape(-1, 1, 8, 8)
    return (x[~test], y[~test]), (x[test], y[test])


def digits(
    *, seed: int = 0, validation: float = 0.15, test: float = 0.15, standardize: bool = False
) -> Dataset:
    """The 8×8 digits as a classification :class:`Dataset` (1797 × 64, 10 classes), split
    stratified by class. Pixels are scaled to [0, 1] (intensity / 16) unless ``standardize``
    (then zero mean, unit variance per pixel over the training split)."""
    bunch = _sklearn_datasets().load_digits()
    names = tuple(f"pixel_{row}_{col}" for row in range(8) for col in range(8))
    return make_dataset(
        bunch.data / 16.0,
        bunch.target,
        task="classification",
        feature_names=names,
        target_name="digit",
        name="digits",
        source="sklearn:digits",
        validation=validation,
        test=test,
        seed=seed,
        standardize=standardize,
    )


def diabetes(*, seed: int = 0, validation: float = 0.15, test: float = 0.15) -> Dataset:
    """scikit-learn's diabetes regression (442 patients × 10 features: age, sex, BMI, blood
    pressure and six serum measurements; target: disease progression after one year, arbitrary
    units), features and target standardized over the training split."""
    bunch = _sklearn_datasets().load_diabetes(scaled=False)
    return make_dataset(
        bunch.data,
        bunch.target,
        task="regression",
        feature_names=tuple(bunch.feature_names),
        target_name="progression",
        name="diabetes",
        source="sklearn:diabetes",
        validation=validation,
        test=test,
        seed=seed,
    )


def smooth_regression(
    *,
    rows: int = 1000,
    features: int = 4,
    noise: float = 0.05,
    seed: int = 0,
    validation: float = 0.15,
    test: float = 0.15,
) -> Dataset:
    """A generated smooth nonlinear regression task of ``features`` inputs drawn uniformly from
    [−1, 1]: ``f(x) = Σ_j a_j sin(ω_j x_j + φ_j) + Σ_j b_j x_j x_{j+1}`` with coefficients drawn
    from ``seed`` (ω in [1, 3] rad per unit, so about one period over the input range). Gaussian
    noise of standard deviation ``noise`` × std(f) is added, so the best achievable R² is about
    1 / (1 + noise²). Standardized like any table."""
    _check_generated(rows, features, noise)
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 1.5, features) * rng.choice((-1.0, 1.0), features)
    omega = rng.uniform(1.0, 3.0, features)
    phase = rng.uniform(-np.pi, np.pi, features)
    b = rng.uniform(-1.0, 1.0, max(features - 1, 0))
    x = rng.uniform(-1.0, 1.0, (rows, features))
    clean = (a * np.sin(omega * x + phase)).sum(axis=1)
    if features > 1:
        clean += (b * x[:, :-1] * x[:, 1:]).sum(axis=1)
    y = clean + noise * clean.std() * rng.standard_normal(rows)
    return make_dataset(
        x,
        y,
        task="regression",
        feature_names=tuple(f"x{j}" for j in range(features)),
        target_name="y",
        name="smooth",
        source=f"generated:smooth(features={features}, noise={noise}, seed={seed})",
        validation=validation,
        test=test,
        seed=seed,
    )


def friedman(
    *,
    rows: int = 1000,
    features: int = 5,
    noise: float = 1.0,
    seed: int = 0,
    validation: float = 0.15,
    test: float = 0.15,
) -> Dataset:
    """Friedman's regression problem #1: ``y = 10 sin(π x0 x1) + 20 (x2 − ½)² + 10 x3 + 5 x4 + ε``
    on ``features`` ≥ 5 inputs uniform in [0, 1] (the ones past the fifth are irrelevant), ε
    Gaussian with standard deviation ``noise`` (target units; the noiseless target's std is about
    4.9). Standardized like any table."""
    _check_generated(rows, features, noise)
    if features < 5:
        raise ConfigError(f"friedman needs features >= 5, got {features}")
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, (rows, features))
    y = (
        10 * np.sin(np.pi * x[:, 0] * x[:, 1])
        + 20 * (x[:, 2] - 0.5) ** 2
        + 10 * x[:, 3]
        + 5 * x[:, 4]
        + noise * rng.standard_normal(rows)
    )
    return make_dataset(
        x,
        y,
        task="regression",
        feature_names=tuple(f"x{j}" for j in range(features)),
        target_name="y",
        name="friedman",
        source=f"generated:friedman(features={features}, noise={noise}, seed={seed})",
        validation=validation,
        test=test,
        seed=seed,
    )


def _check_generated(rows: int, features: int, noise: float) -> None:
    for field, value, minimum in (("rows", rows, 4), ("features", features, 1)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
            raise ConfigError(f"{field} must be an integer >= {minimum}, got {value!r}")
    if (
        isinstance(noise, bool)
        or not isinstance(noise, int | float)
        or not math.isfinite(noise)
        or noise < 0
    ):
        raise ConfigError(f"noise must be a number >= 0, got {noise!r}")


def g2_zpe(*, seed: int = 0, validation: float = 0.15, test: float = 0.15) -> Dataset:
    """Zero-point energies of the 148 G2 molecules that ``ase`` ships, from geometry descriptors
    (needs ``ase``; see :mod:`circuitnn.data.materials`)."""
    from circuitnn.data.materials import g2_zpe as load

    return load(seed=seed, validation=validation, test=test)


BUILTINS: dict[str, Callable[..., Dataset]] = {
    "digits": digits,
    "diabetes": diabetes,
    "smooth": smooth_regression,
    "friedman": friedman,
    "g2-zpe": g2_zpe,
}


def builtin(name: str, **options: Any) -> Dataset:
    """The built-in data set ``name`` (:data:`BUILTINS`: digits, diabetes, smooth, friedman,
    g2-zpe)
    with its keyword ``options`` (seed, validation, test, and rows / features / noise for the
    generated ones)."""
    if name not in BUILTINS:
        raise ConfigError(f"unknown data set {name!r}; built-in: {', '.join(BUILTINS)}")
    try:
        return BUILTINS[name](**options)
    except TypeError as error:
        raise ConfigError(f"data set {name!r}: {error}") from None
