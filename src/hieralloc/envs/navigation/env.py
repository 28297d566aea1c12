"""PettingZoo ``ParallelEnv`` of constrained cooperative navigation: the batched core with B = 1."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from pettingzoo import ParallelEnv

from hieralloc.envs.base import SharedSpaces
from hieralloc.envs.navigation.config import NavigationConfig
from hieralloc.envs.navigation.core import N_ACTIONS, NOOP, NavigationCore


class NavigationEnv(SharedSpaces, ParallelEnv):
    """Constrained cooperative navigation (LPMARL Sec. 5.1, App. E.2) as a PettingZoo parallel env.

    * agents ``agent_0 .. agent_{N-1}``; action ``Discrete(5)`` (MPE: 0 no-op, 1 left, 2 right, 3 down,
      4 up; every action is always valid, ``infos[agent]['action_mask']`` is all ones) or, with
      ``movement='continuous'``, ``Box(-1, 1, (2,), float32)`` (force per axis). An agent missing
      from the action dict does nothing (no-op / zero force).
    * observation ``Box((5 + 4M + 3(N-1),), float32)`` and ``state()`` ``Box((4N + 3M + 1,))``: layouts
      in :mod:`hieralloc.envs.navigation.core`; finite bounds from :meth:`NavigationCore.bounds`
      (what episodes from the spawn boxes can reach).
    * rewards: LPMARL Table 5 (``high_weight * r^h + (1 - high_weight) * r^l_i``); truncation after
      ``episode_length`` steps; termination at success only with ``terminate_on_success``.
    * ``infos[agent]`` per step: ``high_reward`` (r^h, team), ``low_reward`` (r^l_i), ``reached``,
      ``landmark`` (occupied landmark or -1), ``distance`` (to the nearest landmark), ``collisions``
      (other agents it collides with), ``success`` (team), ``t``, and ``action_mask`` (discrete).
    * ``episode_metrics()``: win, min_distance, collisions, return, ... (see
      :meth:`NavigationCore.episode_metrics`).
    * graph accessors for LPMARL: :meth:`agent_positions`, :meth:`agent_velocities`,
      :meth:`landmark_positions`, :meth:`capacities`, :meth:`distances`, :meth:`visible`,
      :meth:`agent_visible`, :meth:`occupancy`; task-conditioned low level:
      :meth:`task_observation`, :meth:`task_rewards`.

    ``reset(options={'agent_positions': (N, 2), 'landmark_positions': (M, 2), 'capacities': (M,)})``
    fixes parts of the initial state.
    """

    metadata = {"name": "constrained_navigation_v0", "render_modes": ["ansi"], "is_parallelizable": True}

    def __init__(self, config: NavigationConfig | None = None, render_mode: str | None = None) -> None:
        self.config = config if config is not None else NavigationConfig()
        self.core = NavigationCore(self.config, 1)
        self.render_mode = render_mode
        self.n_agents, self.n_landmarks = self.core.N, self.core.M
        self.possible_agents = [f"agent_{i}" for i in range(self.core.N)]
        self.agents: list[str] = []
        self._index = {a: i for i, a in enumerate(self.possible_agents)}
        olo, ohi, slo, shi = self.core.bounds()
        self._obs_space = gymnasium.spaces.Box(olo, ohi, dtype=np.float32)
        self._act_space: gymnasium.spaces.Space[Any]
        if self.core.discrete:
            self._act_space = gymnasium.spaces.Discrete(N_ACTIONS)
        else:
            self._act_space = gymnasium.spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
        self.state_space = gymnasium.spaces.Box(slo, shi, dtype=np.float32)
        self._mask = np.ones(N_ACTIONS, dtype=np.int8)

    # ------------------------------------------------------------------ PettingZoo API
    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        opts = options or {}
        obs = self.core.reset(seed=seed, agent_positions=opts.get("agent_positions"),
                              landmark_positions=opts.get("landmark_positions"),
                              capacities=opts.get("capacities"))
        self.agents = list(self.possible_agents)
        g = self.core.geom
        infos = {a: self._info(g.reached[0, i], g.landmark[0, i], g.min_dist[0, i], g.collisions[0, i],
                               g.success[0])
                 for i, a in enumerate(self.agents)}
        return {a: obs[0, i] for i, a in enumerate(self.agents)}, infos

    def _info(self, reached: Any, landmark: Any, distance: Any, collisions: Any, success: Any,
              high: float = 0.0, low: float = 0.0) -> dict[str, Any]:
        info: dict[str, Any] = {"high_reward": float(high), "low_reward": float(low), "reached": bool(reached),
                                "landmark": int(landmark), "distance": float(distance),
                                "collisions": int(collisions), "success": bool(success), "t": self.core.t}
        if self.core.discrete:
            info["action_mask"] = self._mask.copy()
        return info

    def step(self, actions: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, float], dict[str, bool],
                                                     dict[str, bool], dict[str, dict[str, Any]]]:
        if not self.agents:
            return {}, {}, {}, {}, {}
        c = self.core
        if c.discrete:
            a: np.ndarray = np.full((1, c.N), NOOP, dtype=np.int64)
            for agent, act in actions.items():
                if agent in self._index and act is not None:
                    a[0, self._index[agent]] = int(act)
        else:
            a = np.zeros((1, c.N, 2))
            for agent, act in actions.items():
                if agent in self._index and act is not None:
                    v = np.asarray(act, dtype=float).reshape(-1)
                    if v.shape != (2,):
                        raise ValueError(f"the action of {agent} must have 2 entries (force x, y), got {v.size}")
                    a[0, self._index[agent]] = v
        res = c.step(a)
        obs, rew, infos = {}, {}, {}
        for agent in self.agents:
            i = self._index[agent]
            obs[agent] = res.obs[0, i]
            rew[agent] = float(res.rewards[0, i])
            infos[agent] = self._info(res.reached[0, i], res.landmark[0, i], res.distance[0, i],
                                      res.collisions[0, i], res.success[0], res.high_reward[0],
                                      res.low_reward[0, i])
        term = dict.fromkeys(self.agents, bool(res.terminated[0]))
        trunc = dict.fromkeys(self.agents, bool(res.truncated[0]))
        if res.terminated[0] or res.truncated[0]:
            self.agents = []
        return obs, rew, term, trunc, infos

    def state(self) -> np.ndarray:
        return self.core.state()[0]

    def render(self) -> str | None:
        """ANSI picture of a 2.4 x 2.4 window: landmarks as their capacity digit (``*`` above 9),
        agents as letters (an agent hides the landmark it stands on)."""
        if self.render_mode != "ansi":
            return None
        size, half = 25, 1.2
        rows = [["." for _ in range(size)] for _ in range(size)]

        def cell(p: np.ndarray) -> tuple[int, int] | None:
            x, y = (p + half) / (2 * half) * (size - 1)
            if not (0 <= x <= size - 1 and 0 <= y <= size - 1):
                return None
            return size - 1 - int(round(y)), int(round(x))

        for j, p in enumerate(self.core.landmarks[0]):
            rc = cell(p)
            if rc is not None:
                k = int(self.core.capacity[0, j])
                rows[rc[0]][rc[1]] = str(k) if k < 10 else "*"
        for i, p in enumerate(self.core.pos[0]):
            rc = cell(p)
            if rc is not None:
                rows[rc[0]][rc[1]] = chr(ord("A") + i % 26)
        return "\n".join("".join(r) for r in rows) + f"\nt={self.core.t}/{self.core.T}"

    def close(self) -> None:
        pass

    # ------------------------------------------------------------------ extras
    def episode_metrics(self) -> dict[str, float]:
        """Metrics of the current (or just finished) episode as floats."""
        return {k: float(v[0]) for k, v in self.core.episode_metrics().items()}

    def action_mask(self, agent: str) -> np.ndarray:
        """All ones (Discrete(5)): no movement is ever invalid."""
        return self._mask.copy()

    @property
    def t(self) -> int:
        return self.core.t

    # graph data for LPMARL (copies; current state)
    def agent_positions(self) -> np.ndarray:
        """(N, 2) agent positions p_i."""
        return self.core.pos[0].copy()

    def agent_velocities(self) -> np.ndarray:
        """(N, 2) agent velocities v_i."""
        return self.core.vel[0].copy()

    def landmark_positions(self) -> np.ndarray:
        """(M, 2) landmark positions l_j."""
        return self.core.landmarks[0].copy()

    def capacities(self) -> np.ndarray:
        """(M,) int64 landmark capacities k_j (LPMARL Eq. (5)); they sum to N."""
        return self.core.capacity[0].copy()

    def distances(self) -> np.ndarray:
        """(N, M) agent-landmark distances d_ij."""
        return self.core.geom.dist[0].copy()

    def visible(self) -> np.ndarray:
        """(N, M) bool: landmark j within agent i's observation range (Dec-LPMARL's local edges)."""
        return self.core.visible()[0]

    def agent_visible(self) -> np.ndarray:
        """(N, N) bool: agent l within agent i's observation range (diagonal False)."""
        return self.core.agent_visible()[0]

    def occupancy(self) -> np.ndarray:
        """(M,) int64 number of agents occupying each landmark."""
        return self.core.geom.counts[0].copy()

    def task_observation(self, assignment: Any) -> np.ndarray:
        """(N, 10 + 4 task_neighbors) float32 observation conditioned on ``assignment`` (N,) landmark
        indices (layout: :meth:`NavigationCore.task_observation`)."""
        return self.core.task_observation(assignment)[0]

    def task_rewards(self, assignment: Any) -> np.ndarray:
        """(N,) low-level reward of each agent for its assigned landmark after the last step."""
        return self.core.task_rewards(assignment)[0]

    @property
    def task_obs_dim(self) -> int:
        return self.core.task_obs_dim


def make_env(config: NavigationConfig | None = None, **kwargs: Any) -> NavigationEnv:
    return NavigationEnv(config, **kwargs)


__all__ = ["NavigationEnv", "make_env"]
