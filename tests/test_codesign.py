"""Co-design (circuitnn.codesign) on the real thing: real ngspice families of the differential pair,
real PyTorch training on the digits, real Monte Carlo chips; a real interrupted run resumed.

The design space is one where physics gives the answer: the channel length L sets the devices'
area, and by Pelgrom (σ_VT = A/√(W·L)) the pair's offset spread; the tail current sets the power.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from circuitnn.codesign import config_from_dict, run_codesign
from circuitnn.codesign.config import Condition, Objective, Selection
from circuitnn.codesign.front import pareto_mask, select
from circuitnn.codesign.metrics import bootstrap, chip_energy, yield_estimate
from circuitnn.errors import ConfigError

pytest.importorskip("sklearn")
pd = pytest.importorskip("pandas")

L_VALUES, I_VALUES = (0.15e-6, 0.6e-6), (2.5e-6, 20e-6)
W = 4e-6  # the built-in's width
# the textbook level-1 pair: its offsets at 0.15 µm and 2.5 µA clearly cost accuracy on chips
# (with the BSIM4 pair the long and short devices' 95 % intervals overlapped: 0.828 vs 0.834)
NEURON = "mos_diffpair_level1"


def _table(**extra: object) -> dict:
    table = {
        "neuron": NEURON,
        "n": 60,
        "seed": 0,
        "grid": {"l": ["0.15u", "0.6u"], "ibias": ["2.5u", "20u"]},
        "task": {"widths": [16], "epochs": 6, "chips": 12, "draws": 2},
        "run": {"jobs": 2},
    }
    table.update(extra)
    return {"codesign": table}


@pytest.fixture(scope="module")
def physics(tmp_path_factory: pytest.TempPathFactory):
    """The 2 × 2 design space (L × tail current), run once for the module."""
    out = tmp_path_factory.mktemp("codesign")
    lines: list[str] = []
    result = run_codesign(config_from_dict(_table()), out, say=lines.append)
    return result, lines


def _row(result, length: float, ibias: float) -> dict:
    (row,) = [
        r
        for r in result.rows
        if math.isclose(r["l_m"], length, rel_tol=1e-9) and math.isclose(r["ibias_A"], ibias)
    ]
    return row


def test_pelgrom_larger_area_lowers_the_offset_spread(physics) -> None:
    result, _ = physics
    for ibias in I_VALUES:
        small, large = _row(result, L_VALUES[0], ibias), _row(result, L_VALUES[1], ibias)
        # σ_offset ∝ 1/√(W·L): four times the area, half the spread (same random numbers)
        ratio = large["midpoint_sigma_V"] / small["midpoint_sigma_V"]
        assert 0.4 < ratio < 0.6, ratio
        # the area proxy is Σ W·L of the pair's two transistors, from the netlist
        assert small["area_um2"] == pytest.approx(2 * W * L_VALUES[0] * 1e12)
        assert large["area_um2"] == pytest.approx(2 * W * L_VALUES[1] * 1e12)
        assert large["area_network_um2"] == pytest.approx(16 * large["area_um2"])


def test_higher_bias_raises_power_and_energy_per_inference(physics) -> None:
    result, _ = physics
    for length in L_VALUES:
        low, high = _row(result, length, I_VALUES[0]), _row(result, length, I_VALUES[1])
        # static power = VDD · I_tail: eight times the current, eight times the power
        assert high["power_mean_W"] / low["power_mean_W"] == pytest.approx(8, rel=0.02)
        assert low["power_mean_W"] == pytest.approx(1.8 * I_VALUES[0], rel=0.02)
        assert high["energy_J_ci_low"] > low["energy_J_ci_high"]
        # one inference: the hidden layer's 16 neurons' power × its slowest settling time
        assert high["energy_J"] == pytest.approx(
            16 * high["power_mean_W"] * high["latency_s"], rel=0.05
        )


def test_less_mismatch_keeps_more_accuracy_on_chips(physics) -> None:
    """At the low current the short devices' offsets are a large part of the pair's input range:
    the chips lose accuracy, the long devices' chips much less (a known effect, found)."""
    result, _ = physics
    short, long = _row(result, L_VALUES[0], I_VALUES[0]), _row(result, L_VALUES[1], I_VALUES[0])
    assert long["accuracy_mean_ci_low"] > short["accuracy_mean_ci_high"]
    assert long["yield"] >= short["yield"]
    for row in result.rows:
        assert row["accuracy_p5_ci_low"] <= row["accuracy_p5"] <= row["accuracy_p5_ci_high"]
        assert row["yield_ci_low"] <= row["yield"] <= row["yield_ci_high"]
        assert row["noise_midpoint_ci_low"] < row["noise_midpoint"] < row["noise_midpoint_ci_high"]


