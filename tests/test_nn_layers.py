"""CircuitActivation: interpolation, extrapolation, scaling, modes, chips, dtypes, devices."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import warnings

import numpy as np
import pytest
import torch
from scipy import stats

from circuitnn.errors import ConfigError
from circuitnn.nn import CircuitActivation, FamilyTables, Scaling, _deprecated, synthetic_family
from circuitnn.nn.fit import FORMS, choose_form, evaluate_fit, fit_curves
from circuitnn.nn.interp import lookup, neuron_offsets, segment_table
from circuitnn.store import Store

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="module")
def tanh_family():
    return synthetic_family("tanh", n=120, seed=3, points=101, gain_spread=0.2, failed=4)


def knots(activation: CircuitActivation) -> torch.Tensor:
    """The family grid in network units, (K,) float64."""
    return torch.as_tensor(activation.tables.network_grid)


def test_exact_at_grid_points_and_linear_between(tanh_family):
    act = CircuitActivation(tanh_family, 8, generator=1).double()
    grid = knots(act)
    u = grid[:, None].expand(-1, 8)
    y = act(u)
    expected = act.scaling.to_network_output(tanh_family.curves[act.chip.numpy()]).T
    np.testing.assert_allclose(y.numpy(), expected, rtol=0, atol=1e-12)
    # Between grid points the layer is the straight line between the neighbouring values.
    fraction = torch.rand(
        len(grid) - 1, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    between = grid[:-1, None] + fraction * (grid[1:] - grid[:-1])[:, None]
    line = y[:-1] + fraction * (y[1:] - y[:-1])
    torch.testing.assert_close(act(between), line, rtol=0, atol=1e-12)


def test_chip_curves_are_family_instances(tanh_family):
    act = CircuitActivation(tanh_family, 16, generator=2).double()
    np.testing.assert_allclose(act.chip_curves(), tanh_family.curves[act.chip.numpy()], atol=1e-12)
    assert len(set(act.chip.tolist())) == 16, "drawn without replacement"
    assert np.all(tanh_family.status[act.chip.numpy()] == 1), "failed instances never drawn"


def test_large_layer_draws_with_replacement_uniformly_over_the_ok_instances(tanh_family):
    """A layer wider than the family draws with replacement: every usable instance equally
    likely (χ² test of the counts, false-alarm rate 0.1 %), every one drawn, no failed one."""
    usable = np.flatnonzero(tanh_family.ok)
    per_instance = 40
    act = CircuitActivation(tanh_family, per_instance * len(usable), generator=0)
    counts = np.bincount(act.chip.numpy(), minlength=tanh_family.n)
    assert counts[~tanh_family.ok].sum() == 0, "failed instances never drawn"
    assert (counts[usable] > 0).all(), "every usable instance drawn"
    assert stats.chisquare(counts[usable]).pvalue > 1e-3, counts[usable]


@pytest.mark.parametrize("extrapolation", ["linear", "clamp"])
def test_extrapolation(tanh_family, extrapolation):
    act = CircuitActivation(tanh_family, 4, generator=0, extrapolation=extrapolation).double()
    grid = knots(act)
    step = float(grid[1] - grid[0])
    values = act(grid[:, None].expand(-1, 4))
    far = torch.tensor([grid[0] - 7.3 * step, grid[-1] + 5.1 * step], dtype=torch.float64)
    x = far[:, None].expand(-1, 4).clone().requires_grad_(True)
    y = act(x)
    y.sum().backward()
    if extrapolation == "clamp":
        torch.testing.assert_close(y[0], values[0], rtol=0, atol=1e-12)
        torch.testing.assert_close(y[1], values[-1], rtol=0, atol=1e-12)
        assert torch.all(x.grad == 0)
    else:
        first = (values[1] - values[0]) / step
        last = (values[-1] - values[-2]) / step
        torch.testing.assert_close(y[0], values[0] - 7.3 * step * first, rtol=0, atol=1e-10)
        torch.testing.assert_close(y[1], values[-1] + 5.1 * step * last, rtol=0, atol=1e-10)
        torch.testing.assert_close(x.grad[0], first, rtol=0, atol=1e-10)
        torch.testing.assert_close(x.grad[1], last, rtol=0, atol=1e-10)


def test_extrapolation_is_settable(tanh_family):
    act = CircuitActivation(tanh_family, 4, generator=0).double()
    x = torch.full((1, 4), 1e3, dtype=torch.float64)
    linear = act(x)
    act.extrapolation = "clamp"
    assert not torch.equal(act(x), linear)
    with pytest.raises(ConfigError, match="extrapolation"):
        act.extrapolation = "cubic"


def off_knot_inputs(activation: CircuitActivation, shape: tuple[int, ...]) -> torch.Tensor:
    """Inputs inside segments (never within 20 % of a step of a grid point), some off the grid."""
    grid = knots(activation)
    generator = torch.Generator().manual_seed(1)
    segment = torch.randint(-3, len(grid) + 2, shape, generator=generator)
    fraction = 0.2 + 0.6 * torch.rand(shape, generator=generator, dtype=torch.float64)
    step = grid[1] - grid[0]
    return (grid[0] + (segment + fraction) * step).requires_grad_(True)


@pytest.mark.parametrize("mode", ["sampled", "nominal", "fitted"])
@pytest.mark.parametrize("extrapolation", ["linear", "clamp"])
def test_gradcheck(tanh_family, mode, extrapolation):
    act = CircuitActivation(
        tanh_family, 6, generator=0, mode=mode, extrapolation=extrapolation
    ).double()
    x = off_knot_inputs(act, (5, 6))
    assert torch.autograd.gradcheck(act, (x,), eps=1e-7, atol=1e-6)
    assert torch.autograd.gradgradcheck(act, (x,), eps=1e-7, atol=1e-6)


def test_conv_shape_broadcasts_per_channel(tanh_family):
    act = CircuitActivation(tanh_family, (3, 1, 1), generator=0).double()
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    y = act(x)
    for channel in range(3):
        single = CircuitActivation(tanh_family, 1, generator=0).double()
        single.set_chip(torch.as_tensor([_pool_position(act, channel)]))
        torch.testing.assert_close(y[:, channel], single(x[:, channel, :, :, None])[..., 0])
    with pytest.raises(ConfigError, match="shape"):
        act(torch.randn(2, 4, 4, 5, dtype=torch.float64))


def _pool_position(act: CircuitActivation, neuron: int) -> int:
    return int(np.flatnonzero(act.tables.instances == int(act.chip[neuron]))[0])


def test_nominal_mode_is_homogeneous_and_scaled(tanh_family):
    act = CircuitActivation(tanh_family, 5, generator=0, mode="nominal").double()
    u = torch.linspace(-2, 2, 41, dtype=torch.float64)
    y = act(u[:, None].expand(-1, 5))
    assert torch.all(y == y[:, :1])
    # midpoint scaling turns the nominal A·tanh(g·x) into ≈ tanh(u): slope 1 and range ±1.
    np.testing.assert_allclose(y[:, 0].numpy(), np.tanh(u.numpy()), atol=2e-3)


def test_fitted_mode_matches_the_sampled_curves(tanh_family):
    act = CircuitActivation(tanh_family, 32, generator=0).double()
    u = torch.linspace(-2.5, 2.5, 101, dtype=torch.float64)[:, None].expand(-1, 32)
    sampled = act(u)
    act.mode = "fitted"
    assert act.fit_form == "tanh"
    assert (act(u) - sampled).abs().max() < 2e-3
    soft = synthetic_family("softplus", n=50, seed=1)
    relu = CircuitActivation(soft, 8, scaling="knee", mode="fitted", generator=0).double()
    assert relu.fit_form == "softplus"
    x = torch.linspace(-1, 2, 31, dtype=torch.float64)[:, None].expand(-1, 8)
    relu_sampled = relu(x)
    relu.mode = "sampled"
    assert (relu(x) - relu_sampled).abs().max() < 5e-3


# (a, b, c, d) of exact curves of each form: rising and falling, sharp and soft, shifted
TANH_ROWS = np.array([(1.0, 2.0, 0.3, 0.1), (-0.8, 5.0, -0.5, 0.0), (0.5, 0.7, 1.0, -0.2)])
SOFTPLUS_ROWS = np.array([(1.0, 4.0, 0.2, 0.0), (-0.5, 2.0, -1.0, 0.3), (2.0, 10.0, 0.5, -0.1)])


def _form_curves(form: str, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    """The documented forms, written out in numpy: a·tanh(b·(u - c)) + d and
    a·softplus(b·(u - c))/b + d, one row per (a, b, c, d)."""
    a, b, c, d = (rows[:, i : i + 1] for i in range(4))
    if form == "tanh":
        return a * np.tanh(b * (u - c)) + d
    return a * np.logaddexp(0.0, b * (u - c)) / b + d


def test_fit_curves_recovers_the_parameters_of_exact_curves_of_either_form():
    """``fit_curves`` gives each row's (a, log b, c, d): exact curves of the form come back with
    their own parameters and a zero RMS residual, within 20 iterations; a curve of the other
    form gets the RMS of what its fit leaves (computed again from ``evaluate_fit``); one curve
    may be given as a 1-D array; an unknown form is refused."""
    u = np.linspace(-3.0, 3.0, 121)
    for form, rows in (("tanh", TANH_ROWS), ("softplus", SOFTPLUS_ROWS)):
        curves = _form_curves(form, rows, u)
        params, rms = fit_curves(form, u, curves, iterations=20)
        assert params.shape == (3, 4) and rms.shape == (3,)
        found = np.column_stack([params[:, 0], np.exp(params[:, 1]), params[:, 2:]])
        np.testing.assert_allclose(found, rows, rtol=0, atol=1e-9)
        assert rms.max() < 1e-12
        single, single_rms = fit_curves(form, u, curves[1])
        np.testing.assert_allclose(single[0], params[1], rtol=0, atol=1e-9)
        assert single_rms.shape == (1,)
        # float32 samples are fitted in float64: exactly as their float64 values
        rounded = curves.astype(np.float32)
        as32 = fit_curves(form, u.astype(np.float32), rounded, iterations=20)
        as64 = fit_curves(
            form, u.astype(np.float32).astype(np.float64), rounded.astype(np.float64), iterations=20
        )
        assert all(
            np.array_equal(x, y) and x.dtype == np.float64 for x, y in zip(as32, as64, strict=True)
        )
    other = _form_curves("softplus", SOFTPLUS_ROWS, u)
    params, rms = fit_curves("tanh", u, other)
    fitted = evaluate_fit("tanh", torch.as_tensor(params), torch.as_tensor(u)[:, None]).numpy()
    np.testing.assert_allclose(rms, np.sqrt(np.mean((fitted.T - other) ** 2, axis=1)), rtol=1e-9)
    assert rms.min() > 1e-3
    with pytest.raises(ConfigError, match=r"^fit form must be one of \('tanh', 'softplus'\), "):
        fit_curves("cubic", u, other)


def test_fit_curves_refuses_a_grid_it_cannot_fit_on():
    """A grid that is not 1-D with at least 2 inputs, finite and strictly increasing, or that
    does not match the curves' points, is a ConfigError naming what is wrong (an all-equal grid
    raised ZeroDivisionError in the initial guess)."""
    u = np.linspace(-3.0, 3.0, 7)
    curves = np.tanh(u)[None, :]
    for bad, span, index in (
        (np.zeros(7), "0 to 0", 1),
        (u[::-1].copy(), "3 to -3", 1),
        (np.r_[u[:3], np.nan, u[4:]], "-3 to 3", 3),
        (np.r_[u[:3], np.inf, u[4:]], "-3 to 3", 3),  # inf - u[2] > 0: still the input named
    ):
        for form in FORMS:
            with pytest.raises(ConfigError) as refused:
                fit_curves(form, bad, curves)
            assert str(refused.value) == (
                "a fit needs a finite, strictly increasing grid, got 7 inputs from "
                f"{span} (not increasing at input {index})"
            )
    with pytest.raises(ConfigError, match=r"at least 2 inputs, got shape \(1,\)$"):
        fit_curves("tanh", u[:1], curves[:, :1])
    with pytest.raises(ConfigError, match=r"^curves have 6 points but the grid has 7$"):
        fit_curves("tanh", u, curves[:, :6])
    with pytest.raises(ConfigError, match=r"strictly increasing"):
        choose_form(np.ones(7), np.tanh(u))


def test_choose_form_and_evaluate_fit_follow_the_documented_forms():
    """``choose_form`` picks tanh for a tanh and for a logistic (0.5 + 0.5·tanh(x/2)), softplus
    for a softplus; ``evaluate_fit`` is the form at (a, log b, c, d), its parameter index last,
    broadcasting per neuron against ``u``, with the form's derivative in ``u``."""
    u = np.linspace(-3.0, 3.0, 121)
    assert choose_form(u, _form_curves("tanh", TANH_ROWS, u)[1]) == "tanh"
    assert choose_form(u, 1.0 / (1.0 + np.exp(-3.0 * u))) == "tanh"
    assert choose_form(u, _form_curves("softplus", SOFTPLUS_ROWS, u)[0]) == "softplus"
    grid = torch.linspace(-3.0, 3.0, 61, dtype=torch.float64)[:, None].expand(-1, 3)
    for form, rows in (("tanh", TANH_ROWS), ("softplus", SOFTPLUS_ROWS)):
        params = torch.as_tensor(rows).clone()
        params[:, 1] = params[:, 1].log()
        x = grid.clone().requires_grad_()
        y = evaluate_fit(form, params, x)
        assert y.shape == (61, 3)
        expected = _form_curves(form, rows, grid[:, 0].numpy())
        # torch's softplus is linear past b·(u - c) = 20: exp(-20)·a/b off, at most ~4e-10 here
        np.testing.assert_allclose(y.detach().numpy().T, expected, rtol=0, atol=1e-9)
        (slope,) = torch.autograd.grad(y.sum(), x)
        a, b, c = (torch.as_tensor(rows[:, i]) for i in range(3))
        z = b * (grid - c)
        derivative = a * b * (1 - z.tanh() ** 2) if form == "tanh" else a * torch.sigmoid(z)
        torch.testing.assert_close(slope, derivative, rtol=0, atol=1e-8)  # (and slope 1 there)
    # per-channel parameters (channels, 1, 1, 4), as a conv layer holds them, on (B, C, H, W)
    params = torch.as_tensor(TANH_ROWS).clone()[:, None, None, :]
    params[..., 1] = params[..., 1].log()
    x = torch.linspace(-3.0, 3.0, 40, dtype=torch.float64).reshape(2, 1, 4, 5).expand(2, 3, 4, 5)
    expected = _form_curves("tanh", TANH_ROWS, x.transpose(0, 1).reshape(3, -1).numpy())
    y = evaluate_fit("tanh", params, x).transpose(0, 1).reshape(3, -1).numpy()
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-12)


