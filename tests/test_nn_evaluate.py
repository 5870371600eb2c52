"""Evaluation: Monte Carlo over chips × draws, robustness curves, midpoints, worst case, SNR."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from scipy.stats import norm
from torch import nn

from circuitnn.errors import ConfigError
from circuitnn.evaluate import (
    layer_snr,
    layer_sweep,
    midpoint,
    monte_carlo,
    robustness_curve,
    worst_case,
)
from circuitnn.nn import (
    AnalogLinear,
    CircuitSpec,
    NoiseSpec,
    WeightNoiseSpec,
    build_mlp,
    mlp_spec,
    synthetic_family,
)
from circuitnn.train import Task

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def two_class_data(margin: float = 1.0, n: int = 400):
    """Inputs that are already logits: class c has logit ``margin`` at c and 0 elsewhere."""
    labels = torch.arange(n) % 2
    x = torch.zeros(n, 2, dtype=torch.float64)
    x[torch.arange(n), labels] = margin
    return x, labels


class Logits(nn.Module):
    """A parameter-free 'network' whose only layer (an activation) passes logits through."""

    def __init__(self) -> None:
        super().__init__()
        self.act = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x)


@pytest.fixture(scope="module")
def family():
    return synthetic_family("tanh", n=200, seed=0, gain_spread=0.3, offset_spread=0.1)


@pytest.fixture(scope="module")
def trained(family):
    pytest.importorskip("sklearn")
    from circuitnn.train import TrainConfig, load_digits, train

    train_data, test_data = load_digits(seed=0)
    model = build_mlp(mlp_spec(64, (32, 16), 10, activation=CircuitSpec(family)), seed=0)
    train(model, train_data, config=TrainConfig(epochs=15, lr=3e-3))
    return model, test_data


def test_monte_carlo_without_noise_is_exact_and_draws_agree(trained):
    model, test_data = trained
    result = monte_carlo(model, test_data, draws=4)
    with torch.no_grad():
        logits = model(torch.as_tensor(test_data[0]))
    accuracy = float((logits.argmax(1) == torch.as_tensor(test_data[1])).double().mean())
    assert result.metrics["accuracy"].shape == (1, 4)
    assert np.all(result.metrics["accuracy"] == accuracy)
    assert result.std() == 0
    ce = nn.functional.cross_entropy(logits.double(), torch.as_tensor(test_data[1]))
    assert result.mean("cross_entropy") == pytest.approx(float(ce))


def test_monte_carlo_vectorized_draws_match_separate_evaluations(trained):
    model, test_data = trained
    noise = NoiseSpec("additive", 0.8)
    vectorized = monte_carlo(model, test_data, draws=48, noise=noise, seed=1)
    separate = np.array(
        [
            monte_carlo(model, test_data, draws=1, noise=noise, seed=100 + k).mean()
            for k in range(48)
        ]
    )
    assert vectorized.std() > 0
    assert len(set(vectorized.metrics["accuracy"][0])) > 1, "every draw has its own noise"
    standard_error = math.hypot(vectorized.sem(), separate.std(ddof=1) / math.sqrt(48))
    assert abs(vectorized.mean() - separate.mean()) < 4 * standard_error
    assert vectorized.std() == pytest.approx(separate.std(ddof=1), rel=0.5)
    again = monte_carlo(model, test_data, draws=48, noise=noise, seed=1)
    assert np.array_equal(again.metrics["accuracy"], vectorized.metrics["accuracy"])
    small_batches = monte_carlo(model, test_data, draws=48, noise=noise, seed=1, max_rows=48 * 50)
    assert small_batches.mean() == pytest.approx(vectorized.mean(), abs=0.02)


def test_monte_carlo_over_chips_restores_the_model(trained):
    model, test_data = trained
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = monte_carlo(model, test_data, chips=4, draws=2)
    assert result.metrics["accuracy"].shape == (4, 2)
    summary = result.summary()["accuracy"]
    assert summary["between_chips"] > 0 and summary["within_chip"] == 0
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert np.array_equal(
        monte_carlo(model, test_data, chips=4, draws=2).metrics["accuracy"],
        result.metrics["accuracy"],
    )


def test_weight_noise_evaluation(trained):
    model, test_data = trained
    clean = monte_carlo(model, test_data).mean()
    noisy = monte_carlo(model, test_data, draws=8, noise=WeightNoiseSpec("multiplicative", 0.3))
    assert noisy.mean() < clean and noisy.std() > 0
    assert all(
        layer.weight_noise is None for layer in model.modules() if isinstance(layer, AnalogLinear)
    ), "the evaluation noise is removed afterwards"
    with pytest.raises(ConfigError, match="AnalogLinear"):
        monte_carlo(Logits(), two_class_data(), noise="weight_additive")


def test_regression_metrics():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(300, 3, generator=generator, dtype=torch.float64)
    weights = torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64)
    y = x @ weights.T
    model = AnalogLinear(3, 1).double()
    with torch.no_grad():
        model.weight.copy_(weights)
        model.bias.zero_()
    exact = monte_carlo(model, (x, y[:, 0]), task="regression")
    assert exact.mean("rmse") < 1e-12 and exact.mean("r2") == pytest.approx(1.0)
    sigma = 0.1
    model.weight_noise = WeightNoiseSpec("additive", sigma, biases=False)
    noisy = monte_carlo(model, (x, y), task="regression", draws=64)
    # y' - y = σ·z·x for one weight draw: RMSE ≈ σ·sqrt(mean |x|²) = σ·√3
    assert noisy.mean("rmse") == pytest.approx(sigma * math.sqrt(3), rel=0.15)
    assert noisy.mean("mae") < noisy.mean("rmse")


def test_midpoint_of_a_known_curve():
    """Two classes, logits (m, 0) or (0, m), additive noise σ on both: accuracy Φ(m/(σ√2)),
    halfway between 1 and chance 0.5 at σ* = m / (√2·Φ⁻¹(0.75))."""
    data = two_class_data(margin=1.0, n=1000)
    expected = 1.0 / (math.sqrt(2) * norm.ppf(0.75))
    result = midpoint(Logits(), data, noise="additive", layers=("act",), draws=64, tolerance=0.01)
    assert result.clean == 1.0 and result.chance == 0.5 and result.target == 0.75
    assert result.low <= result.level <= result.high
    assert abs(result.level - expected) < max(4 * result.uncertainty, 0.02 * expected)
    assert result.uncertainty < 0.05 * expected
    curve = robustness_curve(
        Logits(), data, [0.0, 0.5, expected, 3.0], noise="additive", layers=("act",), draws=32
    )
    assert curve.mean[0] == 1.0
    assert np.all(np.diff(curve.mean) < 0)
    assert curve.mean[2] == pytest.approx(0.75, abs=4 * curve.sem[2] + 0.005)


def test_layer_sweep_finds_each_layers_midpoint(trained):
    model, test_data = trained
    sweep = layer_sweep(model, test_data, noise="additive", draws=8, tolerance=0.1)
    assert list(sweep) == ["act1", "act2"]
    for name, result in sweep.items():
        assert 0.01 < result.level < 100, name
        assert result.uncertainty < result.level
    weights = layer_sweep(
        model,
        test_data,
        noise="weight_multiplicative",
        draws=8,
        tolerance=0.2,
        layers=("linear1", "output"),
    )
    assert set(weights) == {"linear1", "output"}


WIDE = 1e9  # Hardtanh(-WIDE, WIDE): the identity on every value here, but an activation layer


class TwoStages(nn.Module):
    """Logits through ``act_a``, amplified ``GAIN`` times, then ``act_b``: noise σ put after
    ``act_a`` reaches the output as GAIN·σ, after ``act_b`` as σ."""

    GAIN = 1.5  # all layers at once: σ·√(GAIN² + 1) at the output, 17 % below act_a alone

    def __init__(self) -> None:
        super().__init__()
        self.act_a = nn.Hardtanh(-WIDE, WIDE)
        self.act_b = nn.Hardtanh(-WIDE, WIDE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act_b(self.GAIN * self.act_a(x))


def test_layer_sweep_puts_the_noise_in_one_layer_at_a_time():
    """Two classes, clean logits GAIN·(1, 0) or GAIN·(0, 1): accuracy falls halfway to chance at
    output noise σ* = GAIN / (√2·Φ⁻¹(0.75)), i.e. at σ*/GAIN after ``act_a``, σ* after ``act_b``,
    and σ*/√(GAIN² + 1) in both at once."""
    model, data = TwoStages(), two_class_data(margin=1.0, n=1000)
    settings = {"draws": 64, "tolerance": 0.01}
    at_output = TwoStages.GAIN / (math.sqrt(2) * norm.ppf(0.75))
    expected = {"act_a": at_output / TwoStages.GAIN, "act_b": at_output}
    sweep = layer_sweep(model, data, noise="additive", **settings)
    assert list(sweep) == ["act_a", "act_b"]
    for name, result in sweep.items():
        assert abs(result.level - expected[name]) < max(
            4 * result.uncertainty, 0.02 * expected[name]
        )
        # re-evaluated with noise in that layer only, the level is halfway to chance
        again = monte_carlo(
            model, data, noise=NoiseSpec("additive", result.level), layers=(name,), draws=64
        )
        assert again.mean() == pytest.approx(0.75, abs=4 * again.sem() + 0.01), name
        alone = midpoint(model, data, noise="additive", layers=(name,), **settings)
        assert alone.level == result.level and alone.evaluations == result.evaluations
    both = midpoint(model, data, noise="additive", **settings)
    assert both.level == pytest.approx(at_output / math.hypot(TwoStages.GAIN, 1), rel=0.03)


def test_robustness_curve_of_a_regression_metric_matches_monte_carlo():
    """Prediction = target + σ·z: RMSE σ and MAE σ·√(2/π) at every level (additive noise by
    default, in the layer given), each column equal to monte_carlo's at that level."""
    generator = torch.Generator().manual_seed(4)
    x = torch.rand(500, 1, generator=generator, dtype=torch.float64)
    data = (x, x[:, 0])
    levels = [0.0, 0.1, 0.4]
    settings = {"layers": ("act",), "task": "regression", "draws": 16, "seed": 2}
    curve = robustness_curve(Identity(), data, levels, metric="mae", **settings)
    assert curve.noise == {"type": "NoiseSpec", **dataclasses.asdict(NoiseSpec("additive"))}
    assert curve.metric == "mae" and curve.levels.dtype == np.float64
    np.testing.assert_array_equal(curve.levels, levels)
    np.testing.assert_allclose(curve.mean, np.array(levels) * math.sqrt(2 / math.pi), rtol=0.05)
    for k, level in enumerate(levels):
        result = monte_carlo(
            Identity(),
            data,
            noise=NoiseSpec("additive", level) if level else None,
            **settings,
        )
        assert curve.mean[k] == result.mean("mae")
        assert curve.std[k] == result.std("mae") and curve.sem[k] == result.sem("mae")
    assert json.loads(json.dumps(curve.to_dict())) == {
        "noise": curve.noise,
        "metric": "mae",
        "levels": levels,
        "mean": curve.mean.tolist(),
        "std": curve.std.tolist(),
        "sem": curve.sem.tolist(),
    }
    assert curve.sem[1] != monte_carlo(
        Identity(), data, noise=NoiseSpec("additive", 0.1), **settings
    ).sem("rmse")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ({"levels": []}, "levels must be a non-empty list of noise levels >= 0"),
        ({"levels": [0.1, -0.1]}, "levels must be a non-empty list of noise levels >= 0"),
        ({"levels": [[0.1, 0.2]]}, "levels must be a non-empty list of noise levels >= 0"),
        ({"low": 0.0}, "low must be"),
        ({"high": -1.0}, "high must be"),
        ({"tolerance": 0.0}, "tolerance must be"),
        ({"max_evaluations": 2}, "max_evaluations must be"),
        ({"low": 2.0, "high": 1.0}, "high (1.0) must exceed low (2.0)"),
        ({"metric": "mae"}, "metric must be one of ('accuracy', 'cross_entropy')"),
    ],
)
def test_bad_curve_and_midpoint_settings_name_the_setting(call, message):
    data = two_class_data(n=20)
    with pytest.raises(ConfigError) as error:
        if "levels" in call:
            robustness_curve(Logits(), data, call["levels"], layers=("act",))
        else:
            midpoint(Logits(), data, layers=("act",), draws=2, **call)
    assert str(error.value).startswith(message), str(error.value)


