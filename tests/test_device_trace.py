"""Tracing curves to devices (``Family.device_trace``): Pearson's r of each realized device
parameter with a curve descriptor, with its confidence interval. Statistical checks on data with
a known correlation (the interval covers it at its stated rate; a null is found at the rate
allowed), and a real bipolar pair whose midpoint is set by its two saturation currents alone."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from circuitnn.errors import ConfigError
from circuitnn.extract.pipeline import extract_family
from circuitnn.family.device_trace import device_parameters, device_trace
from circuitnn.neuron.builtin import builtin_folder
from tests.helpers import build_spec, options, spec_data

REPEATS, N, RHO = 400, 30, 0.6


def _sample(rng: np.random.Generator) -> dict[str, np.ndarray]:
    midpoint = rng.standard_normal(N)
    return {
        "midpoint": midpoint,
        "gain": rng.standard_normal(N),  # a curve descriptor: never traced
        "id_m1": RHO * midpoint + np.sqrt(1 - RHO**2) * rng.standard_normal(N),
        "vth_m2": rng.standard_normal(N),  # independent of the midpoint
    }


def _rate_band(p: float) -> tuple[float, float]:
    """The range a rate of ``p`` over REPEATS trials falls in with probability 99.9 %."""
    low, high = stats.binom(REPEATS, p).ppf([0.0005, 0.9995])
    return low / REPEATS, high / REPEATS


def test_interval_covers_the_true_correlation_at_its_rate_and_finds_a_null_at_alpha() -> None:
    rng = np.random.default_rng(7)
    ok = np.ones(N, dtype=bool)
    covered = nulls_found = 0
    for _ in range(REPEATS):
        rows = {row["device parameter"]: row for row in device_trace(_sample(rng), ok)}
        assert set(rows) == {"id_m1", "vth_m2"}
        covered += rows["id_m1"]["ci low"] <= RHO <= rows["id_m1"]["ci high"]
        nulls_found += not rows["vth_m2"]["ci low"] <= 0 <= rows["vth_m2"]["ci high"]
    low, high = _rate_band(0.95)
    assert low <= covered / REPEATS <= high
    low, high = _rate_band(0.05)
    assert low <= nulls_found / REPEATS <= high


def test_failed_instances_are_left_out_and_rows_come_strongest_first() -> None:
    rng = np.random.default_rng(3)
    descriptors = _sample(rng)
    ok = np.ones(N, dtype=bool)
    ok[:4] = False
    for values in descriptors.values():
        values[:4] = 1e6  # what a failed instance must not bring in
    descriptors["vth_m2"][5] = np.nan  # nor a value that could not be read
    rows = device_trace(descriptors, ok)
    assert [row["device parameter"] for row in rows] == ["id_m1", "vth_m2"]
    keep = np.arange(N) >= 4
    expected = stats.pearsonr(descriptors["id_m1"][keep], descriptors["midpoint"][keep])
    assert rows[0]["r with midpoint"] == pytest.approx(expected.statistic, rel=1e-12)
    assert rows[0]["n"] == N - 4 and rows[1]["n"] == N - 5
    assert rows[0]["mean"] == pytest.approx(np.mean(descriptors["id_m1"][keep]))
    assert rows[0]["unit"] == "A" and rows[1]["unit"] == "V"


def test_what_cannot_be_computed_says_why() -> None:
    descriptors = {"midpoint": np.arange(5.0), "gm_m1": np.full(5, 2.0), "ic_q1": np.arange(5.0)}
    rows = {row["device parameter"]: row for row in device_trace(descriptors, np.ones(5, bool))}
    assert rows["gm_m1"]["r with midpoint"] == "n/a: gm_m1 is the same in every instance"
    assert rows["gm_m1"]["ci low"] is None
    two = np.array([True, True, False, False, False])
    rows = device_trace(descriptors, two)
    assert rows[0]["r with midpoint"] == "n/a: 2 usable instances (3 needed)"
    with pytest.raises(ConfigError, match="descriptor 'offset' is not in this family"):
        device_trace(descriptors, np.ones(5, bool), "offset")
    assert device_parameters({"midpoint": 0, "max_slope": 0, "vth_xmn": 0, "beta_m1": 0}) == [
        "vth_xmn"
    ]


def test_a_bipolar_pair_midpoint_traces_to_its_collector_currents(tmp_path) -> None:
    """Only the saturation currents vary (IS·(1+dis1), IS·(1+dis2)): the midpoint is
    V_T·ln(IS2/IS1)-like, Q1's collector current at zero input α·itail·IS1/(IS1+IS2) falls as
    it rises (r near −1) and Q2's rises; the base-emitter voltage, shared by both and set by
    IS1+IS2, is uncorrelated with their ratio (its 99.9 % interval holds 0)."""
    data = spec_data("bjt_diffpair", builtin_folder())
    data["variation"] = {name: data["variation"][name] for name in ("dis1", "dis2")}
    spec = build_spec(data, builtin_folder())
    family = extract_family(spec, n=60, seed=5, options=options(chunk_size=30))
    rows = {row["device parameter"]: row for row in family.device_trace("midpoint")}
    assert rows["ic_q1"]["ci high"] < -0.9
    assert rows["ic_q2"]["ci low"] > 0.9
    shared = family.device_trace("midpoint", confidence=0.999)
    vbe = next(row for row in shared if row["device parameter"] == "vbe_q1")
    assert vbe["ci low"] < 0 < vbe["ci high"]
