r"""Batched dynamics of the mobility-on-demand network (OHIO App. B.3; the simulator lineage of
Gammelli et al. 2021-2023): B episodes stepped together, numpy bookkeeping, one reusable HiGHS
model per LP shared by the batch. :class:`~hieralloc.envs.mobility.env.MobilityEnv` wraps it
with ``B = 1``.

Quantities (regions ``i, j``, steps ``t = 0..T-1``, ``tau = json_tstep`` minutes per step):

* ``lambda[t, i, j]`` expected trips (scenario), realised demand ``d[t] ~ Poisson(lambda[t])``
  drawn at reset for the whole episode (seeded; OHIO B.3.1 "time-dependent Poisson process");
* ``p[t, i, j]`` fare; trip time ``k^P[t, i, j]`` and rebalancing time ``k^R[t, i, j]`` in steps;
  travel costs ``c^P = beta * tau * k^P`` and ``c^R = beta * tau * k^R`` (beta per minute);
* ``m[t, i]`` idle vehicles available for the matching of step t.

One step t, in two halves (OHIO App. B.3.2; the published ``pax_step`` / ``reb_step``):

1. *Matching* (:class:`~hieralloc.solvers.PassengerMatchingModel`):
   ``max sum_ij p_ij f_ij  s.t.  0 <= f_ij <= d_ij,  sum_j f_ij <= m_i``. Served vehicles leave,
   ``q_i = m_i - sum_j f_ij`` stay idle; each served trip arrives at ``j`` after ``k^P`` steps;
   pax reward ``sum_ij f_ij (p_ij - c^P_ij)`` (the first term of OHIO's reward, B.3.2).
2. *Rebalancing* (:class:`~hieralloc.solvers.RebalancingModel`, OHIO Eq. (30) with slack): the
   high-level action ``a`` (a desired idle-vehicle distribution, B.3.2) becomes integer targets
   ``q^`` over the ``sum_i q_i`` idle vehicles; the LP ``min sum c^R_ij x_ij`` s.t.
   ``sum_j (x_ji - x_ij) + q_i + z_i >= q^_i`` (30b), ``sum_j x_ij <= q_i`` (30c) gives the
   rebalancing flows; cost ``sum_ij x_ij c^R_ij`` (the second term of OHIO's reward).
3. Arrivals: a vehicle dispatched at t with travel time ``k`` steps is idle again at step
   ``t + k + ready_delay`` (``ready_delay = 1`` as in the published simulators, where a vehicle
   arriving during step t + k can be dispatched from step t + k + 1).

*Flow mode* (``action_mode='flow'``, OHIO App. B.3.3 end-to-end baselines): the action is one
fraction per edge of the rebalancing LP (``flow_edges``) of the origin's idle vehicles; it is
projected onto (30c-d) (:meth:`MobilityCore.project_flows`) and executed directly, the LP is
bypassed, and the projection's size is the step's ``violation``.

The environment interleaves the halves so that the high level decides after seeing the
matching: ``reset`` runs the matching of step 0; ``step(a_t)`` rebalances at t, advances, and
runs the matching of t + 1 (none after the last step). Its reward is OHIO B.3.2's
``r(s_t, a_t) = sum f^P_{t+1} (p - c^P) - sum f^R_t c^R``; the first step also carries the
matching profit of step 0, so the episode return is the published simulators' episode reward
(T matchings, T rebalancings).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from hieralloc.envs.base import check_batch_action
from hieralloc.envs.mobility.config import MobilityConfig
from hieralloc.envs.mobility.scenario import Scenario, load_scenario
from hieralloc.envs.seeding import batch_rngs
from hieralloc.errors import ConfigError, HierallocError
from hieralloc.solvers import PassengerMatchingModel, RebalancingModel, match_passengers
from hieralloc.solvers.inverse import project_outflows

#: per-step metrics accumulated per episode (see :meth:`MobilityCore.episode_metrics`)
_SUMS = ("return", "served", "demand", "revenue", "operating_cost", "reb_cost", "rebalanced", "slack", "violation")


@dataclass
class MatchOutcome:
    """One matching half-step for B episodes (step ``t``)."""

    t: int
    pax_flow: np.ndarray        #: (B, N, N) int64 passengers served per origin-destination pair
    od_demand: np.ndarray       #: (B, N, N) int64 realised demand of step t
    idle_before: np.ndarray     #: (B, N) int64 idle vehicles available to the matching
    idle: np.ndarray            #: (B, N) int64 idle vehicles after the matching (what the action distributes)
    revenue: np.ndarray         #: (B,) sum f p
    operating_cost: np.ndarray  #: (B,) sum f c^P

    @functools.cached_property
    def served(self) -> np.ndarray:
        """(B,) passengers served (computed once: the flows of a matching are never changed)."""
        return self.pax_flow.reshape(len(self.pax_flow), -1).sum(axis=1)  # integers: exact in any order

    @functools.cached_property
    def demand(self) -> np.ndarray:
        """(B,) passengers requesting (computed once)."""
        return self.od_demand.reshape(len(self.od_demand), -1).sum(axis=1)

    @property
    def pax_reward(self) -> np.ndarray:
        return self.revenue - self.operating_cost


@dataclass
class StepResult:
    """Arrays returned by :meth:`MobilityCore.step` (B = batch size, N regions).

    Scalars ``served, demand, revenue, operating_cost, pax_reward`` are what this step's reward
    credits: the matching of step t + 1, plus the matching of step 0 for the first step.
    """

    reward: np.ndarray          #: (B,) pax_reward - reb_cost
    pax_reward: np.ndarray      #: (B,) revenue - operating_cost
    served: np.ndarray          #: (B,) passengers served
    demand: np.ndarray          #: (B,) passengers requesting
    revenue: np.ndarray         #: (B,)
    operating_cost: np.ndarray  #: (B,) beta x trip minutes of served trips
    reb_cost: np.ndarray        #: (B,) beta x rebalancing minutes (OHIO Eq. (30a) value)
    rebalanced: np.ndarray      #: (B,) vehicles sent to another region
    slack: np.ndarray           #: (B,) unmet target units (Eq. (30) slack)
    targets: np.ndarray         #: (B, N) int64 desired idle vehicles q^ of step t
    reb_flow: np.ndarray        #: (B, N, N) int64 rebalancing flows of step t
    match: MatchOutcome | None  #: the matching of step t + 1 (None after the last step)
    t: int                      #: step index after this step (1..T)
    done: bool                  #: t == T
    violation: np.ndarray       #: (B,) vehicles removed by the flow-mode projection (0 in goal mode)


def desired_targets(weights: Any, idle: np.ndarray, rounding: str = "largest-remainder") -> np.ndarray:
    """Integer targets ``q^`` from desired-distribution weights (OHIO App. B.3.2 action).

    ``weights`` ``(B, N)`` are clipped at 0 and normalised to sum 1; an all-zero row keeps the
    current distribution (no rebalancing). With ``M = sum_i idle_i``, the targets are
    ``floor(w M)`` (``'floor'``, the published simulators) or that plus one for the
    ``M - sum floor`` regions with the largest remainders (``'largest-remainder'``, ties to the
    lower index), which sums exactly to ``M``.
    """
    w = np.asarray(weights, dtype=float)
    q = np.asarray(idle, dtype=np.int64)
    if w.shape != q.shape:
        raise HierallocError(f"the action has shape {w.shape[1:]}, expected ({q.shape[1]},): one weight per region")
    if not np.isfinite(w).all():
        b, i = (int(x[0]) for x in np.nonzero(~np.isfinite(w)))
        raise HierallocError(f"the action's weight of region {i} is {w[b, i]}; weights must be finite numbers "
                             "(they are clipped at 0 and normalised to sum 1)")
    w = np.maximum(w, 0.0)
    tot = w.sum(axis=1, keepdims=True)
    M = q.sum(axis=1, keepdims=True)
    if tot.min() > 0:  # the common case: the same quotients as the general expression below
        share = w / tot
    else:
        positive = tot > 0
        share = np.where(positive, w / np.where(positive, tot, 1.0), q / np.maximum(M, 1))
    x = share * M
    base = np.floor(x + 1e-9).astype(np.int64)
    if rounding == "floor":
        return base
    rem = (M[:, 0] - base.sum(axis=1)).tolist()
    if max(rem) > 0:
        # one more vehicle for the rem[b] largest remainders of row b (stable order: ties to the lower index)
        order = np.argsort(-(x - base), axis=1, kind="stable")
        for b, r in enumerate(rem):
            if r > 0:
                base[b, order[b, :r]] += 1
    return base


class MobilityCore:
    """B synchronous episodes of the mobility-on-demand network.

    Args:
        config: the environment configuration.
        batch_size: number of episodes B stepped together.
        scenario: optional parsed :class:`Scenario` (default: ``config.city`` loaded with the
            config's calibration).
        matching_model, rebalancing_model: optional replacements with the interfaces of
            :class:`PassengerMatchingModel` (``solve(demand, idle, fare) -> .served``) and
            :class:`RebalancingModel` (``solve(availability, target, cost=None) -> .flow_matrix,
            .slack``), e.g. the cvxpy formulations of ``benchmarks/mobility_step.py``.
    """

    def __init__(self, config: MobilityConfig, batch_size: int = 1, scenario: Scenario | None = None, *,
                 matching_model: Any = None, rebalancing_model: Any = None) -> None:
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ConfigError("batch_size", f"must be a positive integer, got {batch_size!r}")
        self.config = cfg = config
        self.B = int(batch_size)
        sc = scenario if scenario is not None else load_scenario(cfg.city, **cfg.scenario_options())
        self.scenario = sc
        if cfg.start_step >= sc.n_steps:
            raise ConfigError("start_step", f"must be below the scenario's {sc.n_steps} steps "
                              f"({sc.name}: {sc.json_tstep}-minute steps from hour {sc.json_hr}), got {cfg.start_step}")
        self.N = N = sc.n_regions
        self.T = T = cfg.episode_length
        self.K = K = cfg.horizon
        L = T + K + 1  # steps whose data an episode reads (matchings 0..T-1, features up to T + K)
        win = slice(cfg.start_step, cfg.start_step + L)
        p = sc.padded(cfg.start_step + L)
        self.lam = np.asarray(p.demand[win])                 # (L, N, N) Poisson means
        self.price = np.asarray(p.price[win])                # (L, N, N) fares
        self.trip_steps = np.asarray(p.trip_steps[win])      # (L, N, N) >= 1
        self.reb_steps = np.asarray(p.reb_steps[win])        # (L, N, N) >= 1 off the diagonal
        per_step = cfg.beta * sc.json_tstep                  # cost of one step of travel
        self.pax_cost = per_step * self.trip_steps           # c^P = beta x trip minutes
        self.reb_cost_matrix = per_step * self.reb_steps     # c^R = beta x rebalancing minutes
        self._reb_hour = np.asarray(p.reb_hours[win])        # rebalancing costs change only with the hour
        self.fleet = int(cfg.fleet_size or sc.fleet)
        base, extra = divmod(self.fleet, N)  # the published simulators: uniform, remainder to the first regions
        self.initial_idle = np.array([base + (i < extra) for i in range(N)], dtype=np.int64)
        self.graph_edges = np.asarray(sc.edges)              # (E, 2) graph_obs() edges
        self._reb_edges = None if cfg.rebalance_edges == "complete" else self.graph_edges
        # (F, 2) edges of the rebalancing LP (RebalancingModel's order): the flow-mode action's support
        self.flow_edges = (np.stack(np.nonzero(~np.eye(N, dtype=bool)), axis=1) if self._reb_edges is None
                           else self.graph_edges).astype(np.int64)
        # One model per episode of the batch, rebuilt at every reset: HiGHS warm-starts from the last
        # basis, and among equally optimal flows the one returned depends on it; fresh models per
        # episode make every episode a function of its seed alone (B = 1 or not, used or fresh).
        self._custom_match, self._custom_reb = matching_model, rebalancing_model
        self.match_models: list[Any] = []
        self.reb_models: list[Any] = []
        self._loaded_hour: list[int] = []
        self._build_models()
        longest = int(max(self.trip_steps.max(), self.reb_steps.max()))
        self.H = L + longest + cfg.ready_delay + 1  # arrival slots
        # Per-step constants, computed once. The flat index into arrivals[b].reshape(-1) of region j
        # at the arrival step of a vehicle leaving i for j at step t, (t + k_ij(t) + ready_delay) * N + j,
        # for passenger trips and rebalancing moves, (L, N * N) each (see _schedule); and the expected
        # demand value of the node features at every step, computed by the same expression as per step.
        steps = np.arange(L)[:, None, None] + cfg.ready_delay
        dest = np.arange(N)[None, None, :]
        self._pax_slot = ((steps + self.trip_steps) * N + dest).reshape(L, N * N).astype(np.int32)
        self._reb_slot = ((steps + self.reb_steps) * N + dest).reshape(L, N * N).astype(np.int32)
        self._batch_offset = (np.arange(self.B) * self.H * N)[:, None]  # (B, 1) episode b's block of arrivals
        self._demand_value = [(self.lam[t + 1:t + K + 1] * self.price[t + 1:t + K + 1]).sum(axis=2)
                              for t in range(T + 1)]  # (K, N) for t = 0..T
        self._rngs: list[np.random.Generator] = [np.random.default_rng() for _ in range(self.B)]
        self.t = 0
        self._started = False
        # a well-defined (empty) state before the first reset
        self.demand = np.zeros((self.B, T, N, N), dtype=np.int64)
        self._departing = self.demand.sum(axis=3)  # (B, T, N) realised demand departing each region
        self.idle_before = np.tile(self.initial_idle, (self.B, 1))
        self.idle = self.idle_before.copy()
        self.targets = self.idle.copy()
        self.fleets = self.idle.sum(axis=1)
        self.arrivals = np.zeros((self.B, self.H, N), dtype=np.int64)
        self.sums = {k: np.zeros(self.B) for k in _SUMS}
        self.steps = 0

    def _build_models(self) -> None:
        B, N = self.B, self.N
        if self._custom_reb is not None:
            self.reb_models = [self._custom_reb] * B
            self._loaded_hour = [-1] * B  # pass the costs on the first solve
        else:
            self.reb_models = [RebalancingModel(N, self.reb_cost_matrix[0], edges=self._reb_edges) for _ in range(B)]
            self._loaded_hour = [int(self._reb_hour[0])] * B
            E = self.reb_models[0].edges
            self._reb_flat = E[:, 0] * N + E[:, 1]  # the models' edge order -> (i, j) of the flattened (N, N)
        if self._custom_match is not None:
            self.match_models = [self._custom_match] * B
        elif self.config.matching == "lp":
            self.match_models = [PassengerMatchingModel(N) for _ in range(B)]
        else:
            self.match_models = [None] * B

    # ------------------------------------------------------------------ episode
    def reset(self, seed: int | list[int] | None = None, demand: Any = None, idle: Any = None) -> MatchOutcome:
        """Start B episodes and run the matching of step 0.

        ``seed``: an int (B = 1: ``default_rng(seed)``; B > 1: ``default_rng([seed, b])``), a list of
        B ints, or None (continue the generators). ``demand`` fixes the realised demand
        ``(T, N, N)`` or ``(B, T, N, N)`` (non-negative integers) instead of Poisson draws;
        ``idle`` fixes the initial idle vehicles ``(N,)`` or ``(B, N)`` (the fleet becomes their sum).
        """
        B, N, T = self.B, self.N, self.T
        if seed is not None:
            self._rngs = batch_rngs(seed, B)
        if demand is None:
            lam = self.lam[:T]
            self.demand = np.stack([rng.poisson(lam) for rng in self._rngs]).astype(np.int64)
        else:
            self.demand = self._counts(demand, (T, N, N), "demand")
        self._departing = self.demand.sum(axis=3)
        if idle is None:
            self.idle_before = np.tile(self.initial_idle, (B, 1))
        else:
            self.idle_before = self._counts(idle, (N,), "idle")
        self.fleets = self.idle_before.sum(axis=1)
        self.arrivals = np.zeros((B, self.H, N), dtype=np.int64)
        if self._started and (self._custom_match is None or self._custom_reb is None):
            self._build_models()  # fresh solver state: the episode depends on its seed only
        self.t = 0
        self.sums = {k: np.zeros(B) for k in _SUMS}
        self.steps = 0
        self._started = True
        self.last_match = self._match()
        self.idle = self.last_match.idle
        self.targets = self.idle.copy()
        return self.last_match

    def _counts(self, value: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
        a = np.asarray(value)
        if a.shape == shape:
            a = np.broadcast_to(a, (self.B, *shape))
        if a.shape != (self.B, *shape):
            raise ConfigError(what, f"must have shape {shape} or {(self.B, *shape)}, got {a.shape}")
        if a.dtype.kind not in "iuf" or (a < 0).any() or (a != np.round(a)).any():
            raise ConfigError(what, "must hold non-negative integer counts")
        return np.array(a, dtype=np.int64)

    def _match(self) -> MatchOutcome:
        """The matching half of step t (passenger-matching LP per episode)."""
        t, B, N = self.t, self.B, self.N
        flow = np.empty((B, N, N), dtype=np.int64)
        fare = self.price[t]
        demand = self.demand[:, t]
        for b in range(B):
            d, m = demand[b], self.idle_before[b]
            model = self.match_models[b]
            if self._custom_match is None and model is not None:
                flow[b] = model.solve_served(d, m, fare)  # integral values: the cast to int64 is exact
                continue
            if model is not None:
                served = model.solve(d, m, fare).served
            else:
                served = match_passengers(d, m, fare, method="greedy").served
            flow[b] = np.rint(served)
        idle = self.idle_before - flow.sum(axis=2)
        self._schedule(flow, self._pax_slot[t])
        revenue = (flow * fare).sum(axis=(1, 2))
        opcost = (flow * self.pax_cost[t]).sum(axis=(1, 2))
        out = MatchOutcome(t=t, pax_flow=flow, od_demand=demand, idle_before=self.idle_before,
                           idle=idle, revenue=revenue, operating_cost=opcost)
        s = self.sums
        s["served"] += out.served
        s["demand"] += out.demand
        s["revenue"] += revenue
        s["operating_cost"] += opcost
        return out

    def _schedule(self, flow: np.ndarray, slots: np.ndarray) -> None:
        """Add the vehicles of ``flow[b, i, j]`` to the arrivals of region j at their arrival step;
        ``slots`` ``(N * N,)`` is the flat index into ``arrivals[b]`` of every (i, j) (a row of
        ``_pax_slot`` / ``_reb_slot``). Zero flows add nothing; ``arrivals`` is C-contiguous (made by
        ``np.zeros``), so ``reshape(-1)`` is a view."""
        if self.B > 1:
            slots = self._batch_offset + slots  # (B, N * N)
        np.add.at(self.arrivals.reshape(-1), slots.reshape(-1), flow.reshape(-1))

    def _rebalance(self, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rebalancing LP (OHIO Eq. (30) with slack) per episode; returns flows and slack."""
        t, B, N = self.t, self.B, self.N
        hour = int(self._reb_hour[t])
        slack = np.zeros(B)
        if self._custom_reb is None:  # our models: flows per edge, scattered into the (N, N) matrix
            flat = np.zeros((B, N * N), dtype=np.int64)
            for b in range(B):
                model: RebalancingModel = self.reb_models[b]
                cost = None
                if hour != self._loaded_hour[b]:  # rebalancing costs change only with the rebTime hour
                    cost = self.reb_cost_matrix[t]
                    self._loaded_hour[b] = hour
                f, z = model.solve_flows(self.idle[b], targets[b], cost=cost)
                flat[b, self._reb_flat] = f  # integral values: the cast to int64 is exact
                slack[b] = float(z.sum())
            flows = flat.reshape(B, N, N)
        else:
            flows = np.empty((B, N, N), dtype=np.int64)
            for b in range(B):
                cost = None
                if hour != self._loaded_hour[b]:
                    cost = self.reb_cost_matrix[t]
                    self._loaded_hour[b] = hour
                res = self.reb_models[b].solve(self.idle[b], targets[b], cost=cost)
                flows[b] = np.rint(res.flow_matrix)
                slack[b] = float(np.sum(res.slack))
        self._schedule(flows, self._reb_slot[t])
        return flows, slack

    def project_flows(self, fractions: Any) -> tuple[np.ndarray, np.ndarray]:
        """Flow mode (OHIO App. B.3.3 end-to-end): fractions ``(B, F)`` of each origin's idle vehicles
        per flow edge -> integer flows ``(B, N, N)`` and the projection's size ``(B,)`` in vehicles.

        Requested flows ``a_e q_src(e)`` are projected onto (30c-d) by
        :func:`~hieralloc.solvers.inverse.project_outflows` (negatives clipped, an origin asking for
        more than its idle vehicles scaled down, totals rounded to integers by largest remainder,
        never above the idle vehicles); the violation is ``||requested - projected||_1`` before
        rounding.
        """
        F = self.flow_edges.shape[0]
        a = check_batch_action(fractions, self.B, F, "flow-mode", "one fraction per flow edge (see "
                               "Formulation.layout(env).flow_edges)", entry="fraction of edge")
        src, dst = self.flow_edges[:, 0], self.flow_edges[:, 1]
        proj, removed = project_outflows(a * self.idle[:, src], self.idle, src, integral=True)
        flows = np.zeros((self.B, self.N, self.N), dtype=np.int64)
        flows[:, src, dst] = np.rint(proj).astype(np.int64)
        return flows, removed

    def step(self, weights: Any) -> StepResult:
        """Rebalance step t towards the desired distribution ``weights`` ``(B, N)`` (goal mode) or with
        the edge fractions ``(B, F)`` (flow mode, :meth:`project_flows`), advance, match t + 1."""
        if not self._started or self.t >= self.T:
            raise HierallocError("step() called on a finished episode; call reset() first")
        t = self.t
        if self.config.action_mode == "flow":  # OHIO App. B.3.3 end-to-end: the LP is bypassed
            flows, violation = self.project_flows(weights)
            targets = self.idle + flows.sum(axis=1) - flows.sum(axis=2)  # the distribution the flows reach
            slack = np.zeros(self.B)
            self.targets = targets
            self._schedule(flows, self._reb_slot[t])
        else:
            targets = desired_targets(np.asarray(weights, dtype=float).reshape(self.B, -1), self.idle,
                                      self.config.target_rounding)
            self.targets = targets
            flows, slack = self._rebalance(targets)
            violation = np.zeros(self.B)
        out = flows.sum(axis=2)
        stay = self.idle - out
        if (stay < 0).any():  # pragma: no cover - (30c) makes this impossible
            raise HierallocError("rebalancing sent more vehicles than were idle")
        reb_cost = (flows * self.reb_cost_matrix[t]).sum(axis=(1, 2))
        rebalanced = out.sum(axis=1).astype(float)
        self.t = t + 1
        self.idle_before = stay + self.arrivals[:, self.t]
        s = self.sums
        match: MatchOutcome | None = None
        if self.t < self.T:
            match = self._match()
            self.idle = match.idle
            revenue, opcost = match.revenue.astype(float), match.operating_cost.astype(float)
            served, demand = match.served.astype(float), match.demand.astype(float)
        else:
            revenue, opcost = np.zeros(self.B), np.zeros(self.B)
            served, demand = np.zeros(self.B), np.zeros(self.B)
            self.idle = self.idle_before.copy()
        if t == 0:  # the matching of step 0 ran in reset(); its profit is credited here
            first = self.last_match
            revenue = revenue + first.revenue
            opcost = opcost + first.operating_cost
            served = served + first.served
            demand = demand + first.demand
        if match is not None:
            self.last_match = match
        pax_reward = revenue - opcost
        reward = pax_reward - reb_cost
        s["return"] += reward
        s["reb_cost"] += reb_cost
        s["rebalanced"] += rebalanced
        s["slack"] += slack
        s["violation"] += violation
        self.steps += 1
        return StepResult(reward=reward, pax_reward=pax_reward, served=served, demand=demand, revenue=revenue,
                          operating_cost=opcost, reb_cost=reb_cost, rebalanced=rebalanced,
                          slack=slack, targets=targets, reb_flow=flows, match=match, t=self.t,
                          done=self.t >= self.T, violation=violation)

    # ------------------------------------------------------------------ observations
    @property
    def in_transit(self) -> np.ndarray:
        """(B,) vehicles travelling (with passengers or rebalancing) after the current matching."""
        return self.arrivals[:, self.t + 1:].reshape(self.B, -1).sum(axis=1)  # integers: exact in any order

    def node_features(self) -> np.ndarray:
        """(B, N, 2 + 2K) float32 node features of OHIO App. B.3.2, scaled by ``obs_scale``.

        Columns: idle vehicles q_i after the matching of step t; projected idle vehicles
        ``q_i + arrivals by t + k`` for k = 1..K; realised demand departing i at t; expected
        demand value ``sum_j lambda_ij p_ij`` at t + k, k = 1..K (the published GNN parser's
        demand feature).
        """
        t, K = self.t, self.K
        q = self.idle
        feats = np.empty((self.B, 2 + 2 * K, self.N))  # (B, F, N), float64 like the counts and values
        feats[:, 0] = q
        feats[:, 1:K + 1] = np.cumsum(self.arrivals[:, t + 1:t + K + 1], axis=1) + q[:, None, :]  # projected idle
        if t < self.T:
            feats[:, K + 1] = self._departing[:, t]
        else:
            feats[:, K + 1] = 0.0
        feats[:, K + 2:] = self._demand_value[t]                                        # (K, N) per episode
        feats *= self.config.obs_scale
        return np.swapaxes(feats, 1, 2).astype(np.float32)

    def edge_features(self) -> np.ndarray:
        """(B, E, 5) float32 features of the graph edges (i, j): rebalancing steps k^R_ij(t),
        rebalancing cost c^R_ij(t), expected trips lambda_ij(t+1), fare p_ij(t+1) and trip cost
        c^P_ij(t+1) (money scaled by ``obs_scale``)."""
        t = self.t
        u = t + 1
        i, j = self.graph_edges[:, 0], self.graph_edges[:, 1]
        s = self.config.obs_scale
        f = np.stack([self.reb_steps[t, i, j].astype(float), self.reb_cost_matrix[t, i, j] * s,
                      self.lam[u, i, j], self.price[u, i, j] * s, self.pax_cost[u, i, j] * s], axis=1)
        return np.broadcast_to(f.astype(np.float32), (self.B, *f.shape)).copy()

    def observation(self) -> np.ndarray:
        """(B, N * (2 + 2K) + 1) float32: node features flattened region-major, then t / T."""
        obs = np.empty((self.B, self.obs_dim), dtype=np.float32)
        obs[:, :-1] = self.node_features().reshape(self.B, -1)
        obs[:, -1] = self.t / self.T
        return obs

    @property
    def obs_dim(self) -> int:
        return self.N * (2 + 2 * self.K) + 1

    def forecast_demand(self, horizon: int) -> np.ndarray:
        """(horizon, N, N) expected trips lambda for steps t + 1 .. t + horizon (zeros past the data)."""
        t = self.t
        out = np.zeros((horizon, self.N, self.N))
        avail = self.lam[t + 1:t + 1 + horizon]
        out[: avail.shape[0]] = avail
        return out

    def episode_metrics(self) -> dict[str, np.ndarray]:
        """(B,) arrays: return, served, demand, served_fraction, revenue, operating_cost, reb_cost,
        rebalanced, slack, violation, steps, fleet."""
        s = {k: v.copy() for k, v in self.sums.items()}
        s["served_fraction"] = np.where(s["demand"] > 0, s["served"] / np.maximum(s["demand"], 1), 1.0)
        s["steps"] = np.full(self.B, float(self.steps))
        s["fleet"] = self.fleets.astype(float)
        return s


__all__ = ["MatchOutcome", "MobilityCore", "StepResult", "desired_targets"]
