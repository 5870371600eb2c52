"""Noise of any device model, at the operating point on the stored branch, or a failure with a
reason: each checked against a standalone ``ngspice -b`` ``.noise`` run of the same instance."""

from __future__ import annotations

import dataclasses
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from helpers import DATA, build_spec, data_spec, options, spec_data

from circuitnn import extract_family
from circuitnn.extract.spectra import device_totals, integrated_sigma
from circuitnn.neuron.units import format_spice
from circuitnn.spice.analyses import NoiseAnalysis, SpeedAnalysis
from circuitnn.spice.ngspice_process import ngspice_executable
from circuitnn.spice.rawfile import read_raw

ANALYSIS = NoiseAnalysis(bias_points=3, fmin=10.0, fmax=1e9, points_per_decade=3, bandwidth=1e6)


def standalone_noise(
    spec, parameters: dict[str, float], bias: float, analysis: NoiseAnalysis, nodeset: str = ""
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A hand-written netlist of one instance at input ``bias``, its ``.noise`` run by plain
    ``ngspice -n -b``: the output PSD (V²/Hz) and all the noise vectors."""
    assignments = " ".join(f"{k}={format_spice(v)}" for k, v in parameters.items())
    load = spec.output.load_capacitance
    text = "\n".join(
        [
            "* one instance alone",
            spec.netlist_text,
            f"x1 in out vdd 0 {spec.subckt.name} {assignments}",
            f"cl out 0 {format_spice(load)}" if load > 0 else "",
            f"vdd vdd 0 DC {format_spice(spec.ports.supplies['vdd'])}",
            f"vin in 0 DC {format_spice(bias)} AC 1",
            nodeset,
            ".control",
            "set filetype=binary",
            f"noise v(out) vin dec {analysis.points_per_decade} {format_spice(analysis.fmin)} "
            f"{format_spice(analysis.fmax)} 1",
            "setplot previous",
            "write alone.raw all",
            "quit",
            ".endc",
            ".end",
        ]
    )
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "alone.cir").write_text(text)
        subprocess.run(
            [ngspice_executable(), "-n", "-b", "alone.cir"],
            cwd=folder,
            capture_output=True,
            check=True,
            timeout=60,
        )
        vectors = read_raw((Path(folder) / "alone.raw").read_bytes())[0].vectors
    return np.abs(vectors["onoise_spectrum"]) ** 2, vectors


def test_bsim4_noise_equals_a_standalone_noise_run() -> None:
    """Level 54 names its noise vectors onoise.m.<path> (dots): the instance's σ_out is its
    standalone ``.noise`` spectrum integrated, not the 1e-147 V of a parser that knew only
    onoise_<path>."""
    spec = data_spec("bsim4_cs")
    family = extract_family(spec, n=4, seed=3, options=options(), noise=ANALYSIS)
    noise = family.noise
    assert noise is not None and np.all(noise.status == 1)
    for k in (0, 3):
        parameters = dict(zip(family.parameter_names, family.parameters[k], strict=True))
        for b, bias in enumerate(noise.bias):
            expected, vectors = standalone_noise(spec, parameters, bias, ANALYSIS)
            # the transistor's total is named with dots, and it dominates the output noise
            assert "onoise.m.x1.m1" in device_totals(list(vectors))
            np.testing.assert_allclose(noise.psd[k, b], expected, rtol=1e-6)
            sigma = integrated_sigma(noise.frequency, expected, ANALYSIS.bandwidth)
            assert noise.sigma[k, b] == pytest.approx(sigma, rel=1e-6)
            assert noise.sigma[k, b] > 1e-6  # volts: microvolts, not a silent zero


def test_every_device_naming_is_attributed() -> None:
    """A neuron of every kind of device ngspice names differently (BSIM4 dots, level-1 MOSFET,
    BJT, diode, resistor underscores): each instance's PSD is its standalone run's."""
    netlist = DATA / "mixed_devices.cir"
    spec = data_spec("mixed_devices")
    assert netlist.is_file()
    family = extract_family(spec, n=3, seed=0, options=options(), noise=ANALYSIS)
    noise = family.noise
    assert noise is not None and np.all(noise.status == 1), noise.reasons
    parameters = dict(zip(family.parameter_names, family.parameters[1], strict=True))
    expected, vectors = standalone_noise(spec, parameters, noise.bias[1], ANALYSIS)
    kinds = {name.split(".")[0] for name in device_totals(list(vectors))}
    assert {"onoise", "onoise_m", "onoise_q", "onoise_d", "onoise_r"} <= kinds
    np.testing.assert_allclose(noise.psd[1, 1], expected, rtol=1e-6)


def test_a_neuron_without_noise_sources_fails_its_noise_with_a_reason() -> None:
    data = spec_data("noiseless")
    family = extract_family(build_spec(data), n=2, seed=0, options=options(), noise=ANALYSIS)
    noise = family.noise
    assert noise is not None
    assert np.all(noise.status == 2)
    assert all("no device of this instance makes noise" in reason for reason in noise.reasons)
    assert np.isnan(noise.sigma).all()  # never a silent zero


def test_noise_inside_the_hysteresis_window_uses_the_stored_branch() -> None:
    """A Schmitt trigger at an input inside its window has two operating points; the noise is
    the standalone run's with the output held at the stored (up-sweep: high) value, which
    differs from the run held on the other branch."""
    spec = data_spec("schmitt")
    analysis = NoiseAnalysis(
        bias=(0.2, 0.9, 1.6), fmin=10.0, fmax=1e9, points_per_decade=3, bandwidth=1e6
    )
    family = extract_family(spec, n=3, seed=0, options=options(), noise=analysis)
    noise = family.noise
    assert noise is not None and np.all(noise.status == 1), noise.reasons
    middle = int(np.argmin(np.abs(family.grid - 0.9)))
    for k in range(3):
        stored = family.curves[k, middle]
        assert stored > 1.7  # the up sweep is still high at 0.9 V
        parameters = dict(zip(family.parameter_names, family.parameters[k], strict=True))
        held_high, _ = standalone_noise(
            spec, parameters, 0.9, analysis, f".nodeset v(out)={format_spice(stored)}"
        )
        held_low, _ = standalone_noise(spec, parameters, 0.9, analysis, ".nodeset v(out)=0")
        np.testing.assert_allclose(noise.psd[k, 1], held_high, rtol=1e-6)
        assert np.max(np.abs(held_low / held_high - 1)) > 0.1  # the branch matters
    # swept down, the same input is on the low branch, and so is the noise
    down = dataclasses.replace(spec, sweep=dataclasses.replace(spec.sweep, direction="down"))
    low = extract_family(down, n=3, seed=0, options=options(), noise=analysis)
    assert low.curves[0, middle] < 0.1
    parameters = dict(zip(low.parameter_names, low.parameters[0], strict=True))
    held_low, _ = standalone_noise(spec, parameters, 0.9, analysis, ".nodeset v(out)=0")
    np.testing.assert_allclose(low.noise.psd[0, 1], held_low, rtol=1e-6)


def test_speed_without_capacitance_fails_with_reasons_not_artefacts() -> None:
    """An unloaded resistive divider has no pole below fmax: no bandwidth, and no settling time
    (not the 2.7 ps of a step simulated over a window derived from fmax)."""
    spec = data_spec("divider")
    assert spec.output.load_capacitance == 0
    speed = extract_family(spec, n=2, seed=0, options=options(), speed=SpeedAnalysis()).speed
    assert speed is not None
    assert np.all(speed.status == 2)
    assert np.isnan(speed.bandwidth).all() and np.isnan(speed.settling_time).all()
    assert all("bandwidth beyond fmax = 1e+12 Hz" in reason for reason in speed.reasons)


def test_user_neurons_get_the_default_load() -> None:
    """Without output.load_capacitance a voltage output is loaded by 100 fF: the divider's
    bandwidth is then 1/(2π·(r1‖r2)·100 fF)."""
    data = spec_data("divider")
    del data["output"]["load_capacitance"]
    spec = build_spec(data)
    assert spec.output.load_capacitance == 100e-15
    family = extract_family(spec, n=2, seed=0, options=options(), speed=SpeedAnalysis())
    speed = family.speed
    assert speed is not None and np.all(speed.status == 1), speed.reasons
    r1, r2 = family.parameter("r1"), family.parameter("r2")
    expected = 1 / (2 * np.pi * (r1 * r2 / (r1 + r2)) * 100e-15)
    np.testing.assert_allclose(speed.bandwidth, expected, rtol=1e-2)  # (10 points per decade)
    np.testing.assert_allclose(
        speed.settling_time, np.log(1 / 0.02) * (r1 * r2 / (r1 + r2)) * 100e-15, rtol=0.05
    )
