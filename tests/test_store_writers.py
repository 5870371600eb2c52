"""The scratch-file writers: each dataset laid out as documented, space claimed first, every
slice kept, unwritten rows NaN, failures named; committed once."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import DATA, LZ4, blosc_settings, options

from circuitnn import extract_family
from circuitnn.errors import StoreError
from circuitnn.family import FAILED, OK
from circuitnn.store import Store
from circuitnn.store.files import SCHEMA_VERSION
from circuitnn.store.writers import AnalysisWriter, FamilyWriter


def _test_header(writer: FamilyWriter, n: int, points: int) -> None:
    """The header of a family of ``n`` instances on ``points`` grid points, one parameter."""
    writer.write_header(
        {"neuron": "test"},
        np.linspace(0, 1, points),
        "V",
        ("a",),
        np.zeros((n, 1)),
        np.zeros(n, dtype=np.int64),
    )


def test_writer_keeps_every_slice_when_chunks_are_evicted_and_read_back(tmp_path: Path) -> None:
    """Slices arriving in any order, each a part of HDF5 chunks it shares with other slices,
    with a chunk cache far smaller than the family (so partly written chunks are compressed,
    evicted and read back): every row reads back bit for bit, in the store's own reader."""

    rng = np.random.default_rng(5)
    n, points, rows = 700, 1500, 60  # 12 kB per curve: HDF5 chunks of 87 rows
    curves = rng.normal(size=(n, points))
    supply = rng.normal(size=(n, 1, points))
    power = rng.normal(size=(n, points))
    status = np.full(n, OK, dtype=np.int8)
    midpoint = rng.normal(size=n)

    class SmallCache(FamilyWriter):
        CACHE_BYTES = 2**16  # 64 KiB: one HDF5 chunk of curves is 1 MiB

    writer = SmallCache(tmp_path / "scratch.h5", "k" * 64, n)
    _test_header(writer, n, points)
    starts = list(range(0, n, rows))
    rng.shuffle(starts)
    for start in starts:
        part = slice(start, start + rows)
        writer.write_rows(
            start,
            curves[part],
            supply[part],
            np.zeros((len(curves[part]), 0, points)),
            power[part],
            status[part],
            [""] * len(status[part]),
            {"midpoint": midpoint[part]},
        )
    writer.finish(curves[0])
    with h5py.File(tmp_path / "scratch.h5", "r") as handle:
        group = handle["families"]["k" * 64]
        assert group["curves"].chunks[0] < n  # chunked: slices share and split chunks
        assert group["curves"][()].tobytes() == curves.tobytes()
        assert group["supply_current"][()].tobytes() == supply.tobytes()
        assert group["power"][()].tobytes() == power.tobytes()
        assert group["descriptors/midpoint"][()].tobytes() == midpoint.tobytes()
        assert (group["status"][()] == OK).all()


