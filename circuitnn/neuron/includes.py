"""A neuron's netlist and the files it includes: read with limits, resolved as ngspice resolves
them, and written into the netlist under safe names, so that no path a user wrote reaches ngspice.

Files: the netlist and every file it includes (recursively, ``.include`` and ``.lib FILE
SECTION``) must be regular files (not a device such as ``/dev/zero``, a FIFO or a folder) of at
most :data:`MAX_FILE_BYTES`, without NUL bytes; at most :data:`MAX_FILES` of them.

Names: an include line is rewritten to one of two forms, and nothing else reaches ngspice:

* **copied** (the default): ``.include "inc-<hash>-<name>"``, a name made of the hash of the
  file's text and its sanitised file name. The text travels inside the spec (to worker processes
  too) and each engine writes it into ngspice's run folder under that name before the run; its
  own include lines are rewritten the same way, so the copies only name each other.
* **referenced**: ``.include "/absolute/path"``, only for a *large* file (at least
  :data:`REFERENCE_BYTES`, a foundry model library, say) whose resolved path is made of safe
  characters (letters, digits, ``_ . / + -``) and whose own includes are all referenced too, with
  lines that ngspice resolves exactly as here. ngspice then reads the library in place, so a
  large library is neither copied per run nor shipped to every worker; in exchange, the file must
  not change while families are extracted: every process checks it again (its hash included)
  before its first use.

Relative names resolve, as in ngspice, against the folder of the file holding the line; ``~/``
is the home folder. The content hash of a family covers every included file's text (see
:meth:`NeuronSpec.identity <circuitnn.neuron.spec.NeuronSpec.identity>`), not where it lies.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from circuitnn.errors import ConfigError, NetlistError
from circuitnn.neuron.cards import Reference, references

MAX_FILE_BYTES = 64 * 2**20  # largest netlist or included file, bytes


MAX_FILES = 1000  # most files one netlist may include, recursively


REFERENCE_BYTES = 2**20  # an included file this large, with a safe path, is referenced in place


STAGED = re.compile(r"inc-[0-9a-f]{16}-[A-Za-z0-9_.+-]{0,40}")


SAFE_PATH = re.compile(r"/[A-Za-z0-9_./+-]*")


SECTION = re.compile(r"[A-Za-z0-9_.+-]{1,100}")


@dataclass(frozen=True)
class IncludedFile:
    """One file a netlist includes.

    ``name``: what the netlist calls it (a staged name ``inc-<hash>-<file name>``, or the absolute
    path of a referenced file); ``source``: where it was read from (resolved absolute path);
    ``digest``: SHA-256 of its bytes as read (hex); ``text``: the text written into ngspice's run
    folder under ``name`` (None for a referenced file, which ngspice reads in place).
    """

    name: str
    source: str
    digest: str
    text: str | None = None

    @property
    def referenced(self) -> bool:
        """Whether ngspice reads the file in place (a large library) instead of a copy."""
        return self.text is None


@dataclass(frozen=True)
class Netlist:
    """A netlist ready for a spec: its ``text`` with every include rewritten (see the module),
    the ``includes`` it names, and ``texts``, the original text of the netlist and of every
    included file (``(path, text)``: where a ``.subckt`` may be found)."""

    text: str
    source: str
    includes: tuple[IncludedFile, ...]
    texts: tuple[tuple[str, str], ...]


@dataclass
class _File:
    path: Path
    text: str
    digest: str
    size: int
    lines: list[Reference]
    children: list[_File] = field(default_factory=list)
    via_include: bool = False


def shown(path: str | Path) -> str:
    """A path for a one-line message: as is when printable, else quoted with escapes."""
    text = str(path)
    return text if text.isprintable() else repr(text)


def read_file(path: str | Path, what: str, error: type[Exception] = NetlistError) -> _File:
    """Read a netlist file with the limits of the module (a regular text file of at most
    :data:`MAX_FILE_BYTES`); ``error`` (naming ``what``) when it is not one."""
    path = Path(path)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused just below)
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise error(f"{what}: file not found: {shown(path)}") from None
    except (OSError, ValueError) as failure:
        reason = getattr(failure, "strerror", None) or failure
        raise error(f"{what}: cannot read {shown(path)}: {reason}") from None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            kind = "a folder" if stat.S_ISDIR(info.st_mode) else "a device, FIFO or socket"
            raise error(f"{what}: {shown(path)} is not a regular file ({kind})")
        if info.st_size > MAX_FILE_BYTES:
            raise error(
                f"{what}: {shown(path)} is {info.st_size / 2**20:.0f} MiB, more than the "
                f"{MAX_FILE_BYTES // 2**20} MiB a netlist file may have"
            )
        with open(descriptor, "rb", closefd=False) as handle:
            data = handle.read(info.st_size + 1)  # (+1: a file that grew is noticed below)
    except OSError as failure:
        raise error(f"{what}: cannot read {shown(path)}: {failure.strerror}") from None
    finally:
        os.close(descriptor)
    if len(data) > info.st_size:
        raise error(f"{what}: {shown(path)} grew while it was read")
    if b"\0" in data:
        raise error(f"{what}: {shown(path)} is not a text file (it holds NUL bytes)")
    text = data.decode("utf-8", errors="replace")
    try:
        lines = references(text)
    except NetlistError as failure:
        raise NetlistError(f"{shown(path)}: {failure}") from None
    return _File(path, text, hashlib.sha256(data).hexdigest(), len(data), lines)


def load_netlist(path: str | Path, what: str) -> Netlist:
    """Read the netlist at ``path`` and every file it includes; rewrite the include lines.

    A missing or unusable netlist file is a :class:`ConfigError` naming ``what``; a missing,
    unusable or looping included file a :class:`NetlistError` naming the file and line that
    includes it. (The safety check of the cards is :func:`circuitnn.neuron.safety.check_spec`.)
    """
    top = read_file(path, what, ConfigError)
    top.path = Path(os.path.abspath(top.path))
    files: dict[Path, _File] = {}
    _follow(top, files, (top.path,))
    referenced = _referenced([file for file in files.values() if file is not top])
    names: dict[Path, str] = {}
    staged: dict[Path, str] = {}
    for file in _post_order(top):
        if file.path in referenced:
            names[file.path] = str(file.path)
            continue
        text = _rewritten(file, names)
        staged[file.path] = text
        names[file.path] = staged_name(text, file.path.name)
    includes = tuple(
        IncludedFile(names[file.path], str(file.path), file.digest, staged.get(file.path))
        for file in _pre_order(top)
        if file is not top
    )
    texts = ((str(top.path), top.text), *((str(f.path), f.text) for f in _pre_order(top)[1:]))
    return Netlist(staged[top.path], str(top.path), includes, texts)


def staged_name(text: str, file_name: str) -> str:
    """The safe name of a copied file: ``inc-`` + 16 hex digits of its text's hash + its file
    name with anything but letters, digits and ``_ . + -`` replaced (at most 40 characters)."""
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"inc-{digest}-{re.sub(r'[^A-Za-z0-9_.+-]', '_', file_name)[:40]}"


def resolve(target: str, folder: Path, where: str) -> Path:
    """The file an include line names, as ngspice finds it: absolute, ``~/`` (home) or relative
    to ``folder`` (the folder of the file holding the line); symbolic links resolved."""
    try:
        path = Path(target).expanduser() if target.startswith("~/") else Path(target)
        if not path.is_absolute():
            path = folder / path
        return path.resolve(strict=True)
    except FileNotFoundError:
        raise NetlistError(f"{where}: include file not found: {shown(target)}") from None
    except (OSError, RuntimeError, ValueError) as failure:
        reason = getattr(failure, "strerror", None) or failure
        raise NetlistError(
            f"{where}: include {shown(target)} cannot be resolved: {reason}"
        ) from None


def _follow(file: _File, files: dict[Path, _File], chain: tuple[Path, ...]) -> None:
    files[file.path] = file
    for line in file.lines:
        where = f"{shown(file.path)}:{line.line}"
        target = resolve(line.target, file.path.parent, where)
        if target in chain:
            raise NetlistError(f"{where}: {shown(target)} includes itself (an include loop)")
        if line.section is not None and not SECTION.fullmatch(line.section):
            raise NetlistError(
                f"{where}: library section {line.section[:40]!r} must be one word of letters, "
                "digits and _ . + -"
            )
        child = files.get(target)
        if child is None:
            if len(files) >= MAX_FILES:
                raise NetlistError(f"{where}: more than {MAX_FILES} included files")
            child = read_file(target, where)
            child.path = target
            _follow(child, files, (*chain, target))
        child.via_include |= line.kind == "include"
        if line.section is not None and not _has_section(child.text, line.section):
            raise NetlistError(f"{where}: library {shown(target)} has no section {line.section!r}")
        file.children.append(child)


def _has_section(text: str, section: str) -> bool:
    pattern = re.compile(
        rf"^[ \t]*\.lib[ \t]+['\"]?{re.escape(section)}['\"]?[ \t]*\r?$",
        re.IGNORECASE | re.MULTILINE,
    )
    return pattern.search(text) is not None


def _referenced(files: Iterable[_File]) -> set[Path]:
    """The files ngspice may read in place: large ones with safe paths whose includes are all
    such files, and everything below them."""
    memo: dict[Path, bool] = {}

    def in_place(file: _File) -> bool:
        if file.path not in memo:
            memo[file.path] = False  # (no loops: refused while following)
            memo[file.path] = (
                SAFE_PATH.fullmatch(str(file.path)) is not None
                and all(line.plain for line in file.lines)
                # ngspice resolves a relative `.lib FILE` of an .include-d file against the top
                # netlist's folder, not the file's own: only a copy (rewritten) reads the same
                and not (
                    file.via_include
                    and any(
                        line.kind == "lib" and not line.target.startswith(("/", "~/"))
                        for line in file.lines
                    )
                )
                and all(in_place(child) for child in file.children)
            )
        return memo[file.path]

    chosen: set[Path] = set()
    pending = [file for file in files if file.size >= REFERENCE_BYTES and in_place(file)]
    while pending:
        file = pending.pop()
        if file.path not in chosen:
            chosen.add(file.path)
            pending.extend(file.children)
    return chosen


def _rewritten(file: _File, names: dict[Path, str]) -> str:
    """``file``'s text with each include line naming its file by ``names`` (and nothing else)."""
    lines = file.text.split("\n")
    for line, child in zip(file.lines, file.children, strict=True):
        name = names[child.path]
        if line.kind == "include":
            lines[line.line - 1] = f'.include "{name}"'
        else:
            lines[line.line - 1] = f'.lib "{name}" {line.section}'
    return "\n".join(lines)


def _post_order(top: _File) -> list[_File]:
    seen: set[Path] = set()
    order: list[_File] = []

    def visit(file: _File) -> None:
        if file.path in seen:
            return
        seen.add(file.path)
        for child in file.children:
            visit(child)
        order.append(file)

    visit(top)
    return order


def _pre_order(top: _File) -> list[_File]:
    seen: set[Path] = set()
    order: list[_File] = []
    stack = [top]
    while stack:
        file = stack.pop()
        if file.path in seen:
            continue
        seen.add(file.path)
        order.append(file)
        stack.extend(reversed(file.children))
    return order


def portable_text(text: str, includes: tuple[IncludedFile, ...]) -> str:
    """``text`` with every include naming its file by the file's own name (no folder, no hash):
    the form of a netlist that goes into a family's key, so that moving a project keeps it."""
    by_name = {included.name: Path(included.source).name for included in includes}
    lines = text.split("\n")
    for line in references(text):
        name = by_name.get(line.target, Path(line.target).name)
        if line.kind == "include":
            lines[line.line - 1] = f'.include "{name}"'
        else:
            lines[line.line - 1] = f'.lib "{name}" {line.section}'
    return "\n".join(lines)
