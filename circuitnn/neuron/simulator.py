"""The simulator settings of a spec: ngspice's tolerances and numeric options (``[simulator]``).

They change results, so they are part of every family's key; they are rendered into every test
bench from floats (``.options reltol=… abstol=… vntol=…``), never from user text. The defaults
are ngspice's own, so a family's instance equals a standalone ``ngspice -b`` run of it.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from dataclasses import dataclass
from typing import Any

from circuitnn.errors import ConfigError
from circuitnn.neuron.units import format_spice, parse_spice, shown

DEFAULT_RELTOL = 1e-3  # ngspice's defaults
DEFAULT_ABSTOL = 1e-12  # A
DEFAULT_VNTOL = 1e-6  # V

# ngspice options that take one number, with their kind and allowed range (low, high), inclusive
NUMERIC_OPTIONS: dict[str, tuple[str, float, float]] = {
    "gmin": ("real", 1e-30, 1e-3),  # S, conductance across every pn junction
    "chgtol": ("real", 1e-30, 1.0),  # C
    "trtol": ("real", 1e-3, 1e3),  # transient truncation-error factor
    "pivtol": ("real", 1e-30, 1.0),
    "pivrel": ("real", 1e-30, 1.0),
    "rshunt": ("real", 1.0, 1e30),  # Ω from every node to ground
    "tnom": ("real", -273.15, 1000.0),  # °C, nominal temperature of the model cards
    "xmu": ("real", 0.0, 0.5),  # trapezoidal damping
    "itl1": ("int", 1, 1_000_000),  # DC operating point iteration limit
    "itl2": ("int", 1, 1_000_000),  # DC sweep iteration limit per point
    "itl4": ("int", 1, 1_000_000),  # transient iteration limit per time point
    "gminsteps": ("int", 0, 1000),  # 0: no gmin stepping, 1: dynamic, >1: that many steps
    "srcsteps": ("int", 0, 1000),  # 0: no source stepping
    "maxord": ("int", 1, 6),
}


@dataclass(frozen=True)
class Simulator:
    """ngspice's tolerances and options for every analysis of a family.

    ``reltol`` relative tolerance of the Newton iterations (and of the self-check comparing a
    batched instance with its isolated run); ``abstol`` A absolute current tolerance; ``vntol`` V
    absolute voltage tolerance; ``options`` further numeric ngspice options (name → number, names
    from :data:`NUMERIC_OPTIONS`), sorted by name.
    """

    reltol: float = DEFAULT_RELTOL
    abstol: float = DEFAULT_ABSTOL
    vntol: float = DEFAULT_VNTOL
    options: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        _tolerance(self.reltol, "simulator.reltol", most=0.1)
        _tolerance(self.abstol, "simulator.abstol", most=1.0)
        _tolerance(self.vntol, "simulator.vntol", most=1.0)
        options = self.options.items() if isinstance(self.options, dict) else self.options
        checked = tuple(sorted(_option(name, value) for name, value in options))
        names = [name for name, _ in checked]
        if len(set(names)) != len(names):
            raise ConfigError(f"simulator.options: an option is given twice ({names})")
        object.__setattr__(self, "options", checked)

    def replaced(self, **changes: Any) -> Simulator:
        """A copy with some fields replaced; ``options`` (a mapping) is merged into the present."""
        unknown = set(changes) - {"reltol", "abstol", "vntol", "options"}
        if unknown:
            raise ConfigError(f"simulator: unknown setting(s) {sorted(unknown)}")
        if "options" in changes:
            merged = dict(self.options)
            merged.update(dict(changes["options"]))
            changes["options"] = tuple(merged.items())
        return dataclasses.replace(self, **changes)

    def identity(self) -> dict[str, Any]:
        """Plain JSON data for the family key."""
        return {
            "reltol": self.reltol,
            "abstol": self.abstol,
            "vntol": self.vntol,
            "options": [[name, value] for name, value in self.options],
        }

    def card(self) -> str:
        """The ``.options`` line of a test bench (every value formatted from a number)."""
        parts = [
            f"reltol={format_spice(self.reltol)}",
            f"abstol={format_spice(self.abstol)}",
            f"vntol={format_spice(self.vntol)}",
        ]
        for name, value in self.options:
            whole = NUMERIC_OPTIONS[name][0] == "int"
            parts.append(f"{name}={int(value) if whole else format_spice(value)}")
        return ".options " + " ".join(parts)

    def tolerance(self, values: Any, current: bool) -> Any:
        """The agreement expected between two solutions of magnitude ``values`` (numpy array):
        reltol·|values| plus vntol (voltages) or abstol (currents, ``current``)."""
        import numpy as np

        floor = self.abstol if current else self.vntol
        return self.reltol * np.abs(values) + floor


def _tolerance(value: object, field: str, most: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{field} must be a number, got {shown(value)}")
    if not 0 < value <= most:
        raise ConfigError(f"{field} must be positive and at most {most:g}, got {value!r}")
    return float(value)


def _option(name: object, value: object) -> tuple[str, float]:
    if not isinstance(name, str) or name.lower() not in NUMERIC_OPTIONS:
        valid = ", ".join(sorted(NUMERIC_OPTIONS))
        hint = ""
        if isinstance(name, str):
            if name.lower() in ("reltol", "abstol", "vntol"):
                hint = f" (give it as simulator.{name.lower()})"
            else:
                close = difflib.get_close_matches(name.lower(), NUMERIC_OPTIONS, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"simulator.options: unknown option {shown(name)}{hint}; valid: {valid}")
    name = name.lower()
    kind, low, high = NUMERIC_OPTIONS[name]
    number = parse_spice(value, f"simulator.options.{name}")
    if kind == "int" and number != int(number):
        raise ConfigError(f"simulator.options.{name} must be a whole number, got {number!r}")
    if not low <= number <= high:
        raise ConfigError(
            f"simulator.options.{name} must be from {low:g} to {high:g}, got {number!r}"
        )
    return name, float(number)


_OPTIONS_CARD = re.compile(
    r"^[ \t]*\.options?\b(.*(?:\n[ \t]*\+.*)*)", re.IGNORECASE | re.MULTILINE
)


def managed_options(text: str) -> list[str]:
    """The options a netlist's ``.option(s)`` cards set that the spec's ``[simulator]`` table
    owns (tolerances and :data:`NUMERIC_OPTIONS`): a netlist must not set them (its card and
    the bench's would override each other, and the self-check would compare at the wrong
    tolerance)."""
    owned = {"reltol", "abstol", "vntol", *NUMERIC_OPTIONS}
    found = []
    for match in _OPTIONS_CARD.finditer(text):
        for name in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)", match.group(1).replace("+", " ")):
            if name.lower() in owned and name.lower() not in found:
                found.append(name.lower())
    return found


def simulator_from_dict(data: object, where: str) -> Simulator:
    """A :class:`Simulator` from a spec's ``[simulator]`` table (unknown keys are errors)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table, got {type(data).__name__}")
    allowed = ("reltol", "abstol", "vntol", "options")
    unknown = [key for key in data if key not in allowed]
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; valid keys: {', '.join(allowed)}")
    values: dict[str, Any] = {
        key: parse_spice(data[key], f"{where}.{key}") for key in allowed[:3] if key in data
    }
    options = data.get("options", {})
    if not isinstance(options, dict):
        raise ConfigError(f"{where}.options: expected a table of name = number")
    values["options"] = tuple(options.items())
    return Simulator(**values)
