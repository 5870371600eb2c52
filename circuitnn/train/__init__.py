"""Training regimes and the one training entry point (imports torch).

``train(model, (x, y), regime=AdversarialWeights(zeta=0.1), config=TrainConfig(epochs=20))``
returns a :class:`History`; regimes are small frozen dataclasses (:class:`Clean`,
:class:`NoiseInjection`, :class:`Dropout`, :class:`WeightSmoothing`,
:class:`AdversarialWeights`, :class:`ChipRetrain`).
"""

from circuitnn._torch import require_torch

require_torch("circuitnn.train")


from circuitnn.train.attack import perturbable, projected_attack
from circuitnn.train.data import as_tensors, batches, load_digits
from circuitnn.train.history import History
from circuitnn.train.loop import TrainConfig, train
from circuitnn.train.regimes import (
    REGIMES,
    AdversarialWeights,
    ChipRetrain,
    Clean,
    Dropout,
    NoiseInjection,
    Regime,
    WeightSmoothing,
)
from circuitnn.train.tasks import Task

__all__ = [
    "REGIMES",
    "AdversarialWeights",
    "ChipRetrain",
    "Clean",
    "Dropout",
    "History",
    "NoiseInjection",
    "Regime",
    "Task",
    "TrainConfig",
    "WeightSmoothing",
    "as_tensors",
    "batches",
    "load_digits",
    "perturbable",
    "projected_attack",
    "train",
]
