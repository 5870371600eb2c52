"""The order in which mutmut's run of one mutant takes its tests (the hook in tests/conftest.py).

For each mutant, mutmut runs the tests that reach the mutated function with ``-x``: the mutant is
caught at the first test that fails. It hands them to pytest in an arbitrary order (a set), so a
cheap test that catches the mutant often waited behind slow ones (a CLI run, a fresh Python
process, the store simulated by ngspice), and a test module's module-scoped fixtures were set up
again every time its tests came interleaved with another module's. Ordered here instead: the
tests that need the session's simulated store (``quick_store``: families built by ngspice) last;
the others module by module (a module's fixtures set up once), the module of the quickest test
first; within a module the tests that need a shared fixture of their own (module or session
scope, e.g. a trained model, which mutmut's recorded times leave out) after those that do not,
each part quickest first. The same tests run; only their order changes.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Protocol, TypeVar

#: the session fixture that simulates families with ngspice (seconds, paid once per mutant)
SIMULATED_STORE = "quick_store"


class Collected(Protocol):
    """What the order looks at in a collected pytest item."""

    nodeid: str
    fixturenames: list[str]


Item = TypeVar("Item", bound=Collected)


def mutant_order(
    items: Sequence[Item],
    seconds: Mapping[str, float],
    shared: Mapping[str, frozenset[str]] | None = None,
) -> list[Item]:
    """``items`` in the order to run them against one mutant.

    ``seconds``: each test's recorded time by node id (mutmut's ``duration_by_test``, the call
    phase only); a test without a record counts as taking no time. ``shared``: each test's
    fixtures of module or session scope by node id (none if not given); those that every test
    of its module here needs do not count.
    """
    shared = shared or {}

    def needs_store(item: Item) -> bool:
        return SIMULATED_STORE in item.fixturenames

    def group(item: Item) -> tuple[bool, str]:
        return needs_store(item), item.nodeid.split("::", 1)[0]

    common: dict[tuple[bool, str], frozenset[str]] = {}
    for item in items:
        mine = shared.get(item.nodeid, frozenset())
        common[group(item)] = common[group(item)] & mine if group(item) in common else mine

    def extra_setup(item: Item) -> bool:
        return bool(shared.get(item.nodeid, frozenset()) - common[group(item)])

    def own_cost(item: Item) -> tuple[bool, float]:
        return extra_setup(item), seconds.get(item.nodeid, 0.0)

    quickest: dict[tuple[bool, str], tuple[bool, float]] = defaultdict(lambda: (True, math.inf))
    for item in items:
        quickest[group(item)] = min(quickest[group(item)], own_cost(item))
    position = {id(item): index for index, item in enumerate(items)}
    return sorted(
        items,
        key=lambda item: (
            needs_store(item),
            quickest[group(item)],
            group(item)[1],
            own_cost(item),
            position[id(item)],
        ),
    )
