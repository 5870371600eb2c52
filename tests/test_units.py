"""SPICE numbers: parse_spice accepts numbers with scale suffixes and nothing else."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from circuitnn.errors import ConfigError
from circuitnn.neuron.units import format_spice, parse_spice


@pytest.mark.parametrize(
    ("text", "mantissa", "scale"),
    [
        ("4.7k", 4.7, 1e3),
        ("10u", 10.0, 1e-6),
        ("1meg", 1.0, 1e6),
        ("1MEG", 1.0, 1e6),
        ("2e-3", 2e-3, 1.0),
        ("1M", 1.0, 1e-3),  # SPICE: M is milli, not mega
        ("3m", 3.0, 1e-3),
        ("2.5n", 2.5, 1e-9),
        ("7p", 7.0, 1e-12),
        ("5f", 5.0, 1e-15),
        ("1g", 1.0, 1e9),
        ("2t", 2.0, 1e12),
        ("1mil", 1.0, 25.4e-6),
        ("-0.5", -0.5, 1.0),
        ("+.25", 0.25, 1.0),
        (" 12 ", 12.0, 1.0),
        ("1.5e2k", 150.0, 1e3),
        ("10uF", 10.0, 1e-6),  # a unit word after the scale is ignored, as in SPICE
        ("3.3V", 3.3, 1.0),
        ("1kOhm", 1.0, 1e3),
        ("100Hz", 100.0, 1.0),
    ],
)
def test_parse_spice_accepts_scaled_numbers(text: str, mantissa: float, scale: float) -> None:
    assert parse_spice(text) == pytest.approx(mantissa * scale, rel=1e-15)


@pytest.mark.parametrize("value", [0, 3, -2, 1.5, 2e-3, 1e30])
def test_parse_spice_passes_plain_numbers(value: float) -> None:
    result = parse_spice(value)
    assert isinstance(result, float)
    assert result == value


@pytest.mark.parametrize(
    "value",
    [
        "1u\n.control\nshell rm -rf /",
        "1k\n.end",
        "abc",
        "",
        "   ",
        "1 k",
        "1kx",
        "1e",
        "k",
        "nan",
        "inf",
        "-inf",
        "1e999",
        "{r*2}",
        "1,5",
        float("nan"),
        float("inf"),
        -float("inf"),
        True,
        None,
        [1.0],
        {"a": 1},
    ],
)
def test_parse_spice_rejects_anything_else(value: object) -> None:
    with pytest.raises(ConfigError, match="the_field"):
        parse_spice(value, "the_field")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_format_spice_refuses_non_finite(value: float) -> None:
    with pytest.raises(ConfigError):
        format_spice(value)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_format_then_parse_round_trips_exactly(value: float) -> None:
    text = format_spice(value)
    assert "\n" not in text
    assert parse_spice(text) == value
