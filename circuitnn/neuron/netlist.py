"""Read neuron netlists: find a ``.subckt`` and its ports and parameters, follow includes.

Pure text handling; nothing here runs ngspice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from circuitnn.errors import ConfigError, NetlistError
from circuitnn.neuron.units import parse_spice

_INCLUDE = re.compile(r"^\s*\.(include|inc|lib)\s+(\"[^\"]+\"|'[^']+'|\S+)(.*)$", re.IGNORECASE)


@dataclass(frozen=True)
class Subcircuit:
    """A ``.subckt`` found in a netlist: its name, port order and ``params:`` defaults."""

    name: str
    ports: tuple[str, ...]
    defaults: dict[str, float]


def logical_lines(text: str) -> list[tuple[int, str]]:
    """Join SPICE ``+`` continuation lines; return ``(first line number, text)`` pairs (1-based)."""
    joined: list[tuple[int, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if line.lstrip().startswith("+") and joined:
            start, previous = joined[-1]
            joined[-1] = (start, previous + " " + line.lstrip()[1:])
        else:
            joined.append((number, line))
    return joined


def find_subckt(text: str, name: str, source: str) -> Subcircuit:
    """Find ``.subckt name`` in ``text``; :class:`NetlistError` naming ``source`` if absent."""
    found = []
    for _, line in logical_lines(text):
        words = line.split()
        if len(words) >= 2 and words[0].lower() == ".subckt":
            found.append(words[1].lower())
            if words[1].lower() == name.lower():
                return _parse_subckt_line(line, source)
    listed = ", ".join(found) or "none"
    raise NetlistError(f"{source}: no .subckt named {name!r} (found: {listed})")


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


def resolve_includes(
    text: str, directory: Path, source: str, _seen: frozenset[str] = frozenset()
) -> tuple[str, list[tuple[str, str]]]:
    """Make relative ``.include``/``.lib`` paths absolute; return the new text and included files.

    The second value lists ``(absolute path, file text)`` of every included file, recursively, so
    that the content hash of a family covers the model libraries it was simulated with. A file
    that includes itself (directly or through others) is a :class:`NetlistError`; ``.lib NAME``
    alone is a section header of a library file, not an include.
    """
    out_lines = []
    included: list[tuple[str, str]] = []
    for raw in text.splitlines():
        match = _INCLUDE.match(raw)
        if match is None or (match.group(1).lower() == "lib" and not match.group(3).strip()):
            out_lines.append(raw)
            continue
        keyword, quoted, rest = match.groups()
        try:
            target = Path(quoted.strip("\"'")).expanduser()
            if not target.is_absolute():
                target = (directory / target).resolve()
            body = target.read_text(errors="replace")
        except FileNotFoundError:
            raise NetlistError(f"{source}: .{keyword} file not found: {target}") from None
        except (OSError, ValueError, RuntimeError) as error:  # a folder, unreadable, a NUL, a loop
            raise NetlistError(f"{source}: .{keyword} {quoted} cannot be read: {error}") from None
        if str(target) in _seen:
            raise NetlistError(f"{source}: .{keyword} {target} includes itself (an include loop)")
        out_lines.append(f'.{keyword.lower()} "{target}"{rest}')
        if str(target) not in {path for path, _ in included}:
            included.append((str(target), body))
            _, nested = resolve_includes(body, target.parent, str(target), _seen | {str(target)})
            included.extend(item for item in nested if item[0] not in {p for p, _ in included})
    return "\n".join(out_lines) + "\n", included
