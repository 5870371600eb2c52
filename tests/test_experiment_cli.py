"""``circuitnn experiment NAME``: listing, user errors, and one real quick run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from circuitnn.cli import main
from circuitnn.experiments import EXPERIMENTS

pytest.importorskip("sklearn")


def test_list_names_every_experiment(capsys: pytest.CaptureFixture) -> None:
    assert main(["experiment", "--list"]) == 0
    assert capsys.readouterr().out.split() == list(EXPERIMENTS)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["experiment", "walking"], "unknown experiment 'walking'; known: inhomogeneity"),
        (["experiment"], "give an experiment NAME; known: inhomogeneity"),
    ],
)
def test_user_errors_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and message in captured.err
    assert captured.err.startswith("circuitnn: error: ")
    assert not (tmp_path / "out").exists()


def test_quick_walking_noise_through_the_cli(
    quick_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "wn"
    argv = ["experiment", "walking-noise", "--quick", "--out", str(out), "--seed", "1"]
    assert main([*argv, "--store", str(quick_store)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("walking-noise:\n")
    assert "additive midpoints, clean → additive-trained: act1" in printed
    assert "[ok ]" in printed or "[NO ]" in printed
    assert f"report: {out / 'summary.md'}" in printed
    assert str(out / "midpoints.png") in printed
    assert (out / "midpoints.png").is_file() and (out / "midpoint_summary.csv").is_file()
    document = json.loads((out / "result.json").read_text())
    assert document["config"]["seed"] == 1 and document["config"]["quick"] is True
    assert document["config"]["store"] == str(quick_store)
    assert not (out / "families.h5").exists(), "the given store was used"


def test_default_out_is_results_name(
    quick_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --out the files go to results/NAME (relative to the working directory); checked
    through the handler's call, not a second full run."""
    import circuitnn.experiments

    calls = []

    class Fake:
        def __init__(self) -> None:
            self.tables: dict = {}
            self.figures: dict = {}

        def print_summary(self) -> None:
            print("fake")

    def fake(name, out, **options):
        calls.append((name, Path(out), options))
        return Fake()

    monkeypatch.setattr(circuitnn.experiments, "run_experiment", fake)
    monkeypatch.chdir(tmp_path)
    argv = ["experiment", "parameter-robustness", "--store", str(quick_store), "--jobs", "2"]
    assert main(argv) == 0
    ((name, out, options),) = calls
    assert name == "parameter-robustness" and out == Path("results/parameter-robustness")
    assert options == {"quick": False, "seed": 0, "store": str(quick_store), "jobs": 2}
