"""Analytic noise propagation (circuitnn.evaluate.propagate_noise) against Monte Carlo.

Linear networks: the prediction is exact, so it must agree with Monte Carlo within the Monte Carlo
error (3σ); covariance entries, correlated and not, agree entry by entry. Real circuit families
(the session's quick store): every noise kind within 10 % at noise ≤ 10 % of the signal; at large
noise the linearization is allowed to (and does) deviate.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from circuitnn.errors import ConfigError
from circuitnn.evaluate import NoisePropagation, propagate_noise
from circuitnn.experiments.families import circuit_families
from circuitnn.family import Family
from circuitnn.nn import (
    AdditiveNoise,
    CircuitNoise,
    CircuitSpec,
    LayerSpec,
    MixedNoise,
    MLPSpec,
    NoiseSpec,
    WeightNoiseSpec,
    build_mlp,
    mlp_spec,
    noise_modules,
    quiet,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _inputs(samples: int, features: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(samples, features, generator=torch.Generator().manual_seed(seed))


def _variance_preserving(model: nn.Module, gain: float = 1.5, seed: int = 0) -> None:
    """Weights N(0, gain²/fan_in), zero biases (signals of order one through a deep network)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear):
                scale = gain / module.in_features**0.5
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * scale)
                module.bias.zero_()


def _within_mc_error(result: NoisePropagation) -> None:
    for layer in result.layers:
        assert abs(layer.ratio - 1.0) <= 3 * layer.error + 1e-12, layer


# ------------------------------------------------------------------------ exact: linear network


@pytest.mark.parametrize(
    "noise",
    [
        NoiseSpec("additive", 0.2),
        NoiseSpec("additive", 0.2, correlation=0.7),
        NoiseSpec("multiplicative", 0.3),
        NoiseSpec("multiplicative", 0.3, correlation=1.0),
        NoiseSpec("mixed", 0.2, order="additive_first", correlation=0.4),
        NoiseSpec("mixed", 0.2, multiplicative=0.3, order="multiplicative_first"),
    ],
    ids=["add", "add-rho", "mul", "mul-rho1", "mixed-af", "mixed-mf"],
)
def test_linear_network_is_exact(noise: NoiseSpec) -> None:
    weights = WeightNoiseSpec("multiplicative", 0.1)
    model = build_mlp(
        mlp_spec(6, (12, 12), 3, activation="identity", noise=noise, weight_noise=weights), seed=1
    )
    result = propagate_noise(model, _inputs(24, 6), draws=600, seed=2)
    assert result.names == ["noise1", "noise2", "output"]
    _within_mc_error(result)
    for layer in result.layers:
        assert 0 < layer.error < 0.02


def test_linear_network_weight_noise_kinds() -> None:
    spec = MLPSpec(
        5,
        (
            LayerSpec(10, "identity", weight_noise=WeightNoiseSpec("additive", 0.05)),
            LayerSpec(
                10, "identity", weight_noise=WeightNoiseSpec("multiplicative", 0.2, per="chip")
            ),
        ),
        4,
        output_weight_noise=WeightNoiseSpec("multiplicative", 0.1, biases=False),
    )
    model = build_mlp(spec, seed=3)
    x = _inputs(16, 5)
    result = propagate_noise(model, x, draws=800, seed=4)
    _within_mc_error(result)
    # a chip's fixed mismatch is part of the operating point (the mean), not noise
    chip_only = MLPSpec(
        5, (LayerSpec(10, "identity", weight_noise=spec.layers[1].weight_noise),), 4
    )
    model = build_mlp(chip_only, seed=3).eval()
    result = propagate_noise(model, x, draws=0)
    assert result["output"].predicted == 0.0
    np.testing.assert_allclose(result.mean["output"], model(x).detach().numpy(), atol=1e-6)
    with quiet(model):
        assert not np.allclose(result.mean["output"], model(x).detach().numpy(), atol=1e-3)


def test_extra_noise_equals_built_in_noise() -> None:
    noise = NoiseSpec("additive", 0.1, correlation=0.3)
    built = build_mlp(mlp_spec(4, (8, 8), 2, activation="tanh", noise=noise), seed=5)
    plain = build_mlp(mlp_spec(4, (8, 8), 2, activation="tanh"), seed=5)
    x = _inputs(10, 4)
    a = propagate_noise(built, x, draws=0, layers=("noise1", "noise2", "output"))
    b = propagate_noise(plain, x, draws=0, noise=noise, layers=("act1", "act2", "output"))
    np.testing.assert_allclose(a.variance["output"], b.variance["output"], rtol=1e-12)
    assert np.isnan(b["output"].measured)
    weights = propagate_noise(plain, x, noise="weight_additive", draws=400)
    assert all(layer.predicted == 0 for layer in weights.layers)  # σ = 0 by default
    weights = propagate_noise(plain, x, noise=WeightNoiseSpec("additive", 0.05), draws=400)
    _within_mc_error(weights)


