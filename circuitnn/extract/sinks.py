"""Where a family's pieces go as chunks arrive: the protocol, and an in-memory sink.

:class:`MemoryFamily` fills arrays and returns a :class:`~circuitnn.family.Family`; the store's
:class:`~circuitnn.store.writers.FamilyWriter` is the other sink (bounded memory).
"""

from __future__ import annotations

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
        stop = start + len(status)
        for name, values, target in (
            ("curves", curves, self._arrays),
            ("supply_current", supply_current, self._arrays),
            ("input_current", input_current, self._arrays),
            ("power", power, self._arrays),
            ("status", status, self._arrays),
            *((name, values, self._arrays) for name, values in (extra or {}).items()),
            *((name, values, self._descriptors) for name, values in descriptors.items()),
        ):
            if name not in target:
                target[name] = np.empty((self.n, *values.shape[1:]), dtype=values.dtype)
            target[name][start:stop] = values
        self._reasons[start:stop] = list(reasons)

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
