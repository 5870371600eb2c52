"""The ``propagation`` experiment's per-configuration summary, findings and summary lines.

The rules are fixed here, before looking at any run's numbers:

1. *Prediction within 10 %*: over every layer whose measured noise is at most 10 % of its signal,
   the largest ``|predicted/measured − 1|`` is at most 0.10 (layers with more noise are reported,
   not judged).
2. *Bounded accumulation*: in every configuration with noise in every layer, the noise levels
   off: its growth per layer over the last two layers is at most half its growth per layer over
   the first two, ``(σ_L − σ_{L−2})/2 ≤ ½·max((σ_3 − σ_1)/2, 0)`` (plus twice the Monte Carlo
   error of σ_L). Unit-slope layers, where independent noise adds up as ``σ·√l``, fail this rule
   at depth 8 (``√8 − √6 > ½(√3 − 1)``).
3. *Suppression where slopes < 1*: (a) for every family and noise kind the last layer's noise is
   lower at the gain below 1 than at the gain above 1; (b) a single source in layer 1 decays
   (``σ_L < σ_1``) at the gain below 1; (c) with additive noise at the gain below 1 the last
   layer's noise stays within 1.1× the bound ``σ/√(1 − χ_max)`` of a linear recursion
   ``v_l = χ_l·v_{l−1} + σ²`` with the largest measured transfer χ_max < 1.
4. *SNR levels off* (the study: more layers do not worsen the signal-to-noise ratio beyond a
   limit): in every configuration with noise in every layer, the SNR (dB) lost per layer over the
   last two layers is at most half of that lost per layer over the first two (plus 0.2 dB).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np

from circuitnn.experiments.result import Finding, Row

EVERY_LAYER = (
    "additive",
    "additive-correlated",
    "multiplicative",
    "multiplicative-correlated",
    "circuit",
)
ADDITIVE = ("additive", "additive-correlated")


def _mean(rows: list[Row], key: str) -> float:
    values = [row[key] for row in rows if row[key] is not None and math.isfinite(row[key])]
    return float(np.mean(values)) if values else math.nan


def _profile(rows: list[Row], key: str) -> np.ndarray:
    """Per layer (1…L), the mean of ``key`` over the networks."""
    by_layer: dict[int, list[Row]] = defaultdict(list)
    for row in rows:
        by_layer[row["layer"]].append(row)
    return np.array([_mean(by_layer[layer], key) for layer in sorted(by_layer)])


def _snr_db(signal: np.ndarray, noise: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return 20 * np.log10(signal / noise)


def steps(profile: np.ndarray) -> tuple[float, float]:
    """The change per layer over the first and over the last two layers (one if only 2–3)."""
    span = 2 if len(profile) >= 4 else 1
    first = (profile[span] - profile[0]) / span
    last = (profile[-1] - profile[-1 - span]) / span
    return float(first), float(last)


def configuration_rows(layers: list[Row], settings: Any) -> list[Row]:
    """One row per (family, gain, kind): the noise at layer 1 and L (mean over networks), its
    growth, the transfer χ, the linear bound for additive noise, the worst prediction error and
    the SNR at layer 1 and L."""
    groups: dict[tuple[str, float, str], list[Row]] = defaultdict(list)
    for row in layers:
        groups[(row["family"], row["gain"], row["kind"])].append(row)
    table = []
    for (family, gain, kind), rows in groups.items():
        measured, predicted = _profile(rows, "measured"), _profile(rows, "predicted")
        signal, transfer = _profile(rows, "signal"), _profile(rows, "transfer")
        error = _profile(rows, "mc_error")
        snr = _snr_db(signal, measured)
        chi_max = float(np.max(transfer[1:]))
        bound = math.nan
        if kind in ADDITIVE:
            bound = settings.sigma / math.sqrt(1 - chi_max) if chi_max < 1 else math.inf
        small = [abs(r["ratio"] - 1) for r in rows if r["noise_to_signal"] <= 0.10]
        first_step, last_step = steps(measured)
        snr_first_loss, snr_last_loss = (-value for value in steps(snr))
        slack = 2 * error[-1] * measured[-1]
        table.append(
            {
                "family": family,
                "gain": gain,
                "kind": kind,
                "sigma_first": float(measured[0]),
                "sigma_last": float(measured[-1]),
                "predicted_last": float(predicted[-1]),
                "growth": float(measured[-1] / measured[0]),
                "first_step": float(first_step),
                "last_step": float(last_step),
                "bounded": bool(last_step <= 0.5 * max(first_step, 0.0) + slack),
                "transfer_mean": float(np.mean(transfer[1:])),
                "transfer_max": chi_max,
                "linear_bound": bound,
                "within_bound": bool(measured[-1] <= 1.1 * bound) if kind in ADDITIVE else None,
                "max_slope": float(max(r["max_slope"] for r in rows)),
                "rms_slope": _mean(rows, "rms_slope"),
                "worst_ratio": float(max(abs(r["ratio"] - 1) for r in rows)),
                "worst_ratio_small_noise": float(max(small)) if small else math.nan,
                "signal_first": float(signal[0]),
                "signal_last": float(signal[-1]),
                "snr_first_db": float(snr[0]),
                "snr_last_db": float(snr[-1]),
                "snr_first_loss_db": snr_first_loss,
                "snr_last_loss_db": snr_last_loss,
                "snr_levels_off": bool(snr_last_loss <= 0.5 * max(snr_first_loss, 0.0) + 0.2),
                "circuit_scale": _mean(rows, "circuit_scale"),
            }
        )
    return table


def _name(row: Row) -> str:
    return f"{row['family']} g={row['gain']:g} {row['kind']}"


def _prediction(layers: list[Row]) -> Finding:
    small = [row for row in layers if row["noise_to_signal"] <= 0.10]
    worst_all = max(layers, key=lambda row: abs(row["ratio"] - 1))
    beyond = [row for row in layers if abs(row["ratio"] - 1) > 0.10]
    text_all = (
        f"over all {len(layers)} layer rows (noise up to "
        f"{max(row['noise_to_signal'] for row in layers):.2g}× the signal) the worst is "
        f"{abs(worst_all['ratio'] - 1):.3f} ({_name(worst_all)}, layer {worst_all['layer']}, "
        f"noise {worst_all['noise_to_signal']:.2g}× the signal); {len(beyond)} rows beyond 10 %"
    )
    if not small:
        return Finding(
            "per-layer noise is predicted analytically within 10 % of Monte Carlo",
            False,
            "no layer had noise ≤ 10 % of its signal; " + text_all,
        )
    worst = max(small, key=lambda row: abs(row["ratio"] - 1))
    deviation = abs(worst["ratio"] - 1)
    return Finding(
        "per-layer noise is predicted analytically within 10 % of Monte Carlo "
        "(noise ≤ 10 % of the signal)",
        deviation <= 0.10,
        f"{len(small)} layer rows with noise ≤ 10 % of the signal: worst |predicted/measured − 1|"
        f" = {deviation:.3f} ({_name(worst)}, layer {worst['layer']}, Monte Carlo error "
        f"{worst['mc_error']:.3f}); " + text_all,
    )


def _bounded(configurations: list[Row], depth: int) -> Finding:
    rows = [row for row in configurations if row["kind"] in EVERY_LAYER]
    failing = [row for row in rows if not row["bounded"]]
    detail = "; ".join(
        f"{_name(row)}: σ {row['sigma_first']:.3g} → {row['sigma_last']:.3g} "
        f"(+{row['last_step']:.2g}/layer at the end vs +{row['first_step']:.2g} at the start, "
        f"χ {row['transfer_mean']:.2f})"
        for row in failing
    )
    growth = [row["growth"] for row in rows]
    return Finding(
        "noise accumulation over depth is bounded (noise levels off with depth)",
        not failing,
        f"{len(rows) - len(failing)} of {len(rows)} configurations level off; σ_L/σ_1 from "
        f"{min(growth):.2f} to {max(growth):.2f} (unit-slope accumulation: √{depth} = "
        f"{math.sqrt(depth):.2f}, still growing)"
        + (f"; still growing: {detail}" if failing else ""),
    )


def _suppressed(configurations: list[Row], settings: Any) -> Finding:
    low, high = settings.gains
    index = {(r["family"], r["gain"], r["kind"]): r for r in configurations}
    families = sorted({r["family"] for r in configurations})
    kinds = sorted({r["kind"] for r in configurations}, key=lambda k: (k == "single-source", k))
    compare, ordered = [], True
    for family in families:
        for kind in kinds:
            a, b = index.get((family, low, kind)), index.get((family, high, kind))
            if a is None or b is None:
                continue
            ordered &= a["sigma_last"] < b["sigma_last"]
            compare.append(f"{family} {kind} {a['sigma_last']:.3g} vs {b['sigma_last']:.3g}")
    decays = [
        index[(f, low, "single-source")] for f in families if (f, low, "single-source") in index
    ]
    decay_ok = all(row["sigma_last"] < row["sigma_first"] for row in decays)
    decay_text = "; ".join(
        f"{row['family']} {row['sigma_first']:.3g} → {row['sigma_last']:.3g} at g={low:g}"
        f" vs {index[(row['family'], high, 'single-source')]['sigma_first']:.3g} → "
        f"{index[(row['family'], high, 'single-source')]['sigma_last']:.3g} at g={high:g}"
        for row in decays
        if (row["family"], high, "single-source") in index
    )
    bounded = [index[(f, low, k)] for f in families for k in ADDITIVE if (f, low, k) in index]
    bound_ok = all(row["within_bound"] for row in bounded)
    bound_text = "; ".join(
        f"{_name(row)} σ_L {row['sigma_last']:.3g} ≤ {row['linear_bound']:.3g} "
        f"(χ_max {row['transfer_max']:.2f}, max slope {row['max_slope']:.2f})"
        for row in bounded
    )
    return Finding(
        "noise is suppressed where the activation slopes are below 1",
        bool(ordered and decay_ok and bound_ok),
        f"(a) last-layer σ at g={low:g} vs g={high:g}: {'; '.join(compare)}"
        f" — {'all lower' if ordered else 'NOT all lower'}; (b) single source in layer 1: "
        f"{decay_text} — {'decays' if decay_ok else 'does NOT decay'} at g={low:g}; "
        f"(c) linear bound σ/√(1−χ_max): {bound_text} — "
        f"{'within 1.1×' if bound_ok else 'NOT within 1.1×'}",
    )


def _snr(configurations: list[Row], settings: Any) -> Finding:
    rows = [row for row in configurations if row["kind"] in EVERY_LAYER]
    failing = [row for row in rows if not row["snr_levels_off"]]
    low = settings.gains[0]
    lows = [row for row in rows if row["gain"] == low and row["kind"] == "additive"]
    detail = "; ".join(
        f"{_name(row)}: SNR {row['snr_first_db']:.1f} → {row['snr_last_db']:.1f} dB, signal "
        f"{row['signal_first']:.2g} → {row['signal_last']:.2g}"
        for row in failing
    )
    note = "; ".join(
        f"{row['family']} additive at g={low:g}: signal {row['signal_first']:.2g} → "
        f"{row['signal_last']:.2g}, SNR {row['snr_first_db']:.1f} → {row['snr_last_db']:.1f} dB"
        for row in lows
    )
    return Finding(
        "the signal-to-noise ratio levels off with depth (more layers do not keep worsening it)",
        not failing,
        f"{len(rows) - len(failing)} of {len(rows)} configurations level off"
        + (f"; still falling: {detail}" if failing else "")
        + f". In these random (untrained) networks the slopes that suppress the noise shrink the "
        f"signal as well: {note}",
    )


def findings(layers: list[Row], configurations: list[Row], settings: Any) -> list[Finding]:
    """The four findings of the module docstring, decided from the run's rows."""
    return [
        _prediction(layers),
        _bounded(configurations, settings.depth),
        _suppressed(configurations, settings),
        _snr(configurations, settings),
    ]


