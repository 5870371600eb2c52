"""Descriptors of transfer curves against closed forms on analytic curves."""

from __future__ import annotations

import numpy as np
import pytest

from circuitnn.family import Family
from circuitnn.family.descriptors import describe, midpoints, slopes

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
