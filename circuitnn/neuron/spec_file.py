"""Reading a neuron spec from its TOML file (or TOML-shaped data) into a :class:`NeuronSpec`."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from circuitnn.errors import ConfigError
from circuitnn.neuron.includes import load_netlist
from circuitnn.neuron.netlist import find_subckt
from circuitnn.neuron.pdk import attach, device_sizes, pdk_from_dict
from circuitnn.neuron.simulator import Simulator, simulator_from_dict
from circuitnn.neuron.spec import (
    DEFAULT_LOAD,
    DISTRIBUTIONS,
    Distribution,
    NeuronSpec,
    Output,
    Ports,
    Sweep,
    Variation,
)
from circuitnn.neuron.spec_check import validated
from circuitnn.neuron.units import parse_spice
from circuitnn.toml_file import read_toml

# the keys each table of a spec may hold (any other is a mistake, refused with the valid ones)
SPEC_KEYS = {
    "": (
        "name",
        "description",
        "netlist",
        "subckt",
        "temperature",
        "ports",
        "sweep",
        "output",
        "parameters",
        "variation",
        "corners",
        "simulator",
        "pdk",
    ),
    "ports": ("input", "output", "supplies", "ground", "bias", "measure_input_current"),
    "sweep": ("start", "stop", "points", "common_mode", "direction"),
    "output": ("quantity", "load_voltage", "invert", "load_capacitance", "devices"),
}


def load_spec(path: str | Path, allow_control: bool = False) -> NeuronSpec:
    """Load a neuron spec from its TOML file (the netlist path inside is relative to it).

    A path to a ``.cir``/``.sp`` netlist is accepted too when a ``.toml`` of the same stem lies
    beside it. ``allow_control`` admits netlists with ``.control`` blocks, ``shell`` commands and
    other cards a neuron does not need (see :mod:`circuitnn.neuron.safety`).
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
    strict_keys(data, SPEC_KEYS[""], f"{source}: the spec")
    name = reader.text("name")
    netlist_path = Path(reader.text("netlist"))
    if not netlist_path.is_absolute():
        netlist_path = directory / netlist_path
    netlist = load_netlist(netlist_path, f"{source}: netlist")
    subckt = find_subckt(netlist.texts, reader.text("subckt", default=name))
    kit_table = None
    if "pdk" in data:  # (checked before the rest: a missing kit is the first thing to fix)
        kit_table = pdk_from_dict(
            _as_table(data["pdk"], f"{source}: [pdk]"), directory, f"{source}: [pdk]"
        )

    ports_data = reader.table("ports")
    strict_keys(ports_data, SPEC_KEYS["ports"], f"{source}: [ports]")
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
    strict_keys(sweep_data, SPEC_KEYS["sweep"], f"{source}: [sweep]")
    sweep = Sweep(
        start=parse_spice(_need(sweep_data, "start", f"{source}: sweep"), f"{source}: sweep.start"),
        stop=parse_spice(_need(sweep_data, "stop", f"{source}: sweep"), f"{source}: sweep.stop"),
        points=_integer(sweep_data.get("points", 401), f"{source}: sweep.points"),
        common_mode=parse_spice(sweep_data.get("common_mode", 0.0), f"{source}: sweep.common_mode"),
        direction=_text(sweep_data.get("direction", "up"), f"{source}: sweep.direction"),
    )
    output_data = reader.table("output", required=False)
    strict_keys(output_data, SPEC_KEYS["output"], f"{source}: [output]")
    output = Output(
        quantity=str(output_data.get("quantity", "voltage")),
        load_voltage=parse_spice(
            output_data.get("load_voltage", 0.0), f"{source}: output.load_voltage"
        ),
        invert=bool(_flag(output_data.get("invert", False), f"{source}: output.invert")),
        load_capacitance=parse_spice(
            output_data.get("load_capacitance", DEFAULT_LOAD), f"{source}: output.load_capacitance"
        ),
        devices=bool(_flag(output_data.get("devices", True), f"{source}: output.devices")),
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
    netlist_text, includes, pdk = netlist.text, netlist.includes, None
    if kit_table is not None:
        library, corner, mismatch = kit_table
        texts = [netlist.text, *(i.text for i in netlist.includes if i.text is not None)]
        varied = {variation.parameter for variation in variations}
        pdk, netlist_text, includes = attach(
            data["pdk"].get("name", "custom"),
            library,
            corner,
            mismatch,
            netlist.text,
            netlist.includes,
            texts,
            device_sizes(texts, parameters, varied, corners),
        )
        if pdk.mismatch:
            variations = _with_kit_mismatch(variations, pdk.mismatch_parameters, f"{source}: [pdk]")
    spec = NeuronSpec(
        name=name,
        subckt=subckt,
        netlist_text=netlist_text,
        netlist_source=netlist.source,
        ports=ports,
        sweep=sweep,
        output=output,
        parameters=parameters,
        variations=variations,
        corners=corners,
        temperature=parse_spice(data.get("temperature", 27.0), f"{source}: temperature"),
        description=str(data.get("description", "")),
        includes=includes,
        allow_control=allow_control,
        pdk=pdk,
        simulator=(
            simulator_from_dict(data["simulator"], f"{source}: [simulator]")
            if "simulator" in data
            else Simulator()
        ),
    )
    return validated(spec, source)


def _with_kit_mismatch(
    variations: tuple[Variation, ...], parameters: tuple[str, ...], where: str
) -> tuple[Variation, ...]:
    """``variations`` plus a standard normal mismatch (``local``) of each parameter the netlist
    passes to a kit mismatch parameter (see :mod:`circuitnn.neuron.pdk`)."""
    if not parameters:
        raise ConfigError(
            f"{where}: mismatch = true, but the netlist passes no kit mismatch parameter to a "
            "device (e.g. XMn d g s b sky130_fd_pr__nfet_01v8 w={w} l={l} mm_vth0={z_vth0_n})"
        )
    varied = {variation.parameter for variation in variations}
    unit_normal = Distribution(distribution="normal", sigma=1.0)
    added = tuple(Variation(p, local=unit_normal) for p in parameters if p not in varied)
    return (*variations, *added)


def strict_keys(table: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    """:class:`ConfigError` naming the first key of ``table`` not in ``allowed`` (with a close
    match, if any, and the valid keys)."""
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.8)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"{where}: unknown key {key!r}{hint}; valid keys: {', '.join(allowed)}"
            )


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected text, got {value!r}")
    return value


def _variation(parameter: str, data: object, where: str) -> Variation:
    table = _as_table(data, where)
    strict_keys(table, ("global", "local", "min", "max"), where)
    if "global" not in table and "local" not in table:
        raise ConfigError(f"{where}: give a 'global' and/or 'local' distribution")
    return Variation(
        parameter=parameter,
        global_=_distribution(table["global"], f"{where}.global") if "global" in table else None,
        local=_distribution(table["local"], f"{where}.local") if "local" in table else None,
        minimum=parse_spice(table["min"], f"{where}.min") if "min" in table else None,
        maximum=parse_spice(table["max"], f"{where}.max") if "max" in table else None,
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
