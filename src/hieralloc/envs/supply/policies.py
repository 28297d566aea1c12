r"""Behaviour policies of the supply-chain family (OHIO App. B.4.3); they learn nothing.

* ``heur``: the S-type ("order-up-to") policy. Every step each store orders up to the store level
  and the warehouse produces up to the warehouse level, counting stock on hand and in transit net of
  the step's demand and back-orders (the inventory position). When the warehouse cannot fill every
  order it splits its stock in proportion to the orders (largest remainders), as the published
  ``s_type_policy`` does; orders never exceed a storage or production capacity. One level is
  shared by all stores (the published policy's ``s_store``) and one is the warehouse's
  (``s_factory``). The levels come from an exhaustive grid search (:func:`search_levels`,
  ``python -m hieralloc.envs.supply.search SCENARIO``); :data:`TUNED_LEVELS` holds the committed
  results for the registered scenarios.
* ``mpc``: rolling-horizon MPC. Every step it solves :class:`~hieralloc.solvers.InventoryPlanModel`
  over the rest of the episode (or ``horizon`` steps) with the step's demand known and noisy,
  unbiased forecasts of later demand, and executes the plan's first step.
* ``supply-mpc-oracle`` (MPC-Oracle): the same LP with perfect foresight of the realised demand (full information):
  the normalising reference of OHIO Sec. 5 (score = 100 x return / oracle return). Its first plan's
  value is an upper bound on any policy's return in the episode (``policy/oracle_bound``).

All three compute shipments and production and hand them to the environment as actions of its
``action_mode`` (:meth:`SupplyChainEnv.action_for_flows`: the OHIO goal in goal mode, which the
inventory LP executes exactly when the flows are feasible).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hieralloc.config import Config, param
from hieralloc.envs.supply.config import SupplyConfig
from hieralloc.envs.supply.core import SupplyCore, allocate, expected_demand
from hieralloc.envs.supply.env import AGENT, SupplyChainEnv
from hieralloc.errors import ConfigError, IncompatibleError
from hieralloc.registry import AlgoSpec, Capabilities, register_algo
from hieralloc.solvers import InventoryPlanModel

#: registered name of the supply MPC-Oracle ('mpc-oracle' is the mobility family's oracle)
ORACLE_NAME = "supply-mpc-oracle"

CAPS = Capabilities(discrete=False, continuous=True, learns=False, families=("supply",))
ORACLE_CAPS = Capabilities(discrete=False, continuous=True, learns=False, full_information=True,
                           families=("supply",))

#: seed of the grid search's episodes (distinct from the evaluation seeds, which start at seed + 1,000,000)
SEARCH_SEED = 20_240_001
SEARCH_EPISODES = 20
#: episodes simulated together by the grid search (bounds its memory)
CHUNK_EPISODES = 8192

#: order-up-to levels (store, warehouse) found by ``python -m hieralloc.envs.supply.search NAME``
#: (exhaustive grid: store 0..max store capacity, warehouse 0..warehouse capacity, step 1,
#: SEARCH_EPISODES episodes from SEARCH_SEED); see docs/environments/supply-chain.md.
TUNED_LEVELS: dict[str, tuple[int, int]] = {
    "supply-1w3s": (11, 50),       # mean return 5119.39 over the search episodes
    "supply-1w10s": (5, 80),       # 12074.69
    "supply-1w10s-cap": (5, 80),   # 12074.69 (a store level of 5 never reaches the capacity 10)
}


def _supply_env(env: Any) -> SupplyChainEnv:
    base = getattr(env, "unwrapped", env)
    if not isinstance(base, SupplyChainEnv):
        raise IncompatibleError(f"this policy drives the supply-chain environment, got {type(base).__name__}; "
                                "pick a supply environment (see 'hieralloc list')")
    return base


# ---------------------------------------------------------------------------------------------
# S-type (order-up-to) heuristic


def order_up_to(core: SupplyCore, store_level: Any, warehouse_level: Any) -> tuple[np.ndarray, np.ndarray]:
    """Shipments (B, S) and production (B, 1) of the order-up-to policy in the core's current states.

    ``store_level`` and ``warehouse_level`` are scalars or (B,) arrays (one pair per episode). The
    flows are feasible for the inventory LP (Eq. (33c-e)), so the goal mode executes them exactly.
    """
    B = core.B
    s_lvl = np.broadcast_to(np.asarray(store_level, dtype=np.int64), (B,))
    w_lvl = np.broadcast_to(np.asarray(warehouse_level, dtype=np.int64), (B,))
    want = np.clip(s_lvl[:, None] - core.store_net(), 0, None)              # up to the store level
    want = np.minimum(want, np.maximum(core.shipment_room(), 0))            # (33c)
    avail = core.stock[:, 0]
    short = want.sum(axis=1) > avail
    ship = want.copy()
    if short.any():  # split the warehouse stock in proportion to the orders
        w = np.concatenate([np.zeros((int(short.sum()), 1)), want[short].astype(float)], axis=1)
        ship[short] = allocate(w, avail[short])[:, 1:]
    shipped = ship.sum(axis=1)
    position = avail - shipped + core.production_pipeline()
    prod = np.clip(w_lvl - position, 0, np.maximum(core.production_room(shipped), 0))
    return ship, prod[:, None]


@dataclass
class LevelSearch:
    """Result of :func:`search_levels`: the best pair and the whole table of mean returns."""

    best: tuple[int, int]
    best_return: float
    store_levels: np.ndarray
    warehouse_levels: np.ndarray
    mean_return: np.ndarray  #: (len(store_levels), len(warehouse_levels))
    episodes: int
    seed: int


def search_levels(config: SupplyConfig, store_levels: Any = None, warehouse_levels: Any = None,
                  episodes: int = SEARCH_EPISODES, seed: int = SEARCH_SEED) -> LevelSearch:
    """Exhaustive grid search of the order-up-to levels (OHIO App. B.4.3): every (store, warehouse)
    pair runs the same ``episodes`` episodes (seeds ``episode_seed(seed, e)``) in one batched core;
    the pair with the highest mean return wins (ties: the lowest levels). Default grid: store levels
    ``0..max store capacity``, warehouse levels ``0..warehouse capacity``, step 1."""
    from hieralloc.eval import episode_seed

    if episodes < 1:
        raise ConfigError("episodes", f"the grid search needs at least one episode, got {episodes}")
    cap = np.asarray(config.storage_capacity)
    s_grid = np.arange(int(cap[1:].max()) + 1) if store_levels is None else np.asarray(store_levels, dtype=np.int64)
    w_grid = np.arange(int(cap[0]) + 1) if warehouse_levels is None else np.asarray(warehouse_levels, dtype=np.int64)
    if s_grid.size == 0 or w_grid.size == 0 or (s_grid < 0).any() or (w_grid < 0).any():
        raise ConfigError("levels", "the grid needs non-negative store and warehouse levels")
    seeds = [episode_seed(seed, e) for e in range(episodes)]
    draw = SupplyCore(config, episodes)
    draw.reset(seed=seeds)
    ns, nw = s_grid.size, w_grid.size
    s_all, w_all = np.repeat(s_grid, nw), np.tile(w_grid, ns)   # every pair, store-major
    flat = np.empty(ns * nw)
    per = max(1, CHUNK_EPISODES // episodes)                      # pairs per batched core (bounded memory)
    for lo in range(0, ns * nw, per):
        pairs = slice(lo, min(lo + per, ns * nw))
        n = pairs.stop - pairs.start
        core = SupplyCore(config, n * episodes)
        core.reset(demand=np.tile(draw.demand, (n, 1, 1)))
        s_lvl, w_lvl = np.repeat(s_all[pairs], episodes), np.repeat(w_all[pairs], episodes)
        while core.t < core.T:
            ship, prod = order_up_to(core, s_lvl, w_lvl)
            core.execute(ship, prod)
        flat[pairs] = core.sums["return"].reshape(n, episodes).mean(axis=1)
    ret = flat.reshape(ns, nw)
    k = int(np.argmax(ret))  # first maximum = lowest store level, then lowest warehouse level
    i, j = divmod(k, nw)
    return LevelSearch(best=(int(s_grid[i]), int(w_grid[j])), best_return=float(ret[i, j]), store_levels=s_grid,
                       warehouse_levels=w_grid, mean_return=ret, episodes=episodes, seed=seed)


_SEARCHED: dict[str, tuple[int, int]] = {}


def levels_for(config: SupplyConfig) -> tuple[int, int]:
    """The tuned levels of the registered scenario with these dynamics, else a grid search (cached)."""
    from hieralloc.envs.supply import SCENARIO_VALUES

    dyn = config.dynamics()
    for name, values in SCENARIO_VALUES.items():
        if name in TUNED_LEVELS and SupplyConfig(**values).dynamics() == dyn:
            return TUNED_LEVELS[name]
    key = repr(sorted(dyn.items()))
    if key not in _SEARCHED:
        _SEARCHED[key] = search_levels(config).best
    return _SEARCHED[key]


@dataclass
class HeurConfig(Config):
    levels: tuple[int, ...] = param((), "order-up-to levels [store, warehouse]; empty: the grid-search levels "
                                    "of the scenario (TUNED_LEVELS; other configurations are searched on first use)")

    def validate(self) -> None:
        super().validate()
        lv = tuple(self.levels)
        if len(lv) not in (0, 2) or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0
                                        for v in lv):
            raise ConfigError("levels", f"must be [] or two non-negative integers [store level, warehouse level], "
                              f"got {list(lv)!r}; e.g. algo.levels=[12,40]", getattr(self, "_source", None))
        self.levels = tuple(int(v) for v in lv)


class HeurPolicy:
    """S-type order-up-to policy (OHIO App. B.4.3) with a store level and a warehouse level."""

    def __init__(self, config: HeurConfig | None = None, seed: int | None = None) -> None:
        self.config = config or HeurConfig()
        self.env: SupplyChainEnv | None = None
        self.levels: tuple[int, int] | None = None

    def reset(self, env: Any, seed: int | None = None) -> None:
        self.env = _supply_env(env)
        lv = self.config.levels
        self.levels = (lv[0], lv[1]) if lv else levels_for(self.env.config)

    def flows(self) -> tuple[np.ndarray, np.ndarray]:
        assert self.env is not None and self.levels is not None, "call reset(env) first"
        ship, prod = order_up_to(self.env.core, self.levels[0], self.levels[1])
        return ship[0], prod[0]

    def act(self, observations: dict[str, Any], state: np.ndarray | None = None,
            explore: bool = False) -> dict[str, Any]:
        assert self.env is not None, "call reset(env) first"
        if AGENT not in observations:
            return {}
        return {AGENT: self.env.action_for_flows(*self.flows())}


# ---------------------------------------------------------------------------------------------
# MPC and MPC-Oracle


@dataclass
class MPCConfig(Config):
    horizon: int = param(0, "planning horizon in steps (0: the rest of the episode)", low=0, high=10_000)
    forecast: str = param("noisy", "demand of later steps: 'noisy' (the realised demand times 1 + e, "
                          "e ~ U(-a, a), a = min(sqrt(3) noise, 1): unbiased and non-negative, OHIO B.4.3) or "
                          "'mean' (the exact expectation of Eq. (31))", choices=("noisy", "mean"))
    noise: float = param(0.2, "relative standard deviation of the noisy forecast (before the cap a <= 1)",
                         low=0.0)
    bias: float = param(0.0, "relative bias of the forecast: later demand is forecast times 1 + bias (OHIO "
                        "Fig. 2b's 'MPC with biased forecast'; 0: unbiased)", low=-1.0, low_open=True)


@dataclass
class OracleConfig(Config):
    horizon: int = param(0, "planning horizon in steps (0: the rest of the episode)", low=0, high=10_000)


class MPCPolicy:
    """Rolling-horizon MPC over :class:`~hieralloc.solvers.InventoryPlanModel` (OHIO App. B.4.3)."""

    def __init__(self, config: Any = None, seed: int | None = None, *, oracle: bool = False) -> None:
        self.config = config if config is not None else (OracleConfig() if oracle else MPCConfig())
        self.oracle = oracle
        self.env: SupplyChainEnv | None = None
        self._models: dict[int, InventoryPlanModel] = {}
        self._key: tuple[Any, ...] | None = None
        self.rng = np.random.default_rng(seed)
        self.bound: float | None = None

    def reset(self, env: Any, seed: int | None = None) -> None:
        self.env = _supply_env(env)
        key = tuple(sorted(self.env.config.dynamics().items()))
        if key != self._key:  # models depend on the network only
            self._models, self._key = {}, key
        self.rng = np.random.default_rng([0 if seed is None else int(seed) % 2**63, 7_919])
        self.bound = None

    def _model(self, H: int) -> InventoryPlanModel:
        if H not in self._models:
            assert self.env is not None
            c = self.env.config
            S = c.n_stores
            self._models[H] = InventoryPlanModel(
                H, travel_time=np.asarray(c.travel_time, dtype=np.int64), production_time=c.production_time,
                store_capacity=c.storage_capacity[1:], warehouse_capacity=c.storage_capacity[0],
                production_capacity=c.production_capacity, price=c.price, storage_cost=c.storage_cost,
                production_cost=c.production_cost, transport_cost=np.full(S, c.transport_cost),
                backorder_cost=np.full(S, c.backorder_cost))
        return self._models[H]

    def demand_forecast(self, H: int) -> np.ndarray:
        """(H, S) demand the plan uses: the current step's demand, then the forecast (or the truth)."""
        assert self.env is not None
        core = self.env.core
        t = core.t
        real = core.demand[0, t:t + H].astype(float)
        if self.oracle or H == 1:
            return real
        out = real.copy()
        cfg = self.config
        assert isinstance(cfg, MPCConfig)
        if cfg.forecast == "mean":
            out[1:] = expected_demand(self.env.config)[t + 1:t + H]
        else:
            a = min(math.sqrt(3.0) * cfg.noise, 1.0)
            out[1:] = real[1:] * (1.0 + self.rng.uniform(-a, a, real[1:].shape))
        out[1:] *= 1.0 + cfg.bias
        return out

    def flows(self) -> tuple[np.ndarray, np.ndarray]:
        """Shipments (S,) and production (1,) of the first planned step, rounded to whole units."""
        assert self.env is not None, "call reset(env) first"
        core = self.env.core
        t = core.t
        rest = core.T - t
        H = rest if self.config.horizon == 0 else min(self.config.horizon, rest)
        plan = self._model(H).solve(
            warehouse_stock=core.stock[0, 0], store_stock=core.stock[0, 1:], backorders=core.backorders[0],
            demand=self.demand_forecast(H), production_arrivals=core.prod_arrivals[0, t + 1:],
            shipment_arrivals=core.ship_arrivals[0, t + 1:])
        if t == 0:  # the whole episode's plan: an upper bound on its return (oracle)
            self.bound = plan.profit
        return np.rint(plan.shipments[0]), np.rint(plan.production[:1])

    def act(self, observations: dict[str, Any], state: np.ndarray | None = None,
            explore: bool = False) -> dict[str, Any]:
        assert self.env is not None, "call reset(env) first"
        if AGENT not in observations:
            return {}
        return {AGENT: self.env.action_for_flows(*self.flows())}

    def episode_metrics(self) -> dict[str, float]:
        """The oracle's first plan value: an upper bound on any policy's return in the episode
        (full horizon only)."""
        if self.oracle and self.bound is not None and self.config.horizon == 0:
            return {"oracle_bound": float(self.bound)}
        return {}


