"""The ``circuitnn`` command line (also ``python -m circuitnn``)."""

from __future__ import annotations

import sys

from circuitnn.cli.parser import build_parser
from circuitnn.errors import CircuitnnError


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 2 user error, 1 other failure)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except CircuitnnError as error:
        print(f"circuitnn: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("circuitnn: interrupted (finished chunks are kept; rerun to resume)", file=sys.stderr)
        return 130
    except BrokenPipeError:
        sys.stderr.close()
        return 0
