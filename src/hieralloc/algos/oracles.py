r"""Full-information oracle for the coverage family: HGRL Eq. (1) as an integer program.

The oracle sees the whole episode (frames F_1..F_T and the start cells) and plans all routes at
``reset``; it is an evaluation yardstick, never a deployable policy (``full_information=True``).

Formulation (agents are interchangeable, so integer flows of agents replace per-agent binaries).
Node sets S_t of cells (S_0 = start cells, S_t within reach), arcs (p -> q, t) for moves q - p in
the w x w window:

.. math::

    \max\; \sum_{t=1}^{T}\sum_{c} s_{t,c} \;-\; \delta_o \sum_{t,p,q} \mathrm{Dist}(p,q)\, f_{t,p,q}

    \text{s.t.}\;\; \sum_q f_{1,p,q} = n_{0,p},\quad
    n_{t,q} = \sum_p f_{t,p,q},\quad \sum_{q'} f_{t+1,q,q'} = n_{t,q}\;(t<T),

    0 \le s_{t,c} \le D_{t,c},\quad s_{t,c} \le U \sum_{q \in S_t:\, c \in \mathcal{W}(q)} n_{t,q},
    \quad f \in \mathbb{Z}_{\ge 0}.

``s`` is exactly min(D, U k) at an optimum, the environment's coverage rule (HGRL Eq. (1) for
non-overlapping windows). Objective ``'served'`` (default): delta_o is a tiny tie-break (1e-6 x max
demand per unit distance), so the optimum is the physical limit of the demand N resources can
serve, and its bound is an upper bound on the *served* demand of any policy in that episode.
Objective ``'reward'``: delta_o = the environment's delta, i.e. the Eq. (1) objective (= the
episode return in the default reward mode).

Solving:

1. *Lagrangian dual bound* (full grid, cheap): relaxing the coupling rows with multipliers
   lambda in [0, 1] leaves one longest-path DP over the time-expanded grid, shared by all agents;
   projected subgradient on lambda. Every iterate is a valid upper bound, and the best equals the
   LP-relaxation bound of the flow model (the path subproblem is integral).
2. *Best-response ascent* (primal): agents' routes are re-optimised one at a time by the same DP on
   their marginal coverage given the others (monotone improvement; the Lagrangian paths seed it).
3. *MILP with HiGHS* (:func:`hieralloc.solvers.milp.solve_milp`): on the full reachable grid when
   it has at most ``max_full_arcs`` arcs (exact up to ``mip_rel_gap``), otherwise on the cells
   within ``neighborhood`` of the best ascent routes (a large-neighbourhood step; the routes
   themselves are feasible there, so the MILP can only improve on them). The
   best plan wins; flows are decomposed into per-agent routes.

Reported (``OraclePolicy.last_plan``, and added to ``env.episode_metrics()``):
``oracle_served_bound`` (upper bound on the served demand of any policy in the episode),
``oracle_served`` (the plan's served demand), ``oracle_gap`` = (bound - served) / bound and
``oracle_exact`` (1 when the full model was solved to optimality). The fraction of the oracle bound
a method reaches on the same episode (same env config and reset seed) is
``metrics['served'] / oracle_served_bound``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from hieralloc.config import Config, param
from hieralloc.registry import AlgoSpec, Capabilities, register_algo


@dataclass
class OracleConfig(Config):
    objective: str = param("served", "'served': maximise served demand (physical limit, tiny "
                           "distance tie-break); 'reward': served - delta x distance (HGRL Eq. (1))",
                           choices=("served", "reward"))
    time_limit: float = param(10.0, "seconds for the HiGHS MILP", low=0.0, low_open=True)
    mip_rel_gap: float = param(1e-3, "relative MILP gap at which HiGHS stops", low=0.0)
    max_full_arcs: int = param(60_000, "solve the full reachable flow model when it has at most this "
                               "many arcs, else the restricted model", low=0)
    neighborhood: int = param(1, "Chebyshev radius (cells) around the best ascent routes that the "
                              "restricted MILP may use", low=0)
    lagrange_iters: int = param(200, "subgradient iterations of the Lagrangian bound", low=0)
    ascent_rounds: int = param(6, "rounds of best-response route improvement", low=0)
    tie_break: float = param(1e-6, "'served' objective: distance weight relative to the max demand",
                             low=0.0)


@dataclass
class OraclePlan:
    """A planned episode and its certificate.

    positions: (T+1, N, 2) planned cells (row 0 = start); actions: (T, N) action indices.
    served / distance: the plan's served demand and Manhattan distance (simulated);
    objective: its value of the solved objective; bound: upper bound on that objective;
    served_bound: upper bound on the served demand of any policy; gap: (served_bound - served)
    / served_bound; objective_gap: (bound - objective) / max(|objective|, 1e-12);
    status: 'optimal' (full model) | 'local_optimal' (restricted model solved to optimality) |
    'time_limit' | 'heuristic' (no MILP solution; ascent routes); exact: full model optimal;
    method: 'full' | 'restricted'; details: Lagrangian bound, ascent objective, MILP status.
    """

    positions: np.ndarray
    actions: np.ndarray
    served: float
    distance: float
    objective: float
    bound: float
    served_bound: float
    gap: float
    objective_gap: float
    status: str
    exact: bool
    method: str
    solve_time: float
    details: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# grid helpers


def box_sum(values: np.ndarray, window: int) -> np.ndarray:
    """Sum over the w x w window centred on each cell, over the last two axes (zero outside)."""
    r = (window - 1) // 2
    v = np.asarray(values, dtype=float)
    pad = [(0, 0)] * (v.ndim - 2) + [(r + 1, r), (r + 1, r)]
    c = np.pad(v, pad).cumsum(-2).cumsum(-1)
    w = window
    return np.asarray(c[..., w:, w:] - c[..., :-w, w:] - c[..., w:, :-w] + c[..., :-w, :-w])


class _Grid:
    """Moves, distances and DP over the time-expanded grid of one episode."""

    def __init__(self, D: np.ndarray, start: np.ndarray, window: int, capacity: float,
                 delta: float, distance: str) -> None:
        self.D = D  # (T, H, W) frames F_1..F_T
        self.T, self.H, self.W = D.shape
        self.start = np.asarray(start, dtype=np.int64)
        self.N = len(self.start)
        self.w, self.r, self.U, self.delta = window, (window - 1) // 2, capacity, delta
        d = np.arange(-self.r, self.r + 1)
        mv = np.stack(np.meshgrid(d, d, indexing="ij"), -1).reshape(-1, 2)
        manh = np.abs(mv).sum(1).astype(float)
        dist = manh if distance == "manhattan" else np.hypot(mv[:, 0], mv[:, 1])
        order = np.lexsort((np.arange(len(mv)), dist))  # stay first: ties prefer shorter moves
        self.moves, self.dist, self.manh = mv[order], dist[order], manh[order]
        self.max_move = float(dist.max())

    # -- DP -------------------------------------------------------------------------------
    def best_paths(self, M: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Longest paths: max sum_t M[t-1, P_t] - delta * dist from each start; (values, paths)."""
        T, H, W = self.T, self.H, self.W
        G = np.empty((T, H, W))
        G[T - 1] = M[T - 1]
        for t in range(T - 2, -1, -1):
            G[t] = M[t] + self._shift_max(G[t + 1])
        paths = np.empty((T + 1, len(starts), 2), dtype=np.int64)
        paths[0] = starts
        val = np.zeros(len(starts))
        for t in range(T):
            cand = paths[t][:, None, :] + self.moves[None]  # (n, K, 2)
            ok = (cand[..., 0] >= 0) & (cand[..., 0] < H) & (cand[..., 1] >= 0) & (cand[..., 1] < W)
            cx, cy = np.clip(cand[..., 0], 0, H - 1), np.clip(cand[..., 1], 0, W - 1)
            score = np.where(ok, G[t][cx, cy] - self.delta * self.dist, -np.inf)
            j = np.argmax(score, axis=1)
            if t == 0:
                val = score[np.arange(len(starts)), j]
            paths[t + 1] = cand[np.arange(len(starts)), j]
        return val, paths

    def _shift_max(self, G: np.ndarray) -> np.ndarray:
        r, H, W = self.r, self.H, self.W
        Gp = np.pad(G, r, constant_values=-np.inf)
        out = np.full((H, W), -np.inf)
        for (dx, dy), d in zip(self.moves, self.dist, strict=True):  # w^2 moves, vectorised over the grid
            np.maximum(out, Gp[r + dx:r + dx + H, r + dy:r + dy + W] - self.delta * d, out=out)
        return out

    # -- coverage -------------------------------------------------------------------------
    def counts(self, paths: np.ndarray) -> np.ndarray:
        """(T, H, W) number of windows covering each cell, for paths (T+1, n, 2)."""
        T, H, W, r = self.T, self.H, self.W, self.r
        Hp, Wp = H + 2 * r, W + 2 * r
        p = paths[1:]  # (T, n, 2)
        base = (p[..., 0] + r) * Wp + (p[..., 1] + r) + (np.arange(T) * Hp * Wp)[:, None]
        offs = self.moves[:, 0] * Wp + self.moves[:, 1]
        k = np.bincount((base[..., None] + offs).ravel(), minlength=T * Hp * Wp)
        return k.reshape(T, Hp, Wp)[:, r:r + H, r:r + W].astype(float)

    def served(self, paths: np.ndarray) -> float:
        return float(np.minimum(self.D, self.U * self.counts(paths)).sum())

    def path_dist(self, paths: np.ndarray, manhattan: bool = False) -> float:
        d = np.diff(paths, axis=0)
        if manhattan or np.array_equal(self.dist, self.manh):
            return float(np.abs(d).sum())
        return float(np.hypot(d[..., 0], d[..., 1]).sum())

    def objective(self, paths: np.ndarray) -> float:
        return self.served(paths) - self.delta * self.path_dist(paths)


