"""The ``parameter-robustness`` experiment at quick size on the session's simulated circuit
families, and the flatness measure it uses."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from by_hand import (
    EQUIVALENCE_LEVEL,
    assert_effect,
    bonferroni,
    directional,
    equivalent,
    every_part,
    t_interval,
)
from torch.func import functional_call

from circuitnn.errors import ConfigError
from circuitnn.experiments import run_experiment
from circuitnn.experiments.parameter_robustness import REGIMES
from circuitnn.experiments.weight_stats import flatness
from circuitnn.nn import build_mlp, mlp_spec
from circuitnn.nn.random import derive_seed

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def result(quick_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("parameter-robustness")
    return run_experiment("parameter-robustness", out, quick=True, seed=0, store=quick_store)


def _summary(result, kind: str) -> dict[tuple[str, float], float]:
    return {(r["regime"], r["zeta"]): r[kind] for r in result.tables["summary"]}


def test_writes_tables_figures_and_summary(result):
    out = result.out
    tables = ("selection", "training", "random", "worst_case", "flatness", "summary", "compute")
    for table in (*tables, "flatness_summary", "findings"):
        assert (out / f"{table}.csv").stat().st_size > 0
    for figure in ("robustness", "flatness"):
        assert result.figures[figure].stat().st_size > 10_000
    document = json.loads((out / "result.json").read_text())
    assert document["config"]["replicates"] == 2
    assert document["config"]["settings"]["awp_zeta"] == [0.1, 0.2]
    assert {r["regime"] for r in result.tables["training"]} == set(REGIMES)
    assert all(r["test_accuracy"] > 0.85 for r in result.tables["training"])
    assert len(result.findings) == 4
    assert "## Findings" in (out / "summary.md").read_text()
    for row in result.tables["summary"]:
        assert row["replicates"] == 2 and row["random_low"] <= row["random"] <= row["random_high"]


def test_each_regime_is_tuned_on_validation_and_its_compute_reported(result):
    """Per replicate, the AWP grid's chosen strength is the one with the best validation score;
    AWP's extra attack steps cost it more than clean training (CPU seconds: ×2.7 measured at full
    size; at this quick size, where each step's fixed costs weigh more, ×1.1-1.6 depending on
    the machine's load, so only "more" is asserted)."""
    selection = [r for r in result.tables["selection"] if r["regime"] == "adversarial"]
    for replicate in (0, 1):
        mine = [r for r in selection if r["replicate"] == replicate]
        assert len(mine) == 2 and sum(r["chosen"] for r in mine) == 1
        best = max(mine, key=lambda r: r["validation_score"])
        assert best["chosen"]
    compute = {r["regime"]: r for r in result.tables["compute"]}
    assert compute["adversarial"]["relative_cost"] > 1.0
    assert compute["adversarial"]["grid_seconds"] > compute["adversarial"]["seconds"]
    assert compute["clean"]["relative_cost"] == pytest.approx(1.0)


def test_adversarial_training_resists_the_worst_case_at_its_bound(result):
    """Measured at quick size (seed 0, 2 replicates): AWP 0.14 above clean at ζ = 0.2.
    Regression guard: the margin comes from that run."""
    worst = _summary(result, "worst_case")
    assert worst[("adversarial", 0.2)] >= worst[("clean", 0.2)] + 0.05
    finding = next(f for f in result.findings if "worst-case" in f.claim)
    assert [c.effect.label for c in finding.checks] == [
        f"AWP − {other}" for other in REGIMES if other != "adversarial"
    ]


def test_worst_case_is_worse_than_random_and_degrades_with_zeta(result):
    worst, random = _summary(result, "worst_case"), _summary(result, "random")
    for regime in REGIMES:
        attacked = [worst[(regime, z)] for z in (0.05, 0.2, 0.5)]
        assert attacked == sorted(attacked, reverse=True), regime
        assert attacked[-1] < 0.2  # ζ = 0.5 aimed at the loss leaves about chance
        assert all(worst[(regime, z)] < random[(regime, z)] for z in (0.05, 0.2, 0.5))
        assert random[(regime, 0.5)] > 0.8  # random relative mismatch hurts far less


