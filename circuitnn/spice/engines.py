"""Run a rendered netlist in ngspice and return its saved vectors.

Two engines, same contract (:meth:`Engine.run`):

* ``subprocess`` — ``ngspice -b -r FILE`` in a temporary folder. A hang is killed at the timeout, a
  crash costs only that child process, and no memory accumulates in the worker.
* ``shared`` — libngspice loaded through PySpice's ``NgSpiceShared`` in a helper process that
  stays up between runs (one per worker, as libngspice keeps global state; see
  :mod:`circuitnn.spice.shared`), so a hang is killed at the timeout and a crash costs only the
  helper. ngspice's messages are classified here, not by PySpice.

Both run ngspice in a process group of its own, killed as a whole (ngspice's own children with
it) at the timeout or when the caller is interrupted, and write the files a netlist includes
(:class:`~circuitnn.neuron.includes.IncludedFile`) into ngspice's run folder under their safe
names before the run.

Errors: :class:`NetlistError` when ngspice rejects the netlist, :class:`ConvergenceError` when the
analysis aborts, :class:`SimulationTimeout` on a hang, :class:`SimulationError` on a crash.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from circuitnn.errors import ConfigError, NetlistError, SimulationError, SimulationTimeout, log_tail
from circuitnn.neuron.includes import STAGED, IncludedFile
from circuitnn.spice.messages import raise_for_log
from circuitnn.spice.rawfile import RawPlot, read_raw

DEFAULT_ENGINE = "subprocess"


class Engine:
    """Runs one netlist; subclasses implement :meth:`_execute`."""

    name = "engine"

    def run(
        self,
        netlist: str,
        vectors: list[str],
        points: int | None,
        timeout: float,
        what: str = "netlist",
        includes: Sequence[IncludedFile] = (),
    ) -> dict[str, np.ndarray]:
        """Simulate ``netlist`` (one analysis) and return ``vectors`` with ``points`` points each
        (any number of points, the same for all, when ``points`` is None: transients).

        ``vectors`` use ngspice's lower-case names (``v(node)``, ``i(vsource)``); ``timeout`` is in
        seconds; ``what`` names the job in error messages; ``includes`` are the files the netlist
        names (a bench's ``includes``).
        """
        results, log = self._execute(netlist, vectors, timeout, what, includes)
        complete = results is not None and all(
            name in results and (points is None or len(results[name]) == points) for name in vectors
        )
        raise_for_log(log, what, complete)
        assert results is not None
        return {name: results[name] for name in vectors}

    def _execute(
        self,
        netlist: str,
        vectors: list[str],
        timeout: float,
        what: str,
        includes: Sequence[IncludedFile],
    ) -> tuple[dict[str, np.ndarray] | None, str]:
        raise NotImplementedError


def stage_includes(folder: Path, includes: Sequence[IncludedFile]) -> None:
    """Write the copied files among ``includes`` into ``folder`` under their safe names (a
    referenced library is named by its absolute path and read in place)."""
    for included in includes:
        if included.text is None:
            continue
        if not STAGED.fullmatch(included.name):
            raise NetlistError(f"included file name {included.name!r} is not a safe name")
        target = folder / included.name
        if not target.exists():
            target.write_text(included.text, encoding="utf-8", errors="surrogatepass")


def ngspice_executable() -> str:
    """Path of the ``ngspice`` program; :class:`SimulationError` with install advice if missing."""
    path = os.environ.get("CIRCUITNN_NGSPICE") or shutil.which("ngspice")
    if not path:
        raise SimulationError(
            "ngspice was not found on PATH: install it (Debian/Ubuntu: apt-get install ngspice "
            "libngspice0) or set CIRCUITNN_NGSPICE to the executable"
        )
    return path


def _spawn(netlist: str, folder: Path, raw: Path | None, timeout: float, what: str) -> str:
    """Run ``ngspice -b`` on ``netlist`` in ``folder``; return its log (stdout + stderr).

    ngspice runs in a process group of its own, killed as a whole (its own children too) when it
    outlives ``timeout`` seconds or when this call is interrupted (Ctrl-C, SIGTERM).
    """
    circuit = folder / "bench.cir"
    circuit.write_text(netlist)
    command = [ngspice_executable(), "-b", *(["-r", str(raw)] if raw else []), str(circuit)]
    env = {**os.environ, "SPICE_ASCIIRAWFILE": "0"}
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=folder,
            env=env,
            process_group=0,
        )
    except OSError as error:
        raise SimulationError(f"{what}: ngspice could not be started: {error}") from None
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process)
        log = "\n".join(_drain(process))
        raise SimulationTimeout(
            f"{what}: ngspice did not finish within {timeout:g} s and was stopped\n{log_tail(log)}"
        ) from None
    except BaseException:
        kill_group(process)
        _drain(process)
        raise
    log = _decode(stdout) + "\n" + _decode(stderr)
    if process.returncode < 0:
        raise SimulationError(
            f"{what}: ngspice crashed (signal {-process.returncode})\n{log_tail(log)}"
        )
    return log


def kill_group(process: subprocess.Popen[Any]) -> None:
    """Kill the process group led by ``process`` (not yet waited for, so its id is still its)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _drain(process: subprocess.Popen[Any]) -> list[str]:
    """What a killed process wrote (its pipes are read for at most a few seconds)."""
    try:
        stdout, stderr = process.communicate(timeout=5)
    except subprocess.TimeoutExpired:  # a child that left the group still holds a pipe
        process.kill()
        process.wait()
        return []
    return [_decode(stdout), _decode(stderr)]


def _read_plots(path: Path, what: str) -> list[RawPlot] | None:
    if not path.is_file():
        return None
    try:
        return read_raw(path.read_bytes(), f"{what}: {path.name}")
    except SimulationError:
        return None


def run_script(
    netlist: str,
    files: list[str],
    timeout: float,
    what: str = "netlist",
    includes: Sequence[IncludedFile] = (),
) -> dict[str, list[RawPlot]]:
    """Run a netlist whose ``.control`` block writes the raw ``files`` into its working folder.

    Used for analyses driven by a control script (noise and AC at several bias points); always an
    ngspice subprocess, whatever the engine. Raises like :meth:`Engine.run` when ngspice rejects
    the netlist, does not converge or any file is missing.
    """
    with tempfile.TemporaryDirectory(prefix="circuitnn-") as name:
        folder = Path(name)
        stage_includes(folder, includes)
        log = _spawn(netlist, folder, None, timeout, what)
        plots = {file: _read_plots(folder / file, what) for file in files}
    complete = all(plots.values())
    raise_for_log(log, what, complete)
    return {file: found for file, found in plots.items() if found}


class SubprocessEngine(Engine):
    """``ngspice -b`` with a binary raw file, one process per netlist."""

    name = "subprocess"

    def _execute(
        self,
        netlist: str,
        vectors: list[str],
        timeout: float,
        what: str,
        includes: Sequence[IncludedFile],
    ) -> tuple[dict[str, np.ndarray] | None, str]:
        with tempfile.TemporaryDirectory(prefix="circuitnn-") as name:
            folder = Path(name)
            stage_includes(folder, includes)
            log = _spawn(netlist, folder, folder / "bench.raw", timeout, what)
            plots = _read_plots(folder / "bench.raw", what)
        return (plots[-1].vectors if plots else None), log


class SharedEngine(Engine):
    """libngspice through PySpice, in a helper process of this process (started on first use,
    again after a timeout or a crash; see :mod:`circuitnn.spice.shared`)."""

    name = "shared"

    def __init__(self) -> None:
        from circuitnn.spice.shared import SharedServer

        self._server = SharedServer()

    def _execute(
        self,
        netlist: str,
        vectors: list[str],
        timeout: float,
        what: str,
        includes: Sequence[IncludedFile],
    ) -> tuple[dict[str, np.ndarray] | None, str]:
        return self._server.run(netlist, vectors, timeout, what, includes)


def run_in_library(
    ng: Any, netlist: str, vectors: list[str], timeout: float, what: str
) -> tuple[dict[str, np.ndarray] | None, str]:
    """Run ``netlist`` in the libngspice ``ng`` of this process (the helper process of the shared
    engine); the vectors read back (None when ngspice reported an error) and ngspice's log."""
    ng.messages.clear()
    ng.clear_output()
    try:
        ng.load_circuit(netlist)
        if not ng.messages_say_error():
            ng.background_finished = False
            ng.exec_command("bg_run")
            _wait(ng, timeout, what)
        results = None if ng.messages_say_error() else _read_vectors(ng, vectors)
    finally:
        log = "\n".join(ng.messages)
        _release(ng)
    return results, log


def _wait(ng: Any, timeout: float, what: str) -> None:
    # ngSpice_running() is false until the background thread has started, so polling it alone
    # can return before the run even began; the thread reports its end through a callback.
    deadline = time.monotonic() + timeout
    while not ng.background_finished:
        if time.monotonic() > deadline:
            ng.exec_command("bg_halt")
            raise SimulationTimeout(
                f"{what}: ngspice did not finish within {timeout:g} s and was halted"
            )
        time.sleep(0.0005)


def _shared_name(vector: str) -> str:
    match = re.fullmatch(r"([vi])\((.+)\)", vector)
    if match is None:
        return vector
    kind, name = match.groups()
    return name if kind == "v" else f"{name}#branch"


def _read_vectors(ng: Any, vectors: list[str]) -> dict[str, np.ndarray] | None:
    from PySpice.Spice.NgSpice.Shared import ffi

    plot = ng.last_plot
    if not plot.lower().startswith(("dc", "ac", "tran", "noise", "op")):
        return None
    results = {}
    for vector in vectors:
        info = ng._ngspice_shared.ngGet_Vec_Info(f"{plot}.{_shared_name(vector)}".encode())
        if info == ffi.NULL:
            continue
        length = info.v_length
        if info.v_realdata != ffi.NULL:
            buffer = ffi.buffer(info.v_realdata, length * 8)
            results[vector] = np.frombuffer(buffer, dtype=np.float64).copy()
        elif info.v_compdata != ffi.NULL:
            buffer = ffi.buffer(info.v_compdata, length * 16)
            pairs = np.frombuffer(buffer, dtype=np.float64).reshape(length, 2)
            results[vector] = pairs[:, 0] + 1j * pairs[:, 1]
    return results


def _release(ng: Any) -> None:
    for command in ("destroy all", "remcirc"):
        with contextlib.suppress(Exception):  # freeing memory must never mask the real result
            ng.exec_command(command)


@functools.cache
def shared_ngspice() -> Any:
    """libngspice of this process, through PySpice (loaded once; for the shared engine's helper
    process)."""
    import logging

    try:
        from PySpice.Spice.NgSpice.Shared import NgSpiceShared, ffi, ffi_string_utf8
    except ImportError as error:  # pragma: no cover - PySpice is a dependency
        raise SimulationError(f"the shared engine needs PySpice: {error}") from None
    logging.getLogger("PySpice").setLevel(logging.CRITICAL)

    class ClassifyingNgSpice(NgSpiceShared):  # type: ignore[misc]
        """NgSpiceShared that records every message instead of judging stderr lines as errors."""

        def __init__(self) -> None:
            self.messages: list[str] = []
            self.background_finished = True
            super().__init__(ngspice_id=0, send_data=False)

        @staticmethod
        def _send_char(message_c: Any, ngspice_id: int, user_data: Any) -> int:
            self = ffi.from_handle(user_data)
            prefix, _, content = ffi_string_utf8(message_c).partition(" ")
            (self._stderr if prefix == "stderr" else self._stdout).append(content)
            self.messages.append(content)
            return 0

        @staticmethod
        def _background_thread_running(is_running: bool, ngspice_id: int, user_data: Any) -> int:
            # ngspice passes its "thread exited" flag: False when bg_run starts, True at the end
            self = ffi.from_handle(user_data)
            self.background_finished = bool(is_running)
            return 0

        def messages_say_error(self) -> bool:
            from circuitnn.spice.messages import diagnose

            return bool(diagnose("\n".join(self.messages)).netlist_errors)

    configure_pyspice_library()
    try:
        return ClassifyingNgSpice()
    except OSError as error:
        raise SimulationError(
            f"libngspice could not be loaded ({error}); install libngspice0 "
            "(Debian/Ubuntu) or set NGSPICE_LIBRARY_PATH"
        ) from None


def configure_pyspice_library() -> None:
    """Point PySpice at this system's libngspice (Debian ships ``libngspice.so.0``; PySpice looks
    for ``libngspice.so``), unless ``NGSPICE_LIBRARY_PATH`` is set."""
    from PySpice.Spice.NgSpice.Shared import NgSpiceShared, ffi

    NgSpiceShared.setup_platform()
    if os.environ.get("NGSPICE_LIBRARY_PATH") is not None:
        return
    for candidate in ("libngspice.so", "libngspice.so.0"):
        try:
            ffi.dlopen(candidate)
        except OSError:
            continue
        NgSpiceShared.LIBRARY_PATH = candidate
        return


_ENGINES = {"subprocess": SubprocessEngine, "shared": SharedEngine}


def available_engines() -> tuple[str, ...]:
    """Names accepted by :func:`get_engine`."""
    return tuple(_ENGINES)


@functools.cache
def get_engine(name: str = DEFAULT_ENGINE) -> Engine:
    """The engine called ``name`` for this process (created once per process)."""
    if name not in _ENGINES:
        raise ConfigError(f"engine {name!r} must be one of {', '.join(_ENGINES)}")
    return _ENGINES[name]()


@functools.cache
def ngspice_version() -> str:
    """ngspice's version string, e.g. ``"ngspice-39"`` (part of every family's identity)."""
    done = subprocess.run(
        [ngspice_executable(), "-v"], capture_output=True, timeout=30, check=False
    )
    match = re.search(r"ngspice-(\S+)", _decode(done.stdout) + _decode(done.stderr))
    if match is None:
        raise SimulationError("could not read the ngspice version from 'ngspice -v'")
    return f"ngspice-{match.group(1)}"


def _decode(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode("utf-8", errors="replace")
