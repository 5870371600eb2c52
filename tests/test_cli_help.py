"""A command line that explains itself: --version, every option's default and choices in its
help (the library's real defaults), examples at the end of every subcommand's help, the built-in
neurons' ports, progress where a run was silent."""

from __future__ import annotations

import argparse
import io
import re
import subprocess
import sys
from contextlib import redirect_stderr
from pathlib import Path

import pytest
from helpers import DATA, options

from circuitnn._version import __version__
from circuitnn.cli import main
from circuitnn.cli.parser import build_parser
from circuitnn.neuron.builtin import builtin_neurons, get_neuron, kit_neurons


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "circuitnn", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout.strip() == f"circuitnn {__version__}"


def test_every_option_shows_its_default_and_choices() -> None:
    for name, parser in _subcommands().items():
        text = parser.format_help()
        for action in parser._actions:
            if not action.option_strings or action.help in (None, argparse.SUPPRESS):
                continue
            if isinstance(action, argparse._HelpAction):
                continue
            flag = isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction)
            if not flag:  # a switch is off unless given; every other option names its default
                assert "default" in action.help, (name, action.option_strings)
            for choice in action.choices or ():
                assert str(choice) in text, (name, action.option_strings, choice)


def test_the_help_shows_the_library_defaults() -> None:
    from circuitnn.cli.option_groups import DEFAULTS
    from circuitnn.extract.clusters import DASK_CONNECT_SECONDS
    from circuitnn.extract.options import RunOptions
    from circuitnn.extract.parallel import BACKENDS
    from circuitnn.spice.analyses import NoiseAnalysis
    from circuitnn.spice.engines import available_engines

    run, noise = RunOptions(), NoiseAnalysis()
    assert DEFAULTS["chunk_size"] == run.chunk_size and DEFAULTS["timeout"] == run.timeout
    assert DEFAULTS["engine"] == run.engine and DEFAULTS["backend"] == run.backend
    assert DEFAULTS["engines"] == available_engines() and DEFAULTS["backends"] == BACKENDS
    assert DEFAULTS["bias_points"] == noise.bias_points
    assert DEFAULTS["bandwidth"] == noise.bandwidth
    assert (DEFAULTS["fmin"], DEFAULTS["fmax"]) == (noise.fmin, noise.fmax)
    assert DEFAULTS["ppd"] == noise.points_per_decade
    assert DEFAULTS["dask_connect"] == DASK_CONNECT_SECONDS
    extract = _subcommands()["extract"].format_help()
    for text in (
        "(default: automatic, at most 100",
        "(default: 300)",
        "(default: subprocess)",
        "(default: 1e+09)",
    ):
        assert text in " ".join(extract.split()), text


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_every_subcommand_help_ends_with_examples(name: str) -> None:
    text = _subcommands()[name].format_help().rstrip()
    examples = text.rpartition("examples:\n")[2].splitlines()
    assert 1 <= len(examples) <= 3 and all(
        line.startswith(f"  circuitnn {name}") for line in examples
    ), text[-400:]


def test_show_out_help_says_where_pictures_go(tmp_path: Path) -> None:
    help_text = " ".join(_subcommands()["show"].format_help().split())
    assert "STORE_DIR/plots" in help_text
    store = tmp_path / "s.h5"
    assert (
        main(["extract", str(DATA / "divider.toml"), "--n", "2", "--store", str(store), "--quiet"])
        == 0
    )
    assert main(["show", str(store)]) == 0
    assert list((tmp_path / "plots").glob("divider-*.png"))


def test_neurons_prints_every_port(capsys: pytest.CaptureFixture) -> None:
    assert main(["neurons"]) == 0
    printed = capsys.readouterr().out
    blocks = re.split(r"\n(?=\S)", printed.strip())
    kits = kit_neurons()  # (after the built-ins: one block each, or one line when not installed)
    assert len(blocks) == len(builtin_neurons()) + len(kits)
    for block, kit in zip(blocks[len(builtin_neurons()) :], kits.values(), strict=True):
        assert f"kit: {kit}" in block or f"needs the {kit} kit" in block
    for block, name in zip(blocks, builtin_neurons(), strict=False):
        spec = get_neuron(name)
        (ports,) = [line for line in block.splitlines() if line.strip().startswith("ports:")]
        assert [part.split()[0] for part in ports.split(":", 1)[1].split(", ")] == list(
            spec.subckt.ports
        )
    assert "vdd (supply 1.8 V)" in printed and "inp (input +)" in printed


def test_a_picture_name_without_extension_is_reported_as_written(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """`--plot pic` wrote pic.png but printed `picture: pic`."""
    store = tmp_path / "s.h5"
    args = ["extract", str(DATA / "divider.toml"), "--n", "2", "--store", str(store), "--quiet"]
    assert main([*args, "--plot", str(tmp_path / "pic")]) == 0
    assert f"picture: {tmp_path / 'pic.png'}\n" in capsys.readouterr().out
    assert (tmp_path / "pic.png").is_file() and not (tmp_path / "pic").exists()


def test_sampling_many_instances_shows_progress_unless_quiet() -> None:
    from circuitnn.extract.pipeline import SAMPLING_BAR, _sample
    from circuitnn.neuron.variation import MonteCarlo

    spec = get_neuron(DATA / "divider.toml")
    mc = MonteCarlo(n=SAMPLING_BAR)
    for progress, shown in ((True, True), (False, False)):
        stream = io.StringIO()
        with redirect_stderr(stream):
            tables = _sample(spec, mc, options(progress=progress, chunk_size=10_000))
        assert ("sampling divider" in stream.getvalue()) == shown
        assert sum(len(table) for table in tables) == SAMPLING_BAR
