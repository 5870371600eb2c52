"""Speed analyses against a first-order RC stage, with the real ngspice, and their plumbing.

A resistor r from the input into the spec's ``output.load_capacitance`` C is a first-order
low-pass: |H| falls 3 dB at f = 1/(2π·r·C), and after a step the output is within a fraction
tol of its final value from t = r·C·ln(1/tol) on.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import data_spec, options

import circuitnn.extract.noise
import circuitnn.extract.pipeline
import circuitnn.extract.speed
from circuitnn import extract_family
from circuitnn.errors import ConfigError
from circuitnn.extract.response import bandwidth_3db, settling_time
from circuitnn.spice.analyses import SpeedAnalysis
from circuitnn.store import Store

CAPACITANCE = 1e-9  # F: resistor_rc.toml's output.load_capacitance


def test_rc_stage_bandwidth_and_settling_time(tmp_path: Path) -> None:
    spec = data_spec("resistor_rc")
    assert spec.output.load_capacitance == CAPACITANCE
    tolerance = 0.02
    analysis = SpeedAnalysis(fmin=1.0, fmax=1e9, points_per_decade=20, tolerance=tolerance)
    store = Store(tmp_path / "s.h5")
    family = extract_family(spec, n=5, seed=1, store=store, options=options(), speed=analysis)
    speed = family.speed
    assert speed is not None and (speed.status == 1).all()
    tau = family.parameter("r") * CAPACITANCE
    assert np.ptp(tau) > 0.1 * tau.mean()  # every instance checks its own r
    np.testing.assert_allclose(speed.bandwidth, 1 / (2 * np.pi * tau), rtol=0.02)
    # the input ramps over rise_time (1/1000 of the run), delaying the response by about half
    # of it; the waveform is sampled at 1/2000 of the run: both far below 3 % of r·C·ln(50)
    np.testing.assert_allclose(speed.settling_time, tau * np.log(1 / tolerance), rtol=0.03)
    np.testing.assert_allclose(
        speed.energy, family.descriptors["mean_power"] * speed.settling_time, rtol=1e-12
    )
    # the stored group, readable with plain h5py
    (key,) = store.analyses(family.key)
    assert key.startswith("speed-") and key == speed.key
    with h5py.File(store.path, "r") as handle:
        group = handle["families"][family.key][key]
        np.testing.assert_array_equal(group["bandwidth"][()], speed.bandwidth)
        np.testing.assert_array_equal(group["settling_time"][()], speed.settling_time)
        assert group["response"].shape == (5, len(speed.frequency))


def test_speed_added_to_stored_family_without_rerunning_dc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = data_spec("resistor_rc")
    store = Store(tmp_path / "s.h5")
    family = extract_family(spec, n=3, seed=2, store=store, options=options())

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("simulated again")

    monkeypatch.setattr(circuitnn.extract.pipeline, "simulate_chunk", forbidden)
    analysis = SpeedAnalysis(fmin=10.0, fmax=1e8, points_per_decade=10)
    first = extract_family(spec, n=3, seed=2, store=store, options=options(), speed=analysis)
    assert first.key == family.key and first.speed is not None
    monkeypatch.setattr(circuitnn.extract.speed, "simulate_ac_chunk", forbidden)
    monkeypatch.setattr(circuitnn.extract.speed, "simulate_step_chunk", forbidden)
    again = extract_family(spec, n=3, seed=2, store=store, options=options(), speed=analysis)
    np.testing.assert_array_equal(again.speed.bandwidth, first.speed.bandwidth)
    np.testing.assert_array_equal(again.speed.settling_time, first.speed.settling_time)


def test_bandwidth_3db_and_settling_time_on_exact_first_order_data() -> None:
    f = np.logspace(0, 8, 161)
    f0 = np.array([1e3, 2.5e4, 7e5])
    response = 1 / (1 + 1j * f[None, :] / f0[:, None])
    np.testing.assert_allclose(bandwidth_3db(f, response), f0, rtol=2e-3)
    # beyond the simulated range: NaN
    assert np.isnan(bandwidth_3db(f, 1 / (1 + 1j * f[None, :] / 1e10)))[0]
    tau = np.array([1e-6, 3e-6])
    t = np.linspace(0, 40e-6, 40001)
    step_time = 2e-6
    rising = np.where(t[None, :] < step_time, 0.0, 1 - np.exp(-(t - step_time) / tau[:, None]))
    waveforms = np.concatenate([0.2 + 0.5 * rising, 1.0 - 0.3 * rising])  # up and down steps
    expected = np.concatenate([tau, tau]) * np.log(1 / 0.01)
    np.testing.assert_allclose(settling_time(t, waveforms, step_time, 0.01), expected, rtol=1e-3)
    assert np.isnan(settling_time(t, np.ones((1, len(t))), step_time, 0.01))[0]  # no step


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"fmax": 1.0, "fmin": 1.0}, "fmax"),
        ({"fmin": -1.0}, "fmin"),
        ({"points_per_decade": 0}, "points_per_decade"),
        ({"tolerance": 0.0}, "tolerance"),
        ({"tolerance": 0.5}, "tolerance"),
        ({"rise_time": 0.0}, "rise_time"),
        ({"stop_time": -1e-6}, "stop_time"),
        ({"bias": float("nan")}, "bias"),
    ],
)
def test_bad_speed_settings_are_config_errors(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SpeedAnalysis(**settings)


def test_speed_bias_outside_the_sweep_is_a_config_error_before_any_simulation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("simulated although the request is invalid")

    monkeypatch.setattr(circuitnn.extract.pipeline, "simulate_chunk", forbidden)
    spec = data_spec("resistor_rc")  # sweep 0…1 V
    with pytest.raises(ConfigError, match=r"bias 7 V lies outside the input sweep"):
        extract_family(spec, n=2, options=options(), speed=SpeedAnalysis(bias=7.0))
