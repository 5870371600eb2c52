"""Neuron specs: which ports a ``.subckt`` has, how it is driven, what is measured, what varies.

A spec is a frozen dataclass, loaded from the TOML file beside a netlist (see ``netlists/*.toml``)
or built in Python. All numbers are SI units (V, A, Ω, m, °C) after parsing.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from circuitnn.errors import CircuitnnError, ConfigError
from circuitnn.netlist import Subcircuit, check_safe, find_subckt, resolve_includes
from circuitnn.toml_file import read_toml
from circuitnn.units import parse_spice

DISTRIBUTIONS = ("normal", "lognormal", "uniform")
QUANTITIES = ("voltage", "differential_voltage", "current")
# a neuron's name is written into netlist comments, file names and the store: one word only
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,99}")
MAX_POINTS = 1_000_000  # largest DC sweep (points per curve)


@dataclass(frozen=True)
class Distribution:
    """One random variation of a parameter.

    Exactly one of ``sigma`` (absolute σ, parameter units), ``relative`` (σ as a fraction of the
    nominal value) or ``pelgrom`` (σ = A/√(W·L), A in parameter-unit·m, W and L named by ``area``)
    is set. ``normal`` adds σ·z; ``uniform`` adds a uniform draw of the same σ (half-width √3·σ);
    ``lognormal`` multiplies by exp(relative·z) (median = nominal; only ``relative`` is allowed).
    """

    distribution: str = "normal"
    sigma: float | None = None
    relative: float | None = None
    pelgrom: float | None = None
    area: tuple[str, str] | None = None

    def absolute_sigma(self, nominal: float, values: dict[str, float]) -> float:
        """σ of the additive variation for a parameter of value ``nominal`` (parameter units)."""
        if self.sigma is not None:
            return self.sigma
        if self.relative is not None:
            return abs(nominal) * self.relative
        assert self.pelgrom is not None and self.area is not None
        width, length = (values[name] for name in self.area)
        return self.pelgrom / math.sqrt(width * length)


@dataclass(frozen=True)
class Variation:
    """Die-to-die (``global_``, shared by a chip) and mismatch (``local``, per neuron) variation."""

    parameter: str
    global_: Distribution | None = None
    local: Distribution | None = None


@dataclass(frozen=True)
class Ports:
    """How each port of the subckt is connected by the test bench (voltages in V).

    ``measure_input_current``: give every instance a 0 V sense source at each input so the
    current (and power) it draws from the input driver is measured. Default: only when the neuron
    has no supplies, i.e. when the input is what powers it (a MOSFET gate draws nothing, and the
    senses cost ngspice about a third more time).
    """

    input: tuple[str, ...]
    output: tuple[str, ...]
    supplies: dict[str, float] = field(default_factory=dict)
    ground: tuple[str, ...] = ()
    bias: dict[str, float] = field(default_factory=dict)
    measure_input_current: bool | None = None

    @property
    def input_measured(self) -> bool:
        """Whether input currents are measured (the resolved default, see the class doc)."""
        if self.measure_input_current is None:
            return not self.supplies
        return self.measure_input_current

    @property
    def differential_input(self) -> bool:
        """True when the input is a port pair driven at common mode ± x/2."""
        return len(self.input) == 2


@dataclass(frozen=True)
class Sweep:
    """Uniform DC input sweep: ``points`` values from ``start`` to ``stop`` volts (inclusive)."""

    start: float
    stop: float
    points: int = 401
    common_mode: float = 0.0

    @property
    def step(self) -> float:
        """Grid spacing in volts."""
        return (self.stop - self.start) / (self.points - 1)

    def grid(self) -> np.ndarray:
        """The input grid in volts, shape (points,)."""
        return np.linspace(self.start, self.stop, self.points)


@dataclass(frozen=True)
class Output:
    """What is measured: a node voltage (V), a differential voltage (V) or a port current (A).

    For ``current`` the output port is held at ``load_voltage`` volts and the current flowing out of
    the port into that load is reported (``invert`` flips the sign). Voltage outputs are loaded by
    ``load_capacitance`` farads to ground (each node of a differential output), the input of the
    next stage, which sets the neuron's speed.
    """

    quantity: str = "voltage"
    load_voltage: float = 0.0
    invert: bool = False
    load_capacitance: float = 0.0

    @property
    def unit(self) -> str:
        """SI unit of the output quantity."""
        return "A" if self.quantity == "current" else "V"


@dataclass(frozen=True)
class NeuronSpec:
    """A neuron circuit ready to simulate: netlist, test bench, nominal values and variations."""

    name: str
    subckt: Subcircuit
    netlist_text: str
    netlist_source: str
    ports: Ports
    sweep: Sweep
    output: Output
    parameters: dict[str, float]
    variations: tuple[Variation, ...] = ()
    corners: dict[str, dict[str, float]] = field(default_factory=dict)
    temperature: float = 27.0
    description: str = ""
    includes: tuple[tuple[str, str], ...] = ()

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Parameter names in table column order."""
        return tuple(self.parameters)

    def nominal(self, corner: str | None = None) -> dict[str, float]:
        """Nominal parameter values, shifted by the additive offsets of ``corner`` if given."""
        values = dict(self.parameters)
        if corner is None:
            return values
        if corner not in self.corners:
            known = ", ".join(sorted(self.corners)) or "none defined"
            raise ConfigError(f"{self.name}: unknown corner {corner!r} (known: {known})")
        for name, offset in self.corners[corner].items():
            values[name] += offset
        return values

    def with_parameters(self, **values: object) -> NeuronSpec:
        """A copy with some nominal values replaced (numbers or SPICE strings)."""
        updated = dict(self.parameters)
        for key, value in values.items():
            name = key.lower()
            if name not in updated:
                raise ConfigError(f"{self.name}: no parameter {key!r} (has {', '.join(updated)})")
            updated[name] = parse_spice(value, f"{self.name}.{key}")
        return _validated(dataclasses.replace(self, parameters=updated))

    def with_temperature(self, celsius: float) -> NeuronSpec:
        """A copy simulated at ``celsius`` °C."""
        return _validated(
            dataclasses.replace(self, temperature=parse_spice(celsius, "temperature"))
        )

    def identity(self) -> dict[str, Any]:
        """Everything about the spec that determines simulation results, as plain JSON data."""
        return {
            "name": self.name,
            "subckt": self.subckt.name,
            "netlist": _without_include_paths(self.netlist_text),
            "includes": [text for _, text in self.includes],
            "ports": {
                **dataclasses.asdict(self.ports),
                "measure_input_current": self.ports.input_measured,
            },
            "sweep": dataclasses.asdict(self.sweep),
            "output": dataclasses.asdict(self.output),
            "parameters": self.parameters,
            "variations": [dataclasses.asdict(v) for v in self.variations],
            "corners": self.corners,
            "temperature": self.temperature,
        }


