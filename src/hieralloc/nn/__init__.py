"""Small neural building blocks shared by every method.

* :func:`mlp`: plain multi-layer perceptrons.
* :mod:`~hieralloc.nn.sharing`: parameter sharing across agents (none / full / full with agent id /
  grouped) with batched per-group layers, and the FC-GRU-FC / MLP agent network :class:`AgentNet`.
* :mod:`~hieralloc.nn.mixers`: VDN, QMIX and QPLEX mixers.
* :mod:`~hieralloc.nn.heads`: action-distribution heads (categorical, Gaussian, Beta).
* :mod:`~hieralloc.nn.normalize`: running statistics, value normalisation and PopArt.
"""

from hieralloc.nn.heads import ActionHead, BetaHead, CategoricalHead, GaussianHead, make_head
from hieralloc.nn.mixers import Mixer, QMixer, QPLEXMixer, VDNMixer
from hieralloc.nn.mlp import mlp
from hieralloc.nn.normalize import RunningMeanStd, ValueNormalizer
from hieralloc.nn.sharing import (
    SHARING_MODES,
    AgentNet,
    GroupGRUCell,
    GroupLayout,
    GroupLinear,
    default_assignment,
    n_param_groups,
)

__all__ = [
    "SHARING_MODES", "ActionHead", "AgentNet", "BetaHead", "CategoricalHead", "GaussianHead", "GroupGRUCell",
    "GroupLayout", "GroupLinear", "Mixer", "QMixer", "QPLEXMixer", "RunningMeanStd", "VDNMixer",
    "ValueNormalizer", "default_assignment", "make_head", "mlp", "n_param_groups",
]
