"""The ``circuitnn`` command line (also ``python -m circuitnn``).

Exit status: 0 done; 2 a user error (a bad argument, spec, netlist or file, named in one line);
1 a failure that is not the user's (ngspice crashed, the store is damaged or cannot be written,
workers died: one line too); 130 interrupted by Ctrl-C, 143 by SIGTERM (which stops the run
the same way: worker processes and ngspice are stopped, finished chunks are kept, a rerun
resumes).
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator
from types import FrameType

from circuitnn.cli.parser import build_parser
from circuitnn.errors import CircuitnnError, ConfigError, NetlistError

USER_ERRORS = (ConfigError, NetlistError)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would raise KeyboardInterrupt (so the same clean-up runs)."""


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (see the module)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    with _sigterm_as_interrupt():
        try:
            return int(args.handler(args) or 0)
        except CircuitnnError as error:
            first, *rest = str(error).strip().splitlines() or [type(error).__name__]
            user = isinstance(error, USER_ERRORS)  # (its first line quotes ngspice already)
            print(f"circuitnn: error: {first}{'' if user else _log_hint(rest)}", file=sys.stderr)
            return 2 if user else 1
        except Terminated:
            print(
                "circuitnn: terminated (finished chunks are kept; rerun to resume)", file=sys.stderr
            )
            return 128 + signal.SIGTERM
        except KeyboardInterrupt:
            print(
                "circuitnn: interrupted (finished chunks are kept; rerun to resume)",
                file=sys.stderr,
            )
            return 130
        except BrokenPipeError:
            sys.stderr.close()
            return 0


def _log_hint(rest: list[str]) -> str:
    """ngspice's log lines after an error's first line, folded into it (the last one shown)."""
    lines = [line.strip() for line in rest if line.strip()]
    return f" (last log line: {lines[-1][:300]})" if lines else ""


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While the command runs, SIGTERM raises :class:`Terminated` in the main thread."""

    def terminate(number: int, frame: FrameType | None) -> None:
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, terminate)
    except ValueError:  # not the main thread (a test calling main from a thread): as it was
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
