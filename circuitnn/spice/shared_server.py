"""The helper process of the shared engine: libngspice (through PySpice), serving runs.

Started by :class:`circuitnn.spice.shared.SharedServer` as ``python -m
circuitnn.spice.shared_server FD``, with a socket on descriptor ``FD``, in a process group of its
own, its working folder the client's staging folder (where the files a netlist includes are
written, so that ngspice finds them by their safe names). It dies with its parent (Linux:
``PR_SET_PDEATHSIG``) and when the socket closes.

Frames on the socket are a length (8 bytes, big-endian) and a payload. The helper sends a hello
(``{"ok": true}`` or ``{"error": …}``), then answers each request (JSON: ``netlist``, ``vectors``,
``timeout``, ``what``) with a JSON header (``log``, ``error``: ``[type, message]`` or null,
``found``: whether vectors follow) and, when found, an ``.npz`` of the vectors (read back with
``allow_pickle=False``).
"""

from __future__ import annotations

import ctypes
import io
import json
import os
import signal
import socket
import sys
from typing import Any

import numpy as np

_LENGTH = 8


def send_frame(channel: socket.socket, payload: bytes) -> None:
    """Send one frame (length, then ``payload``)."""
    channel.sendall(len(payload).to_bytes(_LENGTH, "big") + payload)


def receive_frame(channel: socket.socket) -> bytes | None:
    """Receive one frame's payload; None when the other side closed the socket."""
    header = _receive_exactly(channel, _LENGTH)
    if header is None:
        return None
    payload = _receive_exactly(channel, int.from_bytes(header, "big"))
    if payload is None:
        raise ConnectionError("the frame ended early")
    return payload


def _receive_exactly(channel: socket.socket, size: int) -> bytes | None:
    chunks, missing = [], size
    while missing:
        chunk = channel.recv(min(missing, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


def encode_vectors(vectors: dict[str, np.ndarray]) -> bytes:
    """Vectors as the bytes of an ``.npz`` (names kept in a JSON list: they hold parentheses)."""
    buffer = io.BytesIO()
    names = list(vectors)
    arrays = {f"v{number}": np.asarray(vectors[name]) for number, name in enumerate(names)}
    np.savez(buffer, names=np.array(json.dumps(names)), **arrays)
    return buffer.getvalue()


def decode_vectors(data: bytes) -> dict[str, np.ndarray]:
    """The inverse of :func:`encode_vectors` (never unpickles)."""
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        names = json.loads(str(archive["names"]))
        return {name: archive[f"v{number}"] for number, name in enumerate(names)}


def _die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (a hung ngspice cannot notice)."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the closed socket still ends the loop
        return
    if os.getppid() != parent:  # the parent died before prctl
        os._exit(1)


def _answer(ng: Any, request: dict[str, Any]) -> tuple[dict[str, Any], bytes | None]:
    from circuitnn.errors import CircuitnnError
    from circuitnn.spice.library import run_in_library

    try:
        results, log = run_in_library(
            ng, request["netlist"], request["vectors"], request["timeout"], request["what"]
        )
    except CircuitnnError as error:
        return {"log": "", "error": [type(error).__name__, str(error)], "found": False}, None
    if results is None:
        return {"log": log, "error": None, "found": False}, None
    return {"log": log, "error": None, "found": True}, encode_vectors(results)


def main() -> None:
    """Serve runs on the socket given as the first argument until it closes."""
    _die_with_parent()
    channel = socket.socket(fileno=int(sys.argv[1]))
    try:
        from circuitnn.spice.library import shared_ngspice

        ng = shared_ngspice()
    except Exception as error:  # reported to the client, which raises it
        send_frame(channel, json.dumps({"error": f"{type(error).__name__}: {error}"}).encode())
        return
    send_frame(channel, json.dumps({"ok": True}).encode())
    while True:
        request = receive_frame(channel)
        if request is None:
            return
        header, vectors = _answer(ng, json.loads(request))
        send_frame(channel, json.dumps(header).encode())
        if vectors is not None:
            send_frame(channel, vectors)


if __name__ == "__main__":
    main()
