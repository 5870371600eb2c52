"""Noise, AC and step-response runs of one chunk of instances (each instance isolated on failure).

Each function returns plain arrays (instance-major) plus ``status`` and ``reasons``, ready to be
journaled; the pure post-processing lives in :mod:`circuitnn.extract.spectra` and
:mod:`circuitnn.extract.response`.
"""

from __future__ import annotations

import numpy as np

from circuitnn.errors import ConfigError, SimulationError
from circuitnn.extract.isolation import Isolated, run_isolated
from circuitnn.extract.operating_point import branch_values, off_branch
from circuitnn.extract.spectra import device_instances, device_totals, instance_psd, unattributed
from circuitnn.neuron.spec import NeuronSpec
from circuitnn.neuron.variation import ParameterTable
from circuitnn.spice import get_engine
from circuitnn.spice.analyses import NoiseAnalysis, SpeedAnalysis
from circuitnn.spice.bench_results import output_signals
from circuitnn.spice.benches import (
    NOISE_FILES,
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
    branch: np.ndarray | None = None,
    direction: str = "up",
    expected: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Output noise PSD and squared small-signal gain |H|² (N×B×F; the gain only when the analysis
    is input-referred) of every row at every bias.

    One ngspice run per chunk does a ``.noise`` and an ``.ac`` at each bias (the AC response
    refers the output noise to the input: S_in = S_out/|H|²). Also returns ``frequency`` (N×F).
    ``branch`` (N×K): each row's stored DC curve, swept ``direction``; the operating point at
    each bias is checked against it: a row off its curve in the batch runs alone, its output
    held at the curve's value while the operating point is found (voltage outputs), and fails
    with the reason if it is off alone too. ``expected``, in place of ``branch``: what
    :func:`~circuitnn.extract.operating_point.branch_values` makes of the curves at the analysis'
    biases (three N×B arrays, V or A): a task that carries these instead of the curves is
    K/(3B) times smaller. A row whose devices'
    noise cannot all be attributed, or that has no noise at all, fails with the reason.
    """
    biases = analysis.biases(spec)
    points = frequency_points(analysis.fmin, analysis.fmax, analysis.points_per_decade)
    grid = spec.sweep.grid()
    if branch is not None:
        if expected is not None:
            raise ConfigError(
                "a noise chunk takes its stored branch as curves or as values, not both"
            )
        expected = branch_values(grid, branch, biases, direction)
    nodesets = expected[0] if expected is not None and spec.output.quantity == "voltage" else None
    current = spec.output.quantity == "current"
    suspects: set[int] = set()

    def run(rows: np.ndarray, what: str) -> dict[str, np.ndarray]:
        # a batch is not held (its circuit is read once for every bias); a row off its branch
        # in it runs again alone, held there
        held = None if nodesets is None or len(rows) > 1 else nodesets[rows]
        bench, sources, files = render_noise_bench(spec, table.rows(rows), analysis, biases, held)
        plots = run_script(bench.text, files, timeout, what, sources, bench.includes, len(biases))
        psd, gain, operating = [], [], []
        noise_file, ac_file, op_file = NOISE_FILES
        names = list(plots[noise_file][0].vectors)  # the same circuit at every bias
        totals = device_totals(names)
        devices = device_instances(names, len(rows), totals)
        failure = np.full(len(rows), "", dtype=object)
        for j in range(len(biases)):
            noise_vectors = plots[noise_file][j].vectors
            if list(noise_vectors) != names:
                raise SimulationError(f"{what}: bias {j} saved other noise vectors than bias 0")
            missing = unattributed(noise_vectors, totals)
            if missing > 1e-6:
                failure[:] = (
                    f"noise at {biases[j]:g} V: the devices' noise found adds up to "
                    f"{100 * (1 - missing):.4g} % of ngspice's total (unknown vector names)"
                )
            psd.append(instance_psd(noise_vectors, len(rows), devices))
            if analysis.input_referred:
                gain.append(np.abs(output_signals(spec, bench, plots[ac_file][j].vectors)) ** 2)
            operating.append(np.real(output_signals(spec, bench, plots[op_file][j].vectors))[:, 0])
        psd_rows = np.stack(psd, axis=1)
        silent = ~np.any(psd_rows > 0, axis=(1, 2))
        failure[silent & (failure == "")] = "no device of this instance makes noise (PSD = 0)"
        if expected is not None:
            _, low, high = expected
            off = off_branch(
                np.stack(operating, axis=1), low[rows], high[rows], spec.simulator, current
            )
            for k in np.flatnonzero(off.any(axis=1)):
                j = int(np.argmax(off[k]))
                if len(rows) > 1:
                    suspects.add(int(rows[k]))
                elif not failure[k]:
                    failure[k] = (
                        f"operating point at {biases[j]:g} V is off the stored DC curve "
                        f"({operating[j][k]:.6g} vs {low[rows[k], j]:.6g}…"
                        f"{high[rows[k], j]:.6g}), alone too"
                    )
        frequency = np.real(noise_vectors["frequency"])
        produced = {
            "psd": psd_rows,
            "frequency": np.broadcast_to(frequency, (len(rows), len(frequency))),
            "failure": failure,
        }
        if gain:
            produced["gain"] = np.stack(gain, axis=1)
        return produced

    shapes = {"psd": (len(biases), points), "frequency": (points,)}
    if analysis.input_referred:
        shapes["gain"] = (len(biases), points)
    isolated = run_isolated(spec.name, table.index, shapes, run, retries)
    for row in sorted(suspects):  # off its branch in the batch: alone now

        def single(_rows: np.ndarray, what: str, row: int = row) -> dict[str, np.ndarray]:
            return run(np.array([row]), what)

        alone = run_isolated(spec.name, table.index[[row]], shapes, single, retries)
        for name, values in alone.arrays.items():
            isolated.arrays[name][row] = values[0]
        isolated.status[row], isolated.reasons[row] = alone.status[0], alone.reasons[0]
    return _packed(isolated)


def simulate_ac_chunk(
    spec: NeuronSpec,
    table: ParameterTable,
    analysis: SpeedAnalysis,
    bias: float,
    engine: str = "subprocess",
    timeout: float = 300.0,
    retries: int = 1,
    nodesets: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Small-signal response (N×F complex, output unit/V) at input ``bias`` and ``frequency``
    (each row's output node held at ``nodesets`` V while the operating point is found)."""
    points = frequency_points(analysis.fmin, analysis.fmax, analysis.points_per_decade)
    solver = get_engine(engine)

    def run(rows: np.ndarray, what: str) -> dict[str, np.ndarray]:
        held = None if nodesets is None else nodesets[rows]
        bench = render_ac_bench(spec, table.rows(rows), analysis, bias, held)
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
    nodesets: np.ndarray | None = None,
    direction: str = "up",
) -> dict[str, np.ndarray]:
    """Output waveforms (N×T) after an input step across the sweep (``direction``), resampled
    on a uniform ``time`` grid (T,); each row's output node held at ``nodesets`` V while the
    initial operating point is found."""
    solver = get_engine(engine)
    time_grid = np.linspace(0.0, stop_time, 2001)

    def run(rows: np.ndarray, what: str) -> dict[str, np.ndarray]:
        held = None if nodesets is None else nodesets[rows]
        bench = render_step_bench(
            spec, table.rows(rows), step_time, rise_time, stop_time, held, direction
        )
        saved = ["time", *bench.output_names]
        vectors = solver.run(bench.text, saved, None, timeout, what, bench.includes)
        waveforms = output_signals(spec, bench, vectors)
        time = np.real(vectors["time"])
        return {"waveform": np.stack([np.interp(time_grid, time, row) for row in waveforms])}

    isolated = run_isolated(spec.name, table.index, {"waveform": (len(time_grid),)}, run, retries)
    packed = _packed(isolated)
    packed["time"] = time_grid
    return packed
