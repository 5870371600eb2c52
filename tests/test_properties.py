"""Property tests: random and malformed inputs thrown at the public API.

Specs (dicts into :func:`spec_from_dict`, TOML text into :func:`load_spec`), parameter strings
(:func:`parse_spice`), sweep definitions (:func:`parse_grid`, :func:`sweep_families`'s grid check),
campaign files (random TOML text, line edits and value edits of a valid campaign into
:func:`load_campaign`, which checks a campaign before anything is simulated) and store contents
(random bytes, truncations and flipped bytes of a real store, HDF5 files of the wrong structure
written here with h5py): every one ends in a result or a
:class:`~circuitnn.errors.CircuitnnError` subclass with a message — never another exception,
never a hang (hypothesis' deadline per example, and a watchdog that aborts the run with a
traceback if one call never returns). An accepted spec renders a netlist without a ``.control``
line or a ``shell`` command, whatever text its fields held; an accepted campaign can be run as
given (its Monte Carlo settings, run options and ngspice timeout are all usable).
"""

from __future__ import annotations

import copy
import faulthandler
import json
import math
import subprocess
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from helpers import DATA, options
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from circuitnn import extract_family
from circuitnn.campaign.file import Campaign, is_campaign, load_campaign
from circuitnn.campaign.run import options as campaign_options
from circuitnn.campaign.sweep import check_grid, parse_grid
from circuitnn.errors import CircuitnnError, ConfigError, StoreError
from circuitnn.neuron.cards import physical_lines
from circuitnn.neuron.spec_file import load_spec, spec_from_dict
from circuitnn.neuron.variation import MonteCarlo, nominal_table, sample_parameters
from circuitnn.spice.analyses import NoiseAnalysis
from circuitnn.spice.benches import render_dc_bench
from circuitnn.store import Store

FAST = settings(
    max_examples=80,
    deadline=2000,  # ms per example: generous for a loaded 2-core machine, far from a hang
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)

