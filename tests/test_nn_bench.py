"""The PyTorch benchmark runs end to end (each verdict following from its ratio), and
`import circuitnn` does not load torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers import assert_verdicts_follow

ROOT = Path(__file__).resolve().parents[1]


def test_import_circuitnn_stays_light():
    code = "import sys, circuitnn; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
    code = "import sys, circuitnn.nn; sys.exit('torch' not in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


# What `import circuitnn.nn` must not load: the simulation side and the libraries only it, the
# plots or the data sets need (each costs tens to hundreds of milliseconds on top of torch).
DEFERRED = (
    "scipy",
    "matplotlib",
    "sklearn",
    "h5py",
    "pandas",
    "PySpice",
    "circuitnn.data",
    "circuitnn.neuron",
    "circuitnn.spice",
    "circuitnn.extract",
    "circuitnn.store",
    "circuitnn.campaign",
    "circuitnn.job",
)


def test_import_circuitnn_nn_defers_heavy_modules():
    code = (
        "import sys, json, circuitnn.nn; "
        f"print(json.dumps([m for m in {DEFERRED!r} if m in sys.modules]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]", f"import circuitnn.nn loaded {done.stdout.strip()}"


def test_import_benchmark_quick_run():
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_import.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "circuitnn.nn on top of torch" in done.stdout
    assert "heavy libraries loaded by circuitnn.nn: none" in done.stdout


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
    rows = assert_verdicts_follow(result.stdout, 2)  # (1) and (2) at 1 thread
    (saved,) = json.loads((tmp_path / "bench.json").read_text())
    for (_, value, _, _, passed), case in zip(rows, ("activation", "draws"), strict=True):
        assert value == round(saved[case]["ratio"], 2)
        assert passed == (saved[case]["verdict"] == "PASS")
    failed = [case for case in ("activation", "draws") if saved[case]["verdict"] == "FAIL"]
    closing = (
        "targets: all passed"
        if not failed
        else "targets: FAILED: " + ", ".join(f"{case} @ 1 threads" for case in failed)
    )
    assert closing in result.stdout
