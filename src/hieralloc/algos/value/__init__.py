"""Value-based cooperative MARL: IQL (:mod:`hieralloc.algos.iql`), VDN, QMIX and QPLEX.

One learner class (:class:`~hieralloc.algos.value.learner.ValueLearner`) with the mixer as the
varying part. Importing this package registers ``vdn``, ``qmix`` and ``qplex``.
"""

from hieralloc.algos.value import qmix, qplex, vdn
from hieralloc.algos.value.learner import GreedyQPolicy, ValueConfig, ValueLearner

__all__ = ["GreedyQPolicy", "ValueConfig", "ValueLearner", "qmix", "qplex", "vdn"]
