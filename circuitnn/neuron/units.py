"""SPICE numbers: parse and validate values with scale suffixes before they reach a netlist.

Only plain numbers reach generated netlists: a value is parsed to ``float`` here and rendered back
with :func:`format_spice`, so no user text is ever pasted into a netlist.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

from circuitnn.errors import ConfigError

_EXPONENT = {
    "t": 12,
    "g": 9,
    "meg": 6,
    "k": 3,
    "m": -3,
    "u": -6,
    "µ": -6,
    "n": -9,
    "p": -12,
    "f": -15,
    "a": -18,
}


_MIL = 25.4e-6


# ASCII digits only, and no two quantifiers that can share a character (linear time: the former
# ``\d+\.?\d*`` took seconds to reject a few thousand digits)
_NUMBER = re.compile(
    r"\s*([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e[+-]?[0-9]+)?)(meg|mil|[tgkmuµnpfa])?([a-z]*)\s*",
    re.IGNORECASE,
)


_UNIT_WORDS = {"", "v", "a", "ohm", "ohms", "f", "h", "s", "hz", "w", "m"}


def parse_spice(value: object, field: str = "value") -> float:
    """Parse a number or SPICE number string (``"4.7k"``, ``"10u"``, ``"1meg"``, ``2e-3``) to float.

    A trailing unit word (``V``, ``A``, ``Ohm``, ``F``, ``Hz`` …) after the scale is accepted and
    ignored, as SPICE does. Anything else — extra text, several lines, NaN or infinity — raises
    :class:`ConfigError` naming ``field``.
    """
    if isinstance(value, bool):
        raise ConfigError(f"{field}: expected a number, got a boolean {value!r}")
    try:
        if isinstance(value, int | float):
            number = float(value)
        elif isinstance(value, str):
            match = _NUMBER.fullmatch(value)
            if match is None or match.group(3).lower() not in _UNIT_WORDS:
                raise ConfigError(
                    f"{field}: {shown(value)} is not a number "
                    "(SPICE suffixes like 10u, 4.7k allowed)"
                )
            scale = (match.group(2) or "").lower()
            if scale == "mil":
                number = float(match.group(1)) * _MIL
            else:
                # decimal arithmetic, so "8u" is exactly the float nearest 8e-6
                number = float(Decimal(match.group(1)).scaleb(_EXPONENT.get(scale, 0)))
        else:
            raise ConfigError(
                f"{field}: expected a number, got {type(value).__name__} {shown(value)}"
            )
    except ArithmeticError:  # OverflowError, decimal.InvalidOperation: beyond any float
        raise ConfigError(f"{field}: {shown(value)} is out of the range of numbers") from None
    if not math.isfinite(number):
        raise ConfigError(f"{field}: {shown(value)} is not a finite number")
    return number


def shown(value: object, limit: int = 60) -> str:
    """``repr(value)``, cut to about ``limit`` characters for an error message."""
    try:
        text = repr(value)
    except ValueError:  # an int of more than 4300 digits
        return "an integer too long to show"
    return text if len(text) <= limit else f"{text[: limit - 5]}…{text[-4:]} ({len(text)} chars)"


def format_spice(value: float) -> str:
    """Render a float for a netlist with full precision (``repr`` round-trips exactly)."""
    if not math.isfinite(value):
        raise ConfigError(f"cannot write non-finite value {value!r} into a netlist")
    return repr(float(value))
