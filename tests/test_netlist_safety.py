"""Netlist safety the way ngspice reads a netlist: the routes by which a neuron netlist once ran
shell commands (each fails without the allow-list: the marker file appears), files that are not
files, and includes copied under safe names or referenced in place. Real ngspice throughout."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import DATA, options

from circuitnn import extract_family
from circuitnn.campaign.run import run_campaign
from circuitnn.cli import main
from circuitnn.errors import ConfigError, NetlistError
from circuitnn.extract.dc_chunk import simulate_chunk
from circuitnn.extract.pipeline import family_key
from circuitnn.neuron.builtin import get_neuron
from circuitnn.neuron.spec_file import load_spec
from circuitnn.neuron.variation import MonteCarlo, nominal_table, sample_parameters

DIVIDER = (DATA / "divider.cir").read_text()


def _neuron(folder: Path, netlist: str, files: dict[str, str] | None = None) -> Path:
    """The divider's spec in ``folder`` with ``netlist`` as its netlist (plus other files)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(DATA / "divider.toml", folder / "divider.toml")
    (folder / "divider.cir").write_text(netlist)
    for name, text in (files or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder / "divider.toml"


def _routes(tmp_path: Path) -> dict[str, tuple[Path, str, Path]]:
    """Each route: (spec, the file:line the error must name, the marker a shell would create)."""
    routes = {}
    marker = tmp_path / "controls" / "PWNED"
    spec = _neuron(tmp_path / "controls", DIVIDER + f".controls\necho `touch {marker}`\n.endcs\n")
    routes["controls"] = (spec, f"{spec.parent / 'divider.cir'}:12", marker)
    marker = tmp_path / "incl" / "PWNED"
    library = tmp_path / "incl" / "evil.lib"
    spec = _neuron(
        tmp_path / "incl",
        f".incl {library}\n" + DIVIDER,
        {"evil.lib": f"* models\n.control\nshell touch {marker}\n.endc\n"},
    )
    routes["incl"] = (spec, f"{library}:2", marker)
    marker = tmp_path / "star" / "pwned"  # (ngspice lower-cases the command)
    spec = _neuron(tmp_path / "star", f"*# shell touch {marker}\n" + DIVIDER)
    routes["star-hash"] = (spec, f"{spec.parent / 'divider.cir'}:1", marker)
    marker = tmp_path / "carriage" / "PWNED"
    spec = _neuron(tmp_path / "carriage", DIVIDER + f".con\rtrol\nshell touch {marker}\n.endc\n")
    routes["carriage-return"] = (spec, f"{spec.parent / 'divider.cir'}:12", marker)
    return routes


ROUTES = ("controls", "incl", "star-hash", "carriage-return")


@pytest.mark.parametrize("route", ROUTES)
def test_no_route_runs_a_shell_command(
    route: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """``.controls`` (ngspice opens a control block on any line *beginning* with .control),
    ``.incl FILE`` (any line beginning with .inc includes a file), ``*#`` (a control command
    outside a block), ``.con\\rtrol`` (ngspice drops carriage returns): refused before ngspice
    runs, naming the file and line, from the command line and a campaign, with either engine."""
    spec, where, marker = _routes(tmp_path)[route]
    store = tmp_path / "families.h5"
    for engine in ("subprocess", "shared"):
        args = ["extract", str(spec), "--n", "2", "--store", str(store), "--engine", engine]
        assert main([*args, "--quiet"]) == 2
        error = capsys.readouterr().err.strip()
        assert error.startswith(f"circuitnn: error: {where}: "), error
        assert len(error.splitlines()) == 1 and "--allow-control" in error
    campaign = spec.parent / "campaign.toml"
    campaign.write_text(
        f'[campaign]\nneuron = "{spec.name}"\nn = 2\n[campaign.grid]\nr1 = ["1k", "2k"]\n'
    )
    with pytest.raises(NetlistError, match=re.escape(f"{where}: ")):
        run_campaign(campaign, out=tmp_path / "out", overrides={"progress": False})
    assert not marker.exists() and not store.exists()


def test_a_spec_made_in_python_passes_the_same_check(tmp_path: Path) -> None:
    """A NeuronSpec whose netlist text was edited in Python is refused by extract_family and by
    the bench itself (every route to ngspice renders one), not only by the spec loader."""
    marker = tmp_path / "PWNED"
    spec = load_spec(DATA / "divider.toml")
    evil = dataclasses.replace(
        spec, netlist_text=spec.netlist_text + f".controls\nshell touch {marker}\n.endcs\n"
    )
    with pytest.raises(NetlistError, match=r"divider\.cir:12: '\.controls'"):
        extract_family(evil, n=2, options=options())
    with pytest.raises(NetlistError, match=r"divider\.cir:12: '\.controls'"):
        simulate_chunk(evil, nominal_table(evil))
    sneaky = dataclasses.replace(spec, netlist_text=f'.include "{tmp_path}/x.lib"\n' + DIVIDER)
    with pytest.raises(NetlistError, match=r"not one of the spec's checked files"):
        simulate_chunk(sneaky, nominal_table(sneaky))
    assert not marker.exists()
    allowed = dataclasses.replace(evil, allow_control=True)  # the one opt-in
    assert extract_family(allowed, n=1, options=options()).ok.all()
    assert marker.exists()  # (proof that the route was real)


def test_a_folder_name_never_becomes_netlist_lines(tmp_path: Path) -> None:
    """The include path once went into the netlist as is: a folder whose name holds newlines
    and a control block ran it. Now the library is copied under a safe name."""
    marker = tmp_path / "PWNED"
    folder = tmp_path / f"x\n.control\nshell touch {marker}\n.endc\n"
    spec_path = _neuron(
        folder,
        '.include "models.lib"\n' + DIVIDER.replace("R1 in out {r1}", "R1 in out rmodel r={r1}"),
        {"models.lib": ".model rmodel r\n"},
    )
    family = extract_family(spec_path, n=3, seed=0, options=options())
    assert family.ok.all() and not marker.exists()
    spec = get_neuron(spec_path)
    assert ".control" not in spec.netlist_text
    plain = extract_family(DATA / "divider.toml", n=3, seed=0, options=options())
    np.testing.assert_allclose(family.curves, plain.curves, rtol=1e-12)  # the same circuit


@pytest.mark.parametrize("where", ["netlist", "include"])
@pytest.mark.parametrize("special", ["/dev/zero", "fifo", "folder"])
def test_a_file_that_is_not_a_regular_file_is_refused_at_once(
    where: str, special: str, tmp_path: Path
) -> None:
    """``.include /dev/zero`` was read without limit (OOM-killed at 21 GB); a FIFO would block."""
    target = {"/dev/zero": "/dev/zero", "folder": str(tmp_path)}.get(special)
    if target is None:
        target = str(tmp_path / "pipe")
        os.mkfifo(target)
    data = (DATA / "divider.toml").read_text()
    if where == "netlist":
        data = data.replace('netlist = "divider.cir"', f'netlist = "{target}"')
        (tmp_path / "divider.toml").write_text(data)
    else:
        _neuron(tmp_path, f'.include "{target}"\n' + DIVIDER)
    began = time.perf_counter()
    with pytest.raises((ConfigError, NetlistError), match="is not a regular file"):
        load_spec(tmp_path / "divider.toml")
    assert time.perf_counter() - began < 5


def test_a_file_over_the_size_cap_is_refused_without_reading_it(tmp_path: Path) -> None:
    _neuron(tmp_path, '.include "huge.lib"\n' + DIVIDER)
    with open(tmp_path / "huge.lib", "wb") as handle:
        handle.truncate(65 * 2**20)  # sparse: no disk used
    with pytest.raises(NetlistError, match=r"huge\.lib is 65 MiB, more than the 64 MiB"):
        load_spec(tmp_path / "divider.toml")


def test_an_error_never_quotes_a_secret_file(tmp_path: Path) -> None:
    """``.include /etc/passwd`` once quoted the file's lines in the error."""
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:hunter2:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/bin/sh\n")
    _neuron(tmp_path, f'.include "{secret}"\n' + DIVIDER)
    with pytest.raises(NetlistError) as caught:
        load_spec(tmp_path / "divider.toml")
    message = str(caught.value)
    assert f"{secret}:1:" in message and "not a device name" in message
    assert "hunter2" not in message and "/bin/bash" not in message


@pytest.mark.parametrize(
    "card", [".inc", ".incl", ".include", ".INCLUDE", "  .include", ".lib LIBRARY tt"]
)
def test_every_spelling_of_an_include_is_followed_and_checked(card: str, tmp_path: Path) -> None:
    library = tmp_path / "models.lib"
    line = card.replace("LIBRARY", str(library)) if "LIBRARY" in card else f"{card} {library}"
    body = ".lib tt\n.control\n.endc\n.endl tt\n" if "lib" in card.lower() else ".control\n"
    _neuron(tmp_path, line + "\n" + DIVIDER, {"models.lib": "* models\n" + body})
    with pytest.raises(NetlistError, match=rf"{library}:\d+: '\.control'"):
        load_spec(tmp_path / "divider.toml")


@pytest.mark.parametrize(
    "line",
    [".end", ".title x", ".exec", ".tran 1n 1u", "@ rest", ";comment", "1 2 3", "\x0b.control"],
)
def test_cards_a_neuron_does_not_need_are_refused(line: str, tmp_path: Path) -> None:
    _neuron(tmp_path, DIVIDER + line + "\n")
    with pytest.raises(NetlistError, match=r"divider\.cir:12: .* is not allowed"):
        load_spec(tmp_path / "divider.toml")
    assert load_spec(tmp_path / "divider.toml", allow_control=True).subckt.name == "divider"


def test_the_reader_follows_ngspice() -> None:
    """The line rules of ngspice's inp_read and inp_stripcomments_line, case by case."""
    from circuitnn.neuron.cards import physical_lines, strip_comments

    assert physical_lines(" \t.con\rtrol\r\n x") == [".control", "x"]
    assert strip_comments(".include a.lib ; note") == ".include a.lib"
    assert strip_comments(".include a$b.lib") == ".include a$b.lib"  # `$` needs a blank before
    assert strip_comments(".include a.lib $ note") == ".include a.lib"
    assert strip_comments(".include a.lib// note") == ".include a.lib"
    assert strip_comments("// note") == "*/ note"


def test_the_subckt_may_live_in_an_included_file(tmp_path: Path) -> None:
    """A netlist that only includes (or takes a library section of) the file defining the
    subckt: found there, simulated exactly like the one-file divider."""
    plain = extract_family(DATA / "divider.toml", n=4, seed=1, options=options())
    for netlist, files, engine in (
        ('.include "cells/divider.lib"\n', {"cells/divider.lib": DIVIDER}, "subprocess"),
        (
            '.lib "cells/all.lib" typical\n',
            {"cells/all.lib": f".lib typical\n{DIVIDER}.endl\n"},
            "shared",
        ),
    ):
        folder = tmp_path / str(len(netlist))
        spec = _neuron(folder, "* the divider, from a library\n" + netlist, files)
        family = extract_family(spec, n=4, seed=1, options=options(engine=engine))
        np.testing.assert_allclose(family.curves, plain.curves, rtol=1e-12)
    missing = _neuron(tmp_path / "none", '.include "x.lib"\n', {"x.lib": "* nothing\n"})
    with pytest.raises(NetlistError, match=r"or the 1 file\(s\) it includes: no \.subckt"):
        load_spec(missing)


def _library(folder: Path, name: str = "big.lib") -> Path:
    """A model library over REFERENCE_BYTES (padded with comments) that includes a small one."""
    from circuitnn.neuron.includes import REFERENCE_BYTES

    folder.mkdir(parents=True, exist_ok=True)
    padding = "* padding: a foundry library is mostly parameters\n" * (REFERENCE_BYTES // 40)
    (folder / "corner.lib").write_text(".model rmodel r\n")
    (folder / name).write_text('.include "corner.lib"\n' + padding)
    return folder / name


def test_a_large_library_with_a_safe_path_is_referenced_in_place(tmp_path: Path) -> None:
    library = _library(tmp_path / "pdk")
    netlist = f'.include "{library}"\n' + DIVIDER.replace(
        "R1 in out {r1}", "R1 in out rmodel r={r1}"
    )
    spec_path = _neuron(tmp_path / "neuron", netlist)
    spec = load_spec(spec_path)
    by_source = {Path(i.source).name: i for i in spec.includes}
    assert by_source["big.lib"].referenced and by_source["big.lib"].name == str(library)
    assert by_source["corner.lib"].referenced  # (ngspice reads it through big.lib)
    plain = extract_family(DATA / "divider.toml", n=3, seed=0, options=options())
    for engine in ("subprocess", "shared"):
        family = extract_family(spec, n=3, seed=0, options=options(engine=engine))
        np.testing.assert_allclose(family.curves, plain.curves, rtol=1e-12)
    # the same library under a folder with a blank: copied, with the same key
    moved = _library(tmp_path / "my pdk")
    copied = load_spec(_neuron(tmp_path / "other", netlist.replace(str(library), str(moved))))
    assert not any(i.referenced for i in copied.includes)
    assert str(moved) not in copied.netlist_text
    assert family_key(copied, MonteCarlo(n=3)) == family_key(spec, MonteCarlo(n=3))
    # a referenced library edited after loading is refused before ngspice reads it
    (tmp_path / "pdk" / "big.lib").write_text(library.read_text() + ".control\n.endc\n")
    with pytest.raises(NetlistError, match=r"big\.lib: the included library changed"):
        simulate_chunk(spec, sample_parameters(spec, MonteCarlo(n=1)))
