"""Speed of each instance: −3 dB bandwidth from its AC response, settling time from a step.

Pure numpy on arrays returned by the benches.
"""

from __future__ import annotations

import numpy as np


def bandwidth_3db(frequency: np.ndarray, response: np.ndarray) -> np.ndarray:
    """First frequency (Hz) where |H| falls 3 dB below its value at the lowest frequency.

    ``response`` (N×F) complex; interpolated in log f and dB; NaN where |H| never falls that far
    within the simulated range (the bandwidth is beyond ``frequency[-1]``) or H(f₀) = 0.
    """
    f = np.log10(np.asarray(frequency, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        db = 20 * np.log10(np.abs(response))
    drop = db - (db[:, :1] - 3.0103)
    below = drop < 0
    first = np.argmax(below, axis=1)
    found = below.any(axis=1) & (first > 0) & np.isfinite(db[:, 0])
    rows = np.arange(len(db))
    k = np.maximum(first, 1)
    d0, d1 = drop[rows, k - 1], drop[rows, k]
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = d0 / (d0 - d1)
    return np.where(found, 10 ** (f[k - 1] + fraction * (f[k] - f[k - 1])), np.nan)


def settling_time(
    time: np.ndarray, waveforms: np.ndarray, step_time: float, tolerance: float
) -> np.ndarray:
    """Time (s) after ``step_time`` from which each waveform stays within ``tolerance`` × its own
    step (final − initial value) of its final value; NaN if it never settles or does not step."""
    t = np.asarray(time, dtype=np.float64)
    y = np.asarray(waveforms, dtype=np.float64)
    initial = y[:, :1]
    final = y[:, -1:]
    step = np.abs(final - initial)
    outside = np.abs(y - final) > tolerance * step
    outside[:, t < step_time] = True
    reversed_outside = outside[:, ::-1]
    last_outside = y.shape[1] - 1 - np.argmax(reversed_outside, axis=1)
    settled_index = np.minimum(last_outside + 1, y.shape[1] - 1)
    rows = np.arange(len(y))
    # interpolate the crossing between the last point outside and the first inside the band
    k0, k1 = last_outside, settled_index
    e0 = np.abs(y[rows, k0] - final[:, 0]) - tolerance * step[:, 0]
    e1 = np.abs(y[rows, k1] - final[:, 0]) - tolerance * step[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.where(e0 != e1, e0 / (e0 - e1), 0.0)
    crossing = t[k0] + np.clip(fraction, 0, 1) * (t[k1] - t[k0])
    never = outside[:, -2] if y.shape[1] > 1 else np.ones(len(y), bool)
    flat = step[:, 0] <= 0
    return np.where(never | flat, np.nan, np.maximum(crossing - step_time, 0.0))


def bandwidth_reasons(frequency: np.ndarray, response: np.ndarray) -> list[str]:
    """Why :func:`bandwidth_3db` is NaN for each response ("" where it is not)."""
    found = np.isfinite(bandwidth_3db(frequency, response))
    low = np.abs(np.asarray(response)[:, 0])
    reasons = []
    for ok, gain in zip(found, low, strict=True):
        if ok:
            reasons.append("")
        elif not np.isfinite(gain) or gain == 0:
            reasons.append("bandwidth undefined: no small-signal gain at the bias (|H(fmin)| = 0)")
        else:
            reasons.append(
                f"bandwidth beyond fmax = {frequency[-1]:g} Hz: |H| stays within 3 dB of "
                "|H(fmin)| (no capacitance at the output? set output.load_capacitance or raise "
                "fmax)"
            )
    return reasons


def settling_reasons(
    time: np.ndarray, waveforms: np.ndarray, step_time: float, tolerance: float, rise_time: float
) -> list[str]:
    """Why each waveform's settling time is undefined ("" where it is defined): it does not
    step, never settles within the simulated time, or settles as fast as the input rises
    (``rise_time`` s) plus one time step: faster than the transient resolves."""
    t = np.asarray(time, dtype=np.float64)
    settled = settling_time(t, waveforms, step_time, tolerance)
    y = np.asarray(waveforms, dtype=np.float64)
    resolution = t[1] - t[0]
    reasons = []
    for value, row in zip(settled, y, strict=True):
        if not np.isfinite(value):
            if abs(row[-1] - row[0]) <= 0:
                reasons.append("settling time undefined: the output does not step")
            else:
                reasons.append(f"did not settle within the simulated {t[-1]:.3g} s")
        elif value <= rise_time + resolution:
            reasons.append(
                f"settles as fast as the input rises ({rise_time:.3g} s): faster than the "
                "transient resolves (no capacitance at the output?)"
            )
        else:
            reasons.append("")
    return reasons
