"""The only part of circuitnn that runs ngspice (a subprocess, or libngspice via PySpice)."""

from circuitnn.spice.engines import Engine, available_engines, get_engine
from circuitnn.spice.ngspice_process import ngspice_version

__all__ = ["Engine", "available_engines", "get_engine", "ngspice_version"]