def test_integer_levels_become_float_levels():
    curve = robustness_curve(Logits(), two_class_data(n=20), [0, 1], layers=("act",), draws=2)
    assert curve.levels.dtype == np.float64 and curve.levels.tolist() == [0.0, 1.0]


def test_layer_sweep_of_weight_noise_walks_the_analog_layers(trained):
    """Weight noise: by default every analog layer in turn, each sweep entry the midpoint of that
    noise in that layer alone."""
    model, test_data = trained
    noise = WeightNoiseSpec("multiplicative")
    settings = {"draws": 4, "tolerance": 0.3, "max_evaluations": 6}
    sweep = layer_sweep(model, test_data, noise=noise, **settings)
    assert list(sweep) == ["linear1", "linear2", "output"]
    alone = midpoint(model, test_data, noise=noise, layers=("output",), **settings)
    assert sweep["output"].level == alone.level
    additive = midpoint(
        model, test_data, noise=WeightNoiseSpec("additive"), layers=("output",), **settings
    )
    assert sweep["output"].level != additive.level


def test_midpoint_widens_the_bracket_downward():
    """The bracket starts above the midpoint (accuracy below halfway at ``low``): ``low`` is
    divided by 10 until it is above, and the midpoint is still found; where even low/10⁴ is
    below halfway the error says so."""
    data = two_class_data(margin=1.0, n=1000)
    expected = 1.0 / (math.sqrt(2) * norm.ppf(0.75))
    result = midpoint(
        Logits(),
        data,
        noise="additive",
        layers=("act",),
        low=5.0,
        high=50.0,
        draws=64,
        tolerance=0.01,
    )
    levels = [level for level, _, _ in result.evaluations]
    assert levels[:3] == [5.0, 0.5, 50.0]  # low, low / 10, then high
    assert abs(result.level - expected) < max(4 * result.uncertainty, 0.02 * expected)
    with pytest.raises(ConfigError, match="below halfway already at noise level 10"):
        midpoint(Logits(), data, noise="additive", layers=("act",), low=1e5, high=1e6, draws=8)


