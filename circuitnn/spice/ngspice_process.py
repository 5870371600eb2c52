"""The ngspice program: finding it, its version, and one ``ngspice -n -b`` run in a process
group of its own, killed as a whole (ngspice's own children with it) at the timeout or when the
caller is interrupted.

Errors: :class:`SimulationTimeout` on a hang, :class:`SimulatorCrash` on a crash,
:class:`SimulationError` when ngspice is missing or cannot be started.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import select
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

from circuitnn.errors import SimulationError, SimulationTimeout, SimulatorCrash, log_tail


def ngspice_executable() -> str:
    """Path of the ``ngspice`` program; :class:`SimulationError` with install advice if missing."""
    path = os.environ.get("CIRCUITNN_NGSPICE") or shutil.which("ngspice")
    if not path:
        raise SimulationError(
            "ngspice was not found on PATH: install it (Debian/Ubuntu: apt-get install ngspice "
            "libngspice0) or set CIRCUITNN_NGSPICE to the executable"
        )
    return path


def run_batch(netlist: str, folder: Path, timeout: float, what: str, raw: str | None = None) -> str:
    """Run ``ngspice -n -b`` on ``netlist`` in ``folder`` (``-r raw``: stream the netlist's own
    analysis into that file); return its log.

    ``-n``: no ``.spiceinit`` is read (neither the user's nor one in a working folder), so
    nothing outside a family's key changes results. ``-o``: ngspice writes its messages to one
    log file in the order it makes them (its stdout is buffered when piped, stderr is not).
    ngspice runs in a process group of its own, killed as a whole (its own children too) when it
    outlives ``timeout`` seconds or when this call is interrupted (Ctrl-C, SIGTERM).
    """
    circuit, log_file = folder / "bench.cir", folder / "bench.log"
    circuit.write_text(netlist)
    streamed = ["-r", raw] if raw else []
    command = [ngspice_executable(), "-n", "-b", *streamed, "-o", str(log_file), str(circuit)]
    env = {**os.environ, "SPICE_ASCIIRAWFILE": "0"}
    stdout, stderr, returncode, stopped = _run_with_deadline(command, folder, env, timeout, what)
    # (stdout holds only ngspice's banner; the log file, last, ends with what went wrong)
    log = _decode(stdout) + "\n" + _decode(stderr) + "\n" + _read_log(log_file)
    if stopped:
        raise SimulationTimeout(
            f"{what}: ngspice did not finish within {timeout:g} s and was stopped\n{log_tail(log)}"
        )
    if returncode < 0:
        raise SimulatorCrash(f"{what}: ngspice crashed (signal {-returncode})\n{log_tail(log)}")
    return log


STDOUT_FILE, STDERR_FILE = "ngspice-stdout.txt", "ngspice-stderr.txt"  # in the run folder


def _run_with_deadline(
    command: list[str], folder: Path, env: dict[str, str], timeout: float, what: str
) -> tuple[bytes, bytes, int, bool]:
    """Run ``command`` in ``folder``, in a process group of its own; kill the group after
    ``timeout`` seconds. Returns its stdout, stderr, exit status and whether it was stopped.
    Its output goes to files (ngspice leaves its pipes at once with ``-o``: nothing to read
    while it runs) and the wait blocks on the process' pidfd (``subprocess``'s own wait with a
    timeout polls with sleeps of up to 50 ms, so each run would end up to 50 ms late)."""
    outputs = folder / STDOUT_FILE, folder / STDERR_FILE
    try:
        with open(outputs[0], "wb") as stdout, open(outputs[1], "wb") as stderr:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                cwd=folder,
                env=env,
                process_group=0,
            )
    except OSError as error:
        raise SimulationError(f"{what}: ngspice could not be started: {error}") from None
    try:
        stopped = not _exits_within(process, timeout)
        if stopped:
            kill_group(process)
        process.wait()
    except BaseException:  # (interrupted: never leave ngspice behind)
        kill_group(process)
        process.wait()
        raise
    stdout_text, stderr_text = (_read_bytes(path) for path in outputs)
    return stdout_text, stderr_text, process.returncode, stopped


def _exits_within(process: subprocess.Popen[Any], timeout: float) -> bool:
    """Whether ``process`` exits within ``timeout`` seconds (not waited for: its id stays its,
    so its group can still be killed)."""
    try:
        descriptor = os.pidfd_open(process.pid)
    except (AttributeError, OSError):  # (no pidfd: not Linux 5.3+) a polling wait
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    try:
        poller = select.poll()
        poller.register(descriptor, select.POLLIN)
        return bool(poller.poll(min(timeout * 1000, 2**31 - 1)))  # (ms, a C int)
    finally:
        os.close(descriptor)


def kill_group(process: subprocess.Popen[Any]) -> None:
    """Kill the process group led by ``process`` (not yet waited for, so its id is still its)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _read_log(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


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
