"""The command line: the main job, extract, sweep, show, neurons, and clean user errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from circuitnn.cli import main
from circuitnn.neuron.builtin import builtin_neurons
from circuitnn.store import Store

ROOT = Path(__file__).resolve().parents[1]


def test_run_dispatches_to_the_main_job(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`circuitnn run` parses the config and options and hands them to run_main_job (the job
    itself runs end to end in tests/test_main_job.py)."""
    import circuitnn.job.run

    calls, shows = [], []

    def fake(config, out, *, options, say, **settings):
        calls.append((config, Path(out), options))
        shows.append(settings["progress"])
        say("[1/7] families    (stage line)")
        return Path(out) / "report.md"

    monkeypatch.setattr(circuitnn.job.run, "run_main_job", fake)
    config = tmp_path / "small.toml"
    config.write_text('families = ["diode_relu"]\nn = 40\nseed = 3\n')
    out = tmp_path / "out"
    assert main(["run", str(config), "--out", str(out), "--jobs", "2", "--chunk-size", "8"]) == 0
    ((job, folder, options),) = calls
    assert (job.families, job.n, job.seed, job.epochs) == (("diode_relu",), 40, 3, 15)
    assert folder == out and options.jobs == 2 and options.chunk_size == 8
    assert not options.progress, "one console line per stage, no progress bars"
    assert "[1/7] families" in capsys.readouterr().out
    assert main(["run", "--quick", "--quiet", "--out", str(out)]) == 0
    job = calls[-1][0]
    assert job.families == ("cmos_inverter", "mos_diffpair") and job.n == 120
    assert capsys.readouterr().out == f"report: {out / 'report.md'}\n"
    assert shows == [True, False]  # a bar over the training epochs unless --quiet


def test_extract_then_show(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    store = tmp_path / "s.h5"
    picture = tmp_path / "fan.png"
    args = ["extract", "mos_diffpair", "--n", "30", "--seed", "1", "--store", str(store)]
    assert main([*args, "--plot", str(picture), "--quiet", "--chunk-size", "16"]) == 0
    first = capsys.readouterr().out
    assert "mos_diffpair: 30 instances, 0 failed" in first
    assert picture.is_file()
    with h5py.File(store, "r") as handle:
        (key,) = handle["families"]
        curves = handle["families"][key]["curves"][()]
    assert curves.shape == (30, 401) and np.isfinite(curves).all()
    assert main(["show", str(store), "mos_diffpair", "--out", str(tmp_path / "plots")]) == 0
    shown = capsys.readouterr().out
    assert key in shown and "midpoint" in shown and "failed=0" in shown
    assert len(list((tmp_path / "plots").glob("mos_diffpair-*.png"))) == 1


def test_user_spec_with_include_works_like_a_builtin(tmp_path: Path) -> None:
    spec = ROOT / "examples" / "user_neuron" / "cs_stage.toml"
    store = tmp_path / "u.h5"
    assert (
        main(
            [
                "extract",
                str(spec),
                "--n",
                "20",
                "--store",
                str(store),
                "--quiet",
                "--corner",
                "slow",
                "--temp",
                "60",
            ]
        )
        == 0
    )
    family = Store(store).load("cs_stage")
    assert family.attrs["corner"] == "slow" and family.attrs["temperature"] == 60.0
    assert np.all(family.ok)
    # An inverting stage: output falls from near vdd as the input rises.
    assert np.all(family.curves[:, 0] > family.curves[:, -1])


def test_sweep_makes_one_family_per_point(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    store = tmp_path / "sweep.h5"
    out = tmp_path / "sweep"
    args = [
        "sweep",
        "mos_diffpair",
        "--param",
        "w=2u,8u",
        "--param",
        "ibias=20u,40u",
        "--n",
        "24",
        "--store",
        str(store),
        "--out",
        str(out),
        "--quiet",
    ]
    assert main(args) == 0
    rows = json.loads((out / "sweep.json").read_text())
    assert len(rows) == 4 and len(Store(store).keys()) == 4
    by_point = {(r["point"]["w"], r["point"]["ibias"]): r["summary"] for r in rows}
    # Square law: the differential gain grows with W and with the tail current.
    assert by_point[(8e-6, 40e-6)]["gain"]["mean"] > by_point[(2e-6, 40e-6)]["gain"]["mean"]
    assert by_point[(8e-6, 40e-6)]["gain"]["mean"] > by_point[(8e-6, 20e-6)]["gain"]["mean"]
    # Pelgrom: the offset spread shrinks with the gate area (same random numbers at every point).
    assert by_point[(8e-6, 40e-6)]["midpoint"]["std"] < by_point[(2e-6, 40e-6)]["midpoint"]["std"]
    assert (out / "sweep_w.png").is_file() and (out / "sweep_ibias.png").is_file()


def test_neurons_lists_every_builtin(capsys: pytest.CaptureFixture) -> None:
    assert main(["neurons"]) == 0
    printed = capsys.readouterr().out
    for name in builtin_neurons():
        assert f"{name}:" in printed
    assert "pelgrom" not in printed and "√(w·l)" in printed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["extract", "no_such_neuron"], "unknown neuron 'no_such_neuron'"),
        (["extract", "diode_relu", "--n", "0"], "n must be from 1 to 100,000,000 instances, got 0"),
        (["extract", "diode_relu", "--corner", "zz"], "unknown corner 'zz'"),
        (["sweep", "diode_relu", "--param", "q=1,2"], "sweep parameter 'q'"),
        (["sweep", "diode_relu", "--param", "r=1k,abc"], "--param r: 'abc' is not a number"),
        (["sweep", "diode_relu", "--param", "r"], "expected NAME=V1,V2"),
        (["show", "missing.h5"], "does not exist"),
    ],
)
def test_user_errors_exit_2_with_one_line(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    store_args = ["--store", str(tmp_path / "s.h5")] if args[0] in ("extract", "sweep") else []
    assert main([*args, *store_args, "--quiet"] if store_args else args) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("circuitnn: error:") and message in error
    assert "Traceback" not in error and len(error.splitlines()) == 1


def test_bad_run_config_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('families = ["diode_relu"]\nn = 10\nsamples = 3\n')
    assert main(["run", str(config), "--out", str(tmp_path)]) == 2
    assert "unknown key(s) ['samples']" in capsys.readouterr().err


def test_python_dash_m_is_the_same_command(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "circuitnn", "extract", "diode_relu", "--n", "x"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2 and "invalid int value: 'x'" in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "circuitnn", "neurons"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and "bjt_diffpair" in done.stdout
