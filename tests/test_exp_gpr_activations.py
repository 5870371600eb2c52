"""GPR-optimal activations: the additive GP's math on data with known components, the shape
matching on known curves, the mapping onto a circuit network, and the quick experiment on the
session's simulated families (and a real ngspice design sweep)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")
pytest.importorskip("ase")

from circuitnn.errors import ConfigError
from circuitnn.experiments import run_experiment
from circuitnn.experiments.gpr import (
    GAIN_BOUNDS,
    MIN_SWING,
    SHIFT_BOUND,
    AdditiveRBF,
    directions,
    fit_additive_gpr,
    linear,
    match_shape,
    tanh,
)
from circuitnn.nn import quiet, synthetic_family

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_additive_kernel_and_its_gradient() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=(7, 3))
    kernel = AdditiveRBF(0.8)
    matrix, gradient = kernel(y, eval_gradient=True)
    expected = sum(np.exp(-((y[:, None, i] - y[None, :, i]) ** 2) / (2 * 0.8**2)) for i in range(3))
    np.testing.assert_allclose(matrix, expected)
    np.testing.assert_allclose(kernel.diag(y), np.full(7, 3.0))
    step = 1e-6  # the gradient is by log(length)
    shifted = AdditiveRBF(0.8 * np.exp(step))(y)
    np.testing.assert_allclose(gradient[:, :, 0], (shifted - matrix) / step, rtol=1e-4, atol=1e-8)


def test_the_gp_recovers_known_activations() -> None:
    """Targets made of two known functions of the GP's own coordinates: its components are
    those functions up to a constant (correlation over the data > 0.97), and they add up to its
    prediction (checked inside ``predict``)."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(220, 3))
    rows = directions(3, 2, x, seed=5)
    y1, y2 = (x @ rows.T).T
    target = np.sin(1.5 * y1) + 0.4 * y2**2 + rng.normal(0, 0.05, len(y1))
    gp = fit_additive_gpr(x, target - target.mean(), neurons=2, seed=5, restarts=0)
    np.testing.assert_allclose(gp.directions, rows)
    for neuron, truth in ((0, np.sin(1.5 * y1)), (1, 0.4 * y2**2)):
        found = gp.activation(neuron, gp.points[:, neuron])
        assert np.corrcoef(found, truth)[0, 1] > 0.97, neuron
    fitted = gp.predict(x)
    assert np.sqrt(np.mean((fitted - (target - target.mean())) ** 2)) < 0.1


def test_shape_matching_finds_a_known_rescaling() -> None:
    t = np.linspace(-3, 3, 200)
    f = 2.0 * np.tanh(0.5 * t + 0.3) - 1.0
    found = match_shape(tanh, t, f)
    assert found.unexplained < 1e-8
    assert (found.scale, found.gain, found.shift, found.offset) == pytest.approx(
        (2.0, 0.5, 0.3, -1.0), abs=1e-4
    )
    np.testing.assert_allclose(found(tanh, t), f, atol=1e-6)
    saturating = np.tanh(2.0 * t)  # a straight line cannot take a saturating shape
    assert 0.01 < match_shape(linear, t, saturating).unexplained < 1.0
    with pytest.raises(ConfigError, match="constant over the data"):
        match_shape(tanh, t, np.ones_like(t))
    # a near-linear activation may not be matched on a saturated tail with a huge readout weight:
    # the circuit keeps swinging over the data
    for curve in (tanh, lambda u: np.clip(u, -1.0, 1.0)):
        found = match_shape(curve, t, 0.01 * t)
        swing = np.std(curve(found.gain * t + found.shift))
        assert swing >= 0.99 * MIN_SWING and abs(found.scale) < 0.5, found
        assert abs(found.shift) <= SHIFT_BOUND and GAIN_BOUNDS[0] <= found.gain <= GAIN_BOUNDS[1]


def test_mapped_network_realizes_the_matched_activations() -> None:
    """The one-hidden-layer circuit network built from the matches computes Σ a·g(b·y + d) + e
    (nominal curve, noise off), which is the GP's prediction up to the shapes' misfit."""
    from circuitnn.data import make_dataset
    from circuitnn.experiments.gpr_activations import _curve, _mapped_network, _match

    rng = np.random.default_rng(2)
    x = rng.normal(size=(150, 4))
    data = make_dataset(x, np.tanh(x[:, 0] + 0.5 * x[:, 1]) + 0.2 * x[:, 2], seed=0)
    gp = fit_additive_gpr(*data.train, neurons=3, seed=0, restarts=0)
    family = synthetic_family("tanh", n=50, seed=0)
    curve = _curve(family)
    matches, row = _match(gp, curve)
    assert 0.0 <= row["misfit"] <= row["worst_neuron_misfit"] <= 1.0
    model = _mapped_network(gp, family, matches, data, seed=0).double()
    with quiet(model), torch.no_grad():
        output = model(torch.as_tensor(data.train[0], dtype=torch.float64))[:, 0].numpy()
    y = gp.coordinates(data.train[0])
    expected = sum(m(curve, y[:, i]) for i, m in enumerate(matches))
    np.testing.assert_allclose(output, expected, rtol=1e-6, atol=1e-6)
    gap = np.sqrt(np.mean((output - gp.predict(data.train[0])) ** 2))
    assert gap <= 2 * np.sqrt(row["misfit"]) * np.std(gp.predict(data.train[0])) + 1e-6


@pytest.fixture(scope="module")
def quick_run(quick_store: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("gpr")
    return run_experiment("gpr-activations", out, quick=True, seed=0, store=quick_store)


def test_quick_run_answers_the_designer(quick_run) -> None:
    out = quick_run.out
    for table in ("shapes", "accuracy", "candidates", "findings"):
        assert (out / f"{table}.csv").stat().st_size > 0
    for figure in ("activations", "candidates"):
        png = out / f"{figure}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    rows = {r["candidate"]: r for r in quick_run.tables["candidates"]}
    circuits = ["mos_diffpair", "cmos_inverter", "mos_diffpair rl=10k", "mos_diffpair rl=40k"]
    assert set(circuits) | {"linear", "tanh", "additive GPR", "tanh network"} == set(rows)
    for name in circuits:
        assert 0.0 <= rows[name]["misfit"] <= 1.0 and rows[name]["replicates"] == 2
        assert np.isfinite(rows[name]["rmse_target_units"])
    # a resistive load only scales the diff pair's output: same shape at 10k and 20k (nominal)
    assert rows["mos_diffpair rl=10k"]["misfit"] == pytest.approx(
        rows["mos_diffpair"]["misfit"], rel=0.05
    )
    document = json.loads((out / "result.json").read_text())
    assert len(document["findings"]) == 2
    assert {f["verdict"] for f in document["findings"]} <= {
        "reproduced",
        "contradicted",
        "inconclusive",
    }
    assert "closest circuit:" in " ".join(quick_run.summary)
    with pytest.raises(ConfigError, match="gpr-activations: unknown option"):
        run_experiment("gpr-activations", out / "x", quick=True, store="s.h5", width=3)
