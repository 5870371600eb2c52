"""Built-in neuron circuits: ``NAME.cir`` (a ``.subckt``) with ``NAME.toml`` (its spec) beside it.

Installed as the package ``circuitnn.netlists``; see :func:`circuitnn.circuits.builtin_neurons`.
"""
