"""scripts/mutation_score.py: mutmut's result lines counted per module (what README quotes)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "mutation_score.py"
spec = importlib.util.spec_from_file_location("mutation_score", SCRIPT)
assert spec is not None and spec.loader is not None
mutation_score = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mutation_score)

RESULTS = """\
    circuitnn.noise.x_integrated_sigma__mutmut_1: killed
    circuitnn.noise.x_integrated_sigma__mutmut_2: survived
    circuitnn.noise.x__solve_each__mutmut_7: no tests
    circuitnn.nn.activation.xǁCircuitActivationǁresample__mutmut_3: killed
    circuitnn.nn.activation.xǁCircuitActivationǁ__init____mutmut_12: timeout
    circuitnn.nn.activation.x_neuron_shape__mutmut_1: survived
    circuitnn.nn.activation.x_neuron_shape__mutmut_2: not checked
"""


def test_results_are_counted_per_module() -> None:
    counts = mutation_score.read_results(RESULTS)
    assert counts == {
        "circuitnn/noise.py": {"killed": 1, "survived": 1, "no tests": 1},
        "circuitnn/nn/activation.py": {"killed": 1, "timeout": 1, "survived": 1, "not checked": 1},
    }
    rows = mutation_score.table(counts)
    assert rows[2] == "| `circuitnn/nn/activation.py` | 2 | 1 | 0 | 1 | 1 | 2 of 3 killed |"
    assert rows[3] == "| `circuitnn/noise.py` | 1 | 1 | 1 | 0 | 0 | 1 of 3 killed |"
    assert rows[4] == "| **all** | 3 | 2 | 1 | 1 | 1 | 3 of 6 killed |"
