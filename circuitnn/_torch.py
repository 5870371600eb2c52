"""A clear message when the PyTorch side is used without PyTorch installed."""

from __future__ import annotations

import importlib.util


def require_torch(package: str) -> None:
    """Raise ImportError naming the fix if torch is missing (``package`` names the importer)."""
    if importlib.util.find_spec("torch") is None:
        raise ImportError(
            f"{package} needs PyTorch, which is not installed: pip install 'circuitnn[torch]' "
            "(for the CPU build, first: pip install torch==2.13.0), or run scripts/setup.sh"
        )
