"""QPLEX (Wang et al. 2021): duplex dueling multi-agent Q-learning.

    Q_tot(tau, a) = V_tot(tau) + A_tot(tau, a)
                  = sum_i Q_i(tau, a_i) + sum_i (lambda_i(tau, a) - 1) A_i(tau, a_i)        (Eq. (10))

with individual values transformed by positive state-conditioned weights (Eq. (9)),
A_i = Q_i - max_a Q_i <= 0 and importance weights lambda_i > 0 from multi-head attention over the
state and the joint action (Eq. (11)); this satisfies the IGM principle exactly, so agents act
greedily on their own Q_i while Q_tot can represent the full IGM function class
(:class:`~hieralloc.nn.mixers.QPLEXMixer`). Trained with the family's double-Q TD loss
(:mod:`hieralloc.algos.value.learner`). See docs/algorithms/qplex.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from hieralloc.algos.value.learner import ValueConfig, ValueLearner
from hieralloc.config import param
from hieralloc.nn.mixers import Mixer, QPLEXMixer
from hieralloc.registry import AlgoSpec, Capabilities, register_algo


@dataclass
class QPLEXConfig(ValueConfig):
    """Value-based family hyper-parameters plus the duplex mixer's (QPLEX reference code's SMAC
    configuration ``qplex_sc2.yaml``; its matrix-game ``qplex.yaml`` uses 3 layers and 10 heads)."""

    hypernet_embed: int = param(64, "hidden width of the transformation hypernetworks w_i(s), b_i(s) (64)",
                                low=1)
    adv_hypernet_layers: int = param(1, "layers of each attention extractor (reference SMAC config: 1; "
                                     "matrix games: 3)", low=1, high=3)
    adv_hypernet_embed: int = param(64, "hidden width of multi-layer attention extractors (reference: 64)",
                                    low=1)
    num_kernel: int = param(4, "attention heads K of lambda_i (reference SMAC config: 4; matrix games: 10)",
                            low=1)
    stop_gradient: bool = param(True, "do not differentiate A_i inside A_tot (reference is_stop_gradient)")


class QPLEXLearner(ValueLearner):
    algo_name = "qplex"
    mixer_needs_state = True

    def make_mixer(self) -> Mixer | None:
        cfg = self.cfg
        assert isinstance(cfg, QPLEXConfig)
        return QPLEXMixer(self.view.n_agents, self.view.n_actions, self.view.state_dim, cfg.hypernet_embed,
                          cfg.adv_hypernet_layers, cfg.adv_hypernet_embed, cfg.num_kernel, cfg.stop_gradient)


CAPS = Capabilities(discrete=True, continuous=False, off_policy=True, needs_global_state=True,
                    supports_masks=True, learns=True)

register_algo(AlgoSpec(
    name="qplex",
    config_cls=QPLEXConfig,
    build=QPLEXLearner,
    caps=CAPS,
    description="QPLEX: duplex dueling mixer satisfying IGM (Wang et al. 2021)",
))

__all__ = ["CAPS", "QPLEXConfig", "QPLEXLearner"]
