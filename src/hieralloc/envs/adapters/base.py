"""Shared machinery of the third-party environment adapters (LBF, RWARE, MPE).

Every adapter is a PettingZoo ``ParallelEnv`` subclass of :class:`AdapterEnv`. The subclass
drives the original package's environment and supplies four pieces:

* ``_reset_core(seed) -> list of observations`` and
  ``_step_core(actions) -> (observations, rewards (N,), terminated, truncated, step info)``;
* ``_full_state() -> np.ndarray``: the global state built from the original's internals;
* optionally ``_masks() -> (N, n_actions) int8`` when the original has invalid actions.

This base class owns the rest, once for all three: agent names, cached spaces, the ``state``
choice (``'full'`` or ``'concat'``), the ``reward_split`` choice, action validation, per-step
``infos``, and the episode accumulators behind ``episode_metrics()``.

Conventions shared by the adapters (documented in docs/environments/*.md):

* agents are ``agent_0 .. agent_{N-1}`` in the original's agent order;
* an agent missing from the action dict takes the original's no-op (action 0, or the zero
  vector for continuous actions);
* ``terminated`` marks a real terminal state (LBF: every food collected; MPE with
  ``terminate_on_success``); every time limit is a ``truncation``, so learners bootstrap there
  (EPyMARL does the same through its ``episode_limit`` flag);
* ``episode_metrics()['team_return']`` is the sum over agents and steps of the original's
  per-agent rewards (EPyMARL's ``common_reward`` with ``reward_scalarisation='sum'``), whatever
  ``reward_split`` is; ``return`` is the sum of the rewards this adapter emitted, the same number
  :func:`hieralloc.eval.evaluate` computes.
"""

from __future__ import annotations

import abc
import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import gymnasium
import numpy as np
from pettingzoo import ParallelEnv

from hieralloc.config import Config, param
from hieralloc.envs.base import SharedSpaces
from hieralloc.errors import MissingDependencyError

STATE_MODES = ("full", "concat")
REWARD_SPLITS = ("individual", "team")
EXTRA_HINT = "pip install -e '.[envs]'"