INJECTIONS = [
    "1u\n.control\nshell touch PWNED\n.endc",
    "1k\n.end",
    "x\n.control",
    "shell rm -rf /",
    "{r1*2}",
    "1k ; .exec shell",
    "in\n.control",
]
texts = st.one_of(st.text(max_size=40), st.sampled_from(INJECTIONS))
spice_like = st.from_regex(
    r"\A\s?[+-]?[0-9]{0,60}\.?[0-9]{0,5}(e[+-]?[0-9]{1,25})?(meg|mil|[tgkmunpfaµ])?[a-zA-Z]{0,4}"
    r"\s?\Z"
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(),
    texts,
    spice_like,
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


@pytest.fixture(autouse=True)
def _watchdog() -> Iterator[None]:
    """A call that never returns (a hang, even inside C code) aborts with every thread's stack."""
    faulthandler.dump_traceback_later(120, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def outcome(call: Callable[[], Any]) -> Any:
    """``call()``'s result, or the CircuitnnError it raised (checked to carry a message)."""
    try:
        return call()
    except CircuitnnError as error:
        assert str(error).strip(), f"{type(error).__name__} without a message"
        return error


# --- parameter strings ---------------------------------------------------------------------


@FAST
@given(st.one_of(scalars, st.binary(max_size=20), st.lists(st.integers(), max_size=2)))
def test_parse_spice_gives_a_finite_number_or_a_config_error(value: object) -> None:
    from circuitnn.neuron.units import parse_spice

    result = outcome(lambda: parse_spice(value, "the_field"))
    if isinstance(result, CircuitnnError):
        assert isinstance(result, ConfigError)
        assert str(result).startswith("the_field: ")
        return
    assert isinstance(result, float) and math.isfinite(result)
    if isinstance(value, str):
        assert "\n" not in value.strip()  # no second line ever passes for a number


# --- sweep definitions -----------------------------------------------------------------------

assignments = st.one_of(
    texts,
    st.builds(
        lambda name, values: f"{name}={','.join(values)}",
        st.sampled_from(["r1", "r2", "rs", "temperature", "w", "R1", ""]) | st.text(max_size=6),
        st.lists(spice_like | texts, max_size=4),
    ),
)


@FAST
@given(st.one_of(st.lists(assignments, max_size=4), texts, st.lists(scalars, max_size=2)))
def test_sweep_definitions_give_a_grid_or_a_config_error(definition: Any) -> None:
    spec = load_spec(DATA / "divider.toml")
    grid = outcome(lambda: parse_grid(definition))
    if isinstance(grid, CircuitnnError):
        assert isinstance(grid, ConfigError)
        return
    for values in grid.values():
        assert all(isinstance(v, float) and math.isfinite(v) for v in values)
    points = outcome(lambda: check_grid(spec, grid))
    if not isinstance(points, CircuitnnError):
        assert len(points) == math.prod(len(values) for values in grid.values())


@FAST
@given(st.dictionaries(st.sampled_from(["r1", "r2", "temperature"]) | texts, json_values))
def test_sweep_grids_from_python_give_points_or_a_config_error(grid: dict[str, Any]) -> None:
    from circuitnn.campaign.sweep import apply_point

    spec = load_spec(DATA / "divider.toml")
    points = outcome(lambda: check_grid(spec, grid))
    if isinstance(points, CircuitnnError):
        return
    for point in points[:4]:  # every value was parsed as a number, and goes into the spec so
        assert all(isinstance(v, float) and math.isfinite(v) for v in point.values())
        outcome(lambda point=point: apply_point(spec, point))


# --- specs -------------------------------------------------------------------------------------

BASE = tomllib.loads((DATA / "divider.toml").read_text())


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += _paths(value, (*prefix, index))
    return found


PATHS = _paths(BASE)


def _mutated(
    edits: list[tuple[int, bool, Any, str]],
    base: dict[str, Any] | None = None,
    paths: list[tuple[Any, ...]] | None = None,
) -> dict[str, Any]:
    """``base`` (default: the divider's spec data) with entries at ``paths`` (default: the
    spec's) replaced, deleted or added."""

    data = copy.deepcopy(BASE if base is None else base)
    paths = PATHS if paths is None else paths
    for number, delete, value, new_key in edits:
        path = paths[number % len(paths)]
        parent: Any = data
        try:
            for key in path[:-1]:
                parent = parent[key]
            if delete:
                del parent[path[-1]]
            elif isinstance(parent, dict) and new_key:
                parent[new_key] = value
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            pass  # an earlier edit removed or replaced the path
    return data


def _check_spec_result(spec: Any) -> None:
    """An accepted spec renders a bench with numbers only: no control lines, no shell."""
    if isinstance(spec, CircuitnnError):
        return
    for table in (
        outcome(lambda: nominal_table(spec)),
        outcome(lambda: sample_parameters(spec, MonteCarlo(n=2, seed=1))),
    ):
        if isinstance(table, CircuitnnError):
            continue
        bench = outcome(lambda table=table: render_dc_bench(spec, table))
        if not isinstance(bench, CircuitnnError):  # read as ngspice reads it
            commands = [
                line
                for line in physical_lines(bench.text)
                if line.lower().startswith((".control", ".endc", "*#", "shell"))
            ]
            assert not commands, commands


@FAST
@given(
    st.lists(
        st.tuples(
            st.integers(0, 10**6), st.booleans(), json_values, st.sampled_from(["", "", "x"])
        ),
        min_size=1,
        max_size=4,
    )
)
def test_malformed_spec_dicts_give_a_spec_or_a_circuitnn_error(
    edits: list[tuple[int, bool, Any, str]],
) -> None:
    spec = outcome(lambda: spec_from_dict(_mutated(edits), DATA, "<random spec>"))
    _check_spec_result(spec)


@FAST
@given(st.one_of(json_values, st.dictionaries(st.sampled_from(list(BASE)) | texts, json_values)))
def test_random_spec_data_gives_a_spec_or_a_circuitnn_error(data: Any) -> None:
    _check_spec_result(outcome(lambda: spec_from_dict(data, DATA, "<random spec>")))


NETLIST_LINES = [
    ".subckt divider in out vdd gnd params: r1=1k r2=3k rs=10k",
    "R1 in out {r1}",
    "R2 out gnd {r2}",
    "Rs vdd gnd {rs}",
    ".ends divider",
    ".control",
    "shell touch PWNED",
    ".endc",
    "+ r9=1",
    '.include "divider.cir"',
    ".include /nonexistent/models.lib",
    ".lib models.lib tt",
    ".lib tt",
    "* a comment",
]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("properties")
    (folder / "divider.cir").write_text((DATA / "divider.cir").read_text())
    return folder


@FAST
@given(st.lists(st.sampled_from(NETLIST_LINES) | st.text(max_size=30), max_size=10))
def test_random_netlists_give_a_spec_or_a_circuitnn_error(scratch: Path, lines: list[str]) -> None:
    (scratch / "random.cir").write_text("\n".join(lines) + "\n")
    data = dict(BASE, netlist="random.cir")
    spec = outcome(lambda: spec_from_dict(data, scratch, "<random netlist>"))
    _check_spec_result(spec)
    assert not (scratch / "PWNED").exists()


BASE_TOML = (DATA / "divider.toml").read_text().splitlines()


def _edited_lines(original: Any, edits: list[tuple[int, str, str]]) -> str:
    """The lines of a TOML file with edits: lines dropped, repeated, values set, lines inserted."""
    lines = list(original)
    for number, action, new in edits:
        index = number % len(lines)
        if action == "drop":
            del lines[index]
        elif action == "dup":
            lines.insert(index, lines[index])
        elif action == "set" and "=" in lines[index]:
            lines[index] = lines[index].split("=")[0] + "= " + new
        else:
            lines.insert(index, new)
        if not lines:
            lines = [""]
    return "\n".join(lines)


@FAST
@given(
    st.one_of(
        st.text(max_size=200),
        st.lists(
            st.tuples(st.integers(0, 200), st.sampled_from(["drop", "dup", "set", "add"]), texts),
            min_size=1,
            max_size=4,
        ),
    )
)
def test_toml_text_gives_a_spec_or_a_circuitnn_error(scratch: Path, text: Any) -> None:
    if not isinstance(text, str):  # edits of the divider's own TOML text
        text = _edited_lines(BASE_TOML, text)
    path = scratch / "random.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    _check_spec_result(outcome(lambda: load_spec(path)))


# --- campaign files ------------------------------------------------------------------------------

CAMPAIGN_BASE: dict[str, Any] = {
    "campaign": {
        "name": "diode load",
        "neuron": "diode_relu",
        "n": 20,
        "seed": 3,
        "chip_size": 2,
        "corner": "slow",
        "store": "families.h5",
        "grid": {"r": ["5k", "20k"], "rs": [10, "20"]},
        "noise": {"bias_points": 3, "fmin": 10.0, "fmax": 1e6, "points_per_decade": 2},
        "speed": {"bias": 0.5, "points_per_decade": 2, "tolerance": 0.05},
        "run": {"backend": "loky", "jobs": 2, "chunk_size": 10, "engine": "subprocess"},
    }
}
CAMPAIGN_PATHS = _paths(CAMPAIGN_BASE)
# values a campaign field might plausibly (or mistakenly) hold, beside random JSON-like values
CAMPAIGN_WORDS = [
    "diode_relu",
    "mos_diffpair",
    "divider.toml",  # a spec beside the campaign file
    "divider.cir",
    "campaign.toml",  # the campaign itself, as a spec
    "../divider.toml",
    "/",
    ".",
    "~",
    "~no_such_user_xyz/spec.toml",
    "/dev/null",
    "x" * 300,
    "x" * 300 + ".toml",
    "a\0b",
    "slow",
    "fast",
    "dask",
    "ray",
    "shared",
    "tcp://127.0.0.1:1",
    "temperature",
    "R",
    "1k",
    "-1",
    "1e400",
    "9" * 5000,  # set as a line's value: an integer too long for Python to read
]
campaign_values = st.one_of(
    json_values,
    st.sampled_from(CAMPAIGN_WORDS),
    st.lists(st.sampled_from(CAMPAIGN_WORDS) | spice_like, min_size=1, max_size=3),
    st.sampled_from([0, -1, 1, 2**63, 10**4299, 1e308, math.inf, math.nan, True, {}, []]),
)
CAMPAIGN_KEYS = [
    *sorted({str(path[-1]) for path in CAMPAIGN_PATHS if isinstance(path[-1], str)}),
    "timeout",
    "scheduler",
    "allow_control",
    "temperature",
    "bias",
    "input_referred",
    "stop_time",
    "R",
    "other",
]


def _toml_value(value: Any) -> str | None:
    """TOML for a JSON-like value (inline tables and arrays); None for None (TOML has no null:
    the entry is left out)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)  # inf, -inf, 1e+300: TOML too
    if isinstance(value, str):
        # TOML's basic strings take JSON's escapes of control characters (and DEL's), and
        # other characters as they are (TOML refuses JSON's surrogate pairs)
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        items = [text for text in map(_toml_value, value) if text is not None]
        return "[" + ", ".join(items) + "]"
    if isinstance(value, dict):
        items = [
            f"{_toml_value(str(key))} = {text}"
            for key, text in ((key, _toml_value(item)) for key, item in value.items())
            if text is not None
        ]
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"no TOML for {value!r}")


def _campaign_toml(data: Any) -> str:
    """The text of a campaign file holding ``data`` (each top-level key one line)."""
    if not isinstance(data, dict):
        return f"campaign = {_toml_value(data)}\n" if _toml_value(data) is not None else ""
    lines = []
    for key, value in data.items():
        text = _toml_value(value)
        if text is not None:
            lines.append(f"{_toml_value(str(key))} = {text}")
    return "\n".join(lines) + "\n"


# the base campaign as a hand-written file ([campaign.*] tables), for line edits
CAMPAIGN_LINES = [
    "[campaign]",
    *(
        f"{key} = {_toml_value(value)}"
        for key, value in CAMPAIGN_BASE["campaign"].items()
        if not isinstance(value, dict)
    ),
    *(
        line
        for key, value in CAMPAIGN_BASE["campaign"].items()
        if isinstance(value, dict)
        for line in (
            "",
            f"[campaign.{key}]",
            *(f"{name} = {_toml_value(item)}" for name, item in value.items()),
        )
    ),
]


@pytest.fixture(scope="module")
def campaign_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a spec (the divider) that campaign files there may name."""
    folder = tmp_path_factory.mktemp("campaigns")
    for name in ("divider.toml", "divider.cir"):
        (folder / name).write_text((DATA / name).read_text())
    return folder


def _check_campaign(path: Path) -> None:
    """``load_campaign(path)`` gives a campaign that can run as given, or a ConfigError that names
    the file; ``is_campaign(path)`` answers without raising."""
    assert isinstance(is_campaign(path), bool)
    campaign = outcome(lambda: load_campaign(path))
    if isinstance(campaign, CircuitnnError):
        assert isinstance(campaign, ConfigError), repr(campaign)
        assert str(path) in str(campaign), str(campaign)
        where = str(campaign).removeprefix(f"{path}: ").split(" ")[0]
        event(f"refused: {where if where.startswith('[') else 'file'}")
        return
    assert isinstance(campaign, Campaign)
    event("accepted")
    assert is_campaign(path)
    MonteCarlo(campaign.n, campaign.seed, campaign.chip_size, campaign.corner)  # no error
    assert campaign.points == math.prod(len(values) for values in campaign.grid.values())
    for values in campaign.grid.values():
        assert all(isinstance(v, float) and math.isfinite(v) for v in values)
    if campaign.temperature is not None:
        assert math.isfinite(campaign.temperature)
    if campaign.store is not None:
        assert "\0" not in str(campaign.store)
    run = campaign_options(campaign)
    # an accepted timeout works as the subprocess engine uses it (an absurd one would raise
    # OverflowError in every chunk); true exits at once
    subprocess.run(["true"], capture_output=True, timeout=run.timeout, check=True)


def test_the_base_campaign_is_valid(campaign_folder: Path) -> None:
    path = campaign_folder / "campaign.toml"
    for text in (_campaign_toml(CAMPAIGN_BASE), "\n".join(CAMPAIGN_LINES) + "\n"):
        path.write_text(text)
        campaign = load_campaign(path)
        assert campaign.points == 4 and campaign.corner == "slow" and campaign.noise is not None
        assert campaign.run == CAMPAIGN_BASE["campaign"]["run"]


CAMPAIGN = settings(FAST, max_examples=100, deadline=None)


@CAMPAIGN
@given(
    st.lists(
        st.tuples(
            st.integers(0, 10**6),
            st.booleans(),
            campaign_values,
            st.just("") | st.sampled_from(CAMPAIGN_KEYS) | st.text(max_size=8),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_campaign_files_with_bad_values_give_a_campaign_or_a_config_error(
    campaign_folder: Path, edits: list[tuple[int, bool, Any, str]]
) -> None:
    """The base campaign with entries replaced, deleted or added (any key, any value)."""
    data = _mutated(edits, CAMPAIGN_BASE, CAMPAIGN_PATHS)
    path = campaign_folder / "campaign.toml"
    path.write_text(_campaign_toml(data), encoding="utf-8", errors="surrogatepass")
    _check_campaign(path)


@CAMPAIGN
@given(
    st.one_of(
        st.text(max_size=200),
        st.binary(max_size=60),
        st.lists(
            st.tuples(
                st.integers(0, 200),
                st.sampled_from(["drop", "dup", "set", "add"]),
                texts | st.sampled_from(CAMPAIGN_WORDS) | st.sampled_from(CAMPAIGN_LINES),
            ),
            min_size=1,
            max_size=4,
        ),
    )
)
def test_campaign_file_text_gives_a_campaign_or_a_config_error(
    campaign_folder: Path, text: Any
) -> None:
    """Random text and bytes, and line edits of the base campaign's file (tables dropped,
    repeated, values set to random text, lines inserted)."""
    path = campaign_folder / "campaign.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        if not isinstance(text, str):
            text = _edited_lines(CAMPAIGN_LINES, text)
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    _check_campaign(path)


# --- store contents ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_store(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bytes of a real store: two families, one with a noise analysis."""
    path = tmp_path_factory.mktemp("real_store") / "families.h5"
    noise = NoiseAnalysis(
        bias_points=2, fmin=1e3, fmax=1e5, points_per_decade=2, bandwidth=1e4, input_referred=False
    )
    extract_family(DATA / "divider.toml", n=3, seed=1, store=path, options=options(), noise=noise)
    extract_family(DATA / "diode_r.toml", n=2, seed=2, store=path, options=options())
    return path.read_bytes()


def _exercise(path: Path) -> None:
    """Every read of the store API: each gives a result or a StoreError naming the file."""
    store = Store(path)
    results = [outcome(store.keys), outcome(store.describe), outcome(lambda: store.resolve(None))]
    keys = results[0] if isinstance(results[0], list) else []
    for key in keys[:3]:
        results += [
            outcome(lambda key=key: store.load(key)),
            outcome(lambda key=key: store.analyses(key)),
        ]
    for result in results:
        if isinstance(result, CircuitnnError):
            assert isinstance(result, StoreError), repr(result)
            assert path.name in str(result), str(result)


@settings(FAST, max_examples=80)
@given(st.binary(max_size=3000), st.booleans())
def test_random_bytes_as_a_store_give_a_store_error(scratch: Path, data: bytes, hdf5: bool) -> None:
    path = scratch / "random.h5"
    path.write_bytes((b"\x89HDF\r\n\x1a\n" if hdf5 else b"") + data)
    _exercise(path)


@pytest.mark.filterwarnings("ignore:store .* skipped .* damaged famil")  # (the point here)
@settings(FAST, max_examples=80)
@given(st.data())
def test_truncated_or_flipped_store_gives_a_result_or_a_store_error(
    scratch: Path, real_store: bytes, data: st.DataObject
) -> None:
    content = bytearray(real_store)
    if data.draw(st.booleans(), label="truncate"):
        content = content[: data.draw(st.integers(0, len(content) - 1), label="length")]
    else:
        for _ in range(data.draw(st.integers(1, 3), label="flips")):
            offset = data.draw(st.integers(0, len(content) - 1), label="offset")
            content[offset] ^= data.draw(st.integers(1, 255), label="mask")
    path = scratch / "damaged.h5"
    path.write_bytes(bytes(content))
    _exercise(path)


def _objects(content: bytes, scratch: Path) -> tuple[list[str], list[tuple[str, str]]]:
    path = scratch / "listing.h5"
    path.write_bytes(content)
    objects: list[str] = []
    attributes: list[tuple[str, str]] = [("/", name) for name in ("format", "schema_version")]
    with h5py.File(path, "r") as handle:

        def visit(name: str, item: Any) -> None:
            objects.append(name)
            attributes.extend((name, attribute) for attribute in item.attrs)

        handle.visititems(visit)
    return objects, attributes


odd_values = st.one_of(
    st.integers(-(2**31), 2**31),
    st.floats(),
    st.text(max_size=10),
    st.binary(max_size=10),
    st.sampled_from(["[", "{}", '["a", 1]', "null", "nan"]),
    st.builds(np.zeros, st.tuples(st.integers(0, 3), st.integers(0, 3))),
)
OPERATIONS = ["delete", "dataset", "group", "drop_attribute", "set_attribute"]


@pytest.mark.filterwarnings("ignore:store .* skipped .* damaged famil")  # (the point here)
@settings(FAST, max_examples=60)
@given(
    st.lists(
        st.tuples(st.sampled_from(OPERATIONS), st.integers(0, 10**6), odd_values),
        min_size=1,
        max_size=3,
    )
)
def test_store_of_the_wrong_structure_gives_a_result_or_a_store_error(
    scratch: Path, real_store: bytes, operations: list[tuple[str, int, Any]]
) -> None:
    """A well-formed HDF5 file whose groups, datasets and attributes are not what a store holds
    (deleted, replaced by a dataset of another type or shape, by a group, odd attribute values)."""
    objects, attributes = _objects(real_store, scratch)
    path = scratch / "restructured.h5"
    path.write_bytes(real_store)
    with h5py.File(path, "r+") as handle:
        for operation, number, value in operations:
            name = objects[number % len(objects)]
            owner, attribute = attributes[number % len(attributes)]
            try:
                if operation == "delete":
                    del handle[name]
                elif operation in ("dataset", "group"):
                    del handle[name]
                    if operation == "group":
                        handle.create_group(name)
                    else:
                        handle[name] = value
                elif operation == "drop_attribute":
                    del handle[owner].attrs[attribute]
                else:
                    handle[owner].attrs[attribute] = value
            except (KeyError, TypeError, ValueError, OSError):
                pass  # the object is gone already, or h5py cannot store that value
    _exercise(path)
