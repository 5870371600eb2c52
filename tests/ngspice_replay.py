"""ngspice runs recorded once and replayed, for mutation runs only (the hook in tests/conftest.py).

Under mutmut, every mutant's tests simulate the same circuits again: the session's simulated store,
the families of the extraction and noise tests. ngspice gives the same files for the same input,
so a run of the real ngspice program is recorded (the files it wrote into its run folder, its
output, how long it took) under a key made of everything it reads: the program (its path, size
and time), its arguments (the run folder's path left out), every file in the run folder before
it started, and the ``SPICE*`` environment variables. A run whose key was recorded is replayed:
the same files are written into the new run folder, and the same output is returned.

A mutant that changes a netlist, a parameter or an option changes the key, and ngspice runs. A
run is recorded the second time its key is seen (a mutant's own netlists, seen once, would only
fill the disk), and only runs of the real program that finished with exit status 0 (not a fake
program of a fault test, not a run that was stopped or crashed); a recorded run is replayed only
under a timeout more than twice as long as it took, so a test that wants a run stopped at its
timeout gets a real run. Switched on by ``CIRCUITNN_NGSPICE_REPLAY`` (a folder; ``bash dev.sh
mutants`` sets it): the default test run always runs ngspice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

#: (command, run folder, environment, timeout s, what) -> (stdout, stderr, exit status, stopped)
Runner = Callable[[list[str], Path, dict[str, str], float, str], tuple[bytes, bytes, int, bool]]


def replaying(run: Runner, folder: Path, program: str) -> Runner:
    """``run`` (circuitnn's ``_run_with_deadline``) with its runs of ``program`` (the real
    ngspice's path) recorded in ``folder`` and replayed from it."""
    real = os.path.realpath(program)
    stat = os.stat(real)
    identity = f"{real} {stat.st_size} {stat.st_mtime_ns}"  # another ngspice: other keys

    def replayed(
        command: list[str], where: Path, env: dict[str, str], timeout: float, what: str
    ) -> tuple[bytes, bytes, int, bool]:
        if os.path.realpath(command[0]) != real:
            return run(command, where, env, timeout, what)
        before = _files(where)
        key = _key(identity, command, where, env, before)
        found = _replay(folder / key, where, timeout)
        if found is not None:
            return found
        seen = folder / f"{key}.seen"
        again = seen.exists()  # (a run seen once, e.g. a mutant's own netlist: not recorded)
        if not again:
            with contextlib.suppress(OSError):
                folder.mkdir(parents=True, exist_ok=True)
                seen.touch()
        began = time.perf_counter()
        result = run(command, where, env, timeout, what)
        seconds = time.perf_counter() - began
        stdout, stderr, status, stopped = result
        if again and status == 0 and not stopped:
            _record(folder, key, where, before, stdout, stderr, seconds)
        return result

    return replayed


def _files(where: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(where.iterdir()) if p.is_file()}


def _key(
    identity: str, command: list[str], where: Path, env: dict[str, str], files: dict[str, bytes]
) -> str:
    digest = hashlib.sha256(identity.encode() + b"\0")
    place = str(where)
    for part in command:
        digest.update(part.replace(place, "<folder>").encode() + b"\0")
    for name, value in sorted(env.items()):
        if name.startswith("SPICE"):
            digest.update(f"{name}={value}\0".encode())
    for name, content in files.items():
        content = content.replace(place.encode(), b"<folder>")
        digest.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
    return digest.hexdigest()


def _record(
    folder: Path,
    key: str,
    where: Path,
    before: dict[str, bytes],
    stdout: bytes,
    stderr: bytes,
    seconds: float,
) -> None:
    place = str(where).encode()
    written = {name: data for name, data in _files(where).items() if before.get(name) != data}
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".record-", dir=folder))
    try:
        for number, data in enumerate(written.values()):
            (staging / str(number)).write_bytes(data.replace(place, b"<folder>"))
        for name, data in (("stdout", stdout), ("stderr", stderr)):
            (staging / name).write_bytes(data.replace(place, b"<folder>"))
        meta = {"files": list(written), "seconds": seconds}
        (staging / "meta.json").write_text(json.dumps(meta))
        os.rename(staging, folder / key)  # whole or not at all; another process may win
    except OSError:
        pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _replay(recorded: Path, where: Path, timeout: float) -> tuple[bytes, bytes, int, bool] | None:
    try:
        meta = json.loads((recorded / "meta.json").read_text())
        if timeout <= 2 * meta["seconds"]:
            return None  # near its timeout: run it, and let the timeout act
        place = str(where).encode()
        for number, name in enumerate(meta["files"]):
            data = (recorded / str(number)).read_bytes()
            (where / name).write_bytes(data.replace(b"<folder>", place))
        stdout, stderr = (
            (recorded / name).read_bytes().replace(b"<folder>", place)
            for name in ("stdout", "stderr")
        )
    except (OSError, ValueError, KeyError):
        return None
    return stdout, stderr, 0, False
