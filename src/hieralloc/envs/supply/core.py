r"""Batched dynamics of the supply-chain inventory network (OHIO App. B.4): one warehouse (node 0,
it produces) and S stores (nodes 1..S), B episodes stepped together with numpy bookkeeping and
one inventory LP (:class:`~hieralloc.solvers.InventoryModel`, OHIO Eq. (33)) shared by the batch.
:class:`~hieralloc.envs.supply.env.SupplyChainEnv` wraps it with ``B = 1``.

Quantities (stores ``i``, steps ``t = 0..T-1``, all goods integer):

* demand ``d_it = floor(d_max,i / 2 (1 + cos(f_i pi (2 r_i + t) / T)) + U(0, d_var,i))``, OHIO
  Eq. (31), drawn at reset for the whole episode (seeded);
* on-hand stock ``q_it`` (warehouse ``q_0t``), back-orders ``b_it`` (demand not yet served);
* production ``w_t <= c_p`` arrives at the warehouse at ``t + t^P``; a shipment ``f_it`` leaves the
  warehouse at t and arrives at store i at ``t + t_i``.

One step t (the decision sees the state after the arrivals of t and the demand ``d_t``):

1. The high-level action becomes production and shipments: in ``'goal'`` mode through the
   inventory LP (Eq. (33)) towards the goal's targets; in ``'flow'`` mode (end-to-end) the requested
   flows are cut to the warehouse stock, and storage capacities are left to Eq. (32)'s penalty
   (:meth:`SupplyCore.physical`); ``violation`` counts how far the request breaks Eq. (33c-e).
2. Shipments leave the warehouse, production enters the pipeline.
3. Stores sell ``s_i = min(d_it + b_i, q_i)``; the rest is back-ordered: ``b_i <- d_it + b_i - s_i``.
4. Stock above a storage capacity is discarded (never happens under the LP's (33c)/(33e); it can in
   ``'flow'`` mode).
5. Reward, OHIO Eq. (32) with sales at the stores (see docs for the reading of its first sum):
   ``p sum s_i - sum_v m^S_v q_v - m^O w - m^T sum f_i - 1.5 p sum overflow - m^B sum b_i``, stocks
   and back-orders at the end of the step.
6. ``t <- t + 1``; production and shipments due at t + 1 arrive.

Capacity rows of the LP (Eq. (33c)/(33e), generalised to lead times above one step by counting
the goods already on their way): ``f_i + n_i <= C_i`` with ``n_i = q_i - d_it - b_i + (in transit
to i)``, and ``q_0 + (production in the pipeline) + w - sum f <= C_0``. In goal mode both hold after
every step, so the LP is feasible in every state the environment reaches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hieralloc.envs.base import check_batch_action
from hieralloc.envs.mobility.core import desired_targets
from hieralloc.envs.seeding import batch_rngs
from hieralloc.envs.supply.config import SupplyConfig
from hieralloc.errors import ConfigError, HierallocError
from hieralloc.solvers import InventoryModel

#: where an action's entries are described (the end of the wrong-size message of check_batch_action)
_ACTION_HINT = "see the environment's action_space"
#: per-step metrics accumulated per episode (see :meth:`SupplyCore.episode_metrics`)
_SUMS = ("return", "revenue", "sales", "demand", "backorders", "storage_cost", "production_cost", "transport_cost",
         "overflow_cost", "backorder_cost", "produced", "shipped", "overflow", "violation", "slack")


def seasonal_demand(config: SupplyConfig) -> np.ndarray:
    """(T, S) deterministic part of OHIO Eq. (31): ``d_max / 2 (1 + cos(f pi (2 r + t) / T))``."""
    T = config.episode_length
    t = np.arange(T, dtype=float)[:, None]
    dmax = np.asarray(config.demand_max)[None, :]
    f = np.asarray(config.demand_freq)[None, :]
    r = np.asarray(config.demand_shift)[None, :]
    return dmax / 2.0 * (1.0 + np.cos(f * np.pi * (2.0 * r + t) / T))


def expected_demand(config: SupplyConfig) -> np.ndarray:
    """(T, S) exact expectation of Eq. (31): ``E floor(x + U(0, v)) = (F(x + v) - F(x)) / v`` with
    ``F(y) = integral_0^y floor = k (k - 1) / 2 + k (y - k)``, ``k = floor(y)``; ``floor(x)`` when v = 0."""
    x = seasonal_demand(config)
    v = np.broadcast_to(np.asarray(config.demand_var, dtype=float)[None, :], x.shape)

    def F(y: np.ndarray) -> np.ndarray:
        k = np.floor(y)
        return k * (k - 1.0) / 2.0 + k * (y - k)

    with np.errstate(divide="ignore", invalid="ignore"):
        mean = (F(x + v) - F(x)) / v
    return np.where(v > 0, mean, np.floor(x))


@dataclass
class StepResult:
    """Arrays returned by :meth:`SupplyCore.step` (B = batch size, S stores, N = S + 1 nodes)."""

    reward: np.ndarray           #: (B,) OHIO Eq. (32)
    revenue: np.ndarray          #: (B,) p x sales
    sales: np.ndarray            #: (B,) units sold
    demand: np.ndarray           #: (B,) new demand of the step (sum over stores)
    backorders: np.ndarray       #: (B,) back-ordered units after the step
    storage_cost: np.ndarray     #: (B,)
    production_cost: np.ndarray  #: (B,)
    transport_cost: np.ndarray   #: (B,)
    overflow_cost: np.ndarray    #: (B,) 1.5 p x units above capacity
    backorder_cost: np.ndarray   #: (B,) m^B x back-ordered units
    shipments: np.ndarray        #: (B, S) int64 goods shipped to each store
    production: np.ndarray       #: (B, 1) int64 production ordered
    targets: np.ndarray          #: (B, S + 1) int64: goal mode q^ per store then w^; flow mode the request
    store_demand: np.ndarray     #: (B, S) int64 demand d_t
    store_sales: np.ndarray      #: (B, S) int64
    store_backorders: np.ndarray  #: (B, S) int64 after the step
    inventory: np.ndarray        #: (B, N) int64 on hand at the end of the step (after sales)
    overflow: np.ndarray         #: (B, N) int64 units discarded above capacity
    violation: np.ndarray        #: (B,) flow mode: units the request breaks Eq. (33c-e) by (0 in goal mode)
    slack: np.ndarray            #: (B,) goal mode: sum |eps| of Eq. (33a) (0 in flow mode)
    t: int                       #: step index after this step (1..T)
    done: bool                   #: t == T


def allocate(weights: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Integer split of ``total`` (B,) goods by ``weights`` (B, N) with largest remainders (sums to
    ``total``); an all-zero row keeps everything at node 0 (the warehouse ships nothing)."""
    idle = np.zeros(weights.shape, dtype=np.int64)
    idle[:, 0] = total
    return desired_targets(weights, idle, "largest-remainder")