class Identity(nn.Module):
    """A regression 'network' whose prediction is its input, through one activation layer."""

    def __init__(self) -> None:
        super().__init__()
        self.act = nn.Hardtanh(-WIDE, WIDE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x)


def test_chance_level_of_regression_metrics():
    """RMSE of predicting the targets' mean (their population standard deviation), MAE of
    predicting their median, per output column."""
    task = Task("regression")
    y = torch.tensor([1.0, 2.0, 3.0, 4.0, 10.0], dtype=torch.float64)
    assert task.chance("rmse", 1, y) == pytest.approx(math.sqrt(10.0))  # mean 4
    assert task.chance("mae", 1, y) == pytest.approx(2.2)  # median 3
    assert task.chance("r2", 1, y) == 0.0
    two = torch.stack([y, 2 * y + 5], dim=1)  # second column: mean 13, median 11
    assert task.chance("rmse", 2, two) == pytest.approx(math.sqrt((10.0 + 40.0) / 2))
    assert task.chance("mae", 2, two) == pytest.approx((2.2 + 4.4) / 2)
    with pytest.raises(ConfigError, match="needs the targets"):
        task.chance("rmse", 1)
    with pytest.raises(ConfigError, match="unknown metric"):
        task.chance("accuracy_at_5", 1, y)