@pytest.mark.parametrize("rho", [0.0, 0.6])
def test_covariance_entries_against_monte_carlo(rho: float) -> None:
    noise = NoiseSpec("additive", 0.3, correlation=rho)
    model = build_mlp(mlp_spec(3, (6, 6), 4, activation="identity", noise=noise), seed=6)
    draws = 4000
    result = propagate_noise(model, _inputs(3, 3), draws=draws, seed=7, covariance=True)
    for name in result.names:
        predicted, measured = result.covariance[name], result.measured_covariance[name]
        variance = np.diagonal(predicted, axis1=1, axis2=2)
        # standard error of a Gaussian sample covariance entry
        se = np.sqrt((variance[:, :, None] * variance[:, None, :] + predicted**2) / (draws - 1))
        assert np.max(np.abs(predicted - measured) / se) < 4.5, name
    first = result.covariance["noise1"][0]
    off = first[~np.eye(6, dtype=bool)]
    np.testing.assert_allclose(off, rho * 0.3**2, atol=1e-15)
    assert result["noise1"].predicted_correlation == pytest.approx(rho, abs=1e-12)
    assert result["noise1"].measured_correlation == pytest.approx(rho, abs=0.03)


def test_diagonal_mode() -> None:
    noise = NoiseSpec("additive", 0.1)
    model = build_mlp(mlp_spec(8, (64, 64), 4, activation="tanh", noise=noise), seed=8)
    x = _inputs(16, 8)
    full = propagate_noise(model, x, draws=0)
    diagonal = propagate_noise(model, x, draws=0, diagonal=True)
    np.testing.assert_allclose(diagonal.variance["noise1"], full.variance["noise1"], rtol=1e-12)
    # after a linear layer it ignores the correlations shared weights create: close, not equal
    assert diagonal["noise2"].predicted == pytest.approx(full["noise2"].predicted, rel=0.1)
    correlated = build_mlp(
        mlp_spec(8, (4,), 2, noise=NoiseSpec("additive", 0.1, correlation=0.5)), seed=8
    )
    with pytest.raises(ConfigError, match=r"noise1.*diagonal"):
        propagate_noise(correlated, x, diagonal=True)


# --------------------------------------------------------------------- real circuit families

KINDS = {
    "additive": NoiseSpec("additive"),
    "additive-correlated": NoiseSpec("additive", correlation=0.5),
    "multiplicative": NoiseSpec("multiplicative"),
    "multiplicative-correlated": NoiseSpec("multiplicative", correlation=0.5),
    "mixed-additive-first": NoiseSpec("mixed", order="additive_first"),
    "mixed-multiplicative-first": NoiseSpec("mixed", order="multiplicative_first"),
    "circuit": NoiseSpec("circuit"),
}


@pytest.fixture(scope="module")
def families(quick_store: Path) -> dict[str, Family]:
    """The quick store's families (seed 0), read once (the store holds other seeds too)."""
    return circuit_families(("mos_diffpair", "cmos_inverter"), quick_store, quick=True, seed=0)


def _circuit_network(family: Family, noise: NoiseSpec, seed: int = 0) -> nn.Module:
    """16 inputs → 3 hidden layers of 32 circuit neurons (noise after each) → 4 outputs."""
    activation = CircuitSpec(family, fit="tanh")  # a fixed fitted form: no fit at build time
    model = build_mlp(mlp_spec(16, (32, 32, 32), 4, activation=activation, noise=noise))
    _variance_preserving(model, seed=seed)
    return model


def _set_level(model: nn.Module, level: float) -> None:
    """Every noise module of ``model`` at ``level`` (σ, both σ of mixed noise, circuit scale)."""
    for module in noise_modules(model):
        if isinstance(module, CircuitNoise):
            module.scale = level
        elif isinstance(module, MixedNoise):
            module.additive = module.multiplicative = level
        else:
            module.sigma = level


