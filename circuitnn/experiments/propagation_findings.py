"""The ``propagation`` experiment's per-configuration rows, findings and summary lines.

The rules are fixed here, before looking at any run's numbers. Each is decided from one value per
replicate (random networks: new weights, chips, inputs and draws; trained networks: new split,
initial weights and chip), with a 95 % interval over the replicates
(:mod:`circuitnn.experiments.stats`). "Every layer" configurations are those with noise after
every hidden layer (additive, multiplicative, each uncorrelated and correlated, and the circuits'
own noise).

1. *Prediction within 10 %* (random networks; and trained networks): per replicate, the largest
   ``|predicted/measured − 1|`` over the layers whose measured noise is at most 10 % of their
   signal; its mean over replicates is < 0.10 (layers with more noise are reported, not judged).
2. *Bounded accumulation* (random networks; and trained networks): in every "every layer"
   configuration the noise levels off: over the last two layers it grows per layer by less than
   half of what unbounded accumulation would add there — independent noise through unit-slope
   layers, ``σ_l = σ_1·√l``, grows by ``σ_1·(√L − √(L−2))/2`` per layer —, i.e. the contrast
   ``(σ_L − σ_{L−2})/2 − ½·σ_1·(√L − √(L−2))/2`` is < 0. (Measured against this fixed reference, a
   profile that has already converged by layer 3 counts as levelled off; comparing the end's
   growth with the start's could not show that, both being about zero.)
3. *Suppression where slopes < 1* (random networks): (a) for every family and noise kind, the
   last layer's noise at the gain below 1 over that at the gain above 1 is < 1; (b) a single
   source in layer 1 decays at the gain below 1 (σ_L / σ_1 < 1); (c) with additive noise at the
   gain below 1 the last layer's noise over the bound ``σ/√(1 − χ_max)`` of a linear recursion
   ``v_l = χ_l·v_{l−1} + σ²`` (χ_max the largest measured transfer < 1) is < 1.1.
4. *SNR levels off* (the study: more layers do not worsen the signal-to-noise ratio beyond a
   limit; random networks; and trained networks): in every "every layer" configuration the SNR
   lost per layer over the last two layers is less than half of what √l accumulation at a
   constant signal loses there (``10·log10(L/(L−2))/2`` dB per layer), i.e. the contrast
   ``loss_end − ½·10·log10(L/(L−2))/2`` (dB) is < 0.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np

from circuitnn.experiments.common import column, fmt
from circuitnn.experiments.result import Finding, Row
from circuitnn.experiments.stats import mean_effect, ratio_effect
from circuitnn.experiments.verdicts import Check, Rule

EVERY_LAYER = (
    "additive",
    "additive-correlated",
    "multiplicative",
    "multiplicative-correlated",
    "circuit",
)
ADDITIVE = ("additive", "additive-correlated")
PREDICTION = 0.10  # |predicted/measured − 1| allowed (noise ≤ 10 % of the signal)
BOUND_FACTOR = 1.1  # σ_L may exceed the linear recursion's bound by this factor


def _profile(rows: list[Row], key: str) -> np.ndarray:
    """Per layer (1…L), ``key`` (one replicate's rows)."""
    by_layer: dict[int, list[float]] = defaultdict(list)
    for row in rows:
        by_layer[row["layer"]].append(row[key])
    return np.array([float(np.mean(by_layer[layer])) for layer in sorted(by_layer)])


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
    """One row per (family, gain, kind, replicate): the noise at layer 1 and L, its growth, the
    steps and the levelling-off contrast, the transfer χ, the linear bound for additive noise,
    the worst prediction error and the SNR at layer 1 and L."""
    groups: dict[tuple[str, float, str, int], list[Row]] = defaultdict(list)
    for row in layers:
        groups[(row["family"], row["gain"], row["kind"], row["replicate"])].append(row)
    table = []
    for (family, gain, kind, replicate), rows in groups.items():
        measured, predicted = _profile(rows, "measured"), _profile(rows, "predicted")
        signal, transfer = _profile(rows, "signal"), _profile(rows, "transfer")
        snr = _snr_db(signal, measured)
        chi_max = float(np.max(transfer[1:]))
        bound = math.nan
        if kind in ADDITIVE:
            bound = settings.sigma / math.sqrt(1 - chi_max) if chi_max < 1 else math.inf
        small = [abs(r["ratio"] - 1) for r in rows if r["noise_to_signal"] <= 0.10]
        first_step, last_step = steps(measured)
        snr_first_loss, snr_last_loss = (-value for value in steps(snr))
        depth = len(measured)
        span = 2 if depth >= 4 else 1
        unbounded = measured[0] * (math.sqrt(depth) - math.sqrt(depth - span)) / span
        unbounded_snr = 10 * math.log10(depth / (depth - span)) / span
        table.append(
            {
                "family": family,
                "gain": gain,
                "kind": kind,
                "replicate": replicate,
                "sigma_first": float(measured[0]),
                "sigma_last": float(measured[-1]),
                "predicted_last": float(predicted[-1]),
                "growth": float(measured[-1] / measured[0]),
                "first_step": first_step,
                "last_step": last_step,
                "levelling": last_step - 0.5 * unbounded,
                "transfer_mean": float(np.mean(transfer[1:])),
                "transfer_max": chi_max,
                "linear_bound": bound,
                "bound_ratio": float(measured[-1] / bound) if kind in ADDITIVE else math.nan,
                "max_slope": float(max(r["max_slope"] for r in rows)),
                "rms_slope": float(np.mean([r["rms_slope"] for r in rows])),
                "worst_ratio": float(max(abs(r["ratio"] - 1) for r in rows)),
                "worst_ratio_small_noise": float(max(small)) if small else math.nan,
                "signal_first": float(signal[0]),
                "signal_last": float(signal[-1]),
                "snr_first_db": float(snr[0]),
                "snr_last_db": float(snr[-1]),
                "snr_first_loss_db": snr_first_loss,
                "snr_last_loss_db": snr_last_loss,
                "snr_levelling_db": snr_last_loss - 0.5 * unbounded_snr,
                "circuit_scale": float(np.mean([r["circuit_scale"] for r in rows])),
            }
        )
    return table


def _name(row: Row) -> str:
    return f"{row['family']} g={row['gain']:g} {row['kind']}"


def _cases(configurations: list[Row], kinds: tuple[str, ...]) -> list[tuple[str, float, str]]:
    return list(
        dict.fromkeys(
            (r["family"], r["gain"], r["kind"]) for r in configurations if r["kind"] in kinds
        )
    )


def _prediction(layers: list[Row], what: str) -> Finding:
    worst = []
    for replicate in sorted({r["replicate"] for r in layers}):
        small = [
            abs(r["ratio"] - 1)
            for r in layers
            if r["replicate"] == replicate and r["noise_to_signal"] <= 0.10
        ]
        worst.append(max(small) if small else math.nan)
    overall = max(layers, key=lambda row: abs(row["ratio"] - 1))
    return Finding.judged(
        f"{what}: per-layer noise is predicted analytically within 10 % of Monte Carlo (layers "
        "with noise ≤ 10 % of the signal)",
        [
            Check(
                mean_effect(worst, "worst |predicted/measured − 1| per replicate"),
                Rule("less", PREDICTION),
            )
        ],
        f"{sum(1 for r in layers if r['noise_to_signal'] <= 0.10)} of {len(layers)} layer rows "
        f"judged; over all rows the worst is {abs(overall['ratio'] - 1):.3f} ({_name(overall)}, "
        f"layer {overall['layer']}, noise {overall['noise_to_signal']:.2g}× the signal)",
    )


def _bounded(configurations: list[Row], depth: int, what: str) -> Finding:
    checks = [
        Check(
            mean_effect(
                column(configurations, "levelling", family=f, gain=g, kind=k),
                f"{f} g={g:g} {k}: end growth/layer − ½ unbounded",
            ),
            Rule("less", 0.0),
        )
        for f, g, k in _cases(configurations, EVERY_LAYER)
    ]
    growth = [r["growth"] for r in configurations if r["kind"] in EVERY_LAYER]
    return Finding.judged(
        f"{what}: noise accumulation over depth is bounded (noise levels off with depth, every "
        "configuration)",
        checks,
        f"σ_L/σ_1 from {min(growth):.2f} to {max(growth):.2f} (unit-slope accumulation: "
        f"√{depth} = {math.sqrt(depth):.2f}, still growing)",
    )


def _suppressed(configurations: list[Row], settings: Any) -> Finding:
    low, high = settings.gains
    checks = []
    families = list(dict.fromkeys(r["family"] for r in configurations))
    kinds = list(dict.fromkeys(r["kind"] for r in configurations))
    for family in families:
        for kind in kinds:
            a = column(configurations, "sigma_last", family=family, gain=low, kind=kind)
            b = column(configurations, "sigma_last", family=family, gain=high, kind=kind)
            if len(a) and len(b):
                checks.append(
                    Check(
                        ratio_effect(a, b, f"(a) {family} {kind}: σ_L g={low:g} / g={high:g}"),
                        Rule("less", 1.0),
                    )
                )
        single = dict(family=family, gain=low, kind="single-source")
        last, first = (
            column(configurations, "sigma_last", **single),
            column(configurations, "sigma_first", **single),
        )
        if len(last):
            checks.append(
                Check(
                    ratio_effect(last, first, f"(b) {family} single source σ_L/σ_1 at g={low:g}"),
                    Rule("less", 1.0),
                )
            )
        for kind in ADDITIVE:
            ratio = column(configurations, "bound_ratio", family=family, gain=low, kind=kind)
            if len(ratio):
                checks.append(
                    Check(
                        mean_effect(ratio, f"(c) {family} {kind}: σ_L / linear bound at g={low:g}"),
                        Rule("less", BOUND_FACTOR),
                    )
                )
    return Finding.judged(
        "noise is suppressed where the activation slopes are below 1 ((a) less noise at the gain "
        "below 1, (b) a single source decays, (c) within the linear recursion's bound)",
        checks,
    )


def _snr(configurations: list[Row], settings: Any, what: str) -> Finding:
    checks = [
        Check(
            mean_effect(
                column(configurations, "snr_levelling_db", family=f, gain=g, kind=k),
                f"{f} g={g:g} {k}: SNR loss/layer at the end − ½ unbounded (dB)",
            ),
            Rule("less", 0.0),
        )
        for f, g, k in _cases(configurations, EVERY_LAYER)
    ]
    notes = "; ".join(
        f"{_name(r)}: signal {r['signal_first']:.2g} → {r['signal_last']:.2g}, SNR "
        f"{r['snr_first_db']:.1f} → {r['snr_last_db']:.1f} dB"
        for r in configurations
        if r["kind"] == "additive" and r["replicate"] == 0
    )
    return Finding.judged(
        f"{what}: the signal-to-noise ratio levels off with depth (more layers do not keep "
        "worsening it, every configuration)",
        checks,
        f"first replicate, additive: {notes}",
    )


def findings(
    layers: list[Row],
    configurations: list[Row],
    trained_layers: list[Row],
    trained_configurations: list[Row],
    settings: Any,
) -> list[Finding]:
    """The findings of the module docstring, decided from the run's rows."""
    random, trained = "random networks", "trained networks"
    result = [
        _prediction(layers, random),
        _bounded(configurations, settings.depth, random),
        _suppressed(configurations, settings),
        _snr(configurations, settings, random),
    ]
    if trained_layers:
        result += [
            _prediction(trained_layers, trained),
            _bounded(trained_configurations, settings.trained_depth, trained),
            _snr(trained_configurations, settings, trained),
        ]
    return result


def summary_lines(
    layers: list[Row],
    configurations: list[Row],
    trained_configurations: list[Row],
    settings: Any,
    replicates: int,
    seconds: float,
) -> list[str]:
    """A few lines: the setup, then per family and gain the transfer and the additive profile
    (means over replicates)."""
    lines = [
        f"{replicates} replicates; random networks (not trained; weights N(0, 1/fan_in), biases "
        f"0, inputs N(0, 1)): {settings.depth} hidden layers × {settings.width} circuit neurons, "
        f"{settings.samples} input samples, {settings.draws} noise draws; noise σ = "
        f"{settings.sigma:g} after every layer (ρ = {settings.correlation:g} for the correlated "
        f"kinds); gains {settings.gains[0]:g} and {settings.gains[1]:g} via "
        f"Scaling.input_scale. Trained networks: {settings.trained_depth} × "
        f"{settings.trained_width} on digits ({settings.trained_epochs} epochs), test images "
        "as inputs.",
    ]
    for name, table in (("random", configurations), ("trained", trained_configurations)):
        for family, gain, kind in _cases(table, ("additive",)):
            rows = [r for r in table if (r["family"], r["gain"], r["kind"]) == (family, gain, kind)]
            mean = {
                key: float(np.mean([r[key] for r in rows]))
                for key in (
                    "transfer_mean",
                    "sigma_first",
                    "sigma_last",
                    "predicted_last",
                    "snr_first_db",
                    "snr_last_db",
                )
            }
            lines.append(
                f"{name} {family} g={gain:g}: transfer χ = {mean['transfer_mean']:.2f}; additive σ "
                f"{fmt(mean['sigma_first'])} → {fmt(mean['sigma_last'])} (predicted "
                f"{fmt(mean['predicted_last'])}); SNR {mean['snr_first_db']:.1f} → "
                f"{mean['snr_last_db']:.1f} dB"
            )
    ratios = np.array([row["ratio"] for row in layers])
    lines.append(
        f"predicted/measured σ over {len(ratios)} random-network layer rows: "
        f"{ratios.min():.3f} … {ratios.max():.3f}"
    )
    lines.append(f"{seconds:.1f} s")
    return lines