def test_fit_starts_from_the_amplitude_offset_centre_and_slope_read_off_each_curve():
    """With no iterations ``fit_curves`` gives its starting guess and that guess's RMS residual.
    On curves that level off within the grid the guess is already the curve's own parameters:
    for tanh, a = ± half the range (the sign from the ends), d = the middle, c = the grid input
    nearest the middle crossing, b = the steepest slope over |a| (a central difference: within
    1 %); for softplus, d = the flat end, a = the slope at the right end and c where that line
    meets the floor. A curve flat at its right end still gets a finite softplus fit."""
    u = np.linspace(-8.0, 8.0, 321)  # step 0.05 V; every centre below is a grid point
    tanh_rows = np.array([(1.0, 3.0, 0.3, 0.1), (-0.8, 2.0, -0.5, 0.2), (0.5, 0.8, 1.0, -0.3)])
    softplus_rows = np.array([(1.0, 4.0, 0.5, 0.2), (-2.0, 5.0, -0.5, -0.1), (0.4, 3.0, 1.0, 0.0)])
    for form, rows in (("tanh", tanh_rows), ("softplus", softplus_rows)):
        curves = _form_curves(form, rows, u)
        start, rms = fit_curves(form, u, curves, iterations=0)
        begun = evaluate_fit(form, torch.as_tensor(start), torch.as_tensor(u)[:, None]).numpy()
        np.testing.assert_allclose(rms, np.sqrt(np.mean((begun.T - curves) ** 2, axis=1)))
        assert rms.shape == (3,) and rms.min() > 0
        a, b, c, d = start[:, 0], np.exp(start[:, 1]), start[:, 2], start[:, 3]
        np.testing.assert_allclose(a, rows[:, 0], rtol=0, atol=1e-4)
        np.testing.assert_allclose(c, rows[:, 2], rtol=0, atol=1e-4)
        np.testing.assert_allclose(d, rows[:, 3], rtol=0, atol=1e-4)
        if form == "tanh":
            np.testing.assert_allclose(b, rows[:, 1], rtol=0.01)
    # the direction comes from the two ends: a ripple at the start does not flip it
    ripple = 0.01 * np.sign(tanh_rows[:, :1]) * np.cos(np.pi * np.arange(321)) * (u < -7.0)
    rippled = _form_curves("tanh", tanh_rows, u) + ripple
    assert np.all(np.diff(rippled[:, :2]) * tanh_rows[:, :1] < 0)  # first step goes the wrong way
    start = fit_curves("tanh", u, rippled, iterations=0)[0]
    assert np.array_equal(np.sign(start[:, 0]), np.sign(tanh_rows[:, 0]))
    flat_right = _form_curves("tanh", tanh_rows[:2], u)
    assert np.all(np.abs(flat_right[:, -1] - flat_right[:, -2]) < 1e-12 * 0.05)
    params, rms = fit_curves("softplus", u, flat_right)
    assert np.isfinite(params).all() and np.isfinite(rms).all()


