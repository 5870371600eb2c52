"""Descriptors of transfer curves against closed forms on analytic curves."""

from __future__ import annotations

import numpy as np
import pytest

from circuitnn.family import Family
from circuitnn.family.descriptors import (
    DESCRIPTOR_UNITS,
    describe,
    descriptor_unit,
    hysteresis,
    midpoints,
    slopes,
)

GRID = np.linspace(-1.0, 1.0, 801)
STEP = GRID[1] - GRID[0]


def tanh_curve(amplitude: float, center: float, width: float, offset: float) -> np.ndarray:
    return amplitude * np.tanh((GRID - center) / width) + offset


@pytest.mark.parametrize(
    ("amplitude", "center", "width", "offset"),
    [
        (1.0, 0.0, 0.1, 0.0),
        (0.8, 0.137, 0.05, 0.9),  # off-centre, off-grid midpoint, shifted output
        (2.5e-4, -0.31, 0.2, -1e-3),  # a current-sized output
        (-1.2, 0.05, 0.08, 0.3),  # falling (an inverter)
    ],
)
def test_tanh_descriptors(amplitude: float, center: float, width: float, offset: float) -> None:
    curve = tanh_curve(amplitude, center, width, offset)
    d = describe(GRID, curve[None, :])
    # midpoint: where the curve is halfway between its extremes. The extremes are the end
    # points; halfway is amplitude·tanh(a) + offset with a solving tanh(a) = mean of the ends.
    ends = np.tanh((GRID[[0, -1]] - center) / width)
    expected_mid = center + width * np.arctanh(ends.mean())
    # linear interpolation between grid points: error ≤ h²/8 · |y''| / |y'| (tiny near the centre)
    assert d["midpoint"][0] == pytest.approx(expected_mid, abs=1e-6)
    # gain: slope at the midpoint, (amplitude/width)·sech²; second-order differences err by
    # about h²·|y'''|/6 = (h/width)²/3 relative
    sech2 = 1 - np.tanh((expected_mid - center) / width) ** 2
    relative = 2 * (STEP / width) ** 2
    assert d["gain"][0] == pytest.approx(amplitude / width * sech2, rel=relative)
    assert d["max_slope"][0] == pytest.approx(abs(amplitude) / width, rel=relative)
    assert d["swing"][0] == pytest.approx(abs(amplitude) * (ends.max() - ends.min()), rel=1e-12)
    assert d["monotonic"][0] == 1
    assert "mean_power" not in d


def test_linear_and_relu_closed_forms() -> None:
    linear = 0.3 * GRID + 0.1
    relu = np.maximum(GRID, 0.0)
    d = describe(GRID, np.stack([linear, relu]))
    assert d["midpoint"][0] == pytest.approx(0.0, abs=1e-12)  # (min+max)/2 = 0.1 at x = 0
    assert d["gain"][0] == pytest.approx(0.3, rel=1e-9)
    assert d["swing"][0] == pytest.approx(0.6, rel=1e-12)
    assert d["midpoint"][1] == pytest.approx(0.5, abs=1e-12)  # relu reaches 0.5 at x = 0.5
    assert d["gain"][1] == pytest.approx(1.0, rel=1e-9)
    assert d["swing"][1] == pytest.approx(1.0, rel=1e-12)
    np.testing.assert_array_equal(d["monotonic"], [1, 1])


def test_non_monotonic_flat_and_failed_curves() -> None:
    bump = np.exp(-(GRID**2) / 0.1)
    wiggle = GRID + 0.05 * np.sin(40 * GRID)  # rising on the whole, but steps back down
    flat = np.full_like(GRID, 0.7)
    failed = np.full_like(GRID, np.nan)
    noisy_rising = GRID + 1e-9 * np.sin(400 * GRID)  # wiggles below 1e-6 of the swing
    d = describe(GRID, np.stack([bump, wiggle, flat, failed, noisy_rising]))
    np.testing.assert_array_equal(d["monotonic"][:3], [0, 0, 1])
    assert np.isnan(d["monotonic"][3])
    assert d["monotonic"][4] == 1
    assert np.isnan(d["midpoint"][2])  # a flat curve has no midpoint
    assert np.isnan(d["gain"][2])
    assert d["swing"][2] == 0
    for name in ("swing", "midpoint", "gain", "max_slope"):
        assert np.isnan(d[name][3]), name
    # 1 + 0.05·40·cos: central differences shrink the sine's slope by (40h)²/6 relative,
    # and the nearest grid point may sit a little off a peak
    assert d["max_slope"][1] == pytest.approx(1 + 2 * (1 - (40 * STEP) ** 2 / 6), abs=3e-3)