def test_the_front_holds_the_expected_corners(physics) -> None:
    result, _ = physics
    rows = result.rows
    # circuit objectives: the cheapest design (smallest area, lowest power) and the one with the
    # least spread (largest area) at the lowest power are on the front
    circuit = (
        Objective("area_um2", True),
        Objective("power_mean_W", True),
        Objective("midpoint_sigma_V", True),
    )
    mask = pareto_mask(rows, circuit)
    on = {(r["l_m"], r["ibias_A"]) for r, m in zip(rows, mask, strict=True) if m}
    assert (L_VALUES[0], I_VALUES[0]) in on
    assert (L_VALUES[1], I_VALUES[0]) in on
    # on area and power alone, more current at the same L only costs: never on the front
    costs = pareto_mask(rows, circuit[:2])
    assert not any(m for r, m in zip(rows, costs, strict=True) if r["ibias_A"] == I_VALUES[1])
    # the run's own front (accuracy_p5 up, energy down): the best and the cheapest are on it
    best = max(range(len(rows)), key=lambda i: rows[i]["accuracy_p5"])
    cheapest = min(range(len(rows)), key=lambda i: rows[i]["energy_J"])
    assert {best, cheapest} <= set(result.front)
    assert [r["pareto"] for r in rows] == [i in result.front for i in range(len(rows))]


def test_the_selection_picks_the_lowest_energy_design_that_yields(physics) -> None:
    result, _ = physics
    rows = result.rows
    (name,) = result.chosen
    feasible = [i for i, r in enumerate(rows) if r["yield"] >= 0.95]
    expected = min(feasible, key=lambda i: rows[i]["energy_J"]) if feasible else None
    assert result.chosen[name] == expected
    if expected is not None:
        assert rows[expected]["selected"] == name


def test_select_on_made_up_rows() -> None:
    rows = [
        {"yield": 0.99, "energy_J": 3.0, "area_um2": 1.0},
        {"yield": 0.90, "energy_J": 1.0, "area_um2": 1.0},  # cheapest, but does not yield
        {"yield": 0.96, "energy_J": 2.0, "area_um2": 9.0},
        {"yield": math.nan, "energy_J": 0.5, "area_um2": 1.0},  # unknown yield never qualifies
    ]
    rule = Selection("r", (Condition("yield", ">=", 0.95),), "energy_J", True)
    assert select(rows, rule) == 2
    small = Selection(
        "r", (Condition("yield", ">=", 0.95), Condition("area_um2", "<=", 5)), "energy_J", True
    )
    assert select(rows, small) == 0
    assert select(rows, Selection("r", (Condition("yield", ">", 0.995),), "energy_J", True)) is None
    assert select(rows, Selection("r", (), "yield", False)) == 0
    with pytest.raises(ConfigError, match="'power' is not a column"):
        select(rows, Selection("r", (), "power", True))


def test_the_table_round_trips_through_pandas(physics) -> None:
    result, _ = physics
    frame = pd.read_csv(result.table)
    assert len(frame) == len(result.rows) == 4
    for column in ("neuron", "n", "seed", "corner", "temperature_C", "l_m", "ibias_A", "vdd_V"):
        assert column in frame.columns, column
    assert set(frame["neuron"]) == {NEURON} and set(frame["n"]) == {60}
    for index, row in enumerate(result.rows):
        for column, value in row.items():
            cell = frame[column].iloc[index]
            if isinstance(value, bool):
                assert bool(cell) is value
            elif isinstance(value, float):
                assert cell == value or (math.isnan(value) and math.isnan(cell)), column
            elif value == "":
                assert pd.isna(cell)
            else:
                assert str(cell) == str(value), column
    assert frame["pareto"].dtype == bool


def test_resume_after_a_real_interrupt_recomputes_nothing_finished(physics, tmp_path: Path) -> None:
    """`circuitnn codesign` killed (SIGKILL) after its first point is done; the rerun takes the
    finished points from their cache files untouched and computes only the rest."""
    result, _ = physics
    config = tmp_path / "design.toml"
    store = result.out / "families.h5"  # the module's families: the run goes straight to training
    config.write_text(
        f'[codesign]\nneuron = "{NEURON}"\nn = 60\nseed = 0\n'
        f'store = "{store}"\n'
        '[codesign.grid]\nl = ["0.15u", "0.6u"]\nibias = ["2.5u", "20u"]\n'
        "[codesign.task]\nwidths = [16]\nepochs = 25\nchips = 12\ndraws = 2\n"
    )
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "circuitnn", "codesign", str(config), "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    points = out / "points"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(points.glob("*.json")):
        assert process.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    finished = {
        path: (path.read_bytes(), path.stat().st_mtime_ns) for path in points.glob("*.json")
    }
    assert 1 <= len(finished) < 4, "interrupted after its first point and before its last"
    lines: list[str] = []
    rerun = run_codesign(config, out, say=lines.append)
    assert rerun.reused == len(finished)
    assert sum("cached" in line for line in lines) == len(finished)
    assert rerun.simulated == 0
    for path, (content, stamp) in finished.items():
        assert path.read_bytes() == content and path.stat().st_mtime_ns == stamp
    assert len(list(points.glob("*.json"))) == 4
    assert not list(points.glob(".*"))  # no partial file left behind


