"""Value-Decomposition Networks (VDN; Sunehag et al. 2018).

The team value is the sum of the agents' utilities (Sunehag et al. 2018, Eq. (1)):

    Q_tot(tau, a) = sum_i Q_i(tau_i, a_i)

trained end to end on the team reward with the family's double-Q TD loss
(:mod:`hieralloc.algos.value.learner`); every agent acts greedily on its own Q_i, and the sum
makes the joint greedy action the tuple of individual greedy actions. HGRL uses VDN at every
level of its hierarchy (HGRL Sec. 4.3). See docs/algorithms/vdn.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from hieralloc.algos.value.learner import ValueConfig, ValueLearner
from hieralloc.nn.mixers import Mixer, VDNMixer
from hieralloc.registry import AlgoSpec, Capabilities, register_algo


@dataclass
class VDNConfig(ValueConfig):
    """Hyper-parameters of VDN: the value-based family's (VDN's mixer has no parameters)."""


class VDNLearner(ValueLearner):
    algo_name = "vdn"

    def make_mixer(self) -> Mixer | None:
        return VDNMixer()


CAPS = Capabilities(discrete=True, continuous=False, off_policy=True, needs_global_state=False,
                    supports_masks=True, learns=True)

register_algo(AlgoSpec(
    name="vdn",
    config_cls=VDNConfig,
    build=VDNLearner,
    caps=CAPS,
    description="value decomposition networks: Q_tot = sum_i Q_i (Sunehag et al. 2018)",
))

__all__ = ["CAPS", "VDNConfig", "VDNLearner"]
