"""The network builder: layer order and names, per-layer families and noise, seeds, state."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from circuitnn.errors import ConfigError
from circuitnn.nn import (
    AdditiveNoise,
    AnalogConv2d,
    AnalogLinear,
    CircuitActivation,
    CircuitNoise,
    CircuitSpec,
    CNNSpec,
    ConvSpec,
    LayerSpec,
    MLPSpec,
    NoiseSpec,
    WeightNoiseSpec,
    activation_layers,
    build,
    build_cnn,
    build_mlp,
    mlp_spec,
    resample_chips,
    synthetic_family,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def families():
    return {
        "tanh": synthetic_family("tanh", n=100, seed=0),
        "relu": synthetic_family("softplus", n=100, seed=1),
    }


def test_mlp_layers_names_and_shapes(families):
    spec = MLPSpec(
        inputs=10,
        layers=(
            LayerSpec(16, CircuitSpec(families["tanh"]), NoiseSpec("circuit", 1.0)),
            LayerSpec(
                8,
                CircuitSpec(families["relu"], scaling="knee"),
                (NoiseSpec("additive", 0.1), NoiseSpec("multiplicative", 0.05)),
                WeightNoiseSpec("multiplicative", 0.02, per="chip"),
            ),
            LayerSpec(8, "relu"),
        ),
        outputs=3,
    )
    model = build_mlp(spec, seed=1)
    assert list(dict(model.named_children())) == [
        "linear1",
        "act1",
        "linear2",
        "act2",
        "noise2",
        "noise2_2",
        "linear3",
        "act3",
        "output",
    ]
    assert isinstance(model.act1, CircuitNoise) and model.act1.activation.width == 16
    assert isinstance(model.act2, CircuitActivation) and model.act2.neuron == "synthetic_softplus"
    assert isinstance(model.noise2, AdditiveNoise)
    assert model.linear2.weight_noise.per == "chip"
    assert isinstance(model.output, AnalogLinear)
    assert activation_layers(model) == ["act1", "act2", "act3"]
    assert model(torch.randn(5, 10)).shape == (5, 3)


def test_same_seed_same_network_and_chips(families):
    spec = mlp_spec(
        6, (12, 12), 2, activation=CircuitSpec(families["tanh"]), noise=NoiseSpec("additive", 0.1)
    )
    a, b, c = build(spec, seed=3), build(spec, seed=3), build(spec, seed=4)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name
    assert not torch.equal(a.act1.chip, c.act1.chip)
    assert not torch.equal(a.linear1.weight, c.linear1.weight)
    assert not torch.equal(a.act1.chip, a.act2.chip), "layers draw different chips"
    x = torch.randn(4, 6)
    a.train(), b.train()
    assert torch.equal(a(x), b(x)), "noise draws are seeded too"


def test_global_rng_is_untouched(families):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    build_mlp(mlp_spec(4, (4,), 2), seed=9)
    assert torch.equal(torch.rand(3), expected)


def test_whole_model_state_dict_keeps_chips_and_mismatch(families, tmp_path):
    spec = mlp_spec(
        5,
        (7,),
        2,
        activation=CircuitSpec(families["tanh"]),
        weight_noise=WeightNoiseSpec("additive", 0.05, per="chip"),
    )
    model = build_mlp(spec, seed=0)
    x = torch.randn(3, 5)
    model.eval()
    before = model(x)
    torch.save(model.state_dict(), tmp_path / "model.pt")
    resample_chips(model, 123)
    assert not torch.equal(model(x), before)
    model.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    assert torch.equal(model(x), before)


def test_cnn(families):
    spec = CNNSpec(
        in_channels=1,
        image=(8, 8),
        convs=(
            ConvSpec(4, activation=CircuitSpec(families["relu"], scaling="knee")),
            ConvSpec(
                6,
                activation=CircuitSpec(families["tanh"]),
                per_position=True,
                noise=NoiseSpec("additive", 0.05),
                weight_noise=WeightNoiseSpec("multiplicative", 0.05),
            ),
        ),
        layers=(LayerSpec(10, "tanh"),),
        outputs=3,
    )
    model = build_cnn(spec, seed=0)
    assert model.act1.shape == (4, 1, 1)
    assert model.act2.shape == (6, 4, 4)
    assert isinstance(model.conv2, AnalogConv2d)
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 3)


def test_spec_validation(families):
    with pytest.raises(ConfigError, match=r"LayerSpec\.width"):
        LayerSpec(0)
    with pytest.raises(ConfigError, match=r"LayerSpec\.activation"):
        LayerSpec(4, "swish")
    with pytest.raises(ConfigError, match="circuit noise needs a CircuitSpec"):
        build_mlp(MLPSpec(3, (LayerSpec(4, "tanh", NoiseSpec("circuit", 1.0)),), 2))
    with pytest.raises(ConfigError, match="kernel"):
        ConvSpec(4, kernel=2)
    with pytest.raises(ConfigError, match="pooling"):
        CNNSpec(1, (4, 4), (ConvSpec(2, pool=4), ConvSpec(2, pool=2)), (), 2)
    with pytest.raises(ConfigError, match=r"MLPSpec\.layers"):
        MLPSpec(3, [LayerSpec(4)], 2)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"CircuitSpec\.mode"):
        CircuitSpec(families["tanh"], mode="typical")


def test_plain_torch_layers_can_be_converted():
    from circuitnn.nn import to_analog

    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Sequential(nn.Linear(4, 2)))
    x = torch.randn(5, 3)
    before = model(x)
    to_analog(model, WeightNoiseSpec("additive", 0.0))
    assert isinstance(model[0], AnalogLinear) and isinstance(model[2][0], AnalogLinear)
    torch.testing.assert_close(model(x), before)


def test_to_analog_converts_convolutions_keeping_every_setting_the_weights_and_the_noise():
    """Every nn.Linear / nn.Conv2d, at any depth, becomes an analog layer with the same shape,
    stride, padding, dilation, groups, bias, dtype and weights (so the same outputs with σ = 0)
    and the given weight noise; a layer that is analog already gets that noise too, and the
    layers after it are still converted; a convolution that pads other than with zeros stays."""
    from circuitnn.nn import to_analog

    generator = torch.Generator().manual_seed(0)
    analog = AnalogLinear(40, 12, True, dtype=torch.float64)
    model = nn.Sequential(
        nn.Conv2d(4, 6, (3, 2), stride=2, padding=1, dilation=(2, 1), groups=2).double(),
        nn.ReLU(),
        nn.Sequential(nn.Conv2d(6, 2, 1, bias=False).double()),
        nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect").double(),
        nn.Flatten(),
        nn.Sequential(analog, nn.Linear(12, 3, bias=False).double()),
    )
    x = torch.randn(2, 4, 9, 8, dtype=torch.float64, generator=generator)
    before = model(x)
    spec = WeightNoiseSpec("multiplicative", 0.0)
    assert to_analog(model, spec) is model
    first, pointwise, linear = model[0], model[2][0], model[5][1]
    assert isinstance(first, AnalogConv2d) and isinstance(pointwise, AnalogConv2d)
    assert isinstance(linear, AnalogLinear) and model[5][0] is analog
    assert type(model[3]) is nn.Conv2d  # reflect padding: not converted
    assert (first.in_channels, first.out_channels, first.kernel_size) == (4, 6, (3, 2))
    assert (first.stride, first.padding, first.dilation, first.groups) == (
        (2, 2),
        (1, 1),
        (2, 1),
        2,
    )
    assert first.bias is not None and pointwise.bias is None and linear.bias is None
    for layer in (first, pointwise, linear, analog):
        assert layer.weight_noise == spec
        assert layer.weight.dtype == torch.float64
    torch.testing.assert_close(model(x), before, rtol=0, atol=0)


def test_builders_hand_every_setting_to_their_layers_and_seed_each_apart(families):
    """A CircuitSpec's options reach the activation it builds (mode, scaling, extrapolation,
    fit); the noise specs of a layer follow its activation in order as ``noise{i}``,
    ``noise{i}_2``, …, with a circuit noise wrapping the activation; ``mlp_spec`` gives the
    readout the weight noise too; a CNN pads to the same size, pools only when ``pool`` > 1
    and numbers its dense layers on from the convolutions; every analog layer and noise module
    has a seed of its own, fixed by the build seed and changed by it."""
    from circuitnn.nn import MixedNoise, MultiplicativeNoise, noise_modules, weight_noise_layers

    tanh = families["tanh"]
    circuit = CircuitSpec(tanh, mode="nominal", scaling="knee", extrapolation="clamp", fit="tanh")
    weights = WeightNoiseSpec("additive", 0.05)
    noises = (NoiseSpec("multiplicative", 0.1), NoiseSpec("mixed", 0.2), NoiseSpec("circuit"))
    spec = MLPSpec(
        3,
        (LayerSpec(5, circuit, noises, weights), LayerSpec(4, "sigmoid"), LayerSpec(4, "identity")),
        2,
    )
    model = build_mlp(spec, seed=5)
    assert list(dict(model.named_children())) == [
        *("linear1", "act1", "noise1", "noise1_2"),
        *("linear2", "act2", "linear3", "act3", "output"),
    ]
    assert isinstance(model.act1, CircuitNoise) and model.act1.scale == 1.0
    inner = model.act1.activation
    reference = CircuitActivation(tanh, 5, scaling="knee")
    assert (inner.mode, inner.extrapolation, inner.fit_form) == ("nominal", "clamp", "tanh")
    assert inner.scaling == reference.scaling != CircuitActivation(tanh, 5).scaling
    assert isinstance(model.noise1, MultiplicativeNoise) and isinstance(model.noise1_2, MixedNoise)
    assert isinstance(model.act2, nn.Sigmoid) and isinstance(model.act3, nn.Identity)
    assert model.linear1.weight_noise == weights and model.linear2.weight_noise is None
    assert model.output.weight_noise is None
    assert (model.linear2.in_features, model.output.in_features, model.output.out_features) == (
        5,
        4,
        2,
    )
    assert build_mlp(mlp_spec(3, (4,), 2, weight_noise=weights)).output.weight_noise == weights

    def seeds(model: nn.Module) -> list[int]:
        sources = [*weight_noise_layers(model), *noise_modules(model)]
        return [source.generators.seed for source in sources]

    first = seeds(model)
    assert len(first) == 7 and None not in first and len(set(first)) == len(first)
    assert seeds(build_mlp(spec, seed=5)) == first
    assert not set(seeds(build_mlp(spec, seed=6))) & set(first)

    cnn_spec = CNNSpec(
        2,
        (6, 4),
        (
            ConvSpec(3, kernel=5, pool=1, activation="tanh", weight_noise=weights),
            ConvSpec(2, kernel=3, pool=2, activation=CircuitSpec(tanh), noise=noises[:1]),
        ),
        (LayerSpec(4, "relu"),),
        2,
        output_weight_noise=weights,
    )
    cnn = build(cnn_spec, seed=1)
    assert list(dict(cnn.named_children())) == [
        *("conv1", "act1", "conv2", "act2", "noise2", "pool2", "flatten"),
        *("linear3", "act3", "output"),
    ]
    assert cnn.conv1.padding == (2, 2) and cnn.conv2.padding == (1, 1)
    assert cnn.conv1.weight_noise == weights and cnn.output.weight_noise == weights
    assert cnn.act2.shape == (2, 1, 1) and cnn.linear3.in_features == 2 * 3 * 2
    assert cnn.pool2.kernel_size == 2
    assert cnn(torch.randn(3, 2, 6, 4)).shape == (3, 2)
    cnn_seeds = seeds(cnn)
    assert len(cnn_seeds) == 5 and None not in cnn_seeds and len(set(cnn_seeds)) == 5
    assert seeds(build(cnn_spec, seed=1)) == cnn_seeds
    assert isinstance(build(mlp_spec(3, (4,), 2)), nn.Sequential)


def test_builder_specs_refuse_bad_settings_by_name(families):
    """Each spec names the setting it refuses; the builders name the spec type they need."""
    tanh = families["tanh"]
    conv = ConvSpec(2)
    for call, message in (
        (
            lambda: LayerSpec(4, 3),
            r"^LayerSpec\.activation must be a name or a CircuitSpec, got 3$",
        ),
        (
            lambda: LayerSpec(4, noise=0.1),
            r"^LayerSpec\.noise must hold NoiseSpec objects, got 0\.1$",
        ),
        (
            lambda: LayerSpec(4, CircuitSpec(tanh), (NoiseSpec("circuit"), NoiseSpec("circuit"))),
            r"^LayerSpec\.noise: at most one circuit noise per layer$",
        ),
        (
            lambda: LayerSpec(4, weight_noise=0.1),
            r"^LayerSpec\.weight_noise must be a WeightNoiseSpec or None",
        ),
        (lambda: LayerSpec(0), r"^LayerSpec\.width must be at least 1, got 0$"),
        (lambda: CircuitSpec(tanh, mode="typical"), r"^CircuitSpec\.mode must be one of"),
        (lambda: MLPSpec(0, (), 2), r"^MLPSpec\.inputs"),
        (lambda: MLPSpec(3, (), 0), r"^MLPSpec\.outputs"),
        (lambda: MLPSpec(3, (3,), 2), r"^MLPSpec\.layers must be a tuple of LayerSpec$"),
        (lambda: MLPSpec(3, (), 2, 0.1), r"^MLPSpec\.output_weight_noise must be"),
        (lambda: ConvSpec(0), r"^ConvSpec\.channels"),
        (lambda: ConvSpec(2, kernel=0), r"^ConvSpec\.kernel"),
        (lambda: ConvSpec(2, kernel=-1), r"^ConvSpec\.kernel must be at least 1, got -1$"),
        (
            lambda: ConvSpec(2, kernel=4),
            r"^ConvSpec\.kernel must be odd \('same' padding\), got 4$",
        ),
        (lambda: ConvSpec(2, pool=0), r"^ConvSpec\.pool"),
        (lambda: ConvSpec(2, activation="swish"), r"^ConvSpec\.activation"),
        (lambda: ConvSpec(2, noise=(1,)), r"^ConvSpec\.noise"),
        (lambda: ConvSpec(2, weight_noise=1), r"^ConvSpec\.weight_noise"),
        (lambda: ConvSpec(2, per_position=1), r"^ConvSpec\.per_position"),
        (lambda: CNNSpec(0, (4, 4), (conv,), (), 2), r"^CNNSpec\.in_channels"),
        (
            lambda: CNNSpec(1, (4,), (conv,), (), 2),
            r"^CNNSpec\.image must be \(height, width\), got \(4,\)$",
        ),
        (lambda: CNNSpec(1, (4, 0), (conv,), (), 2), r"^CNNSpec\.image"),
        (
            lambda: CNNSpec(1, (4, 4), [conv], (), 2),
            r"^CNNSpec\.convs must be a tuple of ConvSpec$",
        ),
        (lambda: CNNSpec(1, (4, 4), (conv,), [LayerSpec(2)], 2), r"^CNNSpec\.layers must be"),
        (lambda: CNNSpec(1, (4, 4), (conv,), (), 0), r"^CNNSpec\.outputs"),
        (lambda: CNNSpec(1, (4, 4), (conv,), (), 2, 0.1), r"^CNNSpec\.output_weight_noise"),
        (
            lambda: CNNSpec(1, (4, 4), (conv, ConvSpec(2, pool=3)), (), 2),
            r"^CNNSpec\.convs\[1\]: pooling shrinks the image to 0$",
        ),
        (
            lambda: CNNSpec(1, (4, 1), (ConvSpec(2),), (), 2),
            r"^CNNSpec\.convs\[0\]: pooling shrinks the image to 0$",
        ),
        (
            lambda: build_mlp(CNNSpec(1, (4, 4), (), (), 2)),
            r"^build_mlp needs an MLPSpec, got CNNSpec$",
        ),
        (lambda: build_cnn(mlp_spec(2, (), 2)), r"^build_cnn needs a CNNSpec, got MLPSpec$"),
        (
            lambda: build_mlp(MLPSpec(3, (LayerSpec(4, "relu", NoiseSpec("circuit")),), 2)),
            r"^layer 1: circuit noise needs a CircuitSpec activation, got 'relu'$",
        ),
    ):
        with pytest.raises(ConfigError, match=message):
            call()
    # the smallest allowed: a 1×1 image pooled by 1, one channel, one output
    assert CNNSpec(1, (1, 1), (ConvSpec(1, kernel=1, pool=1),), (), 1).image == (1, 1)
    # and an MLP of one input, one neuron and one output
    assert build_mlp(MLPSpec(1, (LayerSpec(1),), 1))(torch.ones(2, 1)).shape == (2, 1)


def test_cnn_of_one_by_one_convolutions_is_seeded_like_the_mlp_of_the_same_layers(families):
    """A 1×1 convolution on a 1×1 image is a dense layer, and ``build_cnn`` is seeded like
    ``build_mlp``: such a CNN (a conv block, then a dense layer) has the same initial weights, the
    same per-chip mismatch, the same chips and the same per-forward weight and activation noise
    draws as the MLP with those layers, numbered on from the convolutions; so both give the same
    outputs, in eval and in train mode, for several seeds. A CNN without convolutions is that MLP
    too."""
    tanh = families["tanh"]
    chip = WeightNoiseSpec("multiplicative", 0.1, per="chip")
    forward = WeightNoiseSpec("additive", 0.05)
    activation = CircuitSpec(tanh)
    noise = NoiseSpec("additive", 0.1)
    conv = ConvSpec(5, kernel=1, pool=1, activation=activation, noise=noise, weight_noise=forward)
    hidden = (LayerSpec(4, "tanh", noise, chip),)
    cnn_spec = CNNSpec(3, (1, 1), (conv,), hidden, 2, output_weight_noise=forward)
    mlp = MLPSpec(3, (LayerSpec(5, activation, noise, forward), *hidden), 2, forward)
    mlp_dense = MLPSpec(3, hidden, 2, forward)
    cnn_dense = CNNSpec(3, (1, 1), (), hidden, 2, output_weight_noise=forward)
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    for seed in (0, 7):
        a, b = build_cnn(cnn_spec, seed), build_mlp(mlp, seed)
        assert torch.equal(a.conv1.weight.reshape(5, 3), b.linear1.weight)
        assert torch.equal(a.conv1.mismatch_weight.reshape(5, 3), b.linear1.mismatch_weight)
        assert torch.equal(a.conv1.mismatch_bias, b.linear1.mismatch_bias)
        assert torch.equal(a.act1.chip.reshape(-1), b.act1.chip.reshape(-1))
        assert a.conv1.generators.seed == b.linear1.generators.seed
        for name in ("linear2", "output"):
            assert torch.equal(getattr(a, name).weight, getattr(b, name).weight), name
        for mode in ("eval", "train"):
            getattr(a, mode)(), getattr(b, mode)()
            torch.testing.assert_close(a(x[:, :, None, None]), b(x), rtol=1e-6, atol=1e-6)
        c, d = build_cnn(cnn_dense, seed), build_mlp(mlp_dense, seed)
        c.train(), d.train()
        assert list(dict(c.named_children()))[1:] == list(dict(d.named_children()))
        torch.testing.assert_close(c(x[:, :, None, None]), d(x), rtol=1e-6, atol=1e-6)


def test_builders_default_seed_is_zero_and_build_passes_its_seed_on(families):
    """``seed`` defaults to 0 in ``build``, ``build_mlp`` and ``build_cnn``; ``build`` hands its
    seed to the builder of the spec's type."""
    cnn_spec = CNNSpec(
        1,
        (4, 4),
        (ConvSpec(2, weight_noise=WeightNoiseSpec("multiplicative", 0.1, per="chip")),),
        (LayerSpec(3),),
        2,
    )
    mlp = mlp_spec(3, (4,), 2, weight_noise=WeightNoiseSpec("additive", 0.1, per="chip"))

    def same(a: nn.Module, b: nn.Module) -> bool:
        pairs = zip(a.state_dict().values(), b.state_dict().values(), strict=True)
        return all(torch.equal(x, y) for x, y in pairs)

    for spec, builder in ((cnn_spec, build_cnn), (mlp, build_mlp)):
        assert same(builder(spec), builder(spec, 0)) and same(build(spec), builder(spec, 0))
        assert same(build(spec, 3), builder(spec, 3))
        assert not same(builder(spec, 3), builder(spec, 0))


