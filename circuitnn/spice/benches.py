"""Render a batched test bench: many instances of one neuron sharing one swept input source.

Pure text generation: every number is formatted from a float, never pasted from user text.
Each instance *k* gets its own output node(s), supply sources and 0 V input sense sources, so its
curve, supply current and input current are its own; the input is one ideal source shared by all.
"""

from __future__ import annotations

import dataclasses
import operator
from dataclasses import dataclass

import numpy as np

from circuitnn.errors import ConfigError
from circuitnn.neuron.devices import records_devices
from circuitnn.neuron.includes import IncludedFile
from circuitnn.neuron.safety import check_spec
from circuitnn.neuron.spec import NeuronSpec
from circuitnn.neuron.units import format_spice
from circuitnn.neuron.variation import ParameterTable
from circuitnn.spice.analyses import NoiseAnalysis, SpeedAnalysis

SWEEP_SOURCE = "vx"
_K = "\0"  # stands for an instance's number in the lines of the instance template

# Options every bench sets besides the spec's own (part of every family's key, through
# :func:`bench_identity`). ``noopiter``: ngspice looks for an operating point by gmin stepping at
# once, skipping its direct Newton attempt, which fails on most batched neurons after up to
# itl1 = 100 iterations (and is retried by gmin stepping anyway). Measured bit-identical on every
# built-in neuron; 6 % less ngspice time on the level-1 diff pair's DC sweep, 23 % on its noise
# runs (three operating points per bias). Left out when the spec sets ``gminsteps = 0`` (gmin
# stepping off: the direct attempt is then the first method) and from benches that hold outputs
# with ``.nodeset`` (only the direct attempt honours a nodeset; measured: a Schmitt trigger's
# noise bench lands on the other branch with noopiter).
NOOPITER = "noopiter"


def bench_options(spec: NeuronSpec) -> tuple[str, ...]:
    """The option cards a bench of ``spec`` sets besides its ``[simulator]`` ones."""
    return () if dict(spec.simulator.options).get("gminsteps") == 0 else (NOOPITER,)


def _option_cards(spec: NeuronSpec) -> list[str]:
    """The cards of :func:`bench_options`, for a bench without ``.nodeset`` cards (ngspice
    honours a nodeset only in its direct Newton attempt: gmin stepping would ignore it)."""
    return [f".options {option}" for option in bench_options(spec)]


def bench_identity(spec: NeuronSpec) -> dict[str, object]:
    """What the benches add that changes results (for the family key): options and revision
    (realized devices are read with the benches' options since revision 2, which moves their
    values in the last digits)."""
    identity: dict[str, object] = {"options": list(bench_options(spec))}
    if records_devices(spec):
        identity["devices"] = 2
    return identity


@dataclass(frozen=True)
class Bench:
    """A rendered netlist, the vectors it saves (lower-case ngspice names) and the files it
    includes (written into ngspice's run folder by the engine)."""

    text: str
    instances: int
    output_vectors: tuple[tuple[str, ...], ...]
    supply_vectors: tuple[tuple[str, ...], ...]
    input_vectors: tuple[tuple[str, ...], ...]
    includes: tuple[IncludedFile, ...] = ()

    @property
    def output_names(self) -> list[str]:
        """The output vectors only."""
        return [name for group in self.output_vectors for name in group]

    @property
    def vectors(self) -> list[str]:
        """Every vector to read back: outputs, supplies, inputs."""
        groups = (*self.output_vectors, *self.supply_vectors, *self.input_vectors)
        return [name for group in groups for name in group]


def _differential_drive(spec: NeuronSpec) -> list[str]:
    """E sources driving inp/inn at common mode ± x/2 from the swept node ``x``."""
    if not spec.ports.differential_input:
        return []
    return [
        f"vcm cm 0 DC {format_spice(spec.sweep.common_mode)}",
        "einp inp cm x 0 0.5",
        "einn inn cm x 0 -0.5",
    ]


def input_nodes(spec: NeuronSpec) -> tuple[str, ...]:
    """The shared driven node of each input port (``x``, or ``inp`` and ``inn``)."""
    return ("inp", "inn") if spec.ports.differential_input else ("x",)


def _port_nodes(spec: NeuronSpec, k: int | str, measured: bool = True) -> list[str]:
    ports = spec.ports
    nodes = []
    for port in spec.subckt.ports:
        if port in ports.input:
            index = ports.input.index(port)
            sensed = measured and ports.input_measured
            nodes.append(f"i{index}_{k}" if sensed else input_nodes(spec)[index])
        elif port in ports.output:
            nodes.append(f"o{ports.output.index(port)}_{k}")
        elif port in ports.supplies:
            nodes.append(f"s_{port}_{k}" if measured else f"s_{port}")
        elif port in ports.ground:
            nodes.append("0")
        else:
            nodes.append(f"b_{port}")
    return nodes


