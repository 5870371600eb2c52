"""Render a batched test bench: many instances of one neuron sharing one swept input source.

Pure text generation: every number is formatted from a float, never pasted from user text.
Each instance *k* gets its own output node(s) and supply sources, so its curve and supply current
are its own; the input is one ideal source shared by all instances.
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

    @property
    def vectors(self) -> list[str]:
        """Every vector to read back, outputs then supplies."""
        names = [name for group in self.output_vectors for name in group]
        return names + [name for group in self.supply_vectors for name in group]


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


def _port_nodes(spec: NeuronSpec, k: int) -> list[str]:
    ports = spec.ports
    nodes = []
    for port in spec.subckt.ports:
        if port in ports.input:
            nodes.append(
                "x" if not ports.differential_input else ("inp", "inn")[ports.input.index(port)]
            )
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
        if spec.output.quantity == "current":
            lines.append(f"vl_{k} o0_{k} 0 DC {format_spice(spec.output.load_voltage)}")
            output_vectors.append((f"i(vl_{k})",))
        else:
            output_vectors.append(tuple(f"v(o{j}_{k})" for j in range(len(ports.output))))
    names = [name for group in output_vectors for name in group]
    names += [name for group in supply_vectors for name in group]
    sweep = spec.sweep
    lines += [
        f".temp {format_spice(spec.temperature)}",
        *(_wrap(".save", names)),
        f".dc {SWEEP_SOURCE} {format_spice(sweep.start)} {format_spice(sweep.stop)} "
        f"{format_spice(sweep.step)}",
        ".end",
    ]
    return Bench(
        text="\n".join(lines) + "\n",
        instances=len(table),
        output_vectors=tuple(output_vectors),
        supply_vectors=tuple(supply_vectors),
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


def assemble(
    spec: NeuronSpec, bench: Bench, vectors: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-instance output curves (N×K) and supply currents drawn from each supply (N×S×K, A).

    Supply current is reported positive when the circuit draws current from the supply.
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
    supplies = np.array(
        [[-vectors[name] for name in group] for group in bench.supply_vectors], dtype=np.float64
    ).reshape(bench.instances, len(spec.ports.supplies), points)
    return np.asarray(outputs, dtype=np.float64).reshape(bench.instances, points), supplies
