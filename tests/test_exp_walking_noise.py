"""The ``walking-noise`` experiment at quick size on the session's simulated circuit families, and
the weight statistics it uses."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from circuitnn.errors import ConfigError
from circuitnn.experiments import run_experiment
from circuitnn.experiments.weight_stats import activation_stats, bimodality, weight_stats
from circuitnn.nn import build_mlp, mlp_spec

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def result(quick_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("walking-noise")
    return run_experiment("walking-noise", out, quick=True, seed=0, store=quick_store)


def _midpoints(result, setting: str = "digits-mlp") -> dict[tuple[str, str, str], float]:
    return {
        (r["regime"], r["noise"], r["layer"]): r["midpoint"]
        for r in result.tables["midpoint_summary"]
        if r["setting"] == setting
    }


def test_writes_tables_figures_and_summary(result):
    out = result.out
    for table in ("training", "midpoints", "midpoint_summary", "weights", "activations"):
        assert (out / f"{table}.csv").stat().st_size > 0
    for figure in ("midpoints", "weights", "curves"):
        assert result.figures[figure] == out / f"{figure}.png"
        assert result.figures[figure].stat().st_size > 10_000
    document = json.loads((out / "result.json").read_text())
    assert document["experiment"] == "walking-noise" and document["config"]["replicates"] == 2
    assert document["config"]["layers"] == {"act1": "mos_diffpair", "act2": "cmos_inverter"}
    page = (out / "summary.md").read_text()
    assert "## Findings" in page and "midpoints.png" in page
    # walked, per replicate: digits MLP 4 regimes × 3 noises × (2 layers + all); digits CNN and
    # the regression MLP 2 regimes × additive × (2 layers + all)
    midpoints = result.tables["midpoints"]
    counts = {
        s: sum(r["setting"] == s for r in midpoints) for s in {r["setting"] for r in midpoints}
    }
    assert counts == {"digits-mlp": 2 * 36, "digits-cnn": 2 * 6, "smooth-mlp": 2 * 6}
    assert all(math.isfinite(r["midpoint"]) for r in midpoints)
    clean = [
        r for r in result.tables["training"] if r["metric"] == "accuracy" and r["regime"] == "clean"
    ]
    assert len(clean) == 4 and all(r["test_score"] > 0.8 for r in clean)
    conv = {r["layer"] for r in result.tables["weights"] if r["setting"] == "digits-cnn"}
    assert "conv1" in conv  # the CNN builder's conv layer of circuit neurons


def test_additive_noise_training_raises_the_additive_midpoints(result):
    """Measured at quick size (seed 0, 2 replicates): act1 ×1.67, act2 ×1.14, all ×1.42.
    Regression guard: the factors come from that run."""
    midpoints = _midpoints(result)
    for layer, factor in (("act1", 1.3), ("all", 1.15)):
        clean = midpoints[("clean", "additive", layer)]
        assert midpoints[("additive", "additive", layer)] >= factor * clean, layer


def test_additive_noise_training_grows_the_first_layer_weights(result):
    """Measured at quick size (seed 0, 2 replicates): linear1 RMS ×1.32, act1 signal ×1.96.
    Regression guard: the factors 1.15 and 1.3 come from that run."""
    weights = [r for r in result.tables["weights"] if r["setting"] == "digits-mlp"]
    rms = {
        regime: np.mean(
            [r["rms"] for r in weights if r["regime"] == regime and r["layer"] == "linear1"]
        )
        for regime in ("clean", "additive")
    }
    assert rms["additive"] >= 1.15 * rms["clean"]
    signal = {
        regime: np.mean(
            [
                r["signal"]
                for r in result.tables["activations"]
                if r["setting"] == "digits-mlp" and r["regime"] == regime and r["layer"] == "act1"
            ]
        )
        for regime in ("clean", "additive")
    }
    assert signal["additive"] > 1.3 * signal["clean"]


def test_findings_are_decided_per_setting_and_layer(result):
    claims = [f.claim for f in result.findings]
    for setting in ("digits-mlp", "digits-cnn", "smooth-mlp"):
        assert any(c.startswith(f"{setting}: training with additive noise") for c in claims)
        assert any(c.startswith(f"{setting}: layers differ") for c in claims)
    growth = next(
        f
        for f in result.findings
        if f.claim.startswith("digits-mlp: additive-noise training") and "weight" in f.claim
    )
    assert [c.effect.label.split()[0] for c in growth.checks] == ["linear1", "linear2"]  # per layer
    binarizes = next(f for f in result.findings if "self-binarize" in f.claim)
    assert len(binarizes.checks) == 2  # one per training level of the sweep
    assert "σ = 2" in binarizes.checks[1].effect.label
    assert binarizes.verdict in ("reproduced", "contradicted", "inconclusive")
    assert binarizes.verdict in (result.out / "summary.md").read_text()


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