def _circuit(
    spec: NeuronSpec, table: ParameterTable, input_source: str, measured: bool = True
) -> tuple[list[str], Bench]:
    """Netlist lines of the instances around the shared input, and the vectors they expose.

    ``measured``: every instance gets its own supply sources and 0 V input-sense sources, so its
    supply and input currents can be read. Without it (small-signal and transient benches, which
    read only outputs) instances share one ideal source per supply and connect to the input
    directly: the same circuit for every instance, with fewer unknowns for ngspice. The spec's
    netlist passes the safety check first (:func:`~circuitnn.neuron.safety.check_spec`): every
    route to ngspice goes through here.
    """
    check_spec(spec)
    ports = spec.ports
    lines = [
        # (one comment line, whatever the name holds: a spec built in Python is not validated)
        f"* circuitnn batch: {' '.join(str(spec.name).split())}, {len(table)} instances",
        spec.netlist_text.rstrip(),
        "",
        input_source,
        *_differential_drive(spec),
    ]
    lines += [
        f"vb_{port} b_{port} 0 DC {format_spice(volts)}" for port, volts in ports.bias.items()
    ]
    # every instance's lines and vectors are one template, _K standing for its number
    head = f"xn{_K} {' '.join(_port_nodes(spec, _K, measured))} {spec.subckt.name} "
    block: list[str] = []
    supplies: list[str] = []
    senses: list[str] = []
    if measured:
        for port, volts in ports.supplies.items():
            block.append(f"vs_{port}_{_K} s_{port}_{_K} 0 DC {format_spice(volts)}")
            supplies.append(f"i(vs_{port}_{_K})")
        for j, node in enumerate(input_nodes(spec) if ports.input_measured else ()):
            block.append(f"vi{j}_{_K} {node} i{j}_{_K} DC 0")
            senses.append(f"i(vi{j}_{_K})")
    outputs = _outputs(spec, _K, block)
    names = (spec.subckt.name, *spec.subckt.ports, *ports.supplies, *table.names)
    if any(_K in name for name in names):
        raise ConfigError(f"{spec.name}: a subcircuit, port or parameter name holds a NUL")
    head_parts, tail_parts = head.split(_K), "".join(f"\n{line}" for line in block).split(_K)
    values = np.asarray(table.values, dtype=np.float64)
    if not np.isfinite(values).all():
        format_spice(float(values[~np.isfinite(values)][0]))  # raises, naming the value
    if len(values) and values.shape[1:] != (len(table.names),):
        raise ValueError(f"{len(table.names)} parameter names for {values.shape[1:]} columns")
    prefixes = [f"{name}=" for name in table.names]
    numbers = [str(k) for k in range(len(values))]
    for number, row in zip(numbers, values.tolist(), strict=True):
        assignments = " ".join(map(operator.add, prefixes, map(repr, row)))
        lines.append(number.join(head_parts) + assignments + number.join(tail_parts))
    output_vectors = _numbered(outputs, numbers)
    supply_vectors = _numbered(tuple(supplies), numbers) if measured else []
    input_vectors = _numbered(tuple(senses), numbers) if measured else []
    if not measured:
        lines += [
            f"vs_{port} s_{port} 0 DC {format_spice(v)}" for port, v in ports.supplies.items()
        ]
    lines.append(f".temp {format_spice(spec.temperature)}")
    lines.append(spec.simulator.card())
    bench = Bench(
        text="",
        instances=len(table),
        output_vectors=tuple(output_vectors),
        supply_vectors=tuple(supply_vectors),
        input_vectors=tuple(input_vectors),
        includes=tuple(spec.includes),
    )
    return lines, bench


def _numbered(names: tuple[str, ...], numbers: list[str]) -> list[tuple[str, ...]]:
    """``names`` (with :data:`_K` for the instance's number) of each instance ``numbers``."""
    columns = [[number.join(name.split(_K)) for number in numbers] for name in names]
    return list(zip(*columns, strict=True)) if columns else [()] * len(numbers)


def _outputs(spec: NeuronSpec, k: int | str, lines: list[str]) -> tuple[str, ...]:
    """Add instance ``k``'s output load to ``lines``; return the vectors of its output."""
    if spec.output.quantity == "current":
        lines.append(f"vl_{k} o0_{k} 0 DC {format_spice(spec.output.load_voltage)}")
        return (f"i(vl_{k})",)
    load = spec.output.load_capacitance
    outputs = range(len(spec.ports.output))
    lines += [f"cl{j}_{k} o{j}_{k} 0 {format_spice(load)}" for j in outputs if load > 0]
    return tuple(f"v(o{j}_{k})" for j in outputs)


