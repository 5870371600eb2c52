"""Experiment 5, ``gpr-activations``: the neuron activation functions that are optimal for the data
(from additive Gaussian process regression), and which simulated circuit comes closest to them
(study 5: optimal neuron activation functions from GPR).

Per replicate (seed ``seed + r``: data split, the GP's directions, the networks' chips and noise):

1. **Optimal activations.** An additive GP over ``neurons`` redundant coordinates of the
   regression task's standardized inputs (default ``g2-zpe``) is fitted on the training split; its
   posterior mean is a one-hidden-layer network whose neuron *i* has the activation ``f_i``
   (:mod:`circuitnn.experiments.gpr`, where "optimal" is defined precisely).
2. **The designer's question.** Every candidate circuit — the experiments' built-ins
   (``mos_diffpair``, ``cmos_inverter``) and a sweep of one design parameter of one of them
   (default ``mos_diffpair`` load resistor ``rl`` ∈ 10k, 20k, 40k) — gets, per neuron, the affine
   rescaling ``a·g(b·t + d) + e`` of its nominal curve ``g`` (network units) closest to ``f_i``
   over the training data; its *shape misfit* is the share of the optimal activations' variance
   the circuit leaves unexplained (all neurons together). References: a linear neuron and tanh.
3. **Accuracy with mismatch and noise.** The circuit network is built from that mapping
   (first-layer weights ``b_i·w_i``, biases ``d_i``, readout ``a_i`` and ``Σe_i``), fine-tuned on
   the nominal curve (``epochs``, early stopping on the validation split), and evaluated on
   ``chips`` sampled chips (every neuron its own Monte Carlo curve: mismatch) with the circuit's
   own output noise σ_out(x) on, ``draws`` draws each. Also scored: the GP itself and a
   conventional one-hidden-layer tanh network of the same width trained from scratch.

Findings (:mod:`circuitnn.experiments.gpr_activations_findings`) are decided from effect sizes
with confidence intervals over the replicates.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from circuitnn.campaign.sweep import sweep_families
from circuitnn.data import Dataset, builtin
from circuitnn.errors import ConfigError
from circuitnn.evaluate import monte_carlo
from circuitnn.experiments.common import interval_table, override, replicate_seeds
from circuitnn.experiments.families import FAMILY_NOISE, circuit_families
from circuitnn.experiments.gpr import AdditiveGPR, fit_additive_gpr, linear, match_shape, tanh
from circuitnn.experiments.gpr_activations_findings import findings, summary_lines
from circuitnn.experiments.gpr_activations_plots import plot_activations, plot_candidates
from circuitnn.experiments.result import ExperimentResult, Row
from circuitnn.extract.options import RunOptions
from circuitnn.family import Family
from circuitnn.nn import CircuitSpec, NoiseSpec, build_mlp, mlp_spec, quiet, set_mode
from circuitnn.spice.analyses import NoiseAnalysis
from circuitnn.train import TrainConfig, train

NEURONS = ("mos_diffpair", "cmos_inverter")
REPLICATES = (2, 5)  # quick, full
REFERENCES = {"linear": linear, "tanh": tanh}


@dataclass(frozen=True)
class Settings:
    """Sizes of one run. ``neurons``: hidden neurons (GP components); ``sweep_neuron``,
    ``sweep_parameter``, ``sweep_values`` (SPICE numbers): the design sweep; ``sweep_instances``:
    Monte Carlo instances per sweep point (with noise); ``epochs`` / ``patience`` / ``lr`` of
    the fine-tuning and the tanh baseline; ``chips`` and ``draws``: the evaluation's sampled
    chips and noise draws per chip; ``gp_rows``: at most this many training rows for the GP
    (its cost grows as rows³); ``restarts``: extra optimizer starts of the GP's hyperparameters;
    ``rows``: rows of a generated regression task."""

    neurons: int
    sweep_values: tuple[str, ...]
    sweep_instances: int
    epochs: int
    chips: int
    draws: int
    sweep_neuron: str = "mos_diffpair"
    sweep_parameter: str = "rl"
    patience: int = 20
    lr: float = 3e-3
    gp_rows: int = 400
    restarts: int = 2
    rows: int = 600


QUICK = Settings(
    neurons=6,
    sweep_values=("10k", "40k"),
    sweep_instances=40,
    epochs=40,
    chips=2,
    draws=4,
    restarts=0,
)
FULL = Settings(
    neurons=16,
    sweep_values=("10k", "20k", "40k"),
    sweep_instances=200,
    epochs=300,
    chips=6,
    draws=16,
)


def run(
    out: Path,
    *,
    quick: bool,
    seed: int,
    store: Path,
    jobs: int,
    replicates: int,
    regression: str = "g2-zpe",
    neurons: tuple[str, ...] | list[str] = NEURONS,
    **options: Any,
) -> ExperimentResult:
    """Run the experiment into ``out`` (module docstring); ``quick`` is the test size.

    ``regression``: the built-in regression data set; ``neurons``: the built-in families
    compared (besides the sweep); ``options``: overrides of :class:`Settings` fields (e.g.
    ``neurons=8`` is ``Settings.neurons``: pass the families as ``families=...``)."""
    started = time.perf_counter()
    families_option = options.pop("families", None)
    if families_option is not None:
        neurons = tuple(families_option)
    settings = _settings(quick, options)
    candidates = _candidates(tuple(neurons), settings, store, quick, seed, jobs)
    tables: dict[str, list[Row]] = {"shapes": [], "accuracy": []}
    example: dict[str, Any] = {}
    described: dict[str, Any] = {}
    for replicate, replicate_seed in enumerate(replicate_seeds(seed, replicates)):
        data = _data(regression, settings, replicate_seed)
        described = data.describe()
        x, y = data.train
        rows = min(len(y), settings.gp_rows)
        gp = fit_additive_gpr(
            x[:rows], y[:rows], settings.neurons, replicate_seed, settings.restarts
        )
        base = {"replicate": replicate}
        tables["accuracy"].append(base | _score_gp(gp, data))
        tables["accuracy"].append(base | _score_tanh(data, settings, replicate_seed))
        matches: dict[str, list[Any]] = {}
        for name, curve in {**REFERENCES, **{n: _curve(f) for n, f in candidates.items()}}.items():
            matched, row = _match(gp, curve)
            matches[name] = matched
            tables["shapes"].append(base | {"candidate": name} | row)
        for name, family in candidates.items():
            model = _mapped_network(gp, family, matches[name], data, replicate_seed)
            tables["accuracy"].append(
                base | _score_circuit(name, model, data, settings, replicate_seed)
            )
        if replicate == 0:
            example = {
                "gp": gp,
                "matches": matches,
                "curves": {n: _curve(f) for n, f in candidates.items()},
            }
    tables["candidates"] = _candidate_table(tables)
    result = ExperimentResult.begin(
        "gpr-activations",
        out,
        quick=quick,
        seed=seed,
        replicates=replicates,
        store=store,
        settings=settings,
        tables=tables,
        data=described,
        candidates={name: family.key for name, family in candidates.items()},
    )
    out = result.out
    result.figures = {
        "activations": plot_activations(example, out / "activations.png"),
        "candidates": plot_candidates(tables["candidates"], out / "candidates.png"),
    }
    result.findings = findings(tables, settings)
    result.summary = summary_lines(
        described, tables, settings, replicates, time.perf_counter() - started
    )
    return result


def _settings(quick: bool, options: dict[str, Any]) -> Settings:
    settings = override(
        QUICK if quick else FULL, options, "gpr-activations", "regression, families"
    )
    for name in ("neurons", "sweep_instances", "epochs", "chips", "draws", "patience", "gp_rows"):
        if getattr(settings, name) < 1:
            raise ConfigError(f"gpr-activations: {name} must be >= 1")
    if settings.sweep_instances < 2 or settings.restarts < 0 or not settings.lr > 0:
        raise ConfigError("gpr-activations: sweep_instances >= 2, restarts >= 0, lr > 0")
    return settings


def _candidates(
    neurons: tuple[str, ...], settings: Settings, store: Path, quick: bool, seed: int, jobs: int
) -> dict[str, Family]:
    """The built-in families (from the experiments' store) and the sweep's families."""
    candidates = dict(circuit_families(neurons, store, quick=quick, seed=seed, jobs=jobs))
    if settings.sweep_values:
        points = sweep_families(
            settings.sweep_neuron,
            {settings.sweep_parameter: list(settings.sweep_values)},
            n=settings.sweep_instances,
            seed=seed,
            store=store,
            options=RunOptions(jobs=jobs, progress=False),
            noise=NoiseAnalysis(**{**asdict(FAMILY_NOISE)}),
        )
        for point, value in zip(points, settings.sweep_values, strict=True):
            candidates[f"{settings.sweep_neuron} {settings.sweep_parameter}={value}"] = point.family
    return candidates


def _data(regression: str, settings: Settings, seed: int) -> Dataset:
    options: dict[str, Any] = {"seed": seed}
    if regression in ("smooth", "friedman"):
        options["rows"] = settings.rows
    data = builtin(regression, **options)
    if data.task != "regression":
        raise ConfigError(f"gpr-activations: {regression!r} is not a regression data set")
    return data


def _curve(family: Family):
    """The family's nominal curve in network units, as a numpy function."""
    activation = CircuitSpec(family, mode="nominal").build(1, seed=0).double()

    def curve(u: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            values = activation(torch.as_tensor(np.asarray(u), dtype=torch.float64)[:, None])
        return values[:, 0].numpy()

    return curve


def _match(gp: AdditiveGPR, curve: Any) -> tuple[list[Any], Row]:
    """Per neuron the closest rescaled ``curve``; the candidate's overall misfit (residual
    variance over the activations' variance, all neurons together) and the worst neuron's."""
    matches, residual, total, worst = [], 0.0, 0.0, 0.0
    for neuron in range(gp.neurons):
        t = gp.points[:, neuron]
        f = gp.activation(neuron, t)
        found = match_shape(curve, t, f)
        matches.append(found)
        variance = float(np.var(f))
        residual += found.unexplained * variance
        total += variance
        worst = max(worst, found.unexplained)
    return matches, {"misfit": residual / total, "worst_neuron_misfit": worst}


def _mapped_network(
    gp: AdditiveGPR, family: Family, matches: list[Any], data: Dataset, seed: int
) -> nn.Sequential:
    """The one-hidden-layer circuit network realizing ``Σ_i a_i·g(b_i·w_i·x + d_i) + Σ_i e_i``,
    circuit noise built in (on in evaluation)."""
    spec = mlp_spec(
        data.inputs,
        (gp.neurons,),
        1,
        activation=CircuitSpec(family, mode="nominal"),
        noise=NoiseSpec("circuit", 1.0),
    )
    model = build_mlp(spec, seed=seed)
    first, readout = model.linear1, model.output
    with torch.no_grad():
        weight = np.stack([m.gain * gp.directions[i] for i, m in enumerate(matches)])
        first.weight.copy_(torch.as_tensor(weight, dtype=first.weight.dtype))
        first.bias.copy_(torch.as_tensor([m.shift for m in matches], dtype=first.bias.dtype))
        readout.weight.copy_(
            torch.as_tensor([[m.scale for m in matches]], dtype=readout.weight.dtype)
        )
        readout.bias.fill_(float(sum(m.offset for m in matches)))
    return model


def _scores(data: Dataset, rmse: np.ndarray, r2: np.ndarray) -> Row:
    return {
        "rmse": float(np.mean(rmse)),
        "rmse_target_units": float(data.scaler.target_error(float(np.mean(rmse)))),
        "r2": float(np.mean(r2)),
    }


def _score_gp(gp: AdditiveGPR, data: Dataset) -> Row:
    x, y = data.test
    predicted = gp.predict(x)
    rmse = np.sqrt(np.mean((predicted - y) ** 2))
    r2 = 1.0 - np.sum((predicted - y) ** 2) / np.sum((y - y.mean()) ** 2)
    return {"model": "additive GPR", "stage": "optimal"} | _scores(
        data, np.array([rmse]), np.array([r2])
    )


def _score_tanh(data: Dataset, settings: Settings, seed: int) -> Row:
    model = build_mlp(mlp_spec(data.inputs, (settings.neurons,), 1, activation="tanh"), seed=seed)
    train(model, data.train, config=_config(settings, seed), validation=data.validation)
    result = monte_carlo(model, data.test, task="regression", draws=1, seed=seed)
    return {"model": "tanh network", "stage": "trained"} | _scores(
        data, result.metrics["rmse"], result.metrics["r2"]
    )


def _config(settings: Settings, seed: int) -> TrainConfig:
    return TrainConfig(
        task="regression",
        epochs=settings.epochs,
        lr=settings.lr,
        patience=settings.patience,
        seed=seed,
    )


def _score_circuit(
    name: str, model: nn.Sequential, data: Dataset, settings: Settings, seed: int
) -> Row:
    """The mapped network before and after fine-tuning, each on sampled chips with the circuit
    noise on."""

    def on_chips() -> Any:
        set_mode(model, "sampled")
        try:
            return monte_carlo(
                model,
                data.test,
                task="regression",
                chips=settings.chips,
                draws=settings.draws,
                seed=seed,
            )
        finally:
            set_mode(model, "nominal")

    mapped = on_chips()
    train(model, data.train, config=_config(settings, seed), validation=data.validation)
    tuned = on_chips()
    with quiet(model):
        nominal = monte_carlo(model, data.test, task="regression", draws=1, seed=seed)
    return {
        "model": name,
        "stage": "tuned",
        **_scores(data, tuned.metrics["rmse"], tuned.metrics["r2"]),
        "mapped_rmse": mapped.mean("rmse"),
        "nominal_rmse": nominal.mean("rmse"),
        "chip_spread_rmse": float(np.std(tuned.metrics["rmse"].mean(axis=1))),
    }


def _candidate_table(tables: dict[str, list[Row]]) -> list[Row]:
    """Per candidate: shape misfit and accuracy with mismatch and noise, means over replicates
    with 95 % intervals."""
    shapes = interval_table(tables["shapes"], ("candidate",), ("misfit", "worst_neuron_misfit"))
    accuracy = interval_table(tables["accuracy"], ("model",), ("rmse", "rmse_target_units", "r2"))
    by_model = {row["model"]: row for row in accuracy}
    rows = []
    for shape in shapes:
        score = by_model.get(shape["candidate"], {})
        rows.append({**shape, **{k: v for k, v in score.items() if k not in ("model",)}})
    for name in ("additive GPR", "tanh network"):
        if name in by_model:
            rows.append(
                {"candidate": name, **{k: v for k, v in by_model[name].items() if k != "model"}}
            )
    return rows
