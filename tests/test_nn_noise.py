"""Noise modules and weight noise: statistics, switches, seeds, gradients, vectorized draws."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from circuitnn.errors import ConfigError
from circuitnn.nn import (
    AdditiveNoise,
    AnalogConv2d,
    AnalogLinear,
    CircuitActivation,
    CircuitNoise,
    MixedNoise,
    MultiplicativeNoise,
    NoiseSpec,
    WeightNoiseSpec,
    draws,
    synthetic_family,
)
from circuitnn.nn.random import (
    PARALLEL_FILL,
    STREAMS,
    DeviceGenerators,
    cpu_generator,
    derive_seed,
)

SAMPLES = 20000  # draws per statistic; tolerances are 3 standard errors


@pytest.fixture(scope="module")
def family():
    return synthetic_family("tanh", n=80, seed=2, noise=2e-3, noise_bias_points=11)


def correlation(noise: torch.Tensor) -> float:
    """Mean pairwise correlation across neurons (columns) of samples (rows)."""
    centred = noise - noise.mean(dim=0)
    covariance = centred.T @ centred / (len(noise) - 1)
    std = covariance.diagonal().sqrt()
    matrix = covariance / std[:, None] / std[None, :]
    n = matrix.shape[0]
    return float((matrix.sum() - n) / (n * (n - 1)))


@pytest.mark.parametrize("rho", [0.0, 0.3, 0.8, 1.0])
def test_additive_statistics(rho):
    sigma, neurons = 0.25, 6
    module = AdditiveNoise(sigma, correlation=rho, seed=1).double()
    x = torch.full((SAMPLES, neurons), 0.7, dtype=torch.float64)
    noise = module(x) - x
    n = noise.numel()
    assert n == SAMPLES * neurons
    # n = 6·SAMPLES draws, correlated ρ within a sample: the mean of all of them has variance
    # σ²·(1 + 5ρ)/n, their sample variance 2σ⁴·(1 + 5ρ²)/n (Gaussian), so the standard error
    # of the sample standard deviation is σ·√((1 + 5ρ²)/(2n))
    mean_error = sigma * math.sqrt((1 + (neurons - 1) * rho) / n)
    std_error = sigma * math.sqrt((1 + (neurons - 1) * rho**2) / (2 * n))
    assert abs(float(noise.mean())) < 3 * mean_error
    assert abs(float(noise.std()) - sigma) < 3 * std_error
    # one pair's sample correlation has standard error (1 - ρ²)/√SAMPLES; the mean over pairs
    # has no more
    tolerance = 3 * max(1 - rho**2, 1e-3) / math.sqrt(SAMPLES)
    assert abs(correlation(noise) - rho) < tolerance + 1e-9


@pytest.mark.parametrize("rho", [0.0, 0.5])
def test_multiplicative_statistics(rho):
    sigma = 0.1
    module = MultiplicativeNoise(sigma, correlation=rho, seed=2).double()
    x = torch.linspace(-2, 2, 5, dtype=torch.float64).repeat(SAMPLES, 1)
    x[:, 2] = 1.0  # avoid the zero column
    relative = module(x) / x - 1
    assert torch.all(relative.mean(dim=0).abs() < 3 * sigma / math.sqrt(SAMPLES))
    # the sample std of SAMPLES normals has standard error σ/√(2·SAMPLES)
    assert torch.all((relative.std(dim=0) - sigma).abs() < 3 * sigma / math.sqrt(2 * SAMPLES))
    assert abs(correlation(relative) - rho) < 3 * (1 - rho**2) / math.sqrt(SAMPLES)


@pytest.mark.parametrize("order", ["additive_first", "multiplicative_first"])
def test_mixed_statistics(order):
    a, m, value = 0.2, 0.3, 1.5
    module = MixedNoise(a, m, order=order, seed=3).double()
    x = torch.full((SAMPLES, 4), value, dtype=torch.float64)
    y = module(x)
    variance = value**2 * m**2 + a**2 + (a**2 * m**2 if order == "additive_first" else 0.0)
    sigma = math.sqrt(variance)
    assert abs(float(y.mean()) - value) < 3 * sigma / math.sqrt(y.numel())
    # the sample std of n normals has standard error σ/√(2n); 3σ/√n is looser still
    assert abs(float(y.std()) - sigma) < 3 * sigma / math.sqrt(SAMPLES)


def test_zero_sigma_and_switches_give_exactly_clean_output(family):
    x = torch.randn(64, 5)
    for module in (
        AdditiveNoise(0.0),
        MultiplicativeNoise(0.0),
        MixedNoise(0.0, 0.0),
        AdditiveNoise(1.0, in_training=False),
    ):
        module.train()
        assert torch.equal(module(x), x)
    for module in (AdditiveNoise(1.0, in_eval=False), MultiplicativeNoise(1.0, in_eval=False)):
        module.eval()
        assert torch.equal(module(x), x)
        module.train()
        assert not torch.equal(module(x), x)
    silenced = AdditiveNoise(1.0)
    silenced.enabled = False
    assert torch.equal(silenced(x), x)
    activation = CircuitActivation(family, 5, generator=0)
    circuit = CircuitNoise(activation, scale=0.0)
    assert torch.equal(circuit(x), activation(x))


def test_seeds_reproduce_draws():
    x = torch.zeros(100, 8)
    a, b, c = AdditiveNoise(1.0, seed=7), AdditiveNoise(1.0, seed=7), AdditiveNoise(1.0, seed=8)
    first = a(x)
    assert torch.equal(first, b(x))
    assert not torch.equal(first, c(x))
    assert not torch.equal(a(x), first), "successive draws differ"
    a.reseed(7)
    assert torch.equal(a(x), first), "reseeding restarts the sequence"
    torch.manual_seed(0)
    unseeded = AdditiveNoise(1.0)(x)
    torch.manual_seed(0)
    assert torch.equal(AdditiveNoise(1.0)(x), unseeded), "seed=None follows torch.manual_seed"


def _reseeded(module: torch.nn.Module, seed: int = 11):
    def call(x: torch.Tensor) -> torch.Tensor:
        module.reseed(seed)
        return module(x)

    return call


@pytest.mark.parametrize(
    "make",
    [
        lambda: AdditiveNoise(0.3, correlation=0.4),
        lambda: MultiplicativeNoise(0.3, correlation=0.4),
        lambda: MixedNoise(0.2, 0.3, order="additive_first", correlation=0.2),
        lambda: MixedNoise(0.2, 0.3, order="multiplicative_first"),
    ],
    ids=["additive", "multiplicative", "mixed-additive-first", "mixed-multiplicative-first"],
)
def test_gradcheck_noise_modules(make):
    module = make().double()
    x = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_reseeded(module), (x,))


def test_gradcheck_circuit_noise(family):
    activation = CircuitActivation(family, 5, generator=0).double()
    module = CircuitNoise(activation, scale=3.0, correlation=0.5).double()
    grid = torch.as_tensor(activation.tables.network_grid)
    step = float(grid[1] - grid[0])
    segment = torch.randint(0, len(grid) - 1, (4, 5), generator=torch.Generator().manual_seed(0))
    x = (grid[0] + (segment.double() + 0.5) * step).requires_grad_(True)
    assert torch.autograd.gradcheck(_reseeded(module), (x,), eps=1e-7, atol=1e-6)


def test_circuit_noise_follows_each_neurons_simulated_sigma(family):
    activation = CircuitActivation(family, 4, generator=1).double()
    module = CircuitNoise(activation, seed=5).double()
    volts = np.array([-0.4, -0.05, 0.0, 0.3])
    u = torch.as_tensor(activation.scaling.to_network_input(volts))
    x = u[:, None, None].expand(-1, SAMPLES, 4).reshape(-1, 4)
    noise = (module(x) - activation(x)).reshape(len(volts), SAMPLES, 4)
    measured = noise.std(dim=1).numpy()
    chip = activation.chip.numpy()
    expected = family.noise.sigma_at(volts)[chip].T / abs(activation.scaling.output_scale)
    assert np.all(np.abs(measured - expected) < 3 * expected / math.sqrt(SAMPLES))
    assert np.all(np.abs(noise.mean(dim=1).numpy()) < 3 * expected / math.sqrt(SAMPLES))
    # bias dependence: noise is largest at the steep middle
    assert expected[2].min() > expected[0].max()


def test_circuit_noise_needs_noise_data(family):
    quiet_family = dataclasses.replace(family, noise=None)
    activation = CircuitActivation(quiet_family, 3, generator=0)
    with pytest.raises(ConfigError, match="no noise data"):
        CircuitNoise(activation)
    with pytest.raises(ConfigError) as error:
        activation.sigma(torch.zeros(1, 3))
    assert str(error.value) == (
        f"family {activation.family_name()} has no noise data (Family.noise is None): extract "
        "it with the noise analysis to use circuit noise"
    )
    with pytest.raises(ConfigError, match="wraps"):
        NoiseSpec("circuit", 1.0).build()
    assert CircuitActivation(None, 3).family_name() == "none (empty layer)"


def test_circuit_sigma_is_each_neurons_own_or_the_familys_median(family):
    """σ_out at network inputs x, linear between the noise grid's points and constant outside:
    sampled mode, neuron j's own curve (``sigma_table[j]``); nominal mode, the family's median
    curve (``nominal_sigma``) for every neuron."""
    x = torch.linspace(-6.0, 6.0, 41, dtype=torch.float64)[:, None].expand(41, 3)
    for mode in ("sampled", "nominal"):
        activation = CircuitActivation(family, 3, generator=4, mode=mode).double()
        grid = activation.tables.network_grid
        curves = activation.sigma_table if mode == "sampled" else activation.nominal_sigma
        sigma = activation.sigma(x).detach().numpy()
        for j in range(3):
            curve = curves[j if mode == "sampled" else 0].numpy()
            expected = np.interp(x[:, j].numpy(), grid, curve)
            np.testing.assert_allclose(sigma[:, j], expected, rtol=1e-9, atol=1e-15)
        assert np.ptp(sigma, axis=1).max() > 0 if mode == "sampled" else np.ptp(sigma) > 0
        if mode == "nominal":
            assert (sigma == sigma[:, :1]).all()


def test_noise_spec_builds_and_validates():
    assert isinstance(NoiseSpec("multiplicative", 0.1).build(seed=1), MultiplicativeNoise)
    assert NoiseSpec("circuit").sigma == 1.0 and NoiseSpec("additive").sigma == 0.0
    mixed = NoiseSpec("mixed", 0.1, multiplicative=0.2).with_level(0.3)
    assert mixed.sigma == 0.3 and mixed.multiplicative == pytest.approx(0.6)
    module = mixed.build()
    assert (module.additive, module.multiplicative) == (0.3, pytest.approx(0.6))
    with pytest.raises(ConfigError, match="correlation"):
        NoiseSpec("additive", 0.1, correlation=1.5)
    with pytest.raises(ConfigError, match="kind"):
        NoiseSpec("pink", 0.1)
    with pytest.raises(ConfigError, match="sigma"):
        AdditiveNoise(-1.0)
    with pytest.raises(ConfigError, match="order"):
        MixedNoise(0.1, 0.1, order="sideways")


# --------------------------------------------------------------------------- weight noise


@pytest.mark.parametrize("kind", ["additive", "multiplicative"])
def test_weight_noise_statistics(kind):
    sigma = 0.05
    layer = AnalogLinear(
        1, 4, weight_noise=WeightNoiseSpec(kind, sigma, per="forward"), seed=3
    ).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0], [-2.0], [0.5], [3.0]]))
        layer.bias.zero_()
        layer.bias.add_(torch.tensor([0.1, 0.2, -0.3, 1.0]))
    x = torch.ones(SAMPLES, 1, dtype=torch.float64)
    with draws(SAMPLES):
        y = layer(x)  # one weight draw per row
    clean = (layer.weight[:, 0] + layer.bias).detach()
    if kind == "additive":
        expected = torch.full((4,), math.sqrt(2) * sigma, dtype=torch.float64)
    else:
        expected = sigma * torch.sqrt(layer.weight[:, 0] ** 2 + layer.bias**2).detach()
    assert torch.all((y.mean(dim=0) - clean).abs() < 3 * expected / math.sqrt(SAMPLES))
    assert torch.all((y.std(dim=0) - expected).abs() < 3 * expected / math.sqrt(SAMPLES))


def test_weight_noise_per_chip_is_fixed_until_resampled(tmp_path):
    spec = WeightNoiseSpec("multiplicative", 0.1, per="chip")
    layer = AnalogLinear(5, 3, weight_noise=spec, generator=1)
    x = torch.randn(8, 5)
    first = layer(x)
    assert torch.equal(layer(x), first)
    clean = torch.nn.functional.linear(x, layer.weight, layer.bias)
    assert not torch.allclose(first, clean)
    torch.save(layer.state_dict(), tmp_path / "layer.pt")
    layer.resample(2)
    assert not torch.equal(layer(x), first)
    layer.load_state_dict(torch.load(tmp_path / "layer.pt", weights_only=True))
    assert torch.equal(layer(x), first)
    layer.weight_noise = WeightNoiseSpec("multiplicative", 0.1, biases=False, in_eval=False)
    layer.eval()
    assert torch.equal(layer(x), clean)


def test_weight_noise_biases_switch_and_zero_sigma():
    layer = AnalogLinear(3, 2, weight_noise=WeightNoiseSpec("additive", 0.0))
    x = torch.randn(4, 3)
    assert torch.equal(layer(x), torch.nn.functional.linear(x, layer.weight, layer.bias))
    layer.weight_noise = WeightNoiseSpec("additive", 1.0, biases=False)
    zeros = torch.zeros(4, 3)
    assert torch.equal(layer(zeros), layer.bias.expand(4, 2))


def test_vectorized_draws_match_a_loop_over_draws():
    spec = WeightNoiseSpec("additive", 0.2)
    d, batch = 3, 5
    linear = AnalogLinear(4, 6, weight_noise=spec, seed=9).double()
    conv = AnalogConv2d(2, 3, 3, padding=1, weight_noise=spec, seed=9).double()
    for layer, x in ((linear, torch.randn(batch, 4)), (conv, torch.randn(batch, 2, 5, 5))):
        x = x.double()
        with draws(d):
            y = layer(x.repeat(d, *([1] * (x.dim() - 1))))
        generator = torch.Generator().manual_seed(9)
        z_weight = torch.randn((d, *layer.weight.shape), generator=generator, dtype=torch.float64)
        z_bias = torch.randn((d, *layer.bias.shape), generator=generator, dtype=torch.float64)
        for k in range(d):
            weight = layer.weight + 0.2 * z_weight[k]
            bias = layer.bias + 0.2 * z_bias[k]
            if isinstance(layer, AnalogConv2d):
                expected = torch.nn.functional.conv2d(x, weight, bias, padding=1)
            else:
                expected = torch.nn.functional.linear(x, weight, bias)
            torch.testing.assert_close(y[k * batch : (k + 1) * batch], expected)
    with draws(4), pytest.raises(ConfigError, match="multiple"):
        linear(torch.randn(6, 4, dtype=torch.float64))


@pytest.mark.parametrize("per", ["forward", "chip"])
def test_gradcheck_weight_noise(per):
    spec = WeightNoiseSpec("multiplicative", 0.2, per=per)
    for layer, shape in (
        (AnalogLinear(3, 2, weight_noise=spec), (4, 3)),
        (AnalogConv2d(2, 2, 3, padding=1, weight_noise=spec), (2, 2, 4, 4)),
    ):
        layer = layer.double()
        x = torch.randn(shape, dtype=torch.float64, requires_grad=True)

        def call(x, weight, bias, layer=layer):
            layer.reseed(4)
            return torch.func.functional_call(layer, {"weight": weight, "bias": bias}, (x,))

        weight = layer.weight.detach().clone().requires_grad_(True)
        bias = layer.bias.detach().clone().requires_grad_(True)
        assert torch.autograd.gradcheck(call, (x, weight, bias))


def test_unrepeated_inputs_give_the_same_draws_as_repeated_ones(family):
    """Inside draws(D, batch=B) the noiseless front runs once and the first noise source expands;
    the random numbers, and so the outputs, are those of the pre-repeated input."""
    from circuitnn.nn import CircuitSpec, LayerSpec, MLPSpec, build_mlp

    spec = MLPSpec(
        4,
        (
            LayerSpec(6, CircuitSpec(family)),
            LayerSpec(
                5,
                "tanh",
                NoiseSpec("additive", 0.3, correlation=0.3),
                WeightNoiseSpec("multiplicative", 0.2),
            ),
            LayerSpec(5, CircuitSpec(family), NoiseSpec("circuit", 10.0)),
        ),
        3,
        WeightNoiseSpec("additive", 0.1),
    )
    d, batch = 7, 9
    x = torch.randn(batch, 4, dtype=torch.float64)
    outputs = []
    for unrepeated in (False, True):
        model = build_mlp(spec, seed=2).double().eval()
        if unrepeated:
            with draws(d, batch=batch):
                outputs.append(model(x))
        else:
            with draws(d):
                outputs.append(model(x.repeat(d, 1)))
    assert outputs[0].shape == outputs[1].shape == (d * batch, 3)
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-12, atol=1e-12)
    rows = outputs[0].reshape(d, batch, 3)
    assert not torch.allclose(rows[0], rows[1]), "draws differ"
    conv = AnalogConv2d(2, 3, 3, padding=1, weight_noise=WeightNoiseSpec("additive", 0.2), seed=1)
    image = torch.randn(batch, 2, 5, 5)
    with draws(d, batch=batch):
        lazy = conv(image)
    conv.reseed(1)
    with draws(d):
        eager = conv(image.repeat(d, 1, 1, 1))
    torch.testing.assert_close(lazy, eager)


def test_reseed_noise_gives_every_noise_source_its_own_seed():
    from circuitnn.nn import build_mlp, mlp_spec, reseed_noise

    spec = mlp_spec(
        4,
        (6, 6),
        2,
        noise=NoiseSpec("additive", 0.5),
        weight_noise=WeightNoiseSpec("additive", 0.1),
    )
    model = build_mlp(spec, seed=0)
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
    outputs = []
    for seed in (3, 3, 4):
        reseed_noise(model, seed)
        outputs.append(model(x).detach())
    assert torch.equal(outputs[0], outputs[1]) and not torch.equal(outputs[0], outputs[2])
    seeds = [m.generators.seed for m in model.modules() if hasattr(m, "generators")]
    assert len(seeds) >= 5 and len(set(seeds)) == len(seeds), seeds  # each its own
    reseed_noise(model, None)
    assert all(m.generators.seed is None for m in model.modules() if hasattr(m, "generators"))


def test_a_large_cpu_fill_is_slices_of_their_own_generators(torch_threads):
    """From PARALLEL_FILL numbers on, a seeded CPU fill is STREAMS equal slices, slice k drawn
    by a generator of its own seeded with derive_seed(seed, k): the same numbers at any thread
    count. Below that, one generator seeded with the seed itself, which a large fill leaves
    alone. The fill has the shape and dtype of ``like``."""
    generators = DeviceGenerators(5)
    like = torch.empty(2, PARALLEL_FILL // 2, dtype=torch.float64)
    out = generators.normal(like, mean=3.0, std=0.5)
    assert out.shape == like.shape and out.dtype == torch.float64
    for k, part in enumerate(out.view(-1).chunk(STREAMS), start=1):
        own = torch.Generator().manual_seed(derive_seed(5, k))
        assert torch.equal(part, torch.empty_like(part).normal_(3.0, 0.5, generator=own))
    small = torch.empty(PARALLEL_FILL - 1, dtype=torch.float64)
    expected = torch.empty_like(small).normal_(generator=torch.Generator().manual_seed(5))
    assert torch.equal(DeviceGenerators(5).normal(small), expected)
    assert torch.equal(generators.normal(small), expected)


def test_fills_are_standard_normal_by_default():
    """N(0, 1) unless told otherwise, small fills and large ones: sample mean and standard
    deviation within 4 standard errors (1/√n and 1/√(2n))."""
    for size in (SAMPLES, PARALLEL_FILL):
        sample = DeviceGenerators(9).normal(torch.empty(size, dtype=torch.float64))
        assert abs(float(sample.mean())) < 4 / math.sqrt(size)
        assert abs(float(sample.std()) - 1.0) < 4 / math.sqrt(2 * size)


def test_an_unseeded_large_fill_follows_torchs_global_seed():
    """seed=None: the slices' generators are seeded from torch's global RNG, so
    torch.manual_seed reproduces the fill, and every slice of every fill is a stream of its own
    (33 fills: 132 slices, none starting like another)."""
    like = torch.empty(PARALLEL_FILL)
    torch.manual_seed(0)
    first = DeviceGenerators().normal(like)
    torch.manual_seed(0)
    assert torch.equal(DeviceGenerators().normal(like), first)
    starts = {
        float(part[0]) for _ in range(33) for part in DeviceGenerators().normal(like).chunk(STREAMS)
    }
    assert len(starts) == 33 * STREAMS


def test_cpu_generator_takes_seeds_below_2_to_the_63_and_names_what_it_refuses() -> None:
    """None stays None, a CPU generator is used as given, an int seeds a new one (up to
    2**63 - 1, the same stream as torch's own generator seeded alike); anything else is refused
    with a one-line error naming the setting ("generator" unless the caller names another)."""
    assert cpu_generator(None) is None
    given = torch.Generator()
    assert cpu_generator(given) is given
    for seed in (0, 7, 2**63 - 1):
        expected = torch.randn(5, generator=torch.Generator().manual_seed(seed))
        assert torch.equal(torch.randn(5, generator=cpu_generator(seed)), expected)
    for seed in (-1, 2**63, 2**64, 3**63):
        with pytest.raises(
            ConfigError, match=rf"^generator must be in \[0, 2\*\*63\), got {seed}$"
        ):
            cpu_generator(seed)
    with pytest.raises(ConfigError, match=r"^generator must be an int seed, a torch.Generator"):
        cpu_generator(True)
    with pytest.raises(ConfigError, match=r"^noise_seed must be an int seed.*got 1\.5$"):
        cpu_generator(1.5, field="noise_seed")


def _standard(generator: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(shape, generator=generator, dtype=torch.float64)


def _draw(generator: torch.Generator, batch: int, width: int, rho: float) -> torch.Tensor:
    """The documented z = √ρ·z_shared + √(1 − ρ)·z_own (unit variance, correlation ρ) from
    ``generator``: the shared number per sample drawn first (alone at ρ = 1), then each
    neuron's own (alone at ρ = 0)."""
    if rho == 0.0:
        return _standard(generator, batch, width)
    shared = _standard(generator, batch, 1)
    if rho == 1.0:
        return shared.expand(batch, width)
    return math.sqrt(rho) * shared + math.sqrt(1 - rho) * _standard(generator, batch, width)


@pytest.mark.parametrize("rho", [0.0, 0.36, 1.0])
@pytest.mark.parametrize("tracked", [False, True], ids=["inference", "autograd"])
def test_noise_modules_add_the_documented_draws_from_their_seed(rho, tracked, family):
    """Each module's output, draw for draw, against its formula in the module docstring with
    z from its seed (two draws in the order the noise is applied for mixed noise, none for a
    part that is 0): additive x + σz, multiplicative x(1 + σz), mixed in either order,
    circuit f(x) + scale·σ_out(x)·z; the same with autograd on (no in-place shortcut)."""
    x = torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x.requires_grad_(tracked)
    a, m = 0.3, 0.2

    def z(count: int = 1) -> list[torch.Tensor]:
        """The first ``count`` draws of a module seeded with 4."""
        generator = torch.Generator().manual_seed(4)
        return [_draw(generator, 6, 4, rho) for _ in range(count)]

    switches = {"correlation": rho, "seed": 4}
    cases = [
        (AdditiveNoise(a, **switches), x + a * z()[0]),
        (MultiplicativeNoise(m, **switches), x * (1 + m * z()[0])),
        (
            MixedNoise(a, m, order="additive_first", **switches),
            (x + a * z(2)[0]) * (1 + m * z(2)[1]),
        ),
        (
            MixedNoise(a, m, order="multiplicative_first", **switches),
            x * (1 + m * z(2)[0]) + a * z(2)[1],
        ),
        (MixedNoise(0.0, m, order="additive_first", **switches), x * (1 + m * z()[0])),
        (MixedNoise(a, 0.0, order="multiplicative_first", **switches), x + a * z()[0]),
        (MixedNoise(1.0, 0.0, **switches), x + z()[0]),
        (MixedNoise(0.0, 1.0, **switches), x * (1 + z()[0])),
    ]
    activation = CircuitActivation(family, 4, generator=0).double()
    circuit = CircuitNoise(activation, scale=2.5, **switches).double()
    cases.append((circuit, activation(x) + 2.5 * activation.sigma(x) * z()[0]))
    for module, expected in cases:
        module = module.double()
        torch.testing.assert_close(module(x), expected, rtol=1e-12, atol=1e-12)
    # the draws themselves are N(0, 1) unless told otherwise
    standard = torch.randn((4, 2), generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    like = torch.empty(4, 2, dtype=torch.float64)
    module = AdditiveNoise(0.25, seed=3)
    torch.testing.assert_close(module.normal(like), standard, rtol=1e-12, atol=1e-12)


def test_noise_specs_build_modules_with_every_setting_and_name_bad_ones(family):
    """``NoiseSpec.build`` hands every setting to the module (σ, the default multiplicative part
    of mixed noise equal to σ, the order, the switches, the seed, the activation a circuit noise
    wraps); ``with_level`` keeps mixed noise's ratio (1 when σ was 0, none when unset); every
    bad setting is refused by name; the modules print their settings."""
    from circuitnn.nn import noise_modules

    for kind, cls in (("additive", AdditiveNoise), ("multiplicative", MultiplicativeNoise)):
        spec = NoiseSpec(kind, 0.25, correlation=0.4, in_training=False, in_eval=True)
        module = spec.build(seed=9)
        assert type(module) is cls and module.sigma == 0.25 and module.correlation == 0.4
        assert (module.in_training, module.in_eval, module.generators.seed) == (False, True, 9)
        module = NoiseSpec(kind, 0.25, in_training=True, in_eval=False).build()
        assert (module.in_training, module.in_eval, module.generators.seed) == (True, False, None)
    mixed = NoiseSpec("mixed", 0.25, order="additive_first", correlation=0.5).build(seed=2)
    assert type(mixed) is MixedNoise and (mixed.additive, mixed.multiplicative) == (0.25, 0.25)
    assert (mixed.order, mixed.correlation, mixed.generators.seed) == ("additive_first", 0.5, 2)
    assert NoiseSpec("mixed", 0.25, multiplicative=0.1).build().multiplicative == 0.1
    assert NoiseSpec("mixed", 0.25).build().order == "multiplicative_first"
    activation = CircuitActivation(family, 3, generator=0)
    circuit = NoiseSpec("circuit", 2.0, correlation=0.3, in_eval=False).build(activation, seed=5)
    assert type(circuit) is CircuitNoise and circuit.activation is activation
    assert (circuit.scale, circuit.correlation, circuit.in_eval) == (2.0, 0.3, False)
    assert circuit.generators.seed == 5 and NoiseSpec("circuit").build(activation).scale == 1.0
    assert noise_modules(torch.nn.Sequential(activation, mixed, circuit)) == [mixed, circuit]

    for value in (1, np.float32(0.5)):  # stored as a float
        assert type(NoiseSpec("additive", value).sigma) is float
    level = NoiseSpec("additive", 0.1, correlation=0.2).with_level(0.7)
    assert level == NoiseSpec("additive", 0.7, correlation=0.2)
    unset = NoiseSpec("mixed", 0.1).with_level(0.7)
    assert (unset.sigma, unset.multiplicative) == (0.7, None)
    from_zero = NoiseSpec("mixed", 0.0, multiplicative=0.2).with_level(0.5)
    assert (from_zero.sigma, from_zero.multiplicative) == (0.5, 0.5)
    for call, message in (
        (lambda: NoiseSpec("additive", 0.1).with_level(-1.0), "^noise level must be >= 0"),
        (lambda: NoiseSpec("additive", 0.1, multiplicative=0.2), "^NoiseSpec.multiplicative "),
        (lambda: NoiseSpec("mixed", 0.1, multiplicative=-0.2), "^NoiseSpec.multiplicative "),
        (lambda: NoiseSpec("additive", -0.1), "^NoiseSpec.sigma must be >= 0"),
        (lambda: NoiseSpec("pink"), "^NoiseSpec.kind must be one of"),
        (lambda: NoiseSpec("mixed", order="up"), "^NoiseSpec.order must be one of"),
        (lambda: NoiseSpec(correlation=2.0), r"^NoiseSpec.correlation must be in \[0, 1\]"),
        (lambda: NoiseSpec(in_training=1), "^NoiseSpec.in_training must be True or False"),
        (lambda: NoiseSpec(in_eval=None), "^NoiseSpec.in_eval must be True or False"),
        (lambda: AdditiveNoise(0.1, correlation=-0.5), r"^correlation must be in \[0, 1\]"),
        (lambda: AdditiveNoise(0.1, in_training="yes"), "^in_training must be True or False"),
        (lambda: AdditiveNoise(0.1, in_eval="no"), "^in_eval must be True or False"),
        (lambda: MultiplicativeNoise(-0.1), "^sigma must be >= 0"),
        (lambda: AdditiveNoise(-0.1), "^sigma must be >= 0"),
        (
            lambda: NoiseSpec("circuit").build(),
            r"^NoiseSpec\(kind='circuit'\) needs the CircuitActivation it wraps$",
        ),
        (lambda: MixedNoise(-0.1, 0.1), "^additive must be >= 0"),
        (lambda: MixedNoise(0.1, -0.1), "^multiplicative must be >= 0"),
        (lambda: MixedNoise(0.1, 0.1, order="up"), "^order must be one of"),
        (lambda: CircuitNoise(activation, scale=-1.0), "^scale must be >= 0"),
        (
            lambda: CircuitNoise(torch.nn.Tanh()),
            "^CircuitNoise needs a CircuitActivation, got Tanh$",
        ),
    ):
        with pytest.raises(ConfigError, match=message):
            call()
    quiet = CircuitActivation(dataclasses.replace(family, noise=None), 3, generator=0)
    with pytest.raises(ConfigError) as error:
        CircuitNoise(quiet)
    assert str(error.value) == (
        f"family {quiet.family_name()} has no noise data (Family.noise is None): extract it "
        "with the noise analysis to use CircuitNoise"
    )
    switches = "correlation=0.5, in_training=False, in_eval=True, seed=3"
    settings = {"correlation": 0.5, "in_training": False, "seed": 3}
    assert repr(AdditiveNoise(0.25, **settings)) == f"AdditiveNoise(sigma=0.25, {switches})"
    assert (
        repr(MultiplicativeNoise(0.5, **settings)) == f"MultiplicativeNoise(sigma=0.5, {switches})"
    )
    assert repr(MixedNoise(0.1, 0.2, "additive_first", **settings)) == (
        f"MixedNoise(additive=0.1, multiplicative=0.2, order='additive_first', {switches})"
    )
    assert CircuitNoise(activation, 2.5, **settings).extra_repr() == f"scale=2.5, {switches}"
    for module in (AdditiveNoise(0.1), MultiplicativeNoise(0.1), MixedNoise(0.1, 0.1)):
        # independent, on in training and evaluation, from torch's global generator
        assert module.correlation == 0.0 and module.in_training and module.in_eval
        assert module.enabled and module.generators.seed is None
    module = AdditiveNoise(0.25, seed=3)
    module.reseed(None)
    assert module.generators.seed is None
    module.reseed(8)
    assert module.generators.seed == 8


@pytest.mark.parametrize("kind", ["additive", "multiplicative"])
def test_analog_linear_uses_the_documented_weights_draw_for_draw(kind):
    """Per forward pass, w' = w + σz (additive) or w·(1 + σz) (multiplicative) with z from the
    layer's seed (weights, then biases when ``biases``), in one pass and in D draws (batched,
    with and without a bias, the input repeated or not); per chip, the same with the mismatch
    drawn in float64 from the generator (cast to the layer's dtype), fixed until resampled;
    the switches (training, evaluation, ``noise_enabled``, σ = 0) give the clean layer."""
    from torch.nn import functional as F

    sigma, d, batch = 0.2, 3, 4
    x = torch.randn(batch, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))

    def perturb(value, z):
        return value + sigma * z if kind == "additive" else value * (1 + sigma * z)

    for biases, has_bias in ((True, True), (False, True), (True, False)):
        spec = WeightNoiseSpec(kind, sigma, biases=biases)
        layer = AnalogLinear(3, 2, has_bias, weight_noise=spec, seed=6).double()
        w, b = layer.weight.detach(), layer.bias.detach() if has_bias else None
        for count in (1, d):
            generator = torch.Generator().manual_seed(6)
            lead = (count,) if count > 1 else ()
            z_w = torch.randn((*lead, 2, 3), generator=generator, dtype=torch.float64)
            z_b = torch.randn((*lead, 2), generator=generator, dtype=torch.float64)
            weights = perturb(w, z_w).reshape(count, 2, 3)
            biases_ = None
            if has_bias:
                biases_ = perturb(b, z_b) if biases else b.expand(*lead, 2)
                biases_ = biases_.reshape(count, 2)
            expected = torch.cat(
                [F.linear(x, weights[k], None if b is None else biases_[k]) for k in range(count)]
            )
            for unrepeated in (False, True) if count > 1 else (False,):
                layer.reseed(6)
                if count == 1:
                    out = layer(x)
                elif unrepeated:
                    with draws(count, batch=batch):
                        out = layer(x)
                else:
                    with draws(count):
                        out = layer(x.repeat(count, 1))
                torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)

    chip = AnalogLinear(3, 2, weight_noise=WeightNoiseSpec(kind, sigma, per="chip"), generator=7)
    generator = torch.Generator().manual_seed(7)
    z_w = torch.randn((2, 3), generator=generator, dtype=torch.float64)
    z_b = torch.randn((2,), generator=generator, dtype=torch.float64)
    assert torch.equal(chip.mismatch_weight, z_w.float())
    assert torch.equal(chip.mismatch_bias, z_b.float())
    x32 = x.float()
    expected = F.linear(
        x32, perturb(chip.weight, chip.mismatch_weight), perturb(chip.bias, z_b.float())
    )
    with draws(d):
        torch.testing.assert_close(chip(x32.repeat(d, 1)), expected.repeat(d, 1))
    chip.weight_noise = WeightNoiseSpec(kind, sigma, per="chip", biases=False)
    expected = F.linear(x32, perturb(chip.weight, chip.mismatch_weight), chip.bias)
    torch.testing.assert_close(chip(x32), expected)

    clean = F.linear(x32, chip.weight, chip.bias)
    for switch in ("in_training", "in_eval", "enabled", "sigma"):
        chip.weight_noise = WeightNoiseSpec(
            kind,
            0.0 if switch == "sigma" else sigma,
            per="forward",
            in_training=switch != "in_training",
            in_eval=switch != "in_eval",
        )
        chip.noise_enabled = switch != "enabled"
        chip.train(switch != "in_eval")
        assert torch.equal(chip(x32), clean), switch
        chip.train(switch == "in_eval")
        if switch in ("in_training", "in_eval"):
            assert not torch.equal(chip(x32), clean), switch
    chip.noise_enabled = True


