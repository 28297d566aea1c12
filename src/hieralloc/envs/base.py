"""What the PettingZoo wrappers of the batched cores share.

* :class:`SharedSpaces`: every agent has the same observation and action space, returned as the same
  object on every call (PettingZoo's API test requires it).
* :class:`SingleAgentNetworkEnv`: a batched network core (``reset``, ``step`` -> result with ``reward``
  and ``done``, ``observation``, ``episode_metrics``, ``demand``, ``t``) run with B = 1 under one agent,
  the high-level controller of the OHIO environments (mobility on demand, supply chain). Subclasses
  say what an absent action means and which infos a step reports.
* :func:`check_batch_action`: the shape and finiteness check of a ``(B, dim)`` action in [0, 1].
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import gymnasium
import numpy as np
from pettingzoo import ParallelEnv

from hieralloc.errors import HierallocError

StepReturn = tuple[dict[str, np.ndarray], dict[str, float], dict[str, bool], dict[str, bool],
                   dict[str, dict[str, Any]]]


class SharedSpaces:
    """Mixin: ``observation_space(agent)`` and ``action_space(agent)`` are ``_obs_space`` and
    ``_act_space`` for every agent (set them in ``__init__``). Put it before ``ParallelEnv``."""

    _obs_space: gymnasium.spaces.Space[Any]
    _act_space: gymnasium.spaces.Space[Any]

    def observation_space(self, agent: str) -> Any:
        return self._obs_space

    def action_space(self, agent: str) -> Any:
        return self._act_space


class SingleAgentNetworkEnv(SharedSpaces, ParallelEnv, abc.ABC):
    """One agent, ``AGENT``, driving a batched network core with B = 1 (see the module docstring).

    Subclasses set ``AGENT``, ``metadata``, ``self.core``, ``self.config`` and the two spaces, and define
    :meth:`_default_action` (what ``step`` does for an agent without an action), :meth:`_step_info`
    (the agent's info dict of a step) and :meth:`_render_state` (the ``ansi`` line before the return).
    The observation is the core's flat state vector, which is also ``state()``; episodes end by
    truncation after the core's T steps (never termination).
    """

    AGENT: ClassVar[str]
    core: Any
    _obs_space: gymnasium.spaces.Box
    _act_space: gymnasium.spaces.Box

    def _init_agents(self, render_mode: str | None) -> None:
        self.render_mode = render_mode
        self.possible_agents = [self.AGENT]
        self.agents: list[str] = []

    @abc.abstractmethod
    def _default_action(self) -> np.ndarray:
        """The action ``step`` executes for the agent when ``actions`` holds none."""

    @abc.abstractmethod
    def _step_info(self, res: Any) -> dict[str, Any]:
        """The agent's info dict for the core's step result ``res``."""

    @abc.abstractmethod
    def _render_state(self) -> str:
        """The family's part of the ``ansi`` render line (between ``t`` and the return)."""

    def step(self, actions: dict[str, Any]) -> StepReturn:
        if not self.agents:
            return {}, {}, {}, {}, {}
        a = actions.get(self.AGENT)
        a = self._default_action() if a is None else np.asarray(a, dtype=float)
        res = self.core.step(a.reshape(1, -1))
        info = self._step_info(res)
        obs = {self.AGENT: self.core.observation()[0]}
        rew = {self.AGENT: float(res.reward[0])}
        term = {self.AGENT: False}
        trunc = {self.AGENT: bool(res.done)}
        if res.done:
            self.agents = []
        return obs, rew, term, trunc, {self.AGENT: info}

    def state(self) -> np.ndarray:
        return self.core.observation()[0]

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        c = self.core
        return f"t={c.t}/{c.T} {self._render_state()} return={float(c.sums['return'][0]):.1f}"

    def close(self) -> None:
        """Nothing to release: the core holds numpy arrays and solver models only."""

    def episode_metrics(self) -> dict[str, float]:
        """Metrics of the current (or just finished) episode as floats."""
        return {k: float(v[0]) for k, v in self.core.episode_metrics().items()}

    def episode_demand(self) -> np.ndarray:
        """The realised demand of the whole episode (full information, for oracles)."""
        return np.array(self.core.demand[0])

    @property
    def t(self) -> int:
        return int(self.core.t)


def check_batch_action(a: Any, B: int, dim: int, what: str, hint: str, entry: str = "entry") -> np.ndarray:
    """``a`` as a ``(B, dim)`` float array, or one :class:`HierallocError` naming the wrong size or the
    first non-finite entry. ``what`` names the action ("flow-mode", "goal"), ``hint`` says what the
    ``dim`` entries are or where that is documented, ``entry`` what one entry is called."""
    x = np.asarray(a, dtype=float)
    if x.size != B * dim:
        raise HierallocError(f"the {what} action has {x.size // B if B else x.size} entries, expected {dim}: {hint}")
    x = x.reshape(B, dim)
    if not np.isfinite(x).all():
        b, i = (int(v[0]) for v in np.nonzero(~np.isfinite(x)))
        raise HierallocError(f"the {what} action's {entry} {i} is {x[b, i]}; it must be a finite number in [0, 1]")
    return x


__all__ = ["SharedSpaces", "SingleAgentNetworkEnv", "StepReturn", "check_batch_action"]
