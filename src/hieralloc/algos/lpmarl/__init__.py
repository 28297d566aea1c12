"""LPMARL learners (paper 002 in ../shared/papers): the hierarchical learner with an LP assignment over
GNN costs and task-conditioned group policies, Dec-LPMARL and the App. F.1.3 ablations, all one class
(:class:`~hieralloc.algos.lpmarl.learner.LPMARLLearner`) configured by
:class:`~hieralloc.algos.lpmarl.config.LPMARLConfig`.

Importing the package registers ``lpmarl``, ``dec-lpmarl``, ``lpmarl-nolp``, ``lpmarl-lpdist`` and
``lpmarl-greedy``. The building blocks live in :mod:`hieralloc.lpmarl.assign` (the LP layer) and
:mod:`hieralloc.nn.bipartite` (the GNN). See docs/methods/lpmarl.md.
"""

from hieralloc.algos.lpmarl.config import (
    HIGH_LEVELS,
    DecLPMARLConfig,
    GreedyConfig,
    LPDistConfig,
    LPMARLConfig,
    NoLPConfig,
)
from hieralloc.algos.lpmarl.learner import VARIANTS, LPMARLLearner, LPMARLPolicy

__all__ = ["HIGH_LEVELS", "VARIANTS", "DecLPMARLConfig", "GreedyConfig", "LPDistConfig", "LPMARLConfig",
           "LPMARLLearner", "LPMARLPolicy", "NoLPConfig"]