def test_fit_only_takes_steps_that_lower_the_error_and_ends_at_a_least_squares_minimum():
    """Each row's RMS residual never rises with more iterations (a step is kept only when it
    lowers that row's error), and the fit ends where the error's gradient in (a, log b, c, d)
    vanishes (central differences of the written-out form), for curves of the other form and
    for noisy curves of the same form."""
    u = np.linspace(-3.0, 3.0, 121)
    noise = np.random.default_rng(0).normal(0.0, 0.01, (3, 121))
    cases = (
        ("tanh", _form_curves("softplus", SOFTPLUS_ROWS, u)),
        ("tanh", _form_curves("tanh", TANH_ROWS, u) + noise),
        ("softplus", _form_curves("softplus", SOFTPLUS_ROWS, u) + noise),
    )
    for form, curves in cases:
        previous = fit_curves(form, u, curves, iterations=0)[1]
        for iterations in range(1, 30):
            rms = fit_curves(form, u, curves, iterations=iterations)[1]
            assert np.all(rms <= previous), (form, iterations)
            previous = rms
        params, rms = fit_curves(form, u, curves)
        at_fit = _squared_error(form, params, u, curves)
        np.testing.assert_allclose(rms, np.sqrt(at_fit / 121), rtol=1e-12)
        for i in range(4):
            step = np.zeros(4)
            step[i] = 1e-6
            up, down = (_squared_error(form, params + s, u, curves) for s in (step, -step))
            gradient = (up - down) / 2e-6
            assert np.all(np.abs(gradient) < 1e-6 * at_fit), (form, i, gradient)


def _squared_error(form: str, params: np.ndarray, u: np.ndarray, curves: np.ndarray) -> np.ndarray:
    """Each row's summed squared error of the written-out form at (a, log b, c, d)."""
    rows = np.column_stack([params[:, 0], np.exp(params[:, 1]), params[:, 2:]])
    return np.sum((_form_curves(form, rows, u) - curves) ** 2, axis=1)


def test_fit_jacobian_is_the_derivative_of_the_fitted_values():
    """The Jacobian the Levenberg–Marquardt steps use is the derivative of the form's values in
    (a, log b, c, d) (central differences), for both forms, rising and falling rows."""
    from circuitnn.nn.fit import _evaluate

    u = np.linspace(-2.0, 2.0, 41)
    for form, rows in (("tanh", TANH_ROWS), ("softplus", SOFTPLUS_ROWS)):
        p = np.column_stack([rows[:, 0], np.log(rows[:, 1]), rows[:, 2:]])
        values, jacobian = _evaluate(form, p, u)
        np.testing.assert_allclose(values, _form_curves(form, rows, u), rtol=0, atol=1e-12)
        assert jacobian.shape == (3, 41, 4)
        for i in range(4):
            step = np.zeros(4)
            step[i] = 1e-6
            difference = (_evaluate(form, p + step, u)[0] - _evaluate(form, p - step, u)[0]) / 2e-6
            np.testing.assert_allclose(jacobian[..., i], difference, rtol=0, atol=1e-7)


def test_scaling_is_shared_and_preserves_inhomogeneity():
    family = synthetic_family(
        "tanh", n=400, seed=0, amplitude_spread=0.1, gain_spread=0.0, offset_spread=0.0
    )
    a = CircuitActivation(family, 50, generator=0, extrapolation="clamp")
    b = CircuitActivation(family, 50, generator=1)
    assert a.scaling == b.scaling
    # Saturated outputs in network units are the instances' amplitudes over the nominal's.
    top = a(torch.full((1, 50), 50.0))[0].double().numpy()
    amplitudes = family.parameter("amplitude")[a.chip.numpy()] / 0.5
    np.testing.assert_allclose(top, amplitudes, rtol=1e-6)
    assert np.std(top) > 0.05


def test_scaling_anchors_and_falling_curves():
    grid = np.linspace(0, 1.8, 181)
    inverter = 1.8 / (1 + np.exp(20 * (grid - 0.9)))
    scaling = Scaling.from_nominal(grid, inverter)
    assert scaling.output_scale < 0
    assert scaling.input_offset == pytest.approx(0.9, abs=1e-9)
    rising = scaling.to_network_output(inverter)
    assert rising[-1] > rising[0]
    assert np.max(np.gradient(rising, scaling.to_network_input(grid))) == pytest.approx(1, rel=1e-9)
    relu = np.maximum(grid - 0.6, 0)
    knee = Scaling.from_nominal(grid, relu, anchor="knee")
    assert knee.input_offset == pytest.approx(0.6, abs=1e-9)
    assert knee.to_network_output(0.0) == pytest.approx(0.0)
    with pytest.raises(ConfigError, match="anchor"):
        Scaling.from_nominal(grid, relu, anchor="middle")
    with pytest.raises(ConfigError, match="flat"):
        Scaling.from_nominal(grid, np.zeros_like(grid))
    with pytest.raises(ConfigError, match="input_scale"):
        Scaling(0.0, -1.0, 0.0, 1.0)


def test_state_dict_round_trip_keeps_the_chip_and_resample_changes_it(tanh_family, tmp_path):
    act = CircuitActivation(tanh_family, 10, generator=5)
    x = torch.randn(7, 10)
    before = act(x)
    torch.save(act.state_dict(), tmp_path / "act.pt")
    other = CircuitActivation(tanh_family, 10, generator=6)
    assert not torch.equal(other.chip, act.chip)
    other.load_state_dict(torch.load(tmp_path / "act.pt", weights_only=True))
    assert torch.equal(other.chip, act.chip)
    torch.testing.assert_close(other(x), before, rtol=0, atol=0)
    assert set(act.state_dict()) == {
        "chip",
        "table",
        "nominal_curve",
        "sigma_table",
        "nominal_sigma",
        "identity",
    }
    chip = act.chip.clone()
    act.resample(torch.Generator().manual_seed(99))
    assert not torch.equal(act.chip, chip)
    assert not torch.equal(act(x), before)
    act.resample(5)
    assert torch.equal(act.chip, chip), "the same seed draws the same chip"
    torch.testing.assert_close(act(x), before, rtol=0, atol=0)


def test_state_dict_round_trip_in_fitted_mode(tanh_family):
    act = CircuitActivation(tanh_family, 6, generator=1, mode="fitted").double()
    other = CircuitActivation(tanh_family, 6, generator=2, mode="fitted").double()
    other.load_state_dict(act.state_dict())
    x = torch.randn(3, 6, dtype=torch.float64)
    torch.testing.assert_close(other(x), act(x))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_devices_and_dtypes(tanh_family, device, dtype):
    act = CircuitActivation(tanh_family, 12, generator=0).to(device=device, dtype=dtype)
    reference = CircuitActivation(tanh_family, 12, generator=0).double()
    x = torch.randn(9, 12, dtype=torch.float64)
    y = act(x.to(device=device, dtype=dtype))
    assert y.dtype == dtype and y.device.type == device
    tolerance = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(y.double().cpu(), reference(x), rtol=0, atol=tolerance)
    act.resample(3)
    assert act.table.device.type == device


def test_a_move_takes_every_buffer_and_keeps_the_curves_float64(tanh_family):
    """``.to(device, dtype)`` moves every buffer, the family's curves too, which stay float64
    (the meta device stands in for a GPU: same bookkeeping, no data)."""
    act = CircuitActivation(tanh_family, 6, generator=0).to(device="meta", dtype=torch.float32)
    assert {b.device.type for b in act.buffers()} == {"meta"}
    for name in ("pool", "nominal_curve", "table", "sigma_pool", "nominal_sigma", "sigma_table"):
        assert getattr(act, name).dtype == torch.float64, name
    assert act.lines.dtype == torch.float32


def test_an_empty_layer_is_filled_in_the_modules_dtype_and_on_its_device(tanh_family):
    """An empty layer has no family data (its public attributes None) and cannot run; made
    float64 and filled from a state_dict, it holds every table in float64 and computes exactly
    what the layer it was saved from computes, outputs and σ, in both modes, taking the saved
    mode whatever was set before; it refuses to draw chips, saying why. Moved to the meta device
    (a stand-in for a GPU) before it is filled, it makes every table there."""
    act = CircuitActivation(tanh_family, 6, generator=0, mode="nominal").double()
    empty = CircuitActivation(None, 6).double()
    assert (empty.tables, empty.neuron, empty.output_unit, empty.scaling, empty.points) == (
        (None,) * 5
    )
    x = torch.linspace(-3, 3, 30, dtype=torch.float64)[:, None].repeat(1, 6)
    with pytest.raises(ConfigError) as error:
        empty(x)
    assert str(error.value) == (
        "this CircuitActivation was built without a family (family=None): load a state_dict "
        "saved from a CircuitActivation into it, or build it from a Family"
    )
    empty.mode = "fitted"
    empty.load_state_dict(act.state_dict())
    assert empty.mode == "nominal"
    assert {n: b.dtype for n, b in empty.named_buffers()} == {
        n: b.dtype for n, b in act.named_buffers() if n not in ("pool", "sigma_pool")
    }
    for mode in ("nominal", "sampled"):
        act.mode = empty.mode = mode
        torch.testing.assert_close(empty(x), act(x), rtol=0, atol=0)
        torch.testing.assert_close(empty.sigma(x), act.sigma(x), rtol=0, atol=0)
    with pytest.raises(ConfigError) as error:
        empty.resample(0)
    assert str(error.value) == (
        f"family {tanh_family.key[:12]} (synthetic_tanh): this layer was filled from a "
        "state_dict, which holds its chip but not the family's other instances; to draw chips, "
        "build the layer from the Family (and load the state_dict into it)"
    )
    meta = CircuitActivation(None, 6).to("meta")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "for .*: copying from a non-meta", UserWarning)
        meta.load_state_dict(act.state_dict())
    assert {b.device.type for b in meta.buffers()} == {"meta"}


