"""The nominal circuit runs alongside the chunks (2 jobs) with the semantics of running first:
an instance that ngspice warns about (and the nominal circuit not) still fails with the
warning, bit for bit as with 1 job, and a netlist ngspice rejects stops the run with nothing
written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import DATA, build_spec, options, spec_data

from circuitnn import extract_family
from circuitnn.errors import NetlistError
from circuitnn.store import Store


def _wide_l() -> Any:
    """inv_l1 with its channel length drawn negative for some instances: level 1 warns about
    those ("effective channel length less than zero"), not about the nominal circuit."""
    data = spec_data("inv_l1")
    data.setdefault("parameters", {})["l"] = "0.5u"
    data["variation"]["l"] = {"local": {"distribution": "normal", "relative": 0.9}}
    return build_spec(data)


def test_instances_warned_about_fail_with_two_jobs_as_with_one(tmp_path: Path) -> None:
    spec = _wide_l()
    one = extract_family(spec, n=16, seed=0, options=options(chunk_size=8))
    two = extract_family(
        spec, n=16, seed=0, store=tmp_path / "f.h5", options=options(chunk_size=8, jobs=2)
    )
    negative = np.flatnonzero(one.parameter("l") <= 0)
    assert len(negative) >= 1
    np.testing.assert_array_equal(two.failed, negative)
    assert all("ngspice warned about this instance" in two.reasons[row] for row in negative)
    np.testing.assert_array_equal(two.curves, one.curves)
    np.testing.assert_array_equal(two.status, one.status)
    assert two.reasons == one.reasons
    np.testing.assert_array_equal(two.nominal_curve, one.nominal_curve)


def test_a_rejected_netlist_stops_two_jobs_with_nothing_written(tmp_path: Path) -> None:
    store = tmp_path / "families.h5"
    with pytest.raises(NetlistError, match="ngspice rejected the netlist"):
        extract_family(DATA / "bad_model.toml", n=12, seed=0, store=store, options=options(jobs=2))
    assert not store.exists() or Store(store).keys() == []
    partial = tmp_path / "families.h5.partial"
    assert not partial.exists() or not any(partial.rglob("*.npz"))
