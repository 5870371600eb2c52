"""Print the mutation score per module from mutmut's results (run by ``bash dev.sh mutants``).

Reads ``mutmut results --all true`` (one ``name: status`` line per mutant; the name starts with
the mutated function's module) and prints a Markdown table: per module, how many mutants the fast
tests killed out of how many were checked, and how many survived, reached no test, timed out (a
mutant that makes a test hang counts as killed) or were not checked yet (a run stopped early, or
one restricted to some mutants:
``bash dev.sh mutants "circuitnn.extract.spectra.*"``). ``--survivors``
lists the surviving mutants; ``--diffs`` lists them with their change, one line each
(``original → mutant``, as docs/mutants.md lists them).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINE = re.compile(r"^\s*(?P<name>[\w.ǁ]+)__mutmut_\d+: (?P<status>.+?)\s*$")
KILLED = {"killed", "timeout"}


def module_of(name: str) -> str:
    """``circuitnn.nn.activation.xǁCircuitActivationǁresample`` → ``circuitnn/nn/activation.py``."""
    dotted = re.split(r"\.x[_ǁ]", name, maxsplit=1)[0]
    return dotted.replace(".", "/") + ".py"


def read_results(text: str) -> dict[str, Counter[str]]:
    """Status counts per module from mutmut's results listing."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for line in text.splitlines():
        match = LINE.match(line)
        if match:
            counts[module_of(match["name"])][match["status"]] += 1
    return dict(counts)


def table(counts: dict[str, Counter[str]]) -> list[str]:
    """The Markdown table: one row per module and a total."""
    rows = [
        "| module | killed | survived | no test | timeout | not checked | score |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    total: Counter[str] = Counter()
    for module in sorted(counts):
        status = counts[module]
        total.update(status)
        rows.append(_row(f"`{module}`", status))
    rows.append(_row("**all**", total))
    return rows


def _row(label: str, status: Counter[str]) -> str:
    checked = sum(status.values()) - status["not checked"]
    killed = sum(status[s] for s in KILLED)
    return (
        f"| {label} | {killed} | {status['survived']} | {status['no tests']} | "
        f"{status['timeout']} | {status['not checked']} | {killed} of {checked} killed |"
    )


def change_of(show: str) -> str:
    """``original → mutant`` from ``mutmut show``'s diff (its removed and added lines)."""
    removed = [
        line[1:].strip()
        for line in show.splitlines()
        if line.startswith("-") and not line.startswith("---")
    ]
    added = [
        line[1:].strip()
        for line in show.splitlines()
        if line.startswith("+") and not line.startswith("+++")
    ]
    return f"`{' '.join(removed)}` → `{' '.join(added)}`"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--survivors", action="store_true", help="also list surviving mutants")
    parser.add_argument(
        "--diffs", action="store_true", help="list surviving mutants with their change"
    )
    parser.add_argument("--module", help="only this module's survivors (circuitnn/nn/draws.py)")
    args = parser.parse_args(argv)
    mutmut = Path(sys.executable).with_name("mutmut")
    done = subprocess.run(
        [str(mutmut), "results", "--all", "true"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        print(done.stderr.strip() or "mutmut results failed", file=sys.stderr)
        return 1
    counts = read_results(done.stdout)
    if not counts:
        print("no mutation results: run `bash dev.sh mutants` first", file=sys.stderr)
        return 1
    print("\n".join(table(counts)))
    if args.survivors or args.diffs:
        print()
        for line in done.stdout.splitlines():
            match = LINE.match(line)
            if not match or match["status"] != "survived":
                continue
            if args.module is not None and module_of(match["name"]) != args.module:
                continue
            name = line.strip().rsplit(":", 1)[0]
            if not args.diffs:
                print(name)
                continue
            show = subprocess.run(
                [str(mutmut), "show", name], cwd=ROOT, capture_output=True, text=True, check=False
            )
            print(f"- `{name.rsplit('.', 1)[-1]}`: {change_of(show.stdout)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