def test_each_layers_chip_mismatch_and_noise_seeds_are_its_own(families):
    """A layer's chip, per-chip mismatch, weight-noise seed and noise seeds come from the build
    seed and the layer's place alone: widening the first layer leaves the second layer's and the
    readout's as they were (only the initial weights share one stream); the two layers' noise
    modules have seeds of their own."""
    tanh = families["tanh"]
    chip = WeightNoiseSpec("multiplicative", 0.1, per="chip")
    forward = WeightNoiseSpec("additive", 0.1)
    noise = NoiseSpec("additive", 0.1)

    def spec(first: int) -> MLPSpec:
        layers = (
            LayerSpec(first, CircuitSpec(tanh), noise, chip),
            LayerSpec(5, CircuitSpec(tanh), noise, forward),
        )
        return MLPSpec(3, layers, 2, chip)

    narrow, wide = build_mlp(spec(4), seed=2), build_mlp(spec(9), seed=2)
    assert torch.equal(narrow.act2.chip, wide.act2.chip)
    assert torch.equal(narrow.output.mismatch_weight, wide.output.mismatch_weight)
    assert torch.equal(narrow.output.mismatch_bias, wide.output.mismatch_bias)
    assert narrow.linear2.generators.seed == wide.linear2.generators.seed
    assert narrow.noise2.generators.seed == wide.noise2.generators.seed
    assert narrow.noise1.generators.seed != narrow.noise2.generators.seed


