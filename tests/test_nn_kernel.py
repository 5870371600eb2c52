"""The compiled CPU lookup (circuitnn/nn/lookup_kernel.cpp) against torch's own path: the same
values, gradients and gradients of gradients bit for bit, on the inputs where the row computation
is delicate (NaN, ±inf, 1e30, grid points, far outside), in every shape the layers use, at 1 and 2
threads; where it does not apply the torch path runs; its refusals, its build errors and the
backend it reports."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from circuitnn.cli import main as cli_main
from circuitnn.errors import ConfigError
from circuitnn.nn import CircuitActivation, kernel, synthetic_family
from circuitnn.nn.interp import lookup, neuron_offsets, segment_table


@pytest.fixture(scope="module")
def built() -> Path:
    """The kernel, built here if the setup did not build it (a missing compiler fails here)."""
    path = kernel.build()
    assert kernel.available(), kernel.why_not()
    return path


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bit for bit, NaN where NaN (a signed zero compares equal to its negative)."""
    return torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(), b.nan_to_num())


def _both(monkeypatch, x, table, offsets, points, scale, shift, upstream):
    """(value, gradient) from the compiled kernel and from torch's operations; the gradient of
    the gradient (in the upstream gradient, against a second upstream) must agree too."""
    results = []
    second_upstream = torch.randn(x.shape, generator=torch.Generator().manual_seed(2))
    seconds = []
    for chosen in ("compiled", "torch"):
        monkeypatch.setenv("CIRCUITNN_LOOKUP", chosen)
        assert kernel.backend() == chosen
        leaf = x.detach().clone().requires_grad_(True)
        y = lookup(leaf, table, offsets, points, scale, shift)
        outer = upstream.detach().clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(y, leaf, outer, create_graph=True)
        (second,) = torch.autograd.grad(grad, outer, second_upstream)
        with torch.no_grad():
            assert _same(lookup(leaf, table, offsets, points, scale, shift), y.detach())
        results.append((y.detach(), grad.detach()))
        seconds.append(second)
    assert _same(*seconds)
    return results


