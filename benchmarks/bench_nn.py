#!/usr/bin/env python
"""PyTorch-side benchmark for circuitnn.

One command, every ratio measured against a baseline timed in the same run::

    .venv/bin/python benchmarks/bench_nn.py                 # threads 1 and 2, 7 rounds
    .venv/bin/python benchmarks/bench_nn.py --threads 2     # one thread setting
    .venv/bin/python benchmarks/bench_nn.py --quick         # smoke run (a few seconds)
    .venv/bin/python benchmarks/bench_nn.py --json out.json # also save every number

(1) forward + backward of Linear(512, 512) + CircuitActivation (512 neurons, each its own curve
    sampled at 256 grid points) at batch 256, against Linear(512, 512) + tanh: target ≤ 1.5×;
(2) evaluating 100 noise draws, vectorized (``circuitnn.evaluate``'s draw-dimension path:
    accuracy and cross-entropy of every draw), against 100 clean forward passes of the same
    3-layer MLP (512 → 512 → 512 → 10, CircuitActivation + additive noise σ = 0.1 after both hidden
    layers) on the same batch of 256: target ≤ 1.3×;
(3) one training epoch under adversarial weight perturbation (ζ = 0.1, 3 attack steps) against
    one clean epoch of the same MLP on 4096 samples, batch 128: reported.

``torch.set_num_threads`` is set once per thread setting and held for every variant; the variants
run in interleaved rounds (so a slow spell of the machine hits all alike) and the best round of
each is reported. Exit code 0 whenever the benchmark ran; ``--strict`` exits 1 if a target fails.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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
    mlp_spec,
    quiet,
    synthetic_family,
)
from circuitnn.train import AdversarialWeights, Clean, Regime, Task  # noqa: E402
from circuitnn.train.data import batches  # noqa: E402

WIDTH, BATCH, POINTS, DRAWS = 512, 256, 256, 100
TARGETS = {"activation": 1.5, "draws": 1.3}


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
    return {name: (lambda f=f: timed(f, repeats)) for name, f in cases.items()}


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


def line(name: str, seconds: float, ratio: str, target: str, verdict: str) -> str:
    text = f"  {name:<44} {seconds * 1e3:>10.2f} ms  {ratio:>8}  {target:>8}  {verdict}"
    return text.rstrip()


def report(threads: int, rounds: int, quick: bool) -> dict[str, Any]:
    torch.set_num_threads(threads)
    family = synthetic_family("tanh", n=2000, seed=0, points=POINTS, gain_spread=0.2)
    repeats = 5 if quick else 30
    samples = 512 if quick else 4096
    results: dict[str, Any] = {"threads": threads}
    print(f"\ntorch threads = {threads}")
    print(f"  {'case':<44} {'best':>13}  {'ratio':>8}  {'target':>8}")

    activation = measure(activation_case(family, repeats), rounds)
    best = {name: min(values) for name, values in activation.items()}
    ratio = best["linear+circuit"] / best["linear+tanh"]
    verdict = "PASS" if ratio <= TARGETS["activation"] else "FAIL"
    print("(1) Linear(512,512)+activation, fwd+bwd, batch 256 (per call)")
    print(line("Linear + tanh (baseline)", best["linear+tanh"], "1.00×", "", ""))
    print(
        line(
            "Linear + CircuitActivation",
            best["linear+circuit"],
            f"{ratio:.2f}×",
            f"≤{TARGETS['activation']}×",
            verdict,
        )
    )
    alone = best["circuit alone"] / best["tanh alone"]
    print(line("  activation alone: tanh", best["tanh alone"], "1.00×", "", "info"))
    print(
        line(
            "  activation alone: CircuitActivation",
            best["circuit alone"],
            f"{alone:.2f}×",
            "",
            "info",
        )
    )
    results["activation"] = {"seconds": activation, "ratio": ratio, "verdict": verdict}

    evaluation = measure(draws_case(family, max_rows=MAX_ROWS), rounds)
    best = {name: min(values) for name, values in evaluation.items()}
    base = best["100 clean passes"]
    ratio = best["100 draws vectorized"] / base
    verdict = "PASS" if ratio <= TARGETS["draws"] else "FAIL"
    print("(2) 3-layer MLP 512-512-512-10, batch 256, 100 draws of additive noise (per 100)")
    print(line("100 clean forward passes (baseline)", base, "1.00×", "", ""))
    print(
        line(
            "100 draws vectorized (monte_carlo path)",
            best["100 draws vectorized"],
            f"{ratio:.2f}×",
            f"≤{TARGETS['draws']}×",
            verdict,
        )
    )
    for name in ("100 draws vectorized, input repeated", "100 noisy passes, Python loop"):
        print(line(f"  {name}", best[name], f"{best[name] / base:.2f}×", "", "info"))
    results["draws"] = {"seconds": evaluation, "ratio": ratio, "verdict": verdict}

    training = measure(training_case(family, samples), max(2, rounds // 2))
    best = {name: min(values) for name, values in training.items()}
    ratio = best["AWP epoch (ζ=0.1, 3 steps)"] / best["clean epoch"]
    print(f"(3) training epoch, same MLP, {samples} samples, batch 128")
    print(line("clean epoch (baseline)", best["clean epoch"], "1.00×", "", ""))
    print(
        line(
            "AWP epoch (ζ=0.1, 3 steps)",
            best["AWP epoch (ζ=0.1, 3 steps)"],
            f"{ratio:.2f}×",
            "report",
            "info",
        )
    )
    results["training"] = {"seconds": training, "ratio": ratio}

    print(
        "  spread (worst/best round):",
        ", ".join(
            f"{name} {max(values) / min(values):.2f}"
            for group in (activation, evaluation, training)
            for name, values in group.items()
        ),
    )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", default="1,2", help="torch thread counts, e.g. 1,2")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (best is kept)")
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer repeats")
    parser.add_argument("--json", type=Path, help="also write every number to this file")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target fails")
    args = parser.parse_args(argv)
    threads = [int(value) for value in args.threads.split(",") if value.strip()]
    rounds = 2 if args.quick else args.rounds
    started = time.perf_counter()
    print("circuitnn PyTorch benchmark")
    print(
        f"  torch {torch.__version__}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
        f"load average {os.getloadavg()[0]:.2f} at start; best of {rounds} rounds"
    )
    everything = [report(count, rounds, args.quick) for count in threads]
    failed = [
        f"{key} @ {result['threads']} threads"
        for result in everything
        for key in ("activation", "draws")
        if result[key]["verdict"] == "FAIL"
    ]
    print(
        f"\ntargets: {'all passed' if not failed else 'FAILED: ' + ', '.join(failed)}; "
        f"load average {os.getloadavg()[0]:.2f} at end; {time.perf_counter() - started:.0f} s"
    )
    if args.json:
        args.json.write_text(json.dumps(everything, indent=2, default=float) + "\n")
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
