"""What a neuron's netlist says about its devices: the units of its parameters and its area.

Pure text: the element lines of the spec's ``.subckt`` are read, never simulated.

- :func:`parameter_unit`: ``m`` for a Pelgrom area parameter or a MOSFET's whole W or L; the
  unit of the element whose value is the parameter or starts with it as a factor (``A`` for a
  current source, ``Ohm`` for a resistor, ``V``, ``F``, ``H``); else ``SI``.
- :func:`area_proxy`: Σ W·L over the MOSFETs of the ``.subckt``: every element line starting with
  ``M`` has its ``W=`` and ``L=`` (and a multiplier ``M=``) evaluated as arithmetic of the spec's
  parameters (nominal values: mismatch parameters at their nominal, zero in the built-ins).
  Devices of other kinds (resistors, capacitors, diodes, BJTs) and devices inside nested
  subcircuits (``X`` lines) are not counted; a neuron without MOSFETs has no area proxy.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from circuitnn.errors import ConfigError
from circuitnn.neuron.cards import strip_comments
from circuitnn.neuron.netlist import subckt_cards
from circuitnn.neuron.spec import NeuronSpec
from circuitnn.neuron.units import parse_spice

# the unit of a parameter, from the kind of element whose value (or W/L) it appears in
ELEMENT_UNITS = {"i": "A", "v": "V", "r": "Ohm", "c": "F", "l": "H"}


def column_name(spec: NeuronSpec, name: str) -> str:
    """The table column of a design setting, its unit in the name (``w_m``, ``ibias_A``,
    ``temperature_C``, ``vdd_V``, ``corner``); a parameter whose unit cannot be told from the
    netlist gets ``_SI``."""
    if name == "corner":
        return "corner"
    if name == "temperature":
        return "temperature_C"
    if name in spec.ports.supplies:
        return f"{name}_V"
    return f"{name}_{parameter_unit(spec, name)}"


def parameter_unit(spec: NeuronSpec, name: str) -> str:
    """The unit of parameter ``name``: ``m`` for a Pelgrom area parameter or one that is a
    MOSFET's whole W or L; the unit of the element (``A`` for a current source, ``Ohm`` for a
    resistor, ``V``, ``F``, ``H``) whose value is the parameter or starts with it as a factor
    (``{rl*(1+drl1)}`` makes ``rl`` Ohm, not ``drl1``); else ``SI``."""
    areas = {
        parameter
        for variation in spec.variations
        for dist in (variation.global_, variation.local)
        if dist is not None and dist.area is not None
        for parameter in dist.area
    }
    if name in areas:
        return "m"
    leading = re.compile(rf"^\s*{re.escape(name)}\s*(\*|$)", re.IGNORECASE)
    for line in _body(spec):
        kind = line[0].lower()
        if kind == "m":
            sizes = _assignments(line)
            if any(sizes.get(key, "").strip().lower() == name for key in ("w", "l")):
                return "m"
        elif kind in ELEMENT_UNITS:
            words = re.sub(r"\b\w+\s*=\s*\S+", "", " ".join(line.split()[3:])).split()
            values = [word.strip("{}'") for word in words if word.upper() not in ("DC", "AC")]
            if values and leading.match(values[0]):
                return ELEMENT_UNITS[kind]
    return "SI"


@dataclass(frozen=True)
class Area:
    """The area proxy of one neuron: Σ W·L (m²) over ``devices`` (MOSFET names) and the
    parameters their sizes depend on."""

    total: float
    devices: tuple[str, ...]
    parameters: tuple[str, ...]

    @property
    def um2(self) -> float:
        """Σ W·L in µm²."""
        return self.total * 1e12


def area_proxy(spec: NeuronSpec) -> Area | None:
    """Σ W·L·M over the MOSFETs of the spec's ``.subckt`` at its nominal parameters, or None
    when it has none; :class:`ConfigError` when a MOSFET's W or L cannot be evaluated."""
    values = spec.nominal()
    total, devices, used = 0.0, [], set()
    for line in _body(spec):
        if line[0].lower() != "m":
            continue
        name = line.split()[0]
        sizes = _assignments(line)
        factors = []
        for key in ("w", "l"):
            if key not in sizes:
                raise ConfigError(
                    f"{spec.name}: MOSFET {name} has no {key.upper()}= (the area proxy needs both)"
                )
        for key in ("w", "l", "m"):
            if key in sizes:
                text = sizes[key]
                factors.append(_evaluate(text, values, f"{spec.name}: {name} {key.upper()}"))
                used |= {p for p in values if re.search(rf"\b{p}\b", text, re.IGNORECASE)}
        product = 1.0
        for factor in factors:
            product *= factor
        total += product
        devices.append(name)
    if not devices:
        return None
    return Area(total, tuple(devices), tuple(sorted(used)))


def _body(spec: NeuronSpec) -> list[str]:
    """Element lines of the spec's ``.subckt`` (in the netlist or a file it includes; comments
    and dot-commands left out)."""
    texts = [(spec.netlist_source, spec.netlist_text)]
    texts += [(i.source, i.text) for i in spec.includes if i.text is not None]
    lines = []
    for card in subckt_cards(texts, spec.subckt.name):
        line = strip_comments(card).strip()
        if line and not line.startswith(("*", ".")):
            lines.append(line)
    return lines


def _assignments(line: str) -> dict[str, str]:
    """``name=value`` pairs of an element line (a ``{…}`` value may hold spaces)."""
    found = re.findall(r"\b(\w+)\s*=\s*(\{[^}]*\}|'[^']*'|\S+)", line)
    return {key.lower(): value.strip("{}'") for key, value in found}


_OPERATORS: dict[type, Callable[..., float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def _evaluate(text: str, values: dict[str, float], where: str) -> float:
    """Arithmetic of numbers (SPICE suffixes allowed) and parameters; nothing else."""
    words = {key.lower(): value for key, value in values.items()}

    def number(match: re.Match[str]) -> str:
        return repr(parse_spice(match.group(0), where))

    # SPICE numbers (4u, 1.5meg) become plain floats before Python parses the expression
    plain = re.sub(r"(?<![\w.])\d+\.?\d*(?:e[+-]?\d+)?[a-z]*", number, text, flags=re.I)
    try:
        tree = ast.parse(plain, mode="eval")
    except SyntaxError:
        raise ConfigError(f"{where} = {text!r} is not arithmetic of parameters") from None

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.Name) and node.id.lower() in words:
            return words[node.id.lower()]
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](walk(node.operand))
        raise ConfigError(f"{where} = {text!r}: only numbers, parameters and + - * / ** allowed")

    try:
        return float(walk(tree))
    except (ZeroDivisionError, OverflowError) as error:
        raise ConfigError(f"{where} = {text!r}: {error}") from None
