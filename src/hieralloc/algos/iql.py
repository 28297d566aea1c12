"""Independent Q-learning (IQL): every agent learns its own Q_i(tau_i, a_i) by deep Q-learning.

Each agent treats the others as part of the environment (Tan 1993; deep recurrent version as in
Hausknecht & Stone 2015 and EPyMARL, Papoudakis et al. 2021). It is the value-based learner of
:mod:`hieralloc.algos.value.learner` without a mixer: the TD loss is taken per agent,

    y_i,t = r_i,t + gamma (1 - d_i,t) Q^-_i(tau_i,t+1, argmax_a Q_i(tau_i,t+1, a))     (double Q)
    L     = mean over real (step, agent) pairs of (Q_i(tau_i,t, a_i,t) - y_i,t)^2

with r_i the team reward (``reward=mean|sum``) or the agent's own (``reward=individual``).
Parameter sharing, recurrent agents, targets and checkpointing are the family's; see
docs/algorithms/iql.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from hieralloc.algos.value.learner import GreedyQPolicy, ValueConfig, ValueLearner
from hieralloc.registry import AlgoSpec, Capabilities, register_algo


@dataclass
class IQLConfig(ValueConfig):
    """Hyper-parameters of IQL: exactly the value-based family's (:class:`ValueConfig`)."""


class IQLLearner(ValueLearner):
    """Independent Q-learners (no mixer)."""

    algo_name = "iql"


CAPS = Capabilities(discrete=True, continuous=False, off_policy=True, needs_global_state=False,
                    supports_masks=True, learns=True)

register_algo(AlgoSpec(
    name="iql",
    config_cls=IQLConfig,
    build=IQLLearner,
    caps=CAPS,
    description="independent Q-learning, recurrent agents, double Q, episode replay (Tan 1993; EPyMARL)",
))

__all__ = ["CAPS", "GreedyQPolicy", "IQLConfig", "IQLLearner"]
