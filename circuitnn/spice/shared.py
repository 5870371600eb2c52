"""The shared engine's client: one helper process holding libngspice, started and stopped here.

libngspice cannot be stopped from outside once a run hangs inside it (``bg_halt`` is only looked
at between time points), and a crash inside it takes its process along. So it lives in a helper
process of its own (:mod:`circuitnn.spice.shared_server`) that stays up between runs: a run that
outlives its timeout (plus :data:`GRACE` seconds for ngspice's own halt) has the helper's process
group killed and the next run starts a new helper (about a second); a crash costs the helper, not
the worker; an interrupted run (Ctrl-C, SIGTERM) kills it too.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from circuitnn import errors
from circuitnn.errors import SimulationError, SimulationTimeout, SimulatorCrash, log_tail
from circuitnn.neuron.includes import IncludedFile
from circuitnn.spice.shared_server import decode_vectors, receive_frame, send_frame

GRACE = 1.0  # seconds past a run's timeout before its helper is killed


STARTUP_SECONDS = 120.0  # the longest a new helper may take to load libngspice


class SharedServer:
    """The helper process of this process' shared engine (started on first use)."""

    def __init__(self) -> None:
        _remove_stale_folders()
        self._folder = Path(tempfile.mkdtemp(prefix=f"circuitnn-shared-{os.getpid()}-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._channel: socket.socket | None = None
        atexit.register(self.remove)

    def run(
        self,
        netlist: str,
        vectors: list[str],
        timeout: float,
        what: str,
        includes: Sequence[IncludedFile],
    ) -> tuple[dict[str, np.ndarray] | None, str]:
        """Run ``netlist`` in the helper; its vectors (None when ngspice reported an error) and
        log. :class:`SimulationTimeout` after ``timeout`` s, :class:`SimulationError` on a crash."""
        from circuitnn.spice.engines import stage_includes

        channel = self._start(what)
        stage_includes(self._folder, includes)
        request = {"netlist": netlist, "vectors": vectors, "timeout": timeout, "what": what}
        try:
            send_frame(channel, json.dumps(request).encode())
            channel.settimeout(timeout + GRACE)
            header = receive_frame(channel)
            if header is None:
                raise ConnectionError("closed")
            answer = json.loads(header)
            data = receive_frame(channel) if answer["found"] else None
        except TimeoutError:
            self.close()
            raise SimulationTimeout(
                f"{what}: ngspice did not finish within {timeout:g} s and was stopped"
            ) from None
        except (ConnectionError, OSError):
            code = self._stop()
            raise SimulatorCrash(
                f"{what}: ngspice crashed (the shared engine's helper process ended"
                f"{f' by signal {-code}' if code and code < 0 else ''})\n{self._log_tail()}"
            ) from None
        except BaseException:
            self.close()
            raise
        if answer["error"] is not None:
            kind, message = answer["error"]
            error = getattr(errors, kind, SimulationError)
            if not (isinstance(error, type) and issubclass(error, errors.CircuitnnError)):
                error = SimulationError
            raise error(message)
        return (decode_vectors(data) if data is not None else None), answer["log"]

    def _start(self, what: str) -> socket.socket:
        if self._channel is not None and self._process is not None:
            if self._process.poll() is None:
                return self._channel
            self._stop()
        mine, theirs = socket.socketpair()
        log = open(self._folder / "helper.log", "ab")  # noqa: SIM115 (the child holds it)
        # the helper imports circuitnn from where this process did (it runs in the staging folder)
        root = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "circuitnn.spice.shared_server", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self._folder,
                env={**os.environ, "PYTHONPATH": path},
                process_group=0,
            )
        except OSError as error:
            mine.close()
            raise SimulationError(f"{what}: the shared engine could not start: {error}") from None
        finally:
            theirs.close()
            log.close()
        self._channel = mine
        try:
            mine.settimeout(STARTUP_SECONDS)
            hello = receive_frame(mine)
        except BaseException:
            self.close()
            raise
        answer = json.loads(hello) if hello else {"error": f"it ended\n{self._log_tail()}"}
        if "error" in answer:
            self.close()
            raise SimulationError(f"the shared engine could not load libngspice: {answer['error']}")
        return mine

    def _stop(self) -> int | None:
        """Close the socket and kill the helper's process group; its exit status."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        process, self._process = self._process, None
        if process is None:
            return None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        return process.wait()

    def close(self) -> None:
        """Stop the helper (it is started again by the next run)."""
        self._stop()

    def remove(self) -> None:
        """Stop the helper and remove its staging folder."""
        self._stop()
        shutil.rmtree(self._folder, ignore_errors=True)

    def _log_tail(self) -> str:
        try:
            return log_tail((self._folder / "helper.log").read_text(errors="replace"))
        except OSError:
            return ""


def _remove_stale_folders() -> None:
    """Remove the staging folders of processes that died without cleaning up (a killed worker)."""
    for folder in Path(tempfile.gettempdir()).glob("circuitnn-shared-*-*"):
        owner = folder.name.split("-")[2]
        if owner.isdigit() and not _alive(int(owner)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True
