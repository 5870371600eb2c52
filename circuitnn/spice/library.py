"""libngspice inside this process, through PySpice: loading it once (without a ``.spiceinit``),
running one netlist in it, reading its vectors back. Used by the shared engine's helper process
(:mod:`circuitnn.spice.shared_server`) and by the benchmarks' naive loops."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import tempfile
import threading
import time
from typing import Any

import numpy as np

from circuitnn.errors import SimulationError, SimulationTimeout


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
            values = np.frombuffer(buffer, dtype=np.complex128).copy()
            # an AC plot's frequency has only its real part set (see spice.rawfile)
            results[vector] = values.real + 0j if vector == "frequency" else values
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
        with _empty_working_folder():
            return ClassifyingNgSpice()
    except OSError as error:
        raise SimulationError(
            f"libngspice could not be loaded ({error}); install libngspice0 "
            "(Debian/Ubuntu) or set NGSPICE_LIBRARY_PATH"
        ) from None


_FOLDER_LOCK = threading.Lock()


@contextlib.contextmanager
def _empty_working_folder() -> Any:
    """Run the body in an empty temporary working folder: libngspice reads a ``.spiceinit`` from
    the working folder when it starts, and has no option to skip it."""
    with _FOLDER_LOCK, tempfile.TemporaryDirectory(prefix="circuitnn-init-") as empty:
        previous = os.getcwd()
        os.chdir(empty)
        try:
            yield
        finally:
            os.chdir(previous)


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
