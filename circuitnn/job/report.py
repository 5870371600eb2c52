"""The main job's report: one Markdown page (``OUT/report.md``) and its HTML rendering.

The page is the stages' :class:`~circuitnn.experiments.result.ExperimentResult` sections in order
(each rendered by its own ``markdown()``: summary, findings, tables, figures) after a summary of
the checked findings, and a last section with the settings, versions, seeds and timings. Each
section is also written on its own (``OUT/<section>/``: CSV per table, ``result.json``,
``summary.md``). The HTML page embeds its images, so it is one self-contained file; it needs
nothing beyond the standard library.
"""

from __future__ import annotations

import base64
import datetime
import html
import importlib.metadata
import os
import platform
import re
import sys
from pathlib import Path
from typing import Any

from circuitnn.experiments.result import ExperimentResult, Finding, _cell
from circuitnn.family import Family
from circuitnn.job.config import MainJobConfig

TITLE = "circuitnn main job"


PACKAGES = ("numpy", "torch", "h5py", "matplotlib", "scikit-learn", "scipy")


def settings_section(
    config: MainJobConfig,
    out: Path,
    *,
    timings: dict[str, float],
    jobs: int,
    families: dict[str, Family],
    command: str,
) -> ExperimentResult:
    """Settings and provenance: the configuration, versions, seeds, family keys and timings."""
    import torch

    from circuitnn._version import __version__

    versions = [
        {"software": "circuitnn", "version": __version__},
        {"software": "python", "version": platform.python_version()},
    ]
    for package in PACKAGES:
        try:
            versions.append({"software": package, "version": importlib.metadata.version(package)})
        except importlib.metadata.PackageNotFoundError:
            continue
    ngspice = sorted({str(f.attrs.get("ngspice_version", "?")) for f in families.values()})
    versions.append({"software": "ngspice (families)", "version": ", ".join(ngspice)})
    seed = config.seed
    seeds = [
        {"what": "Monte Carlo instances of every family", "seed": seed},
        {"what": "train / validation / test split", "seed": seed},
        {"what": "initial weights, first chip, noise modules (build_mlp)", "seed": seed},
        {"what": "batch order, injected noise (TrainConfig.seed)", "seed": seed},
        {"what": "evaluation noise draws and chip c (derived from seed and c)", "seed": seed},
    ]
    keys = [
        {
            "family": family.neuron,
            "key": family.key,
            "spec": name,
            "created": str(family.attrs.get("created", "")),
        }
        for name, family in families.items()
    ]
    timing_rows = [{"stage": stage, "seconds": seconds} for stage, seconds in timings.items()]
    timing_rows.append({"stage": "total (stages above)", "seconds": sum(timings.values())})
    configuration = [
        {"key": key, "value": ", ".join(map(str, value)) if isinstance(value, list) else value}
        for key, value in config.as_dict().items()
    ]
    return ExperimentResult(
        "Settings and provenance",
        out / "settings",
        config.as_dict(),
        tables={
            "configuration": configuration,
            "versions": versions,
            "seeds": seeds,
            "family_keys": keys,
            "timings": timing_rows,
        },
        summary=[
            f"Command: `{command}`; written {_now()}.",
            f"Machine: {platform.platform()}, {os.cpu_count()} CPUs; {jobs} ngspice job(s), "
            f"{config.threads} torch thread(s) ({torch.__version__}).",
        ],
    )


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def write_report(
    config: MainJobConfig,
    out: Path,
    sections: list[ExperimentResult],
    *,
    findings: list[Finding],
    headline: list[str],
) -> Path:
    """Write every section's own files, ``OUT/report.md`` and (``config.html``)
    ``OUT/report.html``; return the Markdown report's path."""
    for section in sections:
        section.write()
    parts = [f"# {TITLE}", "", *headline, ""]
    parts += ["## Findings", ""] + [finding.line() for finding in findings] + [""]
    parts += [section.markdown(relative_to=out, level=2) for section in sections]
    report = out / "report.md"
    report.write_text("\n".join(parts).rstrip() + "\n")
    if config.html:
        page = render_html(TITLE, headline, findings, sections)
        report.with_suffix(".html").write_text(page)
    return report


# HTML ----------------------------------------------------------------------------------------

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.55em; text-align: right; }
th { background: #f1f3f5; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.4em 0; }
code { background: #f4f4f4; padding: 0 0.2em; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.8em; }
.ok { color: #17733a; } .no { color: #b42318; } .unsure { color: #8a6d00; }
"""


def _inline(text: str) -> str:
    """Escape ``text`` and render its Markdown ``code`` and **bold** spans."""
    text = html.escape(text)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", text)


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>(no rows)</p>"
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(row.get(c), 4))}</td>" for c in columns) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _finding(finding: Finding) -> str:
    verdict = finding.verdict
    css = {"reproduced": "ok", "inconclusive": "unsure"}.get(verdict, "no")
    mark = "NOT reproduced" if verdict == "not reproduced" else verdict
    return (
        f'<li><b class="{css}">{mark}</b>: {_inline(finding.claim)} — '
        f"{_inline(finding.evidence)}</li>"
    )


def _image(name: str, path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(name)}</figcaption></figure>"
    )


def render_html(
    title: str, headline: list[str], findings: list[Finding], sections: list[ExperimentResult]
) -> str:
    """The report as one self-contained HTML page (images embedded as data URIs)."""
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>',
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        *(f"<p>{_inline(line)}</p>" for line in headline),
        "<h2>Findings</h2><ul>",
        *(_finding(finding) for finding in findings),
        "</ul>",
    ]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.name)}</h2>")
        parts += [f"<p>{_inline(line)}</p>" for line in section.summary]
        if section.findings:
            parts += ["<ul>", *(_finding(finding) for finding in section.findings), "</ul>"]
        for name, rows in section.tables.items():
            parts += [f"<h3>{html.escape(name)}</h3>", _table(rows)]
        parts += [_image(name, path) for name, path in section.figures.items()]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def python_command() -> str:
    """The command line that started this process, for the provenance section."""
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    return " ".join([program, *sys.argv[1:]])