@pytest.mark.parametrize("metric", ["rmse", "mae"])
def test_regression_midpoint_is_where_the_error_reaches_half_of_chance(metric):
    """Prediction = target + σ·z: RMSE σ, MAE σ·√(2/π); clean error 0, so halfway to chance is
    half of chance's error: σ* = chance/2 (RMSE) or chance/(2·√(2/π)) (MAE)."""
    generator = torch.Generator().manual_seed(3)
    x = torch.rand(2000, 1, generator=generator, dtype=torch.float64) * 3.0
    y = x[:, 0]
    chance = Task("regression").chance(metric, 1, y)
    expected = chance / 2 if metric == "rmse" else chance / (2 * math.sqrt(2 / math.pi))
    result = midpoint(
        Identity(),
        (x, y),
        noise="additive",
        layers=("act",),
        task="regression",
        metric=metric,
        draws=32,
        tolerance=0.01,
    )
    assert result.clean == 0.0 and result.chance == pytest.approx(chance)
    assert result.target == pytest.approx(chance / 2)
    assert abs(result.level - expected) < max(4 * result.uncertainty, 0.02 * expected)


def test_noise_with_nowhere_to_go_is_an_error_saying_what_the_model_lacks():
    """Activation noise on a model without activation layers, weight noise on one without analog
    layers, circuit noise (built into a model, never injected): one line saying what to do."""
    linear = nn.Sequential(nn.Linear(2, 2).double())
    with pytest.raises(ConfigError) as error:
        monte_carlo(linear, two_class_data(), noise="additive", draws=2)
    assert str(error.value) == "the model has no activation layers to put noise after"
    with pytest.raises(ConfigError) as error:
        monte_carlo(Logits(), two_class_data(), noise="weight_additive", draws=2)
    assert str(error.value) == (
        "weight noise needs AnalogLinear / AnalogConv2d layers: build the model with "
        "circuitnn.nn.build_mlp / build_cnn or convert it with circuitnn.nn.to_analog"
    )
    with pytest.raises(ConfigError) as error:
        monte_carlo(Logits(), two_class_data(), noise=NoiseSpec("circuit", 0.1), draws=2)
    assert str(error.value) == "circuit noise cannot be injected: build the model with it"
    with pytest.raises(ConfigError) as error:
        monte_carlo(Logits(), two_class_data(), noise=0.1, draws=2)
    assert str(error.value) == "noise must be a NoiseSpec or WeightNoiseSpec, got 0.1"


def test_snr_of_a_layer_the_model_lacks_is_an_error_naming_it():
    with pytest.raises(ConfigError) as error:
        layer_snr(Logits(), two_class_data()[0], layers=("act", "hidden2"), draws=2)
    assert str(error.value) == "no layer 'hidden2' in the model"


def test_monte_carlo_summary_against_direct_statistics():
    """Each summary entry against Python's statistics module on the same numbers: sample std
    (n − 1) over all chips × draws, sem = std/√n, the std of the chip means between chips, the
    mean of each chip's std over its draws within a chip; 0 where only one value is there."""
    import statistics

    from circuitnn.evaluate.montecarlo import MonteCarloResult

    grid = [[0.90, 0.80, 0.85, 0.70], [0.60, 0.65, 0.75, 0.50], [0.95, 0.97, 0.99, 0.93]]
    one_chip = [[0.2, 0.5, 0.4, 0.9]]
    one_draw = [[1.0], [3.0], [4.0]]
    two_by_two = [[0.1, 0.4], [0.3, 0.8]]
    result = MonteCarloResult(
        "classification",
        {
            "accuracy": np.array(grid),
            "cross_entropy": np.array(one_chip),
            "rmse": np.array(one_draw),
            "mae": np.array(two_by_two),
            "single": np.array([[0.3]]),
        },
    )
    summary = result.summary()
    cases = {"accuracy": grid, "cross_entropy": one_chip, "rmse": one_draw, "mae": two_by_two}
    for name, rows in cases.items():
        flat = [v for row in rows for v in row]
        means = [statistics.fmean(row) for row in rows]
        expected = {
            "mean": statistics.fmean(flat),
            "std": statistics.stdev(flat),
            "sem": statistics.stdev(flat) / math.sqrt(len(flat)),
            "min": min(flat),
            "max": max(flat),
            "between_chips": statistics.stdev(means) if len(rows) > 1 else 0.0,
            "within_chip": statistics.fmean(statistics.stdev(row) for row in rows)
            if len(rows[0]) > 1
            else 0.0,
        }
        assert summary[name] == pytest.approx(expected, rel=1e-12, abs=0), name
    assert summary["single"] == {
        "mean": 0.3,
        "std": 0.0,
        "sem": 0.0,
        "min": 0.3,
        "max": 0.3,
        "between_chips": 0.0,
        "within_chip": 0.0,
    }