def test_search_proposes_points_in_range_and_replays_from_cache(physics, tmp_path: Path) -> None:
    result, _ = physics
    table = _table(
        search={"budget": 2, "sampler": "gp", "startup": 1, "l": ["0.15u", "0.6u"]},
        store=str(result.out / "families.h5"),
    )
    table["codesign"]["grid"] = {"ibias": ["20u"]}
    del table["codesign"]["run"]
    config = config_from_dict(table)
    first = run_codesign(config, tmp_path, grid=False, pictures=False)
    assert [r["source"] for r in first.rows] == ["search", "search"]
    for row in first.rows:
        assert 0.15e-6 <= row["l_m"] <= 0.6e-6
        assert "ibias_A" not in row  # not searched: the spec's own 40 µA
        assert row["power_mean_W"] == pytest.approx(1.8 * 40e-6, rel=0.02)
    again = run_codesign(config, tmp_path, grid=False, pictures=False)
    assert [r["l_m"] for r in again.rows] == [r["l_m"] for r in first.rows]
    assert again.reused == 2 and again.simulated == 0


def test_summary_and_pictures_are_written(physics) -> None:
    result, lines = physics
    assert len(lines) == 4 and all("yield" in line for line in lines)
    text = result.summary.read_text()
    assert "## Pareto front" in text and "Not counted" in text
    for path in result.figures.values():
        assert path.read_bytes()[:4] == b"\x89PNG"
    assert set(result.figures) == {"accuracy vs energy", "effect of l", "effect of ibias"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"grid": {"width": ["1u"]}}, "'width' is not a parameter of mos_diffpair"),
        ({"objectives": ["energy_J:min", "speed:max"]}, "objective speed:max: 'speed' is not"),
        ({"select": [{"require": ["yield >= 0.95"], "minimize": "area_mm2"}]}, "'area_mm2'"),
        ({"select": [{"require": ["yield => 1"], "minimize": "energy_J"}]}, "is not 'COLUMN OP"),
        ({"grid": {"corner": ["xx"]}}, "corner 'xx' is not a corner of mos_diffpair"),
        ({"grid": {"l": ["1x"]}}, "'1x' is not a number"),
        ({"search": {"budget": 0, "l": ["1u", "2u"]}}, "budget must be an integer >= 1"),
        ({"search": {"budget": 2, "l": ["2u", "1u"]}}, "high (1e-06) must exceed low"),
        ({"colour": 1}, "unknown key(s) ['colour']"),
    ],
)
def test_bad_settings_stop_before_any_simulation(
    tmp_path: Path, change: dict, message: str
) -> None:
    table = _table(**change)
    with pytest.raises(ConfigError) as caught:
        run_codesign(config_from_dict(table), tmp_path)
    assert message in str(caught.value)
    assert not (tmp_path / "families.h5").exists()


def test_a_point_sets_supply_temperature_and_corner() -> None:
    from types import SimpleNamespace

    from circuitnn.codesign.space import point_spec
    from circuitnn.codesign.table import settings_columns
    from circuitnn.extract.pipeline import family_key
    from circuitnn.neuron.builtin import get_neuron
    from circuitnn.neuron.variation import MonteCarlo

    base = get_neuron("mos_diffpair")
    point = {"vdd": 1.5, "temperature": 85.0, "corner": "ss", "w": 2e-6}
    spec, corner = point_spec(base, point)
    assert spec.ports.supplies == {"vdd": 1.5} and spec.temperature == 85.0
    assert corner == "ss" and spec.parameters["w"] == 2e-6
    assert base.ports.supplies == {"vdd": 1.8}  # the neuron itself is unchanged
    config = SimpleNamespace(n=10, seed=3, chip_size=1)
    row = settings_columns(spec, point, config, corner)
    assert row == {
        "neuron": "mos_diffpair",
        "n": 10,
        "seed": 3,
        "chip_size": 1,
        "corner": "ss",
        "temperature_C": 85.0,
        "vdd_V": 1.5,
        "w_m": 2e-6,
    }
    # every setting reaches the family's key: each is a different family
    keys = {
        family_key(point_spec(base, p)[0], MonteCarlo(n=10, corner=point_spec(base, p)[1]))
        for p in ({}, {"vdd": 1.5}, {"temperature": 85.0}, {"corner": "ss"}, {"w": 2e-6})
    }
    assert len(keys) == 5


