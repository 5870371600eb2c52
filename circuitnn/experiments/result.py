"""What an experiment returns and writes: tables, figures, findings checked against its numbers."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Row = dict[str, Any]


@dataclass(frozen=True)
class Finding:
    """One qualitative finding of a source study, checked against this run's numbers.

    ``claim``: the finding in words; ``holds``: whether this run reproduced it; ``evidence``: the
    numbers that decided it (written out plainly whether or not it holds).
    """

    claim: str
    holds: bool
    evidence: str

    def line(self) -> str:
        """One Markdown bullet: ✔/✘, the claim and the evidence."""
        mark = "reproduced" if self.holds else "NOT reproduced"
        return f"- **{mark}**: {self.claim} — {self.evidence}"


@dataclass
class ExperimentResult:
    """Tables (name → rows of plain values), figures (name → PNG path), findings and a summary.

    ``config`` holds the experiment's settings as plain values, written next to the tables so a
    result says how it was made.
    """

    name: str
    out: Path
    config: dict[str, Any]
    tables: dict[str, list[Row]] = field(default_factory=dict)
    figures: dict[str, Path] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)

    def write(self) -> Path:
        """Write ``NAME.csv`` per table, ``result.json`` and ``summary.md``; return summary.md."""
        self.out.mkdir(parents=True, exist_ok=True)
        for table, rows in self.tables.items():
            write_csv(self.out / f"{table}.csv", rows)
        document = {
            "experiment": self.name,
            "config": self.config,
            "tables": self.tables,
            "figures": {name: str(path) for name, path in self.figures.items()},
            "findings": [vars(finding) for finding in self.findings],
            "summary": self.summary,
        }
        (self.out / "result.json").write_text(json.dumps(_plain(document), indent=1) + "\n")
        page = self.out / "summary.md"
        page.write_text(self.markdown(relative_to=self.out))
        return page

    def markdown(self, relative_to: Path | None = None, level: int = 1) -> str:
        """The result as Markdown: summary, findings, tables, figures (paths relative to
        ``relative_to`` when given)."""
        head = "#" * level
        lines = [f"{head} {self.name}", ""]
        lines += [f"{line}" for line in self.summary] + [""]
        if self.findings:
            lines += [f"{head}# Findings", ""] + [f.line() for f in self.findings] + [""]
        for table, rows in self.tables.items():
            lines += [f"{head}# {table}", "", markdown_table(rows), ""]
        for name, path in self.figures.items():
            shown = path.relative_to(relative_to) if relative_to else path
            lines += [f"![{name}]({shown.as_posix()})", ""]
        return "\n".join(lines)

    def print_summary(self) -> None:
        """Print the summary lines and the findings to stdout."""
        print(f"{self.name}:")
        for line in self.summary:
            print(f"  {line}")
        for finding in self.findings:
            mark = "ok " if finding.holds else "NO "
            print(f"  [{mark}] {finding.claim}: {finding.evidence}")
        print(f"  → {self.out}")


def write_csv(path: Path, rows: list[Row]) -> None:
    """Rows of plain values as a CSV file with the union of their keys as header."""
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: _cell(row.get(key)) for key in columns})


def markdown_table(rows: list[Row], digits: int = 4) -> str:
    """Rows as a Markdown table (floats to ``digits`` significant digits)."""
    if not rows:
        return "(no rows)"
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(key), digits) for key in columns) + " |")
    return "\n".join(lines)


def _cell(value: Any, digits: int = 6) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.{digits}g}"
    return str(value)


def _plain(value: Any) -> Any:
    """Numpy scalars/arrays and paths as JSON-ready values (NaN → None)."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
