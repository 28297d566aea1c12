"""The one hierarchical composition: a stack of decision levels, each with its period, over an executor.

Every method of the library splits an allocation decision in two or more levels (docs/architecture.md):
a high level decides something ``u`` every ``period`` steps and the level below turns ``u`` into its own
decisions, down to the executor that produces the environment's actions every step. This module holds
that composition once; methods supply the levels.

* A :class:`Level` turns the current context and its parent's goal into its inputs
  (:meth:`Level.observe`), chooses (:meth:`Level.choose`, e.g. epsilon-greedy on a Q-network with a
  recurrent state carried from one of *its* decisions to the next), and converts its choice into the
  goal it hands down (:meth:`Level.goal`).
* :class:`HierarchicalController` runs the levels top-down at each environment step: level ``l``
  re-decides when ``t % period_l == 0`` (the executor, level 0, has period 1); between decisions its
  goal stays in force (HGRL Sec. 4.1: "high-level policies perform decisions every tau timesteps,
  defining sub-goals for lower-level policies"). With ``trace=True`` it records, per level, the inputs,
  valid-action masks and choices of every decision, which is what learners store.
* :func:`aggregate_rewards`: the reward of a decision is the discounted sum of the base rewards over
  the steps until the level's next decision, HGRL Eq. (3) (and Eq. (5)-(7): telescoping, so the
  levels optimise one objective).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import numpy as np


class Level(abc.ABC):
    """One decision level of a hierarchy (see the module docstring)."""

    #: environment steps between this level's decisions (1 for the executor)
    period: int = 1

    @abc.abstractmethod
    def observe(self, ctx: Any, goal: Any) -> tuple[np.ndarray, np.ndarray]:
        """(inputs ``[N, D]``, valid actions ``[N, A]`` bool) of this level now, given the parent's goal."""

    @abc.abstractmethod
    def choose(self, inputs: np.ndarray, avail: np.ndarray, hidden: Any, explore: float,
               rng: np.random.Generator) -> tuple[np.ndarray, Any]:
        """(choices ``[N]``, next recurrent state); ``explore`` is the exploration rate (0: greedy)."""

    @abc.abstractmethod
    def initial_hidden(self) -> Any:
        """Recurrent state at the start of an episode."""

    def goal(self, ctx: Any, choices: np.ndarray) -> Any:
        """What this level hands to the level below (``None`` for the executor)."""
        return None


class HierarchicalController:
    """Runs ``levels`` (index 0 = executor) as one policy; see the module docstring.

    ``levels[l].period`` must be a multiple of ``levels[l - 1].period`` so that a level's decision
    points are decision points of every level below it.
    """

    def __init__(self, levels: Sequence[Level]) -> None:
        if not levels:
            raise ValueError("a hierarchy needs at least one level")
        if levels[0].period != 1:
            raise ValueError("the executor (level 0) must act every step (period 1)")
        for lo, hi in zip(levels[:-1], levels[1:], strict=False):
            if hi.period % lo.period != 0:
                raise ValueError(f"level periods must divide each other, got {lo.period} below {hi.period}")
        self.levels = list(levels)
        self.reset()

    def reset(self, trace: bool = False) -> None:
        self.hidden = [lv.initial_hidden() for lv in self.levels]
        self.goals: list[Any] = [None] * len(self.levels)
        self.trace = trace
        #: per level: lists of inputs, masks, choices and the environment step of each decision
        self.records: list[dict[str, list[Any]]] = [{"obs": [], "avail": [], "actions": [], "t": []}
                                                    for _ in self.levels]

    def step(self, t: int, ctx: Any, explore: Sequence[float], rng: np.random.Generator) -> np.ndarray:
        """The executor's choices at environment step ``t`` after the due levels re-decided top-down."""
        out: np.ndarray | None = None
        for k in range(len(self.levels) - 1, -1, -1):
            lv = self.levels[k]
            if t % lv.period != 0:
                continue
            parent_goal = self.goals[k + 1] if k + 1 < len(self.levels) else None
            x, m = lv.observe(ctx, parent_goal)
            a, self.hidden[k] = lv.choose(x, m, self.hidden[k], explore[k], rng)
            self.goals[k] = lv.goal(ctx, a)
            if self.trace:
                rec = self.records[k]
                rec["obs"].append(x)
                rec["avail"].append(m)
                rec["actions"].append(a)
                rec["t"].append(t)
            if k == 0:
                out = a
        assert out is not None
        return out

    def close_trace(self, ctx: Any) -> None:
        """Append every level's inputs at the end of the episode (the bootstrap observation)."""
        if not self.trace:
            return
        for k in range(len(self.levels) - 1, -1, -1):
            parent_goal = self.goals[k + 1] if k + 1 < len(self.levels) else None
            x, m = self.levels[k].observe(ctx, parent_goal)
            self.records[k]["obs"].append(x)
            self.records[k]["avail"].append(m)


def aggregate_rewards(rewards: np.ndarray, decision_steps: Sequence[int], gamma: float) -> np.ndarray:
    """HGRL Eq. (3): ``r^l(t_k) = sum_{t'=t_k}^{t_{k+1}-1} gamma^(t'-t_k) r(t')`` for decisions at
    ``decision_steps`` (the last one runs to the end); ``rewards`` is ``[T, ...]``."""
    r = np.asarray(rewards, dtype=np.float64)
    T = r.shape[0]
    bounds = [*decision_steps, T]
    out = np.zeros((len(decision_steps), *r.shape[1:]), dtype=np.float64)
    for k in range(len(decision_steps)):
        s, e = bounds[k], bounds[k + 1]
        disc = gamma ** np.arange(e - s, dtype=np.float64)
        out[k] = np.tensordot(disc, r[s:e], axes=(0, 0))
    return out


__all__ = ["HierarchicalController", "Level", "aggregate_rewards"]