def _case(seed: int, shape: tuple[int, ...], batch: tuple[int, ...], points: int = 17):
    """Random curves for the neurons of ``shape``, and float32 inputs of shape ``batch + shape``
    whose fractional grid index covers the grid, 3 steps beyond it, grid points (to ±3 ulp), ±40
    steps out, and NaN, ±inf, ±1e30."""
    rng = np.random.default_rng(seed)
    neurons = int(np.prod(shape))
    values = rng.standard_normal((neurons, points)).cumsum(axis=1)
    scale, shift = float(rng.uniform(2.0, 9.0)), float(rng.uniform(-3.0, points + 3.0))
    t = rng.uniform(-3.0, points + 2.0, batch + shape).reshape(-1)
    count = len(t)
    t[: count // 5] = np.round(t[: count // 5])
    t[count // 5 : count // 3] = rng.choice([-40.0, points + 40.0], count // 3 - count // 5)
    x = ((t - shift) / scale).astype(np.float32)
    # the grid points' inputs and their float32 neighbours (±3 ulp): rows that one rounding of
    # t = x·scale + shift + 1 more or less would change
    on_grid = x[: count // 5]
    steps = np.resize(np.arange(-3, 4, dtype=np.int32), len(on_grid))
    x[: count // 5] = (on_grid.view(np.int32) + steps).view(np.float32)
    specials = np.array([np.nan, np.inf, -np.inf, 1e30, -1e30], dtype=np.float32)
    x[-len(specials) :] = specials[: min(len(specials), count)]
    x = torch.from_numpy(x.reshape(batch + shape))
    table = segment_table(torch.as_tensor(values), scale, shift, "linear", torch.float32)
    return x, table, neuron_offsets(shape, points), points, scale, shift


@pytest.mark.parametrize(
    ("shape", "batch"),
    [((9,), (400,)), ((3, 4, 5), (6,)), ((517,), (130,)), ((9,), ()), ((9,), (0,)), ((1,), (7,))],
    ids=["mlp", "per position", "past the grain", "no batch", "empty batch", "one neuron"],
)
@pytest.mark.parametrize("extrapolation", ["linear", "clamp"])
def test_kernel_equals_torch_bit_for_bit(
    built, monkeypatch, torch_threads, shape, batch, extrapolation
):
    x, table, offsets, points, scale, shift = _case(len(batch) + len(shape), shape, batch)
    if extrapolation == "clamp":
        values = torch.randn(int(np.prod(shape)), points, dtype=torch.float64).cumsum(1)
        table = segment_table(values, scale, shift, "clamp", torch.float32)
    assert kernel.lookup(x, table, offsets, points, scale, shift) is not None
    upstream = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    (y, grad), (y_torch, grad_torch) = _both(
        monkeypatch, x, table, offsets, points, scale, shift, upstream
    )
    assert y.shape == x.shape
    assert _same(y, y_torch) and _same(grad, grad_torch)


def test_a_transposed_input_and_a_layer_give_the_torch_path_s_results(built, monkeypatch):
    x, table, offsets, points, scale, shift = _case(5, (8,), (50,))
    transposed = x.T.contiguous().T
    assert not transposed.is_contiguous()
    upstream = torch.randn(x.shape)
    (y, grad), (y_torch, grad_torch) = _both(
        monkeypatch, transposed, table, offsets, points, scale, shift, upstream
    )
    assert _same(y, y_torch) and _same(grad, grad_torch)
    family = synthetic_family("tanh", n=40, seed=3, points=33)
    layer = CircuitActivation(family, (4, 2, 2), generator=1)
    inputs = torch.randn(3, 4, 2, 2)
    outputs = {}
    for chosen in ("compiled", "torch"):
        monkeypatch.setenv("CIRCUITNN_LOOKUP", chosen)
        leaf = inputs.clone().requires_grad_(True)
        out = layer(leaf)
        out.backward(torch.ones_like(out))
        outputs[chosen] = (out.detach(), leaf.grad)
    assert all(torch.equal(a, b) for a, b in zip(*outputs.values(), strict=True))


def test_the_kernel_is_not_used_where_it_does_not_apply(built):
    x, table, offsets, points, scale, shift = _case(6, (3, 1, 1), (2,))
    wide_x = torch.zeros(2, 3, 4, 5)  # per-channel offsets broadcast over H, W
    cases = {
        "float64 input": (x.double(), table, offsets),
        "a float64 table": (x, table.double(), offsets),
        "no offsets (one shared curve)": (x, table, None),
        "broadcast offsets": (wide_x, table, offsets),
        "int64 offsets": (x, table, offsets.long()),
        "offsets on the meta device": (x, table, offsets.to("meta")),
    }
    for name, (inputs, tables, rows) in cases.items():
        assert kernel.lookup(inputs, tables, rows, points, scale, shift) is None, name
    assert kernel.lookup(x, table, offsets, points, scale, shift) is not None
    shared = segment_table(torch.randn(1, points).cumsum(1), scale, shift, "linear", torch.float32)
    y = lookup(wide_x, table, offsets, points, scale, shift)  # the torch path
    assert y.shape == wide_x.shape
    assert lookup(x, shared, None, points, scale, shift).shape == x.shape


def test_the_kernel_refuses_offsets_outside_its_table_and_other_inputs(built):
    x, table, offsets, points, scale, shift = _case(7, (4,), (3,))
    op = torch.ops.circuitnn.lookup
    rows_message = "the table must be a contiguous float32 tensor of (intercept, slope) rows"
    refusals = {
        "the offsets reach outside the table": (x, table, offsets + 1),
        "x must be float32": (x.double(), table, offsets),
        "offsets must be int32": (x, table, offsets.long()),
        "x's size must be a multiple of the offsets' (4)": (x[:, :3].contiguous(), table, offsets),
        rows_message: (x, table.view(torch.float64), offsets),
        f"{rows_message} ": (x, table.T, offsets),
        f"{rows_message}  ": (x, table.view(-1), offsets),
        "CPU tensors only": (x, table.to("meta"), offsets),
    }
    for message, (inputs, tables, rows) in refusals.items():
        with pytest.raises(RuntimeError, match=re.escape(f"lookup: {message.strip()}")):
            op(inputs, tables, rows, points, scale, shift)
    with pytest.raises(RuntimeError, match="lookup: points must be at least 1"):
        op(x, table, offsets, 0, scale, shift)


def test_backend_says_which_lookup_runs_and_why(built, monkeypatch, tmp_path, capsys):
    assert kernel.backend() == "compiled" and kernel.why_not() == ""
    assert cli_main(["kernel", "status"]) == 0
    assert capsys.readouterr().out == "lookup backend: compiled\n"
    monkeypatch.setenv("CIRCUITNN_LOOKUP", "torch")
    assert (kernel.backend(), kernel.why_not()) == ("torch", "CIRCUITNN_LOOKUP=torch")
    monkeypatch.delenv("CIRCUITNN_LOOKUP")
    monkeypatch.setenv("CIRCUITNN_KERNEL_DIR", str(tmp_path / "empty"))
    monkeypatch.setattr(kernel, "_state", {})
    missing = tmp_path / "empty" / kernel.library_path().name
    assert kernel.library_path() == missing
    assert kernel.backend() == "torch"
    assert kernel.why_not() == f"is not built ({missing} missing)"
    monkeypatch.setenv("CIRCUITNN_LOOKUP", "compiled")
    with pytest.raises(ConfigError) as refused:
        kernel.backend()
    assert str(refused.value) == (
        f"CIRCUITNN_LOOKUP=compiled, but the lookup kernel is not built ({missing} missing)"
    )
    monkeypatch.setenv("CIRCUITNN_LOOKUP", "fast")
    with pytest.raises(
        ConfigError, match=r"^CIRCUITNN_LOOKUP must be 'compiled' or 'torch', got 'fast'$"
    ):
        kernel.why_not()
    monkeypatch.delenv("CIRCUITNN_LOOKUP")
    missing.parent.mkdir()
    missing.write_bytes(b"not a library")
    monkeypatch.setattr(kernel, "_state", {})
    assert kernel.backend() == "torch" and kernel.why_not().startswith(
        f"does not load ({missing}: "
    )


def test_a_failed_build_names_the_compiler_and_leaves_nothing(monkeypatch, tmp_path, capsys):
    """No compiler, one that fails silently, and one that fails with a message (its last three
    lines are quoted): each a ConfigError, and no file is left in the kernel folder."""
    monkeypatch.setenv("CIRCUITNN_KERNEL_DIR", str(tmp_path))
    monkeypatch.setattr(kernel, "_state", {})
    missing = tmp_path / "no-such-compiler"
    monkeypatch.setenv("CXX", str(missing))
    with pytest.raises(ConfigError) as refused:
        kernel.build()
    assert str(refused.value).startswith(
        f"cannot build the lookup kernel: no C++ compiler '{missing}' ("
    )
    assert str(refused.value).endswith("); install g++ or set CXX")
    talkative = tmp_path / "talkative-compiler"
    talkative.write_text('#!/bin/sh\nfor n in 1 2 3 4 5; do echo "line $n" >&2; done\nexit 3\n')
    talkative.chmod(0o755)
    monkeypatch.setenv("CXX", str(talkative))
    with pytest.raises(ConfigError) as refused:
        kernel.build()
    assert str(refused.value) == (
        f"cannot build the lookup kernel with {talkative}: line 3 line 4 line 5"
    )
    talkative.unlink()
    monkeypatch.setenv("CXX", "false")
    with pytest.raises(
        ConfigError, match=r"^cannot build the lookup kernel with false: exit status 1, no message$"
    ):
        kernel.build()
    assert list(tmp_path.iterdir()) == []
    assert cli_main(["kernel", "build"]) == 2
    assert "circuitnn: error: cannot build the lookup kernel with false" in capsys.readouterr().err


FRESH_CHECK = """
import torch
from circuitnn.nn import kernel
from circuitnn.nn.interp import lookup, neuron_offsets, segment_table
assert kernel.backend() == "compiled", kernel.why_not()
values = torch.randn(6, 11, dtype=torch.float64).cumsum(1)
table = segment_table(values, 3.0, 5.0, "linear", torch.float32)
offsets = neuron_offsets((6,), 11)
x = torch.randn(300, 6) * 3
compiled = kernel.lookup(x, table, offsets, 11, 3.0, 5.0)
import os
os.environ["CIRCUITNN_LOOKUP"] = "torch"
assert torch.equal(compiled, lookup(x, table, offsets, 11, 3.0, 5.0))
print("same")
"""


def test_a_fresh_build_loads_and_gives_the_torch_path_s_values(monkeypatch, tmp_path):
    """``build`` compiles into an empty kernel folder, under a name made of the source, the
    compiler and its flags, torch (version and folder), Python and the machine; another
    compiler, flag or torch folder is another name. A fresh process finds that build and
    computes with it (one process cannot load two builds: each registers the same operator)."""
    folder = tmp_path / "not" / "yet"  # made, with its parents
    monkeypatch.setenv("CIRCUITNN_KERNEL_DIR", str(folder))
    monkeypatch.setattr(kernel, "_state", {})
    path = kernel.build()
    assert path.parent == folder and re.fullmatch(r"lookup-[0-9a-f]{16}\.so", path.name)
    assert sorted(folder.iterdir()) == [path]  # no temporary file left
    assert kernel.build() == path  # built already: nothing compiled
    monkeypatch.setenv("CXX", "c++")
    assert kernel.library_path() != path
    monkeypatch.delenv("CXX")
    monkeypatch.setattr(kernel, "FLAGS", (*kernel.FLAGS, "-g"))
    assert kernel.library_path() != path
    monkeypatch.setattr(kernel, "FLAGS", kernel.FLAGS[:-1])
    assert kernel.library_path() == path
    monkeypatch.setattr(torch, "__file__", str(tmp_path / "another" / "torch" / "__init__.py"))
    assert kernel.library_path() != path  # another environment's torch: a build of its own
    environment = {**os.environ, "CIRCUITNN_KERNEL_DIR": str(folder)}
    environment.pop("CIRCUITNN_LOOKUP", None)
    done = subprocess.run(
        [sys.executable, "-c", FRESH_CHECK], env=environment, capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout == "same\n", done.stderr


def test_the_kernel_folder_is_the_one_asked_for_else_the_user_s_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("CIRCUITNN_KERNEL_DIR", str(tmp_path / "mine"))
    assert kernel.kernel_dir() == tmp_path / "mine"
    monkeypatch.delenv("CIRCUITNN_KERNEL_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert kernel.kernel_dir() == tmp_path / "xdg" / "circuitnn" / "kernels"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert kernel.kernel_dir() == tmp_path / "home" / ".cache" / "circuitnn" / "kernels"
    assert kernel.library_path().parent == kernel.kernel_dir()
