"""Experiment 4, ``parameter-robustness``: how training regimes protect circuit networks against
parameter (weight) mismatch, random and targeted (study 4).

On scikit-learn's digits, analog MLPs whose hidden neurons are simulated circuits (layer *i* from
``neurons[i % 2]``, every neuron its own Monte Carlo curve) are trained five ways, ``networks``
times each with seeds ``seed, seed + 1, …``:

- ``clean``; ``dropout`` (p = ``dropout``); ``noise_injection`` (additive noise σ =
  ``noise_sigma`` network units after every activation); ``weight_smoothing`` (each step at
  weights θ·(1 + σz), σ = ``smoothing_sigma``); ``adversarial`` (adversarial weight perturbation,
  AWP: loss + β·KL(f(θ) ‖ f(θ + δ*)), δ* a ``awp_steps``-step projected sign-gradient attack inside
  ``|δ| ≤ awp_zeta·|θ|``, β = ``awp_beta``).

Each trained network is evaluated at relative perturbation bounds ζ (``zetas``):

- **random**: every weight and bias multiplied by (1 + ζ·z), z standard normal, ``random_draws``
  perturbed networks (:class:`~circuitnn.nn.WeightNoiseSpec`, multiplicative);
- **worst case**: the projected sign-gradient attack on the test loss inside ``|δ| ≤ ζ·|θ|``
  (``attack_steps`` steps, :func:`~circuitnn.evaluate.worst_case`); its perturbation has about
  the same RMS (ζ·|θ| per weight) as the random one, aimed instead of drawn;
- **flatness**: the training-loss increase along random filter-normalized directions at relative
  steps α (``flatness_steps``), averaged over ``directions`` directions and ±α
  (:func:`~circuitnn.experiments.weight_stats.flatness`).

The study's findings are checked by rules fixed in
:mod:`circuitnn.experiments.parameter_robustness_findings`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from circuitnn.errors import ConfigError
from circuitnn.evaluate import monte_carlo, worst_case
from circuitnn.experiments.common import circuit_mlp, mean_and_sem, override, torch_threads
from circuitnn.experiments.families import circuit_families
from circuitnn.experiments.parameter_robustness_findings import findings, summary_lines
from circuitnn.experiments.parameter_robustness_plots import plot_flatness, plot_robustness
from circuitnn.experiments.result import ExperimentResult, Row
from circuitnn.experiments.weight_stats import flatness
from circuitnn.nn import NoiseSpec, WeightNoiseSpec
from circuitnn.train import (
    AdversarialWeights,
    Clean,
    Dropout,
    NoiseInjection,
    Regime,
    TrainConfig,
    WeightSmoothing,
    load_digits,
    train,
)

NEURONS = ("mos_diffpair", "cmos_inverter")
REGIMES = ("clean", "dropout", "noise_injection", "weight_smoothing", "adversarial")


@dataclass(frozen=True)
class Settings:
    """Sizes of one run. ``widths``: hidden widths; ``epochs`` of Adam at ``lr`` with
    ``batch_size`` (no early stopping); ``networks`` per regime; ``zetas``: relative perturbation
    bounds evaluated; ``random_draws``: perturbed networks per ζ; ``attack_steps``: steps of the
    worst-case attack; ``flatness_steps`` (relative, α = 1 moves each neuron's fan-in by its own
    norm) and ``directions``; regime strengths ``dropout`` (probability), ``noise_sigma``
    (network units), ``smoothing_sigma`` (relative), ``awp_zeta`` (relative), ``awp_beta``,
    ``awp_steps``; ``threads``: torch threads during the run."""

    widths: tuple[int, ...]
    epochs: int
    networks: int
    zetas: tuple[float, ...]
    random_draws: int
    directions: int
    attack_steps: int = 10
    flatness_steps: tuple[float, ...] = (0.25, 0.5, 1.0)
    dropout: float = 0.1
    noise_sigma: float = 0.5
    smoothing_sigma: float = 0.1
    awp_zeta: float = 0.2
    awp_beta: float = 0.3
    awp_steps: int = 3
    lr: float = 3e-3
    batch_size: int = 64
    threads: int = 1

    def regime(self, name: str) -> Regime:
        """The training regime called ``name``."""
        return {
            "clean": Clean(),
            "dropout": Dropout(self.dropout),
            "noise_injection": NoiseInjection(NoiseSpec("additive", self.noise_sigma)),
            "weight_smoothing": WeightSmoothing(self.smoothing_sigma),
            "adversarial": AdversarialWeights(
                zeta=self.awp_zeta, beta=self.awp_beta, steps=self.awp_steps
            ),
        }[name]


QUICK = Settings(
    widths=(64, 64),
    epochs=25,
    networks=1,
    zetas=(0.05, 0.1, 0.2, 0.5),
    random_draws=8,
    directions=3,
)
FULL = Settings(
    widths=(64, 64),
    epochs=30,
    networks=3,
    zetas=(0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0),
    random_draws=32,
    directions=8,
)


def run(
    out: Path,
    *,
    quick: bool,
    seed: int,
    store: Path,
    jobs: int,
    neurons: tuple[str, ...] | list[str] = NEURONS,
    **options: Any,
) -> ExperimentResult:
    """Run the experiment into ``out`` (module docstring); ``quick`` is the test size.

    ``neurons``: the families of the hidden layers, cycled; ``options``: overrides of
    :class:`Settings` fields (e.g. ``zetas=(0.1, 0.2)``, ``awp_zeta=0.1``, ``networks=2``).
    """
    started = time.perf_counter()
    settings = _settings(quick, options)
    with torch_threads(settings.threads):
        families = circuit_families(tuple(neurons), store, quick=quick, seed=seed, jobs=jobs)
        train_data, test_data = load_digits(seed=seed)
        order = list(families.values())
        layers = {f"act{i + 1}": order[i % len(order)].neuron for i in range(len(settings.widths))}
        tables: dict[str, list[Row]] = {
            "training": [],
            "random": [],
            "worst_case": [],
            "flatness": [],
        }
        for index in range(settings.networks):
            network_seed = seed + index
            for regime in REGIMES:
                model = circuit_mlp(order, 64, settings.widths, 10, seed=network_seed)
                tables["training"].append(
                    _train(model, regime, train_data, test_data, settings, network_seed)
                )
                _evaluate(model, regime, train_data, test_data, settings, network_seed, tables)
    tables["summary"] = summarize(tables)
    tables["flatness_summary"] = summarize_flatness(tables["flatness"])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result = ExperimentResult(
        name="parameter-robustness",
        out=out,
        config={
            "quick": quick,
            "seed": seed,
            "store": str(store),
            "settings": asdict(settings),
            "layers": layers,
            "regimes": {name: settings.regime(name).describe() for name in REGIMES},
            "data": {
                "name": "digits",
                "train": len(train_data[1]),
                "test": len(test_data[1]),
                "classes": 10,
            },
        },
        tables=tables,
    )
    result.figures = {
        "robustness": plot_robustness(tables["summary"], out / "robustness.png"),
        "flatness": plot_flatness(tables["flatness_summary"], out / "flatness.png"),
    }
    result.findings = findings(tables, settings)
    result.summary = summary_lines(tables, settings, layers, time.perf_counter() - started)
    return result


def _settings(quick: bool, options: dict[str, Any]) -> Settings:
    settings = override(QUICK if quick else FULL, options, "parameter-robustness", "neurons")
    if not settings.widths or any(width < 1 for width in settings.widths):
        raise ConfigError("parameter-robustness: widths must be one or more positive widths")
    for name in ("epochs", "networks", "random_draws", "directions", "attack_steps", "threads"):
        if getattr(settings, name) < 1:
            raise ConfigError(f"parameter-robustness: {name} must be >= 1")
    if not settings.zetas or any(z <= 0 for z in settings.zetas):
        raise ConfigError("parameter-robustness: zetas must be positive relative bounds")
    if not settings.flatness_steps or any(a <= 0 for a in settings.flatness_steps):
        raise ConfigError("parameter-robustness: flatness_steps must be positive")
    for name in REGIMES:
        settings.regime(name)  # the regimes check their own settings (ConfigError)
    return settings


def _train(
    model: nn.Module,
    regime: str,
    data: tuple[Any, Any],
    test: tuple[Any, Any],
    settings: Settings,
    seed: int,
) -> Row:
    """Train ``model`` under ``regime``; its row with the noiseless test accuracy."""
    config = TrainConfig(
        epochs=settings.epochs,
        lr=settings.lr,
        batch_size=settings.batch_size,
        seed=seed,
        restore_best=False,
    )
    began = time.perf_counter()
    history = train(model, data, regime=settings.regime(regime), config=config)
    seconds = time.perf_counter() - began
    return {
        "network": seed,
        "regime": regime,
        "train_loss": history.last["train_loss"],
        "train_accuracy": history.last["train_accuracy"],
        "test_accuracy": monte_carlo(model, test, draws=1, seed=seed).mean(),
        "seconds": seconds,
    }


def _evaluate(
    model: nn.Module,
    regime: str,
    train_data: tuple[Any, Any],
    test: tuple[Any, Any],
    settings: Settings,
    seed: int,
    tables: dict[str, list[Row]],
) -> None:
    """Random and worst-case perturbation at every ζ, and flatness; rows appended to
    ``tables``."""
    base = {"network": seed, "regime": regime}
    for zeta in settings.zetas:
        random = monte_carlo(
            model,
            test,
            draws=settings.random_draws,
            seed=seed,
            noise=WeightNoiseSpec("multiplicative", zeta),
        )
        tables["random"].append(
            base
            | {
                "zeta": zeta,
                "accuracy": random.mean(),
                "std": random.std(),
                "sem": random.sem(),
            }
        )
        attacked = worst_case(model, test, zeta, steps=settings.attack_steps, seed=seed)
        tables["worst_case"].append(
            base
            | {
                "zeta": zeta,
                "accuracy": attacked.attacked.mean(),
                "clean": attacked.clean.mean(),
                "relative_change": attacked.relative_change,
            }
        )
    flat = flatness(
        model,
        (torch.as_tensor(train_data[0]), torch.as_tensor(train_data[1])),
        steps=settings.flatness_steps,
        directions=settings.directions,
        seed=seed,
    )
    for step, increase, spread in zip(flat.steps, flat.increase, flat.spread, strict=True):
        tables["flatness"].append(
            base | {"step": step, "loss": flat.loss, "increase": increase, "spread": spread}
        )


def summarize(tables: dict[str, list[Row]]) -> list[Row]:
    """Per regime and ζ: random and worst-case accuracy, mean and SEM over networks, with the
    noiseless accuracy (ζ = 0)."""
    rows = []
    clean = tables["training"]
    for regime in dict.fromkeys(r["regime"] for r in tables["random"]):
        accuracy, accuracy_sem = mean_and_sem(
            [r["test_accuracy"] for r in clean if r["regime"] == regime]
        )
        rows.append(
            {
                "regime": regime,
                "zeta": 0.0,
                "random": accuracy,
                "random_sem": accuracy_sem,
                "worst_case": accuracy,
                "worst_case_sem": accuracy_sem,
            }
        )
        for zeta in dict.fromkeys(r["zeta"] for r in tables["random"]):
            cells = {}
            for kind in ("random", "worst_case"):
                values = [
                    r["accuracy"]
                    for r in tables[kind]
                    if r["regime"] == regime and r["zeta"] == zeta
                ]
                cells[kind], cells[f"{kind}_sem"] = mean_and_sem(values)
            rows.append({"regime": regime, "zeta": zeta} | cells)
    return rows


def summarize_flatness(rows: list[Row]) -> list[Row]:
    """Per regime: the loss at θ and the loss increase per step α (mean and SEM over networks),
    and ``mean`` over steps (the flatness figure; smaller is flatter)."""
    summary = []
    for regime in dict.fromkeys(r["regime"] for r in rows):
        mine = [r for r in rows if r["regime"] == regime]
        row: Row = {"regime": regime, "loss": mean_and_sem([r["loss"] for r in mine])[0]}
        per_step = []
        for step in dict.fromkeys(r["step"] for r in mine):
            mean, sem = mean_and_sem([r["increase"] for r in mine if r["step"] == step])
            row[f"increase@{step:g}"] = mean
            row[f"sem@{step:g}"] = sem
            per_step.append(mean)
        row["mean"] = float(sum(per_step) / len(per_step))
        summary.append(row)
    return summary
