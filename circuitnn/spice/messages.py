"""Classify ngspice's messages here (PySpice 1.5 calls every non-"Warning:" stderr line an error).

ngspice prints notes ("Note: Starting dynamic gmin stepping"), warnings, netlist errors and
convergence failures on stdout and stderr alike; only the text tells them apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from circuitnn.errors import (
    ConvergenceError,
    InstanceRejected,
    NetlistError,
    SimulationError,
    log_tail,
)

_CONVERGENCE = re.compile(
    r"timestep too small|iteration limit|gmin stepping failed|source stepping failed|"
    r"no convergence|doanalyses|trouble with|simulation\(s\) aborted|dc solution failed|"
    r"op failed|singular matrix",
    re.IGNORECASE,
)
_GENERIC = re.compile(r"simulation\(s\) aborted", re.IGNORECASE)
_NETLIST = re.compile(
    r"error on line|unknown subckt|unknown model|unknown parameter|could not find|"
    r"no such|syntax error|undefined|unable to find|can't find model|not found|"
    r"simulation interrupted due to error|fatal|mismatch|too (few|many) (nodes|parameters)|"
    r"cannot open|error:",
    re.IGNORECASE,
)
# the same patterns for lower-cased text (a tenth of the time of IGNORECASE on a whole log)
_CONVERGENCE_LOWER = re.compile(_CONVERGENCE.pattern)
_NETLIST_LOWER = re.compile(_NETLIST.pattern)
_BENIGN = re.compile(
    r"^(note:|warning:|info:|\*\*|ngspice|using |circuit:|binary raw file|doing analysis|"
    r"no\. of data|total |dram|maximum ngspice|current ngspice|shared ngspice|text \(code\)|"
    r"stack =|library pages|reference value|$)",
    re.IGNORECASE,
)


# an instance of a batched bench, as ngspice names it in messages: xn3:model, m.xn3.m1, xn3.m1
_INSTANCE = re.compile(r"(?<![A-Za-z0-9_])xn(\d+)(?=[:.])", re.IGNORECASE)
# errors in the netlist's text (every instance has them), as opposed to refused parameter values
_PARSE = re.compile(
    r"error on line|could not find|unknown (subckt|model|parameter)|can't find model|syntax|"
    r"not parsed|undefined|unable to find|too (few|many)",
    re.IGNORECASE,
)
# the benches skip ngspice's direct Newton attempt (noopiter): gmin stepping is its first method,
# source stepping (or gmin stepping after a direct attempt failed) a fallback
_AID = re.compile(r"starting .*source stepping|gmin stepping failed", re.IGNORECASE)
_WARNING = re.compile(r"^warning\b", re.IGNORECASE)


def instance_positions(text: str) -> frozenset[int]:
    """The places ``k`` of the bench instances (``xn<k>``) a message names."""
    return frozenset(int(number) for number in _INSTANCE.findall(text))


def convergence_aids(log: str) -> int:
    """How many times ngspice fell back on source stepping (gmin stepping having failed) in the
    run of ``log``."""
    return sum(1 for line in log.splitlines() if _AID.search(line))


def warnings_in(log: str) -> list[str]:
    """ngspice's warnings in ``log`` about the netlist, each with the lines that continue it (the
    model line, "unrecognized parameter (lamda) - ignored"), whitespace collapsed, in order,
    without repeats. Warnings about convergence ("dynamic gmin stepping failed", which ngspice
    follows with another fallback) are not about the netlist and are left out."""
    found: list[str] = []
    lines = [line.strip() for line in log.splitlines()]
    for number, line in enumerate(lines):
        if not _WARNING.match(line):
            continue
        block = [line]
        for follower in lines[number + 1 :]:
            if not follower or _WARNING.match(follower) or _BENIGN.match(follower):
                break
            if follower.lower().startswith(("error", "circuitnn-job")):
                break
            block.append(follower)
        text = " | ".join(" ".join(part.split()) for part in block)
        if re.search(r"stepping|converge|timestep", text, re.IGNORECASE):
            continue
        if text not in found:
            found.append(text)
    return found


def normalized_warning(text: str) -> str:
    """A warning with the instance number and line number taken out, for comparing the
    warnings of one instance with those of the nominal circuit."""
    text = _INSTANCE.sub("xn*", text)
    return re.sub(r"line \d+", "line *", text).lower()


@dataclass(frozen=True)
class Diagnosis:
    """ngspice's output sorted: lines that are errors, convergence failures, and the rest."""

    netlist_errors: tuple[str, ...]
    convergence_errors: tuple[str, ...]


def diagnose(log: str) -> Diagnosis:
    """Sort the lines of an ngspice log into netlist errors and convergence failures."""
    text = log.lower()
    if not (_CONVERGENCE_LOWER.search(text) or _NETLIST_LOWER.search(text)):
        return Diagnosis((), ())  # a clean log: read once, not line by line
    netlist, convergence = [], []
    lines = [line.strip() for line in log.splitlines()]
    for number, line in enumerate(lines):
        lowered = line.lower()
        if _CONVERGENCE.search(line) and not lowered.startswith(("warning:", "note:")):
            convergence.append(line)
        elif lowered.startswith("error on line") or (
            _NETLIST.search(line) and not _BENIGN.match(line)
        ):
            context = " | ".join(part for part in lines[number : number + 3] if part)
            netlist.append(context if lowered.startswith("error on line") else line)
    return Diagnosis(tuple(netlist), tuple(convergence))


def raise_for_log(log: str, what: str, complete: bool) -> None:
    """Raise the right error for a run whose log is ``log``; ``complete``: all points came back.

    Netlist errors win over convergence failures (an unknown model also stops the analysis).
    """
    diagnosis = diagnose(log)
    refused = [
        line
        for line in diagnosis.netlist_errors
        if instance_positions(line) and not _PARSE.search(line)
    ]
    if refused and not any(_PARSE.search(line) for line in diagnosis.netlist_errors):
        # a fatal error about particular instances' parameters (BSIM4: "Effective channel length
        # <= 0"): those instances fail, the others are run again without them
        positions = frozenset().union(*(instance_positions(line) for line in refused))
        detail = f"ngspice refused the instance's parameters: {refused[0]}"
        raise InstanceRejected(f"{what}: {detail}\n{log_tail(log)}", positions, detail)
    if diagnosis.netlist_errors:
        # ngspice's own "Error on line N" names the line; prefer it over an earlier warning
        located = [line for line in diagnosis.netlist_errors if line.lower().startswith("error")]
        first = (located or list(diagnosis.netlist_errors))[0]
        raise NetlistError(f"{what}: ngspice rejected the netlist: {first}\n{log_tail(log)}")
    if diagnosis.convergence_errors and not complete:
        # name the cause ("Timestep too small ... trouble with node"), not the closing
        # "run simulation(s) aborted": the first line is what a failed instance keeps as reason
        specific = [line for line in diagnosis.convergence_errors if not _GENERIC.search(line)]
        cause = (specific or list(diagnosis.convergence_errors))[-1]
        raise ConvergenceError(f"{what}: {cause}\n{log_tail(log)}")
    if not complete:
        raise SimulationError(f"{what}: ngspice returned incomplete results\n{log_tail(log)}")
