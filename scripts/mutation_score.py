"""Print the mutation score per module from mutmut's results (run by ``bash dev.sh mutants``).

Reads ``mutmut results --all true`` (one ``name: status`` line per mutant; the name starts with
the mutated function's module) and prints a Markdown table: per module, how many mutants the fast
tests killed out of how many were checked, and how many survived, reached no test, timed out (a
mutant that makes a test hang counts as killed) or were not checked yet (a run stopped early, or
one restricted to some mutants:
``bash dev.sh mutants "circuitnn.extract.spectra.*"``). ``--survivors``
lists the surviving mutants; ``--diffs`` lists them with their change, one line each
(``original → mutant``, as docs/mutants.md lists them); ``--untriaged`` lists only those that the
docs do not account for yet (see :func:`untriaged`).
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
RECORD_START = "## The eleventh run"  # docs/mutants.md: where the record's triage starts…
RECORD_END = "## Runs before the record"  # …and ends
# a full mutant name (``xǁLayerǁforward__mutmut_3``), or `` `_3` `` for another of the same function
MENTION = re.compile(r"(?P<full>x[\wǁ]*?__mutmut_)(?P<n>\d+)|`_(?P<n2>\d+)`")


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


def triaged_names(docs: dict[str, str]) -> set[str]:
    """Mutant names (``x__loop__mutmut_17``) named in the record's triage: docs/mutants.md from
    its "eleventh run" section on and docs/mutants-triage-*.md. In a list item, `` `_19` ``
    after a full name stands for the same function's mutant 19."""
    text = "\n".join(t for name, t in docs.items() if name.startswith("mutants-triage-"))
    main = docs.get("mutants.md", "")
    start, end = main.find(RECORD_START), main.find(RECORD_END)
    if start >= 0:
        text += "\n" + main[start : end if end > start else len(main)]
    names: set[str] = set()
    for item in re.split(r"\n(?=\s*[-#])|\n\s*\n", text):
        prefix = None
        for match in MENTION.finditer(item):
            if match["full"]:
                prefix = match["full"]
                names.add(prefix + match["n"])
            elif prefix is not None:
                names.add(prefix + match["n2"])
    return names


def untriaged(rows: list[str], docs: dict[str, str]) -> list[str]:
    """The rows (``- `name`: change``) the docs do not account for: neither the row itself in
    any docs/mutants*.md (the earlier runs' lists, kept where a function did not change) nor
    the name in the record's triage (:func:`triaged_names`)."""
    everything = "\n".join(docs.values())
    named = triaged_names(docs)
    left = []
    for row in rows:
        name = row.split("`", 2)[1]
        if row not in everything and name not in named:
            left.append(row)
    return left


def survivor_rows(names: list[str]) -> list[str]:
    """``- `short name`: `original` → `mutant``` for each mutant, from mutmut's own diff. A
    module whose mutated source is not in ``mutants/`` yet (a clean checkout, verdicts restored
    from ``tests/mutation_record/``) is mutated first, the way ``mutmut run`` does it: verdicts
    of unchanged functions are kept."""
    import os

    os.chdir(ROOT)
    from mutmut.__main__ import create_mutants_for_file, find_mutant, get_diff_for_mutant

    rows = []
    for name in names:
        source = Path(module_of(name))
        mutated = Path("mutants") / source
        if not mutated.exists():
            mutated.parent.mkdir(parents=True, exist_ok=True)
            create_mutants_for_file(source, mutated)
        diff = get_diff_for_mutant(name, path=find_mutant(name).path)
        rows.append(f"- `{name.rsplit('.', 1)[-1]}`: {change_of(diff)}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--survivors", action="store_true", help="also list surviving mutants")
    parser.add_argument(
        "--diffs", action="store_true", help="list surviving mutants with their change"
    )
    parser.add_argument(
        "--untriaged", action="store_true", help="list survivors the docs do not account for"
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
    if not (args.survivors or args.diffs or args.untriaged):
        return 0
    names = []
    for line in done.stdout.splitlines():
        match = LINE.match(line)
        if not match or match["status"] != "survived":
            continue
        if args.module is None or module_of(match["name"]) == args.module:
            names.append(line.strip().rsplit(":", 1)[0])
    print()
    if args.survivors and not (args.diffs or args.untriaged):
        print("\n".join(names))
        return 0
    rows = survivor_rows(names)
    if args.untriaged:
        docs = {p.name: p.read_text() for p in sorted((ROOT / "docs").glob("mutants*.md"))}
        rows = untriaged(rows, docs)
        print(f"{len(rows)} of {len(names)} survivors not accounted for in docs/mutants*.md")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
