"""The ``walking-noise`` experiment at quick size on the session's simulated circuit families, and
the weight statistics it uses."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch

from circuitnn.errors import ConfigError
from circuitnn.experiments import run_experiment
from circuitnn.experiments.common import fmt
from circuitnn.experiments.walking_noise import summarize_midpoints
from circuitnn.experiments.walking_noise_findings import (
    MIN_BINARIZATION,
    MIN_GAIN,
    MIN_GROWTH,
    NOISES,
    findings,
)
from circuitnn.experiments.weight_stats import activation_stats, bimodality, weight_stats
from circuitnn.nn import build_mlp, mlp_spec

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def result(quick_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("walking-noise")
    return run_experiment("walking-noise", out, quick=True, seed=0, store=quick_store)


def _midpoints(result) -> dict[tuple[str, str, str], float]:
    return {
        (r["regime"], r["noise"], r["layer"]): r["midpoint"]
        for r in result.tables["midpoint_summary"]
    }


def test_writes_tables_figures_and_summary(result):
    out = result.out
    for table in ("training", "midpoints", "midpoint_summary", "weights", "activations", "curves"):
        assert (out / f"{table}.csv").stat().st_size > 0
    for figure in ("midpoints", "weights", "curves"):
        assert result.figures[figure] == out / f"{figure}.png"
        assert result.figures[figure].stat().st_size > 10_000
    document = json.loads((out / "result.json").read_text())
    assert document["experiment"] == "walking-noise"
    assert document["config"]["layers"] == {"act1": "mos_diffpair", "act2": "cmos_inverter"}
    page = (out / "summary.md").read_text()
    assert "## Findings" in page and "midpoints.png" in page
    # every network walked: 4 regimes × 3 noises × (2 layers + all)
    assert len(result.tables["midpoints"]) == 4 * 3 * 3
    assert all(math.isfinite(r["midpoint"]) for r in result.tables["midpoints"])
    assert all(r["test_accuracy"] > 0.85 for r in result.tables["training"])  # regression guard


def test_additive_noise_training_raises_the_additive_midpoints(result):
    """Measured at quick size on seeds 0-3: act1 ×1.70-1.75, act2 ×1.20-1.27, all ×1.52-1.56.
    Regression guard: the factors 1.4 / 1.08 / 1.2 come from those runs (the findings' own rule,
    MIN_GAIN, is checked in test_each_finding_follows_from_the_numbers)."""
    midpoints = _midpoints(result)
    for layer, factor in (("act1", 1.4), ("act2", 1.08), ("all", 1.2)):
        clean = midpoints[("clean", "additive", layer)]
        assert midpoints[("additive", "additive", layer)] >= factor * clean, layer


def test_additive_noise_training_grows_the_first_layer_weights(result):
    """Measured at quick size on seeds 0-3: linear1 RMS ×1.63-1.64, act1 signal power ×2.2-2.3.
    Regression guard: the factor 1.3 comes from those runs."""
    rms = {(r["regime"], r["layer"]): r["rms"] for r in result.tables["weights"]}
    assert rms[("additive", "linear1")] >= 1.3 * rms[("clean", "linear1")]
    signal = {(r["regime"], r["layer"]): r["signal"] for r in result.tables["activations"]}
    assert signal[("additive", "act1")] > 1.3 * signal[("clean", "act1")]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _geometric_mean(values: list[float]) -> float:
    return math.exp(_mean([math.log(v) for v in values]))


def _hidden_rms(weights: list[dict], regime: str) -> float:
    """RMS of all hidden-layer weights of each ``regime`` network together, averaged."""
    per_network = []
    for network in {r["network"] for r in weights}:
        rows = [
            r
            for r in weights
            if r["network"] == network and r["regime"] == regime and r["layer"] != "output"
        ]
        squares = sum(r["rms"] ** 2 * r["weights"] for r in rows)
        per_network.append(math.sqrt(squares / sum(r["weights"] for r in rows)))
    return _mean(per_network)


def _hidden_bimodality(weights: list[dict], regime: str) -> float:
    layers = {r["layer"] for r in weights if r["layer"] != "output"}
    return _mean(
        [
            _mean(
                [r["bimodality"] for r in weights if r["regime"] == regime and r["layer"] == layer]
            )
            for layer in layers
        ]
    )


def expected_verdicts(tables: dict[str, list[dict]]) -> dict[str, tuple[bool, float | None]]:
    """Each finding's verdict, recomputed from the run's raw tables by the rules of
    walking_noise_findings' docstring (and the number it turns on)."""
    rows = tables["midpoints"]

    def mean_midpoint(regime: str, noise: str, layer: str) -> float:
        return _mean(
            [
                r["midpoint"]
                for r in rows
                if (r["regime"], r["noise"], r["layer"]) == (regime, noise, layer)
            ]
        )

    layers = list(dict.fromkeys(r["layer"] for r in rows))
    verdicts = {}
    for noise in NOISES:
        gain = _geometric_mean(
            [
                mean_midpoint(noise, noise, layer) / mean_midpoint("clean", noise, layer)
                for layer in layers
            ]
        )
        verdicts[f"training with {noise} noise"] = (gain >= MIN_GAIN, gain)
    growth = _hidden_rms(tables["weights"], "additive") / _hidden_rms(tables["weights"], "clean")
    verdicts["additive-noise training"] = (growth >= MIN_GROWTH, growth)
    binarization = _hidden_bimodality(tables["weights"], "multiplicative") / _hidden_bimodality(
        tables["weights"], "clean"
    )
    verdicts["multiplicative-noise training"] = (binarization >= MIN_BINARIZATION, binarization)
    summary = {(r["regime"], r["noise"], r["layer"]): r for r in tables["midpoint_summary"]}
    separated = []
    for noise in NOISES:
        walked = [summary[("clean", noise, layer)] for layer in layers if layer != "all"]
        low = min(walked, key=lambda r: r["midpoint"])
        high = max(walked, key=lambda r: r["midpoint"])
        error = math.hypot(low["uncertainty"], high["uncertainty"])
        separated.append(high["midpoint"] - low["midpoint"] > 2 * error)
    verdicts["layers differ"] = (all(separated), None)
    return verdicts