def test_a_layer_follows_the_branch_asked_for_and_saves_it():
    """``branch="down"`` draws the chip from the down branch's curves (here in the main
    branch's scaling: 0.02 V lower everywhere), and the branch travels with the state_dict into
    an empty layer."""
    both = _two_way(synthetic_family("tanh", n=12, seed=1, points=21, noise=None))
    scaling = FamilyTables.from_family(both).scaling
    down = CircuitActivation(both, 5, generator=0, branch="down", scaling=scaling).double()
    main = CircuitActivation(both, 5, generator=0, scaling=scaling).double()
    assert (down.branch, main.branch) == ("down", None)
    tables = FamilyTables.from_family(both, scaling, "down")
    torch.testing.assert_close(down.pool, torch.as_tensor(tables.curves), rtol=0, atol=0)
    x = torch.linspace(-2, 2, 9, dtype=torch.float64)[:, None].repeat(1, 5)
    torch.testing.assert_close(down(x), main(x) - 0.02 / scaling.output_scale)
    empty = CircuitActivation(None, 5).double()
    empty.load_state_dict(down.state_dict())
    assert empty.branch == "down"
    torch.testing.assert_close(empty(x), down(x), rtol=0, atol=0)


def test_a_layer_prints_its_family_shape_and_settings(tanh_family):
    act = CircuitActivation(tanh_family, (2, 3), generator=0, mode="nominal", fit="tanh")
    assert repr(act) == (
        f"CircuitActivation(synthetic_tanh [{tanh_family.key[:12]}], shape=(2, 3), "
        "mode='nominal', extrapolation='linear', fit='tanh')"
    )
    assert repr(CircuitActivation(None, 4)) == (
        "CircuitActivation(empty (family=None, filled by load_state_dict), shape=(4,))"
    )


def test_an_input_of_the_neurons_own_shape_is_one_sample(tanh_family):
    act = CircuitActivation(tanh_family, (3, 4), generator=0).double()
    x = torch.randn(3, 4, dtype=torch.float64)
    torch.testing.assert_close(act(x), act(x[None])[0], rtol=0, atol=0)


def test_lookup_matches_numpy_interp_for_random_tables():
    rng = np.random.default_rng(0)
    values = torch.as_tensor(rng.standard_normal((7, 33)).cumsum(axis=1))
    scale, shift = 4.0, 16.0
    table = segment_table(values, scale, shift)
    x = torch.as_tensor(rng.uniform(-3.9, 3.9, (50, 7)))
    y = lookup(x, table, neuron_offsets((7,), 33), 33, scale, shift)
    grid = (np.arange(33) - shift) / scale
    for j in range(7):
        np.testing.assert_allclose(y[:, j], np.interp(x[:, j], grid, values[j]), atol=1e-12)
    assert torch.isnan(
        lookup(
            torch.tensor([[float("nan")] * 7]), table, neuron_offsets((7,), 33), 33, scale, shift
        )
    ).all()


def test_store_round_trip(tmp_path, tanh_family):
    family = dataclasses.replace(tanh_family, noise=None)
    store = Store(tmp_path / "families.h5")
    store.commit(family)
    loaded = CircuitActivation(store.load("synthetic_tanh"), 5, generator=0).double()
    in_memory = CircuitActivation(family, 5, generator=0).double()
    with pytest.warns(DeprecationWarning, match=r"circuitnn.Store\(.*\).load\('synthetic_tanh'\)"):
        by_name = CircuitActivation("synthetic_tanh", 5, store=store.path, generator=0).double()
    x = torch.randn(4, 5, dtype=torch.float64)
    for layer in (loaded, by_name):
        assert layer.family_key == family.key
        assert torch.equal(layer.chip, in_memory.chip)
        torch.testing.assert_close(layer(x), in_memory(x))


def test_configuration_errors(tanh_family):
    with pytest.raises(ConfigError, match="pass a Family"):
        CircuitActivation("synthetic_tanh", 4)
    for setting, value in [("mode", "average"), ("fit", "cubic"), ("extrapolation", "wrap")]:
        with pytest.raises(ConfigError, match=rf"^{setting} must be one of '.*'; got '{value}'$"):
            CircuitActivation(tanh_family, 4, **{setting: value})
    with pytest.raises(ConfigError, match=r"^shape must be at least 1, got 0$"):
        CircuitActivation(tanh_family, (4, 0))
    for shape in ((), 2.5):
        message = f"shape must be a positive int or a tuple of them, got {shape!r}"
        with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
            CircuitActivation(tanh_family, shape)
    bent = dataclasses.replace(tanh_family, grid=tanh_family.grid**3)
    with pytest.raises(ConfigError, match="uniform"):
        CircuitActivation(bent, 4)
    dead = dataclasses.replace(tanh_family, status=np.full(tanh_family.n, 2, dtype=np.int8))
    with pytest.raises(ConfigError, match="usable"):
        CircuitActivation(dead, 4)
    with pytest.raises(ConfigError, match="generator"):
        CircuitActivation(tanh_family, 4, generator="seed")
    act = CircuitActivation(tanh_family, 4, generator=0)
    with pytest.raises(ConfigError, match="shape"):
        act(torch.zeros(3, 5))


def test_scaling_maps_volts_to_network_inputs_and_back(tanh_family):
    scaling = CircuitActivation(tanh_family, 4, generator=0).scaling
    volts = np.linspace(-1.0, 1.0, 7)
    u = scaling.to_network_input(volts)
    np.testing.assert_allclose(scaling.to_volts(u), volts, rtol=0, atol=1e-12)
    np.testing.assert_allclose(u, (volts - scaling.input_offset) / scaling.input_scale)


def test_draw_count_and_unexpanded_follow_the_draw_context():
    """Outside a draw context a tensor holds one draw; inside draws(D) its rows are D × batch
    (a row count that is not a multiple is an error naming both); with draws(D, batch=B) a tensor
    of B rows is the unrepeated batch (one draw, unexpanded) until D > 1 expands it."""
    from circuitnn.nn.draws import draw_count, draws, unexpanded

    def rows(n: int) -> torch.Tensor:
        return torch.zeros(n, 6)

    assert draw_count(rows(6)) == 1 and not unexpanded(rows(6))
    with draws(1, batch=3):
        assert draw_count(rows(3)) == 1 and not unexpanded(rows(3))
    with draws(2):
        assert draw_count(rows(6)) == 2 and not unexpanded(rows(6))
        with pytest.raises(ConfigError) as error:
            draw_count(rows(5))
        assert str(error.value) == "a batch of 5 rows is not a multiple of draws=2"
    with draws(2, batch=3):
        assert draw_count(rows(3)) == 1 and unexpanded(rows(3))
        assert draw_count(rows(6)) == 2 and not unexpanded(rows(6))
    with draws(3, batch=2):
        assert draw_count(rows(2)) == 1 and unexpanded(rows(2))
        assert draw_count(rows(6)) == 3


def test_deprecated_selector_warns_at_the_callers_line_with_the_replacement(tmp_path, tanh_family):
    """The deprecation warning points at the code that built the layer (this file; not checked
    under mutmut, whose trampolines add stack frames) and spells out the call that replaces the
    selector, with the store's path; the layer holds the family the selector names."""
    store = Store(tmp_path / "families.h5")
    store.commit(dataclasses.replace(tanh_family, noise=None))
    store.commit(synthetic_family("softplus", n=10, seed=1, noise=None))  # the newest
    with pytest.warns(DeprecationWarning) as caught:
        layer = CircuitActivation("synthetic_tanh", 3, store=store.path, generator=0)
    assert layer.family_key == tanh_family.key  # the family selected, not the newest
    with pytest.raises(ConfigError, match=r"^family must be a Family, got int$"):
        _deprecated.resolve_family(3)
    (warning,) = caught
    if not hasattr(_deprecated, "x_resolve_family__mutmut_orig"):  # mutmut adds frames between
        assert warning.filename == __file__
    assert str(warning.message) == (
        "a family selector with store=PATH is deprecated and will be removed in circuitnn 0.3: "
        f"pass circuitnn.Store({str(store.path)!r}).load('synthetic_tanh') instead"
    )


