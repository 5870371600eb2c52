"""Find neuron circuits: the built-ins shipped in ``netlists/`` or a user's spec/netlist file."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from circuitnn.errors import ConfigError
from circuitnn.neuron.safety import check_spec
from circuitnn.neuron.spec import NeuronSpec
from circuitnn.neuron.spec_file import load_spec


def builtin_folder() -> Path:
    """Folder holding the built-in ``.cir``/``.toml`` pairs."""
    return Path(str(resources.files("circuitnn.netlists")))


def builtin_neurons() -> list[str]:
    """Names of the built-in neurons, sorted."""
    return sorted(path.stem for path in builtin_folder().glob("*.toml"))


def kit_neurons() -> dict[str, str]:
    """The built-in neurons made on a foundry kit (``netlists/<kit>/``): name → kit. They load
    when the kit is installed (see :mod:`circuitnn.neuron.pdk`)."""
    return {
        path.stem: path.parent.name
        for path in sorted(builtin_folder().glob("*/*.toml"))
        if path.parent.name != "__pycache__"
    }


def get_neuron(neuron: str | Path | NeuronSpec, allow_control: bool = False) -> NeuronSpec:
    """A spec from a built-in name, a ``.toml`` spec path (or its ``.cir``), or a spec itself
    (checked like a loaded one: :func:`~circuitnn.neuron.safety.check_spec`)."""
    if isinstance(neuron, NeuronSpec):
        check_spec(neuron)
        return neuron
    text = str(neuron)
    if text in builtin_neurons():
        return load_spec(builtin_folder() / f"{text}.toml")
    kits = kit_neurons()
    if text in kits:
        return load_spec(builtin_folder() / kits[text] / f"{text}.toml")
    try:
        path = Path(text).expanduser()
        a_path = bool(path.suffix) or "/" in text or path.exists()
    except (RuntimeError, OSError) as error:  # ~user without a home; a name too long
        raise ConfigError(
            f"unknown neuron {text!r}: not a built-in ({', '.join(builtin_neurons())}) and not a "
            f"usable path ({error})"
        ) from None
    if a_path:
        return load_spec(path, allow_control=allow_control)
    raise ConfigError(
        f"unknown neuron {text!r}: not a built-in ({', '.join(builtin_neurons())}) and not a file"
    )
