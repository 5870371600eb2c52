"""What a simulated chunk adds to its family's rows besides curves and currents: static power,
descriptors, how each instance ran, the down branch of a two-way sweep."""

from __future__ import annotations

import numpy as np

from circuitnn.extract.dc_chunk import ChunkResult
from circuitnn.family.descriptors import describe, hysteresis
from circuitnn.neuron.spec import NeuronSpec
from circuitnn.spice.bench_results import input_voltages


def static_power(
    spec: NeuronSpec, supply_current: np.ndarray, input_current: np.ndarray
) -> np.ndarray:
    """Static power (N×K, W) delivered by the supplies and the measured inputs."""
    volts = np.array(list(spec.ports.supplies.values()), dtype=np.float64)
    power = np.einsum("nsk,s->nk", supply_current, volts)
    power += np.einsum("nik,ik->nk", input_current, input_voltages(spec))
    return power


def chunk_descriptors(
    grid: np.ndarray, chunk: ChunkResult, power: np.ndarray
) -> dict[str, np.ndarray]:
    described = describe(grid, chunk.curves, power)
    if chunk.curves_down is not None:
        described["hysteresis"] = hysteresis(grid, chunk.curves, chunk.curves_down)
    described.update(chunk.devices)  # (realized device parameters: vth_*, id_*, gm_*)
    return described


def chunk_extra(chunk: ChunkResult) -> dict[str, np.ndarray]:
    """Per-instance arrays beyond the curves and currents: how each instance ran, the down
    branch of a two-way sweep."""
    extra = {"run_alone": np.asarray(chunk.alone, dtype=np.int8)}
    if chunk.curves_down is not None:
        extra["curves_down"] = chunk.curves_down
    return extra