def _finding(findings, start: str):
    (finding,) = [f for f in findings if f.claim.startswith(start)]
    return finding


def test_each_finding_follows_from_the_numbers(result):
    expected = expected_verdicts(result.tables)
    assert len(result.findings) == len(expected) == 6
    page = (result.out / "summary.md").read_text()
    for start, (holds, number) in expected.items():
        finding = _finding(result.findings, start)
        assert finding.holds == holds, (start, number, finding.evidence)
        if number is not None:  # the deciding number is written out, whichever way it went
            assert f"×{fmt(number)}" in finding.evidence, (start, number, finding.evidence)
        assert finding.claim in page
    binarizes = _finding(result.findings, "multiplicative-noise training")
    assert ("NOT reproduced" in page) == (not all(f.holds for f in result.findings))
    assert ("reproduced" if binarizes.holds else "NOT reproduced") in page


def _synthetic_tables(gain: float, growth: float, binarization: float, gap: float) -> dict:
    """Tables of two networks per regime in which every noise-trained midpoint is ``gain`` × the
    clean one, additive training scales the hidden weights' RMS by ``growth``, multiplicative
    training the hidden weights' binarization index by ``binarization``, and the clean network's
    act2 midpoint exceeds act1's by ``gap`` (uncertainty 0.1 each)."""
    tables: dict[str, list[dict]] = {"midpoints": [], "weights": [], "activations": []}
    regimes = ("clean", *NOISES)
    for network in (0, 1):
        for regime in regimes:
            for noise in NOISES:
                for layer, clean in (("act1", 1.0), ("act2", 1.0 + gap), ("all", 0.8)):
                    level = clean * (gain if regime == noise else 1.0)
                    tables["midpoints"].append(
                        {
                            "network": network,
                            "regime": regime,
                            "noise": noise,
                            "layer": layer,
                            "midpoint": level,
                            "uncertainty": 0.1,
                        }
                    )
            for layer in ("linear1", "linear2", "output"):
                hidden = layer != "output"
                tables["weights"].append(
                    {
                        "network": network,
                        "regime": regime,
                        "layer": layer,
                        "weights": 100,
                        "rms": 0.5 * (growth if regime == "additive" and hidden else 1.0),
                        "bimodality": 0.4
                        * (binarization if regime == "multiplicative" and hidden else 1.0),
                    }
                )
            for layer in ("act1", "act2"):
                tables["activations"].append(
                    {
                        "network": network,
                        "regime": regime,
                        "layer": layer,
                        "signal": 0.2,
                        "bimodality": 0.4,
                    }
                )
    tables["midpoint_summary"] = summarize_midpoints(tables["midpoints"])
    return tables


