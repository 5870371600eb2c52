"""Noise spectra against physics, with the real ngspice, and the noise analysis's plumbing.

* a resistive divider's output noise is 4kT·(r1 || r2) at every frequency, at two temperatures;
* a forward-biased diode's shot noise 2qI, with the feed resistor's 4kT/r, through r || r_d;
* a level-1 NMOS in saturation: 8/3·kT·gm channel noise plus ngspice-39's level-1 flicker term;
* the white + flicker fit and the integrated σ on synthetic spectra;
* each instance's noise in a batch is its own (equal to the instance simulated alone);
* bad requests are clear errors; the store adds noise to a family without rerunning DC.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import NGSPICE_BOLTZMANN, NGSPICE_CHARGE, NGSPICE_GMIN, data_spec, options
from scipy.optimize import brentq

import circuitnn.extract.analysis_chunks
import circuitnn.extract.noise
import circuitnn.extract.pipeline
import circuitnn.extract.spectra
import circuitnn.extract.speed
from circuitnn import extract_family
from circuitnn.cli import main
from circuitnn.errors import ConfigError, SimulationError
from circuitnn.extract.analysis_chunks import simulate_noise_chunk
from circuitnn.extract.operating_point import branch_values
from circuitnn.extract.spectra import (
    device_instances,
    device_totals,
    fit_white_flicker,
    instance_psd,
    integrated_sigma,
    unattributed,
)
from circuitnn.neuron.builtin import get_neuron
from circuitnn.neuron.units import format_spice
from circuitnn.neuron.variation import MonteCarlo, ParameterTable, nominal_table, sample_parameters
from circuitnn.spice.analyses import NoiseAnalysis
from circuitnn.spice.benches import render_noise_bench
from circuitnn.spice.engines import run_script
from circuitnn.store import Store

KELVIN = 273.15  # ngspice's CONSTCtoK
EPS_OX = 3.9 * 8.854214871e-12  # F/m, ngspice level 1: Cox = 3.9·ε0/TOX

# few points: the circuits below are flat (or power laws) in frequency
SMALL = {"fmin": 1.0, "fmax": 1e6, "points_per_decade": 2, "bandwidth": 1e5}


def kT(celsius: float) -> float:
    """Boltzmann's constant × absolute temperature, with ngspice's constant (J)."""
    return NGSPICE_BOLTZMANN * (celsius + KELVIN)


def parallel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two resistances in parallel."""
    return a * b / (a + b)


# ---------------------------------------------------------------- physics


def test_resistor_thermal_noise_is_4kTR_and_scales_with_temperature(tmp_path: Path) -> None:
    spec = data_spec("divider")
    store = Store(tmp_path / "s.h5")
    analysis = NoiseAnalysis(bias_points=2, **SMALL)
    cold = extract_family(spec, n=4, seed=1, store=store, options=options(), noise=analysis)
    hot = extract_family(
        spec, n=4, seed=1, store=store, temperature=80.0, options=options(), noise=analysis
    )
    assert cold.key != hot.key  # temperature makes a separate family ...
    assert sorted(Store(store.path).keys()) == sorted([cold.key, hot.key])
    np.testing.assert_array_equal(cold.parameters, hot.parameters)  # ... of the same instances
    for family, celsius in ((cold, spec.temperature), (hot, 80.0)):
        noise = family.noise
        assert noise is not None and (noise.status == 1).all()
        r_out = parallel(family.parameter("r1"), family.parameter("r2"))  # rs sits on the supply
        expected = 4 * kT(celsius) * r_out
        assert noise.psd.shape == (4, 2, len(noise.frequency))
        np.testing.assert_allclose(
            noise.psd, np.broadcast_to(expected[:, None, None], noise.psd.shape), rtol=0.01
        )
        # white: the fit finds all of it in the white term, and σ² = S·(bandwidth − fmin)
        np.testing.assert_allclose(
            noise.white, np.broadcast_to(expected[:, None], noise.white.shape), rtol=0.01
        )
        band = noise.bandwidth - noise.frequency[0]
        np.testing.assert_allclose(noise.sigma, np.sqrt(noise.white * band), rtol=1e-6)
    # 4kTR ∝ T (the resistors have no temperature coefficient)
    ratio = (80.0 + KELVIN) / (spec.temperature + KELVIN)
    np.testing.assert_allclose(hot.noise.psd / cold.noise.psd, ratio, rtol=1e-6)


def shockley_operating_point(
    x: float, i_s: float, n: float, r: float, v_t: float
) -> tuple[float, float]:
    """Diode voltage (V) and junction current (A, GMIN excluded) of x → r → diode → ground."""

    def residual(v: float) -> float:
        return i_s * np.expm1(v / (n * v_t)) + NGSPICE_GMIN * v - (x - v) / r

    v = brentq(residual, 0.0, x, xtol=1e-16, rtol=4 * np.finfo(float).eps, maxiter=500)
    return v, i_s * np.expm1(v / (n * v_t))


def test_forward_diode_shot_noise_is_2qI_through_small_signal_impedance() -> None:
    spec = data_spec("diode_shot")
    biases = (0.8, 1.5, 3.0)  # from feed-resistor dominated to shot-noise dominated
    family = extract_family(
        spec, n=5, seed=2, options=options(), noise=NoiseAnalysis(bias=biases, **SMALL)
    )
    noise = family.noise
    assert noise is not None and (noise.status == 1).all()
    celsius = spec.temperature
    v_t = kT(celsius) / NGSPICE_CHARGE
    for k, values in enumerate(family.parameters):
        p = dict(zip(family.parameter_names, values, strict=True))
        for b, x in enumerate(biases):
            _, current = shockley_operating_point(x, p["is"], p["n"], p["r"], v_t)
            g_d = (current + p["is"]) / (p["n"] * v_t) + NGSPICE_GMIN  # dI/dV of the junction
            z = 1.0 / (1.0 / p["r"] + g_d)  # r || r_d
            shot = 2 * NGSPICE_CHARGE * current
            thermal = 4 * kT(celsius) / p["r"]
            if x == biases[-1]:
                assert shot > 5 * thermal  # well forward biased: the shot noise dominates
            expected = (shot + thermal) * z**2
            np.testing.assert_allclose(noise.psd[k, b], expected, rtol=0.02, err_msg=f"{k} {x}")


