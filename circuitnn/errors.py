"""The exception tree of circuitnn.

Every error the library raises on purpose derives from :class:`CircuitnnError`, so callers (and the
CLI) can tell a user error from a bug.
"""

from __future__ import annotations


class CircuitnnError(Exception):
    """Base class of every error circuitnn raises on purpose."""


class ConfigError(CircuitnnError, ValueError):
    """A spec, option or argument is invalid; the message names the offending field."""


class NetlistError(CircuitnnError):
    """ngspice rejected a netlist; the message quotes ngspice's message and the line."""


class SimulationError(CircuitnnError):
    """A simulation could not be run or its output not read (crash, timeout, bad output)."""


class ConvergenceError(SimulationError):
    """ngspice ran but did not converge (DC sweep aborted, timestep too small, singular matrix)."""


class SimulationTimeout(SimulationError):
    """ngspice did not finish within the time limit and was stopped."""


class SimulatorCrash(SimulationError):
    """ngspice itself crashed (killed by a signal): not a property of the circuit."""


class InstanceRejected(SimulationError):
    """ngspice refused the parameters of particular instances of a batched bench (e.g. a
    negative channel length); ``positions`` are their places in the bench (``xn<k>``)."""

    def __init__(self, message: str, positions: frozenset[int], detail: str = "") -> None:
        super().__init__(message)
        self.positions = positions
        self.detail = detail  # what ngspice said, without naming the run

    def __reduce__(self) -> tuple[object, ...]:  # picklable across worker processes
        return (type(self), (str(self), self.positions, self.detail))


class StoreError(CircuitnnError):
    """The HDF5 store is unreadable, corrupt, locked or cannot be written; names the file."""


class StoreFilterMissing(StoreError):
    """A stored dataset needs an HDF5 compression filter this Python cannot load: the file is
    not damaged (``circuitnn store repair`` leaves it as it is); names the file."""


class SimulatorWarning(UserWarning):
    """ngspice warned about a neuron's netlist (shown once per family, stored with it)."""


def log_tail(text: str, lines: int = 12) -> str:
    """Return the last ``lines`` non-empty lines of a simulator log, indented for error messages."""
    kept = [line.rstrip() for line in text.splitlines() if line.strip()]
    return "\n".join("    " + line for line in kept[-lines:])
