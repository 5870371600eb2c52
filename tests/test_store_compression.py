"""The store's compression: Blosc (LZ4) through hdf5plugin, read by a fresh process with circuitnn
or with plain h5py and hdf5plugin; families written before with h5py's LZF still load (a missing
filter: tests/test_store_repair.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
from helpers import DATA, blosc_settings, options

from circuitnn import extract_family
from circuitnn.store import Store

COMPRESSED = ("curves", "supply_current", "power", "run_alone", "failure_reason")


def _fresh_python(code: str) -> str:
    """Standard output of ``code`` run by a new Python process (nothing imported beforehand)."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_fresh_process_reads_a_stored_family_through_circuitnn_and_plain_h5py(
    tmp_path: Path,
) -> None:
    """A family's per-instance arrays are stored Blosc-compressed, and a new process reads them
    back bit for bit: through :class:`Store` (which registers the filter itself) and with plain
    h5py after ``import hdf5plugin``, as the store's documentation says."""
    path = tmp_path / "store.h5"
    family = extract_family(DATA / "divider.toml", n=9, seed=2, store=path, options=options())
    with h5py.File(path, "r") as handle:
        group = handle["families"][family.key]
        for name in COMPRESSED:
            assert blosc_settings(group[name]) is not None, name
        assert blosc_settings(group["status"]) is None
    expected = {name: getattr(family, name).tobytes().hex() for name in ("curves", "power")}

    through_store = _fresh_python(
        "import json; from circuitnn.store import Store; "
        f"family = Store({str(path)!r}).load({family.key!r}); "
        "print(json.dumps({name: getattr(family, name).tobytes().hex() "
        "for name in ('curves', 'power')}))"
    )
    assert json.loads(through_store) == expected
    plain = _fresh_python(
        "import json, h5py, hdf5plugin; "
        f"group = h5py.File({str(path)!r}, 'r')['families'][{family.key!r}]; "
        "print(json.dumps({name: group[name][()].tobytes().hex() "
        "for name in ('curves', 'power')}))"
    )
    assert json.loads(plain) == expected


def test_a_family_written_with_lzf_before_loads_as_it_was(tmp_path: Path) -> None:
    """A family file whose datasets are compressed with h5py's LZF and shuffle (what circuitnn
    wrote before it used Blosc) loads with the same values and failure reasons."""
    path = tmp_path / "store.h5"
    family = extract_family(DATA / "divider.toml", n=7, seed=3, store=path, options=options())
    store = Store(path)
    with h5py.File(store.family_files()[family.key], "r+") as handle:
        group = handle["families"][family.key]
        for name in COMPRESSED:
            old = group[name]
            values, attrs, chunks = old[()], dict(old.attrs), old.chunks
            del group[name]
            text = values.dtype.kind == "S"
            new = group.create_dataset(
                name,
                data=values,
                chunks=chunks,
                compression="lzf",
                shuffle=not text,
                fletcher32=True,
            )
            new.attrs.update(attrs)
        assert all(group[name].compression == "lzf" for name in COMPRESSED)

    loaded = Store(path).load(family.key)
    for name in ("curves", "supply_current", "power", "run_alone", "status"):
        assert np.array_equal(getattr(loaded, name), getattr(family, name)), name
    assert loaded.reasons == family.reasons
