"""The batched test bench: one shared swept source, per-instance nodes; every sweep point."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from helpers import build_spec, data_spec, spec_data

from circuitnn.errors import ConfigError
from circuitnn.extract.dc_chunk import simulate_chunk
from circuitnn.neuron.builtin import get_neuron
from circuitnn.neuron.variation import MonteCarlo, nominal_table, sample_parameters
from circuitnn.spice.benches import render_dc_bench


def test_bench_batches_instances_on_one_swept_source() -> None:
    spec = data_spec("divider")
    table = sample_parameters(spec, MonteCarlo(n=5, seed=0))
    bench = render_dc_bench(spec, table)
    lines = bench.text.splitlines()
    assert bench.instances == 5
    assert sum(line.startswith(".dc ") for line in lines) == 1
    assert sum(line.lower().startswith("xn") for line in lines) == 5
    assert lines[-1] == ".end"
    # every sampled value reaches the netlist with full precision (repr round-trips)
    for k, row in enumerate(table.values):
        instance = next(line for line in lines if line.startswith(f"xn{k} "))
        assigned = dict(word.split("=") for word in instance.split() if "=" in word)
        assert list(assigned) == list(table.names)
        for name, value in zip(table.names, row, strict=True):
            assert float(assigned[name]) == value
    assert len(bench.output_vectors) == len(bench.supply_vectors) == 5
    assert len(set(bench.vectors)) == len(bench.vectors)
    assert ".control" not in bench.text.lower()


@pytest.mark.parametrize(
    ("start", "stop", "points"),
    [
        (-2.9, -2.075, 1325),  # ngspice's accumulated sweep value used to overshoot the stop
        (-1.0, 3.0, 41),
        (0.0, 1.8, 361),
        (-0.25, 0.25, 401),
        (0.1, 0.7, 2),
        (-3.0, 1.9, 2999),
    ],
)
def test_every_sweep_point_comes_back(start: float, stop: float, points: int) -> None:
    data = spec_data("divider")
    data["sweep"] = {"start": start, "stop": stop, "points": points}
    spec = build_spec(data)
    result = simulate_chunk(spec, nominal_table(spec))
    assert result.status[0] == 1, result.reasons[0]
    grid = spec.sweep.grid()
    assert len(grid) == points
    np.testing.assert_allclose(result.curves[0], 0.75 * grid, rtol=1e-9, atol=1e-12)


def test_input_currents_are_measured_only_where_the_input_powers_the_neuron() -> None:
    for name, measured in (("diode_relu", True), ("mirror_relu", True), ("mos_diffpair", False)):
        spec = get_neuron(name)
        assert spec.ports.input_measured is measured
        bench = render_dc_bench(spec, sample_parameters(spec, MonteCarlo(3)))
        senses = [line for line in bench.text.splitlines() if line.startswith("vi")]
        assert len(senses) == (3 * len(spec.ports.input) if measured else 0)
        assert all(
            len(group) == (len(spec.ports.input) if measured else 0)
            for group in bench.input_vectors
        )


def test_a_nul_in_a_name_or_a_non_finite_parameter_is_refused() -> None:
    """Every instance's lines come from one template in which NUL stands for its number: a
    name holding NUL is a one-line ConfigError, as is a parameter that is not a number."""
    spec = get_neuron("mos_diffpair_level1")
    table = sample_parameters(spec, MonteCarlo(n=4, seed=0), 0, 3)
    named = dataclasses.replace(spec, subckt=dataclasses.replace(spec.subckt, name="dp\0x"))
    with pytest.raises(ConfigError, match="name holds a NUL"):
        render_dc_bench(named, table)
    with pytest.raises(ConfigError, match="name holds a NUL"):
        render_dc_bench(spec, dataclasses.replace(table, names=("w\0", *table.names[1:])))
    values = table.values.copy()
    values[2, 3] = np.inf
    with pytest.raises(ConfigError, match="cannot write non-finite value inf"):
        render_dc_bench(spec, dataclasses.replace(table, values=values))