# ---------------------------------------------------------------------------------------------
# primal: best-response ascent; dual: Lagrangian bound


def ascent(g: _Grid, paths: np.ndarray | None, rounds: int) -> np.ndarray:
    """Best-response route improvement; starts from ``paths`` or routes agents one by one."""
    if paths is None:
        paths = np.repeat(g.start[None], g.T + 1, axis=0)
        k_all = np.zeros((g.T, g.H, g.W))
        for i in range(g.N):  # sequential construction: agent i routes on what the others leave
            marg = np.minimum(g.D, g.U * (k_all + 1)) - np.minimum(g.D, g.U * k_all)
            _, p = g.best_paths(box_sum(marg, g.w), g.start[i:i + 1])
            paths[:, i] = p[:, 0]
            k_all = g.counts(paths[:, : i + 1])
    best = g.objective(paths)
    for _ in range(rounds):
        improved = False
        for i in range(g.N):  # best response of agent i to the others' routes
            others = np.delete(paths, i, axis=1)
            k = g.counts(others) if g.N > 1 else np.zeros((g.T, g.H, g.W))
            marg = np.minimum(g.D, g.U * (k + 1)) - np.minimum(g.D, g.U * k)
            _, p = g.best_paths(box_sum(marg, g.w), g.start[i:i + 1])
            cand = paths.copy()
            cand[:, i] = p[:, 0]
            val = g.objective(cand)
            if val > best + 1e-9 * max(1.0, abs(best)):
                paths, best, improved = cand, val, True
        if not improved:
            break
    return paths


