"""Monte Carlo sampling: distributions, Pelgrom scaling, chips, corners and reproducibility.

Statistical checks use n = 20000 draws (sampling is cheap): a sample mean must lie within
3σ/√n of the specified mean and a sample standard deviation within 3σ/√(2n) of the specified σ
(the standard error of a normal sample's σ estimate is σ/√(2n)).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import warnings
from typing import Any

import numpy as np
import pytest
from helpers import build_spec, spec_data
from hypothesis import given, settings
from hypothesis import strategies as st

from circuitnn.errors import ConfigError
from circuitnn.neuron.spec import NeuronSpec
from circuitnn.neuron.variation import (
    MAX_INSTANCES,
    MonteCarlo,
    nominal_table,
    sample_parameters,
    standard_normals,
    uniforms,
)

N = 20000


def stat_spec(
    variation: dict[str, Any],
    corners: dict[str, Any] | None = None,
    parameters: dict[str, Any] | None = None,
) -> NeuronSpec:
    data = spec_data("stat")
    data["variation"] = variation
    data["corners"] = corners or {}
    data["parameters"] = parameters or {}
    return build_spec(data)


def assert_mean(values: np.ndarray, mean: float, sigma: float) -> None:
    tolerance = 3 * sigma / np.sqrt(len(values))
    assert abs(np.mean(values) - mean) <= tolerance, (np.mean(values), mean, tolerance)


def assert_sigma(values: np.ndarray, sigma: float) -> None:
    tolerance = 3 * sigma / np.sqrt(2 * len(values))
    assert abs(np.std(values, ddof=1) - sigma) <= tolerance, (np.std(values), sigma, tolerance)


def assert_uncorrelated(x: np.ndarray, y: np.ndarray) -> None:
    r = np.corrcoef(x, y)[0, 1]
    assert abs(r) <= 3 / np.sqrt(len(x)), r


def test_local_normal_absolute_and_relative() -> None:
    spec = stat_spec(
        {
            "a": {"local": {"distribution": "normal", "sigma": 0.1}},
            "b": {"local": {"distribution": "normal", "relative": 0.05}},
        }
    )
    table = sample_parameters(spec, MonteCarlo(n=N, seed=1))
    a, b = table.column("a"), table.column("b")
    assert_mean(a, 1.0, 0.1)
    assert_sigma(a, 0.1)
    assert_mean(b, 2.0, 0.05 * 2.0)  # relative: σ = 0.05 × nominal 2
    assert_sigma(b, 0.05 * 2.0)
    assert_uncorrelated(a, b)  # every parameter has its own stream of draws
    # a normal distribution: about 68.27 % within ±1σ (binomial standard error √(p(1-p)/n))
    inside = np.mean(np.abs(a - 1.0) < 0.1)
    assert abs(inside - 0.682689) <= 3 * np.sqrt(0.682689 * 0.317311 / N)
    # the parameters without variation keep their nominal values exactly
    assert np.all(table.column("c") == 3.0)
    assert np.all(table.column("w") == 2e-6)


def test_lognormal_has_relative_sigma_of_log_and_nominal_median() -> None:
    spec = stat_spec({"c": {"local": {"distribution": "lognormal", "relative": 0.2}}})
    c = sample_parameters(spec, MonteCarlo(n=N, seed=2)).column("c")
    assert np.all(c > 0)
    log_ratio = np.log(c / 3.0)
    assert_mean(log_ratio, 0.0, 0.2)
    assert_sigma(log_ratio, 0.2)
    below = np.mean(c < 3.0)  # median = nominal: half the draws below it
    assert abs(below - 0.5) <= 3 * 0.5 / np.sqrt(N)
    # the mean of a lognormal is nominal × exp(σ²/2), above the median
    mean_ratio = np.mean(c / 3.0)
    expected = np.exp(0.2**2 / 2)
    sd = np.sqrt((np.exp(0.2**2) - 1) * np.exp(0.2**2))
    assert abs(mean_ratio - expected) <= 3 * sd / np.sqrt(N)


@pytest.mark.parametrize(
    ("amount", "sigma"),
    [({"sigma": 0.1}, 0.1), ({"relative": 0.05}, 0.05)],
    ids=["absolute", "relative"],
)
def test_uniform_sigma_and_bounds(amount: dict[str, float], sigma: float) -> None:
    spec = stat_spec({"a": {"local": {"distribution": "uniform", **amount}}})
    a = sample_parameters(spec, MonteCarlo(n=N, seed=3)).column("a")  # nominal a = 1
    half_width = np.sqrt(3) * sigma
    assert a.min() >= 1 - half_width
    assert a.max() <= 1 + half_width
    # the draws fill the interval: the gaps at both ends are O(width / n)
    assert a.min() < 1 - half_width * (1 - 20 / N)
    assert a.max() > 1 + half_width * (1 - 20 / N)
    assert_mean(a, 1.0, sigma)
    assert_sigma(a, sigma)
    # flat: each quarter of the interval holds a quarter of the draws
    counts, _ = np.histogram(a, bins=4, range=(1 - half_width, 1 + half_width))
    assert np.all(np.abs(counts / N - 0.25) <= 3 * np.sqrt(0.25 * 0.75 / N))


@pytest.mark.parametrize(
    ("local", "low", "high"),
    [
        ({"distribution": "normal", "sigma": 0.1}, 0.95, 1.2),
        ({"distribution": "normal", "sigma": 0.1}, 0.9, None),
        ({"distribution": "normal", "relative": 0.1}, None, 1.05),
        ({"distribution": "lognormal", "relative": 0.2}, 0.9, 1.3),
        ({"distribution": "lognormal", "relative": 0.2}, None, 1.1),
        ({"distribution": "lognormal", "relative": 1.0}, 0.2, 5.0),
        ({"distribution": "uniform", "sigma": 0.1}, 0.95, None),
    ],
    ids=[
        "normal-both",
        "normal-min",
        "relative-max",
        "lognormal-both",
        "lognormal-max",
        "lognormal-100%",
        "uniform",
    ],
)
def test_bounded_draws_follow_the_truncated_distribution(
    local: dict[str, Any], low: float | None, high: float | None
) -> None:
    """A variation with min/max draws from its distribution truncated to them (not clipped: no
    draw piles up at a bound): every value inside, and a Kolmogorov-Smirnov test against
    scipy's truncated normal (of the logarithm for lognormal; uniform over the interval left)
    does not reject at the 0.1 % level."""
    from scipy import stats

    bounds = {"min": low} if low is not None else {}
    bounds |= {"max": high} if high is not None else {}
    spec = stat_spec({"a": {"local": local, **bounds}})
    a = sample_parameters(spec, MonteCarlo(n=N, seed=9)).column("a")  # nominal a = 1
    lo, hi = low if low is not None else -np.inf, high if high is not None else np.inf
    assert a.min() >= lo and a.max() <= hi
    assert np.count_nonzero((a == lo) | (a == hi)) <= 1
    sigma = local.get("sigma", local.get("relative"))
    if local["distribution"] == "lognormal":
        with np.errstate(divide="ignore"):
            edges = (np.log(lo) if lo > 0 else -np.inf, np.log(hi))
        reference = stats.truncnorm(edges[0] / sigma, edges[1] / sigma, scale=sigma)
        sample = np.log(a)
    elif local["distribution"] == "uniform":
        half = np.sqrt(3) * sigma
        left, right = max(1 - half, lo), min(1 + half, hi)
        reference, sample = stats.uniform(left, right - left), a
    else:
        reference = stats.truncnorm((lo - 1) / sigma, (hi - 1) / sigma, loc=1, scale=sigma)
        sample = a
    assert stats.kstest(sample, reference.cdf).pvalue > 1e-3


@pytest.mark.parametrize(
    "local",
    [
        {"distribution": "normal", "sigma": 1.0},
        {"distribution": "normal", "relative": 0.1},
        {"distribution": "lognormal", "relative": 0.2},
        {"distribution": "uniform", "sigma": 0.3},
    ],
    ids=["normal", "relative", "lognormal", "uniform"],
)
def test_bounds_that_never_bind_leave_every_draw_as_it_was(local: dict[str, Any]) -> None:
    """Bounds far outside the draws (the truncated inverse CDF) give each row the draw it has
    without bounds, to rounding; and with a nominal value of 2 a lognormal's bounds hold as
    values, not as factors of the nominal value."""
    free = stat_spec({"a": {"local": local}}, parameters={"a": 2.0})
    far = stat_spec({"a": {"local": local, "min": -1e3, "max": 1e3}}, parameters={"a": 2.0})
    if local["distribution"] == "lognormal":
        far = stat_spec({"a": {"local": local, "min": 1e-9, "max": 1e9}}, parameters={"a": 2.0})
    mc = MonteCarlo(n=2000, seed=5)
    unbounded = sample_parameters(free, mc).column("a")
    np.testing.assert_allclose(sample_parameters(far, mc).column("a"), unbounded, rtol=1e-9)
    assert np.ptp(unbounded) > 0
    if local["distribution"] == "lognormal":
        bounded = stat_spec({"a": {"local": local, "min": 1.9, "max": 2.2}}, parameters={"a": 2.0})
        a = sample_parameters(bounded, mc).column("a")
        assert a.min() >= 1.9 and a.max() <= 2.2
        assert a.min() < 1.91 and a.max() > 2.19  # the draws reach both bounds


def test_pelgrom_sigma_scales_with_area() -> None:
    spec = stat_spec(
        {"d": {"local": {"distribution": "normal", "pelgrom": "5n", "area": ["w", "l"]}}}
    )
    for w in (2e-6, 8e-6, 0.5e-6):
        sized = spec.with_parameters(w=w)
        expected = 5e-9 / np.sqrt(w * 0.5e-6)  # σ = A/√(W·L), L = 0.5 µm
        d = sample_parameters(sized, MonteCarlo(n=N, seed=4)).column("d")
        assert_mean(d, 0.0, expected)
        assert_sigma(d, expected)


def test_global_variation_is_shared_within_a_chip_and_independent_across_chips() -> None:
    chip_size = 10
    spec = stat_spec(
        {
            "e": {"global": {"distribution": "normal", "sigma": 0.3}},
            "a": {
                "global": {"distribution": "normal", "sigma": 0.3},
                "local": {"distribution": "normal", "sigma": 0.1},
            },
            "c": {
                "global": {"distribution": "lognormal", "relative": 0.2},
                "local": {"distribution": "lognormal", "relative": 0.1},
            },
        }
    )
    table = sample_parameters(spec, MonteCarlo(n=N, seed=5, chip_size=chip_size))
    chips = N // chip_size
    np.testing.assert_array_equal(table.chip, np.arange(N) // chip_size)
    np.testing.assert_array_equal(table.index, np.arange(N))

    e = table.column("e").reshape(chips, chip_size)
    assert np.all(e == e[:, :1])  # identical for every neuron of a chip
    per_chip = e[:, 0]
    assert len(np.unique(per_chip)) == chips  # a new draw for every chip
    assert_mean(per_chip, 0.0, 0.3)
    assert_sigma(per_chip, 0.3)
    assert_uncorrelated(per_chip[:-1], per_chip[1:])  # neighbouring chips are independent

    # a = 1 + global + local: the spread inside a chip is the local σ alone, the total is both
    a = table.column("a").reshape(chips, chip_size)
    within = a - a.mean(axis=1, keepdims=True)
    pooled = np.sqrt(np.sum(within**2) / (N - chips))
    assert abs(pooled - 0.1) <= 3 * 0.1 / np.sqrt(2 * (N - chips))
    chip_means = a.mean(axis=1)  # global + mean of chip_size local draws
    assert_sigma(chip_means, np.sqrt(0.3**2 + 0.1**2 / chip_size))
    assert_uncorrelated(chip_means, per_chip)  # a's global draw is not e's

    # global and local lognormal factors multiply: ln(c/3) has σ² = 0.2² + 0.1²
    log_c = np.log(table.column("c") / 3.0)
    chip_log = log_c.reshape(chips, chip_size).mean(axis=1)
    assert_sigma(chip_log, np.sqrt(0.2**2 + 0.1**2 / chip_size))
    assert_mean(chip_log, 0.0, np.sqrt(0.2**2 + 0.1**2 / chip_size))


def test_chip_size_one_makes_every_instance_its_own_die() -> None:
    spec = stat_spec({"e": {"global": {"distribution": "normal", "sigma": 0.3}}})
    e = sample_parameters(spec, MonteCarlo(n=N, seed=6)).column("e")
    assert len(np.unique(e)) == N
    assert_sigma(e, 0.3)


def test_corner_shifts_the_nominal_values() -> None:
    spec = stat_spec(
        {
            "a": {"local": {"distribution": "normal", "sigma": 0.1}},
            "d": {"local": {"distribution": "normal", "pelgrom": "5n", "area": ["w", "l"]}},
        },
        corners={"slow": {"a": 0.5, "d": "10m"}, "fast": {"a": -0.5}},
    )
    mc = MonteCarlo(n=N, seed=7)
    plain = sample_parameters(spec, mc)
    slow = sample_parameters(spec, MonteCarlo(n=N, seed=7, corner="slow"))
    fast = sample_parameters(spec, MonteCarlo(n=N, seed=7, corner="fast"))
    # the same draws, shifted by the corner's offsets
    np.testing.assert_allclose(slow.column("a") - plain.column("a"), 0.5, rtol=0, atol=1e-12)
    np.testing.assert_allclose(slow.column("d") - plain.column("d"), 0.01, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast.column("a") - plain.column("a"), -0.5, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(fast.column("d"), plain.column("d"))
    assert_mean(slow.column("a"), 1.5, 0.1)
    assert_sigma(slow.column("a"), 0.1)

    nominal = nominal_table(spec, "slow")
    assert nominal.values.shape == (1, len(spec.parameter_names))
    assert nominal.column("a")[0] == 1.5
    assert nominal.column("d")[0] == 0.01
    assert nominal.column("b")[0] == 2.0
    assert nominal_table(spec).column("a")[0] == 1.0


# --- reproducibility: sample i depends only on (seed, i) -------------------------------------

MIXED = {
    "a": {
        "global": {"distribution": "uniform", "sigma": 0.3},
        "local": {"distribution": "normal", "sigma": 0.1},
    },
    "c": {"local": {"distribution": "lognormal", "relative": 0.2}},
    "d": {"local": {"distribution": "normal", "pelgrom": "5n", "area": ["w", "l"]}},
}


def _equal_tables(parts: list[Any], whole: Any) -> None:
    np.testing.assert_array_equal(np.concatenate([p.values for p in parts]), whole.values)
    np.testing.assert_array_equal(np.concatenate([p.index for p in parts]), whole.index)
    np.testing.assert_array_equal(np.concatenate([p.chip for p in parts]), whole.chip)


@settings(max_examples=30, deadline=None)
@given(
    cuts=st.lists(st.integers(min_value=0, max_value=97), max_size=6),
    chip_size=st.integers(min_value=1, max_value=13),
)
def test_any_chunking_gives_the_identical_table(cuts: list[int], chip_size: int) -> None:
    spec = stat_spec(MIXED)
    mc = MonteCarlo(n=97, seed=11, chip_size=chip_size)
    whole = sample_parameters(spec, mc)
    bounds = [0, *sorted(cuts), 97]
    parts = [sample_parameters(spec, mc, start, stop) for start, stop in itertools.pairwise(bounds)]
    _equal_tables(parts, whole)


def test_sample_i_does_not_depend_on_n() -> None:
    spec = stat_spec(MIXED)
    small = sample_parameters(spec, MonteCarlo(n=40, seed=3, chip_size=7))
    large = sample_parameters(spec, MonteCarlo(n=400, seed=3, chip_size=7))
    np.testing.assert_array_equal(small.values, large.values[:40])
    middle = sample_parameters(spec, MonteCarlo(n=400, seed=3, chip_size=7), 123, 200)
    np.testing.assert_array_equal(middle.values, large.values[123:200])
    np.testing.assert_array_equal(middle.chip, np.arange(123, 200) // 7)


def test_seed_changes_every_draw() -> None:
    spec = stat_spec(MIXED)
    one = sample_parameters(spec, MonteCarlo(n=200, seed=1)).values
    two = sample_parameters(spec, MonteCarlo(n=200, seed=2)).values
    again = sample_parameters(spec, MonteCarlo(n=200, seed=1)).values
    np.testing.assert_array_equal(one, again)
    varied = [spec.parameter_names.index(name) for name in ("a", "c", "d")]
    assert np.all(one[:, varied] != two[:, varied])


def test_counter_based_draws_are_pure_functions_of_seed_stream_and_row() -> None:
    rows = np.arange(5000, dtype=np.int64)
    u = uniforms(9, "local/a", rows)
    assert np.all((u > 0) & (u < 1))
    assert_mean(u, 0.5, np.sqrt(1 / 12))
    shuffled = np.random.default_rng(0).permutation(rows)
    np.testing.assert_array_equal(uniforms(9, "local/a", shuffled), u[shuffled])
    assert not np.any(uniforms(9, "local/b", rows) == u)
    assert not np.any(uniforms(10, "local/a", rows) == u)
    z = standard_normals(9, "local/a", rows)
    assert_mean(z, 0.0, 1.0)
    assert_sigma(z, 1.0)


def test_range_outside_the_run_is_refused() -> None:
    spec = stat_spec(MIXED)
    mc = MonteCarlo(n=10)
    with pytest.raises(ValueError, match="outside"):
        sample_parameters(spec, mc, 5, 11)
    with pytest.raises(ValueError, match="outside"):
        sample_parameters(spec, mc, 6, 5)


# --- the hash behind every draw, the table's rows, the nominal row ----------------------------


def _splitmix64_reference(state: int) -> int:
    """SplitMix64's output for ``state`` (Steele, Lea & Flood 2014), in Python integers."""
    mask = (1 << 64) - 1
    z = (state + 0x9E3779B97F4A7C15) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return z ^ (z >> 31)


