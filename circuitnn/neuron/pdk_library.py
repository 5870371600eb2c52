"""A foundry library section read the way ngspice reads it: the files it reads (``.include``
and ``.lib FILE SECTION``, relative names against the including file's folder) and its
statements (a ``.subckt`` … ``.ends`` block, a ``.model`` card, one ``.param`` assignment, an
``.option`` card), comments and blank lines dropped; what :mod:`circuitnn.neuron.pdk_slice`
slices."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from circuitnn.errors import ConfigError, NetlistError
from circuitnn.neuron.cards import physical_lines, references, strip_comments
from circuitnn.neuron.includes import read_file, resolve

_ASSIGNMENT = re.compile(r"([a-z_][a-z0-9_]*)\s*=(?!=)")


_COMMENT_CHARACTERS = re.compile(r"[;$/]")


@dataclass
class Statement:
    """One statement of a library section: a ``.subckt`` … ``.ends`` block, a ``.model`` card,
    one ``.param`` assignment, an ``.option`` card or another card, with its lines."""

    kind: str  # "subckt", "model", "param", "option", "other"
    lines: list[str]
    names: tuple[str, ...] = ()  # what it defines (lower case)


def _section_lines(path: Path, section: str | None) -> list[str]:
    """The physical lines of ``path`` (of its ``section`` only, when given)."""
    lines = physical_lines(read_file(path, "library").text)
    if section is None:
        return lines
    kept: list[str] = []
    inside = False
    found = False
    for line in lines:
        tokens = line.split()
        opens = len(tokens) == 2 and tokens[0].lower() == ".lib" and tokens[1] == section
        if opens and not inside:
            inside = found = True
            continue
        if inside and tokens and tokens[0].lower() == ".endl":
            inside = False
            continue
        if inside:
            kept.append(line)
    if not found:
        raise ConfigError(f"library {path} has no section {section!r}")
    return kept


def _expanded(path: Path, section: str | None, chain: tuple[Path, ...]) -> list[tuple[str, Path]]:
    """Every physical line the section reads, includes expanded, with the file it came from."""
    if path in chain:
        raise NetlistError(f"{path}: includes itself (an include loop)")
    lines = _section_lines(path, section)
    out: list[tuple[str, Path]] = []
    for line in lines:
        found = references(line) if line[:4].lower() in (".inc", ".lib") else None
        if found:
            reference = found[0]
            target = resolve(reference.target, path.parent, str(path))
            out.extend(_expanded(target, reference.section, (*chain, path)))
        else:
            out.append((line, path))
    return out


def section_files(library: Path, section: str) -> list[Path]:
    """The files ``library``'s ``section`` reads, in first-read order (the library first)."""
    seen: dict[Path, None] = {library: None}
    pending = [(library, section)]
    while pending:
        path, wanted = pending.pop(0)
        for reference in references("\n".join(_section_lines(path, wanted))):
            target = resolve(reference.target, path.parent, str(path))
            if target not in seen or reference.section is not None:
                seen.setdefault(target, None)
                pending.append((target, reference.section))
    return list(seen)


def section_statements(library: Path, section: str) -> list[Statement]:
    """The section as statements (comments and blank lines dropped)."""
    logical: list[list[str]] = []
    for line, _ in _expanded(library, section, ()):
        body = (strip_comments(line) if _COMMENT_CHARACTERS.search(line) else line).rstrip()
        if not body.strip() or body.startswith("*"):
            continue
        if body.startswith("+") and logical:
            logical[-1].append(body)
        else:
            logical.append([body])
    statements: list[Statement] = []
    block: Statement | None = None
    depth = 0
    for lines in logical:
        card = lines[0].split(maxsplit=1)[0].lower()
        if card == ".subckt":
            depth += 1
            if depth == 1:
                name = " ".join(lines).split()[1].lower()
                block = Statement("subckt", [], (name,))
        if block is not None:
            block.lines.extend(lines)
            if card == ".ends":
                depth -= 1
                if depth == 0:
                    statements.append(block)
                    block = None
            continue
        if card == ".model":
            name = " ".join(lines).split()[1].lower()
            statements.append(Statement("model", lines, (name.split(".")[0],)))
        elif card == ".param":
            statements.extend(_assignments(" ".join(line.lstrip("+") for line in lines)[6:]))
        elif card.startswith(".option"):
            statements.append(Statement("option", lines))
        else:
            statements.append(Statement("other", lines))
    return statements


def _assignments(text: str) -> list[Statement]:
    """One statement per ``name = expression`` of a ``.param`` card's text."""
    starts = []
    lower = text.lower()
    depth = 0
    quote = ""
    for index, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "{(":
            depth += 1
        elif char in "})":
            depth -= 1
        elif depth == 0 and (index == 0 or text[index - 1] in " \t,"):
            match = _ASSIGNMENT.match(lower, index)
            if match:
                starts.append((index, match.group(1)))
    out = []
    for number, (start, name) in enumerate(starts):
        end = starts[number + 1][0] if number + 1 < len(starts) else len(text)
        out.append(Statement("param", [f".param {text[start:end].strip().rstrip(',')}"], (name,)))
    return out
