"""Layers of neurons with hysteresis follow the branch they are asked for."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from helpers import data_spec, options

from circuitnn import extract_family
from circuitnn.errors import ConfigError
from circuitnn.nn import CircuitActivation, FamilyTables, Scaling
from circuitnn.spice.analyses import NoiseAnalysis


@pytest.fixture(scope="module")
def both_ways():
    spec = data_spec("schmitt")
    both = dataclasses.replace(spec, sweep=dataclasses.replace(spec.sweep, direction="both"))
    return extract_family(both, n=4, seed=0, options=options())


def test_each_branch_is_the_family_s(both_ways) -> None:
    family = both_ways
    scaling = Scaling.from_nominal(family.grid, family.nominal_curve)
    default = FamilyTables.from_family(family, scaling)
    up = FamilyTables.from_family(family, scaling, branch="up")
    down = FamilyTables.from_family(family, scaling, branch="down")
    np.testing.assert_array_equal(default.curves, up.curves)
    np.testing.assert_array_equal(up.curves, scaling.to_network_output(family.curves))
    np.testing.assert_array_equal(down.curves, scaling.to_network_output(family.curves_down))
    np.testing.assert_array_equal(
        down.nominal, scaling.to_network_output(family.nominal_curve_down)
    )


def test_inside_the_window_the_branches_disagree(both_ways) -> None:
    family = both_ways
    scaling = Scaling.from_nominal(family.grid, family.nominal_curve)
    volts = torch.tensor([[0.9] * 4], dtype=torch.float64)
    u = torch.as_tensor(scaling.to_network_input(volts.numpy()))
    outputs = {}
    for branch in ("up", "down"):
        layer = CircuitActivation(family, 4, scaling=scaling, branch=branch, generator=0)
        outputs[branch] = scaling.to_circuit_output(layer(u).detach().numpy())
    assert np.all(outputs["up"] > 1.7) and np.all(outputs["down"] < 0.1)  # volts


def test_a_branch_the_family_lacks_or_its_noise_does_not_cover_is_refused() -> None:
    spec = data_spec("schmitt")
    up_only = extract_family(spec, n=2, seed=0, options=options())
    with pytest.raises(ConfigError, match="has no 'down' branch"):
        CircuitActivation(up_only, 2, branch="down")
    with pytest.raises(ConfigError, match="branch"):
        CircuitActivation(up_only, 2, branch="sideways")
    both = dataclasses.replace(spec, sweep=dataclasses.replace(spec.sweep, direction="both"))
    noisy = extract_family(
        both,
        n=2,
        seed=0,
        options=options(),
        noise=NoiseAnalysis(bias_points=2, fmin=10, fmax=1e6, points_per_decade=1, bandwidth=1e5),
    )
    CircuitActivation(noisy, 2)  # the main branch, with its noise
    with pytest.raises(ConfigError, match="noise was simulated at operating points on its main"):
        CircuitActivation(noisy, 2, branch="down")
