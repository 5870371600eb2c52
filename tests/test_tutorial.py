"""examples/tutorial.ipynb runs headless from top to bottom (real ngspice, real training), so it
cannot go stale; the committed notebook holds no outputs."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "tutorial.ipynb"


def _number(text: str, pattern: str) -> float:
    found = re.search(pattern, text)
    assert found, f"the tutorial printed no line matching {pattern!r}:\n{text}"
    return float(found.group(1))


def test_committed_notebook_is_valid_and_holds_no_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert len(code) >= 8
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert notebook.metadata.kernelspec.name == "python3"
    assert "examples/tutorial.ipynb" in (ROOT / "README.md").read_text()


@pytest.mark.slow
def test_tutorial_executes_headless(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook, timeout=180, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    outputs = [
        output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    ]
    assert not [o for o in outputs if o.output_type == "error"]
    pictures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pictures) == 3, "the family, the chips and the noise sweep are drawn"
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")

    assert _number(text, r"cmos_inverter_level1: 200 instances, (\d+) failed") == 0
    assert _number(text, r"nominal circuits: test accuracy ([\d.]+)") > 0.85
    worst = _number(text, r"worst chip ([\d.]+)")
    assert 0.1 < worst < 1.0
    before = _number(text, r"test accuracy ([\d.]+) before")
    after = _number(text, r"([\d.]+) after fine-tuning")
    assert after > before, "fine-tuning on the chip's own curves helps that chip"
    quiet = _number(text, r"noise ×\s+1: test accuracy ([\d.]+)")
    loud = _number(text, r"noise ×\s+100000: test accuracy ([\d.]+)")
    assert quiet > 0.85 and loud < 0.3, "accuracy falls towards chance as the noise grows"
    assert "reloaded outputs equal: True" in text
    assert (tmp_path / "tutorial_output" / "families.h5").exists()
    assert (tmp_path / "tutorial_output" / "model.pt").exists()
