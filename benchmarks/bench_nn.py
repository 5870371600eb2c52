#!/usr/bin/env python
"""PyTorch-side benchmark for circuitnn.

One command, every ratio measured against a baseline timed in the same run::

    .venv/bin/python benchmarks/bench_nn.py                 # threads 1 and 2, 7 rounds
    .venv/bin/python benchmarks/bench_nn.py --threads 2     # one thread setting
    .venv/bin/python benchmarks/bench_nn.py --cases 1,2     # skip the training epochs (3)
    .venv/bin/python benchmarks/bench_nn.py --quick         # smoke run (a few seconds)
    .venv/bin/python benchmarks/bench_nn.py --json out.json # also save every number

(1) forward + backward of Linear(512, 512) + CircuitActivation (512 neurons, each its own curve
    sampled at 256 grid points) at batch 256, against Linear(512, 512) + tanh: target ≤ 1.1×;
(2) evaluating 100 noise draws, vectorized (``circuitnn.evaluate``'s draw-dimension path:
    accuracy and cross-entropy of every draw), against 100 clean forward passes of the same
    3-layer MLP (512 → 512 → 512 → 10, CircuitActivation + additive noise σ = 0.1 after both hidden
    layers) on the same batch of 256: target ≤ 1.3×;
(3) one training epoch under adversarial weight perturbation (ζ = 0.1, 3 attack steps) against
    one clean epoch of the same MLP on 4096 samples, batch 128: reported.

``torch.set_num_threads`` is set once per thread setting and held for every variant; the variants
run in interleaved rounds (so a slow spell of the machine hits all alike); the best and the median
round of each are printed, with the ratios of both to the baseline's best and median round (the
best rounds' ratio decides a target). Case (1) takes 5 short samples (6 calls) a round, so that a
quiet moment of a busy machine shows in its best. The load average is printed at the start and
end of every thread setting: on a shared machine a second torch thread often waits for a core,
which the 2-thread numbers then measure. Exit code 0 whenever the benchmark ran; ``--strict``
exits 1 if a target fails.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from circuitnn.evaluate.montecarlo import MAX_ROWS, evaluate_draws  # noqa: E402
from circuitnn.nn import (  # noqa: E402
    CircuitActivation,
    CircuitSpec,
    NoiseSpec,
    build_mlp,
    draws,
    kernel,
    mlp_spec,
    quiet,
    synthetic_family,
)
from circuitnn.train import AdversarialWeights, Clean, Regime, Task  # noqa: E402
from circuitnn.train.data import batches  # noqa: E402

WIDTH, BATCH, POINTS, DRAWS = 512, 256, 256, 100
TARGETS = {"activation": 1.1, "draws": 1.3}


def timed(function: Callable[[], object], repeats: int) -> float:
    """Seconds per call of ``function`` over ``repeats`` calls (after the caller's warm-up)."""
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - started) / repeats