SETTINGS = SimpleNamespace(train_additive=0.3, train_multiplicative=0.2, train_mixed=0.2)


@pytest.mark.parametrize("side", [-1, 1], ids=["below", "above"])
def test_findings_turn_at_their_thresholds(side):
    """Just below each rule's threshold the finding does not hold, just above it does."""
    step = 1 + side * 0.01
    tables = _synthetic_tables(
        gain=MIN_GAIN * step,
        growth=MIN_GROWTH * step,
        binarization=MIN_BINARIZATION * step,
        gap=2 * math.hypot(0.1, 0.1) * step,
    )
    verdicts = {f.claim.split(" (")[0]: f.holds for f in findings(tables, SETTINGS)}
    assert len(verdicts) == 6
    assert set(verdicts.values()) == {side > 0}, verdicts
    assert all(holds == (side > 0) for holds, _ in expected_verdicts(tables).values())


def test_unknown_option_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="walking-noise: unknown option"):
        run_experiment("walking-noise", tmp_path, quick=True, store=tmp_path / "s.h5", width=3)
    with pytest.raises(ConfigError, match="epochs must be >= 1"):
        run_experiment("walking-noise", tmp_path, quick=True, store=tmp_path / "s.h5", epochs=0)


def test_bimodality_index():
    generator = torch.Generator().manual_seed(0)
    binary = torch.randint(0, 2, (4, 2000), generator=generator).double() * 2 - 1
    assert torch.allclose(bimodality(3.0 * binary + 1), torch.ones(4, dtype=torch.float64))
    gaussian = torch.randn(200_000, generator=generator, dtype=torch.float64)
    assert bimodality(gaussian).item() == pytest.approx(1 / 3, abs=0.01)
    uniform = torch.rand(200_000, generator=generator, dtype=torch.float64)
    assert bimodality(uniform).item() == pytest.approx(5 / 9, abs=0.01)
    assert math.isnan(bimodality(torch.ones(10)).item())


def test_weight_and_activation_statistics():
    model = build_mlp(mlp_spec(5, (4,), 3), seed=0)
    with torch.no_grad():
        model.linear1.weight.copy_(torch.tensor([[1.0, -1, 1, -1, 1]] * 4) * 0.5)
    rows = {row["layer"]: row for row in weight_stats(model)}
    assert rows["linear1"]["rms"] == pytest.approx(0.5)
    assert rows["linear1"]["bimodality"] == pytest.approx(1.0)
    assert rows["output"]["weights"] == 12
    x = torch.randn(64, 5, generator=torch.Generator().manual_seed(1))
    (act,) = activation_stats(model, x)
    hidden = torch.tanh(model.linear1(x)).detach()
    assert act["layer"] == "act1"
    assert act["rms"] == pytest.approx(float(hidden.pow(2).mean().sqrt()), rel=1e-5)
    assert act["signal"] == pytest.approx(float(hidden.var(0, unbiased=False).mean()), rel=1e-5)
