"""Batching never changes an answer: every stored curve equals its instance's isolated run.

The bistable neuron is a CMOS Schmitt trigger of the project's own (tests/data/schmitt.cir);
the oracle is a plain ``ngspice -n -b`` run of each instance alone (``helpers.isolated_run``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from helpers import data_spec, isolated_run, options, plain_run_curves

from circuitnn import extract_family
from circuitnn.extract.dc_chunk import simulate_chunk
from circuitnn.extract.independence import (
    BATCHED,
    CHUNK_DEVIATED,
    DISCONTINUOUS,
    SELF_CHECK,
    discontinuous,
)
from circuitnn.family import OK
from circuitnn.neuron.variation import MonteCarlo, sample_parameters
from circuitnn.spice.benches import render_dc_bench
from circuitnn.store import Store

N = 40


def _tolerance(spec, curve: np.ndarray) -> np.ndarray:
    """What two converged solutions may differ by at the spec's tolerances (4 × reltol·|y| +
    vntol, as the self-check allows)."""
    return 4 * (spec.simulator.reltol * np.abs(curve) + spec.simulator.vntol)


def _plain_batch(spec, table) -> np.ndarray:
    """The whole table in one plain ngspice run, as circuitnn ran it before: the coupled answer."""
    return plain_run_curves(spec, render_dc_bench(spec, table))


@pytest.fixture(scope="module")
def schmitt(tmp_path_factory: pytest.TempPathFactory):
    spec = data_spec("schmitt")
    store = tmp_path_factory.mktemp("schmitt") / "families.h5"
    family = extract_family(spec, n=N, seed=0, store=store, options=options(chunk_size=N))
    table = sample_parameters(spec, MonteCarlo(n=N, seed=0))
    alone = np.stack([isolated_run(spec, table, row) for row in range(N)])
    return spec, family, table, alone, store


def test_bistable_instances_are_coupled_in_a_plain_batch(schmitt) -> None:
    """The failure the machinery exists for, reproduced: in one plain batched run ngspice's
    fallbacks and shared Newton iterations move instances onto another branch."""
    spec, _, table, alone, _ = schmitt
    batch = _plain_batch(spec, table)
    wrong = np.max(np.abs(batch - alone), axis=1) > 1.0  # volts, on a 1.8 V swing
    assert wrong.sum() >= N // 5
    # the coupled curves switch together; alone they switch over tens of millivolts
    switch = np.argmax(batch < 0.9, axis=1)
    assert len(set(switch)) < len(set(np.argmax(alone < 0.9, axis=1)))


def test_every_stored_bistable_curve_is_its_isolated_run(schmitt) -> None:
    spec, family, _, alone, store = schmitt
    assert np.all(family.status == OK)
    difference = np.abs(family.curves - alone)
    assert np.all(difference <= _tolerance(spec, alone)), difference.max()
    # every curve jumps (or its chunk's self-check failed): each instance was simulated alone
    # and says why
    assert np.all(family.run_alone != BATCHED)
    assert set(np.unique(family.run_alone)) <= {SELF_CHECK, DISCONTINUOUS, CHUNK_DEVIATED}
    assert family.attrs["self_check_instances"] == 1  # one chunk, one instance checked
    assert family.attrs["self_check_failed_chunks"] == int(family.attrs["self_check_max_ratio"] > 1)
    stored = Store(store).load(family.key)
    np.testing.assert_array_equal(stored.run_alone, family.run_alone)
    assert "self-check" in stored.attrs["run_alone_meaning"]


def test_jumping_curves_are_rerun_alone_even_when_the_self_check_passes() -> None:
    """Small chunks whose self-check instance agrees: their other instances jump at a fold,
    where the shared Newton iterations can land them on another solution; they run alone."""
    spec = data_spec("schmitt")
    table = sample_parameters(spec, MonteCarlo(n=24, seed=0))
    codes = []
    for start in range(0, 24, 3):
        chunk = simulate_chunk(spec, table.rows(np.arange(start, start + 3)))
        codes += list(chunk.alone)
        for k, row in enumerate(range(start, start + 3)):
            expected = isolated_run(spec, table, row)
            assert np.all(np.abs(chunk.curves[k] - expected) <= _tolerance(spec, expected))
    assert DISCONTINUOUS in codes  # some chunks passed their self-check and re-ran the jumps


def test_monostable_families_stay_batched_and_agree_with_isolated_runs() -> None:
    spec = data_spec("inv_l1")
    family = extract_family(spec, n=16, seed=1, options=options(chunk_size=16))
    table = sample_parameters(spec, MonteCarlo(n=16, seed=1))
    assert np.count_nonzero(family.run_alone == SELF_CHECK) == 1
    assert np.all(family.run_alone[family.run_alone != SELF_CHECK] == BATCHED)
    assert 0 < family.attrs["self_check_max_ratio"] <= 1
    for row in range(16):
        expected = isolated_run(spec, table, row)
        assert np.all(np.abs(family.curves[row] - expected) <= _tolerance(spec, expected))


def test_discontinuity_detector() -> None:
    grid = np.linspace(0, 1, 101)
    smooth_steep = np.tanh((grid - 0.5) * 60)  # a steep sigmoid: several steps of similar size
    fold = np.where(grid < 0.52, 1.0 - 0.1 * grid, 0.02)  # drops at once
    small_jump = np.where(grid < 0.3, grid, grid + 0.08)  # a 6 % jump on a ramp
    found = discontinuous(np.stack([smooth_steep, fold, small_jump, np.zeros_like(grid)]))
    np.testing.assert_array_equal(found, [False, True, True, False])


def test_chunk_size_does_not_change_a_bistable_family() -> None:
    spec = data_spec("schmitt")
    one = extract_family(spec, n=12, seed=5, options=options(chunk_size=1))
    many = extract_family(spec, n=12, seed=5, options=options(chunk_size=12))
    assert one.key == many.key
    np.testing.assert_allclose(many.curves, one.curves, rtol=0, atol=4 * (1e-3 * 1.8 + 1e-6))


def test_hysteresis_width_is_the_distance_between_the_isolated_branches() -> None:
    spec = data_spec("schmitt")
    both = dataclasses.replace(spec, sweep=dataclasses.replace(spec.sweep, direction="both"))
    family = extract_family(both, n=6, seed=2, options=options(chunk_size=6))
    table = sample_parameters(both, MonteCarlo(n=6, seed=2))
    grid = family.grid
    for row in range(6):
        up, down = isolated_run(both, table, row, "up"), isolated_run(both, table, row, "down")
        np.testing.assert_allclose(family.curves[row], up, atol=4e-3 * 1.8 + 4e-6)
        np.testing.assert_allclose(family.curves_down[row], down, atol=4e-3 * 1.8 + 4e-6)
        # the oracle: where each isolated branch crosses 0.9 V (output falls at VH going up,
        # rises at VL going down), linearly interpolated
        k = int(np.argmax(up < 0.9))
        vh = grid[k - 1] + (up[k - 1] - 0.9) / (up[k - 1] - up[k]) * (grid[k] - grid[k - 1])
        j = int(np.flatnonzero(down > 0.9)[-1])
        vl = grid[j] + (down[j] - 0.9) / (down[j] - down[j + 1]) * (grid[j + 1] - grid[j])
        assert family.descriptors["hysteresis"][row] == pytest.approx(vh - vl, abs=2e-3)
        # the textbook square-law thresholds (where Mn2 / Mp2 turn on) bound the window from
        # inside: the fold lies a little beyond the onset (wn/wf = wp/wfp = 2)
        vt, vdd, root = 0.45, 1.8, np.sqrt(2.0)
        dvtn, dvtp = table.column("dvtn")[row], table.column("dvtp")[row]
        onset_high = (vdd + vt * root) / (1 + root) + dvtn
        onset_low = root * (vdd - vt) / (1 + root) - dvtp
        assert onset_high <= vh <= onset_high + 0.1
        assert onset_low - 0.1 <= vl <= onset_low
    # a single-valued curve has no window
    inverter = data_spec("inv_l1")
    both = dataclasses.replace(
        inverter, sweep=dataclasses.replace(inverter.sweep, direction="both")
    )
    plain = extract_family(both, n=4, seed=0, options=options())
    assert np.all(plain.descriptors["hysteresis"] < 1e-4)  # volts: solver tolerance only


def test_down_sweep_alone_stores_the_down_branch() -> None:
    spec = data_spec("schmitt")
    down = dataclasses.replace(spec, sweep=dataclasses.replace(spec.sweep, direction="down"))
    family = extract_family(down, n=3, seed=0, options=options())
    table = sample_parameters(down, MonteCarlo(n=3, seed=0))
    for row in range(3):
        np.testing.assert_allclose(
            family.curves[row], isolated_run(down, table, row, "down"), atol=4e-3 * 1.8 + 4e-6
        )
    assert family.curves_down is None and "hysteresis" not in family.descriptors
    assert family.branch("down")[0] is family.curves
    with pytest.raises(ValueError, match="no 'up' branch"):
        family.branch("up")
