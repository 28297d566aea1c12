"""PettingZoo ``ParallelEnv`` of the combat (dynamic target assignment) environment: the batched core with B = 1."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from pettingzoo import ParallelEnv

from hieralloc.envs.base import SharedSpaces
from hieralloc.envs.combat.config import CombatConfig
from hieralloc.envs.combat.core import CombatCore, StepResult


class CombatEnv(SharedSpaces, ParallelEnv):
    """Combat-style dynamic target assignment (a SMAC stand-in, LPMARL Sec. 5.2) as a PettingZoo parallel env.

    * agents ``agent_0 .. agent_{N-1}``, one per ally unit; they stay in ``agents`` until the episode
      ends (a dead unit's only legal action is no-op, as in SMAC). Action space ``Discrete(6 + M)``:
      no-op, stop, north, south, east, west, attack enemy j. ``infos[agent]['action_mask']`` (int8) and
      :meth:`action_mask` mark the legal ones; illegal actions are executed as stop (no-op when dead).
    * observation ``Box(-1, 1, (obs_dim,))`` float32 (SMAC layout, :meth:`CombatCore.observations`);
      ``state()`` ``Box(-1, 1, (state_dim,))`` (:meth:`CombatCore.state`).
    * reward: the team reward (sparse win/defeat by default), the same for every agent; terminations
      on a win, defeat or draw, truncations after ``episode_limit`` steps.
    * ``infos[agent]`` per step: action_mask, alive, t, team_reward, dense_reward, battle_won,
      battle_lost, allies_alive, enemies_alive, enemies_killed_step, damage_dealt, damage_taken (team).
    * ``episode_metrics()``: win, loss, draw, timeout, return, dense_return, enemies_killed, allies_alive,
      allies_killed, episode_length, damage_dealt, damage_taken, enemy_health_left.
    * LPMARL structure: :meth:`ally_positions`, :meth:`enemy_positions`, :meth:`ally_alive`,
      :meth:`enemy_alive`, :meth:`ally_health`, :meth:`enemy_health`, :meth:`distances`,
      :meth:`task_observation`, :meth:`task_action_masks`, :meth:`task_actions_to_env`,
      :meth:`task_rewards`.

    ``reset(options={'ally_positions': ..., 'enemy_positions': ..., 'ally_health': ..., 'enemy_health': ...})``
    fixes the start state.
    """

    metadata = {"name": "combat_v0", "render_modes": ["ansi"], "is_parallelizable": True}

    def __init__(self, config: CombatConfig | None = None, render_mode: str | None = None) -> None:
        self.config = config if config is not None else CombatConfig()
        self.core = CombatCore(self.config, 1)
        self.render_mode = render_mode
        self.possible_agents = [f"agent_{i}" for i in range(self.core.N)]
        self.agents: list[str] = []
        self._index = {a: i for i, a in enumerate(self.possible_agents)}
        self._obs_space = gymnasium.spaces.Box(-1.0, 1.0, (self.core.obs_dim,), dtype=np.float32)
        self._act_space = gymnasium.spaces.Discrete(self.core.n_actions)
        self.state_space = gymnasium.spaces.Box(-1.0, 1.0, (self.core.state_dim,), dtype=np.float32)

    # ------------------------------------------------------------------ PettingZoo API
    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        opts = options or {}
        obs = self.core.reset(seed=seed, ally_positions=opts.get("ally_positions"),
                              enemy_positions=opts.get("enemy_positions"), ally_health=opts.get("ally_health"),
                              enemy_health=opts.get("enemy_health"))
        self.agents = list(self.possible_agents)
        masks = self.core.action_masks()[0].astype(np.int8)
        alive = self.core.a_hp[0] > 0
        infos = {a: {"t": 0, "alive": bool(alive[i]), "action_mask": masks[i]} for i, a in enumerate(self.agents)}
        return {a: obs[0, i] for i, a in enumerate(self.agents)}, infos

    def step(self, actions: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, float], dict[str, bool],
                                                     dict[str, bool], dict[str, dict[str, Any]]]:
        if not self.agents:
            return {}, {}, {}, {}, {}
        a = np.zeros((1, self.core.N), dtype=np.int64)  # a missing action: no-op (stop when alive)
        for agent, act in actions.items():
            if agent in self._index and act is not None:
                a[0, self._index[agent]] = int(act)
        res: StepResult = self.core.step(a)
        c = self.core
        masks = c.action_masks()[0].astype(np.int8)
        alive = c.a_hp[0] > 0
        team = {"t": int(res.t[0]), "team_reward": float(res.reward[0]), "dense_reward": float(res.dense_reward[0]),
                "battle_won": bool(res.won[0]), "battle_lost": bool(res.lost[0]),
                "allies_alive": int(alive.sum()), "enemies_alive": int((c.e_hp[0] > 0).sum()),
                "enemies_killed_step": int(res.enemy_killed[0].sum()),
                "damage_dealt": float(res.enemy_damage[0].sum()), "damage_taken": float(res.ally_damage[0].sum())}
        obs, rew, infos = {}, {}, {}
        for agent in self.agents:
            i = self._index[agent]
            obs[agent] = res.obs[0, i]
            rew[agent] = float(res.reward[0])
            infos[agent] = {**team, "alive": bool(alive[i]), "action_mask": masks[i]}
        term = dict.fromkeys(self.agents, bool(res.terminated[0]))
        trunc = dict.fromkeys(self.agents, bool(res.truncated[0]))
        if res.done[0]:
            self.agents = []
        return obs, rew, term, trunc, infos

    def state(self) -> np.ndarray:
        return self.core.state()[0]

    def render(self) -> str | None:
        """ANSI map (one character per unit of length, north up): allies A, B, ..., enemies 0-9 then a-z
        (cycled), '.' empty; dead units are not drawn."""
        if self.render_mode != "ansi":
            return None
        c = self.core
        w, h = int(np.ceil(c.W)), int(np.ceil(c.H))
        rows = [["."] * w for _ in range(h)]
        marks = "0123456789abcdefghijklmnopqrstuvwxyz"
        for i, (x, y) in enumerate(c.e_pos[0]):
            if c.e_hp[0, i] > 0:
                rows[h - 1 - min(int(y), h - 1)][min(int(x), w - 1)] = marks[i % len(marks)]
        for i, (x, y) in enumerate(c.a_pos[0]):
            if c.a_hp[0, i] > 0:
                rows[h - 1 - min(int(y), h - 1)][min(int(x), w - 1)] = chr(ord("A") + i % 26)
        n_a, n_e = int((c.a_hp[0] > 0).sum()), int((c.e_hp[0] > 0).sum())
        return "\n".join("".join(r) for r in rows) + f"\nt={int(c.t[0])}/{c.T} allies={n_a} enemies={n_e}"

    def close(self) -> None:
        pass

    # ------------------------------------------------------------------ extras
    def episode_metrics(self) -> dict[str, float]:
        """Metrics of the current (or just finished) episode as floats."""
        return {k: float(v[0]) for k, v in self.core.episode_metrics().items()}

    def action_mask(self, agent: str) -> np.ndarray:
        return self.core.action_masks()[0, self._index[agent]].astype(np.int8)

    @property
    def n_allies(self) -> int:
        return self.core.N

    @property
    def n_enemies(self) -> int:
        return self.core.M

    @property
    def t(self) -> int:
        return int(self.core.t[0])

    def ally_positions(self) -> np.ndarray:
        """(N, 2) ally (x, y) positions (dead units keep their last position)."""
        return self.core.a_pos[0].copy()

    def enemy_positions(self) -> np.ndarray:
        """(M, 2) enemy (x, y) positions."""
        return self.core.e_pos[0].copy()

    def ally_alive(self) -> np.ndarray:
        """(N,) bool."""
        return self.core.a_hp[0] > 0

    def enemy_alive(self) -> np.ndarray:
        """(M,) bool: the tasks still to be done."""
        return self.core.e_hp[0] > 0

    def ally_health(self) -> np.ndarray:
        """(N,) health as a fraction of each unit's maximum (0 = dead)."""
        return self.core.a_hp[0] / self.core.a_hp_max

    def enemy_health(self) -> np.ndarray:
        """(M,) health as a fraction of each unit's maximum (0 = dead)."""
        return self.core.e_hp[0] / self.core.e_hp_max

    def distances(self) -> np.ndarray:
        """(N, M) ally-enemy Euclidean distances (dead units included; mask with the alive flags)."""
        return self.core.distances()[0]

    def task_observation(self, assignment: np.ndarray) -> np.ndarray:
        """(N, task_obs_dim) float32 task-conditioned observations (see :meth:`CombatCore.task_observation`)."""
        return self.core.task_observation(assignment)[0]

    def task_action_masks(self, assignment: np.ndarray) -> np.ndarray:
        """(N, 7) bool legal task-relative actions (no-op, stop, 4 moves, attack the assigned enemy)."""
        return self.core.task_action_masks(assignment)[0]

    def task_actions_to_env(self, assignment: np.ndarray, task_actions: np.ndarray) -> dict[str, int]:
        """Task-relative actions (N,) -> the ``step`` action dict."""
        env_actions = self.core.task_actions_to_env(assignment, task_actions)[0]
        return {a: int(env_actions[i]) for i, a in enumerate(self.possible_agents)}

    def task_rewards(self, assignment: np.ndarray, dense: bool = False) -> np.ndarray:
        """(N,) sub-task rewards of the last step (see :meth:`CombatCore.task_rewards`)."""
        return self.core.task_rewards(assignment, dense)[0]


def make_env(config: CombatConfig | None = None, **kwargs: Any) -> CombatEnv:
    return CombatEnv(config, **kwargs)


__all__ = ["CombatEnv", "make_env"]
