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
