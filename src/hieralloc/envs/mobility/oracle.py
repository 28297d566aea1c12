r"""MPC-Oracle of the mobility family: the normalising reference of OHIO Sec. 5 (score = 100 x return /
oracle return), with perfect knowledge of the episode's realised demand (``env.episode_demand()``).

At every step t (after the matching of t) it solves a time-expanded LP over the steps
``s = t .. S - 1`` (``S = T``, or ``t + horizon``) with the realised demand ``d_s``, the scheduled
arrivals ``a_{s,i}`` of vehicles already travelling, and the environment's travel times and costs::

    max   sum_{s > t} sum_ij f_sij (p_sij - c^P_sij)  -  sum_{s >= t} sum_{(i,j) in E} x_sij c^R_sij
    s.t.  sum_j f_sij + sum_j x_sij + w_si  =  [s = t] q_i + [s > t] (w_{s-1,i} + a_si
              + sum_{s', j: s' + k^R_s'ji + delta = s} x_s'ji + sum_{s', j: s' + k^P_s'ji + delta = s} f_s'ji)
          0 <= f_sij <= d_sij,   x_sij >= 0,   w_si >= 0

(``f`` served passengers, ``x`` rebalancing flows on the environment's flow edges, ``w`` vehicles
that stay idle, ``delta = ready_delay``; OHIO B.3.2's reward). Each variable enters one or two
conservation rows with opposite signs: a network-flow matrix, so the LP optimum is integral. The
oracle outputs the distribution after its planned rebalancing at t, ``q - out(x_t) + in(x_t)``, as
the goal (goal mode; the environment's LP executes it), and re-plans every step (MPC).

Every trajectory of any policy on the episode is feasible for the LP at t = 0 with the full
horizon (the environment's matching serves ``f <= d`` from the idle vehicles, with the same
travel times), so ``bound`` = profit of the matching of step 0 + the LP value at t = 0 is an upper
bound on the episode return of every policy (reported as ``policy/bound`` by
:func:`hieralloc.eval.evaluate`). The oracle's own return is below the bound only because the
environment's matching serves by fare, greedily, while the plan chooses whom to serve.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from hieralloc.config import Config, param
from hieralloc.envs.mobility.env import AGENT, MobilityEnv
from hieralloc.envs.mobility.policies import _build, _mobility_env
from hieralloc.registry import AlgoSpec, Capabilities, register_algo
from hieralloc.solvers import solve_milp


@dataclass
class MpcOracleConfig(Config):
    """MPC-Oracle (perfect foresight of the realised demand)."""

    horizon: int = param(0, "planning horizon in steps (0 = to the end of the episode; then the first plan's "
                         "value bounds every policy's return)", low=0, high=10_000)
    time_limit: float = param(30.0, "seconds per LP solve (HiGHS)", low=0.0, low_open=True)


@dataclass
class OraclePlan:
    """One solve of the horizon LP at step ``t``."""

    t: int
    value: float            #: LP objective (planned profit of steps t .. S - 1)
    rebalance: np.ndarray   #: (N, N) planned rebalancing flows of step t
    goal: np.ndarray        #: (N,) desired distribution (weights) after them
    seconds: float


def plan_step(env: MobilityEnv, horizon: int = 0, time_limit: float | None = None) -> OraclePlan:
    """Solve the horizon LP from the environment's current state (module docstring)."""
    core = env.core
    t, T, N = core.t, core.T, core.N
    S = T if horizon <= 0 else min(T, t + horizon)
    L = S - t
    delta = env.config.ready_delay
    D = env.episode_demand()
    q = core.idle[0].astype(float)
    arrivals = core.arrivals[0]
    E = core.flow_edges
    src, dst = E[:, 0], E[:, 1]
    costs: list[np.ndarray] = []
    ubs: list[np.ndarray] = []
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    ncol = 0

    def add(cost: np.ndarray, ub: np.ndarray, out_row: np.ndarray, in_row: np.ndarray | None) -> np.ndarray:
        """Columns leaving node rows ``out_row`` (+1) and entering ``in_row`` (-1, -1 = outside the horizon)."""
        nonlocal ncol
        k = np.arange(ncol, ncol + cost.shape[0])
        ncol += cost.shape[0]
        costs.append(cost)
        ubs.append(ub)
        rows.append(out_row)
        cols.append(k)
        vals.append(np.ones(k.shape[0]))
        if in_row is not None:
            keep = in_row >= 0
            rows.append(in_row[keep])
            cols.append(k[keep])
            vals.append(-np.ones(int(keep.sum())))
        return k

    def node(s: np.ndarray | int, i: np.ndarray) -> np.ndarray:
        s_arr = np.broadcast_to(np.asarray(s), np.shape(i))
        return np.where(s_arr < S, (s_arr - t) * N + i, -1)

    x_cols = np.zeros(0, dtype=np.int64)
    for s in range(t, S):
        # rebalancing x_s on the flow edges: leaves (s, src), arrives at (s + k^R + delta, dst)
        k = add(-core.reb_cost_matrix[s][src, dst], np.full(src.shape[0], np.inf), node(s, src),
                node(s + core.reb_steps[s][src, dst] + delta, dst))
        if s == t:
            x_cols = k
        if s > t:  # passengers served at s (the matching of t already ran)
            pi, pj = np.nonzero(D[s])
            add(core.price[s][pi, pj] - core.pax_cost[s][pi, pj], D[s][pi, pj].astype(float), node(s, pi),
                node(s + core.trip_steps[s][pi, pj] + delta, pj))
        i = np.arange(N)
        add(np.zeros(N), np.full(N, np.inf), node(s, i), node(s + 1, i))  # vehicles staying idle
    rhs = np.zeros(L * N)
    rhs[:N] = q
    if L > 1:
        rhs[N:] = arrivals[t + 1:S].reshape(-1)
    A = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(L * N, ncol))
    t0 = time.perf_counter()
    res = solve_milp(np.concatenate(costs), A_eq=A, b_eq=rhs, lb=0.0, ub=np.concatenate(ubs), sense="max",
                     time_limit=time_limit)
    seconds = time.perf_counter() - t0
    x = np.rint(np.maximum(res.x[x_cols], 0.0))
    R = np.zeros((N, N))
    R[src, dst] = x
    after = q - R.sum(axis=1) + R.sum(axis=0)
    M = float(after.sum())
    goal = after / M if M > 0 else np.zeros(N)
    return OraclePlan(t=t, value=float(res.objective), rebalance=R, goal=goal, seconds=seconds)


