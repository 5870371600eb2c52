"""How ngspice reads a netlist, line by line, and which of its lines a neuron may hold.

The rules follow ngspice's own reader (``src/frontend/inpcom.c``, ``inp_read``, and
``src/frontend/inp.c``, ``inp_spsource``, of ngspice 39), not a SPICE grammar:

* A file is split at ``\\n`` only; every ``\\r`` is dropped, wherever it is (``.con\\rtrol`` is
  ``.control``); leading blanks and tabs are skipped.
* A card is recognised by a case-insensitive *prefix* of its line: any line beginning with
  ``.control`` opens a control block (``.controls`` too) and any beginning with ``.endc`` closes
  one; any line beginning with ``.inc`` includes a file (``.incl``, ``.include``, ``.incfoo``);
  any beginning with ``.lib`` is a library reference (``.lib FILE SECTION``) or a section header
  (``.lib SECTION``). Include lines are followed everywhere, inside control blocks too.
* A line beginning with ``*#`` is a control command even outside a control block.
* An include's file name is its first token after comments are stripped (``;``, `` $``, ``//``),
  in single or double quotes or up to the next blank; a library reference's file and section are
  its first two tokens, quotes and blanks separating them.

:func:`scan` applies these rules and, unless control blocks are allowed, an allow-list: comments,
continuation lines, device lines (a letter, then a device name) and the cards a neuron needs
(:data:`ALLOWED_CARDS`, plus includes and library sections). Everything else is refused with the
file, the line and the card named — never with the line's text, which may be a secret file's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from circuitnn.errors import NetlistError

# the dot-cards a neuron's netlist (or a model library) may hold besides includes and libraries
ALLOWED_CARDS = frozenset(
    {
        ".subckt",
        ".ends",
        ".model",
        ".param",
        ".func",
        ".option",
        ".options",
        ".global",
        ".temp",
        ".endl",
    }
)


# the first word of a device line: an element letter, then what instance names are made of
_DEVICE = re.compile(r"[A-Za-z][A-Za-z0-9_.$#<>\[\]!+-]*")


# device-line words that are ngspice commands (they would run programs inside a control block)
_COMMANDS = re.compile(r"(shell|source|codemodel|osdi|pre_\w*|exec)$", re.IGNORECASE)


# a dot-card's name as it may be shown in a message (anything else is not quoted)
_CARD_NAME = re.compile(r"\.[A-Za-z0-9_]{1,30}")


# what C's isspace() accepts (ngspice separates tokens with it)
_C_SPACE = " \t\n\v\f\r"


@dataclass(frozen=True)
class Reference:
    """A line that makes ngspice read another file: ``.include FILE`` or ``.lib FILE SECTION``.

    ``line``: its 1-based line number; ``target``: the file name as ngspice reads it;
    ``section``: the library section (``.lib`` only); ``plain``: whether the line reads the same
    with and without ngspice's comment stripping (only such lines are left for ngspice to read).
    """

    line: int
    kind: str
    target: str
    section: str | None = None
    plain: bool = True


def physical_lines(text: str) -> list[str]:
    """The lines of ``text`` as ngspice sees them: split at ``\\n``, every ``\\r`` dropped, leading
    blanks and tabs skipped."""
    return [raw.replace("\r", "").lstrip(" \t") for raw in text.split("\n")]


def strip_comments(line: str) -> str:
    """``line`` without its end-of-line comment, as ngspice's ``inp_stripcomments_line`` does
    outside control blocks (``;``, ``$`` after a blank or comma, ``//``); a line that is only a
    comment becomes a ``*`` comment."""
    if not line or line[0] == "*":
        return line
    end = len(line)
    index = 0
    while index < len(line):
        char = line[index]
        index += 1
        following = line[index] if index < len(line) else ""
        if following == ";":
            end = index
            break
        if char == "$" and index >= 2 and line[index - 2] in " ,\t":
            end = index - 1
            break
        if char == "/" and following == "/":
            end = index - 1
            break
    if end == 0:
        return "*" + line[1:]
    kept = line[:end].rstrip(" \t")
    return kept if kept else "*" + line[1:]


def _include_target(line: str) -> str | None:
    """The file of an include line (ngspice's ``get_quoted_token`` after comment stripping)."""
    body = strip_comments(line)
    word = len(body) - len(body.lstrip(_C_SPACE))
    while word < len(body) and body[word] not in _C_SPACE:
        word += 1
    rest = body[word:].lstrip(_C_SPACE)
    if not rest:
        return None
    if rest[0] in "'\"":
        end = rest.find(rest[0], 1)
        return rest[1:end] if end > 0 else None
    return rest.split(maxsplit=1)[0] if rest.split() else None


def _library_tokens(line: str) -> list[str]:
    """The words after ``.lib`` (ngspice's ``expand_section_ref``: blanks and quotes separate)."""
    word = 0
    while word < len(line) and line[word] not in _C_SPACE:
        word += 1
    return [token for token in re.split(r"[\s'\"]+", line[word:]) if token]


def references(text: str) -> list[Reference]:
    """Every ``.include``/``.lib FILE SECTION`` line of ``text`` (control blocks included)."""
    found = []
    for number, line in enumerate(physical_lines(text), start=1):
        lower = line[:4].lower()
        if lower == ".inc":
            target = _include_target(line)
            if target is None:
                raise NetlistError(f"line {number}: an include card without a file name")
            found.append(Reference(number, "include", target))
        elif lower == ".lib":
            tokens = _library_tokens(line)
            if len(tokens) >= 2:  # `.lib NAME` alone opens a section of a library file
                stripped = _library_tokens(strip_comments(line))
                found.append(
                    Reference(number, "lib", tokens[0], tokens[1], plain=stripped == tokens[:2])
                )
    return found


def scan(text: str, source: str) -> None:
    """Refuse every line of ``text`` that a neuron does not need (see the module's rules);
    :class:`NetlistError` names ``source``, the line and the card."""
    for number, line in enumerate(physical_lines(text), start=1):
        why = _refusal(line)
        if why is None:
            continue
        where = f"{source}:{number}"
        raise NetlistError(
            f"{where}: {why} is not allowed in a neuron netlist; pass allow_control=True / "
            "--allow-control to accept it"
        )


def _refusal(line: str) -> str | None:
    """Why ``line`` is refused, or None when it is allowed."""
    if not line:
        return None
    lower = line.lower()
    if lower.startswith((".control", ".endc")):
        return f"{_card(line)} (a control block, which can run programs)"
    if lower.startswith((".inc", ".lib")):
        return None  # followed and checked as files of their own
    first = line[0]
    if first == "*":
        if line.startswith("*#"):
            return "a '*#' line (an ngspice control command, which can run programs)"
        if lower.startswith("*ng_script"):
            return "a '*ng_script' line (it makes the file a control script)"
        return None
    if first == "+" or line.startswith("//"):
        return None
    if first == ".":
        word = lower.split(maxsplit=1)[0]
        if word in ALLOWED_CARDS:
            return None
        if word == ".end":
            return "the card '.end' (it would end the test bench)"
        return f"the card {_card(line)}"
    if first.isascii() and first.isalpha():
        word = line.split(maxsplit=1)[0]
        device = _DEVICE.match(word)
        if device is None or (device.end() != len(word) and word[device.end()] != "("):
            return "a line whose first word is not a device name"
        if _COMMANDS.match(device.group(0)):
            return f"the ngspice command {device.group(0).lower()!r}"
        return None
    return "a line that starts with no SPICE card"


def _card(line: str) -> str:
    """The card's name, quoted, when it looks like one (else a neutral description)."""
    word = line.split(maxsplit=1)[0]
    name = _CARD_NAME.match(word)
    if name is None:
        return "a dot card"
    return repr(name.group(0).lower())
