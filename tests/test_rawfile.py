"""The raw-file reader on a real ngspice AC run: the frequency's imaginary part is not data.

ngspice sets only the real part of an AC plot's frequency and writes whatever memory held as its
imaginary part: different on every run, and about once in two thousand runs an inf or NaN bit
pattern. Read by arithmetic (re + 1j·im) such a pattern turned the frequency itself into NaN and
failed a whole chunk as "non-finite output", at random.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from circuitnn.spice.engines import available_engines, get_engine
from circuitnn.spice.ngspice_process import ngspice_executable
from circuitnn.spice.rawfile import read_raw

RC = """rc low-pass
v1 in 0 dc 0 ac 1
r1 in out 1k
c1 out 0 1n
.ac dec 5 10 1e8
.end
"""
COLUMNS = 4  # frequency, v(in), v(out), i(v1)


def _ac_raw(folder: Path, sweep: str = "dec 5 10 1e8") -> bytearray:
    (folder / "rc.cir").write_text(RC.replace("dec 5 10 1e8", sweep))
    subprocess.run(
        [ngspice_executable(), "-n", "-b", "-r", "rc.raw", "rc.cir"],
        cwd=folder,
        capture_output=True,
        check=True,
        timeout=60,
    )
    return bytearray((folder / "rc.raw").read_bytes())


def _with_frequency_imag(raw: bytearray, value: float) -> bytes:
    start = raw.index(b"\nBinary:\n") + len(b"\nBinary:\n")
    table = np.frombuffer(raw, dtype="<f8", offset=start).reshape(-1, COLUMNS, 2).copy()
    table[:, 0, 1] = value
    return bytes(raw[:start]) + table.tobytes()


@pytest.mark.parametrize("sweep", ["dec 5 10 1e8", "lin 1 1k 1k"])
def test_a_plot_of_any_length_reads_as_writable_vectors(tmp_path: Path, sweep: str) -> None:
    """One frequency point too (an operating point's plot has one): ngspice's own values, the
    frequency real, each vector writable (a one-point plot was read as a read-only
    view of the file's bytes, and zeroing its frequency's imaginary part raised ValueError)."""
    (plot,) = read_raw(bytes(_ac_raw(tmp_path, sweep)))
    frequency = plot.vectors["frequency"]
    assert (frequency.imag == 0).all()
    points = 1 if sweep.startswith("lin 1") else 36
    assert frequency.shape == (points,)
    for name, values in plot.vectors.items():
        assert values.flags.writeable, name
    corner = 1 / (2 * np.pi * 1e3 * 1e-9)  # Hz
    gain = np.abs(plot.vectors["v(out)"])
    np.testing.assert_allclose(gain, 1 / np.sqrt(1 + (frequency.real / corner) ** 2), rtol=1e-6)


@pytest.mark.parametrize("garbage", [np.inf, -np.inf, np.nan, 6.9e290, -465.07])
def test_frequency_garbage_in_the_imaginary_part_changes_nothing(
    tmp_path: Path, garbage: float
) -> None:
    raw = _ac_raw(tmp_path)
    (clean,) = read_raw(_with_frequency_imag(raw, 0.0))
    (dirty,) = read_raw(_with_frequency_imag(raw, garbage))
    assert set(dirty.vectors) == {"frequency", "v(in)", "v(out)", "i(v1)"}
    for name, values in clean.vectors.items():
        np.testing.assert_array_equal(dirty.vectors[name], values, name)
    frequency = dirty.vectors["frequency"]
    assert np.isfinite(frequency).all() and (frequency.imag == 0).all()
    np.testing.assert_allclose(frequency.real[[0, -1]], [10.0, 1e8])
    corner = 1 / (2 * np.pi * 1e3 * 1e-9)  # Hz: 1/(2π·R·C)
    gain = np.abs(dirty.vectors["v(out)"])
    np.testing.assert_allclose(gain, 1 / np.sqrt(1 + (frequency.real / corner) ** 2), rtol=1e-6)


def test_every_real_run_reads_finite(tmp_path: Path) -> None:
    for _ in range(5):
        (plot,) = read_raw(bytes(_ac_raw(tmp_path)))
        for name, values in plot.vectors.items():
            assert np.isfinite(values).all(), name
        assert (plot.vectors["frequency"].imag == 0).all()


@pytest.mark.parametrize("engine", available_engines())
def test_each_engine_gives_a_real_frequency(engine: str) -> None:
    solver = get_engine(engine)
    for _ in range(5):
        vectors = solver.run(RC, ["frequency", "v(out)"], None, 60.0, "rc low-pass")
        frequency = vectors["frequency"]
        assert np.isfinite(frequency).all() and (np.imag(frequency) == 0).all()
        assert np.isfinite(vectors["v(out)"]).all()