def summary_lines(
    layers: list[Row], configurations: list[Row], settings: Any, seconds: float
) -> list[str]:
    """A few lines: the setup, then per family and gain the transfer and the additive profile."""
    lines = [
        f"{settings.networks} random network(s) per configuration (not trained; weights "
        f"N(0, 1/fan_in), biases 0, inputs N(0, 1)): {settings.depth} hidden layers × "
        f"{settings.width} circuit neurons, {settings.samples} input samples, {settings.draws} "
        f"noise draws; noise σ = {settings.sigma:g} after every layer (ρ = "
        f"{settings.correlation:g} for the correlated kinds); gains {settings.gains[0]:g} and "
        f"{settings.gains[1]:g} via Scaling.input_scale.",
    ]
    for row in configurations:
        if row["kind"] != "additive":
            continue
        lines.append(
            f"{row['family']} g={row['gain']:g}: transfer χ = {row['transfer_mean']:.2f} "
            f"(max slope {row['max_slope']:.2f}); additive σ {row['sigma_first']:.3g} → "
            f"{row['sigma_last']:.3g} over {settings.depth} layers (predicted "
            f"{row['predicted_last']:.3g}); SNR {row['snr_first_db']:.1f} → "
            f"{row['snr_last_db']:.1f} dB"
        )
    ratios = np.array([row["ratio"] for row in layers])
    small = np.array([row["ratio"] for row in layers if row["noise_to_signal"] <= 0.10])
    lines.append(
        f"predicted/measured σ over {len(ratios)} layer rows: {ratios.min():.3f} … "
        f"{ratios.max():.3f} (noise ≤ 10 % of the signal: "
        + (f"{small.min():.3f} … {small.max():.3f}, {len(small)} rows)" if len(small) else "none)")
    )
    lines.append(f"{seconds:.1f} s")
    return lines
