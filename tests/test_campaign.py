"""Campaigns: the streaming writer (same result as assembling in memory, memory flat in N),
campaign files (errors name the bad field), one progress bar and a per-point summary."""

from __future__ import annotations

import json
import re
import tracemalloc
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from helpers import DATA, assert_same_family, options

import circuitnn.extract.pipeline
from circuitnn.campaign.file import is_campaign, load_campaign
from circuitnn.campaign.run import run_campaign, summary_table
from circuitnn.cli import main
from circuitnn.errors import ConfigError
from circuitnn.extract.dc_chunk import simulate_chunk
from circuitnn.extract.pipeline import extract_family, family_key
from circuitnn.family import Family
from circuitnn.family.descriptors import describe
from circuitnn.neuron.builtin import get_neuron
from circuitnn.neuron.variation import MonteCarlo, nominal_table, sample_parameters
from circuitnn.spice.bench_results import input_voltages
from circuitnn.store import Store

# --- the streaming writer --------------------------------------------------------------------


def _assembled_in_memory(neuron: str, n: int, seed: int, chunk: int) -> Family:
    """The family as circuitnn assembled it before streaming: every chunk simulated, then
    concatenated, power and descriptors computed over the whole family at once."""
    spec = get_neuron(neuron)
    mc = MonteCarlo(n=n, seed=seed)
    chunks = [
        simulate_chunk(spec, sample_parameters(spec, mc, start, min(start + chunk, n)))
        for start in range(0, n, chunk)
    ]
    table = sample_parameters(spec, mc)
    curves = np.concatenate([c.curves for c in chunks])
    supply = np.concatenate([c.supply_current for c in chunks])
    inputs = np.concatenate([c.input_current for c in chunks])
    volts = np.array(list(spec.ports.supplies.values()), dtype=np.float64)
    power = np.einsum("nsk,s->nk", supply, volts)
    power += np.einsum("nik,ik->nk", inputs, input_voltages(spec))
    grid = spec.sweep.grid()
    return Family(
        key=family_key(spec, mc),
        neuron=spec.name,
        grid=grid,
        curves=curves,
        nominal_curve=simulate_chunk(spec, nominal_table(spec, None)).curves[0],
        supply_current=supply,
        supplies=tuple(spec.ports.supplies),
        input_current=inputs,
        power=power,
        parameter_names=table.names,
        parameters=table.values,
        chip=table.chip,
        status=np.concatenate([c.status for c in chunks]),
        reasons=[r for c in chunks for r in c.reasons],
        descriptors={
            **describe(grid, curves, power),
            **{  # the realized device parameters each chunk read
                name: np.concatenate([c.devices[name] for c in chunks])
                for name in chunks[0].devices
            },
        },
        output_unit=spec.output.unit,
        attrs={"neuron": spec.name},
        run_alone=np.concatenate([c.alone for c in chunks]),
    )


def _layout(path: Path, key: str) -> dict[str, Any]:
    """Every dataset of a stored family: shape, dtype, units."""
    found: dict[str, Any] = {}

    def visit(name: str, item: Any) -> None:
        if isinstance(item, h5py.Dataset):
            found[name] = (item.shape, str(item.dtype), item.attrs.get("units"))

    with h5py.File(path, "r") as handle:
        handle["families"][key].visititems(visit)
    return found


@pytest.mark.parametrize("neuron", ["divider", "bjt_diffpair"])
def test_streamed_family_equals_the_family_assembled_in_memory(tmp_path: Path, neuron: str) -> None:
    name = str(DATA / "divider.toml") if neuron == "divider" else neuron
    n, seed, chunk = 23, 4, 5  # a short last chunk
    streamed = extract_family(
        name, n=n, seed=seed, store=tmp_path / "new.h5", options=options(chunk_size=chunk, jobs=2)
    )
    reference = _assembled_in_memory(name, n, seed, chunk)
    reference.attrs = dict(streamed.attrs)
    old_store = Store(tmp_path / "old.h5")
    old_store.commit(reference)  # the in-memory commit, as before
    assert_same_family(streamed, reference)
    assert_same_family(Store(tmp_path / "new.h5").load(streamed.key), old_store.load(reference.key))
    assert _layout(tmp_path / "new.h5", streamed.key) == _layout(tmp_path / "old.h5", reference.key)
    assert not list(tmp_path.glob("*.partial"))  # journal and scratch file gone


def test_stream_without_store_equals_stream_into_store(tmp_path: Path) -> None:
    run = options(chunk_size=7, jobs=2)
    loose = extract_family("diode_relu", n=30, seed=2, options=run)
    stored = extract_family("diode_relu", n=30, seed=2, store=tmp_path / "s.h5", options=run)
    assert_same_family(loose, stored)
    light = extract_family("diode_relu", n=30, seed=2, store=tmp_path / "s.h5", arrays=False)
    assert light.curves.shape == (0, 301) and light.n == 30
    np.testing.assert_array_equal(light.descriptors["gain"], loose.descriptors["gain"])