def test_claims_are_stated_as_the_study_states_them(result):
    equal = next(f for f in result.findings if "equally robust" in f.claim)
    assert all(c.rule.claim == "equivalent" and c.rule.margin == 0.05 for c in equal.checks)
    assert all(c.row()["level"] == 0.9 for c in equal.checks)  # TOST reads the 90 % interval
    flatter = next(f for f in result.findings if "flatter" in f.claim)
    assert len(flatter.checks) == len(REGIMES) - 1  # against each other regime
    assert all(c.rule.claim == "less" and c.rule.null == 1.0 for c in flatter.checks)


def _per_replicate(rows: list[dict], name: str, **where: object) -> np.ndarray:
    """``name`` of the rows matching ``where``, one per replicate, in replicate order."""
    mine = {r["replicate"]: r[name] for r in rows if all(r[k] == v for k, v in where.items())}
    assert sorted(mine) == [0, 1], where
    return np.array([mine[0], mine[1]])


def test_worst_case_and_random_effects_recomputed_from_the_raw_tables(result):
    """Wiring: from the per-replicate accuracies alone, (1) AWP's attacked accuracy minus each
    other regime's at the selection bound (paired, claim > 0, every regime), (2) AWP's drop from
    its own unperturbed accuracy at the largest ζ minus each other regime's (equivalence within
    ± the margin on the 90 % interval) and (4) per regime random − worst-case accuracy at the
    selection bound (claim > 0, every regime); each effect equals the one its finding reports,
    and each verdict follows from the intervals by the rule (every part must hold; Bonferroni
    on the contradicted side)."""
    settings = result.config["settings"]
    zeta, largest = settings["select_zeta"], max(settings["zetas"])
    margin = settings["equivalence_margin"]
    training, worst, random = (result.tables[n] for n in ("training", "worst_case", "random"))
    regimes = list(dict.fromkeys(r["regime"] for r in training))
    others = [regime for regime in regimes if regime != "adversarial"]
    assert len(others) == len(REGIMES) - 1

    def judge(finding, differences: dict[str, np.ndarray], rule, level: float = 0.95) -> None:
        """Each part's effect at the rule's level, and the claim's verdict, worked out here."""
        assert len(finding.checks) == len(differences)
        parts = []
        for check, (label, values) in zip(finding.checks, differences.items(), strict=True):
            assert label in check.effect.label
            estimate, low, high = t_interval(values, level)
            assert_effect(check.effect.at(level), estimate, low, high)
            wide = t_interval(values, bonferroni(level, len(differences)))
            parts.append((rule(low, high), rule(*wide[1:])))
            assert check.verdict == parts[-1][0]
        assert finding.verdict == every_part(parts), finding.claim

    def greater(low: float, high: float) -> str:
        return directional(low, high, "greater", 0.0)

    def within(low: float, high: float) -> str:
        return equivalent(low, high, 0.0, margin)

    awp = _per_replicate(worst, "accuracy", regime="adversarial", zeta=zeta)
    judge(
        result.findings[0],
        {
            f"AWP − {other}": awp - _per_replicate(worst, "accuracy", regime=other, zeta=zeta)
            for other in others
        },
        greater,
    )
    drop = {
        regime: _per_replicate(training, "test_accuracy", regime=regime)
        - _per_replicate(random, "accuracy", regime=regime, zeta=largest)
        for regime in regimes
    }
    judge(
        result.findings[1],
        {f"drop AWP − drop {other}": drop["adversarial"] - drop[other] for other in others},
        within,
        EQUIVALENCE_LEVEL,
    )
    judge(
        result.findings[3],
        {
            f"{regime}: random − worst case": _per_replicate(
                random, "accuracy", regime=regime, zeta=zeta
            )
            - _per_replicate(worst, "accuracy", regime=regime, zeta=zeta)
            for regime in regimes
        },
        greater,
    )


def test_unknown_option_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="parameter-robustness: unknown option"):
        run_experiment("parameter-robustness", tmp_path, quick=True, store="s.h5", zeta=0.1)
    with pytest.raises(ConfigError, match="zetas must be positive"):
        run_experiment("parameter-robustness", tmp_path, quick=True, store="s.h5", zetas=[0])
    with pytest.raises(ConfigError, match=r"Dropout\.p"):
        run_experiment("parameter-robustness", tmp_path, quick=True, store="s.h5", dropout=1.5)


