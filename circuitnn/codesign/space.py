"""Design points of a neuron: what a point may set, how it changes the spec, and the area proxy.

A design point maps names to values: a parameter of the spec (SI units, e.g. ``w``, ``ibias``),
``temperature`` (°C), ``corner`` (a corner named in the spec) or a supply port (``vdd``: its
voltage, V). :func:`point_spec` turns a point into the spec (and corner) to simulate.

Columns and the area proxy come from the netlist (:mod:`circuitnn.neuron.elements`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from circuitnn.errors import ConfigError
from circuitnn.neuron.elements import Area, area_proxy, column_name, parameter_unit
from circuitnn.neuron.spec import NeuronSpec
from circuitnn.neuron.spec_check import validated
from circuitnn.neuron.units import parse_spice

TEMPERATURE = "temperature"
CORNER = "corner"


def check_name(spec: NeuronSpec, name: str) -> str:
    """``name`` (lower case) if a design point may set it; :class:`ConfigError` otherwise."""
    key = name.lower()
    if key in (TEMPERATURE, CORNER):
        return key
    if key in spec.parameters and key in spec.ports.supplies:
        raise ConfigError(f"{key!r} is both a parameter and a supply port of {spec.name}")
    if key in spec.parameters or key in spec.ports.supplies:
        return key
    supplies = f", a supply ({', '.join(spec.ports.supplies)})" if spec.ports.supplies else ""
    raise ConfigError(
        f"{name!r} is not a parameter of {spec.name} (has {', '.join(spec.parameters)}"
        f"{supplies}, temperature or corner)"
    )


def check_value(spec: NeuronSpec, name: str, value: Any, where: str) -> float | str:
    """A point's value parsed: a corner name for ``corner``, else a number (SPICE suffixes ok)."""
    if name == CORNER:
        if not isinstance(value, str) or value not in spec.corners:
            known = ", ".join(spec.corners) or "none defined"
            raise ConfigError(f"{where}: corner {value!r} is not a corner of {spec.name} ({known})")
        return value
    return parse_spice(value, where)


def point_spec(spec: NeuronSpec, point: dict[str, Any]) -> tuple[NeuronSpec, str | None]:
    """The spec a design point simulates, and its corner (None: nominal)."""
    parameters = {k: v for k, v in point.items() if k in spec.parameters}
    supplies = {k: float(v) for k, v in point.items() if k in spec.ports.supplies}
    updated = spec.with_parameters(**parameters) if parameters else spec
    if supplies:
        ports = dataclasses.replace(spec.ports, supplies={**spec.ports.supplies, **supplies})
        updated = validated(dataclasses.replace(updated, ports=ports))
    if TEMPERATURE in point:
        updated = updated.with_temperature(float(point[TEMPERATURE]))
    corner = point.get(CORNER)
    return updated, (str(corner) if corner is not None else None)


__all__ = [
    "CORNER",
    "TEMPERATURE",
    "Area",
    "area_proxy",
    "check_name",
    "check_value",
    "column_name",
    "parameter_unit",
    "point_spec",
]