def test_midpoint_errors(trained):
    model, test_data = trained
    shared = NoiseSpec("additive", correlation=1.0)  # shifts both logits alike: harmless
    with pytest.raises(ConfigError, match="does not fall halfway"):
        midpoint(Logits(), two_class_data(), noise=shared, layers=("act",), draws=2)
    with pytest.raises(ConfigError, match="metric"):
        midpoint(model, test_data, metric="rmse")
    with pytest.raises(ConfigError, match="noise"):
        robustness_curve(model, test_data, [0.1], noise="pink")
    with pytest.raises(ConfigError, match="layer"):
        monte_carlo(model, test_data, noise="additive", layers=("nope",))


def test_worst_case_weight_perturbation(trained):
    model, test_data = trained
    before = {k: v.clone() for k, v in model.state_dict().items()}
    zero = worst_case(model, test_data, 0.0)
    assert zero.attacked.mean() == zero.clean.mean() and zero.drop == 0
    result = worst_case(model, test_data, 0.1, steps=5)
    assert result.attacked.mean() < result.clean.mean() - 0.05  # regression guard
    assert 0 < result.relative_change <= 0.1 + 1e-9
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    random = monte_carlo(
        model, test_data, draws=8, noise=WeightNoiseSpec("multiplicative", 0.1 / math.sqrt(3))
    )
    assert result.attacked.mean() < random.mean(), "the attack beats random noise of equal RMS"


def test_layer_snr(trained):
    model, test_data = trained
    x = torch.as_tensor(test_data[0])
    quiet = layer_snr(model, x, draws=4)
    assert all(math.isinf(value.snr) for value in quiet.values())
    sigma = 0.2
    result = layer_snr(
        model, x, draws=32, noise=NoiseSpec("additive", sigma), noise_layers=("act1",)
    )
    assert list(result) == ["act1", "act2", "output"]
    assert result["act1"].noise == pytest.approx(sigma**2, rel=0.05)
    assert result["act1"].snr == pytest.approx(result["act1"].signal / sigma**2, rel=0.05)
    assert result["act2"].noise > 0 and math.isfinite(result["output"].snr_db)