def _without_include_paths(text: str) -> str:
    """Netlist text with include paths reduced to file names (their contents are hashed apart),
    so that moving a project folder keeps its families' keys."""
    return re.sub(
        r"^(\s*\.(?:include|inc|lib)\s+)\"([^\"]*)\"",
        lambda match: f'{match.group(1)}"{Path(match.group(2)).name}"',
        text,
        flags=re.IGNORECASE | re.MULTILINE,
    )


def load_spec(path: str | Path, allow_control: bool = False) -> NeuronSpec:
    """Load a neuron spec from its TOML file (the netlist path inside is relative to it).

    A path to a ``.cir``/``.sp`` netlist is accepted too when a ``.toml`` of the same stem lies
    beside it. ``allow_control`` admits netlists with ``.control`` blocks or ``shell`` commands.
    """
    path = Path(path)
    if not path.name:  # "/", ".", "": a folder, never a spec file
        raise ConfigError(f"spec file not found: {path} is not a file name")
    if path.suffix.lower() != ".toml":
        path = path.with_suffix(".toml")
    data = read_toml(path, "spec")
    return spec_from_dict(data, path.parent, str(path), allow_control=allow_control)


def spec_from_dict(
    data: dict[str, Any], directory: Path, source: str = "<spec>", allow_control: bool = False
) -> NeuronSpec:
    """Build and validate a spec from TOML-shaped data; relative paths resolve in ``directory``."""
    reader = _Reader(data, source)
    name = reader.text("name")
    netlist_path = Path(reader.text("netlist"))
    if not netlist_path.is_absolute():
        netlist_path = directory / netlist_path
    try:
        raw_text = netlist_path.read_text(errors="replace")
    except FileNotFoundError:
        raise ConfigError(f"{source}: netlist: file not found: {netlist_path}") from None
    except (OSError, ValueError) as error:  # a folder, unreadable, a name too long, a NUL
        raise ConfigError(f"{source}: netlist: cannot read {netlist_path}: {error}") from None
    if not allow_control:
        check_safe(raw_text, str(netlist_path))
    text, includes = resolve_includes(raw_text, netlist_path.parent, str(netlist_path))
    if not allow_control:
        for included_path, included_text in includes:
            check_safe(included_text, included_path)
    subckt = find_subckt(text, reader.text("subckt", default=name), str(netlist_path))

    ports_data = reader.table("ports")
    ports = Ports(
        input=_names(ports_data, "input", f"{source}: ports.input", (1, 2)),
        output=_names(ports_data, "output", f"{source}: ports.output", (1, 2)),
        supplies=_volts(ports_data.get("supplies", {}), f"{source}: ports.supplies"),
        ground=_names(ports_data, "ground", f"{source}: ports.ground", None),
        bias=_volts(ports_data.get("bias", {}), f"{source}: ports.bias"),
        measure_input_current=_flag(
            ports_data.get("measure_input_current"), f"{source}: ports.measure_input_current"
        ),
    )
    sweep_data = reader.table("sweep")
    sweep = Sweep(
        start=parse_spice(_need(sweep_data, "start", f"{source}: sweep"), f"{source}: sweep.start"),
        stop=parse_spice(_need(sweep_data, "stop", f"{source}: sweep"), f"{source}: sweep.stop"),
        points=_integer(sweep_data.get("points", 401), f"{source}: sweep.points"),
        common_mode=parse_spice(sweep_data.get("common_mode", 0.0), f"{source}: sweep.common_mode"),
    )
    output_data = reader.table("output", required=False)
    output = Output(
        quantity=str(output_data.get("quantity", "voltage")),
        load_voltage=parse_spice(
            output_data.get("load_voltage", 0.0), f"{source}: output.load_voltage"
        ),
        invert=bool(_flag(output_data.get("invert", False), f"{source}: output.invert")),
        load_capacitance=parse_spice(
            output_data.get("load_capacitance", 0.0), f"{source}: output.load_capacitance"
        ),
    )
    parameters = dict(subckt.defaults)
    for key, value in reader.table("parameters", required=False).items():
        parameters[key.lower()] = parse_spice(value, f"{source}: parameters.{key}")
    variations = tuple(
        _variation(key.lower(), value, f"{source}: variation.{key}")
        for key, value in reader.table("variation", required=False).items()
    )
    corners = {
        corner: {
            key.lower(): parse_spice(offset, f"{source}: corners.{corner}.{key}")
            for key, offset in _as_table(offsets, f"{source}: corners.{corner}").items()
        }
        for corner, offsets in reader.table("corners", required=False).items()
    }
    spec = NeuronSpec(
        name=name,
        subckt=subckt,
        netlist_text=text,
        netlist_source=str(netlist_path),
        ports=ports,
        sweep=sweep,
        output=output,
        parameters=parameters,
        variations=variations,
        corners=corners,
        temperature=parse_spice(data.get("temperature", 27.0), f"{source}: temperature"),
        description=str(data.get("description", "")),
        includes=tuple(includes),
    )
    return _validated(spec, source)


