"""Experiment 2 (propagation) at quick size on families simulated by ngspice (quick_store)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from by_hand import (
    assert_effect,
    bonferroni,
    directional,
    every_part,
    geometric_interval,
    t_interval,
)

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


def _last_and_first(layers: list[dict], family: str, gain: float, kind: str) -> np.ndarray:
    """Per replicate (rows: replicates), the measured σ at the last and at the first layer, and
    the largest transfer χ over layers 2…L, from the per-layer rows."""
    values = []
    for replicate in (0, 1):
        mine = sorted(
            (
                r
                for r in layers
                if (r["family"], r["gain"], r["kind"], r["replicate"])
                == (family, gain, kind, replicate)
            ),
            key=lambda r: r["layer"],
        )
        assert [r["layer"] for r in mine] == list(range(1, len(mine) + 1))  # one row per layer
        values.append(
            (mine[-1]["measured"], mine[0]["measured"], max(r["transfer"] for r in mine[1:]))
        )
    return np.array(values)


def test_prediction_and_suppression_effects_recomputed_from_the_layers(quick_run) -> None:
    """Wiring: from the per-layer rows alone, (1) per replicate the worst |predicted/measured − 1|
    over the layers with noise ≤ 10 % of the signal, its mean with the t interval (claim < 0.10),
    random and trained networks; (3) for every family: (a) per kind the geometric mean ratio of
    the last layer's σ at gain 0.7 to gain 1.5, (b) a single source's σ_L / σ_1 at gain 0.7
    (claim < 1 each), (c) additive σ_L over the linear bound σ/√(1 − χ_max) (claim < 1.1); each
    equals the effect its finding reports, and each verdict follows from the intervals by the
    rule (claim (3) every part, Bonferroni on the contradicted side)."""
    for table, finding in (
        ("layers", quick_run.findings[0]),
        ("trained_layers", quick_run.findings[4]),
    ):
        worst = []
        for replicate in (0, 1):
            small = [
                abs(r["predicted"] / r["measured"] - 1)
                for r in quick_run.tables[table]
                if r["replicate"] == replicate and r["measured"] / r["signal"] <= 0.10
            ]
            worst.append(max(small))
        estimate, low, high = t_interval(worst)
        (check,) = finding.checks
        assert_effect(check.effect, estimate, low, high)
        assert finding.verdict == directional(low, high, "less", 0.10), finding.claim

    layers = quick_run.tables["layers"]
    sigma = quick_run.config["settings"]["sigma"]
    suppressed = quick_run.findings[2]
    checks = {c.effect.label.split(":")[0]: c for c in suppressed.checks}
    parts = []

    def judge(label: str, values: np.ndarray, interval, claim_null: float) -> None:
        estimate, low, high = interval(values)
        assert_effect(checks.pop(label).effect, estimate, low, high)
        wide = interval(values, bonferroni(0.95, len(suppressed.checks)))
        parts.append(
            (directional(low, high, "less", claim_null), directional(*wide[1:], "less", claim_null))
        )

    for family in ("mos_diffpair", "cmos_inverter"):
        for kind in KINDS:
            low_gain = _last_and_first(layers, family, 0.7, kind)
            high_gain = _last_and_first(layers, family, 1.5, kind)
            judge(f"(a) {family} {kind}", low_gain[:, 0] / high_gain[:, 0], geometric_interval, 1)
        single = _last_and_first(layers, family, 0.7, "single-source")
        judge(
            f"(b) {family} single source σ_L/σ_1 at g=0.7",
            single[:, 0] / single[:, 1],
            geometric_interval,
            1,
        )
        for kind in ("additive", "additive-correlated"):
            rows = _last_and_first(layers, family, 0.7, kind)
            assert (rows[:, 2] < 1).all()  # the bound exists: every transfer below 1
            bound = sigma / np.sqrt(1 - rows[:, 2])
            judge(f"(c) {family} {kind}", rows[:, 0] / bound, t_interval, 1.1)
    assert not checks  # every part of the claim worked out here
    assert suppressed.verdict == every_part(parts)
    assert math.isfinite(sigma)


def test_bad_options() -> None:
    with pytest.raises(ConfigError, match="unknown option"):
        run_experiment("propagation", "unused", quick=True, widths=(3,))
    with pytest.raises(ConfigError, match="gains"):
        run_experiment("propagation", "unused", quick=True, gains=(1.2, 1.5))