def test_level1_mosfet_channel_and_flicker_noise() -> None:
    """ngspice-39's level-1 MOSFET (mos1noi.c; NLEV is not a level-1 parameter in 39, it warns
    "unrecognized parameter (nlev) - ignored") has channel noise 4kT·(2/3)·gm and the SPICE3
    flicker current noise KF·Id^AF / (f·W·Leff·Cox²), Leff = L − 2·LD, Cox = 3.9·ε0/TOX; both
    flow drain→source, so with an infinite output resistance (LAMBDA=0) the output sees them
    through R_L, plus R_L's own 4kT·R_L."""
    spec = data_spec("mos_cs")
    biases = (0.7, 0.8)
    analysis = NoiseAnalysis(bias=biases, fmin=1.0, fmax=1e8, points_per_decade=2, bandwidth=1e6)
    family = extract_family(spec, n=4, seed=5, options=options(), noise=analysis)
    noise = family.noise
    assert noise is not None and (noise.status == 1).all()
    vto, kp, ld, tox, kf, af, vdd = 0.45, 200e-6, 0.1e-6, 10e-9, 1e-30, 1.2, 1.8
    cox = EPS_OX / tox
    f = noise.frequency
    kt = kT(spec.temperature)
    for k in range(family.n):
        w, l_drawn, rl = (family.parameter(name)[k] for name in ("w", "l", "rl"))
        l_eff = l_drawn - 2 * ld
        beta = kp * w / l_eff
        for b, x in enumerate(biases):
            overdrive = x - vto
            drain_current = beta * overdrive**2 / 2
            gm = beta * overdrive
            assert vdd - drain_current * rl > overdrive  # saturation
            channel = 8 / 3 * kt * gm
            flicker = kf * drain_current**af / (f * w * l_eff * cox**2)
            expected = (channel + flicker) * rl**2 + 4 * kt * rl
            np.testing.assert_allclose(noise.psd[k, b], expected, rtol=0.01, err_msg=f"{k} {x}")
            # the flicker term dominates at 1 Hz, the white one at the top: both are checked
            assert flicker[0] > 100 * channel and flicker[-1] < channel / 100
    # the fit separates them: white = 8/3·kT·gm·R_L² + 4kT·R_L, flicker ∝ Id^AF, α = 1
    assert np.allclose(noise.alpha, 1.0, atol=0.02)


def test_input_referred_noise_uses_the_small_signal_gain(tmp_path: Path) -> None:
    spec = data_spec("divider")
    family = extract_family(
        spec, n=3, seed=4, options=options(), noise=NoiseAnalysis(bias_points=3, **SMALL)
    )
    noise = family.noise
    assert noise is not None
    slope = np.gradient(family.curves, family.grid, axis=1).mean(axis=1)  # exact: linear
    np.testing.assert_allclose(
        noise.input_psd[:, :, 0] * slope[:, None] ** 2, noise.psd[:, :, 0], rtol=1e-6
    )


def test_output_noise_alone_skips_the_ac_and_matches_the_full_analysis() -> None:
    spec = data_spec("divider")
    full = extract_family(
        spec, n=3, seed=4, options=options(), noise=NoiseAnalysis(bias_points=2, **SMALL)
    ).noise
    alone = extract_family(
        spec,
        n=3,
        seed=4,
        options=options(),
        noise=NoiseAnalysis(bias_points=2, input_referred=False, **SMALL),
    ).noise
    assert full is not None and alone is not None
    assert np.all(alone.status == 1) and np.isnan(alone.input_psd).all()
    assert np.isfinite(full.input_psd).all()
    np.testing.assert_array_equal(alone.psd, full.psd)
    np.testing.assert_array_equal(alone.sigma, full.sigma)
    assert alone.key != full.key
    bench, sources, files = render_noise_bench(
        spec, nominal_table(spec), NoiseAnalysis(input_referred=False), np.array([0.1])
    )
    assert files == ["noise.raw", "op.raw"] and "\nac " not in bench.text
    assert list(sources) == ["circuit.cir"] and ".noise" not in sources["circuit.cir"]


# ---------------------------------------------------------------- fit and integral (pure numpy)


def test_integrated_sigma_is_exact_for_white_and_one_over_f() -> None:
    f = np.logspace(0, 9, 91)
    white, k = 3e-17, 2e-12
    spectra = np.stack([np.full_like(f, white), k / f, white + k / f])
    for bandwidth in (1e6, 3.7e4):  # on the grid and between grid points
        expected = np.array(
            [
                white * (bandwidth - 1.0),
                k * np.log(bandwidth / 1.0),
                white * (bandwidth - 1.0) + k * np.log(bandwidth),
            ]
        )
        sigma = integrated_sigma(f, spectra, bandwidth)
        np.testing.assert_allclose(sigma[:2], np.sqrt(expected[:2]), rtol=1e-9)
        # the sum is piecewise power-law only approximately: 10 points per decade suffice for 1 %
        np.testing.assert_allclose(sigma[2], np.sqrt(expected[2]), rtol=0.01)
    # N×B×F in, N×B out
    assert integrated_sigma(f, np.broadcast_to(spectra, (2, 3, len(f))), 1e6).shape == (2, 3)