def _validated(spec: NeuronSpec, source: str | None = None) -> NeuronSpec:
    where = source or repr(spec.name)
    if not isinstance(spec.name, str) or not _NAME.fullmatch(spec.name):
        raise ConfigError(
            f"{where}: name {spec.name!r} must be one word of at most 100 letters, digits and "
            "_ . + - (it is written into netlists, file names and the store)"
        )
    ports = spec.ports
    assigned = [*ports.input, *ports.output, *ports.supplies, *ports.ground, *ports.bias]
    for port in assigned:
        if port not in spec.subckt.ports:
            raise ConfigError(
                f"{where}: port {port!r} is not a port of .subckt {spec.subckt.name} "
                f"({' '.join(spec.subckt.ports)})"
            )
    for port in spec.subckt.ports:
        count = assigned.count(port)
        if count != 1:
            state = "not connected" if count == 0 else "connected more than once"
            raise ConfigError(
                f"{where}: port {port!r} of .subckt {spec.subckt.name} is {state}; name it exactly "
                "once in ports.input/output/supplies/ground/bias"
            )
    quantity = spec.output.quantity
    if quantity not in QUANTITIES:
        raise ConfigError(f"{where}: output.quantity {quantity!r} must be one of {QUANTITIES}")
    wanted = 2 if quantity == "differential_voltage" else 1
    if len(ports.output) != wanted:
        raise ConfigError(f"{where}: ports.output needs {wanted} port(s) for quantity {quantity!r}")
    if spec.output.load_capacitance < 0:
        raise ConfigError(f"{where}: output.load_capacitance must be non-negative (F)")
    if not 2 <= spec.sweep.points <= MAX_POINTS:
        raise ConfigError(
            f"{where}: sweep.points must be from 2 to {MAX_POINTS} (got {spec.sweep.points})"
        )
    if not spec.sweep.stop > spec.sweep.start:
        raise ConfigError(f"{where}: sweep.stop ({spec.sweep.stop}) must exceed sweep.start")
    if spec.temperature < -273.15:
        raise ConfigError(f"{where}: temperature {spec.temperature} °C is below absolute zero")
    for name, value in spec.parameters.items():
        if not math.isfinite(value):
            raise ConfigError(f"{where}: parameter {name!r} has no numeric nominal value")
        if name not in spec.subckt.defaults:
            raise ConfigError(
                f"{where}: parameter {name!r} is not a params: entry of .subckt {spec.subckt.name}"
            )
    for variation in spec.variations:
        _check_variation(spec, variation, where)
    for corner, offsets in spec.corners.items():
        for name in offsets:
            if name not in spec.parameters:
                raise ConfigError(f"{where}: corners.{corner}: unknown parameter {name!r}")
    return spec


