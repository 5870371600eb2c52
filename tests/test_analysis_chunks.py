"""Noise, AC and step analyses over several chunks: each chunk's result lands in its own rows.

Two ways a chunk's result could be filed under another chunk's instances, with no error and
plausible numbers: results arriving from 2 worker processes (in any order), and a run resumed from
its journal after a real kill (the chunks still to do are numbered from the journal, not by their
arrival). Both are checked against physics per instance (4kT·R of each instance's own resistors,
1/(2π·r·C) of its own RC) and bit for bit against one uninterrupted run in one process.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import DATA, NGSPICE_BOLTZMANN, data_spec, options

import circuitnn.extract.noise
import circuitnn.extract.speed
from circuitnn import extract_family
from circuitnn.family import Family
from circuitnn.spice.analyses import NoiseAnalysis, SpeedAnalysis
from circuitnn.store import Store

KELVIN = 273.15
CAPACITANCE = 1e-9  # F: resistor_rc.toml's output.load_capacitance
NOISE = {"bias_points": 2, "fmin": 1.0, "fmax": 1e6, "points_per_decade": 2, "bandwidth": 1e5}
SPEED = {"fmin": 10.0, "fmax": 1e8, "points_per_decade": 10}
N, SEED, CHUNK = 8, 11, 2  # 4 chunks of 2 instances


def _divider_4kTR(family: Family) -> np.ndarray:
    """Each divider instance's output noise PSD (V²/Hz): 4kT·(r1 || r2) of its own resistors."""
    r1, r2 = family.parameter("r1"), family.parameter("r2")
    celsius = float(family.attrs["temperature"])
    return 4 * NGSPICE_BOLTZMANN * (celsius + KELVIN) * r1 * r2 / (r1 + r2)


def _assert_same_noise(a: Family, b: Family) -> None:
    assert a.noise is not None and b.noise is not None
    for name in ("frequency", "psd", "input_psd", "sigma", "white", "flicker", "alpha", "status"):
        np.testing.assert_array_equal(getattr(a.noise, name), getattr(b.noise, name), name)
    assert a.noise.reasons == b.noise.reasons


def _assert_same_speed(a: Family, b: Family) -> None:
    assert a.speed is not None and b.speed is not None
    for name in ("frequency", "response", "bandwidth", "settling_time", "energy", "status"):
        np.testing.assert_array_equal(getattr(a.speed, name), getattr(b.speed, name), name)


def test_noise_with_two_jobs_gives_every_instance_its_own_4kTR() -> None:
    spec = data_spec("divider")
    analysis = NoiseAnalysis(**NOISE)
    two = extract_family(
        spec, n=N, seed=SEED, options=options(chunk_size=CHUNK, jobs=2), noise=analysis
    )
    noise = two.noise
    assert noise is not None and (noise.status == 1).all()
    expected = _divider_4kTR(two)
    assert np.ptp(expected) > 0.05 * expected.mean()  # instances differ: a mix-up shows
    ratio = noise.psd / expected[:, None, None]
    np.testing.assert_allclose(ratio, 1.0, rtol=0.01, err_msg="PSD / 4kT(r1||r2) per instance")
    one = extract_family(spec, n=N, seed=SEED, options=options(chunk_size=CHUNK), noise=analysis)
    _assert_same_noise(two, one)


def test_speed_with_two_jobs_gives_every_instance_its_own_rc() -> None:
    spec = data_spec("resistor_rc")
    analysis = SpeedAnalysis(**SPEED)
    two = extract_family(
        spec, n=N, seed=SEED, options=options(chunk_size=CHUNK, jobs=2), speed=analysis
    )
    speed = two.speed
    assert speed is not None and (speed.status == 1).all()
    tau = two.parameter("r") * CAPACITANCE
    np.testing.assert_allclose(speed.bandwidth * 2 * np.pi * tau, 1.0, rtol=0.03)
    np.testing.assert_allclose(speed.settling_time / (tau * np.log(1 / 0.02)), 1.0, rtol=0.05)
    one = extract_family(spec, n=N, seed=SEED, options=options(chunk_size=CHUNK), speed=analysis)
    _assert_same_speed(two, one)


# --- resumed after a real kill ------------------------------------------------------------