def test_flatness_grows_with_the_step_and_leaves_the_model_alone():
    model = build_mlp(mlp_spec(4, (8,), 3), seed=0)
    generator = np.random.default_rng(0)
    x = generator.normal(size=(200, 4)).astype(np.float32)
    y = generator.integers(0, 3, 200)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flat = flatness(model, (x, y), steps=(0.1, 0.5, 2.0), directions=3, seed=1)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert flat.steps == (0.1, 0.5, 2.0)
    assert flat.increase[0] < flat.increase[1] < flat.increase[2]
    assert flat.mean == pytest.approx(np.mean(flat.increase))
    assert flatness(model, (x, y), steps=(0.1, 0.5, 2.0), directions=3, seed=1) == flat
    with torch.no_grad():
        logits = model(torch.as_tensor(x))
    assert flat.loss == pytest.approx(
        float(torch.nn.functional.cross_entropy(logits, torch.as_tensor(y)))
    )


def _hand_direction(
    params: dict[str, torch.Tensor], generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """Li et al.'s filter-normalized direction, one row at a time: a standard normal row of each
    weight matrix scaled to that row's norm in θ; biases (1-D) not moved."""
    direction = {}
    for name, value in params.items():
        if value.dim() < 2:
            direction[name] = torch.zeros_like(value)
            continue
        z = torch.randn(value.shape, generator=generator, dtype=torch.float64)
        for row in range(value.shape[0]):
            z[row] *= value[row].norm() / z[row].norm()
        direction[name] = z
    return direction


@torch.no_grad()
def test_flatness_equals_the_loss_increase_computed_by_hand():
    model = build_mlp(mlp_spec(4, (8,), 3), seed=0).double()
    generator = np.random.default_rng(0)
    x = torch.as_tensor(generator.normal(size=(200, 4)))
    y = torch.as_tensor(generator.integers(0, 3, 200))
    steps, directions, seed = (0.1, 0.5), 2, 1
    flat = flatness(model, (x, y), steps=steps, directions=directions, seed=seed)

    params = {name: p.detach() for name, p in model.named_parameters()}
    draws = torch.Generator().manual_seed(derive_seed(seed, "flatness"))
    loss = torch.nn.functional.cross_entropy
    base = float(loss(model(x), y))
    increases: dict[float, list[float]] = {step: [] for step in steps}
    for _ in range(directions):
        direction = _hand_direction(params, draws)
        for step in steps:
            for sign in (1, -1):
                moved = {n: p + sign * step * direction[n] for n, p in params.items()}
                increases[step].append(float(loss(functional_call(model, moved, (x,)), y)) - base)
    assert flat.loss == pytest.approx(base, rel=1e-12)
    np.testing.assert_allclose(flat.increase, [np.mean(increases[s]) for s in steps], rtol=1e-9)
    np.testing.assert_allclose(flat.spread, [np.std(increases[s]) for s in steps], rtol=1e-9)


def test_flatness_is_blind_to_a_rescaling_that_leaves_the_network_unchanged():
    """A ReLU layer's weights and bias ×5 and the next layer's weights ÷5 compute the same
    function; a filter-normalized direction scales with each row, so the flatness is the same
    (a direction of fixed size would find the scaled network flatter in one layer, sharper in
    the other)."""
    model = build_mlp(mlp_spec(4, (16,), 3, activation="relu"), seed=0).double()
    generator = np.random.default_rng(2)
    x = torch.as_tensor(generator.normal(size=(200, 4)))
    y = torch.as_tensor(generator.integers(0, 3, 200))
    scaled = copy.deepcopy(model)
    with torch.no_grad():
        scaled.linear1.weight.mul_(5.0)
        scaled.linear1.bias.mul_(5.0)
        scaled.output.weight.div_(5.0)
    with torch.no_grad():
        torch.testing.assert_close(scaled(x), model(x), rtol=1e-12, atol=1e-12)
    settings = {"steps": (0.25, 1.0), "directions": 3, "seed": 4}
    original = flatness(model, (x, y), **settings)
    rescaled = flatness(scaled, (x, y), **settings)
    np.testing.assert_allclose(rescaled.increase, original.increase, rtol=1e-9)
    assert original.increase[0] > 0