def _check_variation(spec: NeuronSpec, variation: Variation, where: str) -> None:
    if variation.parameter not in spec.parameters:
        raise ConfigError(f"{where}: variation.{variation.parameter}: no such parameter")
    for scope, dist in (("global", variation.global_), ("local", variation.local)):
        if dist is None or dist.area is None:
            continue
        for name in dist.area:
            if name not in spec.parameters:
                raise ConfigError(
                    f"{where}: variation.{variation.parameter}.{scope}.area names unknown "
                    f"parameter {name!r}"
                )
            if spec.parameters[name] <= 0:
                raise ConfigError(
                    f"{where}: variation.{variation.parameter}.{scope}: area parameter {name!r} "
                    "must be positive"
                )


def _variation(parameter: str, data: object, where: str) -> Variation:
    table = _as_table(data, where)
    unknown = set(table) - {"global", "local"}
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; use 'global' and/or 'local'")
    if not table:
        raise ConfigError(f"{where}: give a 'global' and/or 'local' distribution")
    return Variation(
        parameter=parameter,
        global_=_distribution(table["global"], f"{where}.global") if "global" in table else None,
        local=_distribution(table["local"], f"{where}.local") if "local" in table else None,
    )


def _distribution(data: object, where: str) -> Distribution:
    table = _as_table(data, where)
    unknown = set(table) - {"distribution", "sigma", "relative", "pelgrom", "area"}
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}")
    kind = str(table.get("distribution", "normal"))
    if kind not in DISTRIBUTIONS:
        raise ConfigError(f"{where}.distribution: {kind!r} must be one of {DISTRIBUTIONS}")
    given = [key for key in ("sigma", "relative", "pelgrom") if key in table]
    if len(given) != 1:
        raise ConfigError(f"{where}: give exactly one of sigma, relative, pelgrom (got {given})")
    amount = parse_spice(table[given[0]], f"{where}.{given[0]}")
    if amount < 0:
        raise ConfigError(f"{where}.{given[0]}: must be non-negative (got {amount})")
    if kind == "lognormal" and given[0] != "relative":
        raise ConfigError(f"{where}: a lognormal variation takes 'relative' (σ of ln x)")
    area = None
    if given[0] == "pelgrom":
        raw_area = table.get("area")
        if not (isinstance(raw_area, list) and len(raw_area) == 2):
            raise ConfigError(f'{where}.area: pelgrom needs area = ["w", "l"] (two parameters)')
        area = (str(raw_area[0]).lower(), str(raw_area[1]).lower())
    elif "area" in table:
        raise ConfigError(f"{where}.area: only meaningful with pelgrom")
    return Distribution(distribution=kind, area=area, **{given[0]: amount})


class _Reader:
    def __init__(self, data: dict[str, Any], source: str) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: a spec must be a table")
        self.data = data
        self.source = source

    def text(self, key: str, default: str | None = None) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{self.source}: '{key}' must be a non-empty string")
        return value.strip()

    def table(self, key: str, required: bool = True) -> dict[str, Any]:
        if key not in self.data:
            if required:
                raise ConfigError(f"{self.source}: missing [{key}] table")
            return {}
        return _as_table(self.data[key], f"{self.source}: {key}")


def _as_table(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a table, got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str):
            raise ConfigError(f"{where}: keys must be names (strings), got {key!r}")
    return value


def _need(table: dict[str, Any], key: str, where: str) -> object:
    if key not in table:
        raise ConfigError(f"{where}: missing '{key}'")
    return table[key]


def _integer(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    return value


def _names(
    table: dict[str, Any], key: str, where: str, sizes: tuple[int, ...] | None
) -> tuple[str, ...]:
    value = table.get(key, [] if sizes is None else None)
    if value is None:
        raise ConfigError(f"{where}: missing")
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
        raise ConfigError(f"{where}: expected a port name or a list of port names, got {value!r}")
    if sizes is not None and len(names) not in sizes:
        raise ConfigError(f"{where}: expected {' or '.join(map(str, sizes))} port name(s)")
    return tuple(n.strip().lower() for n in names)


def _flag(value: object, where: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise ConfigError(f"{where}: expected true or false, got {value!r}")


def _volts(value: object, where: str) -> dict[str, float]:
    table = _as_table(value, where)
    return {port.lower(): parse_spice(volts, f"{where}.{port}") for port, volts in table.items()}


__all__ = [
    "CircuitnnError",
    "Distribution",
    "NeuronSpec",
    "Output",
    "Ports",
    "Sweep",
    "Variation",
    "load_spec",
    "spec_from_dict",
]
