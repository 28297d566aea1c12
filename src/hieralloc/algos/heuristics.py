"""Heuristic baselines for the coverage family: random, stay, greedy-local and EADS.

All follow the :class:`~hieralloc.algos.base.Policy` contract and learn nothing.

* ``random``: uniform over the moves that stay on the grid (uniform over all w^2 moves with
  ``masked=False``).
* ``stay``: never moves (the centre action).
* ``greedy-local``: decentralised; each agent moves onto the cell of highest demand in its own
  observation window (ties: stay first, then the shorter move). Uses only its observation.
* ``eads``: Energy-Adaptive Scheduling (Ruan et al. 2020; HGRL App. D: agents are sent to the
  highest-demand regions without learning). Model-predictive: at every decision step it reads the
  *current* global frame F_t from the centralised state (a persistence forecast of the next frame;
  never future frames) and

  1. solves a multi-level maximum-k-coverage greedily: N times, place a window on the cell whose
     w x w window holds the most residual servable demand sum min(R, U), then lower the residual
     R <- max(R - U, 0) inside that window (a second window on the same demand is worth only what
     the first cannot serve, as the environment's coverage rule);
  2. assigns agents to those targets by a bottleneck assignment (minimise the largest travel time
     in steps, ceil(Chebyshev / r), then the total Manhattan distance among bottleneck-optimal
     assignments);
  3. energy-adaptive hold: keeps the previous targets while their coverage value on F_t is within
     ``hold`` (relative) of the new greedy plan, to avoid travelling for marginal gains;
  4. moves each agent one step (at most r cells per axis) toward its target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hieralloc.config import Config, param
from hieralloc.registry import AlgoSpec, Capabilities, register_algo

CAPS = Capabilities(learns=False, families=("coverage",))


def _window_side(obs: np.ndarray) -> int:
    k = int(obs.shape[-1]) - 3
    w = math.isqrt(k)
    if w * w != k:
        raise ValueError(f"observation of length {obs.shape[-1]} is not a coverage observation (3 + w^2)")
    return w


def _env_masks(env: Any) -> np.ndarray | None:
    core = getattr(env, "core", None)
    if core is None or not hasattr(core, "action_masks"):
        return None
    return np.asarray(core.action_masks()[0], dtype=bool)


class _Base:
    """Shared plumbing: agent ids -> indices, a seeded RNG, the env of the episode."""

    def __init__(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)
        self.env: Any = None

    def reset(self, env: Any, seed: int | None = None) -> None:
        self.env = env
        if seed is not None:
            self.rng = np.random.default_rng(seed)

    @staticmethod
    def _index(agent: str, n: int) -> int:
        try:
            return int(str(agent).rsplit("_", 1)[-1])
        except ValueError:
            return n


# ---------------------------------------------------------------------------------------------


@dataclass
class RandomConfig(Config):
    masked: bool = param(True, "sample only moves that keep the agent on the grid (action masks)")


class RandomPolicy(_Base):
    def __init__(self, config: RandomConfig, seed: int | None = None) -> None:
        super().__init__(seed)
        self.config = config

    def act(self, observations: dict[str, Any], state: np.ndarray | None = None,
            explore: bool = False) -> dict[str, Any]:
        masks = _env_masks(self.env) if self.config.masked else None
        out: dict[str, Any] = {}
        for agent, obs in observations.items():
            K = int(np.asarray(obs).shape[-1]) - 3
            i = self._index(agent, K)
            if masks is not None and i < len(masks):
                out[agent] = int(self.rng.choice(np.flatnonzero(masks[i])))
            else:
                out[agent] = int(self.rng.integers(K))
        return out


@dataclass
class StayConfig(Config):
    """No parameters."""


class StayPolicy(_Base):
    def act(self, observations: dict[str, Any], state: np.ndarray | None = None,
            explore: bool = False) -> dict[str, Any]:
        return {a: (int(np.asarray(o).shape[-1]) - 3 - 1) // 2 for a, o in observations.items()}


@dataclass
class GreedyLocalConfig(Config):
    min_gain: float = param(0.0, "move only if the best cell's (scaled) demand exceeds the centre's "
                            "by more than this", low=0.0)


class GreedyLocalPolicy(_Base):
    def __init__(self, config: GreedyLocalConfig, seed: int | None = None) -> None:
        super().__init__(seed)
        self.config = config

    def act(self, observations: dict[str, Any], state: np.ndarray | None = None,
            explore: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for agent, obs in observations.items():
            o = np.asarray(obs, dtype=float)
            w = _window_side(o)
            r = (w - 1) // 2
            win = o[3:]
            d = np.arange(-r, r + 1)
            manh = (np.abs(d)[:, None] + np.abs(d)[None, :]).ravel()
            centre = (w * w - 1) // 2
            # densest cell; among equal demand prefer the shorter move (stay first)
            best = int(np.lexsort((manh, -win))[0])
            if win[best] - win[centre] <= self.config.min_gain:
                best = centre
            out[agent] = best
        return out


# ---------------------------------------------------------------------------------------------
# EADS


@dataclass
class EADSConfig(Config):
    replan_every: int = param(1, "steps between re-planning (model-predictive control period)", low=1)
    hold: float = param(0.05, "keep the previous targets while their coverage value is within this "
                        "fraction of a new plan (energy-adaptive hold; 0 = always re-target)",
                        low=0.0, high=1.0)
    assignment: str = param("bottleneck", "agent-to-target assignment: 'bottleneck' (min max travel "
                            "time, then min total distance) or 'sum' (min total distance)",
                            choices=("bottleneck", "sum"))


def window_sums(values: np.ndarray, window: int) -> np.ndarray:
    """(H, W) sum of ``values`` over the w x w window centred on each cell (zero outside)."""
    r = (window - 1) // 2
    H, W = values.shape
    p = np.zeros((H + 2 * r + 1, W + 2 * r + 1))
    p[1:H + 2 * r + 1, 1:W + 2 * r + 1] = np.pad(values, r)
    c = p.cumsum(0).cumsum(1)
    return np.asarray(c[window:, window:] - c[:-window, window:] - c[window:, :-window] + c[:-window, :-window])


def greedy_targets(frame: np.ndarray, n: int, window: int, capacity: float) -> tuple[np.ndarray, float]:
    """Multi-level maximum-k-coverage by greedy: n window centres and the demand they serve."""
    r = (window - 1) // 2
    R = np.asarray(frame, dtype=float).copy()
    H, W = R.shape
    targets = np.zeros((n, 2), dtype=np.int64)
    total = 0.0
    for j in range(n):  # n sequential greedy picks (each vectorised over the grid)
        V = window_sums(np.minimum(R, capacity), window)
        x, y = np.unravel_index(int(np.argmax(V)), V.shape)
        total += float(V[x, y])
        targets[j] = (x, y)
        sl = (slice(max(x - r, 0), x + r + 1), slice(max(y - r, 0), y + r + 1))
        R[sl] = np.maximum(R[sl] - capacity, 0.0)
    return targets, total


def coverage_value(frame: np.ndarray, cells: np.ndarray, window: int, capacity: float) -> float:
    """sum_c min(F(c), U k(c)) for windows centred at ``cells`` (the environment's rule)."""
    from hieralloc.envs.coverage.core import served_by_positions

    return served_by_positions(frame, cells, window, capacity)


def assign_targets(pos: np.ndarray, targets: np.ndarray, r: int, mode: str) -> np.ndarray:
    """Index of the target of each agent (bottleneck or min-sum assignment, HiGHS/JV solver)."""
    from hieralloc.solvers.assignment import assign_capacitated
    from hieralloc.solvers.errors import InfeasibleError

    diff = np.abs(pos[:, None, :] - targets[None, :, :])
    manh = diff.sum(-1).astype(float)
    if mode == "sum":
        return np.asarray(assign_capacitated(-manh, 1).task)
    steps = np.ceil(diff.max(-1) / max(r, 1)).astype(np.int64)
    levels = np.unique(steps)
    lo, hi = 0, len(levels) - 1
    best = None
    while lo <= hi:  # binary search on the bottleneck travel time
        mid = (lo + hi) // 2
        try:
            best = assign_capacitated(-manh, 1, forbidden=steps > levels[mid])
            hi = mid - 1
        except InfeasibleError:
            lo = mid + 1
    assert best is not None
    return np.asarray(best.task)


class EADSPolicy(_Base):
    """See the module docstring. Reads env.config and env.core.obs_div at reset; at each step
    the global frame and positions from ``state`` (or ``env.state()`` when not given)."""

    def __init__(self, config: EADSConfig, seed: int | None = None) -> None:
        super().__init__(seed)
        self.config = config
        self.targets: np.ndarray | None = None
        self._since = 0

    def reset(self, env: Any, seed: int | None = None) -> None:
        super().reset(env, seed)
        cfg = env.config
        self.H, self.W, self.N = cfg.height, cfg.width, cfg.n_agents
        self.w, self.U = cfg.window, float(cfg.capacity)
        self.r = (self.w - 1) // 2
        self.div = float(env.core.obs_div)
        self.targets = None
        self.assigned: np.ndarray | None = None
        self._since = 0

    def _parse_state(self, state: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        s = np.asarray(self.env.state() if state is None else state, dtype=float)
        HW = self.H * self.W
        frame = s[:HW].reshape(self.H, self.W) * self.div
        p = s[HW:HW + 2 * self.N].reshape(self.N, 2)
        pos = np.rint(p * np.array([max(self.H - 1, 1), max(self.W - 1, 1)])).astype(np.int64)
        return frame, pos

    def plan(self, frame: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """Targets per agent (N, 2) for the current frame and positions."""
        new, new_val = greedy_targets(frame, self.N, self.w, self.U)
        if self.assigned is not None and self.config.hold > 0:
            old_val = coverage_value(frame, self.assigned, self.w, self.U)
            if old_val >= (1.0 - self.config.hold) * new_val:
                return self.assigned
        idx = assign_targets(pos, new, self.r, self.config.assignment)
        return new[idx]

    def act(self, observations: dict[str, Any], state: np.ndarray | None = None,
            explore: bool = False) -> dict[str, Any]:
        frame, pos = self._parse_state(state)
        if self.assigned is None or self._since % self.config.replan_every == 0:
            self.assigned = self.plan(frame, pos)
        self._since += 1
        step = np.clip(self.assigned - pos, -self.r, self.r)
        actions = (step[:, 0] + self.r) * self.w + (step[:, 1] + self.r)
        return {a: int(actions[self._index(a, self.N)]) for a in observations}


# ---------------------------------------------------------------------------------------------


def _build(cls: type, needs_config: bool = True) -> Any:
    def build(env: Any, config: Any, seed: int | None = None) -> Any:
        return cls(config, seed) if needs_config else cls(seed)
    return build


register_algo(AlgoSpec("random", RandomConfig, _build(RandomPolicy), CAPS,
                       "uniformly random moves (masked to the grid)"))
register_algo(AlgoSpec("stay", StayConfig, _build(StayPolicy, needs_config=False), CAPS,
                       "never moves"))
register_algo(AlgoSpec("greedy-local", GreedyLocalConfig, _build(GreedyLocalPolicy), CAPS,
                       "each agent moves onto the densest cell of its own window"))
register_algo(AlgoSpec("eads", EADSConfig, _build(EADSPolicy),
                       Capabilities(learns=False, needs_global_state=True, families=("coverage",)),
                       "EADS (Ruan et al. 2020): greedy max-k-coverage targets on the current global "
                       "frame, bottleneck assignment, model-predictive re-planning"))

__all__ = ["EADSConfig", "EADSPolicy", "GreedyLocalConfig", "GreedyLocalPolicy", "RandomConfig",
           "RandomPolicy", "StayConfig", "StayPolicy", "assign_targets", "coverage_value",
           "greedy_targets", "window_sums"]
