"""Independent PPO (IPPO; de Witt et al. 2020, as benchmarked by Papoudakis et al. 2021).

Every agent runs PPO with a decentralised critic on its own observation history, V_i(o_i)
(parameters shared according to ``sharing``, like the actors). The learner is the multi-agent PPO
of :mod:`hieralloc.algos.pg.ppo` with the agents' observations as critic inputs. DyPS builds on
IPPO and MAPPO with grouped sharing (DyPS Sec. 3). See docs/algorithms/ippo.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from hieralloc.algos.pg.ppo import PPOConfig, PPOLearner
from hieralloc.registry import AlgoSpec, Capabilities, register_algo


@dataclass
class IPPOConfig(PPOConfig):
    """Hyper-parameters of IPPO: the multi-agent PPO family's (:class:`PPOConfig`)."""


class IPPOLearner(PPOLearner):
    algo_name = "ippo"
    centralised = False


CAPS = Capabilities(discrete=True, continuous=True, on_policy=True, needs_global_state=False,
                    supports_masks=True, learns=True)

register_algo(AlgoSpec(
    name="ippo",
    config_cls=IPPOConfig,
    build=IPPOLearner,
    caps=CAPS,
    description="independent PPO: per-agent critics on observations (de Witt et al. 2020)",
))

__all__ = ["CAPS", "IPPOConfig", "IPPOLearner"]
