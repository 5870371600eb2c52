"""Render a batched test bench: many instances of one neuron sharing one swept input source.

Pure text generation: every number is formatted from a float, never pasted from user text.
Each instance *k* gets its own output node(s), supply sources and 0 V input sense sources, so its
curve, supply current and input current are its own; the input is one ideal source shared by all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from circuitnn.spec import NeuronSpec
from circuitnn.units import format_spice
from circuitnn.variation import ParameterTable

SWEEP_SOURCE = "vx"


@dataclass(frozen=True)
class Bench:
    """A rendered netlist and the vectors it saves (lower-case ngspice names)."""

    text: str
    instances: int
    output_vectors: tuple[tuple[str, ...], ...]
    supply_vectors: tuple[tuple[str, ...], ...]
    input_vectors: tuple[tuple[str, ...], ...]

    @property
    def vectors(self) -> list[str]:
        """Every vector to read back: outputs, supplies, inputs."""
        groups = (*self.output_vectors, *self.supply_vectors, *self.input_vectors)
        return [name for group in groups for name in group]


def _input_lines(spec: NeuronSpec) -> list[str]:
    sweep = spec.sweep
    if not spec.ports.differential_input:
        return [f"{SWEEP_SOURCE} x 0 DC {format_spice(sweep.start)}"]
    return [
        f"{SWEEP_SOURCE} x 0 DC {format_spice(sweep.start)}",
        f"vcm cm 0 DC {format_spice(sweep.common_mode)}",
        "einp inp cm x 0 0.5",
        "einn inn cm x 0 -0.5",
    ]


def input_nodes(spec: NeuronSpec) -> tuple[str, ...]:
    """The shared driven node of each input port (``x``, or ``inp`` and ``inn``)."""
    return ("inp", "inn") if spec.ports.differential_input else ("x",)


def _port_nodes(spec: NeuronSpec, k: int) -> list[str]:
    ports = spec.ports
    nodes = []
    for port in spec.subckt.ports:
        if port in ports.input:
            nodes.append(f"i{ports.input.index(port)}_{k}")
        elif port in ports.output:
            nodes.append(f"o{ports.output.index(port)}_{k}")
        elif port in ports.supplies:
            nodes.append(f"s_{port}_{k}")
        elif port in ports.ground:
            nodes.append("0")
        else:
            nodes.append(f"b_{port}")
    return nodes


def render_dc_bench(spec: NeuronSpec, table: ParameterTable) -> Bench:
    """The batched DC-sweep netlist for every row of ``table``."""
    ports = spec.ports
    lines = [
        f"* circuitnn batch: {spec.name}, {len(table)} instances",
        spec.netlist_text.rstrip(),
        "",
    ]
    lines += _input_lines(spec)
    lines += [
        f"vb_{port} b_{port} 0 DC {format_spice(volts)}" for port, volts in ports.bias.items()
    ]
    output_vectors = []
    supply_vectors = []
    input_vectors = []
    for k, row in enumerate(table.values):
        assignments = " ".join(
            f"{name}={format_spice(value)}" for name, value in zip(table.names, row, strict=True)
        )
        lines.append(f"xn{k} {' '.join(_port_nodes(spec, k))} {spec.subckt.name} {assignments}")
        supplies = []
        for port, volts in ports.supplies.items():
            lines.append(f"vs_{port}_{k} s_{port}_{k} 0 DC {format_spice(volts)}")
            supplies.append(f"i(vs_{port}_{k})")
        supply_vectors.append(tuple(supplies))
        senses = []
        for j, node in enumerate(input_nodes(spec)):
            lines.append(f"vi{j}_{k} {node} i{j}_{k} DC 0")
            senses.append(f"i(vi{j}_{k})")
        input_vectors.append(tuple(senses))
        if spec.output.quantity == "current":
            lines.append(f"vl_{k} o0_{k} 0 DC {format_spice(spec.output.load_voltage)}")
            output_vectors.append((f"i(vl_{k})",))
        else:
            output_vectors.append(tuple(f"v(o{j}_{k})" for j in range(len(ports.output))))
    groups = (*output_vectors, *supply_vectors, *input_vectors)
    names = [name for group in groups for name in group]
    sweep = spec.sweep
    # ngspice accumulates the sweep value (value += step) and ends once it passes stop by more
    # than ~2e-13, so rounding can drop the last point; half a step of headroom keeps exactly
    # sweep.points points
    lines += [
        f".temp {format_spice(spec.temperature)}",
        *(_wrap(".save", names)),
        f".dc {SWEEP_SOURCE} {format_spice(sweep.start)} "
        f"{format_spice(sweep.stop + sweep.step / 2)} {format_spice(sweep.step)}",
        ".end",
    ]
    return Bench(
        text="\n".join(lines) + "\n",
        instances=len(table),
        output_vectors=tuple(output_vectors),
        supply_vectors=tuple(supply_vectors),
        input_vectors=tuple(input_vectors),
    )


def _wrap(keyword: str, names: list[str], width: int = 200) -> list[str]:
    lines, current = [], keyword
    for name in names:
        if len(current) + len(name) + 1 > width and current != keyword:
            lines.append(current)
            current = keyword
        current += " " + name
    if current != keyword:
        lines.append(current)
    return lines


def _currents(
    groups: tuple[tuple[str, ...], ...], vectors: dict[str, np.ndarray], sign: float, points: int
) -> np.ndarray:
    width = len(groups[0]) if groups else 0
    data = [[sign * vectors[name] for name in group] for group in groups]
    return np.array(data, dtype=np.float64).reshape(len(groups), width, points)


def assemble(
    spec: NeuronSpec, bench: Bench, vectors: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-instance output curves (N×K), supply currents (N×S×K, A), input currents (N×I×K, A).

    Supply current is positive when the circuit draws it from the supply; input current is positive
    when it flows from the input driver into the input port.
    """
    outputs = []
    for group in bench.output_vectors:
        if spec.output.quantity == "differential_voltage":
            outputs.append(vectors[group[0]] - vectors[group[1]])
        elif spec.output.quantity == "current":
            # ngspice's source current flows + to − through the source: current leaving the neuron's
            # output port enters the load source's + terminal, which ngspice reports as positive.
            sign = -1.0 if spec.output.invert else 1.0
            outputs.append(sign * vectors[group[0]])
        else:
            outputs.append(vectors[group[0]])
    points = spec.sweep.points
    curves = np.asarray(outputs, dtype=np.float64).reshape(bench.instances, points)
    supplies = _currents(bench.supply_vectors, vectors, -1.0, points)
    inputs = _currents(bench.input_vectors, vectors, 1.0, points)
    return curves, supplies, inputs


def input_voltages(spec: NeuronSpec) -> np.ndarray:
    """Voltage of each input port along the sweep (I×K, V)."""
    grid = spec.sweep.grid()
    if spec.ports.differential_input:
        cm = spec.sweep.common_mode
        return np.stack([cm + grid / 2, cm - grid / 2])
    return grid[None, :]
