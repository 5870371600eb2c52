"""A family: every simulated instance of one neuron under one Monte Carlo run (plain numpy)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

OK, FAILED, RETRY = 1, 2, 3
"""Instance status: ok; failed (the circuit's own failure: no convergence, refused parameters,
…); failed for a reason outside the circuit (ngspice timed out or crashed): not final, simulated
again on the next run of the same family."""

STATUS_MEANING = (
    "1 = ok, 2 = failed (see failure_reason), "
    "3 = failed by a timeout or crash of ngspice (retried on the next run)"
)


@dataclass
class NoiseData:
    """Output noise of every instance at ``B`` bias points of the input sweep.

    ``bias`` (B,) V; ``frequency`` (F,) Hz; ``psd`` (N×B×F) output noise power spectral density
    in output unit²/Hz; ``input_psd`` (N×B×F) input-referred, V²/Hz; ``sigma`` (N×B) RMS output
    noise integrated over ``bandwidth`` (Hz), in the output unit; ``white`` (N×B), ``flicker``
    (N×B) and ``alpha`` (N×B): the fit S(f) = white + flicker/f^alpha over the signal band
    (``frequency`` ≤ ``bandwidth``). ``status`` (N,) 1 ok,
    2 failed (reason in ``reasons``; instances whose DC run failed are not simulated again);
    failed instances hold NaN. ``key`` names the analysis settings in the store.
    """

    bias: np.ndarray
    frequency: np.ndarray
    psd: np.ndarray
    input_psd: np.ndarray
    sigma: np.ndarray
    bandwidth: float
    white: np.ndarray
    flicker: np.ndarray
    alpha: np.ndarray
    status: np.ndarray
    reasons: list[str]
    key: str = ""

    def sigma_at(self, x: np.ndarray) -> np.ndarray:
        """σ_out of every instance at inputs ``x`` (V), linearly interpolated between bias points
        (held constant outside them); shape (N, len(x))."""
        x = np.asarray(x, dtype=np.float64)
        return np.stack([np.interp(x, self.bias, row) for row in self.sigma])


@dataclass
class SpeedData:
    """Small-signal bandwidth and large-signal settling of every instance.

    ``bias`` V where the AC analysis linearized; ``frequency`` (F,) Hz; ``response`` (N×F)
    complex small-signal gain (output unit per V); ``bandwidth`` (N,) −3 dB frequency in Hz (NaN
    if beyond ``frequency[-1]``); ``settling_time`` (N,) s after the input step (from the sweep's
    start to its stop at ``step_time``) until the output stays within ``tolerance`` of its own step;
    ``energy`` (N,) J = mean static power × settling time; ``status``/``reasons`` as in a family.
    """

    bias: float
    frequency: np.ndarray
    response: np.ndarray
    bandwidth: np.ndarray
    settling_time: np.ndarray
    energy: np.ndarray
    step_time: float
    stop_time: float
    tolerance: float
    status: np.ndarray
    reasons: list[str]
    key: str = ""


@dataclass
class Family:
    """Curves and measurements of ``n`` instances of one neuron on one input grid.

    Shapes: ``grid`` (K,) V; ``curves`` (N×K) in ``output_unit``; ``nominal_curve`` (K,);
    ``supply_current`` (N×S×K) A drawn from each supply; ``input_current`` (N×I×K) A flowing
    from the input driver into each input port (I = 0 unless ``ports.measure_input_current``, by
    default on only for neurons without supplies); ``power`` (N×K) W static power delivered by
    the supplies and the measured inputs;
    ``parameters`` (N×P) SI units, columns ``parameter_names``; ``chip`` (N,) die index;
    ``status`` (N,) 1 = ok, 2 = failed; ``reasons`` failure text per instance ("" when ok);
    ``descriptors`` name → (N,). ``attrs`` holds the provenance (spec, netlist, versions, seed).
    ``noise`` and ``speed`` hold those analyses when they were run (:class:`NoiseData`,
    :class:`SpeedData`). ``run_alone`` (N,) says whether and why each instance was simulated
    alone rather than in its batch (codes in ``attrs["run_alone_meaning"]``; None for families
    stored before 0.2). A family swept both ways (``attrs["direction"] == "both"``) holds its
    up-sweep branch in ``curves`` and its down-sweep branch in ``curves_down`` (N×K, same grid)
    and ``nominal_curve_down``; its ``descriptors["hysteresis"]`` is the window's width (V).
    """

    key: str
    neuron: str
    grid: np.ndarray
    curves: np.ndarray
    nominal_curve: np.ndarray
    supply_current: np.ndarray
    supplies: tuple[str, ...]
    input_current: np.ndarray
    power: np.ndarray
    parameter_names: tuple[str, ...]
    parameters: np.ndarray
    chip: np.ndarray
    status: np.ndarray
    reasons: list[str]
    descriptors: dict[str, np.ndarray]
    output_unit: str
    attrs: dict[str, Any] = field(default_factory=dict)
    noise: NoiseData | None = None
    speed: SpeedData | None = None
    run_alone: np.ndarray | None = None
    curves_down: np.ndarray | None = None
    nominal_curve_down: np.ndarray | None = None

    def branch(self, name: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The curves (N×K) and nominal curve (K,) of sweep branch ``name``: ``"up"``, ``"down"``
        or None (the family's main branch, ``curves``). :class:`ValueError` when the family has
        no such branch."""
        direction = str(self.attrs.get("direction", "up"))
        main = "down" if direction == "down" else "up"
        if name is None or name == main:
            return self.curves, self.nominal_curve
        if name == "down" and self.curves_down is not None and self.nominal_curve_down is not None:
            return self.curves_down, self.nominal_curve_down
        raise ValueError(
            f"family {self.key[:12]} was swept {direction!r}: it has no {name!r} branch "
            '(sweep.direction = "both" stores both)'
        )

    @property
    def n(self) -> int:
        """Number of instances (ok and failed)."""
        return len(self.status)

    @property
    def ok(self) -> np.ndarray:
        """Boolean mask of instances that simulated successfully."""
        return self.status == OK

    @property
    def failed(self) -> np.ndarray:
        """Indices of failed instances (whatever the cause)."""
        return np.flatnonzero(self.status != OK)

    def parameter(self, name: str) -> np.ndarray:
        """One column of the parameter table."""
        return self.parameters[:, self.parameter_names.index(name)]

    def device_trace(
        self, descriptor: str = "midpoint", confidence: float = 0.95
    ) -> list[dict[str, Any]]:
        """Which realized device parameter goes with ``descriptor`` across the ok instances:
        Pearson's r with its ``confidence`` interval per device parameter, the strongest first
        (see :func:`circuitnn.family.device_trace.device_trace`)."""
        from circuitnn.family.device_trace import device_trace

        return device_trace(self.descriptors, self.ok, descriptor, confidence)

    def summary(self) -> dict[str, dict[str, float]]:
        """Mean, standard deviation, min and max of each descriptor over the ok instances."""
        table = {}
        for name, values in self.descriptors.items():
            good = values[self.ok & np.isfinite(values)]
            if len(good) == 0:
                table[name] = {"mean": np.nan, "std": np.nan, "min": np.nan, "max": np.nan}
                continue
            table[name] = {
                "mean": float(np.mean(good)),
                "std": float(np.std(good, ddof=1)) if len(good) > 1 else 0.0,
                "min": float(np.min(good)),
                "max": float(np.max(good)),
            }
        return table