def activation_case(family: object, repeats: int) -> dict[str, Callable[[], object]]:
    """(1): Linear + CircuitActivation vs Linear + tanh, forward and backward."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH, WIDTH, generator=generator)
    grad = torch.randn(BATCH, WIDTH, generator=generator)
    linear = nn.Linear(WIDTH, WIDTH)
    circuit = CircuitActivation(family, WIDTH, generator=0)
    z = torch.randn(BATCH, WIDTH, generator=generator, requires_grad=True)

    def step(activation: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], None]:
        def run() -> None:
            linear.zero_grad(set_to_none=True)
            activation(linear(x)).backward(grad)

        return run

    def alone(activation: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], None]:
        def run() -> None:
            z.grad = None
            activation(z).backward(grad)

        return run

    cases = {
        "linear+circuit": step(circuit),
        "linear+tanh": step(torch.tanh),
        "circuit alone": alone(circuit),
        "tanh alone": alone(torch.tanh),
    }
    measured = {name: (lambda f=f: timed(f, repeats)) for name, f in cases.items()}
    if kernel.backend() == "compiled":  # the same layer on torch's operations, for comparison
        for name in ("linear+circuit", "circuit alone"):
            measured[f"{name}, torch lookup"] = lambda f=cases[name]: torch_lookup(f, repeats)
    return measured


def torch_lookup(function: Callable[[], object], repeats: int) -> float:
    """:func:`timed` with the layers' lookup on torch's operations (``CIRCUITNN_LOOKUP=torch``)."""
    os.environ["CIRCUITNN_LOOKUP"] = "torch"
    try:
        return timed(function, repeats)
    finally:
        del os.environ["CIRCUITNN_LOOKUP"]


def mlp(family: object, noise: bool) -> nn.Module:
    spec = mlp_spec(
        WIDTH,
        (WIDTH, WIDTH),
        10,
        activation=CircuitSpec(family),
        noise=NoiseSpec("additive", 0.1) if noise else None,
    )
    return build_mlp(spec, seed=0)


def draws_case(family: object, max_rows: int) -> dict[str, Callable[[], float]]:
    """(2): 100 vectorized noise draws vs 100 clean forward passes."""
    model = mlp(family, noise=True).eval()
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(BATCH, WIDTH, generator=generator)
    y = torch.randint(0, 10, (BATCH,), generator=generator)
    task = Task("classification")

    @torch.no_grad()
    def clean() -> None:
        with quiet(model):
            for _ in range(DRAWS):
                model(x)

    @torch.no_grad()
    def vectorized() -> None:
        evaluate_draws(model, x, y, task, DRAWS, max_rows, None)

    @torch.no_grad()
    def repeated() -> None:
        rows = max(1, max_rows // DRAWS)
        for start in range(0, BATCH, rows):
            chunk = x[start : start + rows]
            with draws(DRAWS):
                model(chunk.repeat(DRAWS, 1))

    @torch.no_grad()
    def loop() -> None:
        for _ in range(DRAWS):
            model(x)

    cases = {
        "100 clean passes": clean,
        "100 draws vectorized": vectorized,
        "100 draws vectorized, input repeated": repeated,
        "100 noisy passes, Python loop": loop,
    }
    return {name: (lambda f=f: timed(f, 1)) for name, f in cases.items()}


def training_case(family: object, samples: int) -> dict[str, Callable[[], float]]:
    """(3): one AWP epoch vs one clean epoch (the inner loop of circuitnn.train.train)."""
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(samples, WIDTH, generator=generator)
    teacher = torch.randn(WIDTH, 10, generator=generator)
    y = (x @ teacher).argmax(dim=1)
    task = Task("classification")

    def epoch(regime: Regime) -> Callable[[], None]:
        model = mlp(family, noise=False).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        order = torch.Generator().manual_seed(3)
        draws_generator = torch.Generator().manual_seed(4)

        def run() -> None:
            for xb, yb in batches(x, y, 128, order):
                optimizer.zero_grad(set_to_none=True)
                regime.loss(model, xb, yb, task, draws_generator).backward()
                optimizer.step()

        return run

    cases = {
        "clean epoch": epoch(Clean()),
        "AWP epoch (ζ=0.1, 3 steps)": epoch(AdversarialWeights(zeta=0.1, beta=0.5, steps=3)),
    }
    return {name: (lambda f=f: timed(f, 1)) for name, f in cases.items()}


def measure(cases: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Interleaved rounds: every case once per round, after one warm-up call each."""
    for run in cases.values():
        run()
    seconds: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, run in cases.items():
            seconds[name].append(run())
    return seconds


def load() -> float:
    """The machine's 1-minute load average (other processes compete for the same cores)."""
    return os.getloadavg()[0]


class Table:
    """Prints one group of cases: best and median seconds, and both ratios to the baseline."""

    def __init__(self, seconds: dict[str, list[float]], baseline: str) -> None:
        self.seconds = seconds
        self.baseline = baseline

    def best(self, name: str) -> float:
        return min(self.seconds[name])

    def median(self, name: str) -> float:
        return statistics.median(self.seconds[name])

    def ratio(self, name: str) -> tuple[float, float]:
        """(best / best of the baseline, median / median of the baseline)."""
        return (
            self.best(name) / self.best(self.baseline),
            self.median(name) / self.median(self.baseline),
        )

    def line(self, label: str, name: str, target: float | None = None, info: bool = False) -> str:
        best, median = self.ratio(name)
        verdict = "info" if info else ""
        if target is not None:
            verdict = "PASS" if best <= target else "FAIL"
        text = (
            f"  {label:<42} {self.best(name) * 1e3:>10.2f} {self.median(name) * 1e3:>10.2f}"
            f"  {median:>6.2f}× {best:>6.2f}×  {'' if target is None else f'≤{target}×':>6}"
            f"  {verdict}"
        )
        return text.rstrip()