def test_the_example_file_loads_and_names_only_known_columns() -> None:
    from circuitnn.codesign import load_codesign
    from circuitnn.codesign.table import check_columns
    from circuitnn.neuron.builtin import get_neuron

    config = load_codesign(Path(__file__).resolve().parents[1] / "examples" / "codesign.toml")
    assert config.search is not None and config.search.budget == 6
    assert len(config.grid["l"]) * len(config.grid["ibias"]) == 12
    check_columns(config, get_neuron(config.neuron))


def test_a_neuron_without_mosfets_has_no_area_column(tmp_path: Path) -> None:
    table = {"codesign": {"neuron": "diode_relu", "grid": {"r": ["5k"]}}}
    table["codesign"]["objectives"] = ["area_um2:min", "energy_J:min"]
    with pytest.raises(ConfigError, match="no MOSFETs, so no area proxy"):
        run_codesign(config_from_dict(table), tmp_path)


# statistics: known effects found, nulls at their stated rate ------------------------------------


def test_bootstrap_intervals_cover_the_true_value_at_their_rate() -> None:
    rng = np.random.default_rng(1)
    covered = sum(
        (e := bootstrap(rng.normal(0.9, 0.03, 32), "mean", seed)).low <= 0.9 <= e.high
        for seed in range(200)
    )
    assert 0.88 <= covered / 200 <= 0.99, covered  # nominal 95 %


def test_yield_intervals_cover_the_true_yield_at_their_rate() -> None:
    rng = np.random.default_rng(2)
    covered = sum(
        (e := yield_estimate(rng.random(32) < 0.8)).low <= 0.8 <= e.high for _ in range(400)
    )
    assert 0.91 <= covered / 400 <= 0.99, covered


def test_chip_energy_by_hand() -> None:
    power = np.array([1.0, 2.0, 3.0, 4.0])
    settling = np.array([1e-9, 3e-9, 2e-9, 5e-9])
    energy, latency = chip_energy([np.array([0, 1]), np.array([2, 3])], power, settling)
    assert latency == pytest.approx(3e-9 + 5e-9)
    assert energy == pytest.approx(3e-9 * (1 + 2) + 5e-9 * (3 + 4))
    settling[2] = np.nan
    with pytest.raises(ConfigError, match=r"instances \[2\] of the chip have no settling"):
        chip_energy([np.array([0, 1]), np.array([2, 3])], power, settling)


# sweep and campaign: the same table form ---------------------------------------------------------


def test_sweep_and_campaign_write_one_row_per_point(tmp_path: Path) -> None:
    from circuitnn.cli import main

    store = tmp_path / "f.h5"
    assert main(["sweep", "diode_relu", "--param", "r=5k,10k", "--param", "temperature=27,85",
                 "--n", "20", "--store", str(store), "--out", str(tmp_path / "sweep"),
                 "--quiet"]) == 0  # fmt: skip
    sweep = pd.read_csv(tmp_path / "sweep" / "sweep.csv")
    assert json.loads((tmp_path / "sweep" / "sweep.json").read_text())  # the old form stays
    campaign = tmp_path / "c.toml"
    campaign.write_text(
        '[campaign]\nneuron = "diode_relu"\nn = 20\nseed = 0\ncorner = "slow"\n'
        '[campaign.grid]\nr = ["5k", "10k"]\n'
    )
    assert main(["campaign", str(campaign), "--out", str(tmp_path / "c"), "--quiet"]) == 0
    table = pd.read_csv(tmp_path / "c" / "campaign.csv")
    for frame, points in ((sweep, 4), (table, 2)):
        assert len(frame) == points
        for column in ("point", "neuron", "n", "seed", "corner", "temperature_C", "r_Ohm"):
            assert column in frame.columns
        assert set(frame["n"]) == {20} and set(frame["seed"]) == {0}
    assert sorted(sweep["temperature_C"]) == [27, 27, 85, 85]
    assert set(table["corner"]) == {"slow"}
    # the descriptors of a point equal its family's own summary
    from circuitnn.store import Store

    family = Store(tmp_path / "c" / "families.h5").load(table["family_key"][1])
    assert table["swing_mean_V"][1] == pytest.approx(family.summary()["swing"]["mean"])
    assert table["midpoint_sigma_V"][1] == pytest.approx(family.summary()["midpoint"]["std"])
