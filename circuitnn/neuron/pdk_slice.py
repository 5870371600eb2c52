"""A slice of a foundry model library: only the models, subcircuits, parameters and options a
neuron instantiates, read once from the kit and kept in a cache folder.

A foundry library section (sky130's ``.lib sky130.lib.spice tt``) names every device of the
process, each with all its size bins: ngspice needs tens of seconds to read it, most of it spent
on devices the neuron never uses. :func:`library_slice` follows the section as ngspice does,
splits it into statements (:mod:`circuitnn.neuron.pdk_library`) and keeps, in their original
order, those reachable from the names the neuron's netlist uses: a kept subcircuit or model
brings the names it uses, a kept parameter the names in its expression. Every ``.option``
card is kept (sky130's ``scale``). Of a device whose sizes are known, only the size bins holding
them are kept (see :func:`library_slice`).

Mismatch: a kit's mismatch term ``MC_MM_SWITCH*AGAUSS(0,1,1)`` in a model parameter ``P`` of a
device subcircuit becomes the subcircuit parameter ``mm_P`` (default 0: the nominal device),
a standard normal number the neuron passes per instance (``mm_vth0={…}``). circuitnn draws it
with its own counter-based Monte Carlo, so instance *i* does not depend on ngspice's random
generator, the process, the chunking or the number of workers; the kit's own scaling
(σ = slope/√(W·L·mult)) is kept as the kit wrote it.

The slice is written atomically into the cache folder under a name made of the hash of its
sources (file names relative to the library and SHA-256 of their bytes), the section, the
neuron's names and :data:`SLICER_VERSION`; a second call with the same inputs reads nothing but
the sources' bytes (for their hashes).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from circuitnn.errors import ConfigError, NetlistError
from circuitnn.neuron.includes import read_file
from circuitnn.neuron.pdk_library import Statement, section_files, section_statements

SLICER_VERSION = 1  # raise when the slice of the same sources changes


CACHE_ENV = "CIRCUITNN_CACHE"  # folder of circuitnn's caches (default ~/.cache/circuitnn)


_WORD = re.compile(r"[a-z_][a-z0-9_]*")


# the kit's mismatch term in a model parameter line:
# `+ vth0 = {nominal+MC_MM_SWITCH*AGAUSS(0,1.0,1)*(…)}`
_MISMATCH = re.compile(r"mc_mm_switch\s*\*\s*agauss\s*\(\s*0\s*,\s*1(?:\.0*)?\s*,\s*1\s*\)", re.I)


# ngspice's random functions (seeded per process): a slice holding one is refused
_RANDOM = re.compile(r"\b(?:a?gauss|a?unif|limit)\s*\(", re.I)


_MODEL_LINE = re.compile(r"^\+?\s*([a-z_][a-z0-9_]*)\s*=", re.I)


@dataclass(frozen=True)
class Source:
    """One library file a section reads: ``name`` relative to the library's folder, ``digest``
    the SHA-256 of its bytes (hex)."""

    name: str
    digest: str


@dataclass(frozen=True)
class Slice:
    """A cached slice: its ``path`` (absolute), the SHA-256 of its bytes, the ``sources`` it came
    from, the ``mismatch`` parameters each kept device subcircuit takes (``{subckt: (mm_vth0,
    …)}``) and the ``devices`` (subcircuits and models) it holds."""

    path: Path
    digest: str
    sources: tuple[Source, ...]
    mismatch: dict[str, tuple[str, ...]]
    devices: tuple[str, ...]


def cache_folder() -> Path:
    """Where circuitnn keeps its caches: ``$CIRCUITNN_CACHE`` or ``~/.cache/circuitnn``."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "circuitnn"


Sizes = dict[str, list[tuple[float, float]] | None]


