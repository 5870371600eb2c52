"""The table lookup behind CircuitActivation against two oracles: a direct float64 computation
(numpy interpolation plus the extrapolation formulas) and the implementation it replaced (an
autograd.Function whose backward was ``grad · slope``), on random curves and random inputs on
both sides of the grid, float32 and float64, CPU (and CUDA when present), each with the compiled
lookup and with torch's operations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from circuitnn.nn import CircuitActivation, CircuitNoise, synthetic_family
from circuitnn.nn.interp import lookup, neuron_offsets, segment_table

# every test twice: the compiled kernel and torch's operations (CPU float32 differ; others alike)
pytestmark = pytest.mark.usefixtures("lookup_backend")

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
DTYPES = [torch.float32, torch.float64]
# float32: the table's lines are rounded to float32 and y = C + D·x is computed in float32.
TOLERANCE = {torch.float32: 2e-5, torch.float64: 1e-11}


class _PreviousLookup(torch.autograd.Function):
    """The previous lookup, kept as an oracle: same rows, same arithmetic (``x·D``, then ``+ C``;
    16-bit floats one ``addcmul``), its own backward."""

    @staticmethod
    def forward(ctx, x, table, offsets, rows, scale, shift):  # type: ignore[override]
        t = x * scale
        t.add_(shift + 1.0).nan_to_num_(nan=0.0).clamp_(0, rows - 1)
        index = t.int()
        if offsets is not None:
            index = index + offsets
        pairs = table.index_select(0, index.reshape(-1)).view(*index.shape, 2)
        intercept, slope = pairs[..., 0], pairs[..., 1]
        ctx.save_for_backward(slope)
        if x.dtype in (torch.float32, torch.float64):
            return x * slope + intercept  # two roundings, on every machine
        return torch.addcmul(intercept, x, slope)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        (slope,) = ctx.saved_tensors
        return grad * slope, None, None, None, None, None


def direct(values: np.ndarray, x: np.ndarray, scale: float, shift: float, extrapolation: str):
    """Value and slope (d/dx) of each neuron's curve (``values`` n × K at ``t = scale·x + shift
    = 0 … K-1``) at ``x`` (…, n), in float64, from np.interp and the extrapolation rules."""
    n, points = values.shape
    t = scale * x + shift
    y = np.empty_like(x)
    slope = np.empty_like(x)
    grid = np.arange(points, dtype=np.float64)
    for j in range(n):
        v, tj = values[j], t[..., j]
        segment = np.clip(np.floor(tj), 0, points - 2).astype(int)
        inside = (tj >= 0) & (tj < points - 1)
        below, above = tj < 0, tj >= points - 1
        y[..., j] = np.interp(tj, grid, v)
        slope[..., j] = np.where(inside, (v[segment + 1] - v[segment]) * scale, 0.0)
        if extrapolation == "linear":
            first, last = v[1] - v[0], v[-1] - v[-2]
            y[..., j] = np.where(below, v[0] + first * tj, y[..., j])
            y[..., j] = np.where(above, v[-1] + last * (tj - (points - 1)), y[..., j])
            slope[..., j] = np.where(below, first * scale, slope[..., j])
            slope[..., j] = np.where(above, last * scale, slope[..., j])
    return y, slope


def random_case(seed: int, n: int = 9, points: int = 17, rows: int = 400):
    """Random rough curves and inputs: inside the grid, up to 3 steps beyond either end, far
    beyond (±40 steps), and exactly on grid points; none within 1e-3 steps of a grid point
    except those on it."""
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((n, points)).cumsum(axis=1)
    scale, shift = float(rng.uniform(2.0, 9.0)), float(rng.uniform(-3.0, points + 3.0))
    t = rng.uniform(-3.0, points + 2.0, (rows, n))
    t[:20] = rng.choice([-40.0, points + 40.0], (20, n)) + rng.uniform(0.1, 0.9, (20, n))
    t[20:40] = rng.integers(0, points, (20, n))
    off = (t[40:] - np.round(t[40:])) % 1.0
    t[40:] += np.where(np.minimum(off, 1.0 - off) < 1e-3, 0.01, 0.0)
    x = (t - shift) / scale
    return values, scale, shift, x


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("extrapolation", ["linear", "clamp"])
@pytest.mark.parametrize("per_neuron", [True, False])
def test_lookup_equals_direct_and_previous(device, dtype, extrapolation, per_neuron):
    values, scale, shift, x_np = random_case(seed=3 if per_neuron else 4)
    if not per_neuron:
        values = values[:1]
    table = segment_table(torch.as_tensor(values), scale, shift, extrapolation, dtype).to(device)
    points = values.shape[1]
    offsets = neuron_offsets((values.shape[0],), points, device) if per_neuron else None
    x = torch.as_tensor(x_np, dtype=dtype, device=device).requires_grad_(True)
    upstream = torch.randn(x.shape, dtype=dtype, generator=torch.Generator().manual_seed(0))
    upstream = upstream.to(device)

    y = lookup(x, table, offsets, points, scale, shift)
    (grad,) = torch.autograd.grad(y, x, upstream)
    expected_y, expected_slope = direct(
        values if per_neuron else np.repeat(values, x.shape[1], axis=0),
        x.detach().cpu().double().numpy(),
        scale,
        shift,
        extrapolation,
    )
    magnitude = np.abs(values).max() + np.abs(expected_slope * x_np).max()
    atol = TOLERANCE[dtype] * magnitude
    np.testing.assert_allclose(y.detach().cpu().double().numpy(), expected_y, rtol=0, atol=atol)
    on_grid = slice(20, 40)  # the slope at a grid point is either neighbour's: compared below
    expected_grad = expected_slope * upstream.cpu().double().numpy()
    keep = np.ones(len(x_np), dtype=bool)
    keep[on_grid] = False
    np.testing.assert_allclose(
        grad.cpu().double().numpy()[keep], expected_grad[keep], rtol=0, atol=atol
    )

    previous = _PreviousLookup.apply(x, table, offsets, points + 1, scale, shift)
    (previous_grad,) = torch.autograd.grad(previous, x, upstream)
    assert torch.equal(y, previous), "forward differs from the previous implementation"
    assert torch.equal(grad, previous_grad), "gradient differs from the previous implementation"
    with torch.no_grad():  # the inference path writes its output where the row index was
        assert torch.equal(lookup(x, table, offsets, points, scale, shift), previous)


@pytest.mark.parametrize("device", DEVICES)
def test_lookup_non_finite_huge_and_non_contiguous_inputs(device):
    values, scale, shift, x_np = random_case(seed=5, n=4)
    table = segment_table(torch.as_tensor(values), scale, shift, "linear").to(device)
    points = values.shape[1]
    offsets = neuron_offsets((4,), points, device)
    x = torch.tensor([[float("nan"), float("inf"), -float("inf"), 1e30]], dtype=torch.float64)
    y = lookup(x.to(device), table, offsets, points, scale, shift).cpu()
    assert torch.isnan(y[0, 0]) and not torch.isfinite(y[0, 1:3]).any()
    expected, _ = direct(values[3:], x[:, 3:].numpy(), scale, shift, "linear")
    np.testing.assert_allclose(y[0, 3].item(), expected[0, 0], rtol=1e-12)
    x = torch.as_tensor(x_np[:40].T.copy(), device=device).T  # (40, 4) with transposed strides
    assert not x.is_contiguous()
    reference = lookup(x.contiguous(), table, offsets, points, scale, shift)
    assert torch.equal(lookup(x, table, offsets, points, scale, shift), reference)
    # An input narrower than the neurons broadcasts against them (every neuron sees x[:, 0]).
    narrow = x[:, :1].contiguous()
    wide = lookup(narrow, table, offsets, points, scale, shift)
    assert wide.shape == (40, 4)
    assert torch.equal(wide, lookup(narrow.expand(-1, 4), table, offsets, points, scale, shift))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_lookup_equals_previous(dtype):
    values, scale, shift, x_np = random_case(seed=6, n=5)
    table = segment_table(torch.as_tensor(values), scale, shift, "linear", dtype)
    offsets = neuron_offsets((5,), values.shape[1])
    x = torch.as_tensor(x_np, dtype=dtype)
    rows = values.shape[1] + 1
    previous = _PreviousLookup.apply(x, table, offsets, rows, scale, shift)
    assert torch.equal(lookup(x, table, offsets, values.shape[1], scale, shift), previous)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_channels_last_input_matches_contiguous(device, dtype):
    family = synthetic_family("tanh", n=30, seed=1, points=33)
    act = CircuitActivation(family, (3, 1, 1), generator=0).to(device=device, dtype=dtype)
    x = torch.randn(2, 3, 4, 5, dtype=dtype, device=device)
    channels_last = x.to(memory_format=torch.channels_last).requires_grad_(True)
    contiguous = x.clone().requires_grad_(True)
    y, reference = act(channels_last), act(contiguous)
    assert torch.equal(y, reference)
    y.sum().backward()
    reference.sum().backward()
    assert torch.equal(channels_last.grad, contiguous.grad)


@pytest.fixture(scope="module")
def noisy_family():
    return synthetic_family("tanh", n=60, seed=7, points=41, noise=2e-3, noise_bias_points=9)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["sampled", "nominal"])
def test_circuit_noise_sigma_path_equals_direct(noisy_family, device, dtype, mode):
    act = CircuitActivation(noisy_family, 6, generator=2, mode=mode).to(device=device, dtype=dtype)
    sigma_curves = act.sigma_table if mode == "sampled" else act.nominal_sigma.expand(6, -1)
    curves = act.table if mode == "sampled" else act.nominal_curve.expand(6, -1)
    grid = act.tables.network_grid
    step = grid[1] - grid[0]
    scale, shift = 1.0 / step, -grid[0] / step
    rng = np.random.default_rng(11)
    t = rng.uniform(-4.0, len(grid) + 3.0, (300, 6))
    off = t - np.round(t)
    t += np.where(np.abs(off) < 1e-3, 0.01, 0.0)
    x = torch.as_tensor((t - shift) / scale, dtype=dtype, device=device).requires_grad_(True)

    sigma = act.sigma(x)
    (sigma_grad,) = torch.autograd.grad(sigma.sum(), x)
    x64 = x.detach().cpu().double().numpy()
    expected, expected_slope = direct(sigma_curves.cpu().numpy(), x64, scale, shift, "clamp")
    atol = TOLERANCE[dtype] * (np.abs(expected).max() + np.abs(expected_slope * x64).max())
    np.testing.assert_allclose(sigma.detach().cpu().double().numpy(), expected, rtol=0, atol=atol)
    np.testing.assert_allclose(sigma_grad.cpu().double().numpy(), expected_slope, atol=atol)

    # Through CircuitNoise: y = f(x) + s·σ(x)·z, so dy/dx = f'(x) + s·σ'(x)·z with z recovered
    # from the output itself.
    module = CircuitNoise(act, scale=2.5, seed=3).to(device=device, dtype=dtype)
    y = module(x)
    (grad,) = torch.autograd.grad(y.sum(), x)
    f, f_slope = direct(curves.cpu().numpy(), x64, scale, shift, "linear")
    z = (y.detach().cpu().double().numpy() - f) / (2.5 * expected)
    expected_grad = f_slope + 2.5 * expected_slope * z
    atol = TOLERANCE[dtype] * 50 * (np.abs(f_slope).max() + np.abs(expected_slope * z).max())
    np.testing.assert_allclose(grad.cpu().double().numpy(), expected_grad, rtol=0, atol=atol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_large_lookup_equals_previous_at_any_thread_count(torch_threads, dtype):
    # 130 × 517 elements: past the size from which torch splits an operation over its threads.
    values, scale, shift, _ = random_case(seed=8, n=517)
    table = segment_table(torch.as_tensor(values), scale, shift, "linear", dtype)
    offsets = neuron_offsets((517,), values.shape[1])
    generator = torch.Generator().manual_seed(9)
    t = torch.empty(130, 517, dtype=torch.float64).uniform_(-4.0, 21.0, generator=generator)
    x = ((t - shift) / scale).to(dtype).requires_grad_(True)
    upstream = torch.randn(x.shape, dtype=dtype, generator=generator)
    rows = values.shape[1] + 1
    previous = _PreviousLookup.apply(x, table, offsets, rows, scale, shift)
    (previous_grad,) = torch.autograd.grad(previous, x, upstream)
    y = lookup(x, table, offsets, values.shape[1], scale, shift)
    (grad,) = torch.autograd.grad(y, x, upstream)
    assert torch.equal(y, previous) and torch.equal(grad, previous_grad)
    with torch.no_grad():
        assert torch.equal(lookup(x, table, offsets, values.shape[1], scale, shift), previous)
