"""The neuron: its spec, its netlist (read and checked for safety), the built-ins, its units
and its process variation.

Stage 1 of the flow (see ``docs/architecture.md``): everything here is pure text and numbers;
nothing runs ngspice. Imports only :mod:`circuitnn.errors` and the standard library, numpy, scipy.
"""

from __future__ import annotations

from circuitnn._lazy import lazy_exports

_EXPORTS = {
    "NeuronSpec": "spec",
    "Ports": "spec",
    "Sweep": "spec",
    "Output": "spec",
    "Variation": "spec",
    "Distribution": "spec",
    "load_spec": "spec_file",
    "spec_from_dict": "spec_file",
    "builtin_neurons": "builtin",
    "get_neuron": "builtin",
    "MonteCarlo": "variation",
    "ParameterTable": "variation",
    "sample_parameters": "variation",
    "nominal_table": "variation",
    "parse_spice": "units",
    "format_spice": "units",
    "check_safe": "safety",
    "check_spec": "safety",
    "IncludedFile": "includes",
}
__all__ = list(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
