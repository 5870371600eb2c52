"""Extraction: results independent of workers and chunking; the store is a cache by content."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import assert_same_family, data_spec, options

import circuitnn.extract.pipeline
from circuitnn import extract_family
from circuitnn.extract.pipeline import family_key
from circuitnn.neuron.builtin import get_neuron
from circuitnn.neuron.variation import MonteCarlo, sample_parameters
from circuitnn.store import Store


class SimulationForbidden(AssertionError):
    pass


def _forbid_simulation(*args: Any, **kwargs: Any) -> Any:
    raise SimulationForbidden("simulate_chunk was called")


@pytest.fixture(scope="module")
def bjt_runs() -> dict[str, Any]:
    """One bjt_diffpair family (n=30) extracted three ways."""
    return {
        "jobs1": extract_family("bjt_diffpair", n=30, seed=9, options=options(chunk_size=7)),
        "jobs2": extract_family(
            "bjt_diffpair", n=30, seed=9, options=options(chunk_size=7, jobs=2)
        ),
        "chunk30": extract_family("bjt_diffpair", n=30, seed=9, options=options(chunk_size=30)),
    }


def test_same_chunk_size_is_bit_identical_for_any_number_of_jobs(bjt_runs: dict[str, Any]) -> None:
    one, two = bjt_runs["jobs1"], bjt_runs["jobs2"]
    assert one.ok.all()
    assert_same_family(one, two)  # np.array_equal on every array


def test_other_chunk_size_agrees_within_simulator_tolerance(bjt_runs: dict[str, Any]) -> None:
    small, large = bjt_runs["jobs1"], bjt_runs["chunk30"]
    assert small.key == large.key  # chunking is not part of a family's identity
    np.testing.assert_array_equal(small.parameters, large.parameters)
    np.testing.assert_array_equal(small.chip, large.chip)
    # ngspice converges each batch to reltol = 1e-3 of the step; agreement is far better in fact
    np.testing.assert_allclose(small.curves, large.curves, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(small.supply_current, large.supply_current, rtol=1e-6, atol=1e-15)
    np.testing.assert_allclose(
        small.descriptors["midpoint"], large.descriptors["midpoint"], rtol=0, atol=1e-9
    )


def test_parameter_table_matches_the_sampler(bjt_runs: dict[str, Any]) -> None:
    family = bjt_runs["jobs2"]
    table = sample_parameters(get_neuron("bjt_diffpair"), MonteCarlo(n=30, seed=9))
    np.testing.assert_array_equal(family.parameters, table.values)
    assert family.parameter_names == table.names
    # the instances really differ (mismatch reached the simulator)
    assert len({tuple(np.round(curve, 12)) for curve in family.curves}) == 30


def test_second_identical_request_is_a_cache_hit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "families.h5"
    first = extract_family("diode_relu", n=9, seed=4, store=store, options=options())
    assert Store(store).keys() == [first.key]
    assert not (tmp_path / "families.h5.partial").exists()  # journal removed after the commit

    monkeypatch.setattr(circuitnn.extract.pipeline, "simulate_chunk", _forbid_simulation)
    again = extract_family("diode_relu", n=9, seed=4, store=store, options=options())
    assert_same_family(first, again)
    assert again.attrs["created"] == first.attrs["created"]
    # run options are not part of the identity either: still a hit
    other = extract_family(
        "diode_relu", n=9, seed=4, store=Store(store), options=options(chunk_size=2, jobs=2)
    )
    assert_same_family(first, other)

    # anything that changes the numbers is a miss: it has to simulate
    for changed in (
        {"seed": 5},
        {"n": 10},
        {"temperature": 60.0},
        {"corner": "slow"},
        {"chip_size": 3},
    ):
        arguments = {"n": 9, "seed": 4, **changed}
        with pytest.raises(SimulationForbidden):
            extract_family("diode_relu", store=store, options=options(), **arguments)
    spec = get_neuron("diode_relu").with_parameters(r="12k")
    with pytest.raises(SimulationForbidden):
        extract_family(spec, n=9, seed=4, store=store, options=options())
    assert Store(store).keys() == [first.key]  # nothing was added by the failed attempts


def test_key_depends_on_everything_that_determines_the_numbers() -> None:
    spec = get_neuron("mos_diffpair")
    base = family_key(spec, MonteCarlo(n=100, seed=1))
    assert base == family_key(get_neuron("mos_diffpair"), MonteCarlo(n=100, seed=1))
    variants = {
        "seed": family_key(spec, MonteCarlo(n=100, seed=2)),
        "n": family_key(spec, MonteCarlo(n=101, seed=1)),
        "chip_size": family_key(spec, MonteCarlo(n=100, seed=1, chip_size=10)),
        "corner": family_key(spec, MonteCarlo(n=100, seed=1, corner="ss")),
        "parameter": family_key(spec.with_parameters(w="8u"), MonteCarlo(n=100, seed=1)),
        "temperature": family_key(spec.with_temperature(85), MonteCarlo(n=100, seed=1)),
        "analyses": family_key(spec, MonteCarlo(n=100, seed=1), analyses=("dc", "noise")),
        "neuron": family_key(get_neuron("bjt_diffpair"), MonteCarlo(n=100, seed=1)),
    }
    assert base not in variants.values()
    assert len(set(variants.values())) == len(variants)
    # a parameter set back to its old value gives the old key again
    assert family_key(spec.with_parameters(w="4u"), MonteCarlo(n=100, seed=1)) == base


def test_family_without_store_and_family_from_store_agree(tmp_path: Path) -> None:
    spec = data_spec("divider")
    loose = extract_family(spec, n=5, seed=1, options=options(chunk_size=2))
    stored = extract_family(
        spec, n=5, seed=1, store=tmp_path / "s.h5", options=options(chunk_size=2)
    )
    assert_same_family(loose, stored)
    assert_same_family(loose, Store(tmp_path / "s.h5").load(loose.key))


def test_family_returned_by_a_new_extraction_is_what_the_store_holds(tmp_path: Path) -> None:
    """A family just written to a store comes back with the arrays as they were written (kept,
    not read back): every field equals a fresh load bit for bit, both sweep branches, an uneven
    last chunk, and 2 jobs (chunks arriving in any order) alike."""
    schmitt = data_spec("schmitt")
    both = dataclasses.replace(schmitt, sweep=dataclasses.replace(schmitt.sweep, direction="both"))
    for jobs, spec in ((1, both), (2, data_spec("divider"))):
        store = tmp_path / f"jobs{jobs}.h5"
        family = extract_family(
            spec, n=9, seed=4, store=store, options=options(chunk_size=4, jobs=jobs)
        )
        loaded = Store(store).load(family.key)
        for field in dataclasses.fields(family):
            mine, theirs = getattr(family, field.name), getattr(loaded, field.name)
            if isinstance(theirs, np.ndarray):
                assert mine.dtype == theirs.dtype and mine.shape == theirs.shape, field.name
                assert mine.tobytes() == theirs.tobytes(), field.name  # NaN payloads too
                assert mine.flags.c_contiguous and mine.flags.writeable, field.name
            elif field.name == "descriptors":
                assert mine.keys() == theirs.keys()
                for name in mine:
                    assert mine[name].tobytes() == theirs[name].tobytes(), name
            else:
                assert mine == theirs, field.name
        assert (family.curves_down is not None) == (spec is both)
