"""A spec says exactly what it means: unknown keys, absurd spreads and simulator settings in the
wrong place are refused by name; ngspice's warnings are shown once and kept; an instance whose
parameters ngspice refuses fails alone; bounded variations keep parameters physical."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import DATA, build_spec, options, spec_data
from scipy import stats

from circuitnn import extract_family
from circuitnn.errors import ConfigError, SimulatorWarning
from circuitnn.family import OK
from circuitnn.neuron.spec_file import load_spec
from circuitnn.neuron.variation import MonteCarlo, sample_parameters


def _spec(change: Any, name: str = "inv_l1") -> Any:
    data = spec_data(name)
    change(data)
    return build_spec(data)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d.update(variations=d.pop("variation")),
            r"unknown key 'variations' \(did "
            r"you mean 'variation'\?\); valid keys: name, description",
        ),
        (
            lambda d: d["sweep"].update(step=0.01),
            r"\[sweep\]: unknown key 'step'; valid keys: "
            r"start, stop, points, common_mode, direction",
        ),
        (
            lambda d: d["ports"].update(suplies=d["ports"].pop("supplies")),
            r"\[ports\]: unknown "
            r"key 'suplies' \(did you mean 'supplies'\?\)",
        ),
        (lambda d: d["output"].update(load=1e-15), r"\[output\]: unknown key 'load'"),
        (
            lambda d: d["variation"]["dvtn"].update(lokal={}),
            r"variation.dvtn: unknown key "
            r"'lokal' \(did you mean 'local'\?\); valid keys: global, local, min, max",
        ),
        (
            lambda d: d.update(simulator={"reltol": 2}),
            r"simulator.reltol must be positive and "
            r"at most 0.1, got 2",
        ),
        (
            lambda d: d.update(simulator={"rel_tol": 1e-4}),
            r"\[simulator\]: unknown key "
            r"'rel_tol'; valid keys: reltol, abstol, vntol, options",
        ),
        (
            lambda d: d.update(simulator={"options": {"gminstep": 1}}),
            r"unknown option "
            r"'gminstep' \(did you mean 'gminsteps'\?\); valid: chgtol, gmin",
        ),
        (
            lambda d: d.update(simulator={"options": {"reltol": 1e-4}}),
            r"unknown option "
            r"'reltol' \(give it as simulator.reltol\)",
        ),
        (
            lambda d: d.update(simulator={"options": {"itl1": 2.5}}),
            r"itl1 must be a whole "
            r"number",
        ),
        (
            lambda d: d.update(simulator={"options": {"gmin": "1e-12\n.control"}}),
            r"is not a "
            r"number",
        ),
        (
            lambda d: d["sweep"].update(direction="sideways"),
            r"sweep.direction 'sideways' must "
            r"be one of \('up', 'down', 'both'\)",
        ),
        (
            lambda d: d["variation"]["dvtn"].update(local={"relative": 3}),
            r"relative = 3 is a "
            r"σ of 300 % of the nominal value; at most 1 \(100 %\)",
        ),
        (lambda d: d["variation"]["dvtn"].update(min=0.1), r"nominal value 0 lies outside"),
        (
            lambda d: d["variation"]["dvtn"].update(min=0.1, max=-0.1),
            r"min \(0.1\) must be "
            r"below max \(-0.1\)",
        ),
    ],
    ids=[
        "variations",
        "sweep.step",
        "suplies",
        "output.load",
        "lokal",
        "reltol range",
        "simulator key",
        "option name",
        "option reltol",
        "integer option",
        "option text",
        "direction",
        "relative 3",
        "nominal outside bounds",
        "min above max",
    ],
)
def test_mistakes_are_refused_by_name(change: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _spec(change)


def test_tolerances_in_a_netlist_card_are_refused(tmp_path: Path) -> None:
    """Tolerances belong to [simulator] (key and self-check); a .options card setting them is
    refused, naming the file and the option."""
    for suffix in (".toml", ".cir"):
        shutil.copy(DATA / f"inv_l1{suffix}", tmp_path / f"inv_l1{suffix}")
    netlist = tmp_path / "inv_l1.cir"
    netlist.write_text(netlist.read_text() + ".options reltol=1e-6\n+ itl2=200\n")
    with pytest.raises(ConfigError, match=r"inv_l1.cir sets reltol, itl2 in a .options card"):
        load_spec(tmp_path / "inv_l1.toml")


def test_simulator_settings_are_rendered_from_numbers_and_part_of_the_key() -> None:
    from circuitnn.extract.pipeline import family_key
    from circuitnn.spice.benches import render_dc_bench

    spec = _spec(lambda d: d.update(simulator={"reltol": "1e-5", "options": {"itl2": 200}}))
    table = sample_parameters(spec, MonteCarlo(n=2))
    assert ".options reltol=1e-05 abstol=1e-12 vntol=1e-06 itl2=200" in (
        render_dc_bench(spec, table).text
    )
    loose = spec.with_simulator(reltol=1e-3)
    assert family_key(spec, MonteCarlo(n=2)) != family_key(loose, MonteCarlo(n=2))


def test_ngspice_warnings_are_shown_once_and_stored(tmp_path: Path) -> None:
    """A misspelt model parameter (LAMDA): ngspice ignores it with a warning, which is shown
    once for the family (not once per instance or chunk) and stored with it."""
    for suffix in (".toml", ".cir"):
        shutil.copy(DATA / f"inv_l1{suffix}", tmp_path / f"inv_l1{suffix}")
    netlist = tmp_path / "inv_l1.cir"
    netlist.write_text(
        netlist.read_text().replace(
            "LAMBDA=0.05 TOX=10n)\n.model il_pmos", "LAMDA=0.05 TOX=10n)\n.model il_pmos"
        )
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        family = extract_family(
            tmp_path / "inv_l1.toml",
            n=8,
            seed=0,
            store=tmp_path / "f.h5",
            options=options(chunk_size=3),
        )
    shown = [w for w in caught if issubclass(w.category, SimulatorWarning)]
    assert len(shown) == 1
    assert "unrecognized parameter (lamda) - ignored" in str(shown[0].message)
    assert np.all(family.status == OK)  # a warning of every instance fails none
    assert "lamda" in family.attrs["ngspice_warnings"]


@pytest.mark.parametrize("name", ["inv_l1", "bsim4_cs"])
def test_an_instance_ngspice_refuses_fails_alone(name: str) -> None:
    """A channel length drawn negative: level 1 warns ("effective channel length less than
    zero") and would return curves above the rail; BSIM4 stops the whole run ("Effective
    channel length <= 0"). Either way that instance fails with ngspice's words, the others
    are kept."""

    def wide_l(data: dict) -> None:
        data.setdefault("parameters", {})["l"] = "0.5u"
        data["variation"]["l"] = {"local": {"distribution": "normal", "relative": 0.9}}

    spec = _spec(wide_l, name)
    family = extract_family(spec, n=16, seed=0, options=options(chunk_size=8))
    negative = np.flatnonzero(family.parameter("l") <= 0)
    assert len(negative) >= 1
    np.testing.assert_array_equal(family.failed, negative)
    for row in negative:
        assert family.reasons[row].startswith(f"{name} instances {row}: ngspice ")
        assert "channel length" in family.reasons[row].lower()
    assert np.all(np.isfinite(family.curves[family.ok]))


def test_bounded_variation_is_a_truncated_distribution() -> None:
    """min/max: every draw within bounds, distributed as the truncated normal (not clipped: no
    pile-up at the bound); a Kolmogorov–Smirnov test at 0.1 % against scipy's truncnorm."""

    def bounded(data: dict) -> None:
        data.setdefault("parameters", {})["l"] = "0.5u"
        data["variation"]["l"] = {
            "local": {"distribution": "normal", "sigma": "0.3u"},
            "min": "0.2u",
        }

    spec = _spec(bounded)
    values = sample_parameters(spec, MonteCarlo(n=20000, seed=4)).column("l")
    assert values.min() >= 0.2e-6
    assert np.count_nonzero(values == 0.2e-6) == 0
    a = (0.2e-6 - 0.5e-6) / 0.3e-6
    statistic = stats.kstest(values, stats.truncnorm(a, np.inf, loc=0.5e-6, scale=0.3e-6).cdf)
    assert statistic.pvalue > 1e-3

    # a draw outside the bounds never happens, with global and local stages together
    def both(data: dict) -> None:
        data["variation"]["dvtn"] = {
            "global": {"sigma": "50m"},
            "local": {"sigma": "50m"},
            "min": "-0.05",
            "max": "0.05",
        }

    both_spec = _spec(both)
    values = sample_parameters(both_spec, MonteCarlo(n=5000, seed=1, chip_size=10)).column("dvtn")
    assert values.min() >= -0.05 and values.max() <= 0.05