def library_slice(
    library: Path, section: str, netlist_texts: list[str], sizes: Sizes | None = None
) -> Slice:
    """The slice of ``library``'s ``section`` that the netlists' names reach (see the module),
    from the cache or made now; :class:`ConfigError` when the section is missing or the names
    reach no device of the library.

    ``sizes``: device subcircuit name (lower case) → every (W, L) its instances take, in the
    netlist's units (the library's ``.option scale`` applies), or None when they are not known
    (a varied size): a device with known sizes keeps only the size bins (``.model NAME.K`` with
    ``lmin``/``lmax``/``wmin``/``wmax``) that hold one of them. ngspice copies every model of a
    device subcircuit into each instance, so each bin dropped saves per-instance work."""
    sizes = sizes or {}
    library = Path(library).resolve()
    files = section_files(library, section)
    root = library.parent
    sources = tuple(
        Source(os.path.relpath(path, root), read_file(path, "library").digest) for path in files
    )
    words = sorted(set().union(*(_words(text) for text in netlist_texts)))
    key = hashlib.sha256(
        json.dumps(
            {
                "slicer": SLICER_VERSION,
                "section": section,
                "sources": [(s.name, s.digest) for s in sources],
                "words": words,
                "sizes": sorted((k, v) for k, v in sizes.items()),
            }
        ).encode()
    ).hexdigest()[:24]
    folder = cache_folder() / "pdk"
    stem = re.sub(r"[^A-Za-z0-9_.+-]", "_", f"{library.stem}-{section}")[:60]
    path = folder / f"{stem}-{key}.spice"
    manifest = path.with_suffix(".json")
    if path.is_file() and manifest.is_file():
        meta = json.loads(manifest.read_text())
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() == meta["digest"]:
            return Slice(
                path.resolve(),
                meta["digest"],
                sources,
                {k: tuple(v) for k, v in meta["mismatch"].items()},
                tuple(meta["devices"]),
            )
    statements = section_statements(library, section)
    text, mismatch, devices = _sliced(statements, set(words), sizes)
    if not devices:
        raise ConfigError(
            f"{library} section {section!r}: the neuron's netlist uses none of its devices "
            "(name a subcircuit or model of the kit, e.g. sky130_fd_pr__nfet_01v8)"
        )
    drawn = _RANDOM.search(text)
    if drawn:
        raise ConfigError(
            f"{library.name} section {section!r} draws random numbers ({drawn.group(0).strip()}…) "
            "outside the devices' mismatch terms: ngspice seeds them per process, so the curves "
            "would not be reproducible; use a corner section (tt, ff, ss, fs, sf, …) and "
            "mismatch = true"
        )
    header = (
        f"* circuitnn slice of {library.name} section {section} (slicer {SLICER_VERSION}): "
        f"{', '.join(devices)}\n"
    )
    data = (header + text).encode()
    digest = hashlib.sha256(data).hexdigest()
    _write_atomic(path, data)
    meta = {"digest": digest, "mismatch": mismatch, "devices": list(devices)}
    _write_atomic(manifest, json.dumps(meta, indent=1).encode())
    return Slice(path.resolve(), digest, sources, mismatch, devices)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def _sliced(
    statements: list[Statement], words: set[str], sizes: Sizes
) -> tuple[str, dict[str, list[str]], tuple[str, ...]]:
    """The kept statements as text, the mismatch parameters of each kept subcircuit, and the
    devices (subcircuits and models) kept."""
    defined: dict[str, list[int]] = {}
    for number, statement in enumerate(statements):
        for name in statement.names:
            defined.setdefault(name, []).append(number)
    keep = {n for n, s in enumerate(statements) if s.kind in ("option", "other")}
    pending = list(words)
    seen: set[str] = set()
    while pending:
        word = pending.pop()
        if word in seen:
            continue
        seen.add(word)
        for number in defined.get(word, ()):
            if number not in keep:
                keep.add(number)
                pending.extend(_words(" ".join(statements[number].lines)))
    out: list[str] = []
    mismatch: dict[str, list[str]] = {}
    devices = []
    scale = 1.0
    for number in sorted(keep):
        if statements[number].kind == "option":
            found = _SCALE.search(" ".join(statements[number].lines))
            scale = (
                float(found.group(1)) * _SUFFIX.get(found.group(2).lower(), 1.0) if found else scale
            )
    for number in sorted(keep):
        statement = statements[number]
        if statement.kind == "subckt":
            lines, exposed = _with_mismatch_parameters(statement.lines)
            known = sizes.get(statement.names[0])
            if known:
                lines = _binned(lines, [(w * scale, length * scale) for w, length in known])
            if exposed:
                mismatch[statement.names[0]] = exposed
            out.extend(lines)
        else:
            out.extend(statement.lines)
        if statement.kind in ("subckt", "model"):
            devices.append(statement.names[0])
    return "\n".join(out) + "\n", mismatch, tuple(dict.fromkeys(devices))


_SCALE = re.compile(r"\bscale\s*=\s*([-+\d.eE]+)([a-z]?)", re.I)


_SUFFIX = {"u": 1e-6, "n": 1e-9, "m": 1e-3, "p": 1e-12}


_BOUND = re.compile(r"\b(lmin|lmax|wmin|wmax)\s*=\s*([-+\d.eE]+)", re.I)


def _binned(lines: list[str], sizes: list[tuple[float, float]]) -> list[str]:
    """A device subcircuit's lines keeping only the size bins that hold one of ``sizes`` (W, L
    in metres; a bound met exactly keeps both neighbours); models without bounds stay."""
    out: list[str] = []
    index = 0
    while index < len(lines):
        end = index + 1
        while end < len(lines) and lines[end].startswith("+"):
            end += 1
        block = lines[index:end]
        if block[0].lower().startswith(".model"):
            bounds = {k.lower(): float(v) for k, v in _BOUND.findall(" ".join(block))}
            if len(bounds) == 4 and not any(
                bounds["lmin"] * (1 - 1e-9) <= length <= bounds["lmax"] * (1 + 1e-9)
                and bounds["wmin"] * (1 - 1e-9) <= width <= bounds["wmax"] * (1 + 1e-9)
                for width, length in sizes
            ):
                index = end
                continue
        out.extend(block)
        index = end
    return out


def _with_mismatch_parameters(lines: list[str]) -> tuple[list[str], list[str]]:
    """A subcircuit's lines with each kit mismatch term made the parameter ``mm_<model
    parameter>`` (declared on its first ``.param`` line, default 0), and those names."""
    exposed: list[str] = []
    out = []
    for line in lines:
        if _MISMATCH.search(line):
            match = _MODEL_LINE.match(line)
            if match is None:
                raise NetlistError(f"a kit mismatch term outside a model parameter: {line[:80]}")
            name = f"mm_{match.group(1).lower()}"
            if name not in exposed:
                exposed.append(name)
            line = _MISMATCH.sub(name, line)
        out.append(line)
    if exposed:
        declared = " ".join(f"{name}=0" for name in exposed)
        index = 1
        while index < len(out) and out[index].startswith("+"):
            index += 1  # (after the .subckt card's continuation lines)
        out.insert(index, f".param {declared}")
    return out, exposed