def test_monotonic_ignores_steps_back_below_a_millionth_of_the_swing_at_any_scale() -> None:
    """The tolerance is relative to each curve's own swing: on a 100 µA current output a step
    back of 1e-5 of the swing breaks monotonicity and one of 1e-7 does not, exactly as on the
    same curves scaled to 1 V; rising and falling curves side by side are each monotonic."""
    ramp = 1e-4 * (GRID + 1) / 2  # 0 … 100 µA
    curves = [ramp, ramp[::-1]]
    for fraction in (1e-5, 1e-7):
        stepped = ramp.copy()
        stepped[400] = stepped[399] - fraction * 1e-4
        curves.append(stepped)
    for scale in (1.0, 1e4):
        d = describe(GRID, scale * np.stack(curves))
        np.testing.assert_array_equal(d["monotonic"], [1, 1, 0, 1])


def test_descriptors_are_floats_whatever_the_curves_type() -> None:
    """Integer-valued curves (a list of ints) give float64 descriptors (NaN-capable, as the
    store keeps them), equal to those of the same curves as floats."""
    grid = np.arange(4.0)
    ints = [[0, 1, 2, 3], [3, 2, 1, 0], [0, 1, 3, 4]]
    d = describe(grid, ints, power=np.ones((3, 4)))
    expected = describe(grid, np.array(ints, dtype=np.float64), power=np.ones((3, 4)))
    for name, values in d.items():
        assert values.dtype == np.float64, name
        np.testing.assert_array_equal(values, expected[name], name)
    np.testing.assert_array_equal(d["midpoint"], [1.5, 1.5, 1.5])


def test_vectorised_rows_equal_single_rows_and_mean_power() -> None:
    rng = np.random.default_rng(5)
    centers = rng.uniform(-0.5, 0.5, 20)
    curves = np.tanh((GRID[None, :] - centers[:, None]) / 0.1)
    power = rng.uniform(1e-6, 2e-6, (20, len(GRID)))
    together = describe(GRID, curves, power)
    np.testing.assert_allclose(together["mean_power"], power.mean(axis=1), rtol=1e-12)
    for k in range(20):
        alone = describe(GRID, curves[k : k + 1], power[k : k + 1])
        for name, values in together.items():
            assert values[k] == alone[name][0], name
    np.testing.assert_allclose(midpoints(GRID, curves), together["midpoint"])
    np.testing.assert_allclose(
        slopes(GRID, curves)[:, 400], 10 / np.cosh(-centers / 0.1) ** 2, rtol=1e-3
    )


def test_family_summary_skips_failed_instances() -> None:
    curves = np.stack([np.tanh((GRID - c) / 0.1) for c in (0.0, 0.1, 0.2)] + [GRID * np.nan])
    family = Family(
        key="k",
        neuron="n",
        grid=GRID,
        curves=curves,
        nominal_curve=curves[0],
        supply_current=np.zeros((4, 0, len(GRID))),
        supplies=(),
        input_current=np.zeros((4, 1, len(GRID))),
        power=np.zeros((4, len(GRID))),
        parameter_names=("c",),
        parameters=np.array([[0.0], [0.1], [0.2], [0.3]]),
        chip=np.arange(4),
        status=np.array([1, 1, 1, 2], dtype=np.int8),
        reasons=["", "", "", "did not converge"],
        descriptors=describe(GRID, curves),
        output_unit="V",
    )
    summary = family.summary()["midpoint"]
    assert summary["mean"] == pytest.approx(0.1, abs=1e-6)
    assert summary["std"] == pytest.approx(0.1, abs=1e-6)
    assert summary["min"] == pytest.approx(0.0, abs=1e-6)
    assert summary["max"] == pytest.approx(0.2, abs=1e-6)
    np.testing.assert_array_equal(family.failed, [3])
    np.testing.assert_array_equal(family.parameter("c"), [0.0, 0.1, 0.2, 0.3])