def _writer_peak(n: int, folder: Path) -> int:
    """tracemalloc peak (bytes) of one streamed extraction and commit of ``n`` instances."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        extract_family(
            "diode_relu",
            n=n,
            seed=0,
            store=folder / f"n{n}.h5",
            options=options(chunk_size=100, jobs=1),
            arrays=False,
        )
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_writer_memory_does_not_grow_with_the_number_of_instances(tmp_path: Path) -> None:
    extract_family("diode_relu", n=10, seed=0, options=options())  # imports, first-use caches
    small, large = 300, 2400
    peaks = {n: _writer_peak(n, tmp_path) for n in (small, large)}
    # what holding the family would take: curves, input current and power, N×301 float64 each
    whole = 3 * large * 301 * 8
    assert peaks[large] < whole / 4, (peaks, whole)
    assert peaks[large] < 1.25 * peaks[small] + 2**19, peaks  # 8× the instances, same memory


# --- campaign files ----------------------------------------------------------------------------

CAMPAIGN = """
[campaign]
name = "diode load"
neuron = "diode_relu"
n = 20
seed = 3

[campaign.grid]
r = ["5k", "20k"]

[campaign.run]
jobs = 2
chunk_size = 10
"""


def _write(folder: Path, text: str, name: str = "campaign.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_campaign_file_is_parsed(tmp_path: Path) -> None:
    text = CAMPAIGN + "\n[campaign.noise]\nbias_points = 3\n"
    campaign = load_campaign(_write(tmp_path, text.replace("seed = 3", 'seed = 3\nstore = "x.h5"')))
    assert campaign.grid == {"r": [5e3, 20e3]} and campaign.points == 2
    assert campaign.n == 20 and campaign.seed == 3 and campaign.name == "diode load"
    assert campaign.store == tmp_path / "x.h5"
    assert campaign.noise.bias_points == 3 and campaign.speed is None
    assert campaign.analyses == ["dc", "noise"]
    assert campaign.run == {"jobs": 2, "chunk_size": 10}
    assert is_campaign(tmp_path / "campaign.toml")
    assert not is_campaign(_write(tmp_path, 'neurons = ["diode_relu"]\n', "run.toml"))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("n = 20", "n = 0"), r"\[campaign\] n must be a positive integer, got 0"),
        (("n = 20\n", ""), r"\[campaign\] n is missing"),
        (("seed = 3", "sede = 3"), r"\[campaign\] unknown key\(s\) \['sede'\]"),
        (('r = ["5k", "20k"]', 'r = ["5k", "2x"]'), r"\[campaign.grid\] r: '2x' is not a number"),
        (('r = ["5k", "20k"]', "r = []"), r"\[campaign.grid\] r must be a non-empty list"),
        (('r = ["5k", "20k"]', 'w = ["1u"]'), r"sweep parameter 'w' is not a parameter"),
        (('"diode_relu"', '"no_such_neuron"'), r"\[campaign\] neuron: unknown neuron"),
        (("jobs = 2", 'backend = "spark"'), r"\[campaign.run\] backend 'spark' must be one of"),
        (("jobs = 2", "jobs = 0"), r"\[campaign.run\] jobs must be a positive integer"),
        (("jobs = 2", "threads = 2"), r"\[campaign.run\] unknown key\(s\) \['threads'\]"),
        (("seed = 3", 'seed = 3\ncorner = "hot"'), r"\[campaign\] corner: .*hot"),
        (
            ("[campaign.run]", "[campaign.noise]\nbandwidth = -1\n[campaign.run]"),
            r"\[campaign.noise\] bandwidth \(Hz\) must be positive",
        ),
        (
            ("[campaign.run]", "[campaign.noise]\nbias = [9.0]\n[campaign.run]"),
            r"\[campaign.noise\] bias 9 V lies outside the input sweep",
        ),
        (
            ("[campaign.run]", "[campaign.speed]\nfast = true\n[campaign.run]"),
            r"\[campaign.speed\] unknown key\(s\) \['fast'\]",
        ),
        (("[campaign]", "other = 1\n[campaign]"), r"unknown top-level key\(s\) \['other'\]"),
        (("n = 20", "n = [20"), r"invalid TOML"),
        # found by tests/test_properties.py: each of these used to escape as another exception
        (("n = 20", "n = " + "9" * 5000), r"invalid TOML: Exceeds the limit"),
        (("seed = 3", "seed = 9223372036854775808"), r"\[campaign\] seed must be below 2\*\*63"),
        (('r = ["5k", "20k"]', 'r = ["5k"]\nR = ["20k"]'), r"'r' is given twice \('r' and 'R'"),
        (('"diode_relu"', '"' + "x" * 300 + '"'), r"\[campaign\] neuron: unknown neuron 'xxx"),
        (('"diode_relu"', '"x' + "x" * 300 + '.toml"'), r"neuron: spec file not found: xxx"),
        (('"diode_relu"', '"/"'), r"\[campaign\] neuron: spec file not found: / is not a file"),
        (('"diode_relu"', '"~no_such_user_xyz/a"'), r"neuron: unknown neuron '~no_such_user_xyz"),
        (("seed = 3", 'seed = 3\nstore = "a\\u0000b"'), r"\[campaign\] store must be a file path"),
        (("jobs = 2", "timeout = 1e300"), r"\[campaign.run\] timeout must be positive seconds, at"),
        (("jobs = 2", "jobs = 100000"), r"\[campaign.run\] jobs must be at most 1024 worker"),
        (("chunk_size = 10", "chunk_size = 1000000"), r"chunk_size must be at most 100000 inst"),
        (("n = 20", "n = 1000000000"), r"\[campaign\] .*n must be from 1 to 100,000,000 instances"),
        (
            ("[campaign.run]", "[campaign.noise]\nbias_points = 10001\n[campaign.run]"),
            r"\[campaign.noise\] bias_points must be at most 10000",
        ),
        (
            ("[campaign.run]", "[campaign.noise]\nfmin = " + "9" * 400 + "\n[campaign.run]"),
            r"\[campaign.noise\] fmin \(Hz\) must be a finite number, got 9999",
        ),
        (
            ("[campaign.run]", "[campaign.speed]\nbias = " + "9" * 400 + "\n[campaign.run]"),
            r"\[campaign.speed\] bias must be a finite number of volts",
        ),
    ],
)
def test_bad_campaign_file_names_the_field(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    old, new = edit
    assert old in CAMPAIGN
    path = _write(tmp_path, CAMPAIGN.replace(old, new, 1))
    with pytest.raises(ConfigError) as caught:
        load_campaign(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: ")
    assert re.search(message, text), text


def test_campaign_that_is_not_one_table_is_refused(tmp_path: Path) -> None:
    for text, message in [
        ("campaign = 5\n", r"\[campaign\] must be a table, got 5"),
        ('name = "x"\n', r"one \[campaign\] table; unknown top-level key\(s\) \['name'\]"),
        ("", r"one \[campaign\] table; none found"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_campaign(_write(tmp_path, text))


def test_temperature_fixed_and_swept_is_refused(tmp_path: Path) -> None:
    text = CAMPAIGN.replace("seed = 3", "seed = 3\ntemperature = 30").replace(
        'r = ["5k", "20k"]', "temperature = [27, 85]"
    )
    with pytest.raises(ConfigError, match="temperature is both fixed and swept"):
        load_campaign(_write(tmp_path, text))


def test_campaign_progress_summary_and_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(
        tmp_path,
        CAMPAIGN + "\n[campaign.noise]\nbias_points = 3\nfmin = 10.0\n"
        "fmax = 1e8\npoints_per_decade = 3\n",
    )
    out = tmp_path / "out"
    assert main(["campaign", str(path), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    # one bar over the whole campaign: 2 points × 20 instances × (dc + noise) = 80 simulations
    assert "[2/2] r=20000" in captured.err and "80/80" in captured.err
    assert "sim/s" in captured.err and "100%" in captured.err
    lines = captured.out.splitlines()
    header = next(line for line in lines if line.startswith("point"))
    for column in ("inst", "failed", "s", "swing [V]", "midpoint [V]", "gain [V/V]", "σ_out"):
        assert column in header
    rows = [line for line in lines if line.startswith("r=")]
    assert [row.split()[:3] for row in rows] == [["r=5000", "20", "0"], ["r=20000", "20", "0"]]
    assert "2 points, 40 instances (dc, noise)" in captured.out
    summary = json.loads((out / "campaign.json").read_text())
    assert [p["point"] for p in summary["points"]] == [{"r": 5e3}, {"r": 20e3}]
    store = Store(out / "families.h5")
    assert sorted(store.keys()) == sorted(p["key"] for p in summary["points"])
    # a larger load resistor: the same diode current gives a larger swing, more thermal noise
    five, twenty = summary["points"]
    assert twenty["descriptors"]["swing"][0] > five["descriptors"]["swing"][0]
    assert twenty["sigma"] > five["sigma"] > 0

    # rerun (also through `circuitnn run FILE`): every point comes from the store
    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("simulated again")

    monkeypatch.setattr(circuitnn.extract.pipeline, "simulate_chunk", forbidden)
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 0
    again = capsys.readouterr().out
    assert again.count("r=") >= 2 and "2 points, 40 instances" in again
    result = run_campaign(path, out=out, overrides={"progress": False})
    assert [p.key for p in result.points] == [p["key"] for p in summary["points"]]
    assert "r=20000" in summary_table(result)
