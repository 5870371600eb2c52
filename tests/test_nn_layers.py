"""CircuitActivation: interpolation, extrapolation, scaling, modes, chips, dtypes, devices."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from scipy import stats

from circuitnn.errors import ConfigError
from circuitnn.nn import CircuitActivation, Scaling, _deprecated, synthetic_family
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
    with pytest.raises(ConfigError, match="mode"):
        CircuitActivation(tanh_family, 4, mode="average")
    with pytest.raises(ConfigError, match="shape"):
        CircuitActivation(tanh_family, 0)
    with pytest.raises(ConfigError, match="fit"):
        CircuitActivation(tanh_family, 4, fit="cubic")
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
    selector, with the store's path."""
    store = Store(tmp_path / "families.h5")
    store.commit(dataclasses.replace(tanh_family, noise=None))
    with pytest.warns(DeprecationWarning) as caught:
        CircuitActivation("synthetic_tanh", 3, store=store.path, generator=0)
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
