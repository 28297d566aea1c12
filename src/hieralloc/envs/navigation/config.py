"""Configuration of the constrained cooperative navigation environment (LPMARL Sec. 5.1, App. E.2)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from hieralloc.config import Config, param
from hieralloc.errors import ConfigError

#: reward settings of LPMARL App. E, Table 5
REWARDS = ("dense", "sparse")
#: movement models: MPE's 5 discrete force actions, or a continuous 2-D force
MOVEMENTS = ("discrete", "continuous")


@dataclass
class NavigationConfig(Config):
    """Every parameter of constrained cooperative navigation.

    The defaults are the (M, N) = (3, 5) setting of LPMARL Table 1 with the dense reward of Table 5
    and MPE's particle physics (see docs/environments/navigation.md for every choice the paper
    leaves open).
    """

    n_agents: int = param(5, "number of agents N (LPMARL Table 1: 5 or 7; Table 2: up to 20)", low=1, high=1000)
    n_landmarks: int = param(3, "number of landmarks (tasks) M, at most N: every landmark has capacity >= 1 "
                             "(LPMARL Table 1: 3 or 5)", low=1, high=1000)
    episode_length: int = param(50, "steps per episode (LPMARL App. E.2: 50)", low=1, high=100_000)
    reward: str = param("dense", "reward setting of LPMARL Table 5: 'dense' (low level adds distance and "
                        "collision terms) or 'sparse' (+1 terms only)", choices=REWARDS)
    movement: str = param("discrete", "'discrete': MPE's Discrete(5) no-op/left/right/down/up; 'continuous': "
                          "Box(-1, 1, (2,)) force per axis (both times the MPE sensitivity 5)", choices=MOVEMENTS)
    obs_range: float = param(1.0, "observation range: landmarks and other agents farther than this are zeroed "
                             "in observations and masked in visible() (0: unlimited, full observability)",
                             low=0.0)
    reach_radius: float = param(0.1, "an agent occupies (has reached) its nearest landmark when closer than "
                                "this (MPE's capture radius 0.1)", low=0.0, low_open=True)
    agent_size: float = param(0.05, "agent radius: two agents collide when closer than 2 * agent_size "
                              "(MPE's default entity size 0.05)", low=0.0)
    contact_force: float = param(0.0, "MPE soft contact force between colliding agents (MPE: 100); 0: "
                                 "collisions are counted and penalised but agents pass through each other",
                                 low=0.0)
    high_weight: float = param(0.5, "weight of the high-level reward in the per-agent reward; the low-level "
                               "reward gets 1 - high_weight (LPMARL Table 5, non-hierarchical column: 0.5)",
                               low=0.0, high=1.0)
    distance_weight: float = param(1.0, "dense setting: coefficient of the distance to the nearest landmark in "
                                   "the low-level reward", low=0.0)
    collision_penalty: float = param(0.1, "dense setting: low-level penalty per other agent an agent collides "
                                     "with (MPE simple_spread: 1, where every landmark holds one agent; ours 0.1, "
                                     "because agents sharing a landmark of capacity >= 2 must stand within "
                                     "reach_radius of it, i.e. nearly within collision distance of each other; "
                                     "docs/environments/navigation.md)", low=0.0)
    capacities: tuple[int, ...] = param((), "fixed landmark capacities k_1..k_M (positive, summing to N); empty: "
                                        "a uniformly random composition of N into M parts each episode "
                                        "(LPMARL App. E.2)")
    terminate_on_success: bool = param(False, "end the episode (terminated) at the first step where every "
                                       "landmark holds exactly its capacity")
    task_neighbors: int = param(3, "task_observation(): number of nearest other agents described", low=0,
                                high=1000)

    def validate(self) -> None:
        super().validate()
        if self.n_landmarks > self.n_agents:
            raise ConfigError("n_landmarks", f"must be at most n_agents = {self.n_agents} (the capacities are a "
                              f"partition of N into M positive parts), got {self.n_landmarks}; lower "
                              f"env.n_landmarks or raise env.n_agents")
        if self.capacities:
            k = list(self.capacities)
            if len(k) != self.n_landmarks or any(c < 1 for c in k) or sum(k) != self.n_agents:
                raise ConfigError("capacities", f"must be {self.n_landmarks} positive integers summing to "
                                  f"n_agents = {self.n_agents}, got {k}; or leave it empty for random "
                                  f"capacities")

    def replace(self, **changes: Any) -> NavigationConfig:
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)


__all__ = ["MOVEMENTS", "REWARDS", "NavigationConfig"]
