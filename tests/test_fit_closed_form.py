"""The white + flicker fit's closed-form sums against a direct solver: at the exponent it
returns, (white, flicker) is the non-negative relative least-squares solution (scipy's NNLS on
the weighted points), and no exponent nearby fits better."""

from __future__ import annotations

import numpy as np
from scipy.optimize import nnls

from circuitnn.extract.spectra import fit_white_flicker


def _nnls(f: np.ndarray, s: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    keep = s > 0
    a = 1.0 / s[keep]
    matrix = np.stack([a, a * f[keep] ** -alpha], axis=1)
    solution, residual = nnls(matrix, np.ones(keep.sum()))
    return solution, residual**2


def test_fit_is_the_nonnegative_least_squares_solution_at_a_local_best_exponent() -> None:
    rng = np.random.default_rng(5)
    f = np.logspace(0, 6, 61)
    rows = 40
    alpha = rng.uniform(0.6, 2.2, rows)
    white = 10 ** rng.uniform(-18, -15, rows)
    corner = 10 ** rng.uniform(0, 5, rows)
    spectra = white[:, None] * (1 + (corner[:, None] / f[None, :]) ** alpha[:, None])
    spectra *= 1 + 0.05 * rng.standard_normal(spectra.shape)
    spectra[0] = 3e-17  # white only
    spectra[1, :5] = 0.0  # points without noise are left out
    fitted_white, fitted_flicker, fitted_alpha = fit_white_flicker(f, spectra)
    for row in range(rows):
        exponent = 1.0 if np.isnan(fitted_alpha[row]) else fitted_alpha[row]
        (w, k), cost = _nnls(f, spectra[row], exponent)
        scale = 1e-6 * spectra[row][spectra[row] > 0].min()  # terms below it do not matter
        np.testing.assert_allclose(fitted_white[row], w, rtol=1e-6, atol=scale)
        if not np.isnan(fitted_alpha[row]):  # (flicker at 1 Hz, the lowest frequency)
            np.testing.assert_allclose(fitted_flicker[row], k, rtol=1e-6, atol=scale)
            for other in (exponent - 0.05, exponent + 0.05):  # (an exact fit: rounding only)
                assert _nnls(f, spectra[row], other)[1] >= cost * (1 - 1e-9) or cost < 1e-20
    assert fitted_flicker[0] < 1e-6 * 3e-17  # white only: no flicker worth the name
