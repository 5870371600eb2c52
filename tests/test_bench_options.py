"""The options every bench adds (``noopiter``) and the AC run saving only the outputs are speed
settings: each must give the very numbers of the bench without it (bit for bit, real ngspice).

The oracle is the same netlist with the option line (and the AC save list) taken out, run in a
fresh ngspice: a change of ngspice's operating-point method that moved a solution, or a save
list that dropped or changed a vector, fails here.
"""

from __future__ import annotations

import numpy as np
import pytest

import circuitnn.spice.benches
from circuitnn.extract.dc_chunk import simulate_chunk
from circuitnn.extract.operating_point import branch_values
from circuitnn.extract.pipeline import family_key
from circuitnn.extract.spectra import instance_psd
from circuitnn.neuron.builtin import get_neuron
from circuitnn.neuron.variation import MonteCarlo, sample_parameters
from circuitnn.spice import get_engine
from circuitnn.spice.analyses import NoiseAnalysis
from circuitnn.spice.bench_results import output_signals
from circuitnn.spice.benches import NOOPITER, bench_options, render_dc_bench, render_noise_bench
from circuitnn.spice.engines import run_script

N = 12
ANALYSIS = NoiseAnalysis(bias_points=3, fmin=1.0, fmax=1e6, points_per_decade=3, bandwidth=1e5)


def _without_options(text: str) -> str:
    """The netlist without the bench's own option cards and control-mode save lists."""
    cards = {f".options {option}" for option in bench_options(get_neuron("mos_diffpair_level1"))}
    kept = [
        line for line in text.splitlines() if line not in cards and not line.startswith("save ")
    ]
    return "\n".join(kept) + "\n"


@pytest.mark.parametrize("neuron", ["mos_diffpair_level1", "mos_diffpair"])
def test_dc_bench_options_give_identical_curves(neuron: str) -> None:
    spec = get_neuron(neuron)
    table = sample_parameters(spec, MonteCarlo(n=N, seed=3), 0, N)
    bench = render_dc_bench(spec, table)
    assert f".options {NOOPITER}" in bench.text.splitlines()
    engine = get_engine("subprocess")
    fast = engine.run(bench.text, bench.vectors, spec.sweep.points, 60.0)
    plain = engine.run(_without_options(bench.text), bench.vectors, spec.sweep.points, 60.0)
    for name in bench.vectors:
        np.testing.assert_array_equal(fast[name], plain[name], name)


def test_noise_bench_options_give_identical_spectra_and_gain() -> None:
    spec = get_neuron("mos_diffpair_level1")
    table = sample_parameters(spec, MonteCarlo(n=N, seed=3), 0, N)
    biases = ANALYSIS.biases(spec)
    curves = simulate_chunk(spec, table).curves
    held = branch_values(spec.sweep.grid(), curves, biases, "up")[0]
    bench, sources, files = render_noise_bench(spec, table, ANALYSIS, biases, held)
    assert any(line.startswith("save ") for line in bench.text.splitlines())
    count = len(biases)
    fast = run_script(bench.text, files, 60.0, "fast", sources, bench.includes, count)
    plain_sources = {name: _without_options(text) for name, text in sources.items()}
    plain = run_script(_without_options(bench.text), files, 60.0, "plain", plain_sources, (), count)
    noise_file, ac_file, op_file = files
    for j in range(count):
        a, b = fast[noise_file][j].vectors, plain[noise_file][j].vectors
        assert sorted(a) == sorted(b)  # no device's noise lost
        np.testing.assert_array_equal(instance_psd(a, N), instance_psd(b, N))
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], name)
        for raw in (ac_file, op_file):
            np.testing.assert_array_equal(
                output_signals(spec, bench, fast[raw][j].vectors),
                output_signals(spec, bench, plain[raw][j].vectors),
            )
        assert len(fast[ac_file][0].vectors) < len(plain[ac_file][0].vectors)  # outputs only


def test_bench_options_are_in_the_family_key(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = get_neuron("mos_diffpair_level1")
    off = spec.with_simulator(options={"gminsteps": 0})
    assert bench_options(spec) == (NOOPITER,)
    assert bench_options(off) == ()  # gmin stepping off: the direct attempt stays
    assert NOOPITER not in render_dc_bench(off, sample_parameters(off, MonteCarlo(n=1), 0, 1)).text
    mc = MonteCarlo(n=10)
    before = family_key(spec, mc)
    monkeypatch.setattr(circuitnn.spice.benches, "bench_options", lambda spec: ())
    assert family_key(spec, mc) != before  # a bench without the option is another family
