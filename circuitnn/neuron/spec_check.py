"""Checking a neuron spec (:class:`~circuitnn.neuron.spec.NeuronSpec`) however it was made:
every field (name, ports, output, sweep, simulator, parameters, variations, corners, sizes) and
the netlist's safety, with a one-line :class:`ConfigError` or :class:`NetlistError` naming the
spec and the field."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from circuitnn.errors import ConfigError
from circuitnn.neuron.netlist import sized_parameters
from circuitnn.neuron.simulator import Simulator, managed_options

if TYPE_CHECKING:
    from circuitnn.neuron.spec import NeuronSpec, Variation

DIRECTIONS = ("up", "down", "both")


QUANTITIES = ("voltage", "differential_voltage", "current")


# a neuron's name is written into netlist comments, file names and the store: one word only
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,99}")


MAX_POINTS = 1_000_000  # largest DC sweep (points per curve)


MAX_RELATIVE = 1.0  # largest relative σ accepted (100 %): beyond, a value is mostly noise


def validated(spec: NeuronSpec, source: str | None = None) -> NeuronSpec:
    """``spec`` after checking every field and its netlist's safety; ConfigError or
    NetlistError naming ``source`` (default the spec's name) and the field."""
    from circuitnn.neuron.safety import check_spec

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
    if not isinstance(spec.output.devices, bool):
        raise ConfigError(f"{where}: output.devices must be true or false")
    if spec.output.load_capacitance < 0:
        raise ConfigError(f"{where}: output.load_capacitance must be non-negative (F)")
    if not 2 <= spec.sweep.points <= MAX_POINTS:
        raise ConfigError(
            f"{where}: sweep.points must be from 2 to {MAX_POINTS} (got {spec.sweep.points})"
        )
    if spec.sweep.direction not in DIRECTIONS:
        raise ConfigError(
            f"{where}: sweep.direction {spec.sweep.direction!r} must be one of {DIRECTIONS}"
        )
    if not isinstance(spec.simulator, Simulator):
        raise ConfigError(f"{where}: simulator must be a Simulator, got {spec.simulator!r}")
    texts = [(spec.netlist_source, spec.netlist_text)]
    texts += [(i.source, i.text) for i in spec.includes if i.text is not None]
    for source, text in texts:
        owned = managed_options(text)
        if owned:
            raise ConfigError(
                f"{where}: {source} sets {', '.join(owned)} in a .options card; set "
                f"{'them' if len(owned) > 1 else 'it'} in the spec's [simulator] table instead "
                "(part of the family's key and of its self-check tolerance)"
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
    _check_sizes(spec, where)
    check_spec(spec)
    return spec


def _check_sizes(spec: NeuronSpec, where: str) -> None:
    """A parameter that alone sets a resistance, capacitance, inductance or a MOSFET's W or L
    must be positive, at the nominal point and at every corner."""
    texts = [(spec.netlist_source, spec.netlist_text)]
    texts += [(i.source, i.text) for i in spec.includes if i.text is not None]
    for name, what in sized_parameters(texts, spec.subckt.name).items():
        if name not in spec.parameters:
            continue
        points = {"": spec.parameters[name]}
        points.update(
            {
                f" at corner {c!r}": spec.parameters[name] + o.get(name, 0.0)
                for c, o in spec.corners.items()
            }
        )
        for at, value in points.items():
            if not value > 0:
                raise ConfigError(
                    f"{where}: parameter {name!r} = {value:g}{at} sets {what}, which must be "
                    "positive"
                )


def _check_variation(spec: NeuronSpec, variation: Variation, where: str) -> None:
    """A variation names a parameter, its bounds hold the nominal value at every corner, its
    relative σ is at most :data:`MAX_RELATIVE` and its Pelgrom area names positive
    parameters."""
    name = variation.parameter
    if name not in spec.parameters:
        raise ConfigError(f"{where}: variation.{name}: no such parameter")
    low, high = variation.minimum, variation.maximum
    for bound, value in (("min", low), ("max", high)):
        if value is not None and not math.isfinite(value):
            raise ConfigError(f"{where}: variation.{name}.{bound} must be a finite number")
    if low is not None and high is not None and not low < high:
        raise ConfigError(f"{where}: variation.{name}: min ({low:g}) must be below max ({high:g})")
    for corner in (None, *spec.corners):
        nominal = spec.parameters[name] + (spec.corners[corner].get(name, 0.0) if corner else 0.0)
        if (low is not None and nominal < low) or (high is not None and nominal > high):
            at = f" at corner {corner!r}" if corner else ""
            raise ConfigError(
                f"{where}: variation.{name}: the nominal value{at} {nominal:g} lies outside min/max"
            )
    for scope, dist in (("global", variation.global_), ("local", variation.local)):
        if dist is not None and dist.relative is not None and dist.relative > MAX_RELATIVE:
            raise ConfigError(
                f"{where}: variation.{name}.{scope}.relative = {dist.relative:g} is a σ of "
                f"{100 * dist.relative:g} % of the nominal value; at most {MAX_RELATIVE:g} (100 "
                "%) is accepted (bound the parameter with min/max, or use a lognormal "
                "distribution, to keep it physical)"
            )
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
