"""The PyTorch side on a family simulated by ngspice and read back from the HDF5 store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from circuitnn import RunOptions, extract_family
from circuitnn.nn import CircuitActivation, CircuitNoise
from circuitnn.spice.analyses import NoiseAnalysis
from circuitnn.store import Store


def test_circuit_activation_and_noise_from_a_stored_simulated_family(tmp_path: Path) -> None:
    store = tmp_path / "families.h5"
    extract_family(
        "mos_diffpair",
        n=24,
        seed=2,
        store=store,
        options=RunOptions(progress=False),
        noise=NoiseAnalysis(bias_points=5, points_per_decade=3, bandwidth=1e6),
    )
    family = Store(store).load("mos_diffpair")
    layer = CircuitActivation(family, 8, generator=0).double()
    assert family.noise is not None and np.all(family.noise.status == 1)
    chip = layer.chip.numpy()

    # the chip holds the simulated curves of the instances it names, read back from the store
    np.testing.assert_allclose(layer.chip_curves(), family.curves[chip], rtol=1e-12, atol=1e-15)
    # and each neuron reproduces its own curve at the grid points (network units in and out)
    scaling = layer.scaling
    u = torch.as_tensor(scaling.to_network_input(family.grid), dtype=layer.table.dtype)
    out = layer(u[:, None].expand(-1, 8).contiguous()).detach().numpy()
    np.testing.assert_allclose(
        scaling.to_circuit_output(out.T), family.curves[chip], rtol=1e-9, atol=1e-12
    )

    # circuit noise: the spread at a bias point is that neuron's own σ_out in network units
    noisy = CircuitNoise(layer, seed=0)
    bias = float(family.noise.bias[2])
    x = torch.full(
        (20000, 8), float(scaling.to_network_input(np.array([bias]))[0]), dtype=layer.table.dtype
    )
    samples = noisy(x).detach().numpy()
    expected_sigma = family.noise.sigma[chip, 2] / abs(scaling.output_scale)
    measured = samples.std(axis=0)
    tolerance = 3 * expected_sigma / np.sqrt(2 * (len(samples) - 1))
    assert np.all(expected_sigma > 0)
    assert np.all(np.abs(measured - expected_sigma) < tolerance)
