"""Read ngspice binary raw files, as written by ``ngspice -b -r FILE``."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np

from circuitnn.errors import SimulationError

_VECTOR_NAME = re.compile(r"^\t\d+\t([^\t\n]+)", re.MULTILINE)  # "\t<index>\t<name>\t<type>"


@dataclass(frozen=True)
class RawPlot:
    """One plot of a raw file: its name and vectors (lower-case names → arrays)."""

    name: str
    vectors: dict[str, np.ndarray]


def read_raw(data: bytes, source: str = "raw file") -> list[RawPlot]:
    """Parse every plot in a raw file's bytes; complex data comes back as complex arrays (the
    scale vector of a complex plot, e.g. frequency in Hz, with a zero imaginary part)."""
    plots = []
    position = 0
    while position < len(data):
        plot, position = _read_plot(data, position, source)
        plots.append(plot)
    return plots


def _read_plot(data: bytes, position: int, source: str) -> tuple[RawPlot, int]:
    # the header is text up to the line "Binary:" (ASCII files: "Values:"), decoded at once;
    # its lines "key: value", then after "Variables:" one tab-indented line per vector
    end = data.find(b"\nBinary:\n", position)
    key = "binary"
    ascii_at = data.find(b"\nValues:\n", position, None if end < 0 else end)
    if ascii_at >= 0:
        end, key = ascii_at, "values"
    if end < 0:
        raise SimulationError(f"{source}: truncated header")
    text = data[position:end].decode("latin-1")
    position = end + len("\nBinary:\n")
    fields, _, variables = text.partition("\nVariables:")
    header: dict[str, str] = {}
    for line in fields.split("\n"):
        name, _, value = line.partition(":")
        header[name.strip().lower()] = value.strip()
    names = _vector_names(variables)
    try:
        count = int(header["no. variables"])
        points = int(header["no. points"])
    except (KeyError, ValueError):
        raise SimulationError(f"{source}: malformed header {header}") from None
    is_complex = "complex" in header.get("flags", "").lower()
    width = 2 if is_complex else 1
    if key != "binary":
        raise SimulationError(
            f"{source}: ASCII raw files are not supported (unset SPICE_ASCIIRAWFILE)"
        )
    size = points * count * width * 8
    if len(data) - position < size:
        raise SimulationError(f"{source}: expected {points} points, data is truncated")
    values = np.frombuffer(data, dtype="<f8", count=points * count * width, offset=position)
    position += size
    table = values.view("<c16") if is_complex else values
    columns = np.ascontiguousarray(table.reshape(points, count).T)  # one copy; rows are vectors
    if is_complex and count:
        # ngspice sets only the real part of an AC plot's frequency (its scale, the first
        # vector) and writes whatever memory held as the imaginary part, at times inf or NaN
        columns[0] = columns[0].real
    vectors = dict(zip(names, columns, strict=True))
    return RawPlot(header.get("plotname", ""), vectors), position


@functools.lru_cache(maxsize=16)
def _vector_names(variables: str) -> tuple[str, ...]:
    """The vector names (lower case) of a header's variables section (the same circuit's files,
    one per bias of a chunk, share it: read once)."""
    return tuple(_VECTOR_NAME.findall(variables.lower()))
