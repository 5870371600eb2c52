"""The naive baseline's PySpice set-up, shared by the benchmarks (not part of circuitnn).

PySpice 1.5 takes every ngspice stderr line that is not "Warning:" for an error, and ngspice 39
prints notes (gmin stepping) on good runs, so plain PySpice raises NgSpiceCommandError on them.
The usual user work-around, used by the naive loops: accept notes.
"""

from __future__ import annotations

import logging
from typing import Any


def tolerant_ngspice(stdout_errors: bool = True) -> Any:
    """A fresh ``NgSpiceShared`` (libngspice located for this system) that accepts notes;
    ``stdout_errors`` also treats a stdout line containing "error" as a failure."""
    from PySpice.Spice.NgSpice.Shared import NgSpiceShared, ffi, ffi_string_utf8

    from circuitnn.spice.library import configure_pyspice_library

    logging.getLogger("PySpice").setLevel(logging.CRITICAL)

    class TolerantNgSpice(NgSpiceShared):  # type: ignore[misc]
        @staticmethod
        def _send_char(message_c: Any, ngspice_id: int, user_data: Any) -> int:
            self = ffi.from_handle(user_data)
            prefix, _, content = ffi_string_utf8(message_c).partition(" ")
            if prefix == "stderr":
                self._stderr.append(content)
                benign = ("note:", "warning:", "trying gmin", "using ", "circuit:")
                if content.strip() and not content.strip().lower().startswith(benign):
                    self._error_in_stderr = True
            else:
                self._stdout.append(content)
                if stdout_errors and "error" in content.lower():
                    self._error_in_stdout = True
            return 0

    configure_pyspice_library()
    return TolerantNgSpice(ngspice_id=0, send_data=False)
