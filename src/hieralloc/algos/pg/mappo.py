"""Multi-agent PPO with a centralised critic (MAPPO; Yu et al. 2022).

Actors are decentralised, pi_i(a_i | o_i history); the critic sees the global state during
training (centralised training, decentralised execution; Yu et al. 2022, Sec. 3 and 4.2). Critic
inputs (``critic_input``):

* ``state_agent`` (default): V_i(s) with the agent's one-hot id under the default ``full_id``
  sharing (EPyMARL's centralised critic ``cv_critic``: state + agent id);
* ``state``: one team value V(s), evaluated once per step and shared by all agents (the
  "environment-provided global state" of Yu et al. 2022, Sec. 4.2; cheapest for large states);
* ``state_obs``: V_i(s, o_i), the state concatenated with the agent's observation (the
  "agent-specific global state" of Yu et al. 2022, Sec. 4.2).

The rest (GAE, clipped surrogate, value clipping and normalisation, entropy bonus) is the
multi-agent PPO of :mod:`hieralloc.algos.pg.ppo`. See docs/algorithms/mappo.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hieralloc.algos.pg.ppo import PPOConfig, PPOLearner
from hieralloc.config import param
from hieralloc.errors import ConfigError
from hieralloc.registry import AlgoSpec, Capabilities, register_algo


@dataclass
class MAPPOConfig(PPOConfig):
    """The multi-agent PPO family's hyper-parameters plus the centralised critic's input."""

    critic_input: str = param("state_agent", "critic input: state_agent (V_i(s) with the sharing mode; "
                              "EPyMARL), state (one V(s) for the team), state_obs (V_i(s, o_i); MAPPO's "
                              "agent-specific state)", choices=("state_agent", "state", "state_obs"))


    def validate(self) -> None:
        super().validate()
        if self.critic_input == "state" and self.reward == "individual":
            raise ConfigError("critic_input", "'state' learns one team value and cannot fit individual "
                              "rewards; use state_agent or state_obs, or reward=mean|sum")


class MAPPOLearner(PPOLearner):
    algo_name = "mappo"
    centralised = True

    def critic_spec(self) -> tuple[int, int, str]:
        cfg = self.cfg
        assert isinstance(cfg, MAPPOConfig)
        v = self.view
        if cfg.critic_input == "state":
            return v.state_dim, 1, "full"
        if cfg.critic_input == "state_obs":
            return v.state_dim + v.obs_dim, v.n_agents, cfg.sharing
        return v.state_dim, v.n_agents, cfg.sharing

    def critic_inputs(self, batch: dict[str, torch.Tensor], steps: slice) -> torch.Tensor:
        cfg = self.cfg
        assert isinstance(cfg, MAPPOConfig)
        s = batch["state"][steps]  # [T, B, S]
        if cfg.critic_input == "state":
            return s.unsqueeze(2)
        s = s.unsqueeze(2).expand(-1, -1, self.n_agents, -1)
        if cfg.critic_input == "state_obs":
            return torch.cat([s, batch["obs"][steps]], dim=-1)
        return s


CAPS = Capabilities(discrete=True, continuous=True, on_policy=True, needs_global_state=True,
                    supports_masks=True, learns=True)

register_algo(AlgoSpec(
    name="mappo",
    config_cls=MAPPOConfig,
    build=MAPPOLearner,
    caps=CAPS,
    description="multi-agent PPO with a centralised critic on the global state (Yu et al. 2022)",
))

__all__ = ["CAPS", "MAPPOConfig", "MAPPOLearner"]
