"""The netlist safety check: the one gate every netlist passes before it reaches ngspice.

:func:`check_spec` checks a spec's netlist and every file it includes, whichever way the spec was
made (a spec file, a built-in, ``NeuronSpec(...)`` in Python, a campaign) and wherever it runs (it
is called when a spec is validated and again, in every process, when a test bench is rendered):

* every line is a card a neuron needs (:func:`circuitnn.neuron.cards.scan`, which reads lines the
  way ngspice does), unless the spec was loaded with ``allow_control`` (``--allow-control``);
* every include line names a file of the spec's ``includes`` by its safe name (a copy, whose text
  must hash to its name) or by the safe absolute path of a referenced library (read again here,
  the first time in each process: it must still hash to the digest taken when the spec was
  loaded, and its own includes must be referenced files of the spec).

Results are remembered per process (by text, or by a referenced file's inode, size and time), so
the second check of the same spec costs a hash.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from circuitnn.errors import NetlistError
from circuitnn.neuron.cards import references, scan
from circuitnn.neuron.includes import (
    MAX_FILE_BYTES,
    SAFE_PATH,
    SECTION,
    STAGED,
    IncludedFile,
    read_file,
    resolve,
    shown,
)

if TYPE_CHECKING:
    from circuitnn.neuron.spec import NeuronSpec


def check_safe(text: str, source: str) -> None:
    """Refuse any line of ``text`` that a neuron netlist may not hold (control blocks, ``*#``
    commands, ``.end``, unknown cards, lines that are no SPICE card); names ``source`` and the
    line. (Only the cards: :func:`check_spec` checks a whole spec, includes too.)"""
    scan(text, source)


def check_spec(spec: NeuronSpec) -> None:
    """Raise :class:`NetlistError` unless ``spec``'s netlist and includes are safe (see the
    module); the error names the file, the line and the card."""
    includes = tuple(spec.includes)
    for included in includes:
        if not isinstance(included, IncludedFile):
            raise NetlistError(
                f"{spec.name}: includes must be IncludedFile records (load_spec and "
                f"spec_from_dict make them), got {type(included).__name__}"
            )
    texts = (
        (spec.netlist_source, spec.netlist_text),
        *((i.source, i.text) for i in includes if i.text is not None),
    )
    names = tuple(sorted(i.name for i in includes))
    _check_texts(
        texts,
        names,
        tuple(i.name for i in includes if i.text is not None),
        bool(spec.allow_control),
    )
    placed = {i.name for i in includes if i.referenced}
    for included in includes:
        if included.referenced:
            for target in _referenced_targets(
                included.name, included.digest, bool(spec.allow_control)
            ):
                if target not in placed:
                    raise NetlistError(
                        f"{included.source}: includes {shown(target)}, which is not one of the "
                        "spec's referenced files"
                    )


@functools.lru_cache(maxsize=64)
def _check_texts(
    texts: tuple[tuple[str, str], ...],
    names: tuple[str, ...],
    copied: tuple[str, ...],
    allow_control: bool,
) -> None:
    known = set(names)
    for name, (source, text) in zip(("", *copied), texts, strict=True):
        if not isinstance(text, str):
            raise NetlistError(f"{shown(source)}: the netlist text must be a str")
        if len(text) > MAX_FILE_BYTES:
            raise NetlistError(
                f"{shown(source)}: a netlist text of more than {MAX_FILE_BYTES // 2**20} MiB"
            )
        if name and (
            not STAGED.fullmatch(name)
            or name[4:20] != hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        ):
            raise NetlistError(
                f"{shown(source)}: the included file's name {shown(name)} is not the safe name of "
                "its text (load_spec and spec_from_dict make it)"
            )
        if not allow_control:
            scan(text, shown(source))
        try:
            found = references(text)
        except NetlistError as error:
            raise NetlistError(f"{shown(source)}: {error}") from None
        for line in found:
            if line.target not in known:
                raise NetlistError(
                    f"{shown(source)}:{line.line}: includes {shown(line.target)}, which is not "
                    "one of the spec's checked files (a spec made in Python must list its "
                    "includes; load_spec and spec_from_dict read and list them)"
                )
            if line.section is not None and not SECTION.fullmatch(line.section):
                raise NetlistError(
                    f"{shown(source)}:{line.line}: library section {line.section[:40]!r} must be "
                    "one word of letters, digits and _ . + -"
                )


def _referenced_targets(path: str, digest: str, allow_control: bool) -> tuple[str, ...]:
    """Check a referenced library (once per process and version of the file); its includes."""
    if not SAFE_PATH.fullmatch(path):
        raise NetlistError(
            f"{shown(path)}: a file read in place must have an absolute path of letters, digits "
            "and _ . / + -"
        )
    try:
        info = os.stat(path)
    except OSError as error:
        raise NetlistError(
            f"{path}: the included library cannot be read: {error.strerror}"
        ) from None
    return _checked_library(
        path, digest, allow_control, info.st_ino, info.st_size, info.st_mtime_ns
    )


@functools.lru_cache(maxsize=256)
def _checked_library(
    path: str, digest: str, allow_control: bool, inode: int, size: int, modified: int
) -> tuple[str, ...]:
    del inode, size, modified  # (part of the cache key: a changed file is read again)
    file = read_file(path, f"included library {path}")
    if file.digest != digest:
        raise NetlistError(
            f"{path}: the included library changed since the spec was loaded (its hash differs); "
            "load the spec again"
        )
    if not allow_control:
        scan(file.text, path)
    return tuple(
        str(resolve(line.target, Path(path).parent, f"{path}:{line.line}")) for line in file.lines
    )
