"""Neuron specs: which ports a ``.subckt`` has, how it is driven, what is measured, what varies.

A spec is a frozen dataclass, loaded from the TOML file beside a netlist (see ``netlists/*.toml``)
or built in Python, and checked by :func:`~circuitnn.neuron.spec_check.validated`. All numbers
are SI units (V, A, Ω, m, °C) after parsing.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from circuitnn.errors import ConfigError
from circuitnn.neuron.includes import IncludedFile, portable_text
from circuitnn.neuron.netlist import Subcircuit
from circuitnn.neuron.pdk import Pdk
from circuitnn.neuron.simulator import Simulator
from circuitnn.neuron.spec_check import validated
from circuitnn.neuron.units import parse_spice

DISTRIBUTIONS = ("normal", "lognormal", "uniform")


DEFAULT_LOAD = 100e-15  # F per output node: the input of a next stage, unless a spec says


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
    """Die-to-die (``global_``, shared by a chip) and mismatch (``local``, per neuron) variation.

    ``minimum``/``maximum`` bound the varied value (e.g. a channel length above 0): each draw
    comes from its distribution truncated to the values that keep the parameter in bounds (not
    clipped: no mass piles up at a bound).
    """

    parameter: str
    global_: Distribution | None = None
    local: Distribution | None = None
    minimum: float | None = None
    maximum: float | None = None


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
    """Uniform DC input sweep: ``points`` values from ``start`` to ``stop`` volts (inclusive).

    ``direction``: ``"up"`` sweeps from start to stop, ``"down"`` from stop to start, ``"both"``
    does both (two branches of a circuit with hysteresis; the up branch is the family's curves).
    Curves are always stored in increasing input order.
    """

    start: float
    stop: float
    points: int = 401
    common_mode: float = 0.0
    direction: str = "up"

    @property
    def directions(self) -> tuple[str, ...]:
        """The sweeps run, the family's main branch first."""
        return ("up", "down") if self.direction == "both" else (self.direction,)

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
    ``load_capacitance`` farads to ground (each node of a differential output; default
    :data:`DEFAULT_LOAD`, 100 fF), the input of the next stage, which sets the neuron's speed
    and filters its noise; 0 leaves the output unloaded.

    ``devices`` (default true): every instance also records its transistors' realized
    parameters at the middle of the sweep, read back from ngspice (a MOSFET's threshold voltage
    (V), drain current (A) and transconductance (S), a bipolar transistor's collector current,
    transconductance and base-emitter voltage; see :mod:`circuitnn.neuron.devices`); false
    leaves them out (their ``.op`` is a noticeable share of a fast level-1 chunk's run).
    """

    quantity: str = "voltage"
    load_voltage: float = 0.0
    invert: bool = False
    load_capacitance: float = DEFAULT_LOAD
    devices: bool = True

    @property
    def unit(self) -> str:
        """SI unit of the output quantity."""
        return "A" if self.quantity == "current" else "V"


@dataclass(frozen=True)
class NeuronSpec:
    """A neuron circuit ready to simulate: netlist, test bench, nominal values and variations.

    ``netlist_text`` names included files only as listed in ``includes`` (see
    :mod:`circuitnn.neuron.includes`); ``allow_control`` admits control blocks and other cards a
    neuron does not need (:mod:`circuitnn.neuron.safety`). Every netlist is checked before it
    reaches ngspice, however the spec was made.
    """

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
    includes: tuple[IncludedFile, ...] = ()
    allow_control: bool = False
    simulator: Simulator = field(default_factory=Simulator)
    pdk: Pdk | None = None

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Parameter names in table column order."""
        return tuple(self.parameters)

    def nominal(self, corner: str | None = None) -> dict[str, float]:
        """Nominal parameter values, shifted by the additive offsets of ``corner`` if given."""
        values = dict(self.parameters)
        if corner is None:
            return values
        if corner not in self.corners and self.pdk is not None and corner in self.pdk.sections:
            return values  # (a section of the kit: see circuitnn.neuron.pdk.at_corner)
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
        return validated(dataclasses.replace(self, parameters=updated))

    def with_temperature(self, celsius: float) -> NeuronSpec:
        """A copy simulated at ``celsius`` °C."""
        return validated(dataclasses.replace(self, temperature=parse_spice(celsius, "temperature")))

    def with_simulator(self, **changes: object) -> NeuronSpec:
        """A copy with some simulator settings replaced (``reltol``, ``abstol``, ``vntol``;
        ``options``, a mapping, is merged into the spec's)."""
        return dataclasses.replace(self, simulator=self.simulator.replaced(**changes))

    def identity(self) -> dict[str, Any]:
        """Everything about the spec that determines simulation results, as plain JSON data."""
        return {
            "name": self.name,
            "subckt": self.subckt.name,
            "netlist": portable_text(self.netlist_text, self.includes),
            "includes": [included.digest for included in self.includes],
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
            "simulator": self.simulator.identity(),
            **({"pdk": self.pdk.identity()} if self.pdk is not None else {}),
        }