def _schmitt(grid: np.ndarray, threshold: float, width: float, sign: float = 1.0) -> np.ndarray:
    """A tanh step at ``threshold`` (V), rising (sign 1) or falling (sign -1), from 0.2 to 1.0."""
    return 0.6 + 0.4 * sign * np.tanh((grid - threshold) / width)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_hysteresis_width_is_the_distance_between_the_branches_thresholds(sign: float) -> None:
    """Up branch switching at +a, down branch at -b: the window is a + b, per row, for rising
    and falling (inverting) circuits, on a non-uniform grid; equal branches give 0. Near a tanh
    step's centre the curve is straight to third order, so linear interpolation is exact to
    well under 1e-6 V."""
    grid = np.concatenate([np.linspace(-1.0, 0.0, 301)[:-1], np.linspace(0.0, 1.0, 517)])
    edges = [(0.1234, 0.0871), (0.3, 0.3), (-0.05, 0.25)]  # (a, b): up at +a, down at -b
    up = np.stack([_schmitt(grid, a, 0.05, sign) for a, _ in edges] + [_schmitt(grid, 0.2, 0.05)])
    down = np.stack([_schmitt(grid, -b, 0.05, sign) for _, b in edges] + [up[-1]])
    width = hysteresis(grid, up, down)
    np.testing.assert_allclose(width, [a + b for a, b in edges] + [0.0], atol=1e-6)
    assert width[-1] == 0.0  # the same curve both ways: no window at all


def test_hysteresis_level_is_halfway_between_both_branches_extremes() -> None:
    """The middle level is halfway between the lowest and highest output of both branches: an up
    branch from 0.2 to 0.8 and a down branch from 0.2 to 1.0 give the level 0.6, which the up
    branch crosses at a + w·artanh(1/3) and the down branch at its centre, -b (linear
    interpolation off the tanh centre errs by about h²/8·|y''/y'| ≈ 1e-5 V)."""
    grid = np.linspace(-1.0, 1.0, 801)
    a, b, w = 0.3, 0.2, 0.05
    up = 0.5 + 0.3 * np.tanh((grid - a) / w)
    down = _schmitt(grid, -b, w)
    expected = a + w * np.arctanh(1 / 3) + b
    assert hysteresis(grid, up[None], down[None])[0] == pytest.approx(expected, abs=2e-5)
    # the same with the branches' roles swapped in level: a down branch from 0.2 to 0.8
    up, down = _schmitt(grid, a, w), 0.5 + 0.3 * np.tanh((grid + b) / w)
    expected = a + b - w * np.arctanh(1 / 3)
    assert hysteresis(grid, up[None], down[None])[0] == pytest.approx(expected, abs=2e-5)


def test_hysteresis_of_flat_failed_and_never_crossing_instances_is_nan() -> None:
    grid = np.linspace(-1.0, 1.0, 201)
    step = _schmitt(grid, 0.0, 0.05)
    flat = np.full_like(grid, 0.4)
    failed = np.full_like(grid, np.nan)
    up = np.stack([flat, failed, flat, step])
    down = np.stack([flat, failed, step, step])
    width = hysteresis(grid, up, down)
    assert np.all(np.isnan(width[:3])), width  # flat; failed; up branch never reaches the level
    assert width[3] == 0.0
    single = hysteresis(grid, step, step)  # one instance as 1-D curves
    np.testing.assert_array_equal(single, [0.0])


def test_descriptor_units_of_curve_descriptors_and_realized_device_parameters() -> None:
    """A curve descriptor's unit from its table; a realized device parameter
    ``<quantity>_<device>`` takes its quantity's unit (V, A, S); anything else has none ("")."""
    for name, unit in DESCRIPTOR_UNITS.items():
        assert descriptor_unit(name) == unit
    assert descriptor_unit("max_slope") == "output unit / V"  # an underscore, but a descriptor
    assert descriptor_unit("vth_M1") == "V"
    assert descriptor_unit("id_m_tail") == "A"  # the device's own name may hold underscores
    assert descriptor_unit("gm_Q2") == "S"
    for unknown in ("vth", "gm", "offset", "beta_M1", "M1_vth", ""):
        assert descriptor_unit(unknown) == "", unknown
