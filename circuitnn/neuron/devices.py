"""The transistors of a neuron, as ngspice names them inside one instance, and which of their
operating-point quantities ngspice reports: what a family records per instance and transistor as
its *realized device parameters* at a reference bias, so a curve can be traced to its devices.
A MOSFET records its threshold voltage, drain current and transconductance (``vth``, ``id``,
``gm``), a bipolar transistor its collector current, transconductance and base-emitter voltage
(``ic``, ``gm``, ``vbe``).

A MOSFET is an ``M`` line of the neuron's subcircuit (``m1`` → path ``m1``) or the ``M`` line
inside a device subcircuit it instantiates, a foundry kit's device included (``XMn … sky130_fd_
pr__nfet_01v8`` → ``xmn.msky130_fd_pr__nfet_01v8``); a bipolar transistor likewise a ``Q`` line.
ngspice's name of the threshold voltage depends on the model: ``vth`` for BSIM3/BSIM4 (levels
8, 49, 14, 54), ``von`` for levels 1-3; other MOSFET models record the current and
transconductance only.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from circuitnn.neuron.cards import physical_lines, strip_comments

if TYPE_CHECKING:
    from circuitnn.neuron.spec import NeuronSpec

_THRESHOLD = {"1": "von", "2": "von", "3": "von", "8": "vth", "49": "vth", "14": "vth", "54": "vth"}


_MODEL = re.compile(r"^\.model\s+(\S+)\s+[np]mos\b(.*)$", re.I | re.S)


_COMMENT = re.compile(r"[;$/]")  # (a line without these has no end-of-line comment)


_LEVEL = re.compile(r"\blevel\s*=\s*([0-9.]+)", re.I)


@dataclass(frozen=True)
class Device:
    """One transistor of a neuron: ``label`` (its element name in the neuron, e.g. ``xmn``),
    ``path`` (ngspice's name below the neuron instance, e.g. ``xmn.msky130_fd_pr__nfet_01v8``),
    ``threshold`` (a MOSFET's ngspice name of its threshold voltage, ``vth``/``von``, or None)
    and ``kind`` (``m`` a MOSFET, ``q`` a bipolar transistor)."""

    label: str
    path: str
    threshold: str | None
    kind: str = "m"

    def vectors(self, instance: str) -> dict[str, str]:
        """Recorded quantity → ngspice's ``@`` name for this device in ``instance``."""
        base = f"@{self.kind}.{instance}.{self.path}"
        if self.kind == "q":
            return {"ic": f"{base}[ic]", "gm": f"{base}[gm]", "vbe": f"{base}[vbe]"}
        names = {"id": f"{base}[id]", "gm": f"{base}[gm]"}
        if self.threshold is not None:
            names["vth"] = f"{base}[{self.threshold}]"
        return names


def records_devices(spec: NeuronSpec) -> bool:
    """Whether ``spec``'s families record realized device parameters: it has transistors and
    its ``[output]`` does not turn them off (``devices = false``)."""
    return spec.output.devices and bool(transistors(spec))


def transistors(spec: NeuronSpec) -> tuple[Device, ...]:
    """The MOSFETs and bipolar transistors of ``spec``'s subcircuit, in netlist order (kit
    devices included)."""
    texts = (spec.netlist_text, *(i.text for i in spec.includes if i.text is not None))
    kit = (spec.pdk.slice_path, spec.pdk.slice_digest) if spec.pdk is not None else None
    return _transistors(spec.subckt.name.lower(), texts, kit)


@functools.lru_cache(maxsize=32)
def _transistors(
    subckt: str, texts: tuple[str, ...], kit: tuple[str, str] | None
) -> tuple[Device, ...]:
    if kit is not None:  # (the slice: by its path and digest, read once per process)
        texts = (*texts, Path(kit[0]).read_text())
    bodies: dict[str, list[str]] = {}
    levels: dict[str, str] = {}
    for text in texts:
        _collect(text, bodies, levels)
    found: list[Device] = []
    _walk(subckt, "", "", bodies, levels, found, depth=0)
    return tuple(found)


def _collect(text: str, bodies: dict[str, list[str]], levels: dict[str, str]) -> None:
    """The logical lines of every subcircuit in ``text`` and the level of every MOS model."""
    logical: list[str] = []
    for line in physical_lines(text):
        body = strip_comments(line) if _COMMENT.search(line) else line.rstrip()
        if not body or body.startswith("*"):
            continue
        if body.startswith("+") and logical:
            logical[-1] += " " + body[1:]
        else:
            logical.append(body)
    current: str | None = None
    for line in logical:
        tokens = line.lower().split()
        if tokens[0] == ".subckt" and len(tokens) > 1:
            current = tokens[1]
            bodies[current] = []
        elif tokens[0] == ".ends":
            current = None
        elif current is not None:
            bodies[current].append(line.lower())
        model = _MODEL.match(line)
        if model:
            level = _LEVEL.search(model.group(2))
            name = model.group(1).lower()
            levels[name] = level.group(1).split(".")[0] if level else "1"
            levels.setdefault(name.split(".")[0], levels[name])


def _walk(
    subckt: str,
    prefix: str,
    label: str,
    bodies: dict[str, list[str]],
    levels: dict[str, str],
    found: list[Device],
    depth: int,
) -> None:
    if depth > 8:
        return
    for line in bodies.get(subckt, ()):
        tokens = [t for t in line.split() if "=" not in t and t != "params:"]
        name = tokens[0]
        if name.startswith("m") and len(tokens) >= 6:
            model = tokens[5]
            threshold = _THRESHOLD.get(levels.get(model, levels.get(model.split(".")[0], "")))
            found.append(Device(label or name, f"{prefix}{name}", threshold))
        elif name.startswith("q") and len(tokens) >= 5:
            found.append(Device(label or name, f"{prefix}{name}", None, "q"))
        elif name.startswith("x"):
            inner = [t for t in tokens[1:] if t in bodies]
            if inner:
                below = f"{prefix}{name}."
                _walk(inner[-1], below, label or name, bodies, levels, found, depth + 1)
