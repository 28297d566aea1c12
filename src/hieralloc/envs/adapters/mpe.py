"""MPE simple_spread / cooperative navigation (``mpe2``; Lowe et al. 2017, Mordatch & Abbeel 2018).

The adapter drives ``mpe2.simple_spread_v3.parallel_env`` and adds a compact full state from the
particle world, the coverage metrics of Lowe et al. (2017) (distance, collisions, occupied
landmarks) and episode metrics. Discrete and continuous action versions are registered separately
(their action spaces differ). See docs/environments/mpe.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import gymnasium
import numpy as np

from hieralloc.config import param
from hieralloc.envs.adapters.base import AdapterConfig, AdapterEnv, require
from hieralloc.errors import ConfigError

N_ACTIONS = 5  # no_action, move_left, move_right, move_down, move_up (mpe2 simple_spread)
#: an agent within this distance of a landmark occupies it (mpe2 Scenario.CAPTURE_RADIUS, the
#: threshold of Lowe et al. 2017's benchmark_data)
CAPTURE_RADIUS = 0.1


@dataclass
class SpreadConfig(AdapterConfig):
    """Parameters of simple_spread; the defaults are mpe2's ``simple_spread_v3`` (N = 3, 25 steps),
    the MPE 'Spread' task of the EPyMARL benchmark."""

    n_agents: int = param(3, "number of agents N (and of landmarks)", low=1, high=100)
    max_steps: int = param(25, "time limit in steps (mpe2 max_cycles; truncation)", low=1, high=100_000)
    local_ratio: float = param(0.5, "weight of the local (collision) reward; the shared distance "
                               "reward gets 1 - local_ratio", low=0.0, high=1.0)
    terminate_on_success: bool = param(False, "terminate once every landmark has an agent within 0.1")
    num_agent_neighbors: int = param(0, "observe only this many nearest other agents (0: all)", low=0)
    num_landmark_neighbors: int = param(0, "observe only this many nearest landmarks (0: all)", low=0)

    def validate(self) -> None:
        super().validate()
        if self.num_agent_neighbors > max(self.n_agents - 1, 0):
            raise ConfigError("num_agent_neighbors", f"must be at most n_agents - 1 = {self.n_agents - 1} "
                              f"(0 observes all), got {self.num_agent_neighbors}")
        if self.num_landmark_neighbors > self.n_agents:
            raise ConfigError("num_landmark_neighbors", f"must be at most the {self.n_agents} landmarks "
                              f"(0 observes all), got {self.num_landmark_neighbors}")


class SpreadEnv(AdapterEnv):
    """simple_spread (cooperative navigation) as a PettingZoo ``ParallelEnv``.

    * actions: ``Discrete(5)`` (no-op, left, right, down, up) or, when ``continuous``,
      ``Box(0, 1, (5,))`` (mpe2's continuous encoding); every action is valid (no masks).
    * observations: mpe2's ``Box(4 + 2 N + 2 (N - 1) + 2 (N - 1))``: own velocity and position,
      landmark and other-agent positions relative to self, other agents' (silent) communication.
    * ``state()`` with ``state='full'``: ``Box(6 N + 1)``: every agent's absolute position and
      velocity, every landmark's position (agent / landmark order), and t / max_steps.
      ``state='concat'``: the N observations, identical to mpe2's own ``state()``.
    * rewards: mpe2's, ``(1 - local_ratio) * global + local_ratio * local`` per agent, with global
      = -sum over landmarks of the distance to the nearest agent, local = -1 per collision.
    * ``infos`` per step: distance (that global distance sum), collisions (colliding pairs),
      occupied (landmarks with an agent within 0.1), team_reward, t.
    * ``episode_metrics()``: return, team_return, steps, distance (mean per step), final_distance,
      collisions (colliding pairs summed over steps), occupied (fraction at the last step),
      success (every landmark occupied at the last step).
    """

    metadata = {"name": "mpe_simple_spread_v0", "render_modes": [], "is_parallelizable": True}

    def __init__(self, config: SpreadConfig | None = None, continuous: bool = False) -> None:
        cfg = config if config is not None else SpreadConfig()
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # mpe2 imports pygame
        name = "mpe-simple-spread-continuous" if continuous else "mpe-simple-spread"
        mod = require("mpe2.simple_spread_v3", "mpe2", name)
        self.core = mod.parallel_env(
            N=cfg.n_agents, local_ratio=cfg.local_ratio, max_cycles=cfg.max_steps,
            continuous_actions=continuous, terminate_on_success=cfg.terminate_on_success,
            num_agent_neighbors=cfg.num_agent_neighbors or None,
            num_landmark_neighbors=cfg.num_landmark_neighbors or None,
        )
        self.raw = self.core.unwrapped
        self.world = self.raw.world
        self._names = list(self.core.possible_agents)
        orig = self.core.observation_space(self._names[0])
        obs_space = gymnasium.spaces.Box(np.asarray(orig.low, np.float32), np.asarray(orig.high, np.float32),
                                         dtype=np.float32)
        act: gymnasium.spaces.Space
        if continuous:
            act = gymnasium.spaces.Box(0.0, 1.0, shape=(N_ACTIONS,), dtype=np.float32)
        else:
            act = gymnasium.spaces.Discrete(N_ACTIONS)
        n = cfg.n_agents
        low = np.full(6 * n + 1, -np.inf, dtype=np.float32)
        high = np.full(6 * n + 1, np.inf, dtype=np.float32)
        low[-1], high[-1] = 0.0, 1.0
        super().__init__(cfg, n, obs_space, act, gymnasium.spaces.Box(low, high, dtype=np.float32))
        self.cfg: SpreadConfig = cfg
        self.continuous = continuous
        self._sizes = np.array([a.size for a in self.world.agents], dtype=np.float64)
        self._sum_distance = 0.0
        self._collisions = 0
        self._last = {"distance": 0.0, "collisions": 0.0, "occupied": 0.0}

    # ------------------------------------------------------------------ world measurements
    def _geometry(self) -> dict[str, float]:
        """Distance sum, colliding pairs and occupied landmarks of the world now (Lowe et al. 2017,
        simple_spread benchmark_data; pairs counted once, self-collisions excluded)."""
        p = np.array([a.state.p_pos for a in self.world.agents], dtype=np.float64)
        lm = np.array([e.state.p_pos for e in self.world.landmarks], dtype=np.float64)
        d = np.linalg.norm(p[:, None, :] - lm[None, :, :], axis=-1)  # (agents, landmarks)
        nearest = d.min(axis=0)
        pair = np.linalg.norm(p[:, None, :] - p[None, :, :], axis=-1)
        touching = pair < (self._sizes[:, None] + self._sizes[None, :])
        collisions = int(np.triu(touching, k=1).sum())
        return {"distance": float(nearest.sum()), "collisions": float(collisions),
                "occupied": float(np.count_nonzero(nearest < CAPTURE_RADIUS))}

    # ------------------------------------------------------------------ hooks
    def _reset_core(self, seed: int | None) -> list[np.ndarray]:
        obs, _ = self.core.reset(seed=seed)
        self._sum_distance = 0.0
        self._collisions = 0
        self._last = self._geometry()
        return [np.asarray(obs[a], dtype=np.float32) for a in self._names]

    def _step_core(self, actions: list[Any]) -> tuple[list[np.ndarray], np.ndarray, bool, bool, dict[str, float]]:
        if self.continuous:
            actions = [np.clip(a, 0.0, 1.0) for a in actions]  # mpe2's ClipOutOfBoundsWrapper
        obs, rew, term, trunc, _ = self.core.step(dict(zip(self._names, actions, strict=True)))
        geo = self._geometry()
        self._last = geo
        self._sum_distance += geo["distance"]
        self._collisions += int(geo["collisions"])
        rewards = np.array([rew[a] for a in self._names], dtype=np.float64)
        terminated = any(term.values())
        truncated = any(trunc.values())
        return [np.asarray(obs[a], dtype=np.float32) for a in self._names], rewards, terminated, truncated, geo

    def _full_state(self) -> np.ndarray:
        parts = [np.concatenate([a.state.p_pos, a.state.p_vel]) for a in self.world.agents]
        parts += [e.state.p_pos for e in self.world.landmarks]
        parts.append(np.array([self.t / self.cfg.max_steps]))
        return np.concatenate(parts).astype(np.float32)

    def _task_metrics(self) -> dict[str, float]:
        steps = max(self.t, 1)
        occ = self._last["occupied"] / self.n
        return {"distance": self._sum_distance / steps if self.t else self._last["distance"],
                "final_distance": self._last["distance"], "collisions": float(self._collisions),
                "occupied": occ, "success": float(occ == 1.0)}


def make_spread(config: SpreadConfig | None = None) -> SpreadEnv:
    return SpreadEnv(config, continuous=False)


def make_spread_continuous(config: SpreadConfig | None = None) -> SpreadEnv:
    return SpreadEnv(config, continuous=True)


__all__ = ["CAPTURE_RADIUS", "N_ACTIONS", "SpreadConfig", "SpreadEnv", "make_spread", "make_spread_continuous"]
