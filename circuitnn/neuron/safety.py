"""The netlist safety check: what a neuron netlist may contain unless the user opts in."""

from __future__ import annotations

import re

from circuitnn.errors import NetlistError
from circuitnn.neuron.netlist import logical_lines

_FORBIDDEN = re.compile(r"^\s*(\.control\b|\.endc\b|shell\b|\.exec\b)", re.IGNORECASE)


def check_safe(text: str, source: str) -> None:
    """Refuse ``.control`` blocks and ``shell`` commands, which would run arbitrary commands."""
    for number, line in logical_lines(text):
        if _FORBIDDEN.match(line):
            raise NetlistError(
                f"{source}:{number}: {line.strip()!r} is not allowed in a neuron netlist "
                "(.control blocks and shell commands can run arbitrary programs); "
                "pass allow_control=True / --allow-control to accept it"
            )