def _finish(lines: list[str], bench: Bench) -> Bench:
    return dataclasses.replace(bench, text="\n".join([*lines, ".end"]) + "\n")


def render_dc_bench(spec: NeuronSpec, table: ParameterTable, direction: str = "up") -> Bench:
    """The batched DC-sweep netlist for every row of ``table``, sweeping ``direction`` (``"up"``
    from the sweep's start to its stop, ``"down"`` from its stop to its start; the vectors then
    come back in that order)."""
    sweep = spec.sweep
    first, last, step = sweep.start, sweep.stop, sweep.step
    if direction == "down":
        first, last, step = sweep.stop, sweep.start, -sweep.step
    elif direction != "up":
        raise ValueError(f"direction must be 'up' or 'down', got {direction!r}")
    lines, bench = _circuit(spec, table, f"{SWEEP_SOURCE} x 0 DC {format_spice(first)}")
    # ngspice accumulates the sweep value (value += step) and ends once it passes stop by more
    # than ~2e-13, so rounding can drop the last point; half a step of headroom keeps exactly
    # sweep.points points
    lines += [
        *_option_cards(spec),
        *(_wrap(".save", bench.vectors)),
        f".dc {SWEEP_SOURCE} {format_spice(first)} "
        f"{format_spice(last + step / 2)} {format_spice(step)}",
    ]
    return _finish(lines, bench)


def _sum_chain(spec: NeuronSpec, instances: int) -> list[str]:
    """Sources making node ``sum`` equal Σ outputs (V, or A × 1 Ω for current outputs).

    Every instance injects a current equal to its output into one 1 Ω resistor (a star, not a
    chain of series E sources: a chain's N series nodes make ngspice's per-frequency solves grow
    faster than N; the star keeps the bench O(N)). The resistor's own noise belongs to no
    instance (it is not inside an ``xn…`` subcircuit).
    """
    lines = []
    for k in range(instances):
        if spec.output.quantity == "current":
            lines.append(f"fsum{k} 0 sum vl_{k} 1")
        elif spec.output.quantity == "differential_voltage":
            lines.append(f"gsum{k} 0 sum o0_{k} o1_{k} 1")
        else:
            lines.append(f"gsum{k} 0 sum o0_{k} 0 1")
    lines.append("rsum sum 0 1")
    return lines


def _decade(analysis: NoiseAnalysis | SpeedAnalysis) -> str:
    return (
        f"dec {analysis.points_per_decade} {format_spice(analysis.fmin)} "
        f"{format_spice(analysis.fmax)}"
    )


def nodeset_lines(bench: Bench, values: np.ndarray | None) -> list[str]:
    """``.nodeset`` cards holding each instance's output node at ``values`` (one per instance,
    V) while ngspice looks for the operating point, so it settles on that branch of a circuit
    with several (None, or a non-voltage output: none)."""
    if values is None:
        return []
    pairs = [
        f"v({group[0][2:-1]})={format_spice(float(value))}"
        for group, value in zip(bench.output_vectors, values, strict=True)
        if len(group) == 1 and group[0].startswith("v(") and np.isfinite(value)
    ]
    return _wrap(".nodeset", pairs)


NOISE_FILES = ("noise.raw", "ac.raw", "op.raw")
"""The raw files of a noise bench: noise spectra, AC response, operating point; one plot per
bias in each."""


