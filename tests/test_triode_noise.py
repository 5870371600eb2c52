"""The built-in MOSFET neurons' channel noise is right at Vds = 0: an inverter at a rail is its
on-transistor's channel resistance R_on = 1/gds in triode, whose output noise is 4kT·R_on
(below the R_on·C_load corner). Level-1 cards (the ``*_level1`` variants) miss it: their channel
noise, 8kT·gm/3, vanishes where gm does."""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from helpers import NGSPICE_BOLTZMANN, options

from circuitnn import extract_family
from circuitnn.neuron.builtin import get_neuron
from circuitnn.neuron.units import format_spice
from circuitnn.spice.analyses import NoiseAnalysis
from circuitnn.spice.ngspice_process import ngspice_executable

RAILS = NoiseAnalysis(bias=(0.0, 1.8), fmin=1e3, fmax=1e7, points_per_decade=1, bandwidth=1e6)


def _gds(spec, parameters: dict[str, float], vin: float, device: str) -> float:
    """The on-transistor's output conductance (S) at the operating point of one instance alone,
    as ngspice reports it (a plain ``ngspice -n -b`` ``op``)."""
    assignments = " ".join(f"{k}={format_spice(v)}" for k, v in parameters.items())
    text = "\n".join(
        [
            "* one inverter alone",
            spec.netlist_text,
            f"x1 in out vdd 0 {spec.subckt.name} {assignments}",
            "vdd vdd 0 DC 1.8",
            f"vin in 0 DC {format_spice(vin)}",
            ".control",
            "op",
            f"print @m.x1.{device}[gds]",
            "quit",
            ".endc",
            ".end",
        ]
    )
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "op.cir").write_text(text)
        done = subprocess.run(
            [ngspice_executable(), "-n", "-b", "op.cir"],
            cwd=folder,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
    match = re.search(r"\[gds\]\s*=\s*(\S+)", done.stdout)
    assert match, done.stdout
    return float(match.group(1))


def test_inverter_at_the_rails_has_the_on_resistance_thermal_noise() -> None:
    spec = get_neuron("cmos_inverter")
    family = extract_family(spec, n=3, seed=0, options=options(), noise=RAILS)
    noise = family.noise
    assert noise is not None and np.all(noise.status == 1)
    kt4 = 4 * NGSPICE_BOLTZMANN * (spec.temperature + 273.15)
    white = (noise.frequency >= 1e3) & (noise.frequency <= 1e6)
    for k in range(3):
        parameters = dict(zip(family.parameter_names, family.parameters[k], strict=True))
        for b, (vin, device) in enumerate(((0.0, "mp"), (1.8, "mn"))):
            r_on = 1 / _gds(spec, parameters, vin, device)
            assert 500 < r_on < 20e3  # ohms: a transistor fully on
            np.testing.assert_allclose(noise.psd[k, b, white], kt4 * r_on, rtol=0.02)
            # microvolts over the 1 MHz signal band (was nanovolts with level-1 cards)
            assert noise.sigma[k, b] == pytest.approx(np.sqrt(kt4 * r_on * 1e6), rel=0.03)


def test_level1_variant_stays_available_and_misses_the_triode_noise() -> None:
    spec = get_neuron("cmos_inverter_level1")
    assert "level=1" in spec.netlist_text.lower().replace(" ", "")
    family = extract_family(spec, n=2, seed=0, options=options(), noise=RAILS)
    noise = family.noise
    assert noise is not None and np.all(noise.status == 1)
    parameters = dict(zip(family.parameter_names, family.parameters[0], strict=True))
    r_on = 1 / _gds(spec, parameters, 0.0, "mp")
    kt4 = 4 * NGSPICE_BOLTZMANN * (spec.temperature + 273.15)
    assert np.all(noise.psd[0, 0, 1:] < 1e-3 * kt4 * r_on)