def hull_terms(D: np.ndarray, U: float) -> tuple[np.ndarray, np.ndarray]:
    """m = floor(D / U) and f = D - U m: the concave envelope of k -> min(D, U k) over integer k is
    min(U k, U m + f (k - m), D) (for D <= U: min(D k, D))."""
    m = np.floor(D / U)
    return m, D - U * m


def lagrangian_bound(g: _Grid, iters: int, lower: float) -> tuple[float, np.ndarray | None]:
    r"""Lagrangian dual of the flow model with the coverage rows
    s <= U k (multiplier lambda) and s <= U m + f (k - m) (multiplier mu) relaxed:

    L(lambda, mu) = sum_c [D max(0, 1 - lambda - mu) + mu m (U - f)]
                    + sum_i max_path sum_t sum_{c in W(P_t)} (U lambda_c + f_c mu_c) - delta dist.

    Every (lambda, mu) >= 0 gives an upper bound; projected subgradient with Polyak steps towards
    ``lower`` on {lambda, mu >= 0, lambda + mu <= 1}. Returns the best bound and its paths.
    """
    D, U = g.D, g.U
    m, f = hull_terms(D, U)
    # start at the vertex where every cell is fully priced by its first binding row: mu = 1 where
    # D < U (one window serves all of it), lambda = 1 where D >= U
    lam = ((m >= 1) & (D > 0)).astype(float)
    mu = ((m < 1) & (D > 0)).astype(float)
    best, best_paths = np.inf, None
    theta, stall = 2.0, 0
    for _ in range(max(iters, 1)):
        vals, paths = g.best_paths(box_sum(U * lam + f * mu, g.w), g.start)
        free = 1.0 - lam - mu
        L = float((D * np.maximum(free, 0.0) + mu * m * (U - f)).sum() + vals.sum())
        if best_paths is None or L < best - 1e-12 * max(1.0, abs(best)):
            best, best_paths, stall = L, paths, 0
        else:
            stall += 1
            if stall >= 10:
                theta, stall = theta / 2, 0
        k = g.counts(paths)
        act = np.where(free > 1e-12, D, 0.0)
        g_lam = U * k - act
        g_mu = m * (U - f) + f * k - act
        nrm = float((g_lam**2).sum() + (g_mu**2).sum())
        if nrm <= 1e-18 or theta < 1e-4 or best - lower <= 1e-7 * max(1.0, abs(lower)):
            break
        step = theta * (L - lower) / nrm
        lam, mu = _project(lam - step * g_lam, mu - step * g_mu)
    return best, best_paths


