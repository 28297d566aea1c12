r"""Network-flow LPs of the vehicle-routing (AMoD) controller: OHIO's min-cost rebalancing flow
(App. B.3.4, Eq. (30)) with a penalised slack, and the passenger-matching LP.

Rebalancing (:class:`RebalancingModel`). Regions ``V`` (``n`` of them), directed edges
``E`` (``i != j``; default: the complete graph), idle vehicles ``q_i``, desired idle vehicles
``q^_i`` (the high-level action), edge costs ``c_ij``, slack penalty ``p_i > 0``::

    min_{f, z}  sum_{(i,j) in E} c_ij f_ij + sum_i p_i z_i                 # (30a) + slack cost
    s.t.        sum_{j != i} (f_ji - f_ij) + q_i + z_i >= q^_i   for i in V  # (30b), relaxed by z_i
                sum_{j != i} f_ij <= q_i                        for i in V  # (30c)
                f_ij >= 0, z_i >= 0                                         # (30d)

Without ``z`` the LP is infeasible whenever a target cannot be met (``sum q^ > sum q``, or a
region without incoming edges). With ``z`` the point ``f = 0, z = max(0, q^ - q)`` is always
feasible and the LP is bounded (``0 <= f_ij <= q_i``), so a solve never fails for valid data.
The default penalty ``p = 1 + n * max|c|`` exceeds the cost of any augmenting path (at most
``n`` edges), so the optimum uses the least total slack possible and, among those, the cheapest
flows: slack is only used for targets that cannot be reached.

*Integrality.* Writing the vehicles that stay as ``f_ii = q_i - sum_j f_ij`` turns (30) into a
bipartite transportation problem (origins ``i`` with supply ``q_i``, destinations ``j`` with
demand ``q^_j``, unmet demand ``z_j``), whose constraint matrix is totally unimodular. With
integer ``q`` and ``q^`` every vertex is integral and the simplex optimum is an integer flow, as
the paper's controller needs (vehicle counts). With ``integral=True`` (default) the model requires
integer availability, rounds the targets to the nearest integer, checks the solution is integral
(tolerance 1e-6) and returns it rounded.

Passenger matching (:class:`PassengerMatchingModel`). Demand ``d_ij`` per origin-destination pair
(``i == j`` allowed), fares ``w_ij``, idle vehicles ``m_i``::

    max_f   sum_ij w_ij f_ij
    s.t.    0 <= f_ij <= d_ij                     (served <= demand per OD pair)
            sum_j f_ij <= m_i      for every i    (departures <= idle vehicles)

Each variable lies in one row and has simple bounds (an interval matrix, TU), so with integer
``d`` and ``m`` the optimum is integral. The LP separates by origin into fractional knapsacks with
unit weights; :func:`match_passengers` with ``method='greedy'`` solves it exactly by serving the
highest positive fares first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from hieralloc.solvers import _highs
from hieralloc.solvers.errors import MalformedProblemError, SolverError
from hieralloc.solvers.lp import LPModel

INTEGRALITY_TOL = 1e-6
_OPTIMAL = int(_highs.MS.kOptimal)


def _nonneg(value: Any, n: int, name: str, integral: bool) -> np.ndarray:
    return _highs.quantities(value, n, name, integral, unit="vehicle counts")


def _counts(value: Any, n: int, name: str, integral: bool) -> np.ndarray:
    """:func:`_nonneg` for the per-step path: an integer array of the right shape (what the
    environment passes) only needs its sign checked; anything else goes through :func:`_nonneg`,
    which returns the same values and raises the same errors."""
    if (isinstance(value, np.ndarray) and value.dtype.kind in "iu" and value.shape == (n,)
            and (value.dtype.kind == "u" or n == 0 or value.min() >= 0)):
        return value.astype(float)  # integer counts: finite, integral; _nonneg's round is the identity
    return _nonneg(value, n, name, integral)


def _run_primal(h: Any, model: LPModel, row_name: _highs.Namer, col_name: _highs.Namer, what: str
                ) -> np.ndarray:
    """:meth:`LPModel.solve_x` of an LP on its HiGHS object (the per-step path): run warm, map a
    non-optimal status to the typed errors, return the primal solution."""
    h.run()
    model.n_solves += 1
    if int(h.getModelStatus()) != _OPTIMAL:
        _highs.raise_for_status(h, row_name, col_name, False, what=what)
    x = h.getSolution().col_value
    return np.fromiter(x, dtype=float, count=len(x))


def _as_int_if_integral(x: np.ndarray, integral: bool, what: str) -> np.ndarray:
    if not integral:
        return x
    r = np.rint(x)  # == np.round(x) (decimals=0 is rint)
    d = x - r
    dev = float(np.abs(d, out=d).max()) if x.size else 0.0
    if dev > INTEGRALITY_TOL:  # pragma: no cover - impossible for a TU vertex with integer data
        raise SolverError(f"{what}: the LP returned a fractional vertex (max deviation {dev:g})")
    return r


@dataclass
class RebalancingResult:
    """Solution of the rebalancing LP (OHIO Eq. (30) with slack).

    Attributes:
        flows: ``(n_edges,)`` vehicles sent along each edge (order of ``model.edges``).
        flow_matrix: ``(n, n)`` the same flows as a matrix (zero diagonal).
        slack: ``(n,)`` unmet part of each target, ``z_i``.
        next_idle: ``(n,)`` idle vehicles after rebalancing, ``q_i + inflow_i - outflow_i``.
        cost: rebalancing cost ``sum c_ij f_ij`` (Eq. (30a)).
        objective: ``cost + sum p_i z_i``.
    """

    flows: np.ndarray
    flow_matrix: np.ndarray
    slack: np.ndarray
    next_idle: np.ndarray
    cost: float
    objective: float


class RebalancingModel:
    r"""Min-cost rebalancing flow (OHIO App. B.3.4, Eq. (30)) with penalised slack; built once per
    graph, re-solved warm for each step's availability ``q`` and targets ``q^``.

    .. math::

        \min_{f\ge0,z\ge0} \sum_{(i,j)\in E} c_{ij} f_{ij} + \sum_i p_i z_i \;\text{s.t.}\;
        \sum_{j\ne i}(f_{ji}-f_{ij}) + q_i + z_i \ge \hat q_i,\quad \sum_{j\ne i} f_{ij}\le q_i.

    Args:
        n_regions: number of regions ``n``.
        cost: ``(n, n)`` edge-cost matrix (diagonal ignored) or ``(n_edges,)`` per edge.
        edges: ``(n_edges, 2)`` directed pairs ``(i, j)``, ``i != j``; default all ordered pairs.
        penalty: slack penalty, scalar or ``(n,)``, must be ``> 0``; default ``1 + n * max|c|``
            (slack only where a target is unreachable; see the module docstring).
        integral: integer vehicle counts (see module docstring); ``False`` for fractional data.

    Raises:
        MalformedProblemError: bad shapes, self-loops, duplicate edges, NaN/inf, negative counts,
            non-integer availability when ``integral``, non-positive penalty.
    """

    def __init__(
        self,
        n_regions: int,
        cost: Any,
        edges: Any = None,
        penalty: Any = None,
        *,
        integral: bool = True,
    ) -> None:
        n = int(n_regions)
        if n < 1:
            raise MalformedProblemError(f"n_regions must be >= 1, got {n_regions}", constraint="n_regions")
        self.n = n
        self.integral = integral
        if edges is None:
            ii, jj = np.nonzero(~np.eye(n, dtype=bool))
            E = np.stack([ii, jj], axis=1)
        else:
            E = np.asarray(edges)
            if E.size == 0:
                E = np.zeros((0, 2), dtype=np.int64)
            if E.ndim != 2 or E.shape[1] != 2 or (E.size and E.dtype.kind not in "iu"):
                raise MalformedProblemError(
                    f"edges must be an (n_edges, 2) integer array, got shape {E.shape}", constraint="edges")
            E = E.astype(np.int64).reshape(-1, 2)
            if E.size and (E.min() < 0 or E.max() >= n):
                bad = int(E.max() if E.max() >= n else E.min())
                raise MalformedProblemError(f"edges reference region {bad}, outside 0..{n - 1}",
                                            constraint="edges")
            loops = np.flatnonzero(E[:, 0] == E[:, 1])
            if loops.size:
                k = int(loops[0])
                raise MalformedProblemError(
                    f"edge {k} is a self-loop ({E[k, 0]}, {E[k, 0]}): vehicles that stay are implicit "
                    "(f_ii is not a variable in Eq. (30))", constraint=f"edge {k}")
            if len({(int(a), int(b)) for a, b in E}) != len(E):
                raise MalformedProblemError("edges contain a duplicate (i, j) pair", constraint="edges")
        self.edges = E
        ne = E.shape[0]
        self.n_edges = ne
        self._edge_cost = self._cost_vector(cost)
        # columns: f_e (e < ne), then z_i; rows: (30b) for i < n, then (30c) for i < n
        e = np.arange(ne)
        src, dst = E[:, 0], E[:, 1]
        rows = np.concatenate([dst, src, n + src, np.arange(n)])
        cols = np.concatenate([e, e, e, ne + np.arange(n)])
        vals = np.concatenate([np.ones(ne), -np.ones(ne), np.ones(ne), np.ones(n)])
        A = sp.csr_matrix((vals, (rows, cols)), shape=(2 * n, ne + n))
        self._penalty_given = penalty is not None
        pen = self._penalty(penalty)
        self.penalty = pen
        c = np.concatenate([self._edge_cost, pen])
        lower = np.concatenate([np.zeros(n), np.full(n, -np.inf)])
        upper = np.concatenate([np.full(n, np.inf), np.zeros(n)])

        def row_name(r: int) -> str:
            return (f"(30b) target of region {r}" if r < n
                    else f"(30c) departures <= idle vehicles of region {r - n}")

        def col_name(k: int) -> str:
            return f"flow {E[k, 0]}->{E[k, 1]}" if k < ne else f"slack of region {k - ne}"

        self._what = "rebalancing LP (OHIO Eq. (30))"
        self._model = LPModel.from_ranged(c, A, lower, upper, lb=0.0, ub=np.inf, sense="min",
                                          row_names=row_name, col_names=col_name, what=self._what)
        self._row_name, self._col_name = row_name, col_name
        self._rows_b = np.arange(n, dtype=np.int32)
        self._rows_c = np.arange(n, 2 * n, dtype=np.int32)
        self._edge_cols = np.arange(ne, dtype=np.int32)
        # Per-step path (solve): the row bounds of (30b) / (30c) are changed on the HiGHS object
        # directly, with the same calls and values LPModel.set_row_bounds makes (the other side of
        # each row is the constant +inf / -inf), without re-validating the model's own index arrays.
        # After construction only this class updates the model; LPModel's mirrors of the row bounds
        # are not used again.
        self._h: Any = self._model.highs  # highspy's stubs lack changeRowsBounds
        self._pos_inf = np.full(n, _highs.INF)
        self._neg_inf = np.full(n, -_highs.INF)
        self._flat_edges = E[:, 0] * n + E[:, 1]  # edge -> index in flow_matrix.ravel()

    def _cost_vector(self, cost: Any) -> np.ndarray:
        n, E = self.n, self.edges
        arr = np.asarray(cost, dtype=float)
        if arr.shape == (n, n):
            vec = arr[E[:, 0], E[:, 1]]
        elif arr.shape == (E.shape[0],):
            vec = arr
        else:
            raise MalformedProblemError(
                f"cost has shape {arr.shape}, expected ({n}, {n}) or ({E.shape[0]},) (one per edge)",
                constraint="cost")
        return _highs.vector(vec, E.shape[0], "cost")

    def _penalty(self, penalty: Any) -> np.ndarray:
        n = self.n
        if penalty is None:
            cmax = float(np.abs(self._edge_cost).max()) if self._edge_cost.size else 0.0
            return np.full(n, 1.0 + n * cmax)
        pen = _highs.vector(penalty, n, "penalty")
        if (pen <= 0).any():
            i = int(np.flatnonzero(pen <= 0)[0])
            raise MalformedProblemError(
                f"penalty[{i}] = {pen[i]:g}: the slack penalty must be > 0 (otherwise slack replaces "
                "rebalancing)", constraint="penalty")
        return pen

    def set_cost(self, cost: Any, penalty: Any = None) -> None:
        """Change edge costs (``(n, n)`` or ``(n_edges,)``) and optionally the penalty.

        When the penalty was defaulted it is recomputed from the new costs."""
        self._edge_cost = self._cost_vector(cost)
        self._model.set_costs(self._edge_cost, self._edge_cols)
        if penalty is not None or not self._penalty_given:
            self._penalty_given = self._penalty_given or penalty is not None
            self.penalty = self._penalty(penalty)
            self._model.set_costs(self.penalty, np.arange(self.n_edges, self.n_edges + self.n))

    def solve(self, availability: Any, target: Any, cost: Any = None) -> RebalancingResult:
        """Solve for idle vehicles ``q`` (availability) and desired idle vehicles ``q^`` (target).

        Only row bounds change between calls (and costs when ``cost`` is given), so the solve is
        warm. Raises :class:`MalformedProblemError` for invalid counts; never infeasible.
        """
        q, f, z = self._solve(availability, target, cost)
        n = self.n
        flat = np.zeros(n * n)
        flat[self._flat_edges] = f
        F = flat.reshape(n, n)
        next_idle = q + F.sum(axis=0) - F.sum(axis=1)
        cost_val = float(self._edge_cost @ f)
        return RebalancingResult(flows=f, flow_matrix=F, slack=z, next_idle=next_idle, cost=cost_val,
                                 objective=cost_val + float(self.penalty @ z))

    def solve_flows(self, availability: Any, target: Any, cost: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`solve` returning only ``(flows, slack)`` (``(n_edges,)`` in the order of ``edges``,
        ``(n,)``): the same solve without the derived quantities, for per-step callers."""
        _, f, z = self._solve(availability, target, cost)
        return f, z

    def _solve(self, availability: Any, target: Any, cost: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Validate, update the row bounds, solve; returns ``(q, flows, slack)``."""
        n = self.n
        q = _counts(availability, n, "availability", self.integral)
        if (isinstance(target, np.ndarray) and target.dtype.kind in "iu" and target.shape == (n,)
                and (target.dtype.kind == "u" or target.min() >= 0)):
            qh = target.astype(float)  # integer targets: valid, rounding is the identity
        else:
            qh = _highs.vector(target, n, "target")
            if (qh < 0).any():
                i = int(np.flatnonzero(qh < 0)[0])
                raise MalformedProblemError(f"target[{i}] = {qh[i]:g} < 0: desired vehicle counts must be "
                                            "non-negative", constraint=f"target[{i}]")
            if self.integral:
                qh = np.rint(qh)
        if cost is not None:
            self.set_cost(cost)
        h = self._h
        h.changeRowsBounds(n, self._rows_b, qh - q, self._pos_inf)  # (30b): inflow - outflow + z >= q^ - q
        h.changeRowsBounds(n, self._rows_c, self._neg_inf, q)       # (30c): outflow <= q
        x = _run_primal(h, self._model, self._row_name, self._col_name, self._what)
        x = _as_int_if_integral(np.maximum(x, 0.0, out=x), self.integral, "rebalancing LP")
        ne = self.n_edges
        return q, x[:ne], x[ne:]


def solve_rebalancing(
    availability: Any,
    target: Any,
    cost: Any,
    edges: Any = None,
    penalty: Any = None,
    *,
    integral: bool = True,
) -> RebalancingResult:
    """One-shot OHIO Eq. (30) solve (builds a :class:`RebalancingModel`; reuse one per graph instead)."""
    q = np.asarray(availability, dtype=float)
    if q.ndim != 1:
        raise MalformedProblemError(f"availability must be 1-D, got shape {q.shape}",
                                    constraint="availability")
    return RebalancingModel(q.shape[0], cost, edges, penalty, integral=integral).solve(q, target)


@dataclass
class PassengerMatchingResult:
    """Served trips of the passenger-matching LP.

    Attributes:
        served: ``(n, n)`` passengers served per origin-destination pair.
        revenue: ``sum w_ij served_ij``.
        departures: ``(n,)`` vehicles leaving each origin with passengers.
    """

    served: np.ndarray
    revenue: float
    departures: np.ndarray


def _matching_inputs(demand: Any, idle: Any, fare: Any, n: int | None, integral: bool
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    D = np.asarray(demand, dtype=float)
    if D.ndim != 2 or D.shape[0] != D.shape[1] or (n is not None and D.shape[0] != n):
        want = f"({n}, {n})" if n is not None else "square (n, n)"
        raise MalformedProblemError(f"demand has shape {D.shape}, expected {want}", constraint="demand")
    n = D.shape[0]
    d = _nonneg(D.ravel(), n * n, "demand", integral).reshape(n, n)
    m = _nonneg(idle, n, "idle", integral)
    W = np.asarray(fare, dtype=float)
    if W.ndim == 0:
        W = np.full((n, n), float(W))
    if W.shape != (n, n):
        raise MalformedProblemError(f"fare has shape {W.shape}, expected ({n}, {n}) like demand",
                                    constraint="fare")
    w = _highs.vector(W.ravel(), n * n, "fare").reshape(n, n)
    return d, m, w


class PassengerMatchingModel:
    r"""Passenger-matching LP built once for ``n`` regions, re-solved warm per step.

    .. math::

        \max_f \sum_{ij} w_{ij} f_{ij}\;\text{s.t.}\; 0\le f_{ij}\le d_{ij},\;
        \sum_j f_{ij}\le m_i.

    Variables are ``f.ravel()`` (row-major, origin-major). Demand changes column bounds, idle
    vehicles change row bounds, fares change costs.
    """

    def __init__(self, n_regions: int, *, integral: bool = True) -> None:
        n = int(n_regions)
        if n < 1:
            raise MalformedProblemError(f"n_regions must be >= 1, got {n_regions}", constraint="n_regions")
        self.n = n
        self.integral = integral
        k = np.arange(n * n)
        A = sp.csr_matrix((np.ones(n * n), (k // n, k)), shape=(n, n * n))

        def row_name(i: int) -> str:
            return f"departures <= idle vehicles of region {i}"

        def col_name(c: int) -> str:
            return f"served {c // n}->{c % n}"

        self._row_name, self._col_name, self._what = row_name, col_name, "passenger-matching LP"
        self._model = LPModel(np.zeros(n * n), A_ub=A, b_ub=np.zeros(n), lb=0.0, ub=0.0, sense="max",
                              row_names=row_name, col_names=col_name, what=self._what)
        # Per-step path (solve): costs, column bounds and row bounds are changed on the HiGHS object
        # directly, with the same calls and values LPModel.set_costs / set_col_bounds / set_b_ub make
        # (all columns; lower bounds 0; the rows' constant lower side -inf). After construction only
        # this class updates the model; LPModel's mirrors of costs and bounds are not used again.
        self._h: Any = self._model.highs  # highspy's stubs lack changeRowsBounds
        self._cols = np.arange(n * n, dtype=np.int32)
        self._rows = np.arange(n, dtype=np.int32)
        self._zeros = np.zeros(n * n)
        self._neg_inf = np.full(n, -_highs.INF)

    def _inputs(self, demand: Any, idle: Any, fare: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:func:`_matching_inputs` for this model; integer demand and idle counts and a finite float
        fare matrix of the right shapes (what the environment passes) skip the generic checks."""
        n = self.n
        if (isinstance(demand, np.ndarray) and demand.dtype.kind in "iu" and demand.shape == (n, n)
                and isinstance(idle, np.ndarray) and idle.dtype.kind in "iu" and idle.shape == (n,)
                and isinstance(fare, np.ndarray) and fare.dtype == np.float64 and fare.shape == (n, n)
                and (demand.dtype.kind == "u" or demand.min() >= 0) and (idle.dtype.kind == "u" or idle.min() >= 0)
                and np.isfinite(fare).all()):
            return demand.astype(float), idle.astype(float), fare  # counts are integral: rounding is the identity
        return _matching_inputs(demand, idle, fare, n, self.integral)

    def solve(self, demand: Any, idle: Any, fare: Any) -> PassengerMatchingResult:
        """Solve for demand ``d`` ``(n, n)``, idle vehicles ``m`` ``(n,)`` and fares ``w`` ``(n, n)``."""
        w, served = self._solve(demand, idle, fare)
        return PassengerMatchingResult(served=served, revenue=float((w * served).sum()),
                                       departures=served.sum(axis=1))

    def solve_served(self, demand: Any, idle: Any, fare: Any) -> np.ndarray:
        """:meth:`solve` returning only ``served`` ``(n, n)``: the same solve without the derived
        quantities, for per-step callers."""
        return self._solve(demand, idle, fare)[1]

    def _solve(self, demand: Any, idle: Any, fare: Any) -> tuple[np.ndarray, np.ndarray]:
        """Validate, update costs and bounds, solve; returns ``(fare, served)``."""
        d, m, w = self._inputs(demand, idle, fare)
        h, nn = self._h, self.n * self.n
        h.changeColsCost(nn, self._cols, np.ascontiguousarray(w).reshape(nn))
        h.changeColsBounds(nn, self._cols, self._zeros, d.reshape(nn))
        h.changeRowsBounds(self.n, self._rows, self._neg_inf, m)
        x = _run_primal(h, self._model, self._row_name, self._col_name, self._what)
        x = _as_int_if_integral(np.maximum(x, 0.0, out=x), self.integral, "passenger-matching LP")
        return w, x.reshape(self.n, self.n)


def match_passengers(
    demand: Any,
    idle: Any,
    fare: Any,
    *,
    method: Literal["greedy", "lp"] = "greedy",
    integral: bool = True,
) -> PassengerMatchingResult:
    """Solve the passenger-matching LP (see :class:`PassengerMatchingModel`).

    ``method='greedy'`` is exact: the LP separates by origin, and for one origin (unit weights,
    one budget ``m_i``) serving the highest positive fares first is optimal. ``'lp'`` uses HiGHS.
    """
    if method not in ("greedy", "lp"):
        raise MalformedProblemError(f"method must be 'greedy' or 'lp', got {method!r}", constraint="method")
    if method == "lp":
        D = np.asarray(demand, dtype=float)
        n = D.shape[0] if D.ndim == 2 else -1
        if n < 1:
            raise MalformedProblemError(f"demand has shape {D.shape}, expected square (n, n)",
                                        constraint="demand")
        return PassengerMatchingModel(n, integral=integral).solve(demand, idle, fare)
    d, m, w = _matching_inputs(demand, idle, fare, None, integral)
    n = d.shape[0]
    served = np.zeros((n, n))
    order = np.argsort(-w, axis=1, kind="stable")
    for i in range(n):
        left = m[i]
        for j in order[i]:
            if w[i, j] <= 0 or left <= 0:
                break
            take = min(d[i, j], left)
            served[i, j] = take
            left -= take
    return PassengerMatchingResult(served=served, revenue=float((w * served).sum()),
                                   departures=served.sum(axis=1))


__all__ = [
    "PassengerMatchingModel",
    "PassengerMatchingResult",
    "RebalancingModel",
    "RebalancingResult",
    "match_passengers",
    "solve_rebalancing",
]