class SupplyCore:
    """B synchronous episodes of the one-warehouse, S-store supply chain (OHIO App. B.4).

    Args:
        config: the environment configuration.
        batch_size: number of episodes B stepped together.
    """

    def __init__(self, config: SupplyConfig, batch_size: int = 1) -> None:
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ConfigError("batch_size", f"must be a positive integer, got {batch_size!r}")
        self.config = cfg = config
        self.B = int(batch_size)
        self.S = S = cfg.n_stores
        self.N = S + 1
        self.P = 1
        self.T = T = cfg.episode_length
        self.K = cfg.horizon
        self.tau = np.asarray(cfg.travel_time, dtype=np.int64)            # (S,)
        self.tP = int(cfg.production_time)
        self.capacity = np.asarray(cfg.storage_capacity, dtype=np.int64)  # (N,)
        self.holding = np.asarray(cfg.storage_cost, dtype=float)          # (N,)
        self.cp = int(cfg.production_capacity)
        self.flow_bound = np.full(S, int(self.capacity[0]), dtype=np.int64)  # B.4.3: capacity of the previous stage
        self.base_demand = seasonal_demand(cfg)                            # (T, S)
        self.mean_demand = expected_demand(cfg)                            # (T, S)
        self.initial = (np.asarray(cfg.initial_inventory, dtype=np.int64) if len(cfg.initial_inventory)
                        else np.zeros(self.N, dtype=np.int64))
        # one inventory LP (OHIO Eq. (33)) for the batch; every solve is cold (InventoryModel)
        self.model = InventoryModel(np.stack([np.zeros(S, dtype=np.int64), np.arange(S)], axis=1),
                                    self.capacity[1:], self.capacity[:1], [self.cp])
        self.Hslots = T + int(max(self.tau.max(), self.tP)) + self.K + 2  # arrival slots (absolute steps)
        self._rngs: list[np.random.Generator] = [np.random.default_rng() for _ in range(self.B)]
        self.t = 0
        self._started = False
        self.demand = np.zeros((self.B, T, S), dtype=np.int64)
        self.stock = np.tile(self.initial, (self.B, 1))
        self.backorders = np.zeros((self.B, S), dtype=np.int64)
        self.ship_arrivals = np.zeros((self.B, self.Hslots, S), dtype=np.int64)
        self.prod_arrivals = np.zeros((self.B, self.Hslots), dtype=np.int64)
        self.sums = {k: np.zeros(self.B) for k in _SUMS}
        self.steps = 0

    # ------------------------------------------------------------------ episode
    def reset(self, seed: int | list[int] | None = None, demand: Any = None, inventory: Any = None) -> None:
        """Start B episodes.

        ``seed``: an int (B = 1: ``default_rng(seed)``; B > 1: ``default_rng([seed, b])``), a list of
        B ints, or None (continue the generators). ``demand`` fixes the demand ``(T, S)`` or
        ``(B, T, S)`` (non-negative integers) instead of Eq. (31) draws; ``inventory`` the stock on
        hand per node ``(N,)`` or ``(B, N)`` (within the capacities).
        """
        B, T, S = self.B, self.T, self.S
        if seed is not None:
            self._rngs = batch_rngs(seed, B)
        if demand is None:
            var = np.asarray(self.config.demand_var, dtype=float)
            noise = np.stack([rng.uniform(0.0, 1.0, (T, S)) for rng in self._rngs]) * var  # U(0, d_var)
            self.demand = np.floor(self.base_demand[None] + noise).astype(np.int64)      # OHIO Eq. (31)
        else:
            self.demand = self._counts(demand, (T, S), "demand")
        if inventory is None:
            self.stock = np.tile(self.initial, (B, 1))
        else:
            self.stock = self._counts(inventory, (self.N,), "inventory")
            if (self.stock > self.capacity).any():
                raise ConfigError("inventory", f"exceeds the storage capacities {self.capacity.tolist()}")
        self.backorders = np.zeros((B, S), dtype=np.int64)
        self.ship_arrivals = np.zeros((B, self.Hslots, S), dtype=np.int64)
        self.prod_arrivals = np.zeros((B, self.Hslots), dtype=np.int64)
        self.t = 0
        self.sums = {k: np.zeros(B) for k in _SUMS}
        self.steps = 0
        self._started = True

    def _counts(self, value: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
        a = np.asarray(value)
        if a.shape == shape:
            a = np.broadcast_to(a, (self.B, *shape))
        if a.shape != (self.B, *shape):
            raise ConfigError(what, f"must have shape {shape} or {(self.B, *shape)}, got {a.shape}")
        if a.dtype.kind not in "iuf" or not np.isfinite(a).all() or (a < 0).any() or (a != np.round(a)).any():
            raise ConfigError(what, "must hold non-negative integer counts of goods")
        return np.array(a, dtype=np.int64)

    # ------------------------------------------------------------------ state at decision time
    def current_demand(self) -> np.ndarray:
        """(B, S) demand d_t of the current step (zeros once the episode is over)."""
        if self.t >= self.T:
            return np.zeros((self.B, self.S), dtype=np.int64)
        return self.demand[:, self.t]

    def in_transit(self) -> np.ndarray:
        """(B, S) shipments on their way to each store (arriving after the current step)."""
        return self.ship_arrivals[:, self.t + 1:].sum(axis=1)

    def production_pipeline(self) -> np.ndarray:
        """(B,) production ordered that has not arrived at the warehouse yet."""
        return self.prod_arrivals[:, self.t + 1:].sum(axis=1)

    def store_net(self) -> np.ndarray:
        """(B, S) ``n_i = q_i - d_it - b_i + in transit``: the store's stock after this step's demand
        plus what is already coming (negative = back-orders); the left side of Eq. (33c) without f."""
        return self.stock[:, 1:] - self.current_demand() - self.backorders + self.in_transit()

    def shipment_room(self) -> np.ndarray:
        """(B, S) largest shipment each store can take, ``C_i - n_i`` (Eq. (33c))."""
        return self.capacity[None, 1:] - self.store_net()

    def production_room(self, shipped: np.ndarray) -> np.ndarray:
        """(B,) largest production with ``shipped`` (B,) units leaving: ``min(c_p, C_0 - q_0 - pipeline + shipped)``
        (Eq. (33e) and the production capacity)."""
        room = self.capacity[0] - self.stock[:, 0] - self.production_pipeline() + shipped
        return np.minimum(self.cp, room)

    # ------------------------------------------------------------------ controllers
    def goal_targets(self, goal: Any) -> np.ndarray:
        """(B, S + 1) int64 targets of the inventory LP from goals ``(B, N + 1)``: the first N entries are
        weights over warehouse + stores (clipped at 0, normalised; all zero = ship nothing) splitting the
        warehouse stock into desired inflows ``q^_i`` (largest remainders); the last is the production
        fraction of c_p (clipped to [0, 1]), ``w^ = round(fraction c_p)`` (OHIO App. B.4.2, B.5.1)."""
        g = check_batch_action(goal, self.B, self.N + self.P, "goal", _ACTION_HINT)
        split = allocate(np.maximum(g[:, :self.N], 0.0), self.stock[:, 0])
        prod = np.rint(np.clip(g[:, self.N:], 0.0, 1.0) * self.cp).astype(np.int64)
        return np.concatenate([split[:, 1:], prod], axis=1)

    def flow_request(self, action: Any) -> np.ndarray:
        """(B, S + 1) int64 requested shipments and production of a ``'flow'`` action ``(B, S + 1)``: each
        entry (clipped to [0, 1]) times its individual upper bound, rounded (OHIO App. B.4.3: the storage
        capacity of the previous stage for shipments, c_p for production)."""
        a = np.clip(check_batch_action(action, self.B, self.S + self.P, "flow", _ACTION_HINT), 0.0, 1.0)
        bound = np.concatenate([self.flow_bound, [self.cp]]).astype(float)
        return np.rint(a * bound[None, :]).astype(np.int64)

    def solve(self, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Inventory LP (OHIO Eq. (33)) per episode for targets ``(B, S + 1)`` = (q^ per store, w^).
        Returns shipments (B, S), production (B, 1) (int64) and the L1 distance sum |eps| (B,)."""
        ship = np.zeros((self.B, self.S), dtype=np.int64)
        prod = np.zeros((self.B, 1), dtype=np.int64)
        dist = np.zeros(self.B)
        net, pipe = self.store_net(), self.production_pipeline()
        for b in range(self.B):
            r = self.model.solve(targets[b, :self.S], targets[b, self.S:], self.stock[b, :1], net[b], pipe[b:b + 1])
            ship[b] = np.rint(r.flows).astype(np.int64)
            prod[b] = np.rint(r.production).astype(np.int64)
            dist[b] = r.objective
        return ship, prod, dist

    def controller(self, action: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Flows the current state and ``action`` lead to, without stepping (no side effects).

        Returns (shipments (B, S), production (B, 1), targets (B, S + 1), violation (B,), slack (B,)).
        """
        if self.config.action_mode == "goal":
            targets = self.goal_targets(action)
            ship, prod, slack = self.solve(targets)
            return ship, prod, targets, np.zeros(self.B), slack
        targets = self.flow_request(action)
        ship, prod = self.physical(targets)
        return ship, prod, targets, self.violation(targets, ship, prod), np.zeros(self.B)

    def physical(self, request: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """End-to-end request (B, S + 1) -> executable flows: shipments beyond the warehouse stock are cut in
        proportion to the request (largest remainders; an L1 projection onto (33d)); production is within
        [0, c_p] by construction. Storage capacities are *not* enforced: stock above them is discarded and
        penalised by Eq. (32), as for the end-to-end policies of OHIO App. B.4.3 (Fig. 9)."""
        ship = request[:, :self.S].copy()
        avail = self.stock[:, 0]
        short = ship.sum(axis=1) > avail
        if short.any():
            w = np.concatenate([np.zeros((int(short.sum()), 1)), ship[short].astype(float)], axis=1)
            ship[short] = allocate(w, avail[short])[:, 1:]
        return ship, request[:, self.S:].copy()

    def violation(self, request: np.ndarray, ship: np.ndarray, prod: np.ndarray) -> np.ndarray:
        """(B,) units by which a request breaks Eq. (33c-e): shipments cut for lack of stock (33d), plus
        shipments beyond each store's room ``max(C_i - n_i, 0)`` (33c), plus production beyond the
        warehouse's room ``max(C_0 - (q_0 - shipped) - pipeline, 0)`` (33e). Zero iff the request is
        feasible for the inventory LP."""
        cut = np.abs(request - np.concatenate([ship, prod], axis=1)).sum(axis=1)
        store = np.maximum(ship - np.maximum(self.shipment_room(), 0), 0).sum(axis=1)
        wroom = self.capacity[0] - (self.stock[:, 0] - ship.sum(axis=1)) - self.production_pipeline()
        return (cut + store + np.maximum(prod[:, 0] - np.maximum(wroom, 0), 0)).astype(float)

    # ------------------------------------------------------------------ dynamics
    def step(self, action: Any) -> StepResult:
        """Turn ``action`` into flows (goal: Eq. (33); flow: projection) and execute them."""
        self._require_running()
        ship, prod, targets, violation, slack = self.controller(action)
        return self.execute(ship, prod, targets=targets, violation=violation, slack=slack,
                            strict=self.config.action_mode == "goal")

    def _require_running(self) -> None:
        if not self._started or self.t >= self.T:
            raise HierallocError("step() called on a finished episode; call reset() first")

    def check_feasible(self, ship: np.ndarray, prod: np.ndarray, strict: bool = True) -> None:
        """Raise :class:`HierallocError` unless (ship, prod) are physically possible (non-negative, shipments
        within the warehouse stock (33d), production within c_p) and, when ``strict``, also respect the
        storage capacities (33c), (33e)."""
        problems = []
        if (ship < 0).any() or (prod < 0).any():
            problems.append("negative shipments or production")
        if (ship.sum(axis=1) > self.stock[:, 0]).any():
            problems.append("shipments exceed the warehouse stock (33d)")
        if (prod > self.cp).any():
            problems.append("production exceeds the production capacity c_p")
        if strict and (ship > self.shipment_room()).any():
            problems.append("a store would exceed its storage capacity (33c)")
        if strict and (prod[:, 0] > self.production_room(ship.sum(axis=1))).any():
            problems.append("production exceeds the warehouse capacity (33e)")
        if problems:
            raise HierallocError("infeasible flows: " + "; ".join(problems))

    def execute(self, ship: Any, prod: Any, *, targets: np.ndarray | None = None, violation: np.ndarray | None = None,
                slack: np.ndarray | None = None, strict: bool = True) -> StepResult:
        """Execute integer shipments ``(B, S)`` and production ``(B, 1)`` (or ``(B,)``) for one step.

        They must be physically possible and, when ``strict`` (goal mode, the heuristics), feasible for
        the inventory LP (:meth:`check_feasible`). The inventory LP, the end-to-end projection and the
        order-up-to heuristic all end here: this is the one implementation of the dynamics and of the
        reward (OHIO Eq. (32)).
        """
        self._require_running()
        B, S, t = self.B, self.S, self.t
        ship = np.asarray(ship).reshape(B, S)
        prod = np.asarray(prod).reshape(B, 1)
        if np.abs(ship - np.rint(ship)).max(initial=0) > 1e-9 or np.abs(prod - np.rint(prod)).max(initial=0) > 1e-9:
            raise HierallocError("shipments and production must be whole units of goods")
        ship, prod = np.rint(ship).astype(np.int64), np.rint(prod).astype(np.int64)
        self.check_feasible(ship, prod, strict)
        cfg = self.config
        d = self.demand[:, t]
        # shipments leave, production enters the pipeline
        self.stock[:, 0] -= ship.sum(axis=1)
        b_idx, i_idx = np.nonzero(ship)
        np.add.at(self.ship_arrivals, (b_idx, t + self.tau[i_idx], i_idx), ship[b_idx, i_idx])
        self.prod_arrivals[:, t + self.tP] += prod[:, 0]
        # sales, back-orders
        due = d + self.backorders
        sales = np.minimum(due, self.stock[:, 1:])
        self.stock[:, 1:] -= sales
        self.backorders = due - sales
        overflow = np.maximum(self.stock - self.capacity[None, :], 0)
        self.stock -= overflow
        # OHIO Eq. (32)
        revenue = cfg.price * sales.sum(axis=1)
        storage = (self.stock * self.holding[None, :]).sum(axis=1)
        production_cost = cfg.production_cost * prod[:, 0]
        transport = cfg.transport_cost * ship.sum(axis=1)
        overflow_cost = cfg.overflow_penalty * cfg.price * overflow.sum(axis=1)
        backorder_cost = cfg.backorder_cost * self.backorders.sum(axis=1)
        reward = revenue - storage - production_cost - transport - overflow_cost - backorder_cost
        inventory = self.stock.copy()
        # advance: arrivals of t + 1
        self.t = t + 1
        self.stock[:, 0] += self.prod_arrivals[:, self.t]
        self.stock[:, 1:] += self.ship_arrivals[:, self.t]
        zeros = np.zeros(B)
        violation = zeros if violation is None else np.asarray(violation, dtype=float)
        slack = zeros if slack is None else np.asarray(slack, dtype=float)
        if targets is None:
            targets = np.concatenate([ship, prod], axis=1)
        f = float
        res = StepResult(reward=reward.astype(f), revenue=revenue.astype(f), sales=sales.sum(axis=1).astype(f),
                         demand=d.sum(axis=1).astype(f), backorders=self.backorders.sum(axis=1).astype(f),
                         storage_cost=storage.astype(f), production_cost=production_cost.astype(f),
                         transport_cost=transport.astype(f), overflow_cost=overflow_cost.astype(f),
                         backorder_cost=backorder_cost.astype(f), shipments=ship, production=prod, targets=targets,
                         store_demand=d.copy(), store_sales=sales, store_backorders=self.backorders.copy(),
                         inventory=inventory, overflow=overflow, violation=violation, slack=slack, t=self.t,
                         done=self.t >= self.T)
        s = self.sums
        s["return"] += res.reward
        s["revenue"] += res.revenue
        s["sales"] += res.sales
        s["demand"] += res.demand
        s["backorders"] += res.backorders
        s["storage_cost"] += res.storage_cost
        s["production_cost"] += res.production_cost
        s["transport_cost"] += res.transport_cost
        s["overflow_cost"] += res.overflow_cost
        s["backorder_cost"] += res.backorder_cost
        s["produced"] += prod[:, 0]
        s["shipped"] += ship.sum(axis=1)
        s["overflow"] += overflow.sum(axis=1)
        s["violation"] += violation
        s["slack"] += slack
        self.steps += 1
        return res

    # ------------------------------------------------------------------ observations
    def node_features(self) -> np.ndarray:
        """(B, N, 8 + 2K) float32 node features of OHIO App. B.4.2, goods and money scaled by ``obs_scale``.

        Columns: (i) current demand d_t and back-orders (stores; 0 at the warehouse); (ii) stock on
        hand; (iii) storage cost, production cost (warehouse), price (stores), storage capacity,
        production capacity (warehouse); (iv) arrivals in each of the next K steps (production at the
        warehouse, shipments at the stores); expected demand (Eq. (31)'s mean) in each of the next K
        steps (stores; the published GNN parser's demand look-ahead, zeros past the episode).
        """
        B, N, S, K, t = self.B, self.N, self.S, self.K, self.t
        cfg = self.config
        x = np.zeros((B, N, 8 + 2 * K))
        x[:, 1:, 0] = self.current_demand()
        x[:, 1:, 1] = self.backorders
        x[:, :, 2] = self.stock
        x[:, :, 3] = self.holding[None, :]
        x[:, 0, 4] = cfg.production_cost
        x[:, 1:, 5] = cfg.price
        x[:, :, 6] = self.capacity[None, :]
        x[:, 0, 7] = self.cp
        x[:, 0, 8:8 + K] = self.prod_arrivals[:, t + 1:t + 1 + K]
        x[:, 1:, 8:8 + K] = np.swapaxes(self.ship_arrivals[:, t + 1:t + 1 + K], 1, 2)
        ahead = np.zeros((K, S))
        avail = self.mean_demand[t + 1:t + 1 + K]
        ahead[:avail.shape[0]] = avail
        x[:, 1:, 8 + K:] = ahead.T[None]
        return (x * cfg.obs_scale).astype(np.float32)

    @property
    def edge_index(self) -> np.ndarray:
        """(2, 2S) int64 message edges: warehouse -> store i, then store i -> warehouse."""
        S = self.S
        w, s = np.zeros(S, dtype=np.int64), np.arange(1, S + 1, dtype=np.int64)
        return np.stack([np.concatenate([w, s]), np.concatenate([s, w])])

    @property
    def flow_edges(self) -> np.ndarray:
        """(2, S) int64 edges whose flows the low level sets: warehouse -> store i."""
        S = self.S
        return np.stack([np.zeros(S, dtype=np.int64), np.arange(1, S + 1, dtype=np.int64)])

    def edge_features(self) -> np.ndarray:
        """(B, 2S, 2) float32 edge features (OHIO App. B.4.2): travel time t_ij (steps) and transport
        cost (scaled by ``obs_scale``), the same for both directions of an edge."""
        tt = np.concatenate([self.tau, self.tau]).astype(float)
        cost = np.full(2 * self.S, self.config.transport_cost * self.config.obs_scale)
        f = np.stack([tt, cost], axis=1).astype(np.float32)
        return np.broadcast_to(f, (self.B, *f.shape)).copy()

    def observation(self) -> np.ndarray:
        """(B, N (8 + 2K) + 1) float32: node features flattened node-major, then t / T."""
        x = self.node_features().reshape(self.B, -1)
        return np.concatenate([x, np.full((self.B, 1), self.t / self.T, dtype=np.float32)], axis=1)

    @property
    def obs_dim(self) -> int:
        return self.N * (8 + 2 * self.K) + 1

    def episode_metrics(self) -> dict[str, np.ndarray]:
        """(B,) arrays: return, revenue, sales (units sold), demand, fill_rate, backorders (unit-steps),
        storage_cost, production_cost, transport_cost, overflow_cost, backorder_cost, produced, shipped, overflow,
        violation, slack, steps."""
        s = {k: v.copy() for k, v in self.sums.items()}
        s["fill_rate"] = np.where(s["demand"] > 0, s["sales"] / np.maximum(s["demand"], 1), 1.0)
        s["steps"] = np.full(self.B, float(self.steps))
        return s


__all__ = ["SupplyCore", "StepResult", "allocate", "expected_demand", "seasonal_demand"]
