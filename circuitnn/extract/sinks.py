"""Where a family's pieces go as chunks arrive: the protocol, and an in-memory sink.

:class:`MemoryFamily` fills arrays and returns a :class:`~circuitnn.family.Family`; the store's
:class:`~circuitnn.store.writers.FamilyWriter` is the other sink (bounded memory);
:class:`KeepingSink` wraps one and keeps the N×K arrays for the caller.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import numpy as np

from circuitnn.family import Family
from circuitnn.neuron.spec import NeuronSpec


class FamilySink(Protocol):
    """Where a family's pieces go as they are made: a :class:`~circuitnn.store.writers.FamilyWriter`
    (HDF5, bounded memory) or a :class:`MemoryFamily`."""

    def write_header(
        self,
        attrs: dict[str, Any],
        grid: np.ndarray,
        output_unit: str,
        parameter_names: tuple[str, ...],
        parameters: np.ndarray,
        chip: np.ndarray,
    ) -> None: ...

    def write_rows(
        self,
        start: int,
        curves: np.ndarray,
        supply_current: np.ndarray,
        input_current: np.ndarray,
        power: np.ndarray,
        status: np.ndarray,
        reasons: list[str],
        descriptors: dict[str, np.ndarray],
        extra: dict[str, np.ndarray] | None = None,
    ) -> None: ...

    def finish(
        self,
        nominal_curve: np.ndarray,
        attrs: dict[str, Any] | None = None,
        extra: dict[str, np.ndarray] | None = None,
    ) -> None: ...


def put_rows(
    target: dict[str, np.ndarray], n: int, start: int, rows: dict[str, np.ndarray]
) -> None:
    """Copy each array of ``rows`` into ``target``'s array of that name at rows ``start``…,
    making it (``n`` rows, the same trailing shape and dtype) on first use."""
    for name, values in rows.items():
        if name not in target:
            target[name] = np.empty((n, *values.shape[1:]), dtype=values.dtype)
        target[name][start : start + len(values)] = values


class MemoryFamily:
    """A :class:`FamilySink` that fills in-memory arrays and returns them as a :class:`Family`."""

    def __init__(self, key: str, spec: NeuronSpec, n: int) -> None:
        self.key, self.spec, self.n = key, spec, n
        self._arrays: dict[str, np.ndarray] = {}
        self._descriptors: dict[str, np.ndarray] = {}
        self._reasons = [""] * n
        self._header: dict[str, Any] = {}

    def write_header(
        self,
        attrs: dict[str, Any],
        grid: np.ndarray,
        output_unit: str,
        parameter_names: tuple[str, ...],
        parameters: np.ndarray,
        chip: np.ndarray,
    ) -> None:
        """Keep the provenance, grid and parameter table."""
        self._header = {
            "attrs": dict(attrs),
            "grid": grid,
            "output_unit": output_unit,
            "parameter_names": parameter_names,
            "parameters": parameters,
            "chip": chip,
        }

    def write_rows(
        self,
        start: int,
        curves: np.ndarray,
        supply_current: np.ndarray,
        input_current: np.ndarray,
        power: np.ndarray,
        status: np.ndarray,
        reasons: list[str],
        descriptors: dict[str, np.ndarray],
        extra: dict[str, np.ndarray] | None = None,
    ) -> None:
        """Copy one chunk's rows into the family's arrays."""
        rows = {
            "curves": curves,
            "supply_current": supply_current,
            "input_current": input_current,
            "power": power,
            "status": status,
            **(extra or {}),
        }
        put_rows(self._arrays, self.n, start, rows)
        put_rows(self._descriptors, self.n, start, descriptors)
        self._reasons[start : start + len(status)] = list(reasons)

    def finish(
        self,
        nominal_curve: np.ndarray,
        attrs: dict[str, Any] | None = None,
        extra: dict[str, np.ndarray] | None = None,
    ) -> None:
        """Keep the nominal curve, the last attributes and other whole-family arrays."""
        self._header["nominal_curve"] = nominal_curve
        self._header["attrs"].update(attrs or {})
        self._header.update(extra or {})

    def family(self) -> Family:
        """The finished family."""
        header, arrays = self._header, self._arrays
        return Family(
            key=self.key,
            neuron=self.spec.name,
            grid=header["grid"],
            curves=arrays["curves"],
            nominal_curve=header["nominal_curve"],
            supply_current=arrays["supply_current"],
            supplies=tuple(self.spec.ports.supplies),
            input_current=arrays["input_current"],
            power=arrays["power"],
            parameter_names=header["parameter_names"],
            parameters=header["parameters"],
            chip=header["chip"],
            status=arrays["status"],
            reasons=self._reasons,
            descriptors=self._descriptors,
            output_unit=header["output_unit"],
            attrs=header["attrs"],
            run_alone=arrays.get("run_alone"),
            curves_down=arrays.get("curves_down"),
            nominal_curve_down=header.get("nominal_curve_down"),
        )


KEPT = ("curves", "supply_current", "input_current", "power")
"""The N×K arrays a :class:`KeepingSink` keeps (and ``curves_down``, when written)."""


class KeepingSink:
    """A :class:`FamilySink` that hands everything on to ``sink`` and keeps a copy of the N×K
    arrays (:data:`KEPT`), so a family just written to a store is returned without reading them
    back (:meth:`with_arrays`). It runs in the writer thread like the sink it wraps."""

    def __init__(self, sink: FamilySink, n: int) -> None:
        self.sink, self.n = sink, n
        self.arrays: dict[str, np.ndarray] = {}
        self._rows = 0

    def write_header(self, *header: Any) -> None:
        self.sink.write_header(*header)

    def write_rows(
        self,
        start: int,
        curves: np.ndarray,
        supply_current: np.ndarray,
        input_current: np.ndarray,
        power: np.ndarray,
        status: np.ndarray,
        reasons: list[str],
        descriptors: dict[str, np.ndarray],
        extra: dict[str, np.ndarray] | None = None,
    ) -> None:
        """Hand the rows on, then copy the N×K ones."""
        self.sink.write_rows(
            start, curves, supply_current, input_current, power, status, reasons, descriptors, extra
        )
        down = {"curves_down": extra["curves_down"]} if extra and "curves_down" in extra else {}
        values_of = dict(zip(KEPT, (curves, supply_current, input_current, power), strict=True))
        put_rows(self.arrays, self.n, start, {**values_of, **down})
        self._rows += len(status)

    def finish(
        self,
        nominal_curve: np.ndarray,
        attrs: dict[str, Any] | None = None,
        extra: dict[str, np.ndarray] | None = None,
    ) -> None:
        self.sink.finish(nominal_curve, attrs, extra)

    def with_arrays(self, family: Family) -> Family | None:
        """``family`` (loaded without its arrays) with the kept ones; None unless as many rows
        were written as the family has and its row shapes are the kept ones."""
        if self._rows != self.n or ("curves_down" in self.arrays) != (
            family.curves_down is not None
        ):
            return None
        for name, values in self.arrays.items():
            if getattr(family, name).shape[1:] != values.shape[1:]:
                return None
        return dataclasses.replace(family, **self.arrays)
