"""The automatic chunk layout: the measured best sizes, and every worker busy whenever N allows."""

from __future__ import annotations

import pytest
from helpers import DATA

from circuitnn import extract_family
from circuitnn.errors import ConfigError
from circuitnn.extract.options import DC_CHUNK_SIZE, NOISE_CHUNK_SIZE, RunOptions
from circuitnn.spice.analyses import NoiseAnalysis


@pytest.mark.parametrize(
    ("settings", "n", "dc", "noise"),
    [
        ({}, 10_000, DC_CHUNK_SIZE, NOISE_CHUNK_SIZE),  # a large family: the measured sizes
        ({"jobs": 2}, 10_000, DC_CHUNK_SIZE, NOISE_CHUNK_SIZE),
        ({"jobs": 2}, 150, 75, NOISE_CHUNK_SIZE),  # two DC chunks, not 100 + 50
        ({"jobs": 2}, 60, 30, 30),  # both workers busy in both analyses
        ({"jobs": 4}, 3, 1, 1),  # fewer instances than workers: one each
        ({"jobs": 2, "chunk_size": 7}, 10, 7, 7),  # an override is used as given, for both
        ({"jobs": 2, "noise_chunk_size": 3}, 1000, DC_CHUNK_SIZE, 3),
    ],
)
def test_automatic_chunk_sizes(settings: dict, n: int, dc: int, noise: int) -> None:
    resolved = RunOptions(progress=False, **settings).resolved(n)
    assert (resolved.chunk_size, resolved.noise_chunk_size) == (dc, noise)
    assert resolved.resolved(n) == resolved  # fixed once resolved


def test_a_bad_noise_chunk_size_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="noise_chunk_size must be a positive integer"):
        RunOptions(noise_chunk_size=0)


def test_two_jobs_cut_a_small_family_into_two_chunks_of_each_analysis(tmp_path) -> None:
    noise = NoiseAnalysis(bias_points=2, fmin=1.0, fmax=1e3, points_per_decade=2, bandwidth=1e2)
    family = extract_family(
        DATA / "divider.toml",
        n=12,
        store=tmp_path / "families.h5",
        options=RunOptions(jobs=2, progress=False),
        noise=noise,
    )
    assert int(family.attrs["chunk_size"]) == 6  # 2 chunks, one per worker (not one of 12)
    one = extract_family(
        DATA / "divider.toml", n=12, options=RunOptions(progress=False), noise=noise
    )
    assert int(one.attrs["chunk_size"]) == 12
    assert family.noise is not None and one.noise is not None
    assert (family.noise.status == 1).all() and (one.noise.status == 1).all()
