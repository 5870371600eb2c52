"""Every subcommand against a table of bad arguments: one line, exit status 2 (the user's error)
or 1 (a failure), never a traceback, and nothing simulated or written first. (Before, an
unwritable --plot failed after the whole simulation with a traceback, and `show /tmp` printed an
HDF5 errno dump.)"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

import circuitnn.extract.clusters
from circuitnn.cli import main

ROOT = Path(__file__).resolve().parents[1]
DIVIDER = str(ROOT / "tests" / "data" / "divider.toml")


def _unwritable(tmp_path: Path) -> Path:
    """A folder this process cannot create files in (root ignores permission bits: /sys)."""
    if os.geteuid() != 0:
        folder = tmp_path / "locked"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    return Path("/sys")


@pytest.fixture
def silent_scheduler(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A TCP address that accepts connections and never answers (a hung dask scheduler)."""
    monkeypatch.setattr(circuitnn.extract.clusters, "DASK_CONNECT_SECONDS", 1.0, raising=False)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    yield f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


def _files(tmp_path: Path) -> dict[str, str]:
    """Placeholders of the table: a file, a folder, bad campaign and config files."""
    (tmp_path / "a_file").write_text("not a folder\n")
    (tmp_path / "folder" / "pics.png").mkdir(parents=True)
    (tmp_path / "text.h5").write_text("not HDF5\n")
    campaigns = {
        "NEG": '[campaign]\nneuron = "diode_relu"\nn = -4\n',
        "DUP": '[campaign]\nneuron = "diode_relu"\nn = 4\n[campaign.grid]\nr = ["1k", "1000"]\n',
        "OK": '[campaign]\nneuron = "diode_relu"\nn = 4\n[campaign.grid]\nr = ["1k"]\n',
    }
    for name, text in campaigns.items():
        (tmp_path / f"{name}.toml").write_text(text)
    (tmp_path / "nosuch.toml").write_text('families = ["nosuch"]\nn = 10\n')
    return {
        "FILE": str(tmp_path / "a_file"),
        "FOLDER": str(tmp_path / "folder"),
        "UNWRITABLE": str(_unwritable(tmp_path)),
        "TEXT": str(tmp_path / "text.h5"),
        "STORE": str(tmp_path / "s.h5"),
        "MISSING": str(tmp_path / "missing.h5"),
        "NEGATIVE": str(tmp_path / "NEG.toml"),
        "DUPLICATES": str(tmp_path / "DUP.toml"),
        "CAMPAIGN": str(tmp_path / "OK.toml"),
        "CONFIG": str(tmp_path / "nosuch.toml"),
        "CODESIGN": str(Path(__file__).resolve().parents[1] / "examples" / "codesign.toml"),
    }


