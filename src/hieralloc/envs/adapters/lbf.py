"""Level-Based Foraging (``lbforaging``, Papoudakis et al. 2021) as a hieralloc environment.

The adapter drives ``lbforaging.foraging.environment.ForagingEnv`` (vector observations) and
adds what our contract needs: a PettingZoo ``ParallelEnv``, a global state, valid-action masks
from LBF's own move rules, and episode metrics. See docs/environments/lbf.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import gymnasium
import numpy as np

from hieralloc.config import param
from hieralloc.envs.adapters.base import AdapterConfig, AdapterEnv, require
from hieralloc.errors import ConfigError

N_ACTIONS = 6  # NONE, NORTH, SOUTH, WEST, EAST, LOAD (lbforaging.foraging.environment.Action)


@dataclass
class LBFConfig(AdapterConfig):
    """Parameters of Level-Based Foraging; the defaults are ``Foraging-8x8-2p-2f-coop-v3``.

    The names of lbforaging's registered ids map as ``Foraging[-{sight}s]-{size}x{size}-
    {n_agents}p-{max_food}f[-coop]``; the registered ids always use player levels 1..2, food
    level ``max_food_level = 0`` (the sum of the three lowest player levels) and 50 steps.
    """

    size: int = param(8, "side of the square grid (lbforaging field_size)", low=3, high=64)
    n_agents: int = param(2, "number of players (agents)", low=1, high=64)
    max_food: int = param(2, "number of food items spawned per episode (max_num_food)", low=1, high=256)
    coop: bool = param(True, "force_coop: every food has the maximal level, so loading needs "
                       "several agents at once")
    sight: int = param(0, "observation radius in cells (0: the whole grid, lbforaging sight = size)",
                       low=0, high=64)
    max_steps: int = param(50, "time limit in steps (lbforaging max_episode_steps; truncation)",
                           low=1, high=100_000)
    min_player_level: int = param(1, "lowest player level", low=1, high=100)
    max_player_level: int = param(2, "highest player level", low=1, high=100)
    min_food_level: int = param(1, "lowest food level (ignored when coop)", low=1, high=1000)
    max_food_level: int = param(0, "highest food level (0: the sum of the three lowest player levels "
                                "of the episode, lbforaging's default)", low=0, high=1000)
    penalty: float = param(0.0, "reward subtracted from each agent of a failed load attempt", low=0.0)
    normalize_reward: bool = param(True, "divide rewards by the total food level spawned, so the team "
                                   "return is the fraction of food level collected")
    observe_agent_levels: bool = param(True, "include player levels in the observations")
    action_masks: bool = param(True, "put LBF's valid actions in infos[agent]['action_mask'] (False: "
                               "no masks; invalid actions act as NONE, as in the original and EPyMARL)")

    def validate(self) -> None:
        super().validate()
        if self.min_player_level > self.max_player_level:
            raise ConfigError("min_player_level", f"must be <= max_player_level = {self.max_player_level}, "
                              f"got {self.min_player_level}")
        if self.max_food_level and self.max_food_level < self.min_food_level:
            raise ConfigError("max_food_level", f"must be 0 (automatic) or >= min_food_level = "
                              f"{self.min_food_level}, got {self.max_food_level}")
        if self.sight > self.size:
            raise ConfigError("sight", f"must be at most size = {self.size} (0 means the whole grid), "
                              f"got {self.sight}")
        # food spawns strictly inside the border, no two food within one cell of each other
        # (lbforaging spawn_food), so at most ceil((size - 2) / 2)^2 items fit
        cap = math.ceil((self.size - 2) / 2) ** 2
        if self.max_food > cap:
            raise ConfigError("max_food", f"at most {cap} food items fit on a {self.size}x{self.size} grid "
                              f"(food is spawned inside the border and never adjacent), got {self.max_food}; "
                              f"lower max_food or raise size")
        if self.n_agents + self.max_food > self.size * self.size:
            raise ConfigError("n_agents", f"{self.n_agents} agents and {self.max_food} food do not fit on "
                              f"{self.size * self.size} cells; lower n_agents or raise size")


class LBFEnv(AdapterEnv):
    """Level-Based Foraging as a PettingZoo ``ParallelEnv``.

    * actions ``Discrete(6)``: NONE, NORTH, SOUTH, WEST, EAST, LOAD; ``infos[a]['action_mask']``
      (int8) marks LBF's valid actions (in bounds, not into food, LOAD only next to food).
    * observations: LBF's vector ``Box(3 F + 3 N)``: (row, col, level) of each visible food,
      then of each visible player (self first), ``(-1, -1, 0)`` for unseen slots.
    * ``state()`` with ``state='full'``: ``Box(3 F + 3 N + 1)``: (row, col, level) of each food
      in fixed slots (spawn order, row-major; ``(-1, -1, 0)`` once collected), (row, col, level)
      of each player in agent order, and t / max_steps. ``state='concat'``: the N observations.
    * rewards: LBF's individual rewards; termination when all food is collected, truncation at
      ``max_steps``.
    * ``infos`` per step: food_collected, level_collected (this step, whole team), team_reward, t.
    * ``episode_metrics()``: return, team_return, steps, food_collected (fraction of spawned items),
      level_collected (fraction of spawned food level), food_spawned, success (all collected).
    """

    metadata = {"name": "lbf_v0", "render_modes": [], "is_parallelizable": True}

    def __init__(self, config: LBFConfig | None = None) -> None:
        cfg = config if config is not None else LBFConfig()
        mod = require("lbforaging.foraging.environment", "lbforaging", "lbf")
        self.core = mod.ForagingEnv(
            players=cfg.n_agents, min_player_level=cfg.min_player_level, max_player_level=cfg.max_player_level,
            min_food_level=cfg.min_food_level, max_food_level=cfg.max_food_level or None,
            field_size=(cfg.size, cfg.size), max_num_food=cfg.max_food, sight=cfg.sight or cfg.size,
            max_episode_steps=cfg.max_steps, force_coop=cfg.coop, normalize_reward=cfg.normalize_reward,
            grid_observation=False, observe_agent_levels=cfg.observe_agent_levels, penalty=cfg.penalty,
        )
        self._action_enum = mod.Action
        orig = self.core.observation_space[0]
        obs_space = gymnasium.spaces.Box(np.asarray(orig.low, np.float32), np.asarray(orig.high, np.float32),
                                         dtype=np.float32)
        F, N, s = cfg.max_food, cfg.n_agents, cfg.size
        max_food_level = (cfg.max_food_level if cfg.max_food_level
                          else sum(sorted([cfg.max_player_level] * N)[:3]))
        low = np.array([-1, -1, 0] * F + [0, 0, cfg.min_player_level] * N + [0], dtype=np.float32)
        high = np.array([s - 1, s - 1, max_food_level] * F + [s - 1, s - 1, cfg.max_player_level] * N + [1],
                        dtype=np.float32)
        super().__init__(cfg, N, obs_space, gymnasium.spaces.Discrete(N_ACTIONS),
                         gymnasium.spaces.Box(low, high, dtype=np.float32))
        self.cfg: LBFConfig = cfg
        self._food_cells = np.zeros((0, 2), dtype=np.int64)
        self._food_levels = np.zeros(0)

    def _reset_core(self, seed: int | None) -> list[np.ndarray]:
        # lbforaging's spawn_players rejects cells that hold another player's position from the
        # previous episode, so a reset would depend on the last episode; clearing them makes
        # reset(seed=s) give the same episode on a fresh and on a used instance.
        for p in self.core.players:
            p.position = None
        obs, _ = self.core.reset(seed=seed)
        self._food_cells = np.argwhere(self.core.field > 0)  # row-major: the fixed food slots
        self._food_levels = self.core.field[tuple(self._food_cells.T)].astype(np.float64)
        return [np.asarray(o, dtype=np.float32) for o in obs]

    def _step_core(self, actions: list[Any]) -> tuple[list[np.ndarray], np.ndarray, bool, bool, dict[str, float]]:
        items_before = int(np.count_nonzero(self.core.field))
        level_before = float(self.core.field.sum())
        obs, rewards, _done, _trunc, _ = self.core.step(actions)
        items = items_before - int(np.count_nonzero(self.core.field))
        level = level_before - float(self.core.field.sum())
        terminated = bool(self.core.field.sum() == 0)
        truncated = self.core.current_step >= self.cfg.max_steps
        return ([np.asarray(o, dtype=np.float32) for o in obs], np.asarray(rewards, dtype=np.float64),
                terminated, truncated, {"food_collected": float(items), "level_collected": level})

    def _masks(self) -> np.ndarray | None:
        if not self.cfg.action_masks or self.core._valid_actions is None:
            return None
        m = np.zeros((self.n, N_ACTIONS), dtype=np.int8)
        for i, player in enumerate(self.core.players):
            for act in self.core._valid_actions[player]:
                m[i, act.value] = 1
        return m

    def _full_state(self) -> np.ndarray:
        F = self.cfg.max_food
        out = np.zeros(3 * F + 3 * self.n + 1, dtype=np.float32)
        food = out[:3 * F].reshape(F, 3)
        food[:, :2] = -1.0
        for k, (r, c) in enumerate(self._food_cells[:F]):
            level = self.core.field[r, c]
            if level > 0:
                food[k] = (r, c, level)
        players = out[3 * F:3 * F + 3 * self.n].reshape(self.n, 3)
        for i, p in enumerate(self.core.players):
            players[i] = (p.position[0], p.position[1], p.level)
        out[-1] = self.t / self.cfg.max_steps
        return out

    def _task_metrics(self) -> dict[str, float]:
        n_spawned = len(self._food_cells)
        if n_spawned == 0:
            return {"food_collected": 0.0, "level_collected": 0.0, "food_spawned": 0.0, "success": 0.0}
        remaining = self.core.field[tuple(self._food_cells.T)]
        items = float(np.count_nonzero(remaining == 0))
        level = float(self._food_levels[remaining == 0].sum())
        return {"food_collected": items / n_spawned, "level_collected": level / float(self._food_levels.sum()),
                "food_spawned": float(n_spawned), "success": float(items == n_spawned)}

    @property
    def positions(self) -> np.ndarray:
        """(N, 2) player cells (row, col) in agent order."""
        return np.array([p.position for p in self.core.players], dtype=np.int64)

    @property
    def levels(self) -> np.ndarray:
        """(N,) player levels in agent order."""
        return np.array([p.level for p in self.core.players], dtype=np.int64)

    @property
    def field(self) -> np.ndarray:
        """(size, size) food levels now (0 = no food)."""
        return self.core.field.copy()


def make_lbf(config: LBFConfig | None = None) -> LBFEnv:
    return LBFEnv(config)


__all__ = ["N_ACTIONS", "LBFConfig", "LBFEnv", "make_lbf"]