def test_mlp_spec_and_circuit_spec_hand_on_every_setting(families, tmp_path):
    """``mlp_spec`` gives every hidden layer the noise and the weight noise; a CircuitSpec's
    ``fit`` form reaches its layer (softplus on a tanh family, not the form "auto" would pick);
    a CircuitSpec naming its family in a ``store`` (the deprecated selector) builds the chip
    that the Family itself gives."""
    from circuitnn.store import Store

    tanh = families["tanh"]
    weights = WeightNoiseSpec("additive", 0.05)
    noise = NoiseSpec("multiplicative", 0.1)
    model = build_mlp(mlp_spec(3, (4, 5), 2, noise=noise, weight_noise=weights))
    for index in (1, 2):
        assert getattr(model, f"linear{index}").weight_noise == weights
        assert getattr(model, f"noise{index}").sigma == 0.1
    fitted = build_mlp(mlp_spec(3, (4,), 2, activation=CircuitSpec(tanh, fit="softplus")))
    assert fitted.act1.fit_form == "softplus"
    store = Store(tmp_path / "families.h5")
    store.commit(tanh)
    in_memory = build_mlp(mlp_spec(3, (4,), 2, activation=CircuitSpec(tanh)), seed=1)
    with pytest.warns(DeprecationWarning):
        stored = CircuitSpec("synthetic_tanh", store=store.path)
        by_name = build_mlp(mlp_spec(3, (4,), 2, activation=stored), seed=1)
    assert by_name.act1.family_key == tanh.key
    assert torch.equal(by_name.act1.chip, in_memory.act1.chip)
