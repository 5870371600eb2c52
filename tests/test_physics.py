"""Simulated curves against physics, with the real ngspice.

* a diode into a resistor against the Shockley equation solved numerically at every point;
* the BJT differential pair against alpha·rc·itail·tanh(x/2V_T) at two temperatures;
* a resistive divider (voltage, current output, supply and input currents, power) exactly;
* the threshold spread of the MOS differential pair against its Vth mismatch.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import (
    NETLISTS,
    NGSPICE_BOLTZMANN,
    NGSPICE_CHARGE,
    NGSPICE_GMIN,
    build_spec,
    data_spec,
    options,
    spec_data,
)
from scipy import constants
from scipy.optimize import brentq

from circuitnn import extract_family
from circuitnn.neuron.builtin import get_neuron


def thermal_voltage(
    celsius: float, k: float = NGSPICE_BOLTZMANN, q: float = NGSPICE_CHARGE
) -> float:
    """k·T/q in volts at `celsius`."""
    return k * (celsius + 273.15) / q


def shockley_output(x: float, i_s: float, n: float, r: float, v_t: float, gmin: float) -> float:
    """v(out) of a diode (i_s, n, GMIN across it) from x into r to ground, by root finding."""

    def residual(v: float) -> float:
        diode = x - v
        return i_s * np.expm1(diode / (n * v_t)) + gmin * diode - v / r

    # the root lies between min(0, x) and max(0, x): residual(min) ≥ 0 ≥ residual(max)
    low, high = min(0.0, x) - 1e-3, max(0.0, x) + 1e-3
    return brentq(residual, low, high, xtol=1e-18, rtol=4 * np.finfo(float).eps, maxiter=500)


def test_diode_resistor_follows_shockley_equation() -> None:
    spec = data_spec("diode_r")
    family = extract_family(spec, n=6, seed=3, options=options(chunk_size=4))
    assert family.ok.all()
    v_t = thermal_voltage(spec.temperature)
    names = family.parameter_names
    rows = [*zip(family.parameters, family.curves, strict=True)]
    rows.append((np.array([spec.parameters[p] for p in names]), family.nominal_curve))
    for values, curve in rows:
        p = dict(zip(names, values, strict=True))
        expected = np.array(
            [shockley_output(x, p["is"], p["n"], p["r"], v_t, NGSPICE_GMIN) for x in family.grid]
        )
        # the test netlist sets reltol = 1e-10: agreement to 1e-9 relative plus 1 pV
        np.testing.assert_allclose(curve, expected, rtol=1e-9, atol=1e-12)
        # with today's CODATA k and q (a 3.4e-7 relative change of V_T) still within 1e-6
        v_t_codata = thermal_voltage(spec.temperature, constants.k, constants.e)
        at_top = shockley_output(family.grid[-1], p["is"], p["n"], p["r"], v_t_codata, 1e-12)
        assert curve[-1] == pytest.approx(at_top, rel=1e-6)

    # GMIN matters in reverse bias: without it the reverse output would be only -is*r
    x = family.grid[0]
    p = dict(zip(names, family.parameters[0], strict=True))
    without_gmin = shockley_output(x, p["is"], p["n"], p["r"], v_t, 0.0)
    assert abs(family.curves[0, 0] - without_gmin) > 100 * 1e-12


def _bjt_ideal(grid: np.ndarray, parameters: dict[str, float], celsius: float) -> np.ndarray:
    alpha = parameters["bf"] / (parameters["bf"] + 1)
    return (
        alpha
        * parameters["rc"]
        * parameters["itail"]
        * np.tanh(grid / (2 * thermal_voltage(celsius, constants.k, constants.e)))
    )


@pytest.mark.parametrize("celsius", [None, 85.0])
def test_bjt_diffpair_is_alpha_rc_itail_tanh(celsius: float | None) -> None:
    family = extract_family(
        "bjt_diffpair", n=6, seed=0, temperature=celsius, options=options(chunk_size=4)
    )
    temperature = 27.0 if celsius is None else celsius
    assert family.attrs["temperature"] == temperature
    parameters = get_neuron("bjt_diffpair").parameters
    ideal = _bjt_ideal(family.grid, parameters, temperature)
    # within 2 µV of a 1 V swing (ngspice's tolerances and GMIN; V_T constants differ 3e-7)
    np.testing.assert_allclose(family.nominal_curve, ideal, rtol=0, atol=2e-6)
    # the other temperature's formula is far off: the temperature really reached ngspice
    other = 85.0 if temperature == 27.0 else 27.0
    assert np.max(np.abs(family.nominal_curve - _bjt_ideal(family.grid, parameters, other))) > 0.02

    # every mismatched instance keeps the shape: its gain at the midpoint is
    # alpha·rc·itail/(2 V_T) with its own bf, rc, itail and mean load error
    p = {name: family.parameter(name) for name in family.parameter_names}
    alpha = p["bf"] / (p["bf"] + 1)
    load = p["rc"] * (1 + (p["drc1"] + p["drc2"]) / 2)
    v_t = thermal_voltage(temperature, constants.k, constants.e)
    expected_gain = alpha * load * p["itail"] / (2 * v_t)
    np.testing.assert_allclose(family.descriptors["gain"], expected_gain, rtol=2e-3)
    assert np.ptp(expected_gain) / np.mean(expected_gain) > 0.01  # the instances do differ


def test_divider_is_exact_including_currents_and_power() -> None:
    spec = data_spec("divider")
    family = extract_family(spec, n=7, seed=2, chip_size=3, options=options(chunk_size=3))
    assert family.ok.all()
    x = family.grid
    r1, r2, rs = (family.parameter(name)[:, None] for name in ("r1", "r2", "rs"))
    vdd = spec.ports.supplies["vdd"]
    np.testing.assert_allclose(family.curves, x * r2 / (r1 + r2), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(family.supply_current[:, 0, :], vdd / rs + 0 * x, rtol=1e-9)
    np.testing.assert_allclose(family.input_current[:, 0, :], x / (r1 + r2), rtol=1e-9, atol=1e-15)
    # static power: vdd·I(vdd) from the supply plus x·I(x) from the input driver
    np.testing.assert_allclose(family.power, vdd**2 / rs + x**2 / (r1 + r2), rtol=1e-9)
    np.testing.assert_allclose(
        family.descriptors["mean_power"], np.mean(vdd**2 / rs + x**2 / (r1 + r2), axis=1), rtol=1e-9
    )
    nominal = spec.nominal()
    np.testing.assert_allclose(
        family.nominal_curve,
        x * nominal["r2"] / (nominal["r1"] + nominal["r2"]),
        rtol=1e-9,
        atol=1e-12,  # ngspice accumulates the sweep value: its "0 V" point is -1e-16 V
    )
    # the corner shifts the nominal circuit too
    high = extract_family(spec, n=2, seed=2, corner="high", options=options())
    shifted = spec.nominal("high")
    assert shifted["r1"] == nominal["r1"] + 100
    np.testing.assert_allclose(
        high.nominal_curve,
        x * shifted["r2"] / (shifted["r1"] + shifted["r2"]),
        rtol=1e-9,
        atol=1e-12,
    )


@pytest.mark.parametrize("invert", [False, True])
def test_current_output_flows_out_of_the_port_into_the_load(invert: bool) -> None:
    data = spec_data("divider")
    data["output"] = {"quantity": "current", "load_voltage": 0.5, "invert": invert}
    spec = build_spec(data)
    family = extract_family(spec, n=3, seed=4, options=options())
    assert family.output_unit == "A"
    r1, r2 = family.parameter("r1")[:, None], family.parameter("r2")[:, None]
    # out is held at 0.5 V: (x - 0.5)/r1 arrives through r1, 0.5/r2 leaves through r2
    out_of_port = (family.grid - 0.5) / r1 - 0.5 / r2
    expected = -out_of_port if invert else out_of_port
    np.testing.assert_allclose(family.curves, expected, rtol=1e-9, atol=1e-15)


def test_mos_diffpair_threshold_spread_follows_vth_mismatch() -> None:
    data = spec_data("mos_diffpair_level1", NETLISTS)  # (the mismatch plumbing; level 1 is fast)
    data["variation"] = {name: data["variation"][name] for name in ("dvt1", "dvt2")}
    data["name"] = "mos_diffpair_vth_only"
    spec = build_spec(data, NETLISTS)
    n = 400
    family = extract_family(spec, n=n, seed=21, options=options(chunk_size=200))
    assert family.ok.all()
    midpoint = family.descriptors["midpoint"]
    dvt1, dvt2 = family.parameter("dvt1"), family.parameter("dvt2")

    # Pelgrom: σ(ΔVth) = A_VT/√(W·L) for each transistor
    sigma_vt = 5e-9 / np.sqrt(spec.parameters["w"] * spec.parameters["l"])
    assert sigma_vt == pytest.approx(2.5e-3)
    expected = np.hypot(sigma_vt, sigma_vt)
    spread = np.std(midpoint, ddof=1)
    assert abs(spread - expected) <= 3 * expected / np.sqrt(2 * (n - 1)), (spread, expected)

    # Sign: Vdvt1 sits between inp and the gate of M1, so v(g1) = v(inp) - dvt1 and
    # v(g2) = v(inn) - dvt2. The pair balances (and, with matched loads and betas, the
    # differential output crosses zero, halfway between ±rl·ibias) where the gate voltages are
    # equal: x = v(inp) - v(inn) = dvt1 - dvt2.
    offset = dvt1 - dvt2
    assert np.corrcoef(midpoint, offset)[0, 1] > 0.99
    np.testing.assert_allclose(midpoint, offset, rtol=0, atol=2e-6)
    # the saturated ends are ±rl·ibias whatever the offset
    rl_ibias = spec.parameters["rl"] * spec.parameters["ibias"]
    np.testing.assert_allclose(family.curves[:, -1], rl_ibias, rtol=1e-3)
    np.testing.assert_allclose(family.curves[:, 0], -rl_ibias, rtol=1e-3)
