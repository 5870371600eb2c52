"""What an experiment returns and writes: tables, figures, findings checked against its numbers."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from circuitnn.experiments.verdicts import Check, Verdict, combine

Row = dict[str, Any]


@dataclass(frozen=True)
class Finding:
    """One qualitative finding of a source study, checked against this run's numbers.

    ``claim``: the finding in words; ``verdict``: ``reproduced``, ``contradicted`` or
    ``inconclusive`` when decided from effect sizes with confidence intervals (``checks``, see
    :mod:`circuitnn.experiments.stats`; build with :meth:`judged`), or ``reproduced`` / ``not
    reproduced`` for a single-run rule given as ``holds``; ``holds``: the verdict is reproduced;
    ``evidence``: the numbers behind it, written out whatever the verdict.
    """

    claim: str
    holds: bool
    evidence: str
    verdict: str = ""
    checks: tuple[Check, ...] = ()

    def __post_init__(self) -> None:
        if not self.verdict:
            object.__setattr__(self, "verdict", "reproduced" if self.holds else "not reproduced")

    @classmethod
    def judged(
        cls,
        claim: str,
        checks: Sequence[Check],
        evidence: str = "",
        mode: Literal["all", "any"] = "all",
    ) -> Finding:
        """The finding decided by ``checks`` (every part must hold: ``mode="all"``; some part:
        ``"any"``; see :func:`~circuitnn.experiments.stats.combine`)."""
        verdict = combine(checks, mode)
        return cls(claim, verdict == Verdict.REPRODUCED, evidence, str(verdict), tuple(checks))

    @property
    def replicates(self) -> int:
        """The replicate count behind the checks (0 for a single-run rule)."""
        return max((check.effect.replicates for check in self.checks), default=0)

    def line(self) -> str:
        """One Markdown bullet: the verdict, the claim, each check's effect with its interval,
        and the evidence."""
        mark = self.verdict if self.checks or self.holds else "NOT reproduced"
        parts = [check.text() for check in self.checks]
        if self.evidence:
            parts.append(self.evidence)
        return f"- **{mark}**: {self.claim} — " + "; ".join(parts)

    def rows(self) -> list[Row]:
        """One table row per check: the claim, its verdict, the effect, interval and rule."""
        return [
            {"claim": self.claim, "claim_verdict": self.verdict, **check.row()}
            for check in self.checks
        ]

    def document(self) -> dict[str, Any]:
        """The finding as plain values for ``result.json``."""
        return {
            "claim": self.claim,
            "verdict": self.verdict,
            "holds": self.holds,
            "evidence": self.evidence,
            "replicates": self.replicates,
            "checks": [check.row() for check in self.checks],
        }


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

    @classmethod
    def begin(
        cls,
        name: str,
        out: str | Path,
        *,
        quick: bool,
        seed: int,
        replicates: int,
        store: str | Path,
        settings: Any,
        tables: dict[str, list[Row]] | None = None,
        **config: Any,
    ) -> ExperimentResult:
        """The result of experiment ``name`` writing into ``out`` (created): its config holds
        the run's size, seed, replicates, store and ``settings`` (a dataclass), then ``config``."""
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        common = {
            "quick": quick,
            "seed": seed,
            "replicates": replicates,
            "store": str(store),
            "settings": asdict(settings),
        }
        return cls(name=name, out=folder, config={**common, **config}, tables=tables or {})

    def write(self) -> Path:
        """Write ``NAME.csv`` per table, ``result.json`` and ``summary.md``; return summary.md."""
        self.out.mkdir(parents=True, exist_ok=True)
        for table, rows in self.tables.items():
            write_csv(self.out / f"{table}.csv", rows)
        checks = self.finding_rows()
        if checks:
            write_csv(self.out / "findings.csv", checks)
        document = {
            "experiment": self.name,
            "config": self.config,
            "tables": self.tables,
            "figures": {name: str(path) for name, path in self.figures.items()},
            "findings": [finding.document() for finding in self.findings],
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
            checks = self.finding_rows()
            if checks:
                shown = [{k: row[k] for k in FINDING_COLUMNS} for row in checks]
                lines += [markdown_table(shown), ""]
        for table, rows in self.tables.items():
            lines += [f"{head}# {table}", "", markdown_table(rows), ""]
        for name, path in self.figures.items():
            shown = path.relative_to(relative_to) if relative_to else path
            lines += [f"![{name}]({shown.as_posix()})", ""]
        return "\n".join(lines)

    def finding_rows(self) -> list[Row]:
        """Every check of every finding as a table row (``findings.csv``)."""
        return [row for finding in self.findings for row in finding.rows()]

    def print_summary(self) -> None:
        """Print the summary lines and each finding: verdict, claim, every effect with its
        interval and replicate count, and the evidence."""
        print(f"{self.name}:")
        for line in self.summary:
            print(f"  {line}")
        for finding in self.findings:
            print(f"  [{finding.verdict}] {finding.claim}")
            for check in finding.checks:
                print(f"      {check.text()}")
            if finding.evidence:
                print(f"      {finding.evidence}")
        print(f"  → {self.out}")


# the columns of the findings table in summary.md (findings.csv has them all)
FINDING_COLUMNS = (
    "claim_verdict",
    "effect",
    "estimate",
    "ci_low",
    "ci_high",
    "replicates",
    "method",
    "rule",
    "verdict",
)


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