def test_weight_noise_settings_are_named_and_printed():
    """WeightNoiseSpec refuses each bad setting by name; ``with_level`` changes σ alone;
    an analog layer refuses a weight noise that is not a spec and prints its own; the analog
    layers of a model in order; AnalogConv2d with bias=False draws no bias mismatch."""
    from circuitnn.nn import weight_noise_layers

    for call, message in (
        (lambda: WeightNoiseSpec("pink"), "^WeightNoiseSpec.kind must be one of"),
        (lambda: WeightNoiseSpec(sigma=-0.1), "^WeightNoiseSpec.sigma must be >= 0"),
        (lambda: WeightNoiseSpec(sigma="x"), "^WeightNoiseSpec.sigma must be a number"),
        (lambda: WeightNoiseSpec(sigma=math.inf), "^WeightNoiseSpec.sigma must be finite"),
        (lambda: WeightNoiseSpec(per="wafer"), "^WeightNoiseSpec.per must be one of"),
        (lambda: WeightNoiseSpec(biases=1), "^WeightNoiseSpec.biases must be True or False"),
        (lambda: WeightNoiseSpec(in_training=0), "^WeightNoiseSpec.in_training must be True"),
        (lambda: WeightNoiseSpec(in_eval="x"), "^WeightNoiseSpec.in_eval must be True"),
        (lambda: WeightNoiseSpec(sigma=0.1).with_level(-1), "^noise level must be >= 0"),
        (
            lambda: AnalogLinear(2, 2, weight_noise=0.1),
            "^weight_noise must be a WeightNoiseSpec or None, got 0.1$",
        ),
    ):
        with pytest.raises(ConfigError, match=message):
            call()
    spec = WeightNoiseSpec("additive", 0.1, per="chip", biases=False, in_eval=False)
    assert spec.with_level(0.4) == dataclasses.replace(spec, sigma=0.4)
    linear = AnalogLinear(3, 2, weight_noise=spec)
    assert repr(linear) == (
        f"AnalogLinear(in_features=3, out_features=2, bias=True, weight_noise={spec})"
    )
    conv = AnalogConv2d(1, 2, 3, bias=False)
    assert (
        repr(conv)
        == "AnalogConv2d(1, 2, kernel_size=(3, 3), stride=(1, 1), bias=False, weight_noise=None)"
    )
    assert conv.mismatch_bias.shape == (0,) and conv.mismatch_weight.shape == conv.weight.shape
    model = torch.nn.Sequential(linear, torch.nn.Tanh(), torch.nn.Sequential(conv))
    assert weight_noise_layers(model) == [linear, conv]