def _project(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean projection of (a, b) onto {a, b >= 0, a + b <= 1}, elementwise."""
    a, b = np.maximum(a, 0.0), np.maximum(b, 0.0)
    over = a + b > 1.0
    if over.any():
        e = (a[over] + b[over] - 1.0) / 2.0
        a2, b2 = a[over] - e, b[over] - e
        a2, b2 = np.clip(a2, 0.0, 1.0), np.clip(b2, 0.0, 1.0)
        tot = a2 + b2
        a[over], b[over] = a2 / tot, b2 / tot
    return a, b


# ---------------------------------------------------------------------------------------------
# MILP


def reachable(g: _Grid) -> np.ndarray:
    """(T+1, H, W) bool: cells some agent can occupy at each step."""
    R = np.zeros((g.T + 1, g.H, g.W), dtype=bool)
    R[0, g.start[:, 0], g.start[:, 1]] = True
    for t in range(1, g.T + 1):
        R[t] = box_sum(R[t - 1].astype(float), g.w) > 0
    return R


def _arcs(g: _Grid, S: np.ndarray) -> tuple[np.ndarray, ...]:
    """Arcs (t, p, q, move) between S[t-1] and S[t], t = 1..T (flat cell indices)."""
    ts, ps, qs, ms = [], [], [], []
    for t in range(1, g.T + 1):
        src = np.flatnonzero(S[t - 1].ravel())
        sx, sy = src // g.W, src % g.W
        for j, (dx, dy) in enumerate(g.moves):  # w^2 moves, vectorised over cells
            qx, qy = sx + dx, sy + dy
            ok = (qx >= 0) & (qx < g.H) & (qy >= 0) & (qy < g.W)
            q = qx[ok] * g.W + qy[ok]
            keep = S[t].ravel()[q]
            ts.append(np.full(int(keep.sum()), t))
            ps.append(src[ok][keep])
            qs.append(q[keep])
            ms.append(np.full(int(keep.sum()), j))
    return np.concatenate(ts), np.concatenate(ps), np.concatenate(qs), np.concatenate(ms)


def solve_flow_milp(g: _Grid, S: np.ndarray, time_limit: float, mip_rel_gap: float
                    ) -> tuple[np.ndarray | None, float, float, str]:
    """Build and solve the flow MILP on node sets ``S`` (T+1, H, W); returns (paths or None,
    objective, bound, status)."""
    from hieralloc.solvers.errors import SolverError
    from hieralloc.solvers.milp import solve_milp

    T, H, W, HW = g.T, g.H, g.W, g.H * g.W
    at, ap, aq, am = _arcs(g, S)
    nf = len(at)
    # n variables: nodes (t, q) for t = 1..T, q in S[t]
    node_id = np.full((T + 1) * HW, -1, dtype=np.int64)
    nodes = np.flatnonzero(S[1:].ravel()) + HW  # flat (t * HW + q), t >= 1
    node_id[nodes] = np.arange(len(nodes))
    nn = len(nodes)
    # s variables: covered cells with demand
    cover = box_sum(S[1:].astype(float), g.w) > 0
    cells = np.flatnonzero((cover & (g.D > 0)).ravel())  # flat ((t-1) * HW + c)
    ns = len(cells)
    o_f, o_n, o_s = 0, nf, nf + nn
    nv = nf + nn + ns
    rows_eq, cols_eq, vals_eq, b_eq = [], [], [], []
    # (a)+(b): out-flow of node (t-1, p) equals its count (start counts for t = 1)
    out_key = (at - 1) * HW + ap
    uniq, out_row = np.unique(out_key, return_inverse=True)
    rows_eq.append(out_row)
    cols_eq.append(o_f + np.arange(nf))
    vals_eq.append(np.ones(nf))
    rhs = np.zeros(len(uniq))
    n0 = np.bincount(g.start[:, 0] * W + g.start[:, 1], minlength=HW)
    first = uniq < HW
    rhs[first] = n0[uniq[first]]
    later = ~first
    rows_eq.append(np.flatnonzero(later))
    cols_eq.append(o_n + node_id[uniq[later]])
    vals_eq.append(-np.ones(int(later.sum())))
    b_eq.append(rhs)
    n_rows = len(uniq)
    # nodes with count but no out-arcs (t < T): count must be 0 -> add rows n = 0
    has_out = np.zeros((T + 1) * HW, dtype=bool)
    has_out[uniq] = True
    dead = nodes[~has_out[nodes] & (nodes // HW < T)]
    rows_eq.append(n_rows + np.arange(len(dead)))
    cols_eq.append(o_n + node_id[dead])
    vals_eq.append(np.ones(len(dead)))
    b_eq.append(np.zeros(len(dead)))
    n_rows += len(dead)
    # (c): n_{t,q} - sum_in f = 0
    in_node = node_id[at * HW + aq]
    rows_eq.append(n_rows + np.arange(nn))
    cols_eq.append(o_n + np.arange(nn))
    vals_eq.append(np.ones(nn))
    rows_eq.append(n_rows + in_node)
    cols_eq.append(o_f + np.arange(nf))
    vals_eq.append(-np.ones(nf))
    b_eq.append(np.zeros(nn))
    n_rows += nn
    A_eq = sp.csr_matrix((np.concatenate(vals_eq), (np.concatenate(rows_eq), np.concatenate(cols_eq))),
                         shape=(n_rows, nv))
    # (d): s_{t,c} - U sum_{q in S_t, c in W(q)} n_{t,q} <= 0
    rr, cc, vv = [np.arange(ns)], [o_s + np.arange(ns)], [np.ones(ns)]
    tc, c = cells // HW, cells % HW
    cx, cy = c // W, c % W
    for dx, dy in g.moves:
        qx, qy = cx + dx, cy + dy
        ok = (qx >= 0) & (qx < H) & (qy >= 0) & (qy < W)
        nid = np.full(ns, -1)
        nid[ok] = node_id[(tc[ok] + 1) * HW + qx[ok] * W + qy[ok]]
        m = nid >= 0
        rr.append(np.flatnonzero(m))
        cc.append(o_n + nid[m])
        vv.append(np.full(int(m.sum()), -g.U))
    # rows s <= U k only where D >= U (for D < U the hull row s <= D k below dominates it)
    A_cap = sp.csr_matrix((np.concatenate(vv), (np.concatenate(rr), np.concatenate(cc))), shape=(ns, nv))
    Dc = g.D.ravel()[cells]
    mh, fh = hull_terms(Dc, g.U)
    big = np.flatnonzero(mh >= 1)
    hull = np.flatnonzero(fh > 0)
    # hull rows: s - f sum n <= U m - f m
    A_h = A_cap[hull].tocoo()
    scale = np.where(A_h.col >= o_s, 1.0, fh[hull][A_h.row] / g.U)
    A_hull = sp.csr_matrix((A_h.data * scale, (A_h.row, A_h.col)), shape=(len(hull), nv))
    A_ub = sp.vstack([A_cap[big], A_hull]).tocsr()
    b_ub = np.concatenate([np.zeros(len(big)), (g.U - fh[hull]) * mh[hull]])
    cost = np.concatenate([-g.delta * g.dist[am], np.zeros(nn), np.ones(ns)])
    ub = np.concatenate([np.full(nf, g.N), np.full(nn, g.N), g.D.ravel()[cells]])
    integ = np.concatenate([np.ones(nf), np.zeros(nn + ns)])
    try:
        res = solve_milp(cost, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=np.concatenate(b_eq),
                         lb=0.0, ub=ub, integrality=integ, sense="max", time_limit=time_limit,
                         mip_rel_gap=mip_rel_gap)
    except SolverError:
        return None, -np.inf, np.inf, "no_solution"
    f = np.rint(res.x[:nf]).astype(np.int64)
    paths = _decompose(g, at, ap, aq, f)
    return paths, res.objective, res.bound, res.status


def _decompose(g: _Grid, at: np.ndarray, ap: np.ndarray, aq: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Split integer flows into one route per agent (agents keep their start order)."""
    paths = np.empty((g.T + 1, g.N, 2), dtype=np.int64)
    paths[0] = g.start
    cur = g.start[:, 0] * g.W + g.start[:, 1]
    pos = f > 0
    for t in range(1, g.T + 1):
        sel = pos & (at == t)
        avail: dict[int, list[int]] = {}
        for p, q, n in zip(ap[sel], aq[sel], f[sel], strict=True):  # arcs carrying agents (at most N per step)
            avail.setdefault(int(p), []).extend([int(q)] * int(n))
        nxt = np.empty(g.N, dtype=np.int64)
        for i in range(g.N):
            lst = avail.get(int(cur[i]))
            if not lst:
                raise RuntimeError("flow decomposition failed: flows do not conserve agents")
            nxt[i] = lst.pop()
        cur = nxt
        paths[t, :, 0], paths[t, :, 1] = cur // g.W, cur % g.W
    return paths


# ---------------------------------------------------------------------------------------------


def plan_episode(frames: np.ndarray, start: np.ndarray, env_config: Any,
                 config: OracleConfig | None = None) -> OraclePlan:
    """Plan routes for frames F_0..F_T (only F_1..F_T are served) from ``start`` (N, 2)."""
    cfg = config or OracleConfig()
    t0 = time.perf_counter()
    D = np.asarray(frames, dtype=float)[1:]
    dmax = float(D.max()) if D.size else 0.0
    if cfg.objective == "reward":
        delta, distance = float(env_config.delta), env_config.distance
    else:
        delta, distance = cfg.tie_break * max(dmax, 1e-12), "manhattan"
    g = _Grid(D, start, env_config.window, float(env_config.capacity), delta, distance)
    dist_max = g.N * g.T * g.max_move
    details: dict[str, Any] = {}

    seed_paths = ascent(g, None, cfg.ascent_rounds)
    lower = g.objective(seed_paths)
    lag, lag_paths = lagrangian_bound(g, cfg.lagrange_iters, lower)
    details["lagrangian_bound"] = lag
    if lag_paths is not None:
        improved = ascent(g, lag_paths, cfg.ascent_rounds)
        if g.objective(improved) > lower:
            seed_paths, lower = improved, g.objective(improved)
    details["ascent_objective"] = lower

    R = reachable(g)
    n_arcs_full = int(sum((box_sum(R[t - 1].astype(float), g.w) * R[t]).sum() for t in range(1, g.T + 1)))
    full = n_arcs_full <= cfg.max_full_arcs
    if full:
        S = R
    else:
        mark = np.zeros_like(R)
        tt = np.repeat(np.arange(g.T + 1), g.N)
        mark[tt, seed_paths[..., 0].ravel(), seed_paths[..., 1].ravel()] = True
        S = mark.copy()
        rho = cfg.neighborhood
        if rho > 0:
            S[1:] = box_sum(mark[1:].astype(float), 2 * rho + 1) > 0
        S &= R
        S[0] = R[0]
    details["arcs"] = n_arcs_full if full else None
    m_paths, m_obj, m_bound, m_status = solve_flow_milp(g, S, cfg.time_limit, cfg.mip_rel_gap)
    details["milp_status"] = m_status
    paths, obj = seed_paths, lower
    if m_paths is not None and g.objective(m_paths) >= obj - 1e-9 * max(1.0, abs(obj)):
        paths, obj = m_paths, g.objective(m_paths)
    bound = lag
    exact = False
    if full and m_paths is not None:
        bound = min(bound, m_bound)
        exact = m_status == "optimal"
    bound = max(bound, obj)
    if cfg.objective == "served":
        served_bound = bound + g.delta * dist_max
    else:
        g0 = _Grid(D, start, env_config.window, float(env_config.capacity), 0.0, "manhattan")
        served_bound, _ = lagrangian_bound(g0, cfg.lagrange_iters, g0.served(paths))
        served_bound = max(served_bound, g0.served(paths))
    served = g.served(paths)
    served_bound = max(served_bound, served)
    status = m_status if m_status in ("optimal", "time_limit") else "heuristic"
    if not full:
        status = "heuristic" if m_paths is None else "time_limit" if m_status == "time_limit" else "local_optimal"
    step = np.diff(paths, axis=0)
    actions = (step[..., 0] + g.r) * g.w + (step[..., 1] + g.r)
    return OraclePlan(
        positions=paths, actions=actions, served=served, distance=g.path_dist(paths, manhattan=True),
        objective=obj, bound=bound, served_bound=served_bound,
        gap=float((served_bound - served) / served_bound) if served_bound > 0 else 0.0,
        objective_gap=float((bound - obj) / max(abs(obj), 1e-12)), status=status, exact=exact,
        method="full" if full else "restricted", solve_time=time.perf_counter() - t0, details=details)


def plan_env(env: Any, config: OracleConfig | None = None) -> OraclePlan:
    """Plan the current episode of a (just reset) coverage environment."""
    return plan_episode(env.episode_frames(), env.positions, env.config, config)


class OraclePolicy:
    """Plans at ``reset`` (full information), then plays the plan.

    After ``reset`` the plan is in ``last_plan`` and its certificate is attached to the episode:
    ``env.episode_metrics()`` gains ``oracle_served_bound``, ``oracle_served``, ``oracle_gap``,
    ``oracle_bound``, ``oracle_exact``; :meth:`episode_metrics` returns the same numbers
    (``evaluate`` prefixes them ``policy/``).
    """

    def __init__(self, config: OracleConfig, seed: int | None = None) -> None:
        self.config = config
        self.last_plan: OraclePlan | None = None
        self.env: Any = None
        self._t = 0

    def reset(self, env: Any, seed: int | None = None) -> None:
        self.env = env
        self._t = 0
        plan = plan_env(env, self.config)
        self.last_plan = plan
        if hasattr(env, "add_episode_info"):
            env.add_episode_info(oracle_served_bound=plan.served_bound, oracle_served=plan.served,
                                 oracle_gap=plan.gap, oracle_bound=plan.bound,
                                 oracle_exact=float(plan.exact))

    def episode_metrics(self) -> dict[str, float]:
        """The certificate of the current plan (``evaluate`` reports it as ``policy/<key>``)."""
        p = self.last_plan
        if p is None:
            return {}
        return {"served_bound": p.served_bound, "served": p.served, "gap": p.gap, "bound": p.bound,
                "objective": p.objective, "exact": float(p.exact), "solve_s": p.solve_time}

    def act(self, observations: dict[str, Any], state: np.ndarray | None = None,
            explore: bool = False) -> dict[str, Any]:
        plan = self.last_plan
        if plan is None:
            raise RuntimeError("call reset(env) before act()")
        t = min(self.env.t, plan.actions.shape[0] - 1)
        r = (self.env.config.window - 1) // 2
        step = np.clip(plan.positions[t + 1] - self.env.positions, -r, r)  # follows the plan
        acts = (step[:, 0] + r) * self.env.config.window + (step[:, 1] + r)
        self._t += 1
        return {a: int(acts[int(a.rsplit("_", 1)[-1])]) for a in observations}


def _build(env: Any, config: OracleConfig, seed: int | None = None) -> OraclePolicy:
    return OraclePolicy(config, seed)


register_algo(AlgoSpec(
    "oracle", OracleConfig, _build,
    Capabilities(learns=False, full_information=True, families=("coverage",)),
    "full-information MILP oracle (HiGHS): plans the whole episode, reports an upper bound and gap"))

__all__ = ["OracleConfig", "OraclePlan", "OraclePolicy", "box_sum", "plan_env", "plan_episode",
           "solve_flow_milp"]