def _build_heur(env: Any, config: HeurConfig, seed: int | None = None) -> HeurPolicy:
    return HeurPolicy(config, seed)


def _build_mpc(env: Any, config: MPCConfig, seed: int | None = None) -> MPCPolicy:
    return MPCPolicy(config, seed)


def _build_oracle(env: Any, config: OracleConfig, seed: int | None = None) -> MPCPolicy:
    return MPCPolicy(config, seed, oracle=True)


register_algo(AlgoSpec("heur", HeurConfig, _build_heur, CAPS,
                       "supply chain: S-type order-up-to policy (OHIO App. B.4.3), store and warehouse levels "
                       "from an exhaustive grid search"))
register_algo(AlgoSpec("mpc", MPCConfig, _build_mpc, CAPS,
                       "supply chain: rolling-horizon MPC (OHIO App. B.4.3) with noisy, unbiased demand forecasts"))
register_algo(AlgoSpec(ORACLE_NAME, OracleConfig, _build_oracle, ORACLE_CAPS,
                       "supply chain: MPC with perfect foresight of the realised demand (full information; the "
                       "normalising reference, score = 100 x return / oracle return)"))

__all__ = ["CAPS", "ORACLE_CAPS", "ORACLE_NAME", "SEARCH_EPISODES", "SEARCH_SEED", "TUNED_LEVELS", "HeurConfig",
           "HeurPolicy", "LevelSearch", "MPCConfig", "MPCPolicy", "OracleConfig", "levels_for", "order_up_to",
           "search_levels"]