class NoisyLogits(nn.Module):
    """Logits through one activation layer, then the model's own additive noise (on in eval)."""

    def __init__(self, sigma: float) -> None:
        super().__init__()
        self.act = nn.Identity()
        self.own = NoiseSpec("additive", sigma).build(seed=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.own(self.act(x))


@pytest.mark.parametrize("own_noise", [True, False])
def test_curve_and_midpoint_evaluate_with_the_settings_they_are_given(own_noise):
    """Every point of a curve and every evaluation of a midpoint is monte_carlo's with the same
    chips, draws, seed, own noise and rows per pass (none of them the default), for the metric
    asked for; a chance level given is the one used."""
    model, data = NoisyLogits(0.3), two_class_data(margin=1.0, n=300)
    settings = {
        "chips": 2,
        "draws": 5,
        "seed": 3,
        "own_noise": own_noise,
        "max_rows": 70,
        "layers": ("act",),
    }

    def direct(level: float):
        noise = NoiseSpec("additive", level) if level else None
        return monte_carlo(model, data, noise=noise, **settings)

    metric = "cross_entropy"  # not the main metric (accuracy)
    curve = robustness_curve(model, data, [0.0, 0.8], metric=metric, **settings)
    for k, level in enumerate([0.0, 0.8]):
        result = direct(level)
        assert curve.mean[k] == result.mean(metric)
        assert (curve.std[k], curve.sem[k]) == (result.std(metric), result.sem(metric))

    found = midpoint(model, data, metric=metric, chance=1.5, tolerance=0.2, **settings)
    clean = direct(0.0).mean(metric)
    assert (found.clean, found.chance, found.target) == (clean, 1.5, 0.5 * (clean + 1.5))
    assert len(found.evaluations) >= 3
    for level, mean, sem in found.evaluations:
        result = direct(level)
        assert (mean, sem) == (result.mean(metric), result.sem(metric)), level
    assert found.low < found.level < found.high


def test_midpoint_of_three_evaluations_and_of_an_empty_bracket():
    """``max_evaluations = 3``, the fewest allowed, is low, high and one bisection; a bracket
    with ``high == low`` is refused."""
    data = two_class_data(margin=1.0, n=200)
    found = midpoint(Logits(), data, layers=("act",), draws=4, max_evaluations=3)
    assert len(found.evaluations) == 3
    with pytest.raises(ConfigError) as error:
        midpoint(Logits(), data, layers=("act",), draws=4, low=1.0, high=1.0)
    assert str(error.value).startswith("high (1.0) must exceed low (1.0)"), str(error.value)


def test_chance_level_of_classification_metrics():
    """Accuracy 1/classes; cross-entropy log(classes), the task's own loss on uniform logits."""
    task = Task("classification")
    assert task.chance("accuracy", 4) == 0.25
    uniform = torch.zeros(6, 4, dtype=torch.float64)
    targets = torch.tensor([0, 1, 2, 3, 3, 1])
    assert task.chance("cross_entropy", 4) == pytest.approx(float(task.loss(uniform, targets)))


def test_regression_targets_without_the_single_output_axis_get_it():
    """Targets (B,) for outputs (B, 1), or (B, T) for (B, T, 1), are compared element by
    element, as if given with the output's trailing axis."""
    task = Task("regression")
    generator = torch.Generator().manual_seed(0)
    for shape in [(5, 1), (5, 3, 1)]:
        output = torch.randn(shape, generator=generator, dtype=torch.float64)
        target = torch.randn(shape[:-1], generator=generator, dtype=torch.float64)
        expected = ((output[..., 0] - target) ** 2).mean()
        assert float(task.loss(output, target)) == pytest.approx(float(expected), rel=1e-12)
    # the loss is computed in the output's dtype, whatever the targets'
    output32 = torch.randn(5, 1, generator=generator)
    assert task.loss(output32, torch.randn(5, dtype=torch.float64)).dtype == torch.float32


def test_midpoint_is_interpolated_in_its_final_bracket():
    """The level is the log-axis interpolation of the metric between the final bracket's ends,
    its statistical error the sem of the evaluation nearest it (log axis) over the slope across
    the bracket, the bracket error half the bracket's width, the uncertainty both in quadrature;
    bisection stops at the tolerance, before the evaluation limit."""
    data = two_class_data(margin=3.0, n=600)  # midpoint near 3.1: far from 1 on a log axis
    found = midpoint(Logits(), data, layers=("act",), draws=32, tolerance=0.02)
    assert found.metric == "accuracy" and found.chance == 0.5
    assert found.target == 0.5 * (found.clean + 0.5)
    means = {level: mean for level, mean, _ in found.evaluations}
    above, below = means[found.low] - found.target, means[found.high] - found.target
    assert above > 0 >= below
    log_level = math.log(found.low) + above / (above - below) * math.log(found.high / found.low)
    assert found.level == pytest.approx(math.exp(log_level), rel=1e-12)
    nearest = min(found.evaluations, key=lambda row: abs(math.log(row[0]) - log_level))
    slope = (means[found.high] - means[found.low]) / (found.high - found.low)
    assert found.statistical == pytest.approx(nearest[2] / abs(slope), rel=1e-12)
    assert found.bracket == pytest.approx(0.5 * (found.high - found.low), rel=1e-12)
    assert found.uncertainty == pytest.approx(math.hypot(found.bracket, found.statistical))
    assert found.high / found.low <= 1.02 and len(found.evaluations) < 24


def test_midpoint_widens_the_bracket_up_to_four_times_each_way():
    """``high`` is multiplied by 10 until the metric is below halfway, ``low`` divided by 10
    until it is above, at most four times each; past that the error names the last level."""
    data = two_class_data(margin=1.0, n=1000)  # midpoint near 1.05
    settings = {"layers": ("act",), "draws": 16, "tolerance": 0.5}
    up = midpoint(Logits(), data, low=1e-4, high=2e-3, **settings)
    levels = [level for level, _, _ in up.evaluations]
    assert levels[:5] == pytest.approx([1e-4, 2e-3, 2e-2, 2e-1, 2.0], rel=1e-12)
    down = midpoint(Logits(), data, low=5e3, high=5e4, **settings)
    levels = [level for level, _, _ in down.evaluations]
    assert levels[:6] == pytest.approx([5e3, 5e2, 50.0, 5.0, 0.5, 5e4], rel=1e-12)
    assert down.low < 1.05 < down.high
    with pytest.raises(ConfigError) as error:
        midpoint(Logits(), data, low=1e-9, high=1e-8, **settings)
    assert str(error.value) == (
        "accuracy does not fall halfway to chance (0.75) by noise level 0.0001"
    )
    with pytest.raises(ConfigError) as error:
        midpoint(Logits(), data, chance=1.0, **settings)
    assert str(error.value) == "the clean accuracy (1) is already at chance"


def test_output_distance_is_the_kl_of_the_softmaxes_or_the_mean_squared_difference():
    """Classification: KL(softmax(clean) ‖ softmax(perturbed)) over the last axis, summed and
    divided by the batch size; regression: the mean squared difference."""
    generator = torch.Generator().manual_seed(2)
    clean = torch.randn(2, 4, 3, generator=generator, dtype=torch.float64)
    perturbed = torch.randn(2, 4, 3, generator=generator, dtype=torch.float64)
    p, q = torch.softmax(clean, dim=-1), torch.softmax(perturbed, dim=-1)
    kl = float((p * (p.log() - q.log())).sum()) / 2
    assert float(Task().distance(clean, perturbed)) == pytest.approx(kl, rel=1e-12)
    assert float(Task().distance(clean, clean)) == pytest.approx(0.0, abs=1e-15)
    mse = float(((perturbed - clean) ** 2).mean())
    assert float(Task("regression").distance(clean, perturbed)) == pytest.approx(mse, rel=1e-12)


def test_targets_in_the_dtype_the_loss_needs():
    """Classification: class indices as integers (floats only if whole numbers), else an error
    naming the problem; regression: floats as given, integers in the default float dtype."""
    classes = Task().targets(torch.tensor([0.0, 2.0, 1.0]))
    assert classes.dtype == torch.long and classes.tolist() == [0, 2, 1]
    assert Task().targets(torch.tensor([1, 0])).dtype == torch.long
    with pytest.raises(ConfigError) as error:
        Task().targets(torch.tensor([0.5, 1.0]))
    assert str(error.value) == "classification targets must be integer class indices"
    values = torch.tensor([0.5, 2.0], dtype=torch.float64)
    assert Task("regression").targets(values) is values
    whole = Task("regression").targets(torch.tensor([1, 3]))
    assert whole.dtype == torch.get_default_dtype() and whole.tolist() == [1.0, 3.0]
    with pytest.raises(ConfigError) as error:
        Task("ranking")
    assert str(error.value).startswith("task must be one of"), str(error.value)


def test_r2_is_one_minus_the_squared_error_over_the_spread_when_there_is_a_spread():
    task = Task("regression")
    sums = {"squared": np.array([2.0, 4.0]), "absolute": np.array([2.0, 3.0]), "count": 4.0}
    np.testing.assert_allclose(task.finish(sums, spread=8.0)["r2"], [0.75, 0.5], rtol=1e-15)
    np.testing.assert_allclose(task.finish(sums, spread=0.5)["r2"], [-3.0, -7.0], rtol=1e-15)
    assert "r2" not in task.finish(sums, spread=0.0) and "r2" not in task.finish(sums)
    np.testing.assert_allclose(task.finish(sums)["rmse"], np.sqrt([0.5, 1.0]), rtol=1e-15)


def _bias_only_model() -> nn.Module:
    """Logits from the biases alone (zero weights): class 0 ahead by 0.1."""
    model = nn.Sequential(nn.Linear(2, 2))
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.copy_(torch.tensor([0.1, 0.0]))
    return model


def test_worst_case_attacks_the_biases_only_when_asked_and_checks_its_settings():
    """Zero weights (their bound ζ|θ| is 0), class 0 ahead by its bias: with ``biases=True``
    the attack lowers that bias past class 1's and the accuracy goes from the share of class 0
    to that of class 1; with ``biases=False`` nothing can move. Float64 data reach a float32
    model in its dtype; a random start is reproducible from the seed; bad settings are named."""
    labels = torch.tensor([0, 0, 0, 1] * 25)
    data = (torch.zeros(100, 2, dtype=torch.float64), labels)  # float64 data, float32 model
    model = _bias_only_model()
    attacked = worst_case(model, data, 2.0, steps=3, attack_samples=1)
    assert attacked.clean.mean() == 0.75 and attacked.attacked.mean() == 0.25
    # the bias moved from 0.1 to the far end of its box, 0.1 - 2.0 * 0.1: ‖δ‖/‖θ‖ = 2
    assert attacked.zeta == 2.0 and attacked.relative_change == pytest.approx(2.0, rel=1e-6)
    assert worst_case(model, data, 0.5, steps=0).relative_change == 0.0  # no random start
    kept = worst_case(model, data, 2.0, steps=3, biases=False)
    assert kept.attacked.mean() == kept.clean.mean() == 0.75 and kept.relative_change == 0.0
    assert torch.equal(model[0].bias.detach(), torch.tensor([0.1, 0.0]))
    settings = {"steps": 0, "random_start": True, "seed": 4}
    first, again = (
        worst_case(model, data, 0.5, **settings),
        worst_case(model, data, 0.5, **settings),
    )
    assert first.relative_change == again.relative_change > 0
    other = worst_case(model, data, 0.5, **{**settings, "seed": 5})
    assert other.relative_change != first.relative_change
    steps = {"steps": 2, "random_start": True, "seed": 4}
    slow = worst_case(model, data, 0.5, step_fraction=0.3, **steps)
    assert slow.relative_change != worst_case(model, data, 0.5, **steps).relative_change
    for call, message in [
        ({"zeta": -0.1}, "zeta must be"),
        ({"zeta": 0.1, "attack_samples": 0}, "attack_samples must be"),
    ]:
        with pytest.raises(ConfigError) as error:
            worst_case(model, data, **call)
        assert str(error.value).startswith(message), str(error.value)
    with pytest.raises(ConfigError) as error:
        worst_case(model, (data[0],), 0.1)
    assert str(error.value) == "data must be a pair (inputs, targets)"


def test_r2_of_several_outputs_is_against_each_columns_mean_and_two_values_have_a_spread():
    """R² = 1 − SSE / Σ (y − the column's mean)², the same on the device given; the standard
    deviation of two values is the sample one, not 0."""
    generator = torch.Generator().manual_seed(7)
    x = torch.rand(50, 2, generator=generator, dtype=torch.float64)
    x[:, 1] += 3.0  # the columns' means differ
    y = x + 0.1 * torch.randn(50, 2, generator=generator, dtype=torch.float64)
    y_mean = y.mean(dim=0)
    expected = 1.0 - float(((x - y) ** 2).sum()) / float(((y - y_mean) ** 2).sum())
    result = monte_carlo(Identity(), (x, y), task="regression", draws=1)
    assert result.mean("r2") == pytest.approx(expected, rel=1e-6)  # (float32 model)
    on_cpu = monte_carlo(Identity(), (x, y), task="regression", draws=1, device="cpu")
    assert on_cpu.mean("r2") == result.mean("r2")
    from circuitnn.evaluate.montecarlo import MonteCarloResult

    two = MonteCarloResult("regression", {"rmse": np.array([[1.0, 3.0]])})
    assert two.std("rmse") == pytest.approx(math.sqrt(2.0), rel=1e-15)


def test_worst_case_evaluates_with_the_task_draws_and_seed_it_is_given():
    """The clean and attacked evaluations are monte_carlo's with the task, draws and seed given
    (at ζ = 0 both are the unperturbed model's)."""
    model = nn.Sequential(nn.Linear(2, 2), NoiseSpec("additive", 0.3).build(seed=0)).double()
    data = two_class_data(n=60)
    result = worst_case(model, data, 0.0, draws=3, seed=2)
    expected = monte_carlo(model, data, draws=3, seed=2)
    for evaluation in (result.clean, result.attacked):
        assert evaluation.metrics.keys() == expected.metrics.keys()
        for name, values in expected.metrics.items():
            np.testing.assert_array_equal(evaluation.metrics[name], values, err_msg=name)
    x = torch.linspace(0.0, 1.0, 20, dtype=torch.float64)[:, None]
    regression = worst_case(nn.Linear(1, 1).double(), (x, 2 * x[:, 0]), 0.1, task="regression")
    assert {"rmse", "r2"} <= regression.clean.metrics.keys() <= regression.attacked.metrics.keys()


def test_monte_carlo_settings_are_checked_by_name_and_the_smallest_allowed():
    """``draws``, ``max_rows`` and ``chips`` below 1 and data that is not a pair are errors
    naming them; 1 of each is allowed; an unknown metric is a KeyError naming it and the
    metrics there are."""
    data = two_class_data(n=10)
    for setting, message in [
        ({"draws": 0}, "draws must be at least 1, got 0"),
        ({"max_rows": 0}, "max_rows must be at least 1, got 0"),
        ({"chips": 0}, "chips must be at least 1, got 0"),
    ]:
        with pytest.raises(ConfigError) as error:
            monte_carlo(Logits(), data, **setting)
        assert str(error.value) == message
    with pytest.raises(ConfigError) as error:
        monte_carlo(Logits(), (data[0],))
    assert str(error.value) == "data must be a pair (inputs, targets)"
    result = monte_carlo(Logits(), data, draws=1, max_rows=1, chips=1)
    assert result.metrics["accuracy"].tolist() == [[1.0]]
    with pytest.raises(KeyError) as error:
        result.mean("rmse")
    assert error.value.args == ("no metric 'rmse'; have ['accuracy', 'cross_entropy']",)


def test_monte_carlo_passes_integer_inputs_to_the_model_as_they_are():
    """Integer inputs (token indices for an embedding) reach the model unconverted: the
    accuracy is that of the embedding's rows looked up by hand."""
    model = nn.Embedding(3, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]))
    x = torch.tensor([0, 1, 2, 2])
    labels = torch.tensor([0, 1, 1, 0])  # row 2 says class 0: the third sample is wrong
    result = monte_carlo(model, (x, labels), draws=2)
    assert result.metrics["accuracy"].tolist() == [[0.75, 0.75]]


def test_monte_carlo_draws_each_chips_noise_apart_and_silences_own_noise_when_asked():
    """With nothing to vary between chips, two chips still see different noise draws (each
    chip its own); ``own_noise=False`` evaluates a model with noise in evaluation as if it had
    none: accuracy 1 and the cross-entropy of the clean logits, log(1 + e^−margin)."""
    data = two_class_data(margin=0.5, n=40)
    additive = NoiseSpec("additive", 1.0)
    chips = monte_carlo(Logits(), data, chips=2, draws=3, noise=additive, layers=("act",))
    assert not np.array_equal(chips.metrics["accuracy"][0], chips.metrics["accuracy"][1])
    noisy = nn.Sequential(NoiseSpec("additive", 1.0).build(seed=0))
    assert monte_carlo(noisy, data, draws=3).std() > 0  # its own noise is on in evaluation
    quiet = monte_carlo(noisy, data, draws=3, own_noise=False)
    assert quiet.metrics["accuracy"].tolist() == [[1.0, 1.0, 1.0]]
    np.testing.assert_allclose(quiet.metrics["cross_entropy"], math.log1p(math.exp(-0.5)))
