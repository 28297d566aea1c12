"""OHIO's learners (Schmidt et al., OHIO Sec. 4-5, App. B.3.3, B.4.3, B.5): graph policies over the
goal (``ohio``) or flow (``e2e``) formulation of a network environment, trained online (SAC) or
offline from a collected dataset (BC, IQL, CQL, Cal-QL), with the fine-tuning protocol of B.5.2.

Registered names (``families=("mobility", "supply")``, continuous actions):

* ``sac``: online soft actor-critic (Table 12); ``finetune_from=RUN`` fine-tunes a trained run.
* ``ohio-bc``, ``ohio-iql``, ``ohio-cql``, ``ohio-calql``: offline from ``dataset=DIR``
  (``train.steps`` counts gradient steps); ``offline_steps=K`` continues online after K steps
  (not BC). ``goals=observed`` is the Observed State baseline.

See docs/methods/ohio-learners.md, docs/algorithms/sac.md and docs/algorithms/offline.md.
"""

from __future__ import annotations

from hieralloc.algos.ohio.algorithms import (
    BCLearner,
    CalQLLearner,
    CQLLearner,
    IQLLearner,
    SACLearner,
    policy_from_run,
)
from hieralloc.algos.ohio.config import (
    FAMILY_DEFAULTS,
    BCConfig,
    CalQLConfig,
    CQLConfig,
    IQLConfig,
    OfflineConfig,
    OHIOConfig,
    SACConfig,
)
from hieralloc.algos.ohio.dists import ActionSpec, make_dist
from hieralloc.algos.ohio.learner import GraphView, OHIOLearner, OHIOPolicy, env_family
from hieralloc.algos.ohio.nets import GraphActor, GraphCritic, GraphValue, NetSpec
from hieralloc.registry import AlgoSpec, Capabilities, register_algo

FAMILIES = ("mobility", "supply")
CAPS = Capabilities(discrete=False, continuous=True, off_policy=True, needs_global_state=False,
                    supports_masks=False, learns=True, families=FAMILIES)

#: name -> (learner class, config class, description)
LEARNERS = {
    "sac": (SACLearner, SACConfig, "OHIO: online soft actor-critic on the goal or flow formulation, graph "
            "networks, double Q, targets (Table 12); finetune_from=RUN fine-tunes a trained run (App. B.5.2)"),
    "ohio-bc": (BCLearner, BCConfig, "OHIO: behaviour cloning of the inverted goals (or flows) of an offline "
                "dataset (algo.dataset=DIR)"),
    "ohio-iql": (IQLLearner, IQLConfig, "OHIO: implicit Q-learning (expectile 0.9, temperature 3) on an offline "
                 "dataset (algo.dataset=DIR)"),
    "ohio-cql": (CQLLearner, CQLConfig, "OHIO: conservative Q-learning CQL(H) (alpha 1, optional Lagrange) on an "
                 "offline dataset (algo.dataset=DIR)"),
    "ohio-calql": (CalQLLearner, CalQLConfig, "OHIO: calibrated Q-learning (Cal-QL) on an offline dataset, for "
                   "online fine-tuning (algo.dataset=DIR algo.offline_steps=K)"),
}

for _name, (_cls, _cfg, _desc) in LEARNERS.items():
    register_algo(AlgoSpec(name=_name, config_cls=_cfg, build=_cls, caps=CAPS, description=_desc))

__all__ = ["CAPS", "FAMILIES", "FAMILY_DEFAULTS", "LEARNERS", "ActionSpec", "BCConfig", "BCLearner", "CQLConfig",
           "CQLLearner", "CalQLConfig", "CalQLLearner", "GraphActor", "GraphCritic", "GraphValue", "GraphView",
           "IQLConfig", "IQLLearner", "NetSpec", "OHIOConfig", "OHIOLearner", "OHIOPolicy", "OfflineConfig",
           "SACConfig", "SACLearner", "env_family", "make_dist", "policy_from_run"]