def render_noise_bench(
    spec: NeuronSpec,
    table: ParameterTable,
    analysis: NoiseAnalysis,
    biases: np.ndarray,
    nodesets: np.ndarray | None = None,
) -> tuple[Bench, dict[str, str], list[str]]:
    """Noise (and AC) at every bias in one ngspice run, driven by a control script. Returns the
    script (``text``, with the instances' vector names), the circuits it sources (file name →
    netlist) and the raw files it writes (:data:`NOISE_FILES`: the noise spectra, the AC
    response when the analysis is input-referred, the operating point of the outputs), each
    with one plot per bias, in the order of ``biases`` (``set appendwrite``: three files per
    chunk, not three per bias).

    The circuit is read once and its input source altered to each bias in turn; where each
    instance's output node is set to ``nodesets[:, j]`` V while the operating point at bias j is
    found, every bias has a circuit of its own (``.nodeset`` cannot be altered)."""
    control = [f"* circuitnn noise: {' '.join(str(spec.name).split())}", ".control"]
    control += ["set filetype=binary", "set appendwrite"]
    placeholder = f"{SWEEP_SOURCE} x 0 DC 0 AC 1"
    circuit, bench = _circuit(spec, table, placeholder, measured=False)
    circuit += _sum_chain(spec, len(table))
    at = circuit.index(placeholder)
    held = [
        nodeset_lines(bench, None if nodesets is None else nodesets[:, j])
        for j in range(len(biases))
    ]

    def netlist(bias: float, cards: list[str]) -> str:
        lines = list(circuit)
        lines[at] = f"{SWEEP_SOURCE} x 0 DC {format_spice(bias)} AC 1"
        return "\n".join([*lines, *cards, ".end"]) + "\n"

    one_circuit = not any(held)
    sources: dict[str, str] = {}
    if one_circuit:
        sources["circuit.cir"] = netlist(float(biases[0]), _option_cards(spec))
        control.append("source circuit.cir")
    noise_file, ac_file, op_file = NOISE_FILES
    files = [noise_file, *([ac_file] if analysis.input_referred else []), op_file]
    for j, bias in enumerate(biases):
        if one_circuit:
            control.append(f"alter {SWEEP_SOURCE} dc = {format_spice(float(bias))}")
        else:
            sources[f"bias{j}.cir"] = netlist(float(bias), held[j] or _option_cards(spec))
            control.append(f"source bias{j}.cir")
        control += [
            f"noise v(sum) {SWEEP_SOURCE} {_decade(analysis)} 1",
            "setplot previous",
            f"write {noise_file} all",
            "destroy all",
            # the noise run needs the whole circuit saved (a save list drops its device
            # vectors); the AC run and the operating point keep only the outputs
            *_wrap("save", bench.output_names),
        ]
        if analysis.input_referred:
            control += [f"ac {_decade(analysis)}", f"write {ac_file} all", "destroy all"]
        control += ["op", f"write {op_file} all", "destroy all"]
        control.append("delete all" if one_circuit else "remcirc")  # (delete: the save list)
    control += ["quit", ".endc", ".end"]
    return dataclasses.replace(bench, text="\n".join(control) + "\n"), sources, files


def render_ac_bench(
    spec: NeuronSpec,
    table: ParameterTable,
    analysis: SpeedAnalysis,
    bias: float,
    nodesets: np.ndarray | None = None,
) -> Bench:
    """Small-signal AC response of every output at input ``bias`` (V), each instance's output
    node set to ``nodesets`` V (one per instance) while the operating point is found."""
    source = f"{SWEEP_SOURCE} x 0 DC {format_spice(bias)} AC 1"
    lines, bench = _circuit(spec, table, source, measured=False)
    lines += [
        *(nodeset_lines(bench, nodesets) or _option_cards(spec)),
        *_wrap(".save", bench.output_names),
        f".ac {_decade(analysis)}",
    ]
    return _finish(lines, bench)


def render_step_bench(
    spec: NeuronSpec,
    table: ParameterTable,
    step_time: float,
    rise_time: float,
    stop_time: float,
    nodesets: np.ndarray | None = None,
    direction: str = "up",
) -> Bench:
    """Transient of an input step across the sweep at ``step_time`` (s): from its start to its
    stop (``direction`` "up") or back ("down"), each instance's output node set to
    ``nodesets`` V while the initial operating point is found."""
    sweep = spec.sweep
    low, high = format_spice(sweep.start), format_spice(sweep.stop)
    if direction == "down":
        low, high = high, low
    source = (
        f"{SWEEP_SOURCE} x 0 DC {low} PWL(0 {low} {format_spice(step_time)} {low} "
        f"{format_spice(step_time + rise_time)} {high})"
    )
    lines, bench = _circuit(spec, table, source, measured=False)
    step = stop_time / 4000
    lines += [
        *(nodeset_lines(bench, nodesets) or _option_cards(spec)),
        *_wrap(".save", bench.output_names),
        f".tran {format_spice(step)} {format_spice(stop_time)} 0 {format_spice(step)}",
    ]
    return _finish(lines, bench)


def _wrap(keyword: str, names: list[str], width: int = 200) -> list[str]:
    """``keyword`` cards naming ``names``, each card at most ``width`` characters long (or one
    name)."""
    lines, card, used = [], [keyword], len(keyword)
    for name in names:
        if used + len(name) + 1 > width and len(card) > 1:
            lines.append(" ".join(card))
            card, used = [keyword], len(keyword)
        card.append(name)
        used += len(name) + 1
    if len(card) > 1:
        lines.append(" ".join(card))
    return lines
