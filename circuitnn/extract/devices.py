"""A chunk's realized device parameters (see :mod:`circuitnn.spice.devices`): every MOSFET's
threshold voltage, drain current and transconductance and every bipolar transistor's collector
current, transconductance and base-emitter voltage at the middle of the sweep, read back from
ngspice for the chunk's instances in one ``.op``. They are stored as descriptors named
``vth_<device>``, ``id_<device>``, ``gm_<device>``, ``ic_<device>``, ``vbe_<device>``.

The chunk's batch reads them in its own ngspice run (:func:`~circuitnn.spice.devices.
device_prelude`); :func:`realized_devices` runs that ``.op`` on its own where the batch could
not (an engine without sessions, a failed instance), with the same values. Recorded for every
neuron with transistors unless its ``[output]`` says ``devices = false`` (part of the family's key;
``benchmarks/bench_extract.py`` prints what the ``.op`` costs ngspice)."""

from __future__ import annotations

import numpy as np

from circuitnn.errors import NetlistError, SimulationError
from circuitnn.neuron.devices import records_devices
from circuitnn.neuron.spec import NeuronSpec
from circuitnn.neuron.variation import ParameterTable
from circuitnn.spice.devices import device_columns, device_parameters


def realized_devices(
    spec: NeuronSpec, table: ParameterTable, engine: str, timeout: float, ok: np.ndarray
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Column → (N,) values (NaN for instances that failed their DC run) and the log lines
    saying why values are missing (an ``.op`` that fails for the batch is run per instance)."""
    if not records_devices(spec):
        return {}, []
    columns = [column for column, _, _ in device_columns(spec)]
    values = {column: np.full(len(table), np.nan) for column in columns}
    notes: list[str] = []
    rows = np.flatnonzero(ok)
    if not columns or not len(rows):
        return values, notes
    try:
        batches = [(rows, device_parameters(spec, table.rows(rows), engine, timeout))]
    except NetlistError:
        raise
    except SimulationError:
        batches = []
        for row in rows:
            try:
                one = device_parameters(spec, table.rows(np.array([row])), engine, timeout)
            except NetlistError:
                raise
            except SimulationError as error:
                notes.append(f"instance {int(table.index[row])}: no device values: {error}")
                continue
            batches.append((np.array([row]), one))
    for selected, found in batches:
        for column, array in found.items():
            values[column][selected] = array
    return values, notes
