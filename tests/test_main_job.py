"""The main job (`circuitnn run`): the whole pipeline end to end at reduced size, its report, and
its config errors. The families come from the session's `quick_store` (real ngspice)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest
from helpers import DATA

from circuitnn.cli import main
from circuitnn.errors import ConfigError
from circuitnn.job.config import MainJobConfig, config_from_dict, load_config

pytest.importorskip("sklearn")

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = (
    "Families",
    "Training",
    "Robustness curve",
    "Layer-wise midpoints",
    "Chip spread",
    "Retraining recovery",
    "Co-design",
    "Settings and provenance",
)


def _sections(markdown: str) -> dict[str, str]:
    """Level-2 section heading → its text (up to the next level-2 heading)."""
    parts = re.split(r"^## (.+)$", markdown, flags=re.MULTILINE)
    return {title.strip(): body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


@pytest.fixture(scope="module")
def quick_run(
    quick_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[str]]:
    """`circuitnn run CONFIG --quick` on the quick families; the output folder and the console."""
    import torch

    folder = tmp_path_factory.mktemp("main_job")
    config = folder / "job.toml"
    config.write_text(f'store = "{quick_store}"\nseed = 0\n')
    out = folder / "out"
    threads = torch.get_num_threads()
    console = io.StringIO()
    with contextlib.redirect_stdout(console):
        status = main(["run", str(config), "--quick", "--out", str(out), "--jobs", "1"])
    assert status == 0
    assert torch.get_num_threads() == threads, "the job restores torch's thread count"
    return out, console.getvalue().splitlines()


def test_console_has_one_line_per_stage_and_the_report_path(quick_run) -> None:
    out, lines = quick_run
    stages = [line for line in lines if re.match(r"\[\d/8\] ", line)]
    assert len(stages) == 8, lines
    assert all(re.search(r"\(\d+\.\d s\)$", line) for line in stages), stages
    assert stages[0].count("cached") == 2, "the families come from the store, not ngspice"
    assert lines[-2] == f"report: {out / 'report.md'}"
    assert lines[-1].startswith("done in ")


def test_report_has_every_section_filled(quick_run) -> None:
    out, _ = quick_run
    report = out / "report.md"
    sections = _sections(report.read_text())
    assert next(iter(sections)) == "Findings"
    for title in SECTIONS:
        assert title in sections, f"section {title!r} missing"
        body = sections[title]
        images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", body)
        has_table = re.search(r"^\|---", body, flags=re.MULTILINE) is not None
        assert has_table or images, f"section {title!r} has neither a table nor an image"
        for image in images:
            path = out / image
            assert path.is_file() and path.read_bytes()[:4] == b"\x89PNG", image
    findings = [line for line in sections["Findings"].splitlines() if line.startswith("- **")]
    assert len(findings) == 3, findings  # inhomogeneity, retraining, noisy training
    # regression guard: at this size the implementation's own runs reproduce both (cmos_inverter
    # neurons: 0.757 nominal → 0.218 on chips; retrained 0.180 → 0.502 against 0.214 for the
    # same fine-tuning on the nominal curves)
    assert findings[0].startswith("- **reproduced**: per-neuron activation inhomogeneity")
    assert findings[1].startswith("- **reproduced**: retraining with the realized")
    assert "ngspice" in sections["Settings and provenance"]


def test_the_codesign_section_keeps_its_families_apart(quick_run, quick_store: Path) -> None:
    """Its mos_diffpair designs go to a store of their own: in the main job's store they would
    make `Store.load("mos_diffpair")` pick one of them instead of the job's family."""
    from circuitnn.store import Store

    out, _ = quick_run
    designs = set(Store(out / "codesign" / "families.h5").keys())
    assert len(designs) == 2
    assert not designs & set(Store(quick_store).keys())
    assert (out / "codesign" / "design" / "codesign.csv").is_file()


def test_each_section_is_also_written_alone_and_as_html(quick_run) -> None:
    out, _ = quick_run
    for folder in ("families", "training", "robustness", "midpoints", "chips", "retraining"):
        assert (out / folder / "result.json").is_file()
        assert list((out / folder).glob("*.csv")), folder
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 8  # 4 family pictures + one per stage
    for title in SECTIONS:
        assert f"<h2>{title}</h2>" in page


def test_the_shipped_default_config_is_the_built_in_default() -> None:
    assert load_config(ROOT / "examples" / "run_default.toml") == MainJobConfig()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("samples = 3\n", "unknown key(s) ['samples']"),
        ('neurons = ["diode_relu"]\n', "neurons is now families"),
        ("n = -3\n", "n must be an integer >= 2, got -3"),
        ("widths = [32, 0]\n", "widths must be an integer >= 1, got 0"),
        ('widths = "32"\n', "widths must be a list"),
        ('dataset = "mnist"\n', "dataset must be one of digits"),
        ('lr = "fast"\n', "lr must be a number > 0"),
        ("noise_levels = [0.1, -1]\n", "noise_levels must be a number > 0"),
        ('midpoint_noises = ["weird"]\n', "midpoint_noises must be one of additive"),
        ("chips = 4\nretrain_chips = 5\n", "retrain_chips (5) must not exceed chips (4)"),
        ("html = 1\n", "html must be true or false"),
        ("n = [\n", "invalid TOML"),
    ],
)
def test_config_errors_exit_2_naming_the_field(
    text: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    assert main(["run", str(config), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"circuitnn: error: {config}") and message in error, error
    assert len(error.splitlines()) == 1 and "Traceback" not in error
    assert not (tmp_path / "out").exists(), "nothing runs before the config is checked"


def test_missing_config_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["run", str(tmp_path / "none.toml")]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    spec = tmp_path / "mine.toml"  # a real spec: every family is loaded and checked first
    spec.write_text((DATA / "divider.toml").read_text())
    (tmp_path / "divider.cir").write_text((DATA / "divider.cir").read_text())
    config = config_from_dict(
        {"families": ["mine.toml", "mos_diffpair"], "store": "s.h5"}, tmp_path
    )
    assert config.families == (str(spec), "mos_diffpair")
    assert config.store == str(tmp_path / "s.h5")


def test_quick_keeps_the_choices_and_shrinks_the_sizes() -> None:
    config = MainJobConfig(seed=7, dataset="diabetes").quick()
    assert (config.seed, config.dataset) == (7, "diabetes")
    assert config.n < MainJobConfig().n and config.chips < MainJobConfig().chips
    with pytest.raises(ConfigError, match="families must list at least one"):
        MainJobConfig(families=())
