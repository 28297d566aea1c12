"""Policy-gradient cooperative MARL: IPPO and MAPPO over one multi-agent PPO learner.

Importing this package registers ``ippo`` and ``mappo``.
"""

from hieralloc.algos.pg import ippo, mappo
from hieralloc.algos.pg.ppo import PPOConfig, PPOLearner, PPOPolicy, clipped_surrogate, gae, value_loss

__all__ = ["PPOConfig", "PPOLearner", "PPOPolicy", "clipped_surrogate", "gae", "ippo", "mappo", "value_loss"]