@pytest.mark.parametrize("neuron", ["mos_diffpair", "cmos_inverter"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_each_noise_kind_within_ten_percent(
    families: dict[str, Family], neuron: str, kind: str
) -> None:
    """Noise set so that it reaches 10 % of the signal at the noisiest layer: every layer's
    predicted σ within 10 % of Monte Carlo."""
    model = _circuit_network(families[neuron], KINDS[kind])
    x = _inputs(32, 16, seed=1)
    _set_level(model, 1e-3)  # the prediction is proportional to the level for small noise
    probe = propagate_noise(model, x, draws=0)
    _set_level(model, 1e-3 * 0.10 / max(layer.relative for layer in probe.layers))
    result = propagate_noise(model, x, draws=96, seed=2)
    for layer in result.layers:
        assert 0.01 < layer.relative <= 0.105, layer
        assert abs(layer.ratio - 1.0) < 0.10, layer
    assert set(result.slopes) == {"act1", "act2", "act3"}
    slopes = result.slopes["act1"]
    assert slopes.shape == (32, 32) and np.all(slopes >= 0) and slopes.max() < 1.5
    model.eval()
    with quiet(model):
        clean = model(x)
    np.testing.assert_allclose(result.mean["output"], clean.detach().numpy(), atol=1e-5)


def test_correlation_through_circuit_layers(families: dict[str, Family]) -> None:
    noise = NoiseSpec("additive", 0.03, correlation=0.8)
    model = _circuit_network(families["mos_diffpair"], noise)
    result = propagate_noise(model, _inputs(32, 16), draws=256, seed=3)
    for layer in result.layers:
        assert layer.measured_correlation == pytest.approx(layer.predicted_correlation, abs=0.05)
    assert result["noise1"].predicted_correlation == pytest.approx(0.8, abs=1e-9)


def test_large_noise_may_deviate(families: dict[str, Family]) -> None:
    """At noise of the order of the signal the linearization overestimates the noise behind a
    saturating neuron: the ratio is reported, and here is not within 10 %."""
    model = _circuit_network(families["mos_diffpair"], NoiseSpec("additive", 1.0))
    result = propagate_noise(model, _inputs(32, 16), draws=64, seed=4)
    assert result["noise1"].ratio == pytest.approx(1.0, abs=0.02)  # no activation in between
    ratios = [layer.ratio for layer in result.layers]
    assert all(np.isfinite(ratios))
    assert max(ratios) > 1.2
    assert result["noise3"].relative > 1.0
    rows = result.table()
    assert [row["layer"] for row in rows] == ["noise1", "noise2", "noise3", "output"]
    assert {"predicted", "measured", "ratio", "error", "relative"} <= set(rows[0])


# ------------------------------------------------------------------------------------ errors


def test_unsupported_layers_are_named() -> None:
    conv = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 2))
    with pytest.raises(ConfigError, match=r"layer '0' \(Conv2d\)") as error:
        propagate_noise(conv, torch.zeros(2, 1, 4, 4))
    assert str(error.value) == (
        "propagate_noise does not support layer '0' (Conv2d): it handles MLPs of "
        "Linear/AnalogLinear layers, elementwise activations (CircuitActivation, torch "
        "activations) and the noise modules Additive/Multiplicative/Mixed/CircuitNoise (no "
        "convolutions, pooling or normalization)"
    )
    nested = nn.Sequential(nn.Linear(3, 3), nn.Sequential(nn.Tanh(), nn.Softmax(dim=1)))
    with pytest.raises(ConfigError, match=r"'1\.1' \(Softmax\)"):
        propagate_noise(nested, torch.zeros(2, 3))
    with pytest.raises(ConfigError, match=r"nn\.Sequential"):
        propagate_noise(nn.Linear(3, 3), torch.zeros(2, 3))
    model = build_mlp(mlp_spec(3, (4,), 2), seed=0)
    with pytest.raises(ConfigError, match="no layer 'act9'"):
        propagate_noise(model, torch.zeros(2, 3), layers=("act9",))
    with pytest.raises(ConfigError, match="draws"):
        propagate_noise(model, torch.zeros(2, 3), draws=1)
    with pytest.raises(ConfigError, match="samples, features"):
        propagate_noise(model, torch.zeros(3))
    names = "['linear1', 'act1', 'output']"
    for call, message in (
        (
            lambda: propagate_noise(nn.Linear(3, 3), torch.zeros(2, 3)),
            "propagate_noise needs an nn.Sequential MLP (as build_mlp makes), got Linear",
        ),
        (lambda: propagate_noise(nn.Sequential(), torch.zeros(2, 3)), "the model has no layers"),
        (
            lambda: propagate_noise(model, torch.zeros(2, 3), layers=("act9",)),
            f"no layer 'act9' to report; layers: {names}",
        ),
        (
            lambda: propagate_noise(model, torch.zeros(2, 3), draws=1),
            "draws must be 0 (prediction only) or at least 2",
        ),
        (
            lambda: propagate_noise(model, torch.zeros(2, 3), draws=-1),
            "draws must be at least 0, got -1",
        ),
        (
            lambda: propagate_noise(model, torch.zeros(2, 3), draws=2.0),
            "draws must be an integer, got 2.0",
        ),
        (
            lambda: propagate_noise(model, torch.zeros(3)),
            "x must be (samples, features), got shape (3,)",
        ),
        (
            lambda: propagate_noise(
                model, torch.zeros(2, 3), noise=NoiseSpec("additive", 0.1), noise_layers=("act9",)
            ),
            f"no layer 'act9' to put noise after; layers: {names}",
        ),
        (
            lambda: propagate_noise(
                model,
                torch.zeros(2, 3),
                noise=NoiseSpec("additive", 0.1, correlation=0.5),
                diagonal=True,
            ),
            "layer 'act1' has correlated noise (correlation=0.5): diagonal=True needs "
            "uncorrelated noise; use the full covariance",
        ),
    ):
        with pytest.raises(ConfigError) as error:
            call()
        assert str(error.value) == message