def test_the_draws_hash_is_splitmix64() -> None:
    """The mixing function is SplitMix64: its published first output from state 0 and the
    reference algorithm on states spread over the 64 bits, a scalar state too, without an
    overflow warning."""
    from circuitnn.neuron.variation import _splitmix

    assert int(_splitmix(np.array([0], dtype=np.uint64))[0]) == 0xE220A8397B1DCDAF
    states = [1, 12345, 2**32 + 7, 2**63, 2**64 - 1, 0x0123456789ABCDEF]
    mixed = _splitmix(np.array(states, dtype=np.uint64))
    assert [int(v) for v in mixed] == [_splitmix64_reference(s) for s in states]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # wrapping around 2**64 is the algorithm: no warning
        assert int(_splitmix(np.uint64(2**64 - 1))) == _splitmix64_reference(2**64 - 1)


def test_uniforms_are_the_hash_of_seed_stream_and_row_exactly() -> None:
    """Each draw is ((SplitMix64(SplitMix64(row ^ k) + k) >> 11) + ½)·2⁻⁵³, k the SplitMix64
    of the seed xor the stream name's SHA-256 prefix: exactly, since a family is cached by its
    seed (another draw for the same seed would be a stale cache)."""
    mask = (1 << 64) - 1
    rows = [0, 1, 7, 12345, 2**40 + 3]
    for seed, stream in [(0, "local/r1"), (2**62 + 5, "global/vth0")]:
        name = int.from_bytes(hashlib.sha256(stream.encode()).digest()[:8], "little")
        key = _splitmix64_reference(seed ^ name)
        expected = [
            ((_splitmix64_reference((_splitmix64_reference(r ^ key) + key) & mask) >> 11) + 0.5)
            * 2.0**-53
            for r in rows
        ]
        drawn = uniforms(seed, stream, np.array(rows, dtype=np.int64))
        assert drawn.dtype == np.float64
        assert drawn.tolist() == expected