def _text_attr(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@pytest.mark.parametrize(
    ("n", "chunk_rows", "points", "chunk", "supplies"),
    [
        (10, 4, 6, 4, 1),  # chunks of chunk_rows instances
        (3, 4, 6, 3, 0),  # no larger than the family (and no supply, the input current kept)
        (5, 1, 6, 1, 1),  # one instance per chunk when asked
        (3, 4, 2**16, 2, 1),  # at most CHUNK_BYTES (1 MiB): two curves of 512 KiB
    ],
)
def test_family_writer_lays_out_each_dataset_as_documented(
    tmp_path: Path, n: int, chunk_rows: int, points: int, chunk: int, supplies: int
) -> None:
    """A family written by :class:`FamilyWriter` (a header, slices out of order, the optional
    ``run_alone`` and ``curves_down``, and at the finish ``nominal_curve_down`` and attributes)
    reads back with plain h5py: every value; each dataset's units (the family's output unit for
    the curves, both branches, and output-unit descriptors); the per-instance curves, currents,
    power, optional arrays and failure reasons compressed (Blosc LZ4 at level 5, the numbers
    byte-shuffled, the text not) in HDF5 chunks of
    ``chunk_rows`` instances (fewer in a smaller family, and at most CHUNK_BYTES = 1 MiB each,
    at least one instance), a current with no rows (no supply, or no input current measured)
    and the status and descriptors not compressed; every numeric dataset
    checksummed (Fletcher-32); the status' meaning; the file marked a circuitnn store of the
    current schema. The writer is then ``finished``."""
    from circuitnn.family import STATUS_MEANING

    rng = np.random.default_rng(3)
    key = "f" * 64
    grid = np.linspace(0.0, 1.0, points)
    parameters, chip = rng.normal(size=(n, 2)), np.arange(n) // 2
    curves, down = rng.normal(size=(n, points)), rng.normal(size=(n, points))
    supply, inputs = (
        rng.normal(size=(n, supplies, points)),
        rng.normal(size=(n, 1 - supplies, points)),
    )
    power = rng.normal(size=(n, points))
    status = np.where(np.arange(n) == 1, FAILED, OK).astype(np.int8)
    reasons = ["did not converge" if s == FAILED else "" for s in status]
    alone = (np.arange(n) % 3).astype(np.int8)
    descriptors = {"gain": rng.normal(size=n), "midpoint": rng.normal(size=n)}

    writer = FamilyWriter(tmp_path / "scratch.h5", key, n, chunk_rows)
    writer.write_header({"neuron": "test", "n": n}, grid, "uA", ("a", "b"), parameters, chip)
    split = n // 2
    for part in (slice(split, n), slice(0, split)):  # the later instances first
        writer.write_rows(
            part.start,
            curves[part],
            supply[part],
            inputs[part],
            power[part],
            status[part],
            reasons[part],
            {name: values[part] for name, values in descriptors.items()},
            {"run_alone": alone[part], "curves_down": down[part]},
        )
    assert not writer.finished
    writer.finish(curves[0] / 2, {"created": "today"}, {"nominal_curve_down": down[0] / 2})
    assert writer.finished

    with h5py.File(tmp_path / "scratch.h5", "r") as handle:
        assert _text_attr(handle.attrs["format"]) == "circuitnn-store"
        assert handle.attrs["schema_version"] == SCHEMA_VERSION
        group = handle["families"][key]
        assert {name: _text_attr(value) for name, value in group.attrs.items()} == {
            "neuron": "test",
            "n": str(n),
            "created": "today",
        }
        expected = {  # name: (values, units, compressed in chunks)
            "input": (grid, "V", False),
            "parameters": (parameters, "SI (see columns)", False),
            "chip": (chip, None, False),
            "curves": (curves, "uA", True),
            "supply_current": (supply, "A", supplies > 0),
            "input_current": (inputs, "A", supplies == 0),
            "power": (power, "W", True),
            "status": (status, None, False),
            "run_alone": (alone, "code (see the family's run_alone_meaning)", True),
            "curves_down": (down, "uA", True),
            "nominal_curve": (curves[0] / 2, "uA", False),
            "nominal_curve_down": (down[0] / 2, "uA", False),
            "descriptors/gain": (descriptors["gain"], "uA / V", False),
            "descriptors/midpoint": (descriptors["midpoint"], "V", False),
        }
        for name, (values, units, compressed) in expected.items():
            dataset = group[name]
            assert dataset.dtype == values.dtype, name
            assert dataset[()].tobytes() == values.tobytes(), name
            assert (_text_attr(dataset.attrs["units"]) if "units" in dataset.attrs else None) == (
                units
            ), name
            assert dataset.fletcher32, name
            if compressed:
                assert blosc_settings(dataset) == (5, 1, LZ4), name
                instance = values[0].nbytes  # bytes: the largest chunk holds 1 MiB at most
                rows = max(1, min(n, chunk_rows, 2**20 // instance))
                assert dataset.chunks == (rows, *values.shape[1:]), name
            else:
                assert blosc_settings(dataset) is None and dataset.compression is None, name
        assert group["curves"].chunks == (chunk, points)
        assert json.loads(group["parameters"].attrs["columns"]) == ["a", "b"]
        assert _text_attr(group["status"].attrs["meaning"]) == STATUS_MEANING
        failure = group["failure_reason"]
        assert [_text_attr(text) for text in failure[()]] == reasons
        assert (blosc_settings(failure), failure.chunks) == ((5, 0, LZ4), (min(n, chunk_rows),))
        assert sorted(group["descriptors"]) == ["gain", "midpoint"]


def _write_slices(writer: object, starts: list[int], n: int, points: int, devices: int = 0) -> None:
    """Write a family of ``n`` instances (1 supply, no input current, 2 descriptors and
    ``devices`` threshold voltages) in slices starting at ``starts``: curves ``i + x`` for
    instance ``i``."""
    for start, stop in itertools.pairwise([*starts, n]):
        rows = np.arange(start, stop)
        curves = rows[:, None] + np.linspace(0.0, 1.0, points)
        writer.write_rows(  # type: ignore[attr-defined]
            start,
            curves,
            curves[:, None, :] * 1e-3,
            np.zeros((len(rows), 0, points)),
            curves * 1e-3,
            np.full(len(rows), OK, dtype=np.int8),
            [""] * len(rows),
            {
                "gain": rows * 0.5,
                "midpoint": rows * 0.25,
                **{f"vth_m{device}": rows * 1e-3 for device in range(devices)},
            },
        )


@pytest.mark.parametrize("first", [1, 100], ids=["first slice of 1", "first slice of 100"])
def test_family_writer_claims_the_whole_family_s_space_on_its_first_slice(
    tmp_path: Path, first: int
) -> None:
    """On its first slice the scratch file claims the disk space of the whole family: the bytes
    of every per-instance array (per instance, from that slice, however many instances it holds)
    plus :data:`REASON_BYTES` per failure reason, with some margin. Under a real file-size limit
    (RLIMIT_FSIZE, as a full disk) of just that uncompressed size it fails at once with a
    :class:`StoreError` "not enough space" naming the scratch file and the family; under a limit
    a quarter larger the whole family is written and reads back."""
    import resource
    import signal

    from circuitnn.store.files import REASON_BYTES, RESERVE_MARGIN

    n, points, key, devices = 2000, 41, "0123456789abcdef" * 4, 38
    # curves, supply current (1 supply), power (float64), status (int8), 2 + 38 descriptors
    # (float64), a failure reason
    instance = 3 * points * 8 + 1 + (2 + devices) * 8 + REASON_BYTES
    uncompressed = n * instance + RESERVE_MARGIN

    def written_under(limit: int, name: str) -> Path:
        path = tmp_path / name
        writer = FamilyWriter(path, key, n, 256)
        _test_header(writer, n, points)
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG, not a signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
        try:
            _write_slices(writer, [0, first, 1000], n, points, devices)
            writer.finish(np.linspace(0, 1, points))
        except BaseException:
            writer.discard()
            raise
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            signal.signal(signal.SIGXFSZ, handler)
        return path

    with pytest.raises(StoreError) as caught:
        written_under(uncompressed, "small.h5")
    assert str(caught.value).startswith(
        f"not enough space for the scratch file of family {key[:12]} ({tmp_path / 'small.h5'}): "
    )
    assert str(caught.value).endswith("File too large); nothing was written to it")
    path = written_under(uncompressed + n * instance // 4, "large.h5")
    with h5py.File(path, "r") as handle:
        curves = handle["families"][key]["curves"][()]
    np.testing.assert_array_equal(curves, np.arange(n)[:, None] + np.linspace(0, 1, points))


def test_family_writer_errors_name_the_family_and_the_file(tmp_path: Path) -> None:
    """:class:`StoreError` naming the family (its key's first 12 characters) and the scratch
    file when it cannot be created (its folder is missing), when a slice cannot be written (the
    wrong number of points), and when it is finished with no instance written; leaving a
    ``with`` block by an error deletes the scratch file, leaving it normally keeps it (to be
    committed), and deleting it twice is fine."""

    key = "0123456789abcdef" * 4
    missing = tmp_path / "missing" / "scratch.h5"
    with pytest.raises(StoreError) as caught:
        FamilyWriter(missing, key, 3)
    assert str(caught.value).startswith(f"cannot write family {key[:12]} to {missing}: ")

    def header(writer: FamilyWriter) -> None:
        writer.write_header({}, np.linspace(0, 1, 5), "V", ("a",), np.zeros((3, 1)), np.zeros(3))

    path = tmp_path / "scratch.h5"
    with pytest.raises(StoreError) as caught, FamilyWriter(path, key, 3) as writer:
        header(writer)
        _write_slices(writer, [0], 2, 5)
        _write_slices(writer, [2], 3, 6)  # 6 points, not 5
    assert str(caught.value).startswith(
        f"cannot write instances 2… of family {key[:12]} to {path}: "
    )
    assert not path.exists()

    with FamilyWriter(path, key, 3) as writer:
        header(writer)
        with pytest.raises(StoreError) as caught:
            writer.finish(np.zeros(5))
    assert str(caught.value) == (f"family {key[:12]}: no instances written (['curves', 'status'])")
    assert not writer.finished and path.exists()
    writer.discard()
    writer.discard()
    assert not path.exists()


def test_analysis_writer_fills_the_rows_never_written_with_nan(tmp_path: Path) -> None:
    """:class:`AnalysisWriter` writes each named dataset (N×…, created on its first rows) as rows
    arrive, in any order and with gaps; ``finish`` fills every row never written with NaN
    (also runs of them longer than a chunk) and returns the file's path. A write of no rows is
    ignored; a dataset never written is not made. Datasets are checksummed, not compressed, in
    HDF5 chunks of ``chunk_rows`` instances (fewer in a smaller analysis, and at most
    CHUNK_BYTES = 1 MiB each). A write that does not
    fit is a :class:`StoreError` naming the instances, the dataset and the file; leaving a
    ``with`` block by an error deletes the file, as does ``discard`` (twice is fine)."""

    n, frequencies = 20, 4
    psd = np.arange(n * frequencies, dtype=float).reshape(n, frequencies) / 3.0 + 1.0
    expected = np.full((n, frequencies), np.nan)
    path = tmp_path / "analysis.h5"
    writer = AnalysisWriter(path, n, chunk_rows=3)
    for rows in ([5, 7], [1, 2], [], [18]):  # never: 0, 3-4, 6, 8-17, 19
        writer.write("psd", np.array(rows, dtype=int), psd[rows])
        expected[rows] = psd[rows]
    response = np.arange(n * 2, dtype=np.float32).reshape(n, 2) - 5.0
    writer.write("response", np.arange(n), response)
    with pytest.raises(StoreError) as caught:
        writer.write("psd", np.array([3, 4]), np.zeros((2, frequencies + 1)))
    assert str(caught.value).startswith(f"cannot write instances 3…4 of psd to {path}: ")
    assert writer.finish() == path
    with h5py.File(path, "r") as handle:
        assert sorted(handle) == ["psd", "response"]
        assert handle["psd"].dtype == np.float64  # (not rounded to float32)
        np.testing.assert_array_equal(handle["psd"][()], expected)
        assert handle["response"][()].tobytes() == response.tobytes()
        for name, width in (("psd", frequencies), ("response", 2)):
            dataset = handle[name]
            assert dataset.chunks == (3, width) and dataset.fletcher32, name
            assert dataset.compression is None, name
    small = AnalysisWriter(tmp_path / "small.h5", 2, chunk_rows=3)
    small.write("psd", np.array([1]), psd[[1]])
    with h5py.File(small.finish(), "r") as handle:
        assert handle["psd"].chunks == (2, frequencies)
        np.testing.assert_array_equal(handle["psd"][()], [np.full(frequencies, np.nan), psd[1]])
    for chunk_rows, width, rows in ((1, 4, 1), (4, 2**16, 2)):  # 2 rows of 512 KiB: 1 MiB
        wide = AnalysisWriter(tmp_path / f"wide{width}.h5", 3, chunk_rows)
        wide.write("psd", np.array([0]), np.ones((1, width)))
        with h5py.File(wide.finish(), "r") as handle:
            assert handle["psd"].chunks == (rows, width)
    writer.discard()
    writer.discard()
    assert not path.exists()

    with pytest.raises(StoreError), AnalysisWriter(path, n) as failing:
        failing.write("psd", np.array([0]), psd[[0]])
        failing.write("psd", np.array([1]), np.zeros((1, frequencies + 1)))
    assert not path.exists()
    with AnalysisWriter(path, n) as kept:
        kept.write("psd", np.array([0]), psd[[0]])
    assert kept.finish() == path and path.exists()
    missing = tmp_path / "missing" / "analysis.h5"
    with pytest.raises(StoreError, match=r"cannot write an analysis to .*missing/analysis\.h5"):
        AnalysisWriter(missing, n)


def test_commit_written_commits_a_finished_family_once_or_leaves_the_store_as_it_was(
    tmp_path: Path,
) -> None:
    """``commit_written`` refuses a writer that is not finished (:class:`StoreError` naming the
    family; nothing committed); commits a finished one by moving its scratch file into the
    store's folder (True); a second writer of the same family finds it committed (False: the
    store keeps the first, the second's scratch file is deleted); and when the index cannot be
    rewritten (a real file-size limit, RLIMIT_FSIZE, too small for the index's new copy) the
    family's file is removed again and the store holds what it held."""
    import resource
    import signal

    from circuitnn.store.files import RESERVE_MARGIN

    store = Store(tmp_path / "families.h5")
    first, second = "a" * 64, "b" * 64

    def writer(key: str, finished: bool = True) -> object:
        written = store.family_writer(store.journal(key, 4), key, 3, chunk_rows=2)
        written.write_header({}, np.linspace(0, 1, 5), "V", ("a",), np.zeros((3, 1)), np.zeros(3))
        _write_slices(written, [0], 3, 5)
        if finished:
            written.finish(np.zeros(5))
        return written

    unfinished = writer(first, finished=False)
    with pytest.raises(StoreError) as caught:
        store.commit_written(unfinished)
    assert str(caught.value) == f"family {first[:12]} is not completely written; not committed"
    assert store.keys() == []
    unfinished.discard()

    done = writer(first)
    assert store.commit_written(done) is True
    assert store.keys() == [first] and not done.path.exists()
    again = writer(first)
    assert store.commit_written(again) is False
    assert store.keys() == [first] and not again.path.exists()
    with h5py.File(store.family_path(first), "r") as handle:
        assert handle["families"][first]["curves"].shape == (3, 5)
        assert handle["families"][first]["curves"].chunks == (2, 5)  # chunk_rows instances

    late = writer(second)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG, not a signal
    resource.setrlimit(resource.RLIMIT_FSIZE, (RESERVE_MARGIN, hard))
    try:
        with pytest.raises(
            StoreError, match=rf"not enough space for the new copy of {store.path} "
        ):
            store.commit_written(late)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)
    assert store.keys() == [first]
    assert sorted(p.name for p in store.folder.iterdir()) == [f"{first}.h5"]


def test_commit_analysis_adds_an_analysis_once_to_a_stored_family_claiming_its_space(
    tmp_path: Path,
) -> None:
    """``commit_analysis`` adds a noise analysis only to a family the store holds: to a store
    that does not exist yet, or one without that family, it is a :class:`StoreError` naming the
    analysis, the store and the family. It claims disk space for the copy of the family's file
    plus the analysis' arrays plus :data:`REASON_BYTES` per failure reason (and the margin
    :data:`RESERVE_MARGIN`): under a real file-size limit (RLIMIT_FSIZE, as a full disk) one
    byte short of that it is a :class:`StoreError` "not enough space" and the family keeps no
    analysis; at that limit it is added, and it loads back; adding it again changes nothing."""
    import resource
    import signal

    from circuitnn.spice.analyses import NoiseAnalysis
    from circuitnn.store.files import REASON_BYTES, RESERVE_MARGIN, array_bytes

    small = NoiseAnalysis(bias_points=2, fmin=1.0, fmax=1e6, points_per_decade=2, bandwidth=1e5)
    family = extract_family(DATA / "divider.toml", n=4, seed=1, noise=small, options=options())
    data = family.noise
    assert data is not None and len(data.reasons) == family.n
    store = Store(tmp_path / "families.h5")
    message = f"cannot add {data.key} to {store.path}: no family {family.key} there"
    with pytest.raises(StoreError) as caught:
        store.commit_analysis(family.key, data)
    assert str(caught.value) == message
    other = extract_family(DATA / "diode_r.toml", n=3, seed=1, options=options())
    store.commit(other)
    with pytest.raises(StoreError) as caught:
        store.commit_analysis(family.key, data)
    assert str(caught.value) == message

    store.commit(family)
    file = store.family_path(family.key)
    needed = file.stat().st_size + array_bytes(vars(data)) + family.n * REASON_BYTES
    needed += RESERVE_MARGIN

    def commit_under_limit(limit: int) -> None:
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG, not a signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
        try:
            store.commit_analysis(family.key, data)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            signal.signal(signal.SIGXFSZ, handler)

    with pytest.raises(StoreError, match=r"not enough space for the new copy of .*File too large"):
        commit_under_limit(needed - 1)
    assert store.analyses(family.key) == []
    commit_under_limit(needed)
    assert store.analyses(family.key) == [data.key]
    loaded = store.load(family.key)
    assert loaded.noise is not None
    np.testing.assert_array_equal(loaded.noise.sigma, data.sigma)
    before = file.read_bytes()
    store.commit_analysis(family.key, data)
    assert store.analyses(family.key) == [data.key] and file.read_bytes() == before


def test_commit_analysis_stores_the_spectra_streamed_by_an_analysis_writer(tmp_path: Path) -> None:
    """Given an :class:`AnalysisWriter`, ``commit_analysis`` takes the analysis' per-instance
    spectra from the writer's file (the analysis itself holds none of their rows): stored as
    written, NaN in the rows never written; the writer's file is then deleted. Loaded with
    ``arrays=False`` the analysis leaves those spectra out (0 rows)."""
    import dataclasses

    from circuitnn.spice.analyses import NoiseAnalysis

    small = NoiseAnalysis(bias_points=2, fmin=1.0, fmax=1e6, points_per_decade=2, bandwidth=1e5)
    family = extract_family(DATA / "divider.toml", n=4, seed=1, noise=small, options=options())
    data = family.noise
    assert data is not None
    store = Store(tmp_path / "families.h5")
    store.commit(family)
    writer = AnalysisWriter(tmp_path / "scratch.h5", family.n, chunk_rows=2)
    psd = data.psd * 2.0
    writer.write("psd", np.arange(3), psd[:3])  # the last instance never written
    writer.write("input_psd", np.arange(4), np.ones_like(data.input_psd))
    empty = {name: getattr(data, name)[:0] for name in ("psd", "input_psd")}
    store.commit_analysis(family.key, dataclasses.replace(data, **empty), writer)
    assert not writer.path.exists()

    stored = store.load_analysis(family.key, "noise", data.key)
    expected = psd.copy()
    expected[3] = np.nan
    np.testing.assert_array_equal(stored.psd, expected)
    np.testing.assert_array_equal(stored.input_psd, np.ones_like(data.input_psd))
    np.testing.assert_array_equal(stored.sigma, data.sigma)
    lean = store.load_analysis(family.key, "noise", data.key, arrays=False)  # no spectra
    assert lean.psd.shape == (0, *psd.shape[1:]) and lean.input_psd.shape[0] == 0
    np.testing.assert_array_equal(lean.sigma, data.sigma)
