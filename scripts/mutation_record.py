"""Keep mutmut's verdicts in the repository, so a new machine retries only what changed.

mutmut 3.8.1 keeps each mutated module's verdicts in ``mutants/<module>.meta`` (JSON: the exit
code of every mutant and a hash of every mutated function's source), and ``mutants/`` is not
tracked. A clean checkout would therefore run every mutant again (hours on 2 cores).

``restore`` copies the record (``tests/mutation_record/<module>.json``) into ``mutants/`` for each
module that has no local verdicts yet; mutmut then keeps a recorded verdict only where the
function's hash is unchanged (a function edited since is run again, as mutmut does locally).
``save`` writes the local verdicts back into the record: the exit codes of the mutants run and the
hashes, one entry per line, sorted, so that a change of verdict is a one-line diff (a mutant not in
the record is "not checked"). ``bash dev.sh mutants`` runs
``restore`` before mutmut and ``save`` after it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTANTS = ROOT / "mutants"
RECORD = ROOT / "tests" / "mutation_record"
KEPT = ("exit_code_by_key", "hash_by_function_name")


def _meta_path(record: Path) -> Path:
    """``tests/mutation_record/circuitnn/nn/fit.py.json`` → ``mutants/circuitnn/nn/fit.py.meta``."""
    return MUTANTS / record.relative_to(RECORD).with_suffix(".meta")


def _record_path(meta: Path) -> Path:
    return RECORD / meta.relative_to(MUTANTS).with_suffix(".json")


def restore() -> int:
    """Seed ``mutants/`` from the record where it has no verdicts; returns the files copied."""
    copied = 0
    for record in sorted(RECORD.rglob("*.py.json")):
        meta = _meta_path(record)
        if meta.exists():
            continue
        kept = json.loads(record.read_text())
        missing = [key for key in KEPT if key not in kept]
        if missing:
            raise SystemExit(f"{record.relative_to(ROOT)}: no {', '.join(missing)}")
        meta.parent.mkdir(parents=True, exist_ok=True)
        full = {
            **{key: kept[key] for key in KEPT},
            "type_check_error_by_key": {},
            "durations_by_key": {},
            "estimated_durations_by_key": {},
        }
        meta.write_text(json.dumps(full))
        copied += 1
    return copied


def save() -> int:
    """Write every module's local verdicts into the record; returns the files written."""
    written = 0
    for meta in sorted(MUTANTS.glob("circuitnn/**/*.py.meta")):
        try:
            data = json.loads(meta.read_text())
        except json.JSONDecodeError as error:
            raise SystemExit(
                f"{meta.relative_to(ROOT)}: not JSON ({error}); record not saved"
            ) from None
        verdicts = {
            name: code for name, code in data["exit_code_by_key"].items() if code is not None
        }
        kept = {
            "exit_code_by_key": dict(sorted(verdicts.items())),
            "hash_by_function_name": dict(sorted(data["hash_by_function_name"].items())),
        }
        record = _record_path(meta)
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(kept, indent=0, sort_keys=True) + "\n")
        written += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["restore", "save"])
    action = parser.parse_args().action
    count = restore() if action == "restore" else save()
    verb = "restored into mutants/" if action == "restore" else "saved in tests/mutation_record/"
    print(f"[mutants] verdicts of {count} module(s) {verb}")


if __name__ == "__main__":
    main()
