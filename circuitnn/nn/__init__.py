"""PyTorch layers whose neurons behave like fabricated analog circuits (imports torch).

- :class:`CircuitActivation`: per-neuron transfer curves sampled from a simulated family;
- noise modules (:class:`AdditiveNoise`, :class:`MultiplicativeNoise`, :class:`MixedNoise`,
  :class:`CircuitNoise`) configured by :class:`NoiseSpec`;
- weight noise (:class:`AnalogLinear`, :class:`AnalogConv2d`, :class:`WeightNoiseSpec`);
- a builder (:func:`build_mlp`, :func:`build_cnn` from :class:`MLPSpec` / :class:`CNNSpec`);
- model-wide helpers (chips, seeds, layer names, hooks);
- :func:`torch_threads`: the thread guard every experiment (and the main job) runs under.
"""

from circuitnn._torch import require_torch

require_torch("circuitnn.nn")


from circuitnn.nn.activation import MODES, CircuitActivation
from circuitnn.nn.builder import (
    CircuitSpec,
    CNNSpec,
    ConvSpec,
    LayerSpec,
    MLPSpec,
    build,
    build_cnn,
    build_mlp,
    mlp_spec,
)
from circuitnn.nn.draws import draws
from circuitnn.nn.interp import lookup
from circuitnn.nn.model import (
    activation_layers,
    chip_state,
    circuit_activations,
    inject,
    quiet,
    resample_chips,
    reseed_noise,
    restore_chip,
    set_mode,
)
from circuitnn.nn.noise import (
    AdditiveNoise,
    CircuitNoise,
    MixedNoise,
    MultiplicativeNoise,
    NoiseModule,
    NoiseSpec,
    noise_modules,
)
from circuitnn.nn.scaling import Scaling
from circuitnn.nn.synthetic import synthetic_family
from circuitnn.nn.tables import FamilyTables
from circuitnn.nn.threads import torch_threads
from circuitnn.nn.weights import (
    AnalogConv2d,
    AnalogLinear,
    WeightNoiseSpec,
    to_analog,
    weight_noise_layers,
)

__all__ = [
    "MODES",
    "AdditiveNoise",
    "AnalogConv2d",
    "AnalogLinear",
    "CNNSpec",
    "CircuitActivation",
    "CircuitNoise",
    "CircuitSpec",
    "ConvSpec",
    "FamilyTables",
    "LayerSpec",
    "MLPSpec",
    "MixedNoise",
    "MultiplicativeNoise",
    "NoiseModule",
    "NoiseSpec",
    "Scaling",
    "WeightNoiseSpec",
    "activation_layers",
    "build",
    "build_cnn",
    "build_mlp",
    "chip_state",
    "circuit_activations",
    "draws",
    "inject",
    "lookup",
    "mlp_spec",
    "noise_modules",
    "quiet",
    "resample_chips",
    "reseed_noise",
    "restore_chip",
    "set_mode",
    "synthetic_family",
    "to_analog",
    "torch_threads",
    "weight_noise_layers",
]
