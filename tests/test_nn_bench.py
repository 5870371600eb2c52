"""The PyTorch benchmark runs end to end, and `import circuitnn` does not load torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_circuitnn_stays_light():
    code = "import sys, circuitnn; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
    code = "import sys, circuitnn.nn; sys.exit('torch' not in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_benchmark_quick_run(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_nn.py"),
            "--quick",
            "--threads",
            "1",
            "--json",
            str(tmp_path / "bench.json"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    for text in ("(1) Linear(512,512)", "(2) 3-layer MLP", "(3) training epoch", "targets:"):
        assert text in result.stdout
    assert (tmp_path / "bench.json").read_text().startswith("[")