@pytest.mark.parametrize("shape", [(4, 3), (4, 2, 3), (4, 2, 5, 3)], ids=["2d", "3d", "4d"])
def test_analog_linear_folds_every_draw_count_over_inputs_of_any_rank(shape):
    """In D draws (2 and 3), repeated or not, an input of any rank (features last) gives, for
    draw k, the linear map with draw k's weights and biases, in the input's own shape."""
    from torch.nn import functional as F

    sigma = 0.3
    x = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    for has_bias in (True, False):
        layer = AnalogLinear(3, 2, has_bias, weight_noise=WeightNoiseSpec("additive", sigma))
        layer = layer.double()
        for count in (2, 3):
            generator = torch.Generator().manual_seed(5)
            z_w = torch.randn((count, 2, 3), generator=generator, dtype=torch.float64)
            z_b = torch.randn((count, 2), generator=generator, dtype=torch.float64)
            expected = torch.cat(
                [
                    F.linear(
                        x,
                        layer.weight + sigma * z_w[k],
                        layer.bias + sigma * z_b[k] if has_bias else None,
                    )
                    for k in range(count)
                ]
            )
            for unrepeated in (False, True):
                layer.reseed(5)
                if unrepeated:
                    with draws(count, batch=shape[0]):
                        out = layer(x)
                else:
                    with draws(count):
                        out = layer(x.repeat(count, *([1] * (x.dim() - 1))))
                assert out.shape == (count * shape[0], *shape[1:-1], 2)
                torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