def test_checked_numbers_name_the_setting_and_the_interval():
    """``positive`` and ``unit_interval`` name the setting for a value that is not a number, and
    the interval's right bracket says whether 1 is allowed."""
    from circuitnn.nn._check import positive, unit_interval

    for check in (positive, unit_interval):
        with pytest.raises(ConfigError) as error:
            check("gain", "high")
        assert str(error.value) == "gain must be a number, got 'high'"
    for call, message in [
        ({"value": 1.5}, "p must be in [0, 1], got 1.5"),
        ({"value": 1, "open_right": True}, "p must be in [0, 1), got 1.0"),
        ({"value": -0.5, "open_right": True}, "p must be in [0, 1), got -0.5"),
    ]:
        with pytest.raises(ConfigError) as error:
            unit_interval("p", **call)
        assert str(error.value) == message
    assert unit_interval("p", 1) == 1.0


def _logistic(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


SHAPE_FUNCTIONS = {
    "tanh": math.tanh,
    "sigmoid": _logistic,
    "softplus": lambda z: math.log1p(math.exp(z)),
}
SHAPE_SLOPES = {
    "tanh": lambda z: 1.0 - math.tanh(z) ** 2,
    "sigmoid": lambda z: _logistic(z) * (1.0 - _logistic(z)),
    "softplus": _logistic,
}


@pytest.mark.parametrize("shape", sorted(SHAPE_FUNCTIONS))
def test_synthetic_family_is_the_documented_curves_and_noise(shape):
    """Curve i is A_i·f(g_i·(x − x_i)) with g_i, x_i, A_i from three rounds of standard normals
    of ``default_rng(seed)``; the nominal is amplitude·f(gain·x); σ_i at each bias point is
    noise·(0.5 + 0.5·|slope_i|/slope of the nominal at 0), white over three frequencies up to
    1 MHz; the last ``failed`` instances are NaN and failed (each worked out here with ``math``)."""
    f, df = SHAPE_FUNCTIONS[shape], SHAPE_SLOPES[shape]
    settings = {"gain": 4.0, "amplitude": 0.7, "gain_spread": 0.2, "offset_spread": 0.05}
    family = synthetic_family(
        shape,
        n=4,
        seed=3,
        points=5,
        span=0.5,
        amplitude_spread=0.1,
        noise=2e-3,
        noise_bias_points=3,
        failed=1,
        **settings,
    )
    z = np.random.default_rng(3).standard_normal((3, 4))
    g, x0, a = 4.0 * (1 + 0.2 * z[0]), 0.05 * z[1], 0.7 * (1 + 0.1 * z[2])
    grid = [-0.5, -0.25, 0.0, 0.25, 0.5]
    np.testing.assert_allclose(family.grid, grid, rtol=0, atol=1e-15)
    expected = [[a[i] * f(g[i] * (x - x0[i])) for x in grid] for i in range(3)]
    np.testing.assert_allclose(family.curves[:3], expected, rtol=1e-12)
    assert np.isnan(family.curves[3]).all()
    np.testing.assert_allclose(family.nominal_curve, [0.7 * f(4.0 * x) for x in grid], rtol=1e-12)
    np.testing.assert_allclose(family.parameters[:3], np.stack([g, x0, a], axis=1)[:3], rtol=1e-15)
    assert family.parameter_names == ("gain", "offset", "amplitude")
    assert family.status.tolist() == [1, 1, 1, 2]
    assert family.reasons == ["", "", "", "synthetic failure"]
    assert family.chip.tolist() == [0, 1, 2, 3] and family.neuron == f"synthetic_{shape}"
    assert family.output_unit == "V" and family.supplies == ()
    assert family.supply_current.shape == (4, 0, 5) and family.input_current.shape == (4, 1, 5)
    assert not family.power.any() and not family.input_current.any()
    nominal_parameters = json.loads(family.attrs["nominal_parameters"])
    assert nominal_parameters == {"gain": 4.0, "offset": 0.0, "amplitude": 0.7}
    swing = np.max(expected, axis=1) - np.min(expected, axis=1)
    np.testing.assert_allclose(family.descriptors["swing"][:3], swing, rtol=1e-12)
    assert family.descriptors["mean_power"].tolist()[:3] == [0.0, 0.0, 0.0]
    noise = family.noise
    bias = [-0.5, 0.0, 0.5]
    reference = 0.7 * 4.0 * df(0.0)
    sigma = [
        [2e-3 * (0.5 + 0.5 * abs(a[i] * g[i] * df(g[i] * (b - x0[i]))) / reference) for b in bias]
        for i in range(3)
    ]
    np.testing.assert_allclose(noise.bias, bias, rtol=0, atol=1e-15)
    np.testing.assert_allclose(noise.sigma[:3], sigma, rtol=1e-6)
    assert np.isnan(noise.sigma[3]).all() and noise.status.tolist() == [1, 1, 1, 2]
    assert noise.frequency.tolist() == [1.0, 1e3, 1e6] and noise.bandwidth == 1e6
    white = noise.sigma**2 / 1e6  # σ² spread evenly over the 1 MHz band
    for psd in (noise.psd, noise.input_psd):
        np.testing.assert_allclose(psd, np.repeat(white[:, :, None], 3, axis=2), rtol=1e-15)
    np.testing.assert_allclose(noise.white, white, rtol=1e-15)
    assert (noise.flicker[:3] == 0).all() and (noise.alpha[:3] == 1).all()
    assert synthetic_family(shape, n=2, noise=None).noise is None


def test_synthetic_family_settings_are_checked_and_each_one_changes_the_key():
    """Every bad setting is a ConfigError naming it; two families differ in key when any setting
    differs and agree when none does."""
    for call, message in [
        ({"shape": "relu"}, "shape must be one of 'tanh', 'sigmoid', 'softplus'; got 'relu'"),
        ({"n": 0}, "n must be at least 1, got 0"),
        ({"points": 1}, "points must be at least 2, got 1"),
        ({"span": 0.0}, "span must be > 0, got 0.0"),
        ({"gain": 0.0}, "gain must be > 0, got 0.0"),
        ({"amplitude": -1.0}, "amplitude must be > 0, got -1.0"),
        ({"gain_spread": -0.1}, "gain_spread must be >= 0, got -0.1"),
        ({"offset_spread": -0.1}, "offset_spread must be >= 0, got -0.1"),
        ({"amplitude_spread": -0.1}, "amplitude_spread must be >= 0, got -0.1"),
        ({"noise": -1e-3}, "noise must be >= 0, got -0.001"),
        ({"noise_bias_points": 0}, "noise_bias_points must be at least 1, got 0"),
        ({"failed": -1}, "failed must be at least 0, got -1"),
        ({"n": 3, "failed": 3}, "failed must be below n=3, got 3"),
    ]:
        with pytest.raises(ConfigError) as error:
            synthetic_family(**call)
        assert str(error.value) == message
    assert synthetic_family(n=1, points=2, noise=0.0, noise_bias_points=1).noise.sigma.shape == (
        1,
        1,
    )
    assert synthetic_family(n=2, noise=None, noise_bias_points=0).noise is None
    base = {"n": 3, "points": 5}
    keys = {synthetic_family(**base).key}
    for change in [
        {"shape": "sigmoid"},
        {"n": 4},
        {"seed": 1},
        {"points": 6},
        {"span": 2.0},
        {"gain": 4.0},
        {"amplitude": 0.4},
        {"gain_spread": 0.2},
        {"offset_spread": 0.03},
        {"amplitude_spread": 0.06},
        {"noise": 2e-3},
        {"noise_bias_points": 5},
        {"failed": 1},
    ]:
        keys.add(synthetic_family(**{**base, **change}).key)
    assert len(keys) == 14
    assert synthetic_family(**base).key == synthetic_family(**base).key


def curves_at(values: np.ndarray, x: np.ndarray, scale: float, shift: float) -> np.ndarray:
    """Each neuron's piecewise-linear curve (``values`` n × K sampled at ``t = scale·x + shift =
    0 … K-1``, continued with its end slopes beyond the grid) at ``x`` (…, n or 1): float64,
    by numpy's interpolation, shaped like ``x`` broadcast against the n neurons."""
    values = np.asarray(values, dtype=np.float64)
    n, points = values.shape
    t = scale * np.asarray(x, dtype=np.float64) + shift
    t = np.broadcast_to(t, np.broadcast_shapes(t.shape, (n,)))
    out = np.empty(t.shape)
    for j, v in enumerate(values):
        tj = t[..., j]
        y = np.interp(tj, np.arange(points), v)
        y = np.where(tj < 0, v[0] + (v[1] - v[0]) * tj, y)
        out[..., j] = np.where(tj > points - 1, v[-1] + (v[-1] - v[-2]) * (tj - points + 1), y)
    return out


def lookup_case(n: int = 5, points: int = 9, rows: int = 64, seed: int = 0):
    """Rough random curves, and inputs inside the grid and up to 2 steps beyond either end, none
    within 0.15 of a grid point (so that rounding t in half precision keeps its segment)."""
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((n, points)).cumsum(axis=1) / 2
    scale, shift = 2.0, 4.0
    t = rng.integers(-2, points + 1, (rows, n)) + rng.uniform(0.15, 0.85, (rows, n))
    return values, scale, shift, (t - shift) / scale


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("autograd", [True, False], ids=["autograd", "inference"])
def test_lookup_in_each_float_dtype_matches_float64_interpolation(dtype, autograd):
    """Each float dtype (half precision reads its (C, D) pairs as int32, float32 as float64,
    float64 as complex128) gives the curve in that dtype, to its own rounding: |error| ≤
    4·eps·(max|C| + max|D·x|), C and D the float64 lines; with no warning."""
    values, scale, shift, x_np = lookup_case()
    points = values.shape[1]
    table = segment_table(torch.as_tensor(values), scale, shift, "linear", dtype)
    x = torch.as_tensor(x_np, dtype=dtype).requires_grad_(autograd)
    with torch.set_grad_enabled(autograd), warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. torch's for an output buffer of the wrong size
        y = lookup(x, table, neuron_offsets((5,), points), points, scale, shift)
    assert y.dtype == dtype and y.shape == x.shape and y.requires_grad == autograd
    x64 = x.detach().double().numpy()
    lines = segment_table(torch.as_tensor(values), scale, shift).numpy()
    magnitude = np.abs(lines[:, 0]).max() + np.abs(lines[:, 1]).max() * np.abs(x64).max()
    atol = 4 * torch.finfo(dtype).eps * magnitude
    expected = curves_at(values, x64, scale, shift)
    np.testing.assert_allclose(y.detach().double().numpy(), expected, rtol=0, atol=atol)


@pytest.mark.parametrize("autograd", [True, False], ids=["autograd", "inference"])
def test_lookup_of_mixed_dtypes_is_in_the_wider_one(autograd):
    """float32 inputs in a float64 table give float64 outputs exact to float64 rounding (the
    lines are not rounded to float32), and float64 inputs in a float32 table float64 outputs."""
    values, scale, shift, x_np = lookup_case(seed=1)
    points = values.shape[1]
    offsets = neuron_offsets((5,), points)
    wide = segment_table(torch.as_tensor(values), scale, shift, "linear", torch.float64)
    x = torch.as_tensor(x_np, dtype=torch.float32).requires_grad_(autograd)
    with torch.set_grad_enabled(autograd):
        y = lookup(x, wide, offsets, points, scale, shift)
        assert y.dtype == torch.float64
        expected = curves_at(values, x.detach().double().numpy(), scale, shift)
        np.testing.assert_allclose(y.detach().numpy(), expected, rtol=0, atol=1e-12)
        narrow = wide.float()
        y = lookup(x.detach().double(), narrow, offsets, points, scale, shift)
        assert y.dtype == torch.float64
        np.testing.assert_allclose(y.numpy(), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lookup_broadcasts_inputs_against_the_neurons(dtype):
    """An input narrower than the neurons, (B, 1) against 2 neurons, comes out (B, 2) with each
    neuron's curve at the same x; a (B, 2, 3, 4) input with per-channel offsets (2, 1, 1) keeps
    its shape, channel c through neuron c."""
    values, scale, shift, x_np = lookup_case(n=2, seed=2)
    points = values.shape[1]
    table = segment_table(torch.as_tensor(values), scale, shift, "linear", dtype)
    narrow = torch.as_tensor(x_np[:, :1], dtype=dtype)
    y = lookup(narrow, table, neuron_offsets((2,), points), points, scale, shift)
    assert y.shape == (64, 2)
    expected = curves_at(values, narrow.double().numpy(), scale, shift)
    np.testing.assert_allclose(y.double().numpy(), expected, rtol=0, atol=1e-5)
    images = torch.as_tensor(x_np[:48].reshape(2, 2, 3, 4, 2)[..., 0], dtype=dtype)
    y = lookup(images, table, neuron_offsets((2, 1, 1), points), points, scale, shift)
    assert y.shape == images.shape
    per_channel = images.double().numpy().transpose(0, 2, 3, 1)  # channel last: (…, n)
    expected = curves_at(values, per_channel, scale, shift).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(y.double().numpy(), expected, rtol=0, atol=1e-5)


def test_lookup_of_an_integer_table_and_of_a_table_that_requires_grad():
    """A table of a dtype with no packed view (int32: whole-number lines) is gathered row by row
    to the same curve; a table that requires grad is read detached (the output's gradient is
    the slope, with respect to x only)."""
    values = np.array([[0.0, 1.0, 3.0, 6.0], [2.0, 2.0, 0.0, -1.0]])
    scale, shift, points = 1.0, 0.0, 4
    table = segment_table(torch.as_tensor(values), scale, shift, "linear", torch.int32)
    assert table.dtype == torch.int32
    x = torch.tensor([[-1.5, 0.5], [0.5, 1.5], [2.5, 2.5], [4.0, 3.5]])
    offsets = neuron_offsets((2,), points)
    y = lookup(x, table, offsets, points, scale, shift)
    np.testing.assert_allclose(y.double().numpy(), curves_at(values, x.numpy(), 1.0, 0.0))
    trainable = segment_table(torch.as_tensor(values), scale, shift).requires_grad_(True)
    x = x.double().requires_grad_(True)
    y = lookup(x, trainable, offsets, points, scale, shift)
    np.testing.assert_allclose(y.detach().numpy(), curves_at(values, x.detach().numpy(), 1, 0))
    (grad,) = torch.autograd.grad(y.sum(), x)
    slopes = [[1.0, 0.0], [1.0, -2.0], [3.0, -1.0], [3.0, -1.0]]  # each point's segment
    np.testing.assert_array_equal(grad.numpy(), slopes)
    assert torch.autograd.grad(y.sum(), trainable, allow_unused=True) == (None,)


def test_scaling_works_in_float64_whatever_the_input_dtype():
    """float32 arrays are mapped in float64 (the affine maps of the float64 values), not rounded
    to float32 on the way."""
    scaling = Scaling(input_offset=0.1, input_scale=0.3, output_offset=0.2, output_scale=-0.7)
    single = np.array([0.1, -0.7, 1.3], dtype=np.float32)
    exact = single.astype(np.float64)
    for mapped, expected in [
        (scaling.to_volts(single), 0.1 + 0.3 * exact),
        (scaling.to_network_input(single), (exact - 0.1) / 0.3),
        (scaling.to_network_output(single), (exact - 0.2) / -0.7),
        (scaling.to_circuit_output(single), 0.2 - 0.7 * exact),
    ]:
        assert mapped.dtype == np.float64
        np.testing.assert_array_equal(mapped, expected)


def _two_way(family):
    """``family`` as if swept both ways, its down branch 0.02 below its up branch."""
    return dataclasses.replace(
        family,
        curves_down=family.curves - 0.02,
        nominal_curve_down=family.nominal_curve - 0.02,
        attrs={**family.attrs, "direction": "both"},
    )


def test_family_tables_take_the_branch_asked_for():
    """None and "up" give the main (up) branch, "down" the down branch, in the same scaling
    (midpoint by default); a branch that is not "up" or "down", a branch the family was not swept
    along, and the down branch of a family whose noise was simulated on the up branch are
    refused, naming the family and the branch; so are an unknown scaling and a family with no
    usable instance."""
    family = synthetic_family("tanh", n=12, seed=1, points=21, noise=None)
    both = _two_way(family)
    main = FamilyTables.from_family(both)
    assert main.scaling == FamilyTables.from_family(both, "midpoint").scaling
    assert main.scaling != FamilyTables.from_family(both, "knee").scaling
    up = FamilyTables.from_family(both, main.scaling, branch="up")
    down = FamilyTables.from_family(both, main.scaling, branch="down")
    s = main.scaling
    for tables, curves in [(main, both.curves), (up, both.curves), (down, both.curves_down)]:
        np.testing.assert_array_equal(tables.instances, np.arange(12))
        expected = (curves - s.output_offset) / s.output_scale
        np.testing.assert_allclose(tables.curves, expected, rtol=1e-14, atol=1e-14)
    key = family.key[:12]
    for scaling, message in [
        ("zero", "scaling must be one of 'midpoint', 'knee'; got 'zero'"),
        (1.0, "scaling must be a Scaling or one of ('midpoint', 'knee'), got 1.0"),
    ]:
        with pytest.raises(ConfigError) as error:
            FamilyTables.from_family(both, scaling)
        assert str(error.value) == message
    dead = dataclasses.replace(family, status=np.full(12, 2))
    with pytest.raises(ConfigError) as error:
        FamilyTables.from_family(dead)
    assert str(error.value) == f"family {family.key[:12]} has no usable (ok, finite) instances"
    with pytest.raises(ConfigError) as error:
        FamilyTables.from_family(both, branch="sideways")
    assert str(error.value) == "branch must be one of 'up', 'down'; got 'sideways'"
    with pytest.raises(ConfigError) as error:
        FamilyTables.from_family(family, branch="down")
    assert str(error.value).startswith(f"family {key} was swept 'up': it has no 'down' branch")
    noisy = _two_way(synthetic_family("tanh", n=12, seed=1, points=21, noise=1e-3))
    assert FamilyTables.from_family(noisy, branch="up").sigma is not None
    with pytest.raises(ConfigError) as error:
        FamilyTables.from_family(noisy, branch="down")
    assert str(error.value) == (
        f"family {noisy.key[:12]}: its noise was simulated at operating points on its main "
        "branch, not the 'down' branch; use branch=None, or a family without noise"
    )


@pytest.mark.parametrize("bias_points", [1, 2, 5])
def test_family_tables_leave_out_instances_whose_noise_failed(bias_points):
    """An instance whose noise analysis failed (noise status 2) is not used, even with a finite
    σ row; the others keep their σ in network units, interpolated over the grid between the bias
    points (held constant outside them; one bias point: constant)."""
    family = synthetic_family(
        "tanh", n=8, seed=4, points=21, noise=1e-3, noise_bias_points=bias_points
    )
    status = family.noise.status.copy()
    status[3] = 2
    tables = FamilyTables.from_family(
        dataclasses.replace(family, noise=dataclasses.replace(family.noise, status=status))
    )
    kept = [0, 1, 2, 4, 5, 6, 7]
    np.testing.assert_array_equal(tables.instances, kept)
    assert tables.sigma.shape == (7, 21)
    scale = abs(tables.scaling.output_scale)
    for row, instance in zip(tables.sigma, kept, strict=True):
        sigma = np.interp(family.grid, family.noise.bias, family.noise.sigma[instance])
        np.testing.assert_allclose(row, sigma / scale, rtol=1e-13)


def test_family_tables_are_computed_in_float64_from_float32_arrays():
    """A family held in float32 gives the tables of the same values in float64: grid step,
    curves and σ (here one bias point: σ held over the grid) in float64."""
    family = synthetic_family("tanh", n=6, seed=1, points=21, noise=1e-3, noise_bias_points=1)

    def cast(dtype):
        return dataclasses.replace(
            family,
            grid=family.grid.astype(np.float32).astype(dtype),
            curves=family.curves.astype(np.float32).astype(dtype),
            nominal_curve=family.nominal_curve.astype(np.float32).astype(dtype),
            noise=dataclasses.replace(
                family.noise, sigma=family.noise.sigma.astype(np.float32).astype(dtype)
            ),
        )

    single, exact = (
        FamilyTables.from_family(cast(np.float32)),
        FamilyTables.from_family(cast(float)),
    )
    assert single.grid_step == exact.grid_step and single.scaling == exact.scaling
    for name in ("curves", "nominal", "sigma"):
        assert getattr(single, name).dtype == np.float64
        np.testing.assert_array_equal(getattr(single, name), getattr(exact, name))


def test_family_tables_need_a_uniform_increasing_grid_of_two_points_or_more():
    """A grid that is not 1-D is refused; two points are enough; a grid whose steps differ from
    their mean by more than 10⁻⁶ of it (at any step size), or that does not increase, is
    refused, naming the family."""
    family = synthetic_family("tanh", n=6, seed=1, points=21, noise=None)
    key, grid, step = family.key[:12], family.grid, family.grid[1] - family.grid[0]
    with pytest.raises(ConfigError) as error:
        FamilyTables.from_family(dataclasses.replace(family, grid=grid.reshape(3, 7)))
    assert str(error.value) == f"family {key}: grid must be 1-D with >= 2 points"
    ends = [0, -1]
    two = dataclasses.replace(
        family,
        grid=grid[ends],
        curves=family.curves[:, ends],
        nominal_curve=family.nominal_curve[ends],
    )
    tables = FamilyTables.from_family(two)
    assert tables.points == 2 and tables.grid_step == grid[-1] - grid[0]
    nearly = grid.copy()
    nearly[11:] += 5e-7 * step
    assert FamilyTables.from_family(dataclasses.replace(family, grid=nearly)).points == 21
    longer = grid.copy()
    longer[11:] += 5e-6 * step
    tiny = 1e-10 * np.arange(21.0)
    tiny[11:] += 1e-11
    for bad in (longer, tiny, grid[::-1], np.full(21, 0.3)):
        with pytest.raises(ConfigError) as error:
            FamilyTables.from_family(dataclasses.replace(family, grid=bad))
        assert str(error.value) == (
            f"family {key}: input grid is not uniform and increasing "
            "(CircuitActivation needs a uniform sweep)"
        )


def test_neuron_offsets_are_int32_unless_the_rows_reach_2_to_the_31():
    """The first row (K+1)·j of each neuron j of the shape, int32 (the row index of lookup)
    while the table's rows n·(K+1) stay below 2³¹, int64 beyond (where int32 would wrap)."""
    offsets = neuron_offsets((2, 3), 4)
    assert offsets.dtype == torch.int32 and offsets.tolist() == [[0, 5, 10], [15, 20, 25]]
    below = neuron_offsets((2,), 2**30 - 2)  # 2³¹ − 2 rows
    assert below.dtype == torch.int32 and below.tolist() == [0, 2**30 - 1]
    beyond = neuron_offsets((3,), 2**30)  # 3·(2³⁰ + 1) rows
    assert beyond.dtype == torch.int64 and beyond.tolist() == [0, 2**30 + 1, 2**31 + 2]
    just_beyond = neuron_offsets((2**16,), 2**15)  # 2³¹ + 2¹⁶ rows
    assert just_beyond.dtype == torch.int64 and just_beyond[-1] == (2**16 - 1) * (2**15 + 1)


def test_scaling_from_a_float32_nominal_is_computed_in_float64():
    """A float32 grid and nominal curve give the scaling of the same values in float64; an
    unknown anchor is refused by name."""
    grid = np.linspace(-1.0, 1.0, 41, dtype=np.float32)
    nominal = (0.4 * np.tanh(3.0 * grid) + 0.1 * grid + 0.5).astype(np.float32)
    for anchor in ("midpoint", "knee"):
        exact = Scaling.from_nominal(grid.astype(float), nominal.astype(float), anchor=anchor)
        assert Scaling.from_nominal(grid, nominal, anchor=anchor) == exact
    with pytest.raises(ConfigError) as error:
        Scaling.from_nominal(grid, nominal, anchor="middle")
    assert str(error.value) == "Scaling anchor must be one of 'midpoint', 'knee'; got 'middle'"


def test_scaling_from_nominal_of_a_hard_tanh_is_worked_out_by_hand():
    """Nominal 0.5 + 0.3·clip(x − 0.03, −1, 1) on a 0.1 V grid: half the swing is 0.3, the
    steepest slope 0.3, so one network unit is 1 V; the midpoint origin is (0.03 V, 0.5), between
    grid points; the knee origin is where the ramp meets the floor 0.2: (−0.97 V, 0.2). Its
    inverse 1 − nominal is flipped to rise (output scale −0.3, origin output 0.5) unless
    ``rising=False``. A curve whose ends are equal, or that wiggles next to its ends, rises by
    its ends alone. Bad curves are refused with the reason."""
    grid = np.linspace(-2.0, 2.0, 41)
    hard_tanh = 0.5 + 0.3 * np.clip(grid - 0.03, -1.0, 1.0)
    cases = [
        (hard_tanh, {}, (0.03, 1.0, 0.5, 0.3)),
        (hard_tanh, {"anchor": "knee"}, (-0.97, 1.0, 0.2, 0.3)),
        (1.0 - hard_tanh, {}, (0.03, 1.0, 0.5, -0.3)),
        (1.0 - hard_tanh, {"anchor": "knee"}, (-0.97, 1.0, 0.8, -0.3)),
        (1.0 - hard_tanh, {"rising": False}, (0.03, 1.0, 0.5, 0.3)),
    ]
    for nominal, settings, expected in cases:
        scaling = Scaling.from_nominal(grid, nominal, **settings)
        got = (scaling.input_offset, scaling.input_scale, scaling.output_offset)
        np.testing.assert_allclose((*got, scaling.output_scale), expected, rtol=0, atol=1e-12)
    wiggles = hard_tanh.copy()
    wiggles[1], wiggles[-2] = 0.19, 0.19  # a step down after the start, one before the end
    spikes = hard_tanh.copy()
    spikes[1] = 0.81  # above the end
    bump = np.exp(-(grid**2))  # equal ends
    for nominal in (wiggles, spikes, bump):
        assert Scaling.from_nominal(grid, nominal).output_scale > 0
    shape = "nominal curve shape {} does not match grid shape {}"
    for grid_, nominal, message in [
        (grid, hard_tanh[:-1], shape.format((40,), (41,))),
        (grid[:40].reshape(4, 10), hard_tanh[:40].reshape(4, 10), shape.format((4, 10), (4, 10))),
        (grid[:1], hard_tanh[:1], shape.format((1,), (1,))),
        (
            grid,
            np.where(grid > 1, np.nan, hard_tanh),
            "nominal curve holds non-finite values; cannot set the scaling",
        ),
        (grid, np.full(41, 0.2), "nominal curve is flat (zero swing); cannot set the scaling"),
    ]:
        with pytest.raises(ConfigError) as error:
            Scaling.from_nominal(grid_, nominal)
        assert str(error.value) == message


def test_scaling_and_segment_table_settings_are_checked_by_name():
    """Each Scaling field must be a finite number, input_scale > 0 and output_scale nonzero (1
    is fine); segment_table's extrapolation is one of its two."""
    assert Scaling(0.0, 1.0, 0.0, 1.0).output_scale == 1.0
    for fields, message in [
        (("a", 1.0, 0.0, 1.0), "Scaling.input_offset must be a number, got 'a'"),
        ((0.0, 0.0, 0.0, 1.0), "Scaling.input_scale must be > 0 V, got 0.0"),
        ((0.0, 1.0, 0.0, 0.0), "Scaling.output_scale must be nonzero"),
    ]:
        with pytest.raises(ConfigError) as error:
            Scaling(*fields)
        assert str(error.value) == message
    with pytest.raises(ValueError) as error:
        segment_table(torch.zeros(1, 3), 1.0, 0.0, "cubic")
    assert str(error.value) == "extrapolation must be one of ('linear', 'clamp'), got 'cubic'"


def test_segment_table_is_computed_in_float64():
    """float32 curves give float64 lines (asked for) equal to those of the same values in float64:
    the lines are computed in float64 whatever the curves' dtype. Two grid points make one line
    (the same in all three rows); one is refused."""
    values = torch.rand(3, 9, generator=torch.Generator().manual_seed(0)) * 7.0
    lines = segment_table(values, 3.3, 2.7, "linear", torch.float64)
    assert torch.equal(lines, segment_table(values.double(), 3.3, 2.7, "linear", torch.float64))
    two = segment_table(torch.tensor([[1.0, 3.0]], dtype=torch.float64), 1.0, 0.0)  # y = 1 + 2x
    assert two.tolist() == [[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]]
    with pytest.raises(ValueError, match="a curve needs at least 2 grid points"):
        segment_table(torch.ones(2, 1), 1.0, 0.0)


def test_saved_identity_round_trips_and_names_every_bad_field():
    """A layer's identity: JSON with every field (the format, the scaling's four numbers, the
    branch), floats back exactly through the uint8 tensor; the family named by its key's first
    12 characters and neuron; each bad field refused with its path; loading checks the family,
    the scaling and grid, and takes the saved settings."""
    from circuitnn.nn.saved import FORMAT, SavedLayer

    scaling = Scaling(0.1 / 3, 2 / 3, -0.25, 1 / 7)
    saved = SavedLayer(
        "0123456789abcdefXYZ", "mos_diffpair", "V", scaling, -0.3 / 7, 0.01 / 3,
        "tanh", "fitted", "clamp", "down",
    )  # fmt: skip
    data = saved.to_dict()
    assert data == {
        "format": FORMAT,
        "family_key": "0123456789abcdefXYZ",
        "neuron": "mos_diffpair",
        "output_unit": "V",
        "scaling": {
            "input_offset": 0.1 / 3,
            "input_scale": 2 / 3,
            "output_offset": -0.25,
            "output_scale": 1 / 7,
        },
        "grid_start": -0.3 / 7,
        "grid_step": 0.01 / 3,
        "fit_form": "tanh",
        "mode": "fitted",
        "extrapolation": "clamp",
        "branch": "down",
    }
    tensor = saved.to_tensor()
    assert tensor.dtype == torch.uint8 and tensor.dim() == 1
    assert json.loads(tensor.numpy().tobytes()) == data
    assert tensor.numpy().tobytes() == json.dumps(data, sort_keys=True).encode()
    assert SavedLayer.from_tensor(tensor, "x") == saved
    assert SavedLayer.from_dict(dict(data, branch=None), "x").branch is None
    assert (
        SavedLayer.from_dict({k: v for k, v in data.items() if k != "branch"}, "x").branch is None
    )
    assert saved.family_name() == "0123456789ab (mos_diffpair)"
    bad = {
        "format": (2, r"^x\.format must be 1, got 2$"),
        "family_key": ("", r"^x\.family_key must be a non-empty string, got ''$"),
        "neuron": (3, r"^x\.neuron must be a non-empty string, got 3$"),
        "output_unit": (None, r"^x\.output_unit must be a non-empty string"),
        "scaling": ({"input_offset": 0.0}, r"^x\.scaling must be a dict with keys input_offset, "),
        "grid_start": ("0", r"^x\.grid_start"),
        "grid_step": (0.0, r"^x\.grid_step"),
        "fit_form": ("cubic", r"^x\.fit_form must be one of"),
        "mode": ("typical", r"^x\.mode must be one of"),
        "extrapolation": ("zero", r"^x\.extrapolation must be one of"),
        "branch": ("sideways", r"^x\.branch must be null, 'up' or 'down', got 'sideways'$"),
    }
    for name, (value, message) in bad.items():
        with pytest.raises(ConfigError, match=message):
            SavedLayer.from_dict(dict(data, **{name: value}), "x")
    with pytest.raises(ConfigError, match=r"^x\.scaling must be a dict"):
        SavedLayer.from_dict(dict(data, scaling=[1, 2, 3, 4]), "x")
    with pytest.raises(ConfigError, match=r"^x must be a dict, got list$"):
        SavedLayer.from_dict([], "x")
    with pytest.raises(ConfigError, match=r"^x\.format must be 1, got None$"):
        SavedLayer.from_dict({}, "x")
    with pytest.raises(ConfigError, match=r"^y must be a 1-D uint8 tensor \(UTF-8 JSON\), got "):
        SavedLayer.from_tensor(tensor[None], "y")
    with pytest.raises(ConfigError, match=r"^y does not hold UTF-8 JSON: "):
        SavedLayer.from_tensor(torch.tensor([255, 0], dtype=torch.uint8), "y")

    family = synthetic_family("tanh", n=20, seed=0)
    source = CircuitActivation(family, 3, generator=0, mode="nominal", extrapolation="clamp")
    state = source.state_dict()
    target = CircuitActivation(family, 3, generator=1)
    target.load_state_dict(state)
    assert (target.mode, target.extrapolation) == ("nominal", "clamp")
    assert torch.equal(target.identity, state["identity"])
    other = synthetic_family("tanh", n=20, seed=1)
    with pytest.raises(
        ConfigError,
        match=rf"^cannot load the state_dict into the layer: it holds a chip of family "
        rf"{family.key[:12]} \(synthetic_tanh\), but this CircuitActivation was built from "
        rf"family {other.key[:12]} \(synthetic_tanh\)",
    ):
        CircuitActivation(other, 3, generator=0).load_state_dict(state)
    model = torch.nn.Sequential(CircuitActivation(family, 3, scaling="knee"))
    with pytest.raises(ConfigError, match=r"^cannot load the state_dict into layer '0': family "):
        model.load_state_dict({f"0.{key}": value for key, value in state.items()})
    with pytest.raises(ConfigError, match=r"^0\.table must be a \(neurons, grid points >= 2\)"):
        torch.nn.Sequential(CircuitActivation(None, 3)).load_state_dict(
            {"0.identity": state["identity"], "0.table": state["table"][:, :1]}
        )
    with pytest.raises(ConfigError, match=r"^cannot fill the empty CircuitActivation layer '0': "):
        torch.nn.Sequential(CircuitActivation(None, 3)).load_state_dict({"0.table": state["table"]})


def test_saved_identity_keeps_the_up_branch_goes_to_the_given_device_and_names_where():
    """The "up" branch round-trips like "down"; ``to_tensor(device)`` makes the tensor on that
    device (meta stands in for a GPU); a tensor of valid JSON with a bad field is refused naming
    the field under the ``where`` given to ``from_tensor``."""
    from circuitnn.nn.saved import SavedLayer

    saved = SavedLayer(
        "0123456789abcdef", "cmos_inverter", "V", Scaling(0.0, 1.0, 0.0, 1.0), -1.0, 0.25,
        "softplus", "sampled", "linear", "up",
    )  # fmt: skip
    assert SavedLayer.from_tensor(saved.to_tensor(), "x") == saved
    assert SavedLayer.from_dict(saved.to_dict(), "x").branch == "up"
    assert saved.to_tensor(torch.device("meta")).device.type == "meta"
    assert saved.to_tensor().device.type == "cpu"
    text = json.dumps(dict(saved.to_dict(), mode="typical")).encode()
    with pytest.raises(ConfigError, match=r"^layer\.identity\.mode must be one of"):
        SavedLayer.from_tensor(torch.tensor(list(text), dtype=torch.uint8), "layer.identity")


def test_segment_table_is_made_on_the_curves_device_and_refuses_a_single_point():
    """The table is built where the curves are (the meta device stands in for a GPU), and a
    curve of one grid point is refused with its reason."""
    table = segment_table(torch.zeros(2, 5, device="meta"), 1.0, 0.0)
    assert table.is_meta and table.shape == (2 * 6, 2)
    with pytest.raises(ValueError, match=r"^a curve needs at least 2 grid points$"):
        segment_table(torch.zeros(2, 1), 1.0, 0.0)
