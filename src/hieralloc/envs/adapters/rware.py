"""Multi-Robot Warehouse (``rware``, Papoudakis et al. 2021) as a hieralloc environment.

The adapter drives ``rware.warehouse.Warehouse`` with flattened vector observations and no
communication bits, and adds a global state built from the warehouse internals, per-step delivery
counts and episode metrics. See docs/environments/rware.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium
import numpy as np

from hieralloc.config import param
from hieralloc.envs.adapters.base import AdapterConfig, AdapterEnv, require
from hieralloc.errors import ConfigError

N_ACTIONS = 5  # NOOP, FORWARD, LEFT, RIGHT, TOGGLE_LOAD (rware.warehouse.Action)
REWARD_TYPES = ("individual", "global", "two_stage")
#: rware's size names -> (shelf_rows, shelf_columns), as in rware/__init__.py
SIZES = {"tiny": (1, 3), "small": (2, 3), "medium": (2, 5), "large": (3, 5)}


@dataclass
class RWAREConfig(AdapterConfig):
    """Parameters of the warehouse; the defaults are ``rware-tiny-2ag-v2``.

    rware's registered ids ``rware-{size}-{n}ag[-easy|-hard]-v2`` use column_height 8,
    sensor_range 1, 500 steps, individual rewards, shelf rows/columns from :data:`SIZES` and a
    request queue of 2n (easy), n, or n/2 (hard).
    """

    shelf_rows: int = param(1, "rows of shelf blocks (tiny 1, small 2, medium 2, large 3)", low=1, high=50)
    shelf_columns: int = param(3, "columns of shelf blocks, odd (tiny/small 3, medium/large 5)", low=1, high=51)
    column_height: int = param(8, "shelves per block column", low=1, high=50)
    n_agents: int = param(2, "number of robots (agents)", low=1, high=1000)
    request_queue_size: int = param(0, "shelves requested at once (0: n_agents, rware's normal "
                                    "difficulty; 2 n_agents easy, n_agents / 2 hard)", low=0)
    sensor_range: int = param(1, "observation radius in cells", low=1, high=10)
    max_steps: int = param(500, "time limit in steps (truncation)", low=1, high=1_000_000)
    max_inactivity_steps: int = param(0, "end the episode (truncation) after this many steps without a "
                                      "delivery (0: never)", low=0)
    reward_type: str = param("individual", "'individual': +1 to the delivering robot; 'global': +1 to "
                             "every robot per delivery; 'two_stage': +0.5 for delivering and +0.5 for "
                             "returning the shelf", choices=REWARD_TYPES)
    normalised_coordinates: bool = param(False, "observe the robot's own (x, y) divided by the grid size")

    def validate(self) -> None:
        super().validate()
        if self.shelf_columns % 2 != 1:
            raise ConfigError("shelf_columns", f"must be odd (rware keeps the middle column free for the "
                              f"queue at the goals), got {self.shelf_columns}")
        h, w = self.grid_size
        if self.n_agents > h * w:
            raise ConfigError("n_agents", f"must be at most the {h * w} cells of the {h}x{w} warehouse, "
                              f"got {self.n_agents}")

    @property
    def grid_size(self) -> tuple[int, int]:
        """(height, width) of the warehouse (rware Warehouse docstring)."""
        return (self.column_height + 1) * self.shelf_rows + 2, 3 * self.shelf_columns + 1

    @property
    def queue_size(self) -> int:
        return self.request_queue_size or self.n_agents


class RWAREEnv(AdapterEnv):
    """Multi-robot warehouse as a PettingZoo ``ParallelEnv``.

    * actions ``Discrete(5)``: NOOP, FORWARD, LEFT, RIGHT (turn), TOGGLE_LOAD; every action is
      always allowed (an impossible one does nothing), so there are no action masks.
    * observations: rware's flattened vector, ``Box(8 + 7 (2r+1)^2)``: own x, y, carrying,
      direction one-hot, on-highway; then per sensed cell has-agent, its direction one-hot,
      has-shelf, shelf-requested.
    * ``state()`` with ``state='full'``: ``Box(8 N + 2 H W + 1)`` in [0, 1]: per robot
      x / (W-1), y / (H-1), direction one-hot, carrying, carrying a requested shelf; then the
      H x W shelf-occupancy layer, the H x W requested-shelf layer, and t / max_steps.
      ``state='concat'``: the N observations.
    * rewards: rware's per-robot rewards (``reward_type``); the episode ends by truncation at
      ``max_steps`` (or after ``max_inactivity_steps``); the task itself never terminates.
    * ``infos`` per step: deliveries, pickups (whole team, this step), team_reward, t.
    * ``episode_metrics()``: return, team_return, steps, deliveries, pickups.
    """

    metadata = {"name": "rware_v0", "render_modes": [], "is_parallelizable": True}

    def __init__(self, config: RWAREConfig | None = None) -> None:
        cfg = config if config is not None else RWAREConfig()
        mod = require("rware.warehouse", "rware", "rware")
        reward_type = {"individual": mod.RewardType.INDIVIDUAL, "global": mod.RewardType.GLOBAL,
                       "two_stage": mod.RewardType.TWO_STAGE}[cfg.reward_type]
        self.core = mod.Warehouse(
            shelf_columns=cfg.shelf_columns, column_height=cfg.column_height, shelf_rows=cfg.shelf_rows,
            n_agents=cfg.n_agents, msg_bits=0, sensor_range=cfg.sensor_range,
            request_queue_size=cfg.queue_size, max_inactivity_steps=cfg.max_inactivity_steps or None,
            max_steps=cfg.max_steps, reward_type=reward_type,
            observation_type=mod.ObservationType.FLATTENED, normalised_coordinates=cfg.normalised_coordinates,
        )
        n_shelves = int(np.count_nonzero(self.core.highways == 0))
        if cfg.queue_size >= n_shelves:
            raise ConfigError("request_queue_size", f"must be below the {n_shelves} shelves of this warehouse "
                              f"(a delivered request is replaced by an unrequested shelf), got {cfg.queue_size}")
        self.H, self.W = self.core.grid_size
        dim = int(self.core.observation_space[0].shape[0])
        high = np.ones(dim, dtype=np.float32)
        if not cfg.normalised_coordinates:
            high[:2] = (self.W - 1, self.H - 1)
        obs_space = gymnasium.spaces.Box(np.zeros(dim, np.float32), high, dtype=np.float32)
        sdim = 8 * cfg.n_agents + 2 * self.H * self.W + 1
        super().__init__(cfg, cfg.n_agents, obs_space, gymnasium.spaces.Discrete(N_ACTIONS),
                         gymnasium.spaces.Box(0.0, 1.0, shape=(sdim,), dtype=np.float32))
        self.cfg: RWAREConfig = cfg
        self._deliveries = 0
        self._pickups = 0

    def _reset_core(self, seed: int | None) -> list[np.ndarray]:
        obs, _ = self.core.reset(seed=seed)
        self._deliveries = 0
        self._pickups = 0
        return [np.asarray(o, dtype=np.float32) for o in obs]

    def _step_core(self, actions: list[Any]) -> tuple[list[np.ndarray], np.ndarray, bool, bool, dict[str, float]]:
        carrying = [a.carrying_shelf is not None for a in self.core.agents]
        delivered_before = [a.has_delivered for a in self.core.agents]
        obs, rewards, done, _trunc, _ = self.core.step(actions)
        r = np.asarray(rewards, dtype=np.float64)
        carrying_after = [a.carrying_shelf is not None for a in self.core.agents]
        pickups = sum(1 for b, a in zip(carrying, carrying_after, strict=True) if a and not b)
        # deliveries from the rewards (rware Warehouse.step): 'individual' +1 to the deliverer,
        # 'global' +1 to every robot, 'two_stage' +0.5 to the deliverer and +0.5 for returning a
        # delivered shelf (a robot cannot deliver and return in one step: goals are on the highway)
        if self.cfg.reward_type == "individual":
            deliveries = int(round(r.sum()))
        elif self.cfg.reward_type == "global":
            deliveries = int(round(r[0]))
        else:
            returned = np.array([d and c and not ca for d, c, ca
                                 in zip(delivered_before, carrying, carrying_after, strict=True)], dtype=float)
            deliveries = int(round(float((2.0 * r - returned).sum())))
        self._deliveries += deliveries
        self._pickups += pickups
        return ([np.asarray(o, dtype=np.float32) for o in obs], r, False, bool(done),
                {"deliveries": float(deliveries), "pickups": float(pickups)})

    def _full_state(self) -> np.ndarray:
        n, H, W = self.n, self.H, self.W
        out = np.zeros(8 * n + 2 * H * W + 1, dtype=np.float32)
        per = out[:8 * n].reshape(n, 8)
        requested = set(id(s) for s in self.core.request_queue)
        for i, a in enumerate(self.core.agents):
            per[i, 0] = a.x / (W - 1)
            per[i, 1] = a.y / (H - 1)
            per[i, 2 + a.dir.value] = 1.0
            if a.carrying_shelf is not None:
                per[i, 6] = 1.0
                per[i, 7] = float(id(a.carrying_shelf) in requested)
        shelves = out[8 * n:8 * n + H * W].reshape(H, W)
        shelves[:] = self.core.grid[1] > 0  # rware _LAYER_SHELFS
        req = out[8 * n + H * W:8 * n + 2 * H * W].reshape(H, W)
        for s in self.core.request_queue:
            req[s.y, s.x] = 1.0
        out[-1] = self.t / self.cfg.max_steps
        return out

    def _task_metrics(self) -> dict[str, float]:
        return {"deliveries": float(self._deliveries), "pickups": float(self._pickups)}


def make_rware(config: RWAREConfig | None = None) -> RWAREEnv:
    return RWAREEnv(config)


__all__ = ["N_ACTIONS", "REWARD_TYPES", "SIZES", "RWAREConfig", "RWAREEnv", "make_rware"]
