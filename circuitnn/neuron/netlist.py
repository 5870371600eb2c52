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