def test_layer_noise_row_holds_every_field_and_the_derived_ratios():
    """A table row: the fields by their names, the ratio predicted/measured and the relative
    noise predicted/signal worked out by hand, NaN where the divisor is 0."""
    from circuitnn.evaluate.propagation import LayerNoise

    layer = LayerNoise("act1", 4, 2.0, 0.5, 0.25, 0.1, 0.3, 0.2)
    assert layer.row() == {
        "layer": "act1",
        "width": 4,
        "signal": 2.0,
        "predicted": 0.5,
        "measured": 0.25,
        "ratio": 2.0,
        "error": 0.1,
        "relative": 0.25,
        "predicted_correlation": 0.3,
        "measured_correlation": 0.2,
    }
    silent = LayerNoise("act2", 1, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0).row()
    assert np.isnan(silent["ratio"]) and np.isnan(silent["relative"])


# ------------------------------------- each moments step against Gauss-Hermite quadrature


def _quadrature(function, dims: int, points: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Exact mean and covariance of ``function(z)`` over ``dims`` independent standard normals,
    by tensor-product Gauss-Hermite quadrature (exact for polynomials of degree < 2·points);
    ``function`` maps the nodes (dims, nodes) to the values (N, nodes)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(points)
    weights = weights / weights.sum()
    grid = np.stack(np.meshgrid(*[nodes] * dims, indexing="ij")).reshape(dims, -1)
    weight = np.prod(np.stack(np.meshgrid(*[weights] * dims, indexing="ij")), 0).ravel()
    values = function(grid)
    mean = values @ weight
    centred = values - mean[:, None]
    return mean, (centred * weight) @ centred.T


_MEAN = np.array([[0.7], [-1.3], [0.4]])  # a column: the nodes along the rows
_ROOT = np.array([[0.3, 0.0, 0.0], [0.1, 0.2, 0.0], [-0.2, 0.05, 0.25]])  # input noise x = m + L z
_COV = _ROOT @ _ROOT.T


def _shared(z: np.ndarray, rho: float) -> np.ndarray:
    """Draws of unit variance and correlation ρ between neurons from one shared number z[0] and
    each neuron's own z[1:]."""
    return np.sqrt(rho) * z[0] + np.sqrt(1.0 - rho) * z[1:]


def _moments(diagonal: bool):
    from circuitnn.evaluate.moments import Moments

    mean = torch.tensor(_MEAN.T)
    cov = np.diag(_COV)[None] if diagonal else _COV[None]
    return Moments(mean, torch.tensor(cov))


def _check(result, mean: np.ndarray, cov: np.ndarray, diagonal: bool) -> None:
    assert result.diagonal == diagonal
    assert result.mean.dtype == result.cov.dtype == torch.float64
    np.testing.assert_allclose(result.mean.numpy()[0], mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(result.variance.numpy()[0], np.diag(cov), rtol=1e-10)
    if not diagonal:
        np.testing.assert_allclose(result.cov.numpy()[0], cov, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("rho", [0.0, 0.3, 1.0])
def test_noise_moments_equal_quadrature_over_the_noise(rho: float) -> None:
    """Additive, multiplicative, mixed (both orders) and circuit noise on a correlated input:
    the moments after each equal the exact mean and covariance of the noisy signal, worked out
    by quadrature over the input's and the noise's normal draws (independent ones for mixed
    noise's two parts); diagonal mode (an input with independent noise) gives its variances.
    A float32 σ_out (exact in float32) is scaled in float64."""
    from circuitnn.evaluate import moments as mo

    sa, sm, scale, sigma_out = 0.3, 0.2, 1.7, np.array([[0.25], [0.5], [0.125]])
    for diagonal in (False, True):
        root = np.diag(np.sqrt(np.diag(_COV))) if diagonal else _ROOT
        cov_in = root @ root.T

        def x(z, root=root):
            return _MEAN + root @ z[:3]

        cases = {
            "additive": (
                lambda m: mo.additive(m, sa, rho),
                lambda z: x(z) + sa * _shared(z[3:7], rho),
            ),
            "multiplicative": (
                lambda m: mo.multiplicative(m, sm, rho),
                lambda z: x(z) * (1 + sm * _shared(z[3:7], rho)),
            ),
            "additive_first": (
                lambda m: mo.mixed(m, sa, sm, "additive_first", rho),
                lambda z: (x(z) + sa * _shared(z[3:7], rho)) * (1 + sm * _shared(z[7:11], rho)),
            ),
            "multiplicative_first": (
                lambda m: mo.mixed(m, sa, sm, "multiplicative_first", rho),
                lambda z: x(z) * (1 + sm * _shared(z[3:7], rho)) + sa * _shared(z[7:11], rho),
            ),
            "circuit": (
                lambda m: mo.circuit(m, torch.tensor(sigma_out.T, dtype=torch.float32), scale, rho),
                lambda z: x(z) + scale * sigma_out * _shared(z[3:7], rho),
            ),
        }
        for name, (step, noisy) in cases.items():
            dims = 11 if name in ("additive_first", "multiplicative_first") else 7
            mean, cov = _quadrature(noisy, dims)
            moments = _moments(diagonal)
            if diagonal:
                np.testing.assert_allclose(moments.cov.numpy()[0], np.diag(cov_in))
            _check(step(moments), mean, cov, diagonal)


@pytest.mark.parametrize("kind", ["additive", "multiplicative"])
@pytest.mark.parametrize("biases", [True, False])
def test_linear_moments_equal_quadrature_over_input_and_weight_noise(
    kind: str, biases: bool
) -> None:
    """``y = W x + b`` with per-forward weight noise (a draw per weight, and per bias when
    ``biases``) on a correlated input: the exact mean and covariance by quadrature over every
    draw; without weight noise or with σ = 0 the map alone (W Σ Wᵀ); diagonal mode's variances
    for an input with independent noise (where they are exact); a float32 layer's weight and bias
    in float64."""
    from circuitnn.evaluate import moments as mo

    weight = np.array([[0.9, -0.4, 0.3], [0.2, 1.1, -0.7]])
    bias = np.array([0.35, -0.6])
    sigma = 0.15

    def perturb(value: np.ndarray, z: np.ndarray) -> np.ndarray:
        """``value`` with a draw ``z`` (value's shape + nodes) per entry and node."""
        value = value[..., None]
        return value + sigma * z if kind == "additive" else value * (1 + sigma * z)

    def noisy(z: np.ndarray, root: np.ndarray, with_bias: bool = True) -> np.ndarray:
        w = perturb(weight, z[3:9].reshape(2, 3, -1))
        y = np.einsum("ikn,kn->in", w, _MEAN + root @ z[:3])
        if not with_bias:
            return y
        return y + (perturb(bias, z[9:11]) if biases else bias[:, None])

    for diagonal in (False, True):
        root = np.diag(np.sqrt(np.diag(_COV))) if diagonal else _ROOT
        mean, cov = _quadrature(lambda z, root=root: noisy(z, root), 11)
        spec = WeightNoiseSpec(kind, sigma, biases=biases)
        out = mo.linear(_moments(diagonal), torch.tensor(weight), torch.tensor(bias), spec)
        _check(out, mean, cov, diagonal)
        clean_cov = weight @ (root @ root.T) @ weight.T
        for quiet_spec in (None, WeightNoiseSpec(kind, 0.0)):
            out = mo.linear(
                _moments(diagonal), torch.tensor(weight), torch.tensor(bias), quiet_spec
            )
            _check(out, weight @ _MEAN[:, 0] + bias, clean_cov, diagonal)
    # a layer without a bias: no bias, nor its noise
    mean, cov = _quadrature(lambda z: noisy(z, _ROOT, with_bias=False), 9)
    out = mo.linear(_moments(False), torch.tensor(weight), None, WeightNoiseSpec(kind, sigma))
    _check(out, mean, cov, False)
    # a float32 layer: its parameters' values, computed with in float64
    weight, bias = weight.astype(np.float32), bias.astype(np.float32)
    mean, cov = _quadrature(lambda z: noisy(z, _ROOT), 11)
    spec = WeightNoiseSpec(kind, sigma, biases=biases)
    _check(
        mo.linear(_moments(False), torch.tensor(weight), torch.tensor(bias), spec), mean, cov, False
    )


def test_elementwise_moments_are_the_linearization_at_the_operating_point() -> None:
    """Through tanh: the mean is tanh of the clean mean, the covariance D Σ D with
    D = diag(1 − tanh²(mean)) (the derivative by hand), in either mode; the function runs in the
    dtype given (float32 here: the mean rounded to float32 first)."""
    from circuitnn.evaluate import moments as mo

    seen = []

    def function(point: torch.Tensor) -> torch.Tensor:
        seen.append(point.dtype)
        return torch.tanh(point)

    for diagonal, dtype in ((False, torch.float64), (True, torch.float64), (False, torch.float32)):
        mean = (
            _MEAN[:, 0].astype(np.float32).astype(np.float64)
            if dtype == torch.float32
            else _MEAN[:, 0]
        )
        slope = 1 - np.tanh(mean) ** 2
        cov = np.diag(slope) @ _COV @ np.diag(slope)
        result, slopes = mo.elementwise(_moments(diagonal), function, dtype)
        assert seen.pop() == dtype and slopes.dtype == torch.float64
        tolerance = 1e-12 if dtype == torch.float64 else 1e-6
        np.testing.assert_allclose(slopes.numpy()[0], slope, rtol=tolerance)
        assert result.mean.dtype == torch.float64
        np.testing.assert_allclose(result.mean.numpy()[0], np.tanh(mean), rtol=tolerance)
        expected = np.diag(cov) if diagonal else cov
        np.testing.assert_allclose(result.cov.numpy()[0], expected, rtol=tolerance, atol=1e-15)


def test_clean_moments_are_the_input_in_float64_with_no_noise() -> None:
    from circuitnn.evaluate.moments import Moments

    x = torch.tensor([[1.5, -2.0, 0.25], [0.0, 3.0, -1.0]], dtype=torch.float32, requires_grad=True)
    for diagonal, shape in ((False, (2, 3, 3)), (True, (2, 3))):
        moments = Moments.clean(x, diagonal)
        assert moments.diagonal == diagonal and not moments.mean.requires_grad
        assert moments.mean.dtype == torch.float64 and moments.cov.dtype == torch.float64
        assert torch.equal(moments.mean, x.detach().double())
        assert moments.cov.shape == shape and not moments.cov.any()
        assert moments.variance.shape == (2, 3) and not moments.variance.any()


def _small_network() -> tuple[nn.Sequential, dict[str, np.ndarray]]:
    """``lin`` (2 → 3) → tanh → additive noise σ = 0.2, ρ = 0.5 → ``out`` (3 → 2), float64,
    with its parameters as arrays."""
    from collections import OrderedDict

    model = nn.Sequential(
        OrderedDict(
            lin=nn.Linear(2, 3),
            act=nn.Tanh(),
            noise=AdditiveNoise(0.2, correlation=0.5),
            out=nn.Linear(3, 2),
        )
    ).double()
    values = {
        "w1": np.array([[0.5, -1.0], [1.5, 0.25], [-0.75, 0.5]]),
        "b1": np.array([0.1, -0.2, 0.3]),
        "w2": np.array([[1.0, -0.5, 2.0], [0.25, 0.75, -1.0]]),
        "b2": np.array([0.05, -0.1]),
    }
    with torch.no_grad():
        model.lin.weight.copy_(torch.tensor(values["w1"]))
        model.lin.bias.copy_(torch.tensor(values["b1"]))
        model.out.weight.copy_(torch.tensor(values["w2"]))
        model.out.bias.copy_(torch.tensor(values["b2"]))
    return model, values


def test_propagate_noise_of_a_small_network_worked_out_by_hand() -> None:
    """Every field of the result against numpy: the clean means, the slopes of tanh, the noise's
    covariance σ²C and W σ²C Wᵀ behind the readout, each row's signal (RMS over neurons of the
    sample variance), σ (RMS of the variances), correlation ((Σ cov − trace)/((N − 1)·trace),
    here ρ), a noiseless layer's 0 and NaN (measured 0 exactly); the measured σ is the RMS of
    the measured variances, within its own error of the prediction, and that error is the
    standard error that the Gaussian draws give (√(tr Σ²/(2·B·D))/tr Σ, relative); no draws:
    nothing measured."""
    model, v = _small_network()
    x = np.array([[0.3, -0.8], [1.2, 0.4], [-0.5, 0.9], [0.0, 0.1]])
    pre = x @ v["w1"].T + v["b1"]
    act = np.tanh(pre)
    noise_cov = 0.2**2 * (0.5 * np.ones((3, 3)) + 0.5 * np.eye(3))
    out_cov = v["w2"] @ noise_cov @ v["w2"].T
    out = act @ v["w2"].T + v["b2"]
    model.train()
    draws = 4000
    result = propagate_noise(model, x, draws=draws, seed=5, covariance=True)
    assert model.training  # put back as it was
    assert result.names == ["noise", "out"] and result.draws == draws
    with pytest.raises(KeyError, match=r"no layer 'act9'; have \['noise', 'out'\]"):
        result["act9"]
    for name, mean, cov in (("noise", act, noise_cov), ("out", out, out_cov)):
        layer = result[name]
        np.testing.assert_allclose(result.mean[name], mean, rtol=1e-12)
        np.testing.assert_allclose(result.covariance[name], np.broadcast_to(cov, (4, *cov.shape)))
        np.testing.assert_allclose(result.variance[name], np.tile(np.diag(cov), (4, 1)))
        n = cov.shape[0]
        assert layer.width == n
        assert layer.signal == pytest.approx(np.sqrt(np.mean(np.var(mean, axis=0, ddof=1))))
        assert layer.predicted == pytest.approx(np.sqrt(np.mean(np.diag(cov))))
        pairs = (cov.sum() - np.trace(cov)) / ((n - 1) * np.trace(cov))
        assert layer.predicted_correlation == pytest.approx(pairs)
        measured = result.measured_variance[name]
        assert measured.shape == (4, n)
        assert layer.measured == pytest.approx(np.sqrt(measured.mean()))
        assert result.measured_covariance[name].shape == (4, n, n)
        np.testing.assert_allclose(
            np.diagonal(result.measured_covariance[name], axis1=1, axis2=2), measured
        )
        expected_error = np.sqrt(np.trace(cov @ cov) / (2 * 4 * draws)) / np.trace(cov)
        assert layer.error == pytest.approx(expected_error, rel=0.1)
        assert abs(layer.ratio - 1) < 3 * layer.error
        assert layer.measured_correlation == pytest.approx(pairs, abs=0.05)
    assert result["noise"].predicted_correlation == pytest.approx(0.5, abs=1e-12)
    assert set(result.slopes) == {"act"}
    np.testing.assert_allclose(result.slopes["act"], 1 - act**2, rtol=1e-12)
    # before the noise: no noise predicted or measured
    model.eval()
    quiet_layers = propagate_noise(model, x, layers=("act", "lin"), draws=50, seed=5)
    assert not model.training
    assert quiet_layers.names == ["lin", "act"]  # in network order
    for layer in quiet_layers.layers:  # every draw the same: exactly 0, not the mean's rounding
        assert layer.predicted == 0.0 and layer.measured == 0.0
        assert np.isnan(layer.predicted_correlation) and np.isnan(layer.measured_correlation)
        assert np.isnan(layer.ratio) and np.isnan(layer.error)
        assert not quiet_layers.measured_variance[layer.layer].any()
    np.testing.assert_allclose(quiet_layers.mean["lin"], pre, rtol=1e-12)
    # no draws: the prediction alone
    alone = propagate_noise(model, x, draws=0)
    assert alone.measured_variance == {} and alone.measured_covariance == {}
    assert alone.covariance == {}
    for layer in alone.layers:
        assert np.isnan(layer.measured) and np.isnan(layer.error)
        assert np.isnan(layer.measured_correlation)
    # one sample: no signal spread (and no warning about it); two samples: their spread
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        single = propagate_noise(model, x[:1], draws=0)
    assert np.isnan(single["out"].signal)
    pair = propagate_noise(model, x[:2], draws=0)["out"].signal
    assert pair == pytest.approx(np.sqrt(np.mean(np.var(out[:2], axis=0, ddof=1))))
    # by default: the module before each linear layer not after another, and the last one
    front = nn.Sequential(
        AdditiveNoise(0.1), nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 2), nn.Linear(2, 2)
    ).double()
    assert propagate_noise(front, x, draws=0).names == ["0", "2", "4"]
    # a model without parameters (on the CPU)
    bare = propagate_noise(nn.Sequential(nn.Tanh(), AdditiveNoise(0.1)), x, draws=0)
    assert bare.names == ["1"] and bare["1"].predicted == pytest.approx(0.1)
    # extra noise after the layers named: predicted and measured there alone
    middle = nn.Linear(3, 3).double()
    with torch.no_grad():
        middle.weight.copy_(torch.tensor(v["w1"] @ v["w1"].T))
        middle.bias.zero_()
    plain = nn.Sequential(model.lin, nn.Tanh(), middle, nn.Identity(), model.out)
    extra = NoiseSpec("additive", 0.3)
    both = propagate_noise(plain, x, noise=extra, noise_layers=("1", "3"), draws=0)
    # after the identity alone, not after the tanh (the default: the activation layers)
    last = propagate_noise(plain, x, noise=extra, noise_layers=("3",), draws=800, seed=2)
    assert last.names == ["1", "3", "4"] and last["1"].predicted == 0.0
    assert last["3"].predicted == pytest.approx(0.3)
    assert last["4"].predicted < 0.9 * both["4"].predicted
    for name in ("3", "4"):
        assert abs(last[name].ratio - 1.0) <= 3 * last[name].error, name
    # a single neuron has no correlation
    lone = nn.Sequential(nn.Linear(2, 1), AdditiveNoise(0.1)).double()
    layer = propagate_noise(lone, x, draws=10)["1"]
    assert layer.width == 1 and layer.predicted == pytest.approx(0.1)
    with torch.no_grad():
        clean = lone[0](torch.as_tensor(x)).numpy()
    assert layer.signal == pytest.approx(np.std(clean, ddof=1))
    assert np.isnan(layer.predicted_correlation) and np.isnan(layer.measured_correlation)
    # a noise module switched off in evaluation, or disabled, adds nothing
    for switch in ("in_eval", "enabled"):
        setattr(model.noise, switch, False)
        silent = propagate_noise(model, x, draws=0)
        assert [layer.predicted for layer in silent.layers] == [0.0, 0.0], switch
        setattr(model.noise, switch, True)


def test_propagate_noise_in_chunks_and_in_diagonal_mode(monkeypatch) -> None:
    """Chunked over the samples (a covariance budget of one sample of the widest layer, then of
    two) the prediction is the same; a float32 model's activation is evaluated in float32;
    diagonal mode's covariance output is the diagonal matrix of its variances, and its
    correlation is NaN (not carried)."""
    from circuitnn.evaluate import propagation

    model, _ = _small_network()
    x = torch.tensor([[0.3, -0.8], [1.2, 0.4], [-0.5, 0.9]])  # float32: converted to float64
    whole = propagate_noise(model, x, draws=0, covariance=True)
    assert propagate_noise(model, x, draws=10)["out"].measured > 0  # the noisy runs too
    for budget in (9, 18, 26):
        monkeypatch.setattr(propagation, "MAX_ELEMENTS", budget)
        chunked = propagate_noise(model, x, draws=0, covariance=True)
        for name in whole.names:
            np.testing.assert_array_equal(chunked.covariance[name], whole.covariance[name])
            np.testing.assert_array_equal(chunked.mean[name], whole.mean[name])
            np.testing.assert_allclose(
                [
                    chunked[name].predicted,
                    chunked[name].signal,
                    chunked[name].predicted_correlation,
                ],
                [whole[name].predicted, whole[name].signal, whole[name].predicted_correlation],
                rtol=1e-12,
            )
    # a float32 model: the activation evaluated in float32
    single = copy.deepcopy(model).float()
    with torch.no_grad():
        pre = x.double() @ single.lin.weight.double().T + single.lin.bias.double()
    mean = propagate_noise(single, x, draws=0, layers=("act",)).mean["act"]
    np.testing.assert_array_equal(mean, torch.tanh(pre.float()).double())
    model.noise.correlation = 0.0
    full = propagate_noise(model, x, draws=0, covariance=True)
    diagonal = propagate_noise(model, x, draws=0, covariance=True, diagonal=True)
    for name in ("noise", "out"):
        variance = diagonal.variance[name]
        np.testing.assert_array_equal(
            diagonal.covariance[name], np.stack([np.diag(row) for row in variance])
        )
        assert np.isnan(diagonal[name].predicted_correlation)
    np.testing.assert_allclose(diagonal.variance["noise"], full.variance["noise"], rtol=1e-12)


def test_circuit_noise_predicted_from_the_operating_point_of_a_synthetic_family() -> None:
    """A layer of circuit neurons with their own noise (a synthetic family, no simulator): the
    mean is the activation of the clean pre-activation, the slopes its derivative (by finite
    differences), the covariance scale²·σ_out,i·σ_out,j·C_ij with σ_out at the pre-activation and
    C of correlation ρ, and W C' Wᵀ behind the readout; switched off in evaluation, the circuit
    still reports its slopes but no noise. In a float32 model the activation and σ_out are
    evaluated in float32."""
    from circuitnn.nn import CircuitNoise, synthetic_family

    family = synthetic_family("tanh", n=20, seed=3, noise=0.05, noise_bias_points=5)
    spec = mlp_spec(
        3, (4,), 2, activation=CircuitSpec(family), noise=NoiseSpec("circuit", 2.0, correlation=0.3)
    )
    model = build_mlp(spec, seed=4).double()
    x = _inputs(5, 3, seed=6).double()
    circuit = model.act1
    assert isinstance(circuit, CircuitNoise)
    activation = circuit.activation
    with torch.no_grad():
        pre = model.linear1(x)
        mean = activation(pre)
        sigma = activation.sigma(pre).numpy()
        step = 1e-6
        slope = ((activation(pre + step) - activation(pre - step)) / (2 * step)).numpy()
    correlation = 0.3 * np.ones((4, 4)) + 0.7 * np.eye(4)
    cov = 2.0**2 * sigma[:, :, None] * sigma[:, None, :] * correlation
    weight = model.output.weight.detach().numpy()
    result = propagate_noise(model, x, draws=0, covariance=True)
    assert result.names == ["act1", "output"]
    np.testing.assert_allclose(result.mean["act1"], mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(result.slopes["act1"], slope, rtol=1e-5)
    np.testing.assert_allclose(result.covariance["act1"], cov, rtol=1e-12)
    np.testing.assert_allclose(
        result.covariance["output"], weight @ cov @ weight.T, rtol=1e-10, atol=1e-16
    )
    assert np.all(sigma > 0)
    circuit.in_eval = False
    silent = propagate_noise(model, x, draws=0)
    np.testing.assert_allclose(silent.slopes["act1"], slope, rtol=1e-5)
    assert not silent.variance["act1"].any() and not silent.variance["output"].any()
    circuit.in_eval, circuit.scale = True, 0.0
    assert not propagate_noise(model, x, draws=0).variance["output"].any()
    # a float32 model: σ_out at the operating point rounded to float32, as the model runs
    model = build_mlp(spec, seed=4)
    activation = model.act1.activation
    weight, bias = (p.detach().double() for p in (model.linear1.weight, model.linear1.bias))
    pre = x @ weight.T + bias
    sigma = activation.sigma(pre.float()).double().numpy()
    cov = 2.0**2 * sigma[:, :, None] * sigma[:, None, :] * correlation
    result = propagate_noise(model, x.float(), draws=0, covariance=True)
    np.testing.assert_allclose(result.covariance["act1"], cov, rtol=1e-12)
    with torch.no_grad():
        np.testing.assert_array_equal(result.mean["act1"], activation(pre.float()).double())