def report(threads: int, rounds: int, quick: bool, groups: set[int]) -> dict[str, Any]:
    torch.set_num_threads(threads)
    family = synthetic_family("tanh", n=2000, seed=0, points=POINTS, gain_spread=0.2)
    repeats = 2 if quick else 6  # calls per sample; case (1) takes 5 samples a round
    samples = 512 if quick else 4096
    results: dict[str, Any] = {"threads": threads, "load_start": load()}
    print(f"\ntorch threads = {threads} (load average {load():.2f} at start)")
    print(
        f"  {'case (ms: best and median round)':<42} {'best':>10} {'median':>10}"
        f"  {'ratio: median':>13} {'best':>5}  {'target':>6}"
    )
    spreads: dict[str, list[float]] = {}

    if 1 in groups:
        table = Table(measure(activation_case(family, repeats), 5 * rounds), "linear+tanh")
        ratio = table.ratio("linear+circuit")[0]
        verdict = "PASS" if ratio <= TARGETS["activation"] else "FAIL"
        print("(1) Linear(512,512)+activation, fwd+bwd, batch 256 (per call)")
        print(table.line("Linear + tanh (baseline)", "linear+tanh"))
        print(table.line("Linear + CircuitActivation", "linear+circuit", TARGETS["activation"]))
        if "linear+circuit, torch lookup" in table.seconds:
            print(table.line("  the same, torch lookup", "linear+circuit, torch lookup", info=True))
        table.baseline = "tanh alone"
        print(table.line("  activation alone: tanh", "tanh alone", info=True))
        print(table.line("  activation alone: CircuitActivation", "circuit alone", info=True))
        if "circuit alone, torch lookup" in table.seconds:
            name = "circuit alone, torch lookup"
            print(table.line("    the same, torch lookup", name, info=True))
        results["activation"] = {"seconds": table.seconds, "ratio": ratio, "verdict": verdict}
        spreads.update(table.seconds)

    if 2 in groups:
        table = Table(measure(draws_case(family, max_rows=MAX_ROWS), rounds), "100 clean passes")
        ratio = table.ratio("100 draws vectorized")[0]
        verdict = "PASS" if ratio <= TARGETS["draws"] else "FAIL"
        print("(2) 3-layer MLP 512-512-512-10, batch 256, 100 draws of additive noise (per 100)")
        print(table.line("100 clean forward passes (baseline)", "100 clean passes"))
        print(
            table.line(
                "100 draws vectorized (monte_carlo path)", "100 draws vectorized", TARGETS["draws"]
            )
        )
        for name in ("100 draws vectorized, input repeated", "100 noisy passes, Python loop"):
            print(table.line(f"  {name}", name, info=True))
        results["draws"] = {"seconds": table.seconds, "ratio": ratio, "verdict": verdict}
        spreads.update(table.seconds)

    if 3 in groups:
        table = Table(measure(training_case(family, samples), max(2, rounds // 2)), "clean epoch")
        print(f"(3) training epoch, same MLP, {samples} samples, batch 128")
        print(table.line("clean epoch (baseline)", "clean epoch"))
        print(table.line("AWP epoch (ζ=0.1, 3 steps)", "AWP epoch (ζ=0.1, 3 steps)", info=True))
        ratio = table.ratio("AWP epoch (ζ=0.1, 3 steps)")[0]
        results["training"] = {"seconds": table.seconds, "ratio": ratio}
        spreads.update(table.seconds)

    print(
        "  spread (worst/best round):",
        ", ".join(f"{name} {max(values) / min(values):.2f}" for name, values in spreads.items()),
    )
    results["load_end"] = load()
    print(f"  load average {results['load_end']:.2f} at end of torch threads = {threads}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", default="1,2", help="torch thread counts, e.g. 1,2")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (best is kept)")
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer repeats")
    parser.add_argument("--json", type=Path, help="also write every number to this file")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target fails")
    parser.add_argument("--cases", default="1,2,3", help="which cases to run, e.g. 1,2")
    args = parser.parse_args(argv)
    threads = [int(value) for value in args.threads.split(",") if value.strip()]
    groups = {int(value) for value in args.cases.split(",") if value.strip()}
    rounds = 2 if args.quick else args.rounds
    started = time.perf_counter()
    print("circuitnn PyTorch benchmark")
    print(
        f"  torch {torch.__version__}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
        f"load average {load():.2f} at start; {rounds} interleaved rounds "
        "(the ratio of the best rounds decides; that of the medians before it)"
    )
    reason = kernel.why_not()
    print(f"  CircuitActivation's lookup: {kernel.backend()}" + (f" ({reason})" if reason else ""))
    everything = [report(count, rounds, args.quick, groups) for count in threads]
    failed = [
        f"{key} @ {result['threads']} threads"
        for result in everything
        for key in ("activation", "draws")
        if key in result and result[key]["verdict"] == "FAIL"
    ]
    print(
        f"\ntargets: {'all passed' if not failed else 'FAILED: ' + ', '.join(failed)}; "
        f"load average {load():.2f} at end; {time.perf_counter() - started:.0f} s"
    )
    if args.json:
        args.json.write_text(json.dumps(everything, indent=2, default=float) + "\n")
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
