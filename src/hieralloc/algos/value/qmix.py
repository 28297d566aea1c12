"""QMIX (Rashid et al. 2018): monotonic value factorisation with a state-conditioned mixer.

    Q_tot(tau, a, s) = f_s(Q_1(tau_1, a_1), ..., Q_N(tau_N, a_N)),   dQ_tot / dQ_i >= 0   (Eq. (5))

f_s is a two-layer mixing network whose non-negative weights come from hypernetworks of the
global state s (:class:`~hieralloc.nn.mixers.QMixer`); the monotonicity makes argmax Q_tot the
tuple of the agents' argmaxes, so agents act greedily on their own Q_i. Trained with the family's
double-Q TD loss, target mixer included (:mod:`hieralloc.algos.value.learner`). See
docs/algorithms/qmix.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from hieralloc.algos.value.learner import ValueConfig, ValueLearner
from hieralloc.config import param
from hieralloc.nn.mixers import Mixer, QMixer
from hieralloc.registry import AlgoSpec, Capabilities, register_algo


@dataclass
class QMIXConfig(ValueConfig):
    """Value-based family hyper-parameters plus the mixer's (PyMARL/EPyMARL defaults)."""

    mixing_embed_dim: int = param(32, "width E of the mixing network (PyMARL/EPyMARL: 32)", low=1)
    hypernet_layers: int = param(2, "layers of the weight hypernetworks (EPyMARL: 2)", low=1, high=2)
    hypernet_embed: int = param(64, "hidden width of 2-layer hypernetworks (EPyMARL: 64)", low=1)


class QMIXLearner(ValueLearner):
    algo_name = "qmix"
    mixer_needs_state = True

    def make_mixer(self) -> Mixer | None:
        cfg = self.cfg
        assert isinstance(cfg, QMIXConfig)
        return QMixer(self.view.n_agents, self.view.state_dim, cfg.mixing_embed_dim, cfg.hypernet_layers,
                      cfg.hypernet_embed)


CAPS = Capabilities(discrete=True, continuous=False, off_policy=True, needs_global_state=True,
                    supports_masks=True, learns=True)

register_algo(AlgoSpec(
    name="qmix",
    config_cls=QMIXConfig,
    build=QMIXLearner,
    caps=CAPS,
    description="QMIX: monotonic hypernetwork mixer on the global state (Rashid et al. 2018)",
))

__all__ = ["CAPS", "QMIXConfig", "QMIXLearner"]
