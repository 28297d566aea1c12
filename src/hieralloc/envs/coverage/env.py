"""PettingZoo ``ParallelEnv`` of the coverage grid: the batched core with B = 1."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from pettingzoo import ParallelEnv

from hieralloc.envs.base import SharedSpaces
from hieralloc.envs.coverage.config import CoverageConfig
from hieralloc.envs.coverage.core import CoverageCore
from hieralloc.envs.coverage.demand import DemandData


class CoverageEnv(SharedSpaces, ParallelEnv):
    """Demand-coverage grid of HGRL (Sec. 3, Sec. 4.1 with l = 1) as a PettingZoo parallel env.

    * agents ``agent_0 .. agent_{N-1}``; action space ``Discrete(w*w)``: cell of the agent's w x w
      window to move to, row-major, centre = stay; off-grid moves are clipped, and
      ``infos[agent]['action_mask']`` (int8, 1 = stays on the grid) marks them.
    * observation ``Box(3 + w*w)`` float32: x/(H-1), y/(W-1), t/T, demand of F_t in the window.
    * ``state()``: ``Box(H*W + 2N + 1)``: the frame F_t, all positions, t/T.
    * reward per :class:`~hieralloc.envs.coverage.core.CoverageCore`; truncation after T steps.
    * ``infos[agent]`` per step: served, demand, window_demand, capacity, coverable (team numbers),
      served_agent, distance, manhattan (this agent), team_reward, t, frame, action_mask.
    * ``episode_metrics()``: AC, AC_ratio, AC_norm, ATD, Score_d1, Score_d2, served, demand, distance,
      team_return, steps (see :mod:`hieralloc.envs.coverage.metrics`).

    ``reset(options={'offset': k, 'positions': [[x, y], ...]})`` fixes the start frame / cells.
    """

    metadata = {"name": "coverage_v0", "render_modes": ["ansi"], "is_parallelizable": True}

    def __init__(self, config: CoverageConfig | None = None, demand: DemandData | np.ndarray | None = None,
                 render_mode: str | None = None) -> None:
        self.config = config if config is not None else CoverageConfig()
        self.core = CoverageCore(self.config, 1, demand)
        self.render_mode = render_mode
        self.possible_agents = [f"agent_{i}" for i in range(self.core.N)]
        self.agents: list[str] = []
        self._index = {a: i for i, a in enumerate(self.possible_agents)}
        dhigh = 1.0 if self.config.obs_normalize else np.inf  # normalised demand lies in [0, 1]
        high = np.full(self.core.obs_dim, dhigh, dtype=np.float32)
        high[:3] = 1.0
        self._obs_space = gymnasium.spaces.Box(0.0, high, dtype=np.float32)
        self._act_space = gymnasium.spaces.Discrete(self.core.K)
        shigh = np.ones(self.core.state_dim, dtype=np.float32)
        shigh[: self.core.H * self.core.W] = dhigh
        self.state_space = gymnasium.spaces.Box(0.0, shigh, dtype=np.float32)

    # ------------------------------------------------------------------ PettingZoo API
    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        opts = options or {}
        obs = self.core.reset(seed=seed, offsets=opts.get("offset"), positions=opts.get("positions"))
        self.agents = list(self.possible_agents)
        masks = self.core.action_masks()[0].astype(np.int8)
        infos = {a: {"t": 0, "frame": int(self.core.offset[0]), "action_mask": masks[i]}
                 for i, a in enumerate(self.agents)}
        return {a: obs[0, i] for i, a in enumerate(self.agents)}, infos

    def step(self, actions: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, float], dict[str, bool],
                                                     dict[str, bool], dict[str, dict[str, Any]]]:
        if not self.agents:
            return {}, {}, {}, {}, {}
        a = np.full((1, self.core.N), self.core.stay_action, dtype=np.int64)
        for agent, act in actions.items():
            if agent in self._index and act is not None:
                a[0, self._index[agent]] = int(act)
        res = self.core.step(a)
        masks = self.core.action_masks()[0].astype(np.int8)
        frame = int(self.core.frame_index(res.t)[0])
        team = {"served": float(res.served[0]), "demand": float(res.demand[0]),
                "coverable": float(res.coverable[0]),
                "window_demand": float(res.window_demand[0]), "capacity": float(res.capacity[0]),
                "team_reward": float(res.team_reward[0]), "t": res.t, "frame": frame}
        obs, rew, infos = {}, {}, {}
        for agent in self.agents:
            i = self._index[agent]
            obs[agent] = res.obs[0, i]
            rew[agent] = float(res.rewards[0, i])
            infos[agent] = {**team, "served_agent": float(res.served_agent[0, i]),
                            "distance": float(res.distance[0, i]), "manhattan": float(res.manhattan[0, i]),
                            "action_mask": masks[i]}
        term = dict.fromkeys(self.agents, False)
        trunc = dict.fromkeys(self.agents, bool(res.done))
        if res.done:
            self.agents = []
        return obs, rew, term, trunc, infos

    def state(self) -> np.ndarray:
        return self.core.state()[0]

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        frame = self.core.frames[int(self.core.frame_index(self.core.t)[0])]
        lvl = " .:-=+*#%@"
        q = np.minimum((frame / max(float(frame.max()), 1e-12) * (len(lvl) - 1)).astype(int), len(lvl) - 1)
        rows = [[lvl[v] for v in row] for row in q]
        for i, (x, y) in enumerate(self.core.pos[0]):
            rows[x][y] = chr(ord("A") + i % 26)
        return "\n".join("".join(r) for r in rows) + f"\nt={self.core.t}/{self.core.T}"

    def close(self) -> None:
        pass

    # ------------------------------------------------------------------ extras
    def episode_metrics(self) -> dict[str, float]:
        """Metrics of the current (or just finished) episode as floats."""
        return {k: float(v[0]) for k, v in self.core.episode_metrics().items()}

    def add_episode_info(self, **values: float) -> None:
        """Attach numbers to this episode's ``episode_metrics()`` (cleared by ``reset``)."""
        self.core.add_episode_info(**values)

    def action_mask(self, agent: str) -> np.ndarray:
        return self.core.action_masks()[0, self._index[agent]].astype(np.int8)

    @property
    def positions(self) -> np.ndarray:
        """(N, 2) current cells (x = row, y = column)."""
        return self.core.pos[0].copy()

    @property
    def t(self) -> int:
        return self.core.t

    def episode_frames(self) -> np.ndarray:
        """(T + 1, H, W) frames F_0..F_T of this episode (full information, for oracles)."""
        return self.core.episode_frames(0)


def make_env(config: CoverageConfig | None = None, **kwargs: Any) -> CoverageEnv:
    return CoverageEnv(config, **kwargs)


__all__ = ["CoverageEnv", "make_env"]