def test_integer_nominal_values_are_varied_as_floats() -> None:
    """A spec whose nominal values are Python ints (a NeuronSpec made in code) samples float
    values: each draw varied, not truncated to an integer."""
    spec = stat_spec({"a": {"local": {"distribution": "normal", "sigma": 0.1}}})
    spec = dataclasses.replace(spec, parameters=dict.fromkeys(spec.parameters, 3))
    table = sample_parameters(spec, MonteCarlo(n=50, seed=1))
    assert table.values.dtype == np.float64
    varied = table.values[:, table.names.index("a")]
    assert np.all(varied != np.round(varied)) and abs(np.mean(varied) - 3) < 0.1


def test_monte_carlo_takes_its_whole_ranges_and_names_a_value_outside() -> None:
    """n from 1 to 100,000,000, seed from 0 to 2**63 - 1, chip_size from 1; a value just
    outside is refused with a message naming the field, the range and the value."""
    assert MonteCarlo(n=1).n == 1
    assert MonteCarlo(n=MAX_INSTANCES).n == MAX_INSTANCES
    assert MonteCarlo(n=1, seed=2**63 - 1).seed == 2**63 - 1
    assert MonteCarlo(n=1, chip_size=1).chip_size == 1
    for fields, message in [
        ({"n": 0}, "MonteCarlo.n must be from 1 to 100,000,000 instances, got 0"),
        (
            {"n": MAX_INSTANCES + 1},
            "MonteCarlo.n must be from 1 to 100,000,000 instances, got 100000001",
        ),
        ({"n": 1, "seed": -1}, "MonteCarlo.seed must be in [0, 2**63), got -1"),
        ({"n": 1, "seed": 2**63}, f"MonteCarlo.seed must be in [0, 2**63), got {2**63}"),
        ({"n": 1, "chip_size": 0}, "MonteCarlo.chip_size must be at least 1, got 0"),
    ]:
        with pytest.raises(ConfigError) as error:
            MonteCarlo(**fields)
        assert str(error.value) == message


def test_rows_keep_values_indices_and_chips_and_the_nominal_row_is_no_instance() -> None:
    """A sub-table holds the selected rows' values, instance indices and chips (index // chip
    size); the nominal table's one row has index and chip −1, outside every run."""
    spec = stat_spec({"a": {"local": {"distribution": "normal", "sigma": 0.1}}})
    table = sample_parameters(spec, MonteCarlo(n=6, seed=1, chip_size=2))
    part = table.rows(slice(2, 5))
    np.testing.assert_array_equal(part.values, table.values[2:5])
    np.testing.assert_array_equal(part.index, [2, 3, 4])
    np.testing.assert_array_equal(part.chip, [1, 1, 2])
    picked = table.rows(np.array([5, 0]))
    np.testing.assert_array_equal(picked.chip, [2, 0])
    nominal = nominal_table(spec)
    np.testing.assert_array_equal(nominal.index, [-1])
    np.testing.assert_array_equal(nominal.chip, [-1])
