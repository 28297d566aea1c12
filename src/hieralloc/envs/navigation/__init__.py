"""Constrained cooperative navigation of LPMARL (Sec. 5.1, App. E.1-E.2, Table 5): N agents occupy
M <= N landmarks, each with a capacity k_j, a random composition of N drawn every episode.

Registered names (stable; family ``navigation``; docs/environments/navigation.md):

* environment ``navigation``: :class:`NavigationConfig` (defaults: N = 5, M = 3, dense reward,
  discrete movement, obs_range 1, 50 steps). Every field is configurable, e.g.
  ``env.n_agents=10 env.n_landmarks=4 env.reward=sparse env.movement=continuous``.
* scenario ``navigation-3x5``: (M, N) = (3, 5) of LPMARL Table 1.
* scenario ``navigation-5x7``: (M, N) = (5, 7) of LPMARL Table 1.

Flat multi-agent interface (for QMIX, VDN, MAPPO, ...): :class:`NavigationEnv` is a PettingZoo
``ParallelEnv`` with fixed-size per-agent observations, ``state()``, all-ones action masks
(discrete) and ``episode_metrics()`` (``win``, ``min_distance``, ``collisions``, ``return``, ...).
The batched :class:`NavigationCore` runs B episodes in parallel arrays and is the one
implementation (the env is the core with B = 1).

Graph data for LPMARL (methods of :class:`NavigationEnv`; the core has the same with a leading
batch axis B):

* ``agent_positions() -> (N, 2)``, ``agent_velocities() -> (N, 2)``, ``landmark_positions() -> (M, 2)``
* ``capacities() -> (M,) int64``: k_j of LPMARL Eq. (5), summing to N
* ``distances() -> (N, M)``: agent-landmark distances d_ij (LPMARL Fig. 2b, the LP-distance cost)
* ``visible() -> (N, M) bool``: landmark within the agent's observation range (Dec-LPMARL's
  local agent-task edges, App. D); ``agent_visible() -> (N, N) bool`` (agent-agent edges)
* ``occupancy() -> (M,) int64``: agents currently occupying each landmark
* ``task_observation(assignment (N,)) -> (N, 10 + 4 K) float32``: each agent's observation
  conditioned on its assigned landmark (LPMARL Eq. (8)); ``task_obs_dim`` gives the width
* ``task_rewards(assignment (N,)) -> (N,)``: the low-level reward for reaching the assigned landmark
  (Table 5 terms), from which the per-group r^l_j of Eq. (18) is summed.
"""

from __future__ import annotations

from typing import Any

from hieralloc.envs.navigation.config import MOVEMENTS, REWARDS, NavigationConfig
from hieralloc.envs.navigation.core import (
    METRIC_KEYS,
    MOVES,
    N_ACTIONS,
    NOOP,
    Geometry,
    NavigationCore,
    StepResult,
    random_capacities,
)
from hieralloc.envs.navigation.env import NavigationEnv, make_env
from hieralloc.registry import EnvSpec, ScenarioSpec, register_env, register_scenario

FAMILY = "navigation"

register_env(EnvSpec(
    name="navigation",
    family=FAMILY,
    config_cls=NavigationConfig,
    make=make_env,
    description="LPMARL constrained cooperative navigation: N agents occupy M <= N landmarks within random "
                "capacities (default M=3, N=5, dense reward, discrete movement; movement=continuous for Box "
                "actions)",
    # the action type is a config field (movement): discrete by default, continuous on request
    discrete=True,
    continuous=True,
    has_global_state=True,
    has_masks=False,
))

SCENARIO_VALUES: dict[str, dict[str, Any]] = {
    "navigation-3x5": {"n_landmarks": 3, "n_agents": 5},
    "navigation-5x7": {"n_landmarks": 5, "n_agents": 7},
}
_DESCRIPTIONS = {
    "navigation-3x5": "LPMARL Table 1: M=3 landmarks, N=5 agents, random capacities, 50 steps, dense reward",
    "navigation-5x7": "LPMARL Table 1: M=5 landmarks, N=7 agents, random capacities, 50 steps, dense reward",
}
for _name, _values in SCENARIO_VALUES.items():
    register_scenario(ScenarioSpec(name=_name, env="navigation", values=_values, description=_DESCRIPTIONS[_name]))

from hieralloc.envs.navigation import invariants as _invariants  # noqa: E402,F401  (registers checks)

__all__ = [
    "FAMILY", "METRIC_KEYS", "MOVEMENTS", "MOVES", "NOOP", "N_ACTIONS", "REWARDS", "SCENARIO_VALUES", "Geometry",
    "NavigationConfig", "NavigationCore", "NavigationEnv", "StepResult", "make_env", "random_capacities",
]
