"""One tiny ParallelEnv-shaped env for the evaluation and benchmark tests (imported as ``tiny_env``)."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces


class CountEnv:
    """``n_agents`` agents, ``horizon`` steps, Discrete(3) actions, reward = action.

    Episode metrics: ``served`` (sum of all actions), ``bonus`` (a draw of the reset seed's generator),
    ``steps`` and ``name`` (not a number: evaluation must pass it over). ``seeds`` lists the reset seeds.
    """

    metadata: dict[str, Any] = {"name": "count"}

    def __init__(self, horizon: int = 5, n_agents: int = 2) -> None:
        self.horizon = horizon
        self.possible_agents = [f"a{i}" for i in range(n_agents)]
        self.agents: list[str] = []
        self.seeds: list[int | None] = []

    @property
    def unwrapped(self) -> CountEnv:
        return self

    def observation_space(self, agent: str) -> spaces.Space[Any]:
        return spaces.Box(0, 1000, (1,), np.float32)

    def action_space(self, agent: str) -> spaces.Space[Any]:
        return spaces.Discrete(3)

    def reset(self, seed: int | None = None, options: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        self.seeds.append(seed)
        self.rng = np.random.default_rng(seed)
        self.bonus = float(self.rng.random())
        self.t = 0
        self.served = 0.0
        self.agents = list(self.possible_agents)
        return {a: np.zeros(1, np.float32) for a in self.agents}, {a: {} for a in self.agents}

    def state(self) -> np.ndarray:
        return np.array([self.t], np.float32)

    def step(self, actions: dict[str, int]) -> tuple[Any, ...]:
        self.t += 1
        self.served += float(sum(actions.values()))
        done = self.t >= self.horizon
        obs = {a: np.array([self.t], np.float32) for a in self.agents}
        rew = {a: float(actions[a]) for a in self.agents}
        term = {a: False for a in self.agents}
        trunc = {a: done for a in self.agents}
        info: dict[str, dict[str, Any]] = {a: {} for a in self.agents}
        if done:
            self.agents = []
        return obs, rew, term, trunc, info

    def episode_metrics(self) -> dict[str, Any]:
        return {"served": self.served, "bonus": self.bonus, "steps": self.t, "name": "not a number"}