def _sigma_row_by_row(frequency: np.ndarray, psd: np.ndarray, bandwidth: float) -> np.ndarray:
    """integrated_sigma as it was written first: the band edge interpolated by ``np.interp``
    one spectrum at a time."""
    f = np.asarray(frequency, dtype=np.float64)
    edge = min(bandwidth, f[-1])
    inside = f < edge
    grid = np.append(f[inside], edge)
    log_s = np.log(np.maximum(psd, 1e-300)).reshape(-1, len(f))
    at_edge = np.array([np.interp(np.log(edge), np.log(f), row) for row in log_s])
    values = np.concatenate([log_s[:, inside], at_edge[:, None]], axis=1)
    with np.errstate(all="ignore"):
        power = circuitnn.extract.spectra._loglog_trapezoid(grid, np.exp(values))
    return np.sqrt(power).reshape(np.shape(psd)[:-1])


def test_integrated_sigma_equals_the_band_edge_interpolated_spectrum_by_spectrum() -> None:
    """The band edge is interpolated for all spectra at once, bit for bit as ``np.interp`` gives
    it for each: below, on and between the grid's frequencies, at and past the last one, and for
    spectra with zeros, infinities and NaN beside the edge."""
    rng = np.random.default_rng(11)
    f = np.logspace(0, 6, 61)
    psd = 10.0 ** rng.uniform(-18, -12, size=(3, 4, len(f)))
    psd[0, 0, 20:23] = 0.0
    psd[0, 1, 21] = np.inf
    psd[0, 2, 22] = np.nan
    psd[1, 0, 20] = np.nan
    psd[1, 1, 21:] = np.inf
    for bandwidth in (0.5, 1.0, 1.3, f[20], f[21], 0.5 * (f[21] + f[22]), 9.99e5, 1e6, 1e9):
        with np.errstate(all="ignore"):
            got = integrated_sigma(f, psd, bandwidth)
            want = _sigma_row_by_row(f, psd, bandwidth)
        np.testing.assert_array_equal(got, want, err_msg=f"bandwidth {bandwidth}")
    assert np.isfinite(integrated_sigma(f, psd[2], 3e4)).all()


def test_integrated_sigma_stops_at_the_last_frequency() -> None:
    """A bandwidth past the analysis' last frequency integrates up to that frequency."""
    f = np.logspace(0, 6, 31)
    white = np.full((2, len(f)), 4e-17)
    for bandwidth in (1e6, 1e7, 1e12):
        np.testing.assert_allclose(
            integrated_sigma(f, white, bandwidth), np.sqrt(4e-17 * (1e6 - 1.0)), rtol=1e-12
        )


def test_fit_of_white_spectra_leaves_flicker_exactly_zero() -> None:
    """Pure white spectra on 40 grids (5-400 points over 1-9 decades), 8 levels each, fit with
    flicker exactly 0 and its exponent NaN: on some of them the two-term closed form finds a
    flicker of 1e-33 to 1e-25 (round-off, a gain of about 1e-16 per point in the cost), which
    the threshold (1e-12 per point) rejects."""
    rng = np.random.default_rng(1)
    for _ in range(40):
        points, low = int(rng.integers(5, 400)), rng.uniform(-2, 3)
        f = np.logspace(low, low + rng.uniform(1, 9), points)
        levels = 10.0 ** rng.uniform(-20, -10, size=8)
        white, flicker, alpha = fit_white_flicker(f, levels[:, None] * np.ones(points))
        np.testing.assert_array_equal(flicker, 0.0)
        assert np.isnan(alpha).all()
        np.testing.assert_allclose(white, levels, rtol=1e-12)


@pytest.mark.parametrize("alpha", [0.8, 1.0, 1.3, 2.0])
def test_fit_recovers_white_flicker_and_alpha(alpha: float) -> None:
    f = np.logspace(0, 6, 61)
    white = np.array([1e-16, 4e-18, 2e-15])
    corner = np.array([1e2, 3e3, 10.0])  # where flicker = white
    flicker = white * corner**alpha
    spectra = white[:, None] + flicker[:, None] / f[None, :] ** alpha
    fitted_white, fitted_flicker, fitted_alpha = fit_white_flicker(f, spectra)
    # exact data: limited by the parabolic refinement of the α grid (step 0.025)
    np.testing.assert_allclose(fitted_alpha, alpha, atol=0.01)
    np.testing.assert_allclose(fitted_white, white, rtol=0.02)
    np.testing.assert_allclose(fitted_flicker, flicker, rtol=0.1)
    # 5 % multiplicative noise on every point (as a finite-run PSD estimate would have): the
    # least-squares errors fall as 1/√F; over 61 points α within 0.05, white within 5 %
    rng = np.random.default_rng(0)
    noisy = spectra * (1 + 0.05 * rng.standard_normal(spectra.shape))
    fitted_white, fitted_flicker, fitted_alpha = fit_white_flicker(f, noisy)
    np.testing.assert_allclose(fitted_alpha, alpha, atol=0.05)
    np.testing.assert_allclose(fitted_white, white, rtol=0.05)
    # K·f^-α at the corner (where both terms matter) is pinned more tightly than K alone
    np.testing.assert_allclose(
        fitted_flicker / corner**fitted_alpha, flicker / corner**alpha, rtol=0.1
    )


def test_fit_of_pure_white_or_pure_flicker() -> None:
    f = np.logspace(0, 6, 31)
    white, flicker, alpha = fit_white_flicker(f, np.full((1, len(f)), 5e-17))
    np.testing.assert_allclose(white, 5e-17, rtol=1e-6)
    assert flicker[0] == 0 and np.isnan(alpha[0])  # no flicker: its exponent is undefined
    w, k, a = fit_white_flicker(f, (1e-12 / f**1.0)[None, :])
    np.testing.assert_allclose(k, 1e-12, rtol=0.02)
    np.testing.assert_allclose(a, 1.0, atol=0.01)
    # the α refinement is a parabola through three grid costs, so a little of the top decade
    # can land in the white term: under 5 % of the spectrum's lowest value
    assert w[0] < 0.05 * 1e-12 / f[-1]


