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


def test_quick_propagation_through_the_cli(
    quick_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Every claim printed with its verdict, effect, interval and replicate count."""
    out = tmp_path / "prop"
    argv = ["experiment", "propagation", "--quick", "--out", str(out), "--seed", "1"]
    assert main([*argv, "--store", str(quick_store), "--replicates", "2"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("propagation:\n")
    verdicts = [line for line in printed.splitlines() if line.startswith("  [")]
    assert len(verdicts) == 7
    assert all(
        line.split("]")[0][3:] in ("reproduced", "contradicted", "inconclusive")
        for line in verdicts
    )
    assert "(95% CI, R = 2, t; claim < 0.1) →" in printed
    assert f"report: {out / 'summary.md'}" in printed
    assert str(out / "noise_vs_depth.png") in printed and (out / "findings.csv").is_file()
    document = json.loads((out / "result.json").read_text())
    assert document["config"]["seed"] == 1 and document["config"]["replicates"] == 2
    assert document["config"]["store"] == str(quick_store)
    assert not (out / "families.h5").exists(), "the given store was used"


def test_one_replicate_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["experiment", "propagation", "--quick", "--replicates", "1"]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "replicates must be an integer from 2" in error
    assert not (tmp_path / "out").exists()


def test_experiments_run_on_one_torch_thread(quick_store: Path, tmp_path: Path) -> None:
    """The registry's guard: one torch thread inside the run (seen by the experiment), the
    caller's setting afterwards."""
    import torch

    from circuitnn.errors import ConfigError
    from circuitnn.experiments import run_experiment
    from circuitnn.nn import torch_threads

    before = torch.get_num_threads()
    with torch_threads(2):
        result = run_experiment(
            "propagation",
            tmp_path,
            quick=True,
            store=quick_store,
            width=8,
            draws=8,
            samples=8,
            trained_width=8,
            trained_epochs=1,
        )
        assert torch.get_num_threads() == 2
    assert result.config["torch_threads"] == 1
    assert torch.get_num_threads() == before
    with pytest.raises(ConfigError, match="threads must be an integer >= 1"):
        run_experiment("propagation", tmp_path, quick=True, threads=0)


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
    assert options == {
        "quick": False,
        "seed": 0,
        "store": str(quick_store),
        "jobs": 2,
        "replicates": None,
    }
