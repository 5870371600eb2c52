"""The settings of an ``inhomogeneity`` run: the sizes of its studies (:class:`Settings`), the
quick (test) and full sizes, and the options a user may override, checked."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from circuitnn.errors import ConfigError


@dataclass(frozen=True)
class Settings:
    """Sizes of one run. ``depths``: hidden layers of the depth study (at the reference width);
    ``widths``: hidden widths of the size search (one hidden layer); ``reference``: (depth, width)
    of the network used for σ₁₀, circuit noise and the chip study; ``larger``: how many times the
    optimal width a larger-than-optimal network has (the nearest grid width above);
    ``overfit_widths`` / ``overfit_epochs`` / ``overfit_decays``: the overfitting grid (no early
    stopping); ``levels``: additive noise σ in network units (half the nominal swing = 1);
    ``circuit_scales``: multiples of the simulated σ_out; ``chips``: chips per replicate;
    ``epochs`` / ``retrain_epochs`` (with ``patience`` on the validation loss); ``lr`` /
    ``retrain_lr``; ``draws``: noise draws per evaluation; ``batch_size``; ``rows``: rows of a
    generated regression task."""

    depths: tuple[int, ...]
    widths: tuple[int, ...]
    reference: tuple[int, int]
    levels: tuple[float, ...]
    circuit_scales: tuple[float, ...]
    chips: int
    epochs: int
    retrain_epochs: int
    draws: int
    overfit_widths: tuple[int, ...]
    overfit_epochs: tuple[int, ...]
    overfit_decays: tuple[float, ...]
    larger: float = 4.0
    patience: int = 15
    lr: float = 1e-2
    retrain_lr: float = 3e-3
    batch_size: int = 64
    rows: int = 1000


QUICK = Settings(
    depths=(1, 2),
    widths=(4, 16, 64),
    reference=(1, 16),
    levels=(0.0, 0.05, 0.1, 0.2, 0.5, 1.0),
    circuit_scales=(1.0, 1000.0),
    chips=2,
    epochs=20,
    retrain_epochs=8,
    draws=8,
    overfit_widths=(8, 64),
    overfit_epochs=(5, 30),
    overfit_decays=(0.0,),
    patience=6,
)


FULL = Settings(
    depths=(1, 2, 3, 4),
    widths=(4, 8, 16, 32, 64, 128),
    reference=(1, 32),
    levels=(0.0, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5),
    circuit_scales=(1.0, 10.0, 100.0, 1000.0, 3000.0),
    chips=3,
    epochs=100,
    retrain_epochs=30,
    draws=16,
    overfit_widths=(16, 128),
    overfit_epochs=(10, 150),
    overfit_decays=(0.0, 1e-3),
    patience=10,
)


INTEGERS = ("depths", "widths", "overfit_widths", "overfit_epochs")


FLOATS = ("levels", "overfit_decays", "circuit_scales")


OVERRIDABLE = (*INTEGERS, *FLOATS, "chips", "epochs", "retrain_epochs", "draws", "larger")


def checked_settings(quick: bool, options: dict[str, Any]) -> Settings:
    """:data:`QUICK` or :data:`FULL` with ``options`` (:data:`OVERRIDABLE` fields, lists as
    lists or comma-separated text) applied and checked, and the reference network, depths,
    widths and levels made consistent; :class:`ConfigError` naming a bad option."""
    unknown = sorted(set(options) - set(OVERRIDABLE))
    if unknown:
        raise ConfigError(
            f"inhomogeneity: unknown option(s) {unknown}; known: regression, classification, "
            f"table, target, features, neurons, {', '.join(OVERRIDABLE)}"
        )
    settings = QUICK if quick else FULL
    changes: dict[str, Any] = {}
    for name, value in options.items():
        try:
            if name in INTEGERS:
                changes[name] = tuple(int(v) for v in as_items(value))
            elif name in FLOATS:
                changes[name] = tuple(float(v) for v in as_items(value))
            elif name == "larger":
                changes[name] = float(value)
            else:
                changes[name] = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"inhomogeneity: bad {name}={value!r}") from None
    settings = replace(settings, **changes)
    for name in ("depths", "widths", "overfit_widths", "overfit_epochs"):
        values = getattr(settings, name)
        if not values or any(v < 1 for v in values):
            raise ConfigError(f"inhomogeneity: {name} must be one or more integers >= 1")
    if settings.chips < 1 or settings.epochs < 1 or settings.retrain_epochs < 1:
        raise ConfigError("inhomogeneity: chips, epochs and retrain_epochs must be >= 1")
    if settings.draws < 1 or not settings.larger > 1:
        raise ConfigError("inhomogeneity: draws must be >= 1 and larger > 1")
    if 0.0 not in settings.levels or any(level < 0 for level in settings.levels):
        raise ConfigError("inhomogeneity: levels must be >= 0 and include 0 (the clean network)")
    if not settings.overfit_decays or any(d < 0 for d in settings.overfit_decays):
        raise ConfigError("inhomogeneity: overfit_decays must be one or more values >= 0")
    if any(scale <= 0 for scale in settings.circuit_scales):
        raise ConfigError("inhomogeneity: circuit_scales must be > 0")
    width = settings.reference[1] if settings.reference[1] in settings.widths else None
    reference = (1, width or settings.widths[len(settings.widths) // 2])
    return replace(
        settings,
        reference=reference,
        depths=tuple(sorted(set(settings.depths) | {1})),
        widths=tuple(sorted(set(settings.widths))),
        levels=tuple(sorted(set(settings.levels))),
    )


def as_items(value: Any) -> tuple[Any, ...]:
    """A tuple from a list/tuple, a comma-separated string (from a command line) or one value."""
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return tuple(value) if isinstance(value, list | tuple) else (value,)
