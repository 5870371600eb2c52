"""The shared engine: libngspice in this process through PySpice, messages classified here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import DATA, assert_same_family, data_spec, options

from circuitnn import extract_family
from circuitnn.errors import NetlistError
from circuitnn.extract.dc_chunk import simulate_chunk
from circuitnn.family import OK
from circuitnn.neuron.variation import MonteCarlo, sample_parameters
from circuitnn.spice import get_engine

# A node whose only element is a cubic current source: at the starting guess v = 0 the Jacobian
# is zero, so ngspice reports a singular matrix, prints "Note: Starting dynamic gmin stepping" and
# then converges to v(out) = v(in)^(1/3). A valid run that PySpice 1.5 would call an error.
GMIN_STEPPING = """* cube root: needs gmin stepping for its first point
V1 in 0 DC 1
B1 out 0 I=1m*(v(out)*v(out)*v(out) - v(in))
.dc V1 1 2 0.25
.save v(out)
.end
"""


def test_shared_engine_runs_the_divider_exactly() -> None:
    spec = data_spec("divider")
    table = sample_parameters(spec, MonteCarlo(n=4, seed=1))
    result = simulate_chunk(spec, table, engine="shared")
    assert np.all(result.status == OK)
    r1, r2 = table.column("r1")[:, None], table.column("r2")[:, None]
    x = spec.sweep.grid()
    np.testing.assert_allclose(result.curves, x * r2 / (r1 + r2), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        result.supply_current[:, 0, :], 2.5 / table.column("rs")[:, None] + 0 * x, rtol=1e-9
    )
    for _ in range(5):  # repeated runs in the same libngspice give the same answer
        again = simulate_chunk(spec, table, engine="shared")
        np.testing.assert_array_equal(again.curves, result.curves)


def test_notes_on_stderr_are_not_errors(tmp_path: Path) -> None:
    # the premise: ngspice really prints the note (on stderr) for this netlist
    (tmp_path / "gmin.cir").write_text(GMIN_STEPPING)
    plain = subprocess.run(
        ["ngspice", "-b", "-r", "gmin.raw", "gmin.cir"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Note: Starting dynamic gmin stepping" in plain.stderr

    for name in ("shared", "subprocess"):
        vectors = get_engine(name).run(GMIN_STEPPING, ["v(out)"], 5, 30, "gmin stepping")
        # to ngspice's reltol = 1e-3 (the sweep's later points start from an extrapolation)
        np.testing.assert_allclose(
            vectors["v(out)"], np.cbrt([1.0, 1.25, 1.5, 1.75, 2.0]), rtol=1e-3
        )


def test_shared_engine_rejects_a_bad_netlist_and_recovers() -> None:
    spec = data_spec("bad_model")
    with pytest.raises(NetlistError, match="nosuchdiodemodel"):
        simulate_chunk(spec, sample_parameters(spec, MonteCarlo(n=2)), engine="shared")
    # the same libngspice still works afterwards
    vectors = get_engine("shared").run(GMIN_STEPPING, ["v(out)"], 5, 30, "after the error")
    assert vectors["v(out)"][0] == pytest.approx(1.0, rel=1e-3)


def test_shared_and_subprocess_engines_agree(tmp_path: Path) -> None:
    kwargs = {"n": 6, "seed": 2}
    shared = extract_family("bjt_diffpair", options=options(engine="shared"), **kwargs)
    separate = extract_family("bjt_diffpair", options=options(engine="subprocess"), **kwargs)
    assert shared.key == separate.key  # the engine is how, not what
    np.testing.assert_allclose(shared.curves, separate.curves, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(shared.nominal_curve, separate.nominal_curve, rtol=1e-9, atol=1e-12)
    stored = extract_family(
        DATA / "divider.toml", n=3, store=tmp_path / "s.h5", options=options(engine="shared")
    )
    again = extract_family(DATA / "divider.toml", n=3, store=tmp_path / "s.h5", options=options())
    assert_same_family(stored, again)


STRESS = """
import sys
import numpy as np
from circuitnn.spice import get_engine
engine = get_engine("shared")
for run in range(int(sys.argv[2])):
    out = engine.run(sys.argv[1], ["v(out)"], 5, 30, f"run {run}")["v(out)"]
    assert np.allclose(out, np.cbrt([1.0, 1.25, 1.5, 1.75, 2.0]), rtol=1e-3), (run, out)
print("ok")
"""


def test_back_to_back_runs_wait_for_the_background_thread() -> None:
    """Each run must wait for ngspice's background thread to finish before reading vectors and
    freeing the circuit; returning early gives incomplete results or crashes libngspice. Run in
    a child process so that a crash is a failed test rather than a dead test session."""
    child = subprocess.run(
        [sys.executable, "-c", STRESS, GMIN_STEPPING, "1000"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr[-2000:]
    assert child.stdout.strip() == "ok"