def test_analog_conv2d_applies_its_noisy_weights_and_biases_in_every_mode():
    """Per chip, in one pass and in D draws: the conv with w·(1 + σ·mismatch) and b·(1 + σ·
    mismatch), bias included; per forward pass without a bias, in D draws: draw k's weights;
    σ = 1 is noise like any other (only σ = 0 is the clean layer)."""
    from torch.nn import functional as F

    sigma, d, batch = 0.2, 3, 2
    x = torch.randn(batch, 2, 5, 5, dtype=torch.float64)
    chip = AnalogConv2d(
        2, 3, 3, padding=1, weight_noise=WeightNoiseSpec(sigma=sigma, per="chip"), generator=4
    ).double()
    expected = F.conv2d(
        x,
        chip.weight * (1 + sigma * chip.mismatch_weight),
        chip.bias * (1 + sigma * chip.mismatch_bias),
        padding=1,
    )
    torch.testing.assert_close(chip(x), expected, rtol=1e-12, atol=1e-12)
    with draws(d):
        torch.testing.assert_close(
            chip(x.repeat(d, 1, 1, 1)), expected.repeat(d, 1, 1, 1), rtol=1e-12, atol=1e-12
        )

    bare = AnalogConv2d(2, 3, 3, bias=False, weight_noise=WeightNoiseSpec("additive", sigma))
    bare = bare.double()
    generator = torch.Generator().manual_seed(8)
    z_w = torch.randn((d, *bare.weight.shape), generator=generator, dtype=torch.float64)
    bare.reseed(8)
    with draws(d):
        out = bare(x.repeat(d, 1, 1, 1))
    expected = torch.cat([F.conv2d(x, bare.weight + sigma * z_w[k]) for k in range(d)])
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)

    for layer, inputs in ((AnalogLinear(3, 2), torch.randn(4, 3)), (bare.float(), x.float())):
        with torch.no_grad():
            clean = layer(inputs)  # before the noise is set
        layer.weight_noise = WeightNoiseSpec("multiplicative", 1.0)
        assert not torch.equal(layer(inputs), clean)


