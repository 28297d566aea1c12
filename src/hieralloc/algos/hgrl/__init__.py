"""HGRL (hierarchical gradient-informed RL, paper 000 in ../shared/papers): GDI-Net
(:mod:`~hieralloc.algos.hgrl.gdinet`), the agents' multi-scale demand features
(:mod:`~hieralloc.algos.hgrl.features`), the hierarchical learner (:mod:`~hieralloc.algos.hgrl.learner`,
algorithm ``hgrl``) and the GridNet baseline (:mod:`~hieralloc.algos.hgrl.gridnet`, algorithm
``gridnet``). Importing the package registers both algorithms; plots live in
:mod:`hieralloc.algos.hgrl.plots` (matplotlib, imported where needed). See docs/methods/hgrl.md.
"""

from hieralloc.algos.hgrl import (
    gridnet,  # noqa: F401  (registers 'gridnet')
    learner,  # noqa: F401  (registers 'hgrl')
)
