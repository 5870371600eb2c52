"""The main job (``circuitnn run``): families → analog MLP → robustness → one report page.

:func:`run_main_job` runs the whole pipeline from a :class:`MainJobConfig` and returns the path of
the Markdown report (an HTML rendering is written beside it):

1. extract the configured circuit families with noise (cached in the HDF5 store, so a second run
   simulates nothing) and plot them;
2. train an analog MLP on a built-in dataset with circuit neurons of the first family, on its
   nominal curves (``clean``), plus one noise-aware regime (``noise_aware``: additive noise
   injection);
3. evaluate robustness: accuracy versus additive and circuit noise level, Walking-Noise layer-wise
   midpoints, chip-to-chip spread over Monte Carlo chips, and retraining recovery on several chips;
4. write the report with a section per stage and the settings, versions, seeds and timings.

Configs come from Python (``MainJobConfig(...)``) or from TOML (:func:`load_config`, keys equal to
the field names; ``examples/run_default.toml`` is the default written out). This module stays
light: torch is imported only when the job runs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from circuitnn.errors import ConfigError
from circuitnn.toml_file import read_toml

MIDPOINT_NOISES = ("additive", "multiplicative", "mixed")


SCALINGS = ("midpoint", "knee")  # circuitnn.nn.scaling.ANCHORS (without importing torch)


STAGES = (
    "families",
    "training",
    "robustness",
    "midpoints",
    "chips",
    "retraining",
    "codesign",
    "report",
)


CODESIGN_SIZES = ("default", "quick", "off")


RENAMED = {"neurons": "families"}  # keys of the old extraction-only `run` config


@dataclass(frozen=True)
class MainJobConfig:
    """Settings of the main job (every field is also a key of the TOML config).

    Families: ``families`` built-in neuron names or spec paths (at least one; the network uses
    the first); ``n`` Monte Carlo instances per family; ``seed`` the one seed everything derives
    from (sampling, data split, initial weights, chips, noise draws); ``store`` the HDF5 store
    (None: ``OUT/families.h5``).
    Data and network: ``dataset`` a built-in of :mod:`circuitnn.data` (``"digits"``:
    scikit-learn's 8×8 digits, 10 classes, scored by accuracy; ``"diabetes"``, ``"smooth"``,
    ``"friedman"``, ``"g2-zpe"`` (zero-point energies of the G2 molecules, from ase):
    regression, scored by RMSE in standardized target units);
    ``validation_fraction`` (for the best epoch) and ``test_fraction`` of the rows, split by seed;
    ``widths`` hidden-layer widths (neurons); ``scaling`` how the first family's nominal curve
    maps to network units (``"midpoint"`` for sigmoid / tanh-like neurons, ``"knee"`` for
    ReLU-like ones; see :class:`~circuitnn.nn.Scaling`); ``epochs``, ``batch_size`` (samples),
    ``lr`` (Adam learning rate) of the training on nominal curves; ``noise_training`` additive σ
    (network units) of the noise-aware regime, 0 to skip it.
    Robustness: ``noise_levels`` additive σ (network units, > 0; level 0 is always added) of the
    robustness curve; ``circuit_noise_scales`` multiples (> 0) of each neuron's simulated σ_out(x);
    ``midpoint_noises`` the noises (``additive``, ``multiplicative``, ``mixed``) of the layer-wise
    midpoints; ``midpoint_tolerance`` relative bracket width at which bisection stops; ``draws``
    noise draws per evaluation; ``chips`` Monte Carlo chips for the chip spread;
    ``retrain_chips`` chips to retrain on (the first of the spread's chips), ``retrain_epochs``
    and ``retrain_lr`` for that fine-tuning.
    Co-design: ``codesign_size`` the size of the co-design section (``"default"``: 4 design
    points of ``mos_diffpair`` × 120 instances; ``"quick"``: 2 points × 60 with a smaller
    network;
    ``"off"``: skipped), see :mod:`circuitnn.job.stages_codesign`.
    Run: ``threads`` torch threads for training and evaluation (1 is fastest for these small
    networks on a shared machine); ``html`` also write ``report.html``.
    """

    families: tuple[str, ...] = ("cmos_inverter", "mos_diffpair")
    n: int = 600
    seed: int = 0
    store: str | None = None
    dataset: str = "digits"
    validation_fraction: float = 0.15
    test_fraction: float = 0.3
    widths: tuple[int, ...] = (32, 32)
    scaling: str = "midpoint"
    epochs: int = 15
    batch_size: int = 64
    lr: float = 3e-3
    noise_training: float = 0.3
    noise_levels: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
    circuit_noise_scales: tuple[float, ...] = (1.0, 10.0, 100.0, 1e3, 3e3, 1e4, 3e4, 1e5)
    midpoint_noises: tuple[str, ...] = ("additive", "multiplicative")
    midpoint_tolerance: float = 0.1
    draws: int = 16
    chips: int = 16
    retrain_chips: int = 4
    retrain_epochs: int = 5
    retrain_lr: float = 1e-3
    codesign_size: str = "default"
    threads: int = 1
    html: bool = True

    def __post_init__(self) -> None:
        names = _strings("families", self.families)
        if not names:
            raise ConfigError("families must list at least one neuron")
        object.__setattr__(self, "families", names)
        _integer("n", self.n, 2)
        _integer("seed", self.seed, 0)
        if self.store is not None and (not isinstance(self.store, str) or not self.store):
            raise ConfigError(f"store must be a file path, got {self.store!r}")
        from circuitnn.data import BUILTINS  # numpy only

        _choice("dataset", self.dataset, tuple(BUILTINS))
        _number("validation_fraction", self.validation_fraction, 0.0, 0.5, open_low=True)
        _number("test_fraction", self.test_fraction, 0.0, 0.5, open_low=True)
        widths = _sequence("widths", self.widths)
        for width in widths:
            _integer("widths", width, 1)
        if not widths:
            raise ConfigError("widths must list at least one hidden-layer width")
        object.__setattr__(self, "widths", tuple(int(w) for w in widths))
        _choice("scaling", self.scaling, SCALINGS)
        _integer("epochs", self.epochs, 1)
        _integer("batch_size", self.batch_size, 1)
        _number("lr", self.lr, 0.0, None, open_low=True)
        _number("noise_training", self.noise_training, 0.0, None)
        for name in ("noise_levels", "circuit_noise_scales"):
            levels = _sequence(name, getattr(self, name))
            for level in levels:
                _number(name, level, 0.0, None, open_low=True)
            if not levels:
                raise ConfigError(f"{name} must list at least one level")
            object.__setattr__(self, name, tuple(sorted(float(v) for v in levels)))
        noises = _strings("midpoint_noises", self.midpoint_noises)
        for noise in noises:
            _choice("midpoint_noises", noise, MIDPOINT_NOISES)
        object.__setattr__(self, "midpoint_noises", noises)
        _number("midpoint_tolerance", self.midpoint_tolerance, 0.0, 1.0, open_low=True)
        _integer("draws", self.draws, 1)
        _integer("chips", self.chips, 2)
        _integer("retrain_chips", self.retrain_chips, 1)
        if self.retrain_chips > self.chips:
            raise ConfigError(
                f"retrain_chips ({self.retrain_chips}) must not exceed chips ({self.chips})"
            )
        _integer("retrain_epochs", self.retrain_epochs, 1)
        _number("retrain_lr", self.retrain_lr, 0.0, None, open_low=True)
        _choice("codesign_size", self.codesign_size, CODESIGN_SIZES)
        _integer("threads", self.threads, 1)
        if not isinstance(self.html, bool):
            raise ConfigError(f"html must be true or false, got {self.html!r}")

    def quick(self) -> MainJobConfig:
        """The same job at test size: fewer instances, a smaller network, fewer levels, chips,
        draws and epochs (a smoke run of every stage in well under a minute)."""
        return dataclasses.replace(
            self,
            n=120,
            widths=(16, 16),
            epochs=4,
            noise_levels=(0.1, 0.5, 2.0),
            circuit_noise_scales=(100.0, 1e4, 1e5),
            midpoint_noises=self.midpoint_noises[:1],
            midpoint_tolerance=0.25,
            draws=4,
            chips=3,
            retrain_chips=2,
            retrain_epochs=2,
            codesign_size="off" if self.codesign_size == "off" else "quick",
        )

    def store_path(self, out: Path) -> Path:
        """The HDF5 store: ``store`` or ``out/families.h5``."""
        return Path(self.store) if self.store else out / "families.h5"

    def as_dict(self) -> dict[str, Any]:
        """The settings as plain TOML-like values (tuples as lists)."""
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in dataclasses.asdict(self).items()
        }


def _integer(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _number(
    name: str, value: Any, low: float, high: float | None, *, open_low: bool = False
) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value == value
    if ok:
        ok = (value > low if open_low else value >= low) and (high is None or value <= high)
    if not ok:
        bound = f"{'>' if open_low else '>='} {low:g}" + (f" and <= {high:g}" if high else "")
        raise ConfigError(f"{name} must be a number {bound}, got {value!r}")


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _sequence(name: str, value: Any) -> tuple[Any, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ConfigError(f"{name} must be a list, got {value!r}")
    return tuple(value)


def _strings(name: str, value: Any) -> tuple[str, ...]:
    items = _sequence(name, value)
    for item in items:
        if not isinstance(item, str) or not item:
            raise ConfigError(f"{name} must be a list of names, got {value!r}")
    return items


def config_from_dict(
    data: dict[str, Any], folder: str | Path = ".", source: str = "config"
) -> MainJobConfig:
    """A :class:`MainJobConfig` from TOML-like ``data``; spec paths in ``families`` and a relative
    ``store`` are taken relative to ``folder``. Errors name ``source`` and the key."""
    known = [field.name for field in dataclasses.fields(MainJobConfig)]
    unknown = sorted(set(data) - set(known))
    if unknown:
        hints = [f"{old} is now {new}" for old, new in RENAMED.items() if old in unknown]
        hint = f" ({'; '.join(hints)})" if hints else ""
        raise ConfigError(f"{source}: unknown key(s) {unknown}{hint}; known: {', '.join(known)}")
    folder = Path(folder)
    values = dict(data)
    if isinstance(values.get("families"), list):
        values["families"] = tuple(
            _relative_to(folder, name) if isinstance(name, str) else name
            for name in values["families"]
        )
    store = values.get("store")
    if isinstance(store, str) and store and not Path(store).is_absolute():
        values["store"] = str(folder / store)
    try:
        config = MainJobConfig(**values)
        check_families(config)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None
    return config


def check_families(config: MainJobConfig) -> None:
    """:class:`ConfigError` naming ``families`` unless every entry is a built-in neuron or a
    usable spec (read and checked, netlist safety included), before anything runs."""
    from circuitnn.errors import NetlistError
    from circuitnn.neuron.builtin import get_neuron

    for name in config.families:
        try:
            get_neuron(name)
        except (ConfigError, NetlistError) as error:
            raise ConfigError(f"families: {error}") from None


def load_config(path: str | Path) -> MainJobConfig:
    """The config in the TOML file at ``path`` (missing keys take the defaults)."""
    path = Path(path)
    return config_from_dict(read_toml(path, "config"), path.parent, str(path))


def _relative_to(folder: Path, name: str) -> str:
    """A spec path relative to the config's folder, or the name unchanged (built-in, absolute)."""
    candidate = folder / name
    return str(candidate) if not Path(name).is_absolute() and candidate.is_file() else name