def test_analog_layers_are_made_on_the_device_and_dtype_asked_for():
    """``device=`` and ``dtype=`` reach the parameters and both mismatch buffers (the meta
    device stands in for a GPU); ``to_analog`` keeps each replaced layer's device and dtype;
    AnalogConv2d's chip mismatch comes from its generator."""
    from circuitnn.nn import to_analog

    for layer in (
        AnalogLinear(3, 2, device="meta", dtype=torch.float64),
        AnalogConv2d(2, 3, 3, device="meta", dtype=torch.float64),
        AnalogConv2d(2, 3, 3, dtype=torch.float64),
    ):
        device = layer.weight.device
        for tensor in (layer.weight, layer.bias, layer.mismatch_weight, layer.mismatch_bias):
            assert tensor.device == device and tensor.dtype == torch.float64
    assert AnalogLinear(3, 2, device="meta").weight.is_meta

    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3, device="meta"),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 2, device="meta", dtype=torch.float64),
    )
    to_analog(model, WeightNoiseSpec(sigma=0.1))
    assert isinstance(model[0], AnalogConv2d) and isinstance(model[2], AnalogLinear)
    assert model[0].weight.is_meta and model[2].weight.is_meta
    assert model[2].weight.dtype == torch.float64

    conv = AnalogConv2d(1, 2, 3, generator=5)
    generator = torch.Generator().manual_seed(5)
    z_w = torch.randn(conv.weight.shape, generator=generator, dtype=torch.float64)
    z_b = torch.randn(conv.bias.shape, generator=generator, dtype=torch.float64)
    assert torch.equal(conv.mismatch_weight, z_w.float())
    assert torch.equal(conv.mismatch_bias, z_b.float())