@pytest.mark.parametrize("alpha", [0.87, 1.234, 1.57, 2.41])
def test_fit_refines_alpha_between_grid_points(alpha: float) -> None:
    """Off the search grid (0.5…2.5 by 0.1, then by 0.02 around each spectrum's best): on exact
    data the parabola through the three best fine-grid costs puts α within 1e-3 — a twentieth of
    the fine step —, the white level within 1e-3 and the flicker coefficient within 2e-3."""
    f = np.logspace(0, 6, 61)
    white = np.array([1e-16, 4e-18, 2e-15])
    corner = np.array([1e2, 3e3, 10.0])  # where flicker = white
    flicker = white * corner**alpha
    spectra = white[:, None] + flicker[:, None] / f[None, :] ** alpha
    fitted_white, fitted_flicker, fitted_alpha = fit_white_flicker(f, spectra)
    np.testing.assert_allclose(fitted_alpha, alpha, atol=1e-3)
    np.testing.assert_allclose(fitted_white, white, rtol=1e-3)
    np.testing.assert_allclose(fitted_flicker, flicker, rtol=2e-3)
    # the default search grid is the documented one
    documented = fit_white_flicker(f, spectra, np.linspace(0.5, 2.5, 21))
    for default, given in zip(
        (fitted_white, fitted_flicker, fitted_alpha), documented, strict=True
    ):
        np.testing.assert_array_equal(default, given)


def test_fit_searches_the_exponents_it_is_given() -> None:
    """``alphas`` sets the search: one value fits that exponent exactly; two values are refined
    between and around them; a grid beyond the default range finds a steeper spectrum the
    default grid cannot reach (it stops a fine half-step past 2.5)."""
    f = np.logspace(0, 6, 61)
    white = np.array([1e-16, 4e-18, 2e-15])
    corner = np.array([1e2, 3e3, 10.0])

    def spectra(alpha: float) -> tuple[np.ndarray, np.ndarray]:
        flicker = white * corner**alpha
        return flicker, white[:, None] + flicker[:, None] / f[None, :] ** alpha

    flicker, exact = spectra(1.0)
    w, k, a = fit_white_flicker(f, exact, [1.0])
    np.testing.assert_array_equal(a, 1.0)
    np.testing.assert_allclose(w, white, rtol=1e-12)
    np.testing.assert_allclose(k, flicker, rtol=1e-12)
    flicker, exact = spectra(1.2)
    w, k, a = fit_white_flicker(f, exact, [1.0, 1.5])
    np.testing.assert_allclose(a, 1.2, atol=0.01)  # fine step 0.1 around the better of the two
    np.testing.assert_allclose(w, white, rtol=0.01)
    flicker, steep = spectra(3.0)
    w, k, a = fit_white_flicker(f, steep, np.linspace(2.0, 4.0, 21))
    np.testing.assert_allclose(a, 3.0, atol=1e-3)
    np.testing.assert_allclose(k, flicker, rtol=2e-3)
    assert np.all(fit_white_flicker(f, steep)[2] <= 2.6 + 1e-9)


def test_fit_is_per_spectrum_relative_and_non_negative() -> None:
    """Each spectrum is fitted on its own (rows together equal rows alone, pure white beside
    pure flicker); relative least squares is blind to the unit's scale (a current output's
    1e-24 A²/Hz fits as a 1e4 V²/Hz one); points where the PSD is zero carry no information
    and are left out; both coefficients stay non-negative where the unconstrained solution
    would go below zero (a rising spectrum; a falling one flattening below its 1/f asymptote)."""
    f = np.logspace(0, 6, 31)
    spectra = np.stack(
        [
            np.full_like(f, 5e-17),
            2e-12 / f**1.3,
            1e-16 + 1e-12 / f**0.9,
            1e-16 * f / (f + 1e3),  # rising: a high-pass
            1e-12 / f - 0.9e-18,  # below its 1/f asymptote (positive up to 1e6 Hz)
        ]
    )
    together = fit_white_flicker(f, spectra)
    for row in range(len(spectra)):
        alone = fit_white_flicker(f, spectra[row : row + 1])
        for both, single in zip(together, alone, strict=True):
            np.testing.assert_array_equal(both[row], single[0])
    white, flicker, alpha = together
    assert np.all(white >= 0) and np.all(flicker >= 0)
    assert flicker[0] == 0  # pure white: no flicker at all

    def model(w: np.ndarray, k: np.ndarray, a: np.ndarray) -> np.ndarray:
        return w[:, None] + k[:, None] / f[None, :] ** np.nan_to_num(a)[:, None]

    for scale in (1e-8, 1e20):
        scaled = fit_white_flicker(f, spectra * scale)
        np.testing.assert_allclose(model(*scaled), model(*together) * scale, rtol=1e-6)
        np.testing.assert_allclose(scaled[2][1:], alpha[1:], rtol=1e-9)  # where there is flicker
    holes = spectra.copy()
    holes[:, ::5] = 0.0  # every fifth point carries nothing
    kept = np.ones(len(f), dtype=bool)
    kept[::5] = False
    for with_holes, without in zip(
        fit_white_flicker(f, holes), fit_white_flicker(f[kept], spectra[:, kept]), strict=True
    ):
        np.testing.assert_allclose(with_holes, without, rtol=1e-12)


def test_an_exponent_past_the_search_is_reported_at_the_best_one_searched() -> None:
    """Past either end of the search (the default grid's fine steps reach 0.4 and 2.6), the fit
    reports the best exponent it evaluated — the end of its fine grid — and the coefficients
    that go with it."""
    f = np.logspace(0, 6, 61)
    for alpha, end in ((3.0, 2.6), (0.3, 0.4)):
        spectrum = (1e-16 + 1e-16 * 1e2**alpha / f**alpha)[None, :]
        white, flicker, fitted = fit_white_flicker(f, spectrum)
        np.testing.assert_allclose(fitted, end, rtol=1e-12)
        at_end = fit_white_flicker(f, spectrum, [end])
        np.testing.assert_allclose(white, at_end[0], rtol=1e-12)
        np.testing.assert_allclose(flicker, at_end[1], rtol=1e-12)


