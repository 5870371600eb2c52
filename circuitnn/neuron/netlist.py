"""Read neuron netlists: find a ``.subckt`` and its ports and parameters.

Pure text handling; nothing here runs ngspice.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from circuitnn.errors import ConfigError, NetlistError
from circuitnn.neuron.units import parse_spice


@dataclass(frozen=True)
class Subcircuit:
    """A ``.subckt`` found in a netlist: its name, port order and ``params:`` defaults."""

    name: str
    ports: tuple[str, ...]
    defaults: dict[str, float]


def find_subckt(texts: Sequence[tuple[str, str]], name: str) -> Subcircuit:
    """Find ``.subckt name`` in the first of ``texts`` (``(path, text)``: a netlist and the files
    it includes) that defines it; :class:`NetlistError` naming the netlist if none does."""
    found: list[str] = []
    for source, text in texts:
        for match in _SUBCKT.finditer(text):
            subckt = match.group(1).lower()
            if subckt == name.lower():
                return _parse_subckt_line(_logical_line_at(text, match.start()), source)
            found.append(subckt)
    listed = ", ".join(dict.fromkeys(found)) or "none"
    where = texts[0][0] if texts else "netlist"
    extra = f" or the {len(texts) - 1} file(s) it includes" if len(texts) > 1 else ""
    raise NetlistError(f"{where}{extra}: no .subckt named {name!r} (found: {listed})")


_SUBCKT = re.compile(r"^[ \t]*\.subckt[ \t]+(\S+)", re.IGNORECASE | re.MULTILINE)


def _logical_line_at(text: str, start: int) -> str:
    """The card starting at offset ``start`` with its ``+`` continuation lines joined."""
    lines = text[start:].split("\n")
    card = lines[0].rstrip("\r")
    for line in lines[1:]:
        stripped = line.replace("\r", "").lstrip(" \t")
        if not stripped.startswith("+"):
            break
        card += " " + stripped[1:]
    return card


def _parse_subckt_line(line: str, source: str) -> Subcircuit:
    head, _, params_text = _split_params(line)
    words = head.split()
    ports = tuple(word.lower() for word in words[2:])
    defaults: dict[str, float] = {}
    for key, value in re.findall(r"(\w+)\s*=\s*(\S+)", params_text):
        try:
            defaults[key.lower()] = parse_spice(value, f"{source}: .subckt {words[1]} param {key}")
        except ConfigError:
            defaults[key.lower()] = float("nan")
    return Subcircuit(name=words[1].lower(), ports=ports, defaults=defaults)


def _split_params(line: str) -> tuple[str, str, str]:
    match = re.search(r"\bparams\s*:", line, flags=re.IGNORECASE)
    if match is None:
        head, params = line, ""
        # ngspice also accepts ``name=value`` pairs after the ports without ``params:``
        first = re.search(r"\s\w+\s*=", line)
        if first is not None:
            head, params = line[: first.start()], line[first.start() :]
        return head, "", params
    return line[: match.start()], match.group(0), line[match.end() :]


# a device value that is one parameter alone: `{r}` or `r`
_ONE_PARAMETER = re.compile(r"\{?\s*([A-Za-z_]\w*)\s*\}?")


_SIZES = {"r": "resistance", "c": "capacitance", "l": "inductance"}


def sized_parameters(texts: Sequence[tuple[str, str]], name: str) -> dict[str, str]:
    """Parameters of ``.subckt name`` that alone set a resistance, capacitance or inductance
    (``R1 a b {r}``, ``r={r}``) or a MOSFET's W or L (``W={w}``): parameter → what it sets (such
    a parameter must be positive). Expressions (``{w*(1+d)}``) are left alone."""
    sized: dict[str, str] = {}
    for card in subckt_cards(texts, name):
        _sized_in(card, sized)
    return sized


def subckt_cards(texts: Sequence[tuple[str, str]], name: str) -> list[str]:
    """The cards (continuations joined, comment lines left out) of ``.subckt name``, from the
    first of ``texts`` (``(path, text)``: a netlist and the files it includes) that defines it;
    empty if none does."""
    for _, text in texts:
        for match in _SUBCKT.finditer(text):
            if match.group(1).lower() == name.lower():
                return _body(text, match.start())
    return []


def _body(text: str, start: int) -> list[str]:
    """The cards (continuations joined) after the ``.subckt`` line at ``start``, to ``.ends``."""
    cards: list[str] = []
    for raw in text[start:].split("\n")[1:]:
        line = raw.replace("\r", "").lstrip(" \t")
        if line.lower().startswith(".ends"):
            break
        if line.startswith("+") and cards:
            cards[-1] += " " + line[1:]
        elif line and not line.startswith("*"):
            cards.append(line)
    return cards


def _sized_in(card: str, sized: dict[str, str]) -> None:
    words = card.split()
    kind = words[0][0].lower()
    device = words[0]
    values: list[tuple[str, str]] = []
    if kind in _SIZES:
        if len(words) >= 4 and "=" not in words[3]:
            values.append((words[3], f"the {_SIZES[kind]} of {device}"))
        keys = {kind, "value"}
    elif kind == "m":
        keys = {"w", "l"}
    else:
        return
    for word in words[3:]:
        key, equals, value = word.partition("=")
        if equals and key.lower() in keys:
            values.append((value, f"{key.upper()} of {device}"))
    for value, what in values:
        match = _ONE_PARAMETER.fullmatch(value)
        if match is not None:
            sized.setdefault(match.group(1).lower(), what)
