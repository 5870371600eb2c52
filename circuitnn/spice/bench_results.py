"""Read a rendered bench's results back: the vectors ngspice saved for a
:class:`~circuitnn.spice.benches.Bench` turned into each instance's output, supply currents and
input currents, with the sign conventions of a family (and the input voltages they go with)."""

from __future__ import annotations

import numpy as np

from circuitnn.neuron.spec import NeuronSpec
from circuitnn.spice.benches import Bench


def output_signals(spec: NeuronSpec, bench: Bench, vectors: dict[str, np.ndarray]) -> np.ndarray:
    """Each instance's output quantity from raw vectors (N×points; complex for AC)."""
    groups = bench.output_vectors

    def column(j: int) -> np.ndarray:  # vector j of every instance (N×points, one copy)
        return np.asarray([vectors[group[j]] for group in groups])

    if spec.output.quantity == "differential_voltage":
        return column(0) - column(1)
    if spec.output.quantity == "current":
        return (-1.0 if spec.output.invert else 1.0) * column(0)
    return column(0)


def _currents(
    groups: tuple[tuple[str, ...], ...], vectors: dict[str, np.ndarray], sign: float, points: int
) -> np.ndarray:
    width = len(groups[0]) if groups else 0
    data = np.array([vectors[name] for group in groups for name in group], dtype=np.float64)
    return (sign * data).reshape(len(groups), width, points)


def assemble(
    spec: NeuronSpec, bench: Bench, vectors: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-instance output curves (N×K), supply currents (N×S×K, A), input currents (N×I×K, A).

    Supply current is positive when the circuit draws it from the supply; input current is positive
    when it flows from the input driver into the input port.
    """
    # ngspice's source current flows + to − through the source: current leaving the neuron's
    # output port enters the load source's + terminal, which ngspice reports as positive.
    outputs = output_signals(spec, bench, vectors)
    points = spec.sweep.points
    curves = np.asarray(outputs, dtype=np.float64).reshape(bench.instances, points)
    supplies = _currents(bench.supply_vectors, vectors, -1.0, points)
    inputs = _currents(bench.input_vectors, vectors, 1.0, points)
    return curves, supplies, inputs


def input_voltages(spec: NeuronSpec) -> np.ndarray:
    """Voltage of each measured input port along the sweep (I×K, V; I = 0 when not measured)."""
    grid = spec.sweep.grid()
    if not spec.ports.input_measured:
        return np.zeros((0, len(grid)))
    if spec.ports.differential_input:
        cm = spec.sweep.common_mode
        return np.stack([cm + grid / 2, cm - grid / 2])
    return grid[None, :]
