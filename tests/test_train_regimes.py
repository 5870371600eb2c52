"""Each training regime does its job, observably, on one batch with a fixed seed.

Accuracy thresholds after training (tests/test_nn_train.py) cannot tell a regime from a no-op:
clean training reaches them too. Here every regime is checked at the one place it acts: the
zeroed fraction of a dropout layer (binomial test), the spread of injected noise in training and
its absence in evaluation, the weights a smoothing step is evaluated at (computed by hand from the
same random numbers), the adversarial term, the chip a retraining draws, and what each regime
leaves behind (nothing).
"""

from __future__ import annotations

import copy
import dataclasses
import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch.func import functional_call

from circuitnn.errors import ConfigError
from circuitnn.nn import CircuitSpec, NoiseSpec, build_mlp, mlp_spec, synthetic_family
from circuitnn.nn.model import chip_state, resample_chips
from circuitnn.train import (
    AdversarialWeights,
    ChipRetrain,
    Clean,
    Dropout,
    NoiseInjection,
    Task,
    TrainConfig,
    WeightSmoothing,
    perturbable,
    projected_attack,
    train,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FALSE_ALARM = 1e-3  # each statistical check fails a correct implementation this rarely
WIDTH, BATCH = 200, 100


def _model(seed: int = 0) -> torch.nn.Module:
    return build_mlp(mlp_spec(8, (WIDTH,), 3), seed=seed).double()


def _batch(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(BATCH, 8, generator=generator, dtype=torch.float64)
    return x, torch.randint(0, 3, (BATCH,), generator=generator)


def _hidden(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The output of ``act1`` as the next layer sees it (after every hook on it)."""
    seen: list[torch.Tensor] = []
    handle = model.act1.register_forward_hook(lambda m, a, out: seen.append(out.detach()))
    try:
        model(x)
    finally:
        handle.remove()
    return seen[0]


def _installed(regime, model, seed: int = 0):
    """``regime`` installed on ``model`` (a context manager undoing it)."""
    import contextlib

    @contextlib.contextmanager
    def block():
        undo = regime.install(model, Task(), seed)
        try:
            yield
        finally:
            for callback in reversed(undo):
                callback()

    return block()


def test_dropout_zeroes_a_fraction_p_in_training_only() -> None:
    p = 0.3
    model, (x, _) = _model(), _batch()
    model.train()
    clean = _hidden(model, x)
    assert (clean != 0).all()
    with _installed(Dropout(p), model):
        dropped = _hidden(model, x)
        zeroed = int((dropped == 0).sum())
        # k zeroed of n ~ Binomial(n, p)
        assert stats.binomtest(zeroed, clean.numel(), p).pvalue > FALSE_ALARM, zeroed
        kept = dropped != 0
        torch.testing.assert_close(dropped[kept], clean[kept] / (1 - p), rtol=1e-12, atol=0)
        assert not torch.equal(_hidden(model, x), dropped), "a new mask every step"
        model.eval()
        assert torch.equal(_hidden(model, x), clean), "no dropout in evaluation"
        model.train()
    assert torch.equal(_hidden(model, x), clean), "removed after training"


def test_dropout_masks_come_from_the_training_seed_alone() -> None:
    """The same seed draws the same masks whatever torch's global generator holds; another seed
    draws others."""
    model, (x, _) = _model(), _batch()
    model.train()
    masks = []
    for seed, global_seed in ((0, 1), (0, 2), (1, 1)):
        torch.manual_seed(global_seed)
        with _installed(Dropout(0.3), model, seed=seed):
            masks.append(_hidden(model, x) == 0)
    assert torch.equal(masks[0], masks[1])
    assert not torch.equal(masks[0], masks[2])


def test_dropout_in_the_chosen_layers_only_each_with_its_own_masks() -> None:
    model = build_mlp(mlp_spec(8, (WIDTH, WIDTH), 3), seed=0).double()
    x, _ = _batch()
    model.train()

    def outputs() -> dict[str, torch.Tensor]:
        seen: dict[str, torch.Tensor] = {}
        handles = [
            getattr(model, name).register_forward_hook(
                lambda m, a, out, name=name: seen.__setitem__(name, out.detach())
            )
            for name in ("act1", "act2")
        ]
        model(x)
        for handle in handles:
            handle.remove()
        return seen

    clean = outputs()
    with _installed(Dropout(0.3, layers=("act2",)), model):
        torch.testing.assert_close(outputs()["act1"], clean["act1"], rtol=0, atol=0)
    with _installed(Dropout(0.3), model):
        both = outputs()
    masks = [both[name] == 0 for name in ("act1", "act2")]
    assert masks[0].any() and not torch.equal(masks[0], masks[1]), "one mask per layer"
    ChipRetrain(chip_seed=0)  # seed 0 is a seed


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ChipRetrain(mode="curved"), "ChipRetrain.mode"),
        (lambda: ChipRetrain(chip_seed=-1), "ChipRetrain.chip_seed"),
        (lambda: ChipRetrain(chip_seed=1.5), "ChipRetrain.chip_seed"),
        (lambda: Dropout(-0.1), "Dropout.p"),
        (lambda: WeightSmoothing(-0.1), "WeightSmoothing.sigma"),
        (lambda: WeightSmoothing(0.1, kind="relative"), "WeightSmoothing.kind"),
        (lambda: WeightSmoothing(0.1, biases=1), "WeightSmoothing.biases"),
        (lambda: AdversarialWeights(zeta=-1), "AdversarialWeights.zeta"),
        (lambda: AdversarialWeights(beta=-1), "AdversarialWeights.beta"),
        (lambda: AdversarialWeights(step_fraction=0), "AdversarialWeights.step_fraction"),
        (lambda: AdversarialWeights(steps=0), "AdversarialWeights.steps"),
        (lambda: AdversarialWeights(biases="yes"), "AdversarialWeights.biases"),
        (lambda: NoiseInjection("additive"), "NoiseInjection.noise must be a NoiseSpec"),
    ],
)
def test_bad_regime_settings_name_the_setting(make, message) -> None:
    with pytest.raises(ConfigError) as error:
        make()
    assert str(error.value).startswith(message), str(error.value)


def test_noise_injection_of_circuit_noise_says_what_to_do_instead() -> None:
    with pytest.raises(ConfigError) as error:
        NoiseInjection(NoiseSpec("circuit", 0.5))
    assert str(error.value) == (
        "NoiseInjection.noise cannot be kind='circuit': build the model with a circuit noise "
        "(LayerSpec noise) and use NoiseInjection() instead"
    )


def test_the_fewest_adversarial_steps_is_one_and_noise_injection_describes_its_noise() -> None:
    assert AdversarialWeights(steps=1).steps == 1
    spec = NoiseSpec("additive", 0.25)
    described = NoiseInjection(spec, layers=("act1",)).describe()
    assert described == {
        "name": "noise_injection",
        "noise": dataclasses.asdict(spec),
        "layers": ("act1",),
    }


def test_noise_or_dropout_in_a_model_without_activation_layers_is_an_error() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 2))
    for regime in (NoiseInjection(NoiseSpec("additive", 0.1)), Dropout(0.2)):
        with pytest.raises(ConfigError) as error:
            regime.install(model, Task(), 0)
        assert str(error.value) == (
            "the model has no activation layers to place noise or dropout after"
        )


def test_chip_retrain_needs_circuit_neurons() -> None:
    with pytest.raises(ConfigError) as error:
        ChipRetrain().install(_model(), Task(), 0)
    assert str(error.value) == "ChipRetrain needs a model with CircuitActivation layers"


def test_noise_injection_varies_training_outputs_by_sigma_and_leaves_evaluation_clean() -> None:
    sigma = 0.2
    model, (x, _) = _model(), _batch()
    model.train()
    clean = _hidden(model, x)
    with _installed(NoiseInjection(NoiseSpec("additive", sigma)), model):
        noise = _hidden(model, x) - clean
        n = noise.numel()
        # the mean of n N(0, σ²) draws, and their variance: (n-1)s²/σ² ~ χ²(n-1)
        z = float(noise.mean()) / (sigma / math.sqrt(n))
        assert 2 * stats.norm.sf(abs(z)) > FALSE_ALARM, z
        chi2 = (n - 1) * float(noise.var()) / sigma**2
        assert 2 * min(stats.chi2.cdf(chi2, n - 1), stats.chi2.sf(chi2, n - 1)) > FALSE_ALARM
        assert not torch.equal(_hidden(model, x) - clean, noise), "fresh noise every step"
        model.eval()
        assert torch.equal(_hidden(model, x), clean), "training noise only (in_eval=False)"
        model.train()
    assert torch.equal(_hidden(model, x), clean), "removed after training"


def _hand_perturbed(model, seed: int, sigma: float, kind: str, biases: bool):
    """θ + σ·z or θ·(1 + σ·z), z drawn as WeightSmoothing draws it: one float64 standard
    normal tensor per perturbable parameter, in order, from a generator seeded ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    moved = {}
    for name, parameter in perturbable(model, biases).items():
        z = torch.randn(parameter.shape, generator=generator, dtype=torch.float64)
        theta = parameter.detach()
        moved[name] = theta + sigma * z if kind == "additive" else theta * (1 + sigma * z)
    return moved


@pytest.mark.parametrize(
    ("kind", "biases"), [("multiplicative", True), ("additive", True), ("additive", False)]
)
def test_weight_smoothing_step_is_taken_at_the_perturbed_weights(kind: str, biases: bool) -> None:
    sigma = 0.3
    model, (x, y) = _model(), _batch()
    task = Task()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    loss = WeightSmoothing(sigma, kind, biases).loss(
        model, x, y, task, torch.Generator().manual_seed(5)
    )
    loss.backward()
    moved = _hand_perturbed(model, 5, sigma, kind, biases)
    assert any(name.endswith("bias") for name in moved) == biases
    # the loss and gradient are those at the perturbed weights, by hand
    at = {name: value.clone().requires_grad_(True) for name, value in moved.items()}
    expected = task.loss(functional_call(model, at, (x,)), y)
    torch.autograd.backward(expected)
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-12)
    clean = task.loss(model(x), y)
    assert abs(float(loss.detach()) - float(clean.detach())) > 1e-3, (
        "the perturbation changes the loss"
    )
    for name, parameter in perturbable(model, biases).items():
        torch.testing.assert_close(parameter.grad, at[name].grad, rtol=1e-10, atol=1e-12)
    # the perturbation is not left in the weights
    for name, parameter in model.named_parameters():
        assert torch.equal(parameter.detach(), before[name]), name


@pytest.mark.parametrize(
    ("zeta", "beta", "steps", "step_fraction", "biases"),
    [(0.2, 0.5, 3, None, True), (1.0, 1.0, 2, 0.4, False)],
)
def test_adversarial_weights_add_the_attacked_distance_and_leave_the_weights(
    zeta, beta, steps, step_fraction, biases
) -> None:
    model, (x, y) = _model(), _batch()
    task = Task()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    regime = AdversarialWeights(zeta, beta, steps, step_fraction, biases)
    loss = regime.loss(model, x, y, task, torch.Generator().manual_seed(9))
    params = perturbable(model, biases)
    clean = model(x)
    reference = clean.detach()

    def distance(perturbed):
        return task.distance(reference, functional_call(model, perturbed, (x,)))

    delta = projected_attack(
        params, distance, zeta, steps, step_fraction, torch.Generator().manual_seed(9)
    )
    for name, d in delta.items():
        assert (d.abs() <= zeta * params[name].detach().abs() + 1e-15).all(), name
    attacked = task.distance(
        clean, functional_call(model, {n: p + delta[n] for n, p in params.items()}, (x,))
    ).detach()
    assert float(attacked) > 1e-4, "the attack moves the outputs"
    assert float(loss.detach()) == pytest.approx(
        float(task.loss(clean, y).detach() + beta * attacked), rel=1e-10
    )
    # the sign-gradient steps find a larger distance than the random start they began from
    start = projected_attack(params, distance, zeta, 0, None, torch.Generator().manual_seed(9))
    assert float(attacked) > float(distance({n: p + start[n] for n, p in params.items()}).detach())
    for name, parameter in model.named_parameters():
        assert torch.equal(parameter.detach(), before[name]), name


REGIMES = [
    NoiseInjection(NoiseSpec("additive", 0.3)),
    NoiseInjection(NoiseSpec("multiplicative", 0.3)),
    Dropout(0.3),
    WeightSmoothing(0.2),
    WeightSmoothing(0.2, kind="additive"),
    AdversarialWeights(zeta=0.2),
]


@pytest.mark.parametrize("regime", REGIMES, ids=lambda r: f"{r.name}")
def test_each_regime_changes_the_gradient_and_then_leaves_the_model_as_it_was(regime) -> None:
    """Same model, batch and seed: the regime's gradient is not the clean one; afterwards the
    model computes exactly what it computed before."""
    model, (x, y) = _model(), _batch()
    task = Task()
    model.train()
    before_output = model(x).detach()

    def gradient(chosen):
        copied = copy.deepcopy(model)
        copied.train()
        copied.zero_grad()
        undo = chosen.install(copied, task, 3)
        try:
            chosen.loss(copied, x, y, task, torch.Generator().manual_seed(3)).backward()
        finally:
            for callback in reversed(undo):
                callback()
        assert torch.equal(copied(x).detach(), before_output), "the regime left something"
        return torch.cat([p.grad.flatten() for p in copied.parameters()])

    clean, perturbed = gradient(Clean()), gradient(regime)
    change = float((perturbed - clean).norm() / clean.norm())
    assert change > 0.01, f"{regime.name}: gradient changed by only {change:.2e}"


def test_training_follows_the_regime() -> None:
    """train() uses the regime it is given: same seed, data and epochs, different weights."""
    x, y = _batch()
    runs = {}
    for regime in (Clean(), Dropout(0.3), WeightSmoothing(0.2)):
        model = _model()
        history = train(model, (x, y), regime=regime, config=TrainConfig(epochs=2, seed=4))
        runs[regime.name] = (history.column("train_loss"), model.linear1.weight.detach())
    assert runs["clean"][0] != runs["dropout"][0] != runs["weight_smoothing"][0]
    assert not torch.equal(runs["clean"][1], runs["dropout"][1])
    assert not torch.equal(runs["clean"][1], runs["weight_smoothing"][1])


def test_chip_state_leaves_out_the_identity_setting_of_a_layer_at_any_depth() -> None:
    """chip_state copies every buffer but a CircuitActivation's ``identity`` (a setting, not part
    of the chip), whether the activation sits inside a model or is the module itself."""
    family = synthetic_family("tanh", n=50, seed=0, gain_spread=0.3, offset_spread=0.1)
    model = build_mlp(mlp_spec(8, (16,), 3, activation=CircuitSpec(family)), seed=0)
    for module, identity in ((model, "act1.identity"), (model.act1, "identity")):
        buffers = dict(module.named_buffers())
        state = chip_state(module)
        assert identity in buffers
        assert set(state) == set(buffers) - {identity}


def test_chip_retrain_with_a_chip_seed_draws_that_chip() -> None:
    family = synthetic_family("tanh", n=300, seed=0, gain_spread=0.3, offset_spread=0.1)
    model = build_mlp(
        mlp_spec(8, (16,), 3, activation=CircuitSpec(family, mode="nominal")), seed=0
    ).double()
    original = chip_state(model)
    expected = copy.deepcopy(model)
    resample_chips(expected, 7)
    drawn = chip_state(expected)
    assert not torch.equal(drawn["act1.chip"], original["act1.chip"])

    x, y = _batch()
    kept = copy.deepcopy(model)
    train(kept, (x, y), regime=ChipRetrain(), config=TrainConfig(epochs=1))
    assert torch.equal(kept.act1.chip, original["act1.chip"]) and kept.act1.mode == "sampled"

    train(model, (x, y), regime=ChipRetrain(chip_seed=7), config=TrainConfig(epochs=1))
    assert model.act1.mode == "sampled"
    state = chip_state(model)
    for name, value in drawn.items():
        if name.endswith(("chip", "table")) or "mismatch" in name:
            assert torch.equal(state[name], value), name
    # the chip drawn is the family's curves for those instances
    np.testing.assert_allclose(
        model.act1.chip_curves(), family.curves[model.act1.chip.numpy()], atol=1e-12
    )


def _layer_noise(model: torch.nn.Module, regime, x: torch.Tensor, seed: int) -> dict:
    """What the regime adds to each activation layer's output, in one forward pass (a hook
    before the regime's sees the layer's own output, one after it what the next layer sees)."""
    names = ("act1", "act2")
    before: dict[str, torch.Tensor] = {}
    after: dict[str, torch.Tensor] = {}

    def keep(store: dict, name: str):
        return lambda module, args, out: store.__setitem__(name, out.detach())

    handles = [getattr(model, n).register_forward_hook(keep(before, n)) for n in names]
    undo = regime.install(model, Task(), seed)
    handles += [getattr(model, n).register_forward_hook(keep(after, n)) for n in names]
    try:
        model(x)
    finally:
        for handle in handles:
            handle.remove()
        for callback in reversed(undo):
            callback()
    return {n: after[n] - before[n] for n in names}


def test_noise_injection_trains_with_noise_seeded_per_layer_and_only_where_asked() -> None:
    """The regime's noise is on in training even for a spec switched off in training, each
    layer draws its own noise, the same seed draws the same, and ``layers`` limits where."""
    model = build_mlp(mlp_spec(8, (WIDTH, WIDTH), 3), seed=0).double()
    model.train()
    x, _ = _batch()
    spec = NoiseSpec("additive", 0.2, in_training=False)
    noise = _layer_noise(model, NoiseInjection(spec), x, seed=5)
    assert all(float(n.abs().max()) > 0 for n in noise.values())
    assert not torch.allclose(noise["act1"], noise["act2"]), "each layer its own noise"
    again = _layer_noise(model, NoiseInjection(spec), x, seed=5)
    assert all(torch.equal(noise[n], again[n]) for n in noise), "the same seed, the same noise"
    only = _layer_noise(model, NoiseInjection(spec, layers=("act2",)), x, seed=5)
    assert torch.equal(only["act1"], torch.zeros_like(only["act1"]))
    assert float(only["act2"].abs().max()) > 0


def test_projected_attack_steps_default_to_2_5_over_steps_and_settings_are_named() -> None:
    """From a random start, the default step is 2.5/steps of the box half-width (the same δ as
    that fraction given), a fraction given is the one used, 0 steps is the start alone, and bad
    settings are errors naming them."""
    model, (x, y) = _model(), _batch()
    task, params = Task(), perturbable(model)

    def objective(perturbed):
        return task.loss(functional_call(model, perturbed, (x,)), y)

    def attack(steps, fraction):
        generator = torch.Generator().manual_seed(0)
        return projected_attack(params, objective, 0.1, steps, fraction, generator, True)

    def same(a, b) -> bool:
        return all(torch.equal(a[name], b[name]) for name in a)

    for steps in (1, 4):
        assert same(attack(steps, None), attack(steps, 2.5 / steps)), steps
    assert not same(attack(4, 0.3), attack(4, None))
    assert not same(attack(0, None), attack(1, None))
    for settings, message in [
        ({"zeta": -1.0}, "zeta must be"),
        ({"steps": -1}, "steps must be"),
        ({"step_fraction": 0.0}, "step_fraction must be"),
    ]:
        with pytest.raises(ConfigError) as error:
            projected_attack(params, objective, **{"zeta": 0.1, **settings})
        assert str(error.value).startswith(message), str(error.value)


class _Partly(torch.nn.Module):
    """A parameter the output does not use (registered first), then a layer whose second
    input is always 0 in the test (its weights get a zero gradient)."""

    def __init__(self) -> None:
        super().__init__()
        self.spare = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
        self.linear = torch.nn.Linear(2, 2).double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


def test_projected_attack_steps_by_its_fraction_of_the_bound_along_the_gradient_sign() -> None:
    """One step from zero moves each parameter by step_fraction·ζ|θ| times the sign of the
    objective's gradient: 0 where that gradient is 0, nothing for a parameter the objective does
    not use; a random start lies inside the box."""
    model = _Partly()
    x = torch.tensor([[1.0, 0.0], [2.0, 0.0]], dtype=torch.float64)
    params = perturbable(model)

    def objective(perturbed):
        return functional_call(model, perturbed, (x,)).pow(2).sum()

    delta = projected_attack(params, objective, 0.5, 1, 0.1, None, False)
    names = list(params)
    grads = torch.autograd.grad(objective(params), [params[n] for n in names], allow_unused=True)
    for name, grad in zip(names, grads, strict=True):
        bound = 0.5 * params[name].detach().abs()
        expected = torch.zeros_like(bound) if grad is None else 0.1 * bound * grad.sign()
        torch.testing.assert_close(delta[name], expected, rtol=1e-12, atol=0.0)
    assert bool((delta["linear.weight"][:, 1] == 0).all()) and bool(
        delta["linear.bias"].ne(0).all()
    )
    start = projected_attack(params, objective, 0.5, 0, None, torch.Generator().manual_seed(1))
    for name, value in start.items():
        assert bool((value.abs() <= 0.5 * params[name].detach().abs()).all()), name
        assert bool(value.ne(0).any()), name