class MpcOraclePolicy:
    """Re-plans the horizon LP every step with the realised demand and outputs its goal."""

    def __init__(self, config: MpcOracleConfig | None = None, seed: int | None = None) -> None:
        self.config = config or MpcOracleConfig()
        self.env: MobilityEnv | None = None
        self.plans: list[OraclePlan] = []
        self.bound = float("nan")

    def reset(self, env: Any, seed: int | None = None) -> None:
        self.env = _mobility_env(env)
        self.plans = []
        self.bound = float("nan")
        if self.env.t == 0:
            first = plan_step(self.env, self.config.horizon, self.config.time_limit)
            self.plans.append(first)
            if self.config.horizon == 0 or self.config.horizon >= self.env.core.T:
                self.bound = float(self.env.core.last_match.pax_reward[0]) + first.value

    def act(self, observations: dict[str, Any], state: np.ndarray | None = None,
            explore: bool = False) -> dict[str, Any]:
        if AGENT not in observations:
            return {}
        env = self.env
        assert env is not None, "call reset(env) first"
        if not self.plans or self.plans[-1].t != env.t:
            self.plans.append(plan_step(env, self.config.horizon, self.config.time_limit))
        return {AGENT: self.plans[-1].goal}

    def episode_metrics(self) -> dict[str, float]:
        """``bound`` (upper bound on any policy's return in this episode; NaN with a short horizon),
        ``plan_s`` (LP seconds in the episode), ``solves``."""
        return {"bound": self.bound, "plan_s": float(sum(p.seconds for p in self.plans)),
                "solves": float(len(self.plans))}


register_algo(AlgoSpec(
    "mpc-oracle", MpcOracleConfig, _build(MpcOraclePolicy),
    Capabilities(discrete=False, continuous=True, learns=False, full_information=True, families=("mobility",)),
    "mobility: MPC-Oracle (OHIO Sec. 5 normaliser), horizon LP with perfect knowledge of the realised demand; "
    "reports an upper bound on any policy's episode return"))

__all__ = ["MpcOracleConfig", "MpcOraclePolicy", "OraclePlan", "plan_step"]
