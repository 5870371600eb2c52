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


def test_a_mutants_tests_run_cheapest_module_first_each_module_together_the_store_last() -> None:
    from types import SimpleNamespace

    from mutant_order import mutant_order

    def item(nodeid: str, *fixtures: str) -> SimpleNamespace:
        return SimpleNamespace(nodeid=nodeid, fixturenames=["request", *fixtures])

    # as mutmut hands them over: modules interleaved, slow and store tests anywhere
    items = [
        item("tests/test_b.py::slow"),
        item("tests/test_p.py::uses_store", "families", "quick_store"),
        item("tests/test_a.py::second"),
        item("tests/test_b.py::quick"),
        item("tests/test_p.py::pure"),
        item("tests/test_a.py::first"),
        item("tests/test_a.py::unrecorded"),
        item("tests/test_q.py::also_store", "quick_store"),
        item("tests/test_c.py::needs_model", "trained"),
        item("tests/test_c.py::plain"),
    ]
    seconds = {
        "tests/test_b.py::slow": 3.0,
        "tests/test_b.py::quick": 0.1,
        "tests/test_a.py::first": 0.2,
        "tests/test_a.py::second": 0.5,
        "tests/test_p.py::pure": 1.0,
        "tests/test_p.py::uses_store": 0.6,
        "tests/test_q.py::also_store": 0.5,
        "tests/test_c.py::needs_model": 0.001,  # its fixture's setup is not in the record
        "tests/test_c.py::plain": 0.3,
    }
    # module- or session-scoped fixtures; one every test of a module needs does not count
    shared = {
        "tests/test_c.py::needs_model": frozenset({"trained", "one_thread"}),
        "tests/test_c.py::plain": frozenset({"one_thread"}),
        "tests/test_a.py::first": frozenset({"one_thread"}),
        "tests/test_a.py::second": frozenset({"one_thread"}),
    }
    order = [i.nodeid.removeprefix("tests/") for i in mutant_order(items, seconds, shared)]
    assert order == [
        "test_a.py::unrecorded",  # module a: its quickest test, unrecorded, counts as 0 s
        "test_a.py::first",
        "test_a.py::second",
        "test_b.py::quick",  # module b: 0.1 s, the slow test with it
        "test_b.py::slow",
        "test_c.py::plain",  # module c: 0.3 s, the test that needs a shared fixture after it
        "test_c.py::needs_model",
        "test_p.py::pure",  # 1.0 s
        "test_q.py::also_store",  # the simulated store last, the module of the quickest first
        "test_p.py::uses_store",
    ]
    assert mutant_order([], seconds) == []
    unshared = [i.nodeid for i in mutant_order(items, seconds)]  # no scopes known
    assert unshared.index("tests/test_c.py::needs_model") < unshared.index("tests/test_b.py::quick")


def test_a_survivor_is_accounted_for_by_its_line_or_by_name_in_the_records_triage() -> None:
    """A survivor counts as triaged when the docs hold its exact line (an earlier run's list:
    the same mutant with the same change) or name it in the record's triage (from "The
    eleventh run" to "Runs before the record" in docs/mutants.md, or a triage file), where
    `` `_17` `` after a full name in the same list item is the same function's mutant 17."""
    docs = {
        "mutants.md": (
            "## Survivors\n- `x_old__mutmut_3`: `a` → `b`\n- `x__loop__mutmut_18`: named "
            "before the record\n## The eleventh run\n- `x__loop__mutmut_11`, `_17`: the seed\n"
            "  labels, and `_19` on the next line of the item\n- `_20` alone: no full name\n"
            "## Runs before the record\n- `x__loop__mutmut_21`: an old reason\n"
        ),
        "mutants-triage-nn.md": "- circuitnn.nn.fit.x_f__mutmut_5: killed by a test\n",
    }
    rows = {
        name: f"- `{name}`: `a` → `{change}`"
        for name, change in [
            ("x__loop__mutmut_11", "b"),
            ("x__loop__mutmut_17", "b"),
            ("x__loop__mutmut_19", "b"),
            ("x__loop__mutmut_20", "b"),  # `_20` is in an item without a full name
            ("x__loop__mutmut_18", "b"),  # named outside the record's sections only
            ("x__loop__mutmut_21", "b"),
            ("x_old__mutmut_3", "b"),  # its exact line is listed
            ("x_f__mutmut_5", "b"),
            ("x_f__mutmut_50", "b"),
        ]
    }
    rows["x_old__mutmut_3 changed"] = "- `x_old__mutmut_3`: `a` → `c`"  # another change now
    left = mutation_score.untriaged(list(rows.values()), docs)
    assert left == [
        rows["x__loop__mutmut_20"],
        rows["x__loop__mutmut_18"],
        rows["x__loop__mutmut_21"],
        rows["x_f__mutmut_50"],
        rows["x_old__mutmut_3 changed"],
    ]
