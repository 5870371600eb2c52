"""Experiment 2 (propagation) at quick size on families simulated by ngspice (quick_store)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

from circuitnn.errors import ConfigError
from circuitnn.experiments import run_experiment

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FIGURES = ("noise_vs_depth", "predicted_vs_measured", "single_source", "trained_noise_vs_depth")
KINDS = {
    "additive",
    "additive-correlated",
    "multiplicative",
    "multiplicative-correlated",
    "circuit",
    "single-source",
}


@pytest.fixture(scope="module")
def quick_run(quick_store: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("propagation")
    return run_experiment("propagation", out, quick=True, seed=0, store=quick_store)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_writes_tables_figures_and_summary(quick_run) -> None:
    out = quick_run.out
    layers = rows(out / "layers.csv")
    assert len(layers) == 2 * 2 * 2 * len(KINDS) * 8  # replicates × families × gains × kinds × L
    assert {row["kind"] for row in layers} == KINDS
    assert len(rows(out / "configurations.csv")) == 2 * 2 * 2 * len(KINDS)
    trained = rows(out / "trained_layers.csv")  # trained networks: 4 hidden layers at quick size
    assert len(trained) == 2 * 2 * len(KINDS) * 4
    for figure in FIGURES:
        png = out / f"{figure}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    document = json.loads((out / "result.json").read_text())
    assert document["experiment"] == "propagation" and document["config"]["quick"] is True
    assert len(document["findings"]) == 7
    assert sum(f["claim"].startswith("trained networks") for f in document["findings"]) == 3
    summary = (out / "summary.md").read_text()
    assert "## Findings" in summary and "![noise_vs_depth](noise_vs_depth.png)" in summary


def test_analytic_prediction_within_ten_percent(quick_run) -> None:
    """Every layer with noise ≤ 10 % of its signal: predicted σ within 10 % of Monte Carlo
    (measured, seed 0: worst 1.8 %, over 73 such rows; over all 192 rows worst 3.6 %)."""
    small = [r for r in quick_run.tables["layers"] if r["noise_to_signal"] <= 0.10]
    assert len(small) >= 40
    for row in small:
        assert abs(row["ratio"] - 1) < 0.10, row
    assert max(abs(r["ratio"] - 1) for r in quick_run.tables["layers"]) < 0.10
    trained = [r for r in quick_run.tables["trained_layers"] if r["noise_to_signal"] <= 0.10]
    assert trained and max(abs(r["ratio"] - 1) for r in trained) < 0.15
    assert quick_run.findings[0].verdict in ("reproduced", "inconclusive")  # never contradicted


def test_slope_below_one_suppresses_and_bounds_the_noise(quick_run) -> None:
    """Gain 0.7 against gain 1.5 (same weights, chips, inputs and draws), in each replicate: the
    last layer's noise is lower for every family and kind (measured, seed 0: mos_diffpair
    additive 0.042 vs 0.122, cmos_inverter additive 0.032 vs 0.043); a single source in layer 1
    decays; additive noise stays within the linear bound σ/√(1 − χ_max). Regression guards: the
    factors 0.9 and 0.2 come from those runs; the linear bound is the theory's."""
    table = {
        (r["family"], r["gain"], r["kind"], r["replicate"]): r
        for r in quick_run.tables["configurations"]
    }
    for replicate in (0, 1):
        for family in ("mos_diffpair", "cmos_inverter"):
            for kind in KINDS:
                low, high = (
                    table[(family, 0.7, kind, replicate)],
                    table[(family, 1.5, kind, replicate)],
                )
                assert low["sigma_last"] < 0.9 * high["sigma_last"], (family, kind)
            source = table[(family, 0.7, "single-source", replicate)]
            assert source["sigma_last"] < 0.2 * source["sigma_first"]
            for kind in ("additive", "additive-correlated"):
                row = table[(family, 0.7, kind, replicate)]
                assert row["max_slope"] < 1 and row["transfer_max"] < 1
                assert row["bound_ratio"] <= 1.1, row
                assert row["levelling"] < 0, row
        # at gain 1.5 the diff pair's transfer exceeds 1 and its noise keeps growing: reported
        grows = table[("mos_diffpair", 1.5, "additive", replicate)]
        assert grows["transfer_mean"] > 1 and grows["levelling"] > 0
    assert quick_run.findings[2].verdict != "contradicted"
    assert quick_run.findings[1].verdict != "reproduced"
    assert "mos_diffpair g=1.5" in " ".join(c.effect.label for c in quick_run.findings[1].checks)


def test_bad_options() -> None:
    with pytest.raises(ConfigError, match="unknown option"):
        run_experiment("propagation", "unused", quick=True, widths=(3,))
    with pytest.raises(ConfigError, match="gains"):
        run_experiment("propagation", "unused", quick=True, gains=(1.2, 1.5))
