"""Read ngspice binary raw files, as written by ``ngspice -b -r FILE``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from circuitnn.errors import SimulationError


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
    # the header is text up to the line "Binary:" (or "Values:"); decoded and split at once
    ends = [data.find(mark, position) for mark in (b"\nBinary:\n", b"\nValues:\n")]
    found = [end for end in ends if end >= 0]
    if not found:
        raise SimulationError(f"{source}: truncated header")
    end = min(found)
    key = "binary" if end == ends[0] else "values"
    lines = data[position:end].decode("latin-1").split("\n")
    position = end + len("\nBinary:\n")
    header: dict[str, str] = {}
    names: list[str] = []
    for line in lines:
        if line.startswith("\t") and "variables" in header:
            names.append(line.split("\t")[2].lower())
            continue
        name, _, value = line.partition(":")
        header[name.strip().lower()] = value.strip()
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
