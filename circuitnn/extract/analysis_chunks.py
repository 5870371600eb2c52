"""Noise, AC and step-response runs of one chunk of instances (each instance isolated on failure).

Each function returns plain arrays (instance-major) plus ``status`` and ``reasons``, ready to be
journaled; the pure post-processing lives in :mod:`circuitnn.extract.spectra` and
:mod:`circuitnn.extract.response`.
"""

from __future__ import annotations

import numpy as np

from circuitnn.extract.isolation import Isolated, run_isolated
from circuitnn.extract.spectra import device_instances, instance_psd
from circuitnn.neuron.spec import NeuronSpec
from circuitnn.neuron.variation import ParameterTable
from circuitnn.spice import get_engine
from circuitnn.spice.analyses import NoiseAnalysis, SpeedAnalysis
from circuitnn.spice.benches import (
    output_signals,
    render_ac_bench,
    render_noise_bench,
    render_step_bench,
)
from circuitnn.spice.engines import run_script


def frequency_points(fmin: float, fmax: float, points_per_decade: int) -> int:
    """How many points ngspice's ``dec`` sweep from ``fmin`` to ``fmax`` has."""
    return int(np.floor(np.log10(fmax / fmin) * points_per_decade + 1e-9)) + 1


def _packed(isolated: Isolated) -> dict[str, np.ndarray]:
    return {
        **isolated.arrays,
        "status": isolated.status,
        "reasons": np.array(isolated.reasons, dtype=np.str_),
    }


def simulate_noise_chunk(
    spec: NeuronSpec,
    table: ParameterTable,
    analysis: NoiseAnalysis,
    timeout: float = 300.0,
    retries: int = 1,
) -> dict[str, np.ndarray]:
    """Output noise PSD and squared small-signal gain |H|² (N×B×F; the gain only when the analysis
    is input-referred) of every row at every bias.

    One ngspice run per chunk does a ``.noise`` and an ``.ac`` at each bias (the AC response
    refers the output noise to the input: S_in = S_out/|H|²). Also returns ``frequency`` (N×F).
    """
    biases = analysis.biases(spec)
    points = frequency_points(analysis.fmin, analysis.fmax, analysis.points_per_decade)

    def run(rows: np.ndarray, what: str) -> dict[str, np.ndarray]:
        bench, files = render_noise_bench(spec, table.rows(rows), analysis, biases)
        names = [f for pair in files for f in pair if f]
        plots = run_script(bench.text, names, timeout, what, bench.includes)
        psd, gain = [], []
        devices = device_instances(list(plots[files[0][0]][0].vectors), len(rows))
        for noise_file, ac_file in files:
            noise_vectors = plots[noise_file][0].vectors
            psd.append(instance_psd(noise_vectors, len(rows), devices))
            if ac_file:
                gain.append(np.abs(output_signals(spec, bench, plots[ac_file][0].vectors)) ** 2)
        frequency = np.real(noise_vectors["frequency"])
        produced = {
            "psd": np.stack(psd, axis=1),
            "frequency": np.broadcast_to(frequency, (len(rows), len(frequency))),
        }
        if gain:
            produced["gain"] = np.stack(gain, axis=1)
        return produced

    shapes = {"psd": (len(biases), points), "frequency": (points,)}
    if analysis.input_referred:
        shapes["gain"] = (len(biases), points)
    return _packed(run_isolated(spec.name, table.index, shapes, run, retries))


def simulate_ac_chunk(
    spec: NeuronSpec,
    table: ParameterTable,
    analysis: SpeedAnalysis,
    bias: float,
    engine: str = "subprocess",
    timeout: float = 300.0,
    retries: int = 1,
) -> dict[str, np.ndarray]:
    """Small-signal response (N×F complex, output unit/V) at input ``bias`` and ``frequency``."""
    points = frequency_points(analysis.fmin, analysis.fmax, analysis.points_per_decade)
    solver = get_engine(engine)

    def run(rows: np.ndarray, what: str) -> dict[str, np.ndarray]:
        bench = render_ac_bench(spec, table.rows(rows), analysis, bias)
        saved = ["frequency", *bench.output_names]
        vectors = solver.run(bench.text, saved, None, timeout, what, bench.includes)
        frequency = np.real(vectors["frequency"])
        return {
            "response": output_signals(spec, bench, vectors),
            "frequency": np.broadcast_to(frequency, (len(rows), len(frequency))).astype(complex),
        }

    shapes = {"response": (points,), "frequency": (points,)}
    isolated = run_isolated(spec.name, table.index, shapes, run, retries, dtype=np.complex128)
    packed = _packed(isolated)
    packed["frequency"] = np.real(packed["frequency"])
    return packed


def simulate_step_chunk(
    spec: NeuronSpec,
    table: ParameterTable,
    step_time: float,
    rise_time: float,
    stop_time: float,
    engine: str = "subprocess",
    timeout: float = 300.0,
    retries: int = 1,
) -> dict[str, np.ndarray]:
    """Output waveforms (N×T) after an input step, resampled on a uniform ``time`` grid (T,)."""
    solver = get_engine(engine)
    time_grid = np.linspace(0.0, stop_time, 2001)

    def run(rows: np.ndarray, what: str) -> dict[str, np.ndarray]:
        bench = render_step_bench(spec, table.rows(rows), step_time, rise_time, stop_time)
        saved = ["time", *bench.output_names]
        vectors = solver.run(bench.text, saved, None, timeout, what, bench.includes)
        waveforms = output_signals(spec, bench, vectors)
        time = np.real(vectors["time"])
        return {"waveform": np.stack([np.interp(time_grid, time, row) for row in waveforms])}

    isolated = run_isolated(spec.name, table.index, {"waveform": (len(time_grid),)}, run, retries)
    packed = _packed(isolated)
    packed["time"] = time_grid
    return packed
