"""Pictures of families and sweeps (matplotlib, written to PNG files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from circuitnn._matplotlib import pyplot
from circuitnn.errors import ConfigError
from circuitnn.family import Family

FAN_CURVES = 200


_HISTOGRAMS = ("swing", "midpoint", "gain", "mean_power")


DESCRIPTOR_LABELS = {
    "swing": "output swing [{unit}]",
    "midpoint": "midpoint / threshold [V]",
    "gain": "small-signal gain at midpoint [{unit}/V]",
    "max_slope": "max |slope| [{unit}/V]",
    "mean_power": "mean static power [W]",
}


# the file types matplotlib's Agg backend writes
PICTURE_TYPES = ("png", "pdf", "svg", "jpg", "jpeg", "tif", "tiff", "webp", "eps", "ps")


def picture_path(path: str | Path) -> Path:
    """The file a picture asked for at ``path`` is written to: ``.png`` added when the name has
    no extension; :class:`ConfigError` for an extension matplotlib cannot write."""
    path = Path(path)
    if not path.suffix:
        return path.with_name(path.name + ".png")
    if path.suffix[1:].lower() not in PICTURE_TYPES:
        raise ConfigError(
            f"picture {path}: unknown file type {path.suffix!r}; use one of "
            f"{', '.join('.' + kind for kind in PICTURE_TYPES)}"
        )
    return path


def plot_family(family: Family, path: str | Path) -> Path:
    """Write a PNG: fan of curves (nominal highlighted) and descriptor histograms; return path."""
    plt = pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(
        1, 1 + len(_HISTOGRAMS), figsize=(4.2 * (1 + len(_HISTOGRAMS)), 3.8)
    )
    fan = axes[0]
    ok = np.flatnonzero(family.ok)
    shown = ok[:: max(1, len(ok) // FAN_CURVES)]
    scale, unit = _scale(family.curves[ok] if len(ok) else family.nominal_curve, family.output_unit)
    for row in shown:
        fan.plot(family.grid, family.curves[row] * scale, color="tab:blue", alpha=0.12, lw=0.8)
    fan.plot(family.grid, family.nominal_curve * scale, color="black", lw=2.0, label="nominal")
    fan.set_xlabel("input [V]")
    fan.set_ylabel(f"output [{unit}]")
    fan.set_title(
        f"{family.neuron}: {len(shown)} of {family.n} curves ({len(family.failed)} failed)"
    )
    fan.legend(loc="best", fontsize=8)
    fan.grid(alpha=0.3)
    for axis, name in zip(axes[1:], _HISTOGRAMS, strict=True):
        values = family.descriptors.get(name, np.array([]))
        values = values[family.ok & np.isfinite(values)] if len(values) else values
        if len(values):
            _histogram(axis, values, "tab:orange")
        axis.set_xlabel(DESCRIPTOR_LABELS[name].format(unit=family.output_unit))
        axis.set_ylabel("instances")
        if len(values) > 1:
            axis.set_title(f"mean {values.mean():.4g}, σ {values.std(ddof=1):.3g}", fontsize=9)
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _scale(values: np.ndarray, unit: str) -> tuple[float, str]:
    peak = float(np.nanmax(np.abs(values))) if np.size(values) else 1.0
    for factor, prefix in ((1.0, ""), (1e3, "m"), (1e6, "µ"), (1e9, "n")):
        if peak * factor >= 1.0:
            return factor, prefix + unit
    return 1e9, "n" + unit


def plot_noise(family: Family, path: str | Path) -> Path:
    """PNG: PSD fan at the bias nearest the midpoint, σ_out versus bias with spread band."""
    plt = pyplot()
    noise = family.noise
    if noise is None:
        raise ValueError("family has no noise analysis")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure, (fan, band) = plt.subplots(1, 2, figsize=(10, 3.8))
    ok = np.flatnonzero(noise.status == 1)
    middle = np.nanmedian(family.descriptors["midpoint"][family.ok]) if family.ok.any() else 0.0
    column = int(np.argmin(np.abs(noise.bias - middle))) if np.isfinite(middle) else 0
    for row in ok[:: max(1, len(ok) // FAN_CURVES)]:
        fan.loglog(noise.frequency, noise.psd[row, column], color="tab:purple", alpha=0.15, lw=0.8)
    if len(ok):
        median = np.median(noise.psd[ok, column], axis=0)
        fan.loglog(noise.frequency, median, color="black", lw=2, label="median")
        fan.legend(fontsize=8)
    fan.axvline(noise.bandwidth, color="gray", ls="--", lw=1)
    fan.set_xlabel("frequency [Hz]")
    fan.set_ylabel(f"output noise PSD [{family.output_unit}²/Hz]")
    fan.set_title(f"{family.neuron}: PSD at x = {noise.bias[column]:+.3g} V", fontsize=10)
    fan.grid(alpha=0.3, which="both")
    if len(ok):
        sigma = noise.sigma[ok]
        mean, spread = sigma.mean(axis=0), sigma.std(axis=0)
        band.plot(noise.bias, mean, marker="o", color="tab:purple", label="mean")
        band.fill_between(
            noise.bias,
            mean - spread,
            mean + spread,
            alpha=0.3,
            color="tab:purple",
            label="± σ over instances",
        )
        band.legend(fontsize=8)
    band.set_xlabel("input bias [V]")
    band.set_ylabel(f"σ_out over {noise.bandwidth:g} Hz [{family.output_unit}]")
    band.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_speed(family: Family, path: str | Path) -> Path:
    """PNG: histograms of −3 dB bandwidth, settling time and energy per activation."""
    plt = pyplot()
    speed = family.speed
    if speed is None:
        raise ValueError("family has no speed analysis")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(1, 3, figsize=(12.6, 3.6))
    ok = speed.status == 1
    for axis, name, label in zip(
        axes,
        ("bandwidth", "settling_time", "energy"),
        (
            "−3 dB bandwidth [Hz]",
            f"settling time to {speed.tolerance:.0%} [s]",
            "energy per activation [J]",
        ),
        strict=True,
    ):
        values = getattr(speed, name)[ok]
        values = values[np.isfinite(values)]
        if len(values):
            _histogram(axis, values, "tab:green")
            axis.set_title(f"mean {values.mean():.4g}, σ {values.std():.3g}", fontsize=9)
        else:
            axis.text(0.5, 0.5, "beyond the simulated range", ha="center", transform=axis.transAxes)
        axis.set_xlabel(label)
        axis.set_ylabel("instances")
        axis.grid(alpha=0.3)
    figure.suptitle(f"{family.neuron}: speed (AC at x = {speed.bias:+.3g} V)", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _histogram(axis: Any, values: np.ndarray, color: str) -> None:
    """A histogram that also copes with values equal to within a few ulps (numpy cannot split
    such a range into bins: e.g. the gain of an ideal linear stage, 1 ± 1e-16)."""
    bins = min(60, max(10, len(values) // 20))
    low, high = float(values.min()), float(values.max())
    span = 1e-9 * max(abs(low), abs(high))
    if high - low <= span:
        middle, pad = 0.5 * (low + high), span or 1.0
        axis.hist(values, bins=bins, range=(middle - pad, middle + pad), color=color)
    else:
        axis.hist(values, bins=bins, color=color)


def plot_all(family: Family, path: str | Path) -> list[Path]:
    """The family picture at ``path`` (see :func:`picture_path`), plus ``…-noise``/``…-speed``
    pictures of the same type when analysed; the files written."""
    path = picture_path(path)
    pictures = [plot_family(family, path)]
    if family.noise is not None:
        noise = path.with_name(f"{path.stem}-noise{path.suffix}")
        pictures.append(plot_noise(family, noise))
    if family.speed is not None:
        speed = path.with_name(f"{path.stem}-speed{path.suffix}")
        pictures.append(plot_speed(family, speed))
    return pictures
