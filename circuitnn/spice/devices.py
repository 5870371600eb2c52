"""The realized device parameters of a batch of instances: one ``.op`` with the input at a
reference value, reading each transistor's quantities back from ngspice (a MOSFET's threshold
voltage, drain current and transconductance, a bipolar transistor's collector current,
transconductance and base-emitter voltage; see :mod:`circuitnn.neuron.devices`)."""

from __future__ import annotations

import numpy as np

from circuitnn.neuron.devices import Device, transistors
from circuitnn.neuron.spec import NeuronSpec
from circuitnn.neuron.units import format_spice
from circuitnn.neuron.variation import ParameterTable
from circuitnn.spice.benches import SWEEP_SOURCE, _circuit, _finish, _option_cards, _wrap
from circuitnn.spice.engines import PRELUDE, get_engine
from circuitnn.spice.session import PRELUDE_RAW


def reference_input(spec: NeuronSpec) -> float:
    """The input (V) at which devices are read: the middle of the sweep."""
    return 0.5 * (spec.sweep.start + spec.sweep.stop)


def device_columns(spec: NeuronSpec) -> list[tuple[str, Device, str]]:
    """(column name ``<quantity>_<device label>``, device, quantity) of every recorded value."""
    columns = []
    for device in transistors(spec):
        for quantity in device.vectors("xn0"):
            columns.append((f"{quantity}_{device.label}", device, quantity))
    return columns


def device_parameters(
    spec: NeuronSpec, table: ParameterTable, engine: str, timeout: float
) -> dict[str, np.ndarray]:
    """Column name → (N,) realized value of each instance (units in
    :data:`~circuitnn.family.descriptors.DEVICE_UNITS`; drain current as ngspice signs it);
    empty when the neuron has no transistor. Raises the engine's error when the ``.op`` fails."""
    columns = device_columns(spec)
    if not columns or not len(table):
        return {}
    source = f"{SWEEP_SOURCE} x 0 DC {format_spice(reference_input(spec))}"
    lines, bench = _circuit(spec, table, source)
    names = _names(columns, len(table))
    flat = [name for row in names for name in row]
    lines += [*_option_cards(spec), *_wrap(".save", flat), ".op"]
    text = _finish(lines, bench).text
    found = get_engine(engine).run(
        text, [_raw_name(n) for n in flat], 1, timeout, f"{spec.name} devices", spec.includes
    )
    return _columns(columns, names, found, "")


def device_prelude(spec: NeuronSpec, instances: int, saved: tuple[str, ...]) -> tuple[str, ...]:
    """Control commands that read the same values as :func:`device_parameters` from a DC bench's
    own circuit, already loaded, before its sweep (a :class:`~circuitnn.spice.session.Job`
    prelude; no second ngspice process reading the batch again): the input moved to the
    reference, one ``op``, its ``write``; then the bench's own ``saved`` vectors saved again for
    the sweep. Empty when the neuron has no transistor."""
    columns = device_columns(spec)
    if not columns:
        return ()
    flat = [name for row in _names(columns, instances) for name in row]
    return (
        f"alter {SWEEP_SOURCE} dc = {format_spice(reference_input(spec))}",
        *_wrap("save", flat),
        "op",
        f"write {PRELUDE_RAW}",
        "destroy all",
        "delete all",
        *_wrap("save", list(saved)),
    )


def prelude_parameters(
    spec: NeuronSpec, instances: int, vectors: dict[str, np.ndarray]
) -> dict[str, np.ndarray] | None:
    """:func:`device_parameters`' columns from the vectors of a job run with
    :func:`device_prelude` (None when the prelude gave none: the engine skipped it, or its
    ``op`` failed)."""
    columns = device_columns(spec)
    names = _names(columns, instances)
    wanted = [PRELUDE + _raw_name(name) for row in names for name in row]
    if not columns or not all(name in vectors for name in wanted):
        return None
    return _columns(columns, names, vectors, PRELUDE)


def _names(columns: list[tuple[str, Device, str]], instances: int) -> list[list[str]]:
    return [
        [device.vectors(f"xn{k}")[quantity] for _, device, quantity in columns]
        for k in range(instances)
    ]


def _columns(
    columns: list[tuple[str, Device, str]],
    names: list[list[str]],
    found: dict[str, np.ndarray],
    prefix: str,
) -> dict[str, np.ndarray]:
    return {
        column: np.array(
            [np.real(found[prefix + _raw_name(names[k][j])][0]) for k in range(len(names))]
        )
        for j, (column, _, _) in enumerate(columns)
    }


def _raw_name(name: str) -> str:
    """ngspice's name in a raw file of a saved ``@`` vector (``v(…)`` for a voltage,
    ``i(…)`` for a current, bare otherwise)."""
    quantity = name[name.rindex("[") + 1 : -1]
    if quantity in ("vth", "von", "vbe"):
        return f"v({name})"
    if quantity in ("id", "ic"):
        return f"i({name})"
    return name
