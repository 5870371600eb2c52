"""Reading the project's TOML files (specs, campaigns, main-job configs) with clear errors."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from circuitnn.errors import ConfigError


def read_toml(path: str | Path, kind: str) -> dict[str, Any]:
    """The TOML file at ``path`` as a dict; :class:`ConfigError` naming the file when it is
    missing, unreadable, not UTF-8 or not valid TOML. ``kind`` names the file in messages
    (e.g. ``"spec"``, ``"campaign"``)."""
    path = Path(path)
    try:
        found = path.is_file()
    except OSError as error:  # a name too long, say
        raise ConfigError(f"{kind} file not found: {path}: {error.strerror}") from None
    if not found:
        raise ConfigError(f"{kind} file not found: {path}")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the {kind} file: {error}") from None
    try:
        return tomllib.loads(text)
    except ValueError as error:  # TOMLDecodeError, or an integer of more than 4300 digits
        raise ConfigError(f"{path}: invalid TOML: {error}") from None