# The child adds the analysis to the stored family and SIGKILLs itself right after the journal
# has saved KILL_AFTER chunks whose names start with the given prefix (noise, ac or step).
KILLED_AFTER_CHUNKS = """
import json, os, signal, sys
from circuitnn import extract_family
from circuitnn.spice.analyses import NoiseAnalysis, SpeedAnalysis
from circuitnn.extract.options import RunOptions
from circuitnn.store import Journal

prefix, spec, store, kill_after, settings = sys.argv[1:6]
save, saved = Journal.save_arrays, []

def dying(self, name, arrays):
    save(self, name, arrays)
    if name.startswith(prefix + "-"):
        saved.append(name)
        if len(saved) == int(kill_after):
            os.kill(os.getpid(), signal.SIGKILL)

Journal.save_arrays = dying
settings = json.loads(settings)
analysis = {"noise": NoiseAnalysis(**settings)} if prefix == "noise" else {
    "speed": SpeedAnalysis(**settings)}
extract_family(spec, n=int(sys.argv[6]), seed=int(sys.argv[7]), store=store,
               options=RunOptions(chunk_size=int(sys.argv[8]), progress=False), **analysis)
"""

KILL_AFTER = 2


@pytest.fixture
def simulated(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Record (analysis, first instance) of every chunk this process simulates."""
    runs: list[tuple[str, int]] = []
    for kind in ("noise", "ac", "step"):
        name = f"simulate_{kind}_chunk"
        module = circuitnn.extract.noise if kind == "noise" else circuitnn.extract.speed
        real = getattr(module, name)

        def counting(spec: Any, table: Any, *args: Any, kind: str = kind, real: Any = real) -> Any:
            runs.append((kind, int(table.index[0])))
            return real(spec, table, *args)

        monkeypatch.setattr(module, name, counting)
    return runs


@pytest.mark.parametrize("prefix", ["noise", "ac", "step"])
def test_analysis_killed_after_two_chunks_resumes_equal_to_an_uninterrupted_run(
    tmp_path: Path, prefix: str, simulated: list[tuple[str, int]]
) -> None:
    import json

    name = "divider" if prefix == "noise" else "resistor_rc"
    spec_path = DATA / f"{name}.toml"
    settings = NOISE if prefix == "noise" else SPEED
    analysis: dict[str, Any] = (
        {"noise": NoiseAnalysis(**NOISE)}
        if prefix == "noise"
        else {"speed": SpeedAnalysis(**SPEED)}
    )
    store = Store(tmp_path / "families.h5")
    family = extract_family(
        spec_path, n=N, seed=SEED, store=store, options=options(chunk_size=CHUNK)
    )
    args = [prefix, spec_path, store.path, KILL_AFTER, json.dumps(settings), N, SEED, CHUNK]
    child = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_CHUNKS, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    (journal,) = (tmp_path / "families.h5.partial").iterdir()
    saved = sorted(path.stem for path in journal.glob(f"{prefix}-*.npz"))
    assert len(saved) == KILL_AFTER  # killed with chunks still to do
    assert store.analyses(family.key) == []  # nothing committed

    simulated.clear()
    resumed = extract_family(
        spec_path, n=N, seed=SEED, store=store, options=options(chunk_size=CHUNK), **analysis
    )
    done_before = {int(stem.split("-")[1]) for stem in saved}
    again = sorted(start for kind, start in simulated if kind == prefix)
    assert again == sorted(set(range(0, N, CHUNK)) - done_before)  # only the missing chunks
    uninterrupted = extract_family(
        spec_path, n=N, seed=SEED, options=options(chunk_size=CHUNK), **analysis
    )
    if prefix == "noise":
        _assert_same_noise(resumed, uninterrupted)
        np.testing.assert_allclose(
            resumed.noise.psd / _divider_4kTR(resumed)[:, None, None], 1.0, rtol=0.01
        )
    else:
        _assert_same_speed(resumed, uninterrupted)
        tau = resumed.parameter("r") * CAPACITANCE
        np.testing.assert_allclose(resumed.speed.bandwidth * 2 * np.pi * tau, 1.0, rtol=0.03)
    _assert_same_noise_or_speed_in_store(store, resumed, prefix)
    assert not (tmp_path / "families.h5.partial").exists()  # committed, journal cleared


def _assert_same_noise_or_speed_in_store(store: Store, resumed: Family, prefix: str) -> None:
    loaded = Store(store.path).load(resumed.key)
    if prefix == "noise":
        _assert_same_noise(loaded, resumed)
    else:
        _assert_same_speed(loaded, resumed)