# A cell of every device kind whose noise ngspice splits into components, twice (xn0, xn1), and
# a resistor outside the cells: ngspice names each device's total ``onoise_<device>`` and its
# parts ``onoise_<device>_<part>``; r1 and r10 test that a name prefix is not a component.
NOISE_NAMES_NETLIST = """* noise vector names
.subckt cell in out
r1 in out 1k
r10 out 0 2k
d1 out 0 dmod
m1 out in 0 0 nmod w=1u l=1u
.ends
.model dmod d(is=1e-14 rs=10 kf=1e-14)
.model nmod nmos(level=1 kf=1e-25)
vin in 0 dc 0.7 ac 1
xn0 in out0 cell
xn1 in out1 cell
rsum out0 out1 1meg
.noise v(out0) vin dec 2 1 1e4 1
.control
run
setplot noise1
write noise.raw all
.endc
.end
"""
DEVICES = (("r", "r1"), ("r", "r10"), ("d", "d1"), ("m", "m1"))  # (kind, name) in each cell


def test_instance_psd_sums_each_instances_device_totals_from_real_ngspice_vectors() -> None:
    """On the vectors of a real ngspice noise run: the totals are the devices (components, the
    spectra and non-noise vectors left out, r10 kept beside r1), each assigned to its instance;
    an instance's PSD is the sum of its devices' squared densities; instances past the count
    asked for are left out."""
    (plot,) = run_script(NOISE_NAMES_NETLIST, ["noise.raw"], timeout=30.0)["noise.raw"]
    vectors = plot.vectors
    devices = [f"{kind}.xn{i}.{name}" for i in (0, 1) for kind, name in DEVICES]
    assert device_totals(list(vectors)) == sorted(
        [f"onoise_{device}" for device in devices] + ["onoise_rsum"]
    )
    assert any(name.endswith("_thermal") for name in vectors)  # components were there
    owners = device_instances(list(vectors), 2)
    assert sorted(owners) == sorted(
        (f"onoise_{kind}.xn{i}.{name}", i) for i in (0, 1) for kind, name in DEVICES
    )
    assert sorted(device_instances(list(vectors), 1)) == sorted(o for o in owners if o[1] == 0)
    given = ["onoise_d.xn1.d1", "onoise_rsum"]  # the totals given are the ones grouped
    assert device_instances(list(vectors), 2, given) == [("onoise_d.xn1.d1", 1)]
    psd = instance_psd(vectors, 2)
    for i in (0, 1):
        expected = sum(vectors[f"onoise_{kind}.xn{i}.{name}"] ** 2 for kind, name in DEVICES)
        np.testing.assert_allclose(psd[i], expected, rtol=1e-12)
        assert np.all(psd[i] > 0)
    np.testing.assert_array_equal(instance_psd(vectors, 2, owners), psd)
    np.testing.assert_array_equal(instance_psd(vectors, 1), psd[:1])


# ---------------------------------------------------------------- batching


def test_instance_noise_in_batch_equals_instance_alone() -> None:
    """Each instance's noise in a batch of 12 is its own: the same instance alone gives the
    same spectrum (to the solver's precision), so no other instance's devices leak in."""
    spec = get_neuron("mos_diffpair")
    analysis = NoiseAnalysis(bias_points=3, fmin=10.0, fmax=1e8, points_per_decade=2, bandwidth=1e6)
    family = extract_family(spec, n=12, seed=7, options=options(chunk_size=12), noise=analysis)
    noise = family.noise
    assert noise is not None and (noise.status == 1).all()
    table = ParameterTable(
        family.parameter_names, family.parameters, np.arange(family.n), family.chip
    )
    # the instances differ from one another (else equality would prove nothing)
    assert np.ptp(noise.sigma[:, 1]) > 1e-3 * noise.sigma[:, 1].mean()
    for k in (0, 5, 11):
        alone = simulate_noise_chunk(spec, table.rows(np.array([k])), analysis)
        assert alone["status"][0] == 1
        np.testing.assert_allclose(alone["psd"][0], noise.psd[k], rtol=1e-6)
        sigma = integrated_sigma(noise.frequency, alone["psd"][0], analysis.bandwidth)
        np.testing.assert_allclose(sigma, noise.sigma[k], rtol=1e-6)


def test_each_bias_of_the_one_circuit_run_equals_a_circuit_written_at_that_bias() -> None:
    """Without ``.nodeset`` cards the circuit is read once and its input altered to each bias
    in turn: every bias's spectrum and operating point are those of a netlist that has the
    bias in its own source, read afresh (one instance, that bias only)."""
    spec = get_neuron("mos_diffpair_level1")  # differential output: no .nodeset is possible
    analysis = NoiseAnalysis(bias_points=4, fmin=10.0, fmax=1e8, points_per_decade=2)
    biases = analysis.biases(spec)
    table = sample_parameters(spec, MonteCarlo(n=6, seed=2))
    bench, sources, files = render_noise_bench(spec, table, analysis, biases)
    assert list(sources) == ["circuit.cir"] and bench.text.count("\nalter vx dc = ") == 4
    plots = run_script(bench.text, files, 60.0, "one circuit", sources, plots=4)
    noise_file, _, op_file = files
    assert [len(plots[name]) for name in files] == [4, 4, 4]  # one plot per bias in each
    batch = [instance_psd(plot.vectors, 6) for plot in plots[noise_file]]
    operating = [plot.vectors["v(o0_4)"][0] for plot in plots[op_file]]
    # the bias moves the spectrum and the operating point: an input left at bias 0 would show
    assert np.ptp([psd[4, 0] for psd in batch]) > 0.05 * batch[0][4, 0]
    for j, bias in enumerate(biases):
        one, single_sources, names = render_noise_bench(
            spec, table.rows(np.array([4])), analysis, np.array([bias])
        )
        assert f"vx x 0 DC {format_spice(float(bias))} AC 1" in single_sources["circuit.cir"]
        alone = run_script(one.text, names, 60.0, "alone", single_sources)
        np.testing.assert_allclose(batch[j][4], instance_psd(alone[noise_file][0].vectors, 1)[0])
        np.testing.assert_allclose(operating[j], alone[op_file][0].vectors["v(o0_0)"][0])