def require(module: str, package: str, env_name: str) -> ModuleType:
    """Import ``module`` lazily; a missing package raises :class:`MissingDependencyError`
    naming the ``envs`` extra."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingDependencyError(
            f"environment '{env_name}' needs the package '{package}' ({e.__class__.__name__}: {e}); "
            f"install the optional environments with: {EXTRA_HINT}"
        ) from None


@dataclass
class AdapterConfig(Config):
    """Fields every adapter shares (subclasses add the original's parameters)."""

    state: str = param("full", "global state returned by state(): 'full' = an encoding of the "
                       "original's internal state (see the env's docs page), 'concat' = all agents' "
                       "observations concatenated in agent order (EPyMARL's state)", choices=STATE_MODES)
    reward_split: str = param("individual", "'individual': each agent gets the original's own reward; "
                              "'team': every agent gets the sum over agents (EPyMARL common_reward, "
                              "reward_scalarisation='sum')", choices=REWARD_SPLITS)


def concat_box(space: gymnasium.spaces.Box, n: int) -> gymnasium.spaces.Box:
    """The Box of ``n`` observations of ``space`` concatenated (the 'concat' state)."""
    low = np.tile(np.asarray(space.low, dtype=np.float32).reshape(-1), n)
    high = np.tile(np.asarray(space.high, dtype=np.float32).reshape(-1), n)
    return gymnasium.spaces.Box(low, high, dtype=np.float32)


class AdapterEnv(SharedSpaces, ParallelEnv, abc.ABC):
    """Common PettingZoo ``ParallelEnv`` body of the adapters (see the module docstring)."""

    metadata: dict[str, Any] = {"name": "adapter", "render_modes": [], "is_parallelizable": True}

    def __init__(self, config: AdapterConfig, n_agents: int, obs_space: gymnasium.spaces.Box,
                 act_space: gymnasium.spaces.Space, full_state_space: gymnasium.spaces.Box) -> None:
        self.config = config
        self.render_mode: str | None = None
        self.n = int(n_agents)
        self.possible_agents = [f"agent_{i}" for i in range(self.n)]
        self.agents: list[str] = []
        self._index = {a: i for i, a in enumerate(self.possible_agents)}
        self._obs_space = obs_space
        self._act_space = act_space
        if config.state == "concat":
            self.state_space = concat_box(obs_space, self.n)
        else:
            self.state_space = full_state_space
        self._obs: list[np.ndarray] = []
        self.t = 0
        self._agent_rewards = np.zeros(self.n)
        self._emitted_return = 0.0

    # ------------------------------------------------------------------ subclass hooks
    @abc.abstractmethod
    def _reset_core(self, seed: int | None) -> list[np.ndarray]:
        """Reset the original environment; the agents' observations in agent order."""

    @abc.abstractmethod
    def _step_core(self, actions: list[Any]) -> tuple[list[np.ndarray], np.ndarray, bool, bool, dict[str, float]]:
        """Step the original: observations, rewards (N,), terminated, truncated, step info."""

    @abc.abstractmethod
    def _full_state(self) -> np.ndarray:
        """The global state built from the original's internals (``state='full'``)."""

    def _masks(self) -> np.ndarray | None:
        """(N, n_actions) int8 valid-action masks, or None when every action is always valid."""
        return None

    def _task_metrics(self) -> dict[str, float]:
        return {}

    def _noop(self) -> Any:
        if isinstance(self._act_space, gymnasium.spaces.Discrete):
            return 0
        return np.zeros(self._act_space.shape, dtype=np.float32)

    def _check_action(self, agent: str, act: Any) -> Any:
        space = self._act_space
        if isinstance(space, gymnasium.spaces.Discrete):
            a = int(act)
            if not 0 <= a < int(space.n):
                raise ValueError(f"action of {agent} must be an integer in [0, {int(space.n)}), got {act!r}")
            return a
        arr = np.asarray(act, dtype=np.float32).reshape(space.shape)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"action of {agent} must be finite, got {act!r}")
        return arr

    # ------------------------------------------------------------------ PettingZoo API
    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        self._obs = self._reset_core(seed)
        self.agents = list(self.possible_agents)
        self.t = 0
        self._agent_rewards = np.zeros(self.n)
        self._emitted_return = 0.0
        return ({a: self._obs[i] for i, a in enumerate(self.agents)},
                self._infos({"t": 0}))

    def step(self, actions: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, float], dict[str, bool],
                                                     dict[str, bool], dict[str, dict[str, Any]]]:
        if not self.agents:
            return {}, {}, {}, {}, {}
        acts = [self._noop() for _ in range(self.n)]
        for agent, act in actions.items():
            if agent in self._index and act is not None:
                acts[self._index[agent]] = self._check_action(agent, act)
        obs, rewards, terminated, truncated, info = self._step_core(acts)
        self._obs = obs
        self.t += 1
        rewards = np.asarray(rewards, dtype=np.float64)
        self._agent_rewards += rewards
        team = float(rewards.sum())
        emitted = rewards if self.config.reward_split == "individual" else np.full(self.n, team)
        self._emitted_return += float(emitted.sum())
        infos = self._infos({**info, "team_reward": team, "t": self.t})
        live = list(self.agents)
        done = bool(terminated or truncated)
        out = ({a: obs[self._index[a]] for a in live},
               {a: float(emitted[self._index[a]]) for a in live},
               dict.fromkeys(live, bool(terminated)),
               dict.fromkeys(live, bool(truncated) and not terminated),
               {a: infos[a] for a in live})
        if done:
            self.agents = []
        return out

    def _infos(self, team: dict[str, Any]) -> dict[str, dict[str, Any]]:
        masks = self._masks()
        out: dict[str, dict[str, Any]] = {}
        for i, a in enumerate(self.possible_agents):
            out[a] = dict(team)
            if masks is not None:
                out[a]["action_mask"] = masks[i]
        return out

    def state(self) -> np.ndarray:
        if self.config.state == "concat":
            return np.concatenate([np.asarray(o, dtype=np.float32).reshape(-1) for o in self._obs])
        return self._full_state()

    def action_mask(self, agent: str) -> np.ndarray:
        """Valid actions of ``agent`` now (int8, 1 = valid); all ones when no action is ever invalid."""
        masks = self._masks()
        if masks is None:
            return np.ones(int(getattr(self._act_space, "n", 1)), dtype=np.int8)
        return masks[self._index[agent]]

    def render(self) -> None:
        return None

    def close(self) -> None:
        pass

    def episode_metrics(self) -> dict[str, float]:
        """Metrics of the current (or just finished) episode: ``return`` (sum of the emitted
        rewards), ``team_return`` (sum of the original's per-agent rewards), ``steps`` and the
        task's own metrics."""
        return {"return": float(self._emitted_return), "team_return": float(self._agent_rewards.sum()),
                "steps": float(self.t), **self._task_metrics()}


__all__ = ["EXTRA_HINT", "REWARD_SPLITS", "STATE_MODES", "AdapterConfig", "AdapterEnv",
           "MissingDependencyError", "concat_box", "require"]