S = ["--store", "STORE", "--quiet"]  # (progress bars go to stderr too)
BAD = [
    # run (the main job and campaign files)
    (["run", "--out", "FILE"], 2, "--out: FILE is a file, not a folder"),
    (["run", "MISSING"], 2, "not found"),
    (["run", "CONFIG", "--out", "FOLDER"], 2, "nosuch.toml: families: unknown neuron 'nosuch'"),
    (["run", "CAMPAIGN", "--quick"], 2, "--quick applies to the main job only"),
    (["run", "--jobs", "0", "--out", "FOLDER"], 2, "jobs must be a positive integer"),
    # neurons
    (["neurons", "extra"], 2, "unrecognized arguments: extra"),
    # extract
    (["extract", "diode_relu", *S, "--plot", "pic.jpgx"], 2, "unknown file type '.jpgx'"),
    (["extract", "diode_relu", *S, "--plot", "UNWRITABLE/pic.png"], 2, "--plot: cannot write"),
    (["extract", "diode_relu", *S, "--plot", "FOLDER/pics.png"], 2, "pics.png is a folder"),
    (
        ["extract", "diode_relu", "--quiet", "--store", "FILE/s.h5"],
        2,
        "FILE is a file, not a folder",
    ),
    (["extract", "diode_relu", "--quiet", "--store", "FOLDER"], 2, "store FOLDER is a folder"),
    (
        ["extract", "diode_relu", "--quiet", "--store", "UNWRITABLE/s.h5"],
        2,
        "cannot write into UNWRITABLE",
    ),
    (["extract", "diode_relu", *S, "--n", "0"], 2, "n must be from 1 to"),
    (["extract", "diode_relu", *S, "--n", "1e8"], 2, "invalid int value: '1e8'"),
    (["extract", "diode_relu", *S, "--engine", "warp"], 2, "invalid choice: 'warp'"),
    (["extract", "diode_relu", *S, "--timeout", "-1"], 2, "timeout must be positive"),
    (["extract", "DIVIDER", *S, "--allow-control", "--corner", "x"], 2, "unknown corner 'x'"),
    (["extract", "/dev/zero", *S], 2, "not found"),
    (
        ["extract", "diode_relu", *S, "--backend", "dask", "--scheduler", "SILENT", "--jobs", "2"],
        2,
        "did not answer within 1 s",
    ),
    # sweep
    (["sweep", "diode_relu", *S, "--param", "r=1k,1000"], 2, "1000 is given twice"),
    (["sweep", "diode_relu", *S, "--param", "r=-1k"], 2, "sets the resistance of R1"),
    (["sweep", "diode_relu", *S, "--param", "r=1k", "--out", "FILE"], 2, "--out: FILE is a file"),
    # show
    (["show", "FOLDER"], 2, "store FOLDER is a folder"),
    (["show", "MISSING"], 2, "store MISSING does not exist"),
    (["show", "TEXT"], 1, "TEXT cannot be read as HDF5 (corrupt or truncated?)"),
    (["show", "TEXT", "--out", "FILE"], 2, "--out: FILE is a file"),
    # store
    (["store", "check", "MISSING"], 2, "does not exist"),
    (["store", "remove", "TEXT"], 2, "store remove needs the FAMILY"),
    (["store", "fix", "TEXT"], 2, "invalid choice: 'fix'"),
    # experiment
    (["experiment", "nosuch"], 2, "unknown experiment 'nosuch'"),
    (["experiment", "walking-noise", "--out", "FILE"], 2, "--out: FILE is a file"),
    # campaign
    (["campaign", "MISSING"], 2, "not found"),
    (["campaign", "NEGATIVE"], 2, "[campaign] n must be a positive integer, got -4"),
    (["campaign", "DUPLICATES"], 2, "1000 is given twice"),
    (["campaign", "CAMPAIGN", "--out", "FILE"], 2, "--out: FILE is a file"),
    # codesign
    (["codesign", "MISSING"], 2, "not found"),
    (["codesign", "CODESIGN", "--out", "FILE"], 2, "is a file, not a folder"),
    (["codesign", "CODESIGN", "--out", "FOLDER", "--store", "FOLDER"], 2, "is a folder"),
]


@pytest.mark.parametrize(("args", "status", "message"), BAD, ids=[" ".join(c[0]) for c in BAD])
def test_bad_arguments_give_one_line_and_no_traceback(
    args: list[str],
    status: int,
    message: str,
    tmp_path: Path,
    silent_scheduler: str,
    capsys: pytest.CaptureFixture,
) -> None:
    names = {**_files(tmp_path), "SILENT": silent_scheduler, "DIVIDER": DIVIDER}
    argv = [_substitute(arg, names) for arg in args]
    try:
        code = main(argv)
    except SystemExit as exit_status:  # argparse
        code = exit_status.code
    captured = capsys.readouterr()
    error = captured.err.strip()
    assert code == status, (code, error)
    assert "Traceback" not in captured.err and len(error.splitlines()) == 1, error
    assert _substitute(message, names) in error, error
    assert not (tmp_path / "s.h5").exists()  # refused before anything was stored


def _substitute(text: str, names: dict[str, str]) -> str:
    for placeholder, value in sorted(names.items(), key=lambda item: -len(item[0])):
        text = text.replace(placeholder, value)
    return text