def test_a_batch_is_not_held_and_agrees_with_each_instance_held_alone(monkeypatch) -> None:
    """A voltage output's batch finds its operating points without ``.nodeset`` (one circuit
    for every bias); an instance alone is held to its stored curve, and gives the same noise."""
    spec = get_neuron("cmos_inverter_level1")
    analysis = NoiseAnalysis(bias_points=3, fmin=10.0, fmax=1e8, points_per_decade=2)
    family = extract_family(spec, n=5, seed=1, options=options(chunk_size=5))
    table = ParameterTable(family.parameter_names, family.parameters, np.arange(5), family.chip)
    held: list[bool] = []
    render = circuitnn.extract.analysis_chunks.render_noise_bench

    def spy(*args: object) -> object:
        held.append(args[4] is not None)
        return render(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(circuitnn.extract.analysis_chunks, "render_noise_bench", spy)
    batch = simulate_noise_chunk(spec, table, analysis, branch=family.curves)
    assert held == [False] and (batch["status"] == 1).all()  # one run: no instance off its curve
    assert np.ptp(batch["psd"][:, 1, 0]) > 0.01 * batch["psd"][0, 1, 0]  # instances differ
    for k in (0, 4):
        alone = simulate_noise_chunk(
            spec, table.rows(np.array([k])), analysis, branch=family.curves[[k]]
        )
        assert held[-1] and alone["status"][0] == 1
        np.testing.assert_allclose(batch["psd"][k], alone["psd"][0], rtol=1e-6)
    # what the writer sends instead of the curves (the values at the biases): the same run
    values = branch_values(spec.sweep.grid(), family.curves[[4]], analysis.biases(spec), "up")
    same = simulate_noise_chunk(spec, table.rows(np.array([4])), analysis, expected=values)
    assert held[-1]
    np.testing.assert_array_equal(same["psd"], alone["psd"])
    with pytest.raises(ConfigError, match="as curves or as values, not both"):
        simulate_noise_chunk(spec, table, analysis, branch=family.curves, expected=values)


# ---------------------------------------------------------------- bad requests


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"bandwidth": 1.0}, "integration band would be empty"),
        ({"bandwidth": 0.5, "fmin": 1.0}, "integration band would be empty"),
        ({"bandwidth": 0.0}, "bandwidth"),
        ({"bandwidth": -1e6}, "bandwidth"),
        ({"bandwidth": float("nan")}, "bandwidth"),
        ({"fmax": 1.0, "fmin": 1.0}, "fmax"),
        ({"fmax": 10.0, "fmin": 100.0, "bandwidth": 1e3}, "fmax"),
        ({"fmin": 0.0}, "fmin"),
        ({"bias_points": 0}, "bias_points"),
        ({"points_per_decade": 0}, "points_per_decade"),
        ({"bias": ()}, "bias"),
        ({"bias": (float("inf"),)}, "bias"),
    ],
)
def test_bad_noise_settings_are_config_errors(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        NoiseAnalysis(**settings)


def test_bias_outside_the_sweep_is_a_config_error_before_any_simulation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("simulated although the request is invalid")

    monkeypatch.setattr(circuitnn.extract.pipeline, "simulate_chunk", forbidden)
    spec = data_spec("divider")  # sweep −1…3 V
    with pytest.raises(ConfigError, match=r"bias 3\.5 V lies outside the input sweep"):
        extract_family(spec, n=2, options=options(), noise=NoiseAnalysis(bias=(0.0, 3.5)))


def test_cli_rejects_negative_bandwidth(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    store = tmp_path / "s.h5"
    spec = str(Path(__file__).parent / "data" / "divider.toml")
    args = ["extract", spec, "--n", "2", "--store", str(store), "--noise", "--bandwidth", "-1"]
    assert main([*args, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bandwidth" in err and "Traceback" not in err
    assert not store.exists()


# ---------------------------------------------------------------- store


def test_noise_is_added_to_a_stored_family_without_rerunning_dc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = data_spec("divider")
    store = Store(tmp_path / "s.h5")
    family = extract_family(spec, n=5, seed=3, store=store, options=options())
    assert store.analyses(family.key) == []

    def no_dc(*args: object, **kwargs: object) -> None:
        raise AssertionError("the DC sweep ran again")

    monkeypatch.setattr(circuitnn.extract.pipeline, "simulate_chunk", no_dc)
    analysis = NoiseAnalysis(bias_points=3, **SMALL)
    with_noise = extract_family(spec, n=5, seed=3, store=store, options=options(), noise=analysis)
    assert with_noise.key == family.key
    (key,) = store.analyses(family.key)
    assert key.startswith("noise-") and key == with_noise.noise.key
    points = len(with_noise.noise.frequency)
    with h5py.File(store.path, "r") as handle:
        group = handle["families"][family.key][key]
        shapes = {name: group[name].shape for name in group}
        assert shapes["frequency"] == (points,)
        assert shapes["bias"] == (3,)
        assert shapes["psd"] == (5, 3, points)
        assert shapes["input_psd"] == (5, 3, points)
        for name in ("sigma", "white", "flicker", "alpha"):
            assert shapes[name] == (5, 3), name
        assert shapes["status"] == (5,) and shapes["failure_reason"] == (5,)
        np.testing.assert_array_equal(group["bias"][()], [-1.0, 1.0, 3.0])
        np.testing.assert_array_equal(group["psd"][()], with_noise.noise.psd)
        assert group["frequency"].attrs["units"] == b"Hz"  # fixed-length text: bytes in h5py
        assert group.attrs["bandwidth"] == analysis.bandwidth
        # the DC datasets are untouched
        np.testing.assert_array_equal(handle["families"][family.key]["curves"][()], family.curves)

    # asking again runs nothing at all, and loading returns the same numbers
    def no_noise(*args: object, **kwargs: object) -> None:
        raise AssertionError("the noise analysis ran again")

    monkeypatch.setattr(circuitnn.extract.noise, "simulate_noise_chunk", no_noise)
    again = extract_family(spec, n=5, seed=3, store=store, options=options(), noise=analysis)
    np.testing.assert_array_equal(again.noise.psd, with_noise.noise.psd)
    np.testing.assert_array_equal(again.noise.sigma, with_noise.noise.sigma)
    loaded = Store(store.path).load(family.key, noise=key)
    np.testing.assert_array_equal(loaded.noise.sigma, with_noise.noise.sigma)
    assert loaded.noise.reasons == [""] * 5
    # other settings are another analysis beside it
    monkeypatch.undo()
    other = NoiseAnalysis(bias_points=2, **SMALL)
    extract_family(spec, n=5, seed=3, store=store, options=options(), noise=other)
    assert len(store.analyses(family.key)) == 2


def test_instance_failing_in_noise_run_is_recorded_and_others_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ngspice failing on one instance's noise run (whatever the cause) fails that instance only;
    the batch is bisected and every other instance keeps its real-ngspice spectrum."""
    spec = data_spec("divider")
    analysis = NoiseAnalysis(bias_points=2, **SMALL)
    reference = extract_family(spec, n=6, seed=8, options=options(chunk_size=6), noise=analysis)
    # instance 2's own parameter assignment marks the benches that contain it
    bad = f"r1={format_spice(float(reference.parameter('r1')[2]))} "

    def flaky(
        text: str, files: list[str], timeout: float, what: str, sources: dict[str, str], *more
    ) -> object:
        if any(bad in circuit for circuit in sources.values()):  # (one circuit per bias)
            raise SimulationError("noise analysis failed: timestep too small (injected)")
        return run_script(text, files, timeout, what, sources, *more)

    monkeypatch.setattr(circuitnn.extract.analysis_chunks, "run_script", flaky)
    family = extract_family(spec, n=6, seed=8, options=options(chunk_size=6), noise=analysis)
    noise = family.noise
    assert noise is not None
    assert noise.status.tolist() == [1, 1, 2, 1, 1, 1]
    assert "timestep too small" in noise.reasons[2]
    assert np.isnan(noise.psd[2]).all() and np.isnan(noise.sigma[2]).all()
    keep = np.arange(6) != 2
    # instances renumber inside a smaller bench, yet each keeps exactly its own noise
    np.testing.assert_allclose(noise.psd[keep], reference.noise.psd[keep], rtol=1e-9)


def test_cli_extract_with_noise_speed_and_temp_then_show(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """`extract --noise --speed --temp` stores both analyses of a family at that temperature;
    the RC stage's output noise is the resistor's 4kT·r, low-pass filtered by its own r·C."""
    store = tmp_path / "s.h5"
    spec_path = Path(__file__).parent / "data" / "resistor_rc.toml"
    args = ["extract", str(spec_path), "--n", "3", "--store", str(store), "--temp", "80"]
    noise_args = ["--noise", "--bias-points", "2", "--fmax", "1e6", "--ppd", "10"]
    speed_args = ["--speed", "--bandwidth", "1e5", "--quiet"]
    assert main([*args, *noise_args, *speed_args]) == 0
    capsys.readouterr()
    (key,) = Store(store).keys()
    family = Store(store).load(key)
    assert family.attrs["temperature"] == 80.0
    noise, speed = family.noise, family.speed
    assert noise is not None and speed is not None
    r = family.parameter("r")
    f0 = 1 / (2 * np.pi * r * 1e-9)
    expected = 4 * kT(80.0) * r[:, None] / (1 + (noise.frequency[None, :] / f0[:, None]) ** 2)
    for b in range(2):
        np.testing.assert_allclose(noise.psd[:, b], expected, rtol=0.01)
    np.testing.assert_allclose(speed.bandwidth, f0, rtol=0.02)
    assert main(["show", str(store), "--out", str(tmp_path / "plots")]) == 0
    pictures = sorted(p.name for p in (tmp_path / "plots").glob("*.png"))
    assert any(name.endswith("-noise.png") for name in pictures), pictures
    assert any(name.endswith("-speed.png") for name in pictures), pictures


@pytest.mark.parametrize("arrays", [True, False])
def test_noise_streams_into_the_store_equal_to_the_analysis_in_memory(
    tmp_path: Path, arrays: bool
) -> None:
    """With a store, each chunk's spectra go to a scratch file as it arrives; the stored analysis
    equals the one made in memory, rows of DC-failed instances (first, middle) hold NaN, and
    ``arrays=False`` returns the analysis without its N×B×F spectra."""
    spec = data_spec("divider")
    analysis = NoiseAnalysis(bias_points=2, **SMALL)
    family = extract_family(spec, n=8, seed=6, options=options())
    family.status[[0, 4]] = 2  # as if their DC runs had failed: not simulated again
    family.reasons[0] = family.reasons[4] = "injected DC failure"
    store = Store(tmp_path / "s.h5")
    store.commit(family)
    run = options(chunk_size=2)
    in_memory = circuitnn.extract.noise.add_noise(family, spec, analysis, None, run)
    streamed = circuitnn.extract.noise.add_noise(family, spec, analysis, store, run, arrays)
    rows = 8 if arrays else 0
    assert streamed.psd.shape == (rows, 2, in_memory.psd.shape[2])
    assert streamed.input_psd.shape == streamed.psd.shape
    stored = store.load(family.key).noise
    assert stored is not None
    for name in ("psd", "input_psd", "sigma", "white", "flicker", "alpha", "status"):
        np.testing.assert_array_equal(getattr(stored, name), getattr(in_memory, name), name)
        if name not in ("psd", "input_psd") or arrays:
            np.testing.assert_array_equal(getattr(streamed, name), getattr(in_memory, name))
    assert np.isnan(stored.psd[[0, 4]]).all() and np.isfinite(stored.psd[[1, 2, 3, 5, 6, 7]]).all()
    assert stored.reasons[4] == "DC simulation failed: injected DC failure"
    assert not (tmp_path / "s.h5.partial").exists()  # journal and scratch file gone


def test_noise_of_a_family_without_its_arrays_takes_each_chunks_branch_from_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A family loaded without its N×K arrays (as a campaign holds one) reads each chunk's
    stored curves from the store: every task carries the values at the biases of its own rows
    (chunks with a gap of DC failures and a one-row chunk too), and the analysis equals the one
    made from the family in memory."""
    spec = get_neuron("cmos_inverter_level1")  # a voltage output: the branch holds the bias
    analysis = NoiseAnalysis(bias_points=2, **SMALL)
    family = extract_family(spec, n=9, seed=4, options=options())
    family.status[[2, 6]] = 2
    family.reasons[2] = family.reasons[6] = "injected DC failure"
    store = Store(tmp_path / "s.h5")
    store.commit(family)
    light = store.load(family.key, arrays=False)
    assert light.curves.shape[0] == 0
    tasks: list[tuple[np.ndarray, object]] = []
    simulate = circuitnn.extract.noise.simulate_noise_chunk

    def spy(*task: object) -> object:
        tasks.append((task[1].index.copy(), task[7]))  # type: ignore[attr-defined]
        return simulate(*task)  # type: ignore[arg-type]

    monkeypatch.setattr(circuitnn.extract.noise, "simulate_noise_chunk", spy)
    run = options(noise_chunk_size=3)
    streamed = circuitnn.extract.noise.add_noise(light, spec, analysis, store, run)
    assert [rows.tolist() for rows, _ in tasks] == [[0, 1, 3], [4, 5, 7], [8]]
    biases, grid = analysis.biases(spec), spec.sweep.grid()
    for rows, values in tasks:
        for got, want in zip(
            values, branch_values(grid, family.curves[rows], biases, "up"), strict=True
        ):
            np.testing.assert_array_equal(got, want)
    in_memory = circuitnn.extract.noise.add_noise(family, spec, analysis, None, run)
    for name in ("psd", "sigma", "status"):
        np.testing.assert_array_equal(getattr(streamed, name), getattr(in_memory, name), name)


def test_instance_psd_groups_devices_by_instance_or_as_given() -> None:
    """On hand-made vectors: each instance's PSD is the sum of its devices' squared densities
    (an instance past the count and the spectra left out); a grouping passed in is used as it
    is, even one that disagrees with the names."""
    f = np.array([1.0, 10.0, 100.0])
    a0, a1, b1, c2 = (
        np.array(v) for v in ([1.0, 2.0, 3.0], [0.5, 0.5, 1.0], [2.0, 0, 1], [9.0] * 3)
    )
    vectors = {
        "frequency": f,
        "onoise_spectrum": np.sqrt(a0**2 + a1**2 + b1**2 + c2**2),
        "onoise_total": np.array(7.0),
        "onoise_r.xn0.r1": a0,
        "onoise_r.xn1.r1": a1,
        "onoise_d.xn1.d1": b1,
        "onoise_r.xn2.r1": c2,
    }
    np.testing.assert_allclose(instance_psd(vectors, 2), [a0**2, a1**2 + b1**2], rtol=1e-15)
    regrouped = instance_psd(vectors, 2, [("onoise_r.xn0.r1", 1), ("onoise_r.xn2.r1", 1)])
    np.testing.assert_allclose(regrouped, [np.zeros(3), a0**2 + c2**2], rtol=1e-15)


def test_unattributed_is_the_share_of_the_total_that_the_device_totals_miss() -> None:
    """On hand-made vectors (densities of nV/√Hz, and a frequency where nothing makes noise): a
    device's parts are not counted beside its total; the totals found from the names add up to
    ngspice's total (0 missing); totals given are the ones used (one device of two left out: its
    share of the total is missing)."""
    f = np.array([1.0, 10.0, 100.0, 1000.0])
    m1, r1 = np.array([3.0, 2.0, 1.0, 0.0]) * 1e-9, np.array([4.0, 4.0, 4.0, 0.0]) * 1e-9
    vectors = {
        "frequency": f,
        "onoise_spectrum": np.sqrt(m1**2 + r1**2),
        "onoise_mos1.xn0.m1": m1,
        "onoise_mos1.xn0.m1_1overf": 0.9 * m1,  # a part of m1's total
        "onoise_r.xn0.r1": r1,
    }
    assert unattributed(vectors) == pytest.approx(0.0, abs=1e-15)
    assert unattributed(vectors, ["onoise_mos1.xn0.m1", "onoise_r.xn0.r1"]) == unattributed(vectors)
    missing = unattributed(vectors, ["onoise_r.xn0.r1"])
    assert missing == pytest.approx(np.max(m1[:3] ** 2 / (m1[:3] ** 2 + r1[:3] ** 2)), rel=1e-12)
    assert unattributed(vectors, []) == 1.0  # nothing found: all of it missing


def test_integrated_sigma_adds_nothing_for_a_repeated_frequency() -> None:
    """A frequency listed twice is a piece of zero width: white noise integrates to S·(edge − f0)
    as without it."""
    f = np.array([1.0, 10.0, 10.0, 100.0])
    white = np.full((1, len(f)), 4e-17)
    np.testing.assert_allclose(
        integrated_sigma(f, white, 50.0), [np.sqrt(4e-17 * (50.0 - 1.0))], rtol=1e-12
    )
