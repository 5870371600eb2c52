"""The compiled CPU lookup: building it, finding it, and calling it when it applies.

:func:`circuitnn.nn.interp.lookup` on torch's operations takes several passes over its input (the
row index, a one-thread ``index_select`` of the (intercept, slope) pairs, the multiply and the
add), and autograd keeps the gathered pairs for the backward. ``lookup_kernel.cpp`` fuses them
into one pass split over torch's threads, with the same float arithmetic, so its values and
gradients are bit for bit the torch path's; where the input needs a gradient the pass also keeps
each element's slope, and the backward is one multiply. It is built once per environment
(``bash scripts/setup.sh`` does it, or ``circuitnn kernel build``: a C++20 compiler, ``$CXX`` or
``g++``, about 15 s) into the cache folder (``$CIRCUITNN_KERNEL_DIR``, else
``$XDG_CACHE_HOME/circuitnn/kernels`` or ``~/.cache/circuitnn/kernels``), under a name made from
its source, the compiler and its flags and the torch (version and folder), Python and machine it
is built for. Nothing is compiled at run time: without a built kernel, or with
``CIRCUITNN_LOOKUP=torch``, the lookup runs on torch's operations (same results, one-thread
gather); ``CIRCUITNN_LOOKUP=compiled`` insists on the kernel (an error when it is not built).
:func:`backend` says which one runs.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys
import tempfile
from pathlib import Path

import torch

from circuitnn.errors import ConfigError

SOURCE = Path(__file__).with_name("lookup_kernel.cpp")
# t = x·scale, then + shift + 1, and y = x·slope, then + intercept: two roundings each, as
# torch's separate operations (no fused multiply-add)
FLAGS = ("-O3", "-std=c++20", "-fPIC", "-shared", "-fopenmp", "-ffp-contract=off")
_state: dict[str, object] = {}  # "loaded": bool, "error": why it is not


def kernel_dir() -> Path:
    """The folder that holds built kernels."""
    chosen = os.environ.get("CIRCUITNN_KERNEL_DIR")
    if chosen:
        return Path(chosen)
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "circuitnn" / "kernels"


def library_path() -> Path:
    """Where the kernel for this source, compiler and flags, torch (version and folder), Python
    and machine is (or would be) built."""
    identity = "\n".join(
        (
            hashlib.sha256(SOURCE.read_bytes()).hexdigest(),
            _compiler(),
            *FLAGS,
            torch.__version__,
            str(Path(torch.__file__).parent),  # one build per installed torch (the rpath)
            sys.implementation.cache_tag,
            platform.machine(),
        )
    )
    return kernel_dir() / f"lookup-{hashlib.sha256(identity.encode()).hexdigest()[:16]}.so"


def _compiler() -> str:
    return os.environ.get("CXX", "g++")


def build() -> Path:
    """Compile the kernel (if it is not built yet) and return its path; a failed compilation is
    a ``ConfigError`` with the compiler's last words."""
    target = library_path()
    if target.exists():
        return target
    import subprocess

    from torch.utils import cpp_extension

    target.parent.mkdir(parents=True, exist_ok=True)
    compiler = _compiler()
    libraries = cpp_extension.library_paths()
    with tempfile.TemporaryDirectory(dir=target.parent) as folder:
        partial = Path(folder) / target.name
        command = [
            compiler,
            *FLAGS,
            f"-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}",
            *(f"-I{path}" for path in cpp_extension.include_paths()),
            str(SOURCE),
            "-o",
            str(partial),
            *(f"-L{path}" for path in libraries),
            *(f"-Wl,-rpath,{path}" for path in libraries),
            "-lc10",
            "-ltorch_cpu",
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, check=False)
        except OSError as error:
            raise ConfigError(
                f"cannot build the lookup kernel: no C++ compiler {compiler!r} ({error}); "
                "install g++ or set CXX"
            ) from None
        if done.returncode != 0:
            words = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            words = words or f"exit status {done.returncode}, no message"
            raise ConfigError(f"cannot build the lookup kernel with {compiler}: {words}")
        partial.replace(target)
    _state.clear()
    return target


def available() -> bool:
    """Whether the compiled kernel is loaded (loading it on first call, if it is built)."""
    if "loaded" not in _state:
        path = library_path()
        if not path.exists():
            _state.update(loaded=False, error=f"is not built ({path} missing)")
        else:
            try:
                torch.ops.load_library(str(path))
            except (OSError, RuntimeError) as error:
                _state.update(loaded=False, error=f"does not load ({path}: {error})")
            else:
                _state.update(loaded=True, error="")
    return bool(_state["loaded"])


def _chosen() -> str:
    """``$CIRCUITNN_LOOKUP``: "" (the compiled kernel when built), "compiled" or "torch"."""
    chosen = os.environ.get("CIRCUITNN_LOOKUP", "")
    if chosen not in ("", "compiled", "torch"):
        raise ConfigError(f"CIRCUITNN_LOOKUP must be 'compiled' or 'torch', got {chosen!r}")
    if chosen == "compiled" and not available():
        raise ConfigError(f"CIRCUITNN_LOOKUP=compiled, but the lookup kernel {_state['error']}")
    return chosen


def backend() -> str:
    """``"compiled"`` when the lookup on CPU uses the compiled kernel, else ``"torch"``."""
    if _chosen() == "torch":
        return "torch"
    return "compiled" if available() else "torch"


def why_not() -> str:
    """Why the compiled kernel is not used ("" when it is)."""
    if _chosen() == "torch":
        return "CIRCUITNN_LOOKUP=torch"
    available()
    return str(_state["error"])


def lookup(
    x: torch.Tensor,
    table: torch.Tensor,
    offsets: torch.Tensor | None,
    points: int,
    scale: float,
    shift: float,
) -> torch.Tensor | None:
    """:func:`circuitnn.nn.interp.lookup` in the compiled kernel: ``x``'s values on the lines of
    ``table`` (the ``(rows, 2)`` table of :func:`circuitnn.nn.interp.segment_table`), differentiable
    in ``x``, or None where the kernel does not apply: not built, not CPU, not float32, a table of
    2³¹ rows or more, or offsets that are not exactly ``x``'s trailing dimensions."""
    if (
        x.device.type != "cpu"
        or x.dtype != torch.float32
        or table.dtype != torch.float32
        or table.shape[0] >= 2**31
        or offsets is None
        or offsets.dtype != torch.int32
        or offsets.device.type != "cpu"
        or offsets.dim() > x.dim()
        or tuple(offsets.shape) != tuple(x.shape[x.dim() - offsets.dim() :])
        or backend() != "compiled"
    ):
        return None
    return torch.ops.circuitnn.lookup(x, table, offsets, int(points), float(scale), float(shift))
