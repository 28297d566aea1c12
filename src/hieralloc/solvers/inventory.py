r"""Inventory LPs of the supply-chain controller (OHIO App. B.4.4) and of its MPC baselines (B.4.3).

Inventory LP (:class:`InventoryModel`, OHIO Eq. (33a-g)). Warehouses ``j`` (``W`` of them, they
produce), stores ``i`` (``S``), directed edges ``e = (j, i)`` from warehouses to stores. Given the
high-level goal, a desired inflow ``q^_i`` per store (the goods it should receive this step) and a
desired production ``w^_j`` per warehouse, the controller finds the closest feasible shipments
``f_e`` and production ``w_j`` in the L1 sense::

    min   sum_j |eps_w,j| + sum_i |eps_f,i|                                      (33a)
    s.t.  sum_{e -> i} f_e = q^_i + eps_f,i                  for every store i    (33b)
          sum_{e -> i} f_e + n_i <= C_s,i                    for every store i    (33c)
          sum_{e <- j} f_e <= q_j                            for every warehouse  (33d)
          q_j + p_j + w_j - sum_{e <- j} f_e <= C_w,j        for every warehouse  (33e)
          w_j = w^_j + eps_w,j                               for every warehouse  (33f)
          f_e >= 0,  0 <= w_j <= C_p,j                                            (33g)

``n_i`` is the store's inventory after the step's demand, ``q_i - d_i`` in Eq. (33c) (negative
when demand is back-ordered); with shipping lead times above one step the caller adds the goods
already in transit. ``q_j`` is the warehouse stock available for shipping and ``p_j`` the
production already ordered that has not arrived (zero for a production lead time of one step,
the paper's setting, where (33e) is exactly the paper's row). We read Eq. (33e)'s ``C_p,i`` as the
warehouse's *storage* capacity (the constraint "ensures capacity adherence in the warehouse") and
bound the production itself by the production capacity ``C_p,j`` (the Beta head of OHIO B.5.1 is
scaled by it); see docs/environments/supply-chain.md. ``|eps|`` is linearised with split
variables ``eps = eps+ - eps-``, ``eps+/- >= 0``.

*Integrality.* The rows of (33b-f) form a totally unimodular matrix (each shipment column has one
+1 in its store's rows and +1/-1 in its warehouse's (33d)/(33e) rows, each production column +1
in (33e) and (33f); a two-colouring of any row subset exists), so with integer data every vertex
is integral. With ``integral=True`` (default) the model requires integer stocks, rounds the targets
to the nearest integer, checks that the solution is integral and returns it rounded.

*Uniqueness and the inverse (OHIO App. B.4.5).* When ``q^`` and ``w^`` are the inflows and
production of a feasible point, that point is the only optimum (objective 0 forces ``eps = 0``
and every store here has one incoming edge), which is what makes the analytical inverse
``q^ = observed inflow, w^ = observed production`` exact. Ties between equally distant flows can
occur otherwise, so every solve starts from scratch (no warm basis): the answer is a function of
the inputs alone, whatever was solved before.

Planning LP (:class:`InventoryPlanModel`): the multi-period profit-maximising LP of the MPC and
MPC-Oracle baselines over ``H`` steps, for one warehouse and ``S`` stores, with the environment's
exact dynamics (net inventory ``I = I+ - I-`` where ``I-`` are back-orders) and the same capacity
rows as (33c)/(33e) for every planned step, so the first planned step is always feasible for the
inventory LP. See :class:`InventoryPlanModel` for the formulation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from hieralloc.solvers import _highs
from hieralloc.solvers.errors import InfeasibleError, MalformedProblemError, SolverError
from hieralloc.solvers.lp import LPModel

INTEGRALITY_TOL = 1e-6


def _count(value: Any, n: int, name: str, integral: bool, *, nonneg: bool = True) -> np.ndarray:
    return _highs.quantities(value, n, name, integral, unit="quantities of goods", nonneg=nonneg)


def _integral(x: np.ndarray, integral: bool, what: str) -> np.ndarray:
    if not integral:
        return x
    r = np.round(x)
    dev = float(np.abs(x - r).max()) if x.size else 0.0
    if dev > INTEGRALITY_TOL:  # pragma: no cover - impossible for a TU vertex with integer data
        raise SolverError(f"{what}: the LP returned a fractional vertex (max deviation {dev:g})")
    return r


@dataclass
class InventoryResult:
    """Solution of the inventory LP (OHIO Eq. (33)).

    Attributes:
        flows: ``(E,)`` shipments per edge (order of ``model.edges``).
        production: ``(W,)`` realised production ``w_j``.
        inflow: ``(S,)`` goods shipped to each store, ``sum_{e -> i} f_e``.
        inflow_gap: ``(S,)`` ``eps_f = inflow - q^`` (33b).
        production_gap: ``(W,)`` ``eps_w = w - w^`` (33f).
        objective: ``sum |eps_f| + sum |eps_w|`` (33a): the distance from the goal.
    """

    flows: np.ndarray
    production: np.ndarray
    inflow: np.ndarray
    inflow_gap: np.ndarray
    production_gap: np.ndarray
    objective: float


class InventoryModel:
    r"""OHIO Eq. (33a-g), built once per network and re-solved for each step's state and goal.

    Args:
        edges: ``(E, 2)`` integer pairs ``(warehouse j, store i)``; every store needs at least one
            incoming edge; no duplicates.
        store_capacity: ``(S,)`` storage capacities ``C_s,i`` of the stores (33c).
        warehouse_capacity: ``(W,)`` storage capacities ``C_w,j`` of the warehouses (33e).
        production_capacity: ``(W,)`` production capacities ``C_p,j`` (bound of ``w_j``).
        integral: integer goods (see the module docstring).

    Only row bounds change between solves; the matrix and the costs are fixed.

    Raises:
        MalformedProblemError: bad shapes, NaN/inf, negative capacities, unknown nodes, duplicate
            edges, a store without incoming edge, non-integer data when ``integral``.
    """

    def __init__(self, edges: Any, store_capacity: Any, warehouse_capacity: Any, production_capacity: Any,
                 *, integral: bool = True) -> None:
        E = np.asarray(edges)
        if E.ndim != 2 or E.shape[1] != 2 or E.shape[0] == 0 or E.dtype.kind not in "iu":
            raise MalformedProblemError(f"edges must be a non-empty (n_edges, 2) integer array of (warehouse, "
                                        f"store) pairs, got shape {E.shape} ({E.dtype})", constraint="edges")
        E = E.astype(np.int64)
        cs = np.asarray(store_capacity, dtype=float).ravel()
        cw = np.asarray(warehouse_capacity, dtype=float).ravel()
        S, W = cs.shape[0], cw.shape[0]
        if S < 1 or W < 1:
            raise MalformedProblemError("the network needs at least one warehouse and one store "
                                        f"(got {W} warehouse and {S} store capacities)", constraint="store_capacity")
        self.integral = integral
        self.store_capacity = _count(cs, S, "store_capacity", integral)
        self.warehouse_capacity = _count(cw, W, "warehouse_capacity", integral)
        self.production_capacity = _count(production_capacity, W, "production_capacity", integral)
        if (E[:, 0] < 0).any() or (E[:, 0] >= W).any():
            bad = int(E[(E[:, 0] < 0) | (E[:, 0] >= W), 0][0])
            raise MalformedProblemError(f"edges reference warehouse {bad}, outside 0..{W - 1}", constraint="edges")
        if (E[:, 1] < 0).any() or (E[:, 1] >= S).any():
            bad = int(E[(E[:, 1] < 0) | (E[:, 1] >= S), 1][0])
            raise MalformedProblemError(f"edges reference store {bad}, outside 0..{S - 1}", constraint="edges")
        if len({(int(a), int(b)) for a, b in E}) != len(E):
            raise MalformedProblemError("edges contain a duplicate (warehouse, store) pair", constraint="edges")
        lonely = np.setdiff1d(np.arange(S), E[:, 1])
        if lonely.size:
            raise MalformedProblemError(f"store {int(lonely[0])} has no incoming edge: it could never be supplied",
                                        constraint="edges")
        self.edges = E
        self.n_edges, self.n_stores, self.n_warehouses = ne, S, W = E.shape[0], S, W
        # columns: f (ne) | w (W) | eps_f+ (S) | eps_f- (S) | eps_w+ (W) | eps_w- (W)
        self._cf = np.arange(ne)
        self._cw = ne + np.arange(W)
        cfp, cfm = ne + W + np.arange(S), ne + W + S + np.arange(S)
        cwp, cwm = ne + W + 2 * S + np.arange(W), ne + 2 * W + 2 * S + np.arange(W)
        n_cols = ne + 3 * W + 2 * S
        # rows: (33b) S | (33c) S | (33d) W | (33e) W | (33f) W
        rb, rc, rd = np.arange(S), S + np.arange(S), 2 * S + np.arange(W)
        re, rf = 2 * S + W + np.arange(W), 2 * S + 2 * W + np.arange(W)
        src, dst = E[:, 0], E[:, 1]
        e = np.arange(ne)
        rows = np.concatenate([rb[dst], rc[dst], rd[src], re[src], re, rf, rb, rb, rf, rf])
        cols = np.concatenate([e, e, e, e, self._cw, self._cw, cfp, cfm, cwp, cwm])
        vals = np.concatenate([np.ones(ne), np.ones(ne), np.ones(ne), -np.ones(ne), np.ones(W), np.ones(W),
                               -np.ones(S), np.ones(S), -np.ones(W), np.ones(W)])
        A = sp.csr_matrix((vals, (rows, cols)), shape=(2 * S + 3 * W, n_cols))
        c = np.concatenate([np.zeros(ne + W), np.ones(2 * S + 2 * W)])
        ub = np.concatenate([np.full(ne, np.inf), self.production_capacity, np.full(2 * S + 2 * W, np.inf)])
        lo = np.concatenate([np.zeros(S), np.full(S, -np.inf), np.full(2 * W, -np.inf), np.zeros(W)])
        hi = np.concatenate([np.zeros(S), self.store_capacity, np.zeros(W), self.warehouse_capacity, np.zeros(W)])

        def row_name(r: int) -> str:
            if r < S:
                return f"(33b) inflow target of store {r}"
            if r < 2 * S:
                return f"(33c) storage capacity of store {r - S}"
            if r < 2 * S + W:
                return f"(33d) shipments <= stock of warehouse {r - 2 * S}"
            if r < 2 * S + 2 * W:
                return f"(33e) storage capacity of warehouse {r - 2 * S - W}"
            return f"(33f) production target of warehouse {r - 2 * S - 2 * W}"

        def col_name(k: int) -> str:
            if k < ne:
                return f"shipment {E[k, 0]}->{E[k, 1]}"
            if k < ne + W:
                return f"production of warehouse {k - ne}"
            return "goal deviation eps"

        self._model = LPModel.from_ranged(c, A, lo, hi, lb=0.0, ub=ub, sense="min", row_names=row_name,
                                          col_names=col_name, what="inventory LP (OHIO Eq. (33))")
        self._model.highs.setOptionValue("presolve", "off")  # a few dozen columns: presolve costs more than it saves

    def solve(self, target_inflow: Any, target_production: Any, warehouse_stock: Any, store_net: Any,
              warehouse_pipeline: Any = None) -> InventoryResult:
        """Closest feasible shipments and production to the goal ``(q^, w^)``.

        Args:
            target_inflow: ``(S,)`` desired goods into each store ``q^_i`` (33b), ``>= 0``.
            target_production: ``(W,)`` desired production ``w^_j`` (33f), ``>= 0``.
            warehouse_stock: ``(W,)`` goods at each warehouse available for shipping ``q_j`` (33d).
            store_net: ``(S,)`` ``n_i = q_i - d_i`` (+ goods in transit) of (33c); may be negative.
            warehouse_pipeline: ``(W,)`` production ordered earlier that has not arrived (33e);
                default zeros (production lead time of one step).

        Raises:
            MalformedProblemError: bad shapes, NaN, negative targets or stocks, non-integers.
            InfeasibleError: a store already holds more than its capacity (``n_i > C_s,i``), a
                warehouse's pipeline exceeds its capacity, or the shipments cannot make room.
        """
        S, W = self.n_stores, self.n_warehouses
        qh = _count(target_inflow, S, "target_inflow", False)
        wh = _count(target_production, W, "target_production", False)
        if self.integral:
            qh, wh = np.round(qh), np.round(wh)
        q = _count(warehouse_stock, W, "warehouse_stock", self.integral)
        n = _count(store_net, S, "store_net", self.integral, nonneg=False)
        p = (np.zeros(W) if warehouse_pipeline is None
             else _count(warehouse_pipeline, W, "warehouse_pipeline", self.integral))
        room = self.store_capacity - n
        if (room < 0).any():
            i = int(np.flatnonzero(room < 0)[0])
            raise InfeasibleError(f"inventory LP (OHIO Eq. (33)) is infeasible: (33c) store {i} will hold "
                                  f"{n[i]:g} after its demand, above its storage capacity {self.store_capacity[i]:g}, "
                                  "even without shipments; the state violates the capacity")
        if (p > self.warehouse_capacity).any():
            j = int(np.flatnonzero(p > self.warehouse_capacity)[0])
            raise InfeasibleError(f"inventory LP (OHIO Eq. (33)) is infeasible: (33e) warehouse {j} has {p[j]:g} "
                                  f"goods in production, above its storage capacity {self.warehouse_capacity[j]:g}")
        lo = np.concatenate([qh, np.full(S, -np.inf), np.full(2 * W, -np.inf), wh])
        hi = np.concatenate([qh, room, q, self.warehouse_capacity - q - p, wh])
        m = self._model
        m.set_row_bounds(lo, hi)  # rows (33b) | (33c) | (33d) | (33e) | (33f), one update
        m.highs.clearSolver()  # cold: the result depends on the inputs only (module docstring)
        x = m.solve_x()
        f = _integral(np.maximum(x[self._cf], 0.0), self.integral, "inventory LP")
        w = _integral(np.clip(x[self._cw], 0.0, self.production_capacity), self.integral, "inventory LP")
        inflow = np.bincount(self.edges[:, 1], weights=f, minlength=S)
        gap_f, gap_w = inflow - qh, w - wh
        return InventoryResult(flows=f, production=w, inflow=inflow, inflow_gap=gap_f, production_gap=gap_w,
                               objective=float(np.abs(gap_f).sum() + np.abs(gap_w).sum()))


@dataclass
class InventoryPlan:
    """Solution of :class:`InventoryPlanModel` over ``H`` steps (step 0 = the current step).

    Attributes:
        production: ``(H,)`` production ordered at each step.
        shipments: ``(H, S)`` goods shipped to each store at each step.
        store_net: ``(H, S)`` net store inventory at the end of each step (negative = back-orders).
        warehouse: ``(H,)`` warehouse stock at the end of each step.
        profit: planned profit over the horizon (revenue minus every cost of OHIO Eq. (32)); the
            sum of the environment's rewards if the plan is executed and demand is as given.
    """

    production: np.ndarray
    shipments: np.ndarray
    store_net: np.ndarray
    warehouse: np.ndarray
    profit: float


class InventoryPlanModel:
    r"""Multi-period supply-chain LP of the MPC baselines (OHIO App. B.4.3), one warehouse, ``S``
    stores, steps ``k = 0..H-1`` from the current step.

    Variables per step: production ``w_k in [0, C_p]``, shipments ``f_ik >= 0``, warehouse stock
    ``W_k >= 0`` and store net inventory ``I_ik = I+_ik - I-_ik`` (``I-`` = back-orders), all at the
    end of step k. With the current stocks ``q_w, q_i``, back-orders ``b_i``, demand ``d_ik`` and the
    goods already on their way (``a^w_k``, ``a_ik`` arriving at step k)::

        max  p sum_ik (d_ik + I-_i,k-1 - I-_ik)  -  sum_k [m^S_w W_k + m^O w_k
             + sum_i (m^S_i I+_ik + m^T_i f_ik + m^B I-_ik)]                       (OHIO Eq. (32))
        s.t. W_k = W_k-1 + a^w_k + w_{k - t^P} - sum_i f_ik,   W_-1 + a^w_0 := q_w
             I_ik = I_i,k-1 + a_ik + f_i,k-t_i - d_ik,          I_i,-1 := q_i - b_i
             W_k + (arrivals at the warehouse in steps k+1..k+t^P) <= C_w             (33e)
             I_ik + (arrivals at store i in steps k+1..k+t_i) <= C_i                 (33c)

    The sales term telescopes to ``p (sum d + sum_i b_i - sum_i I-_i,H-1)``. Every physical
    trajectory of the environment is feasible with its own return as objective (the environment
    enforces (33c)/(33e) through its controllers), so with the realised demand over the rest of
    the episode the optimum is an upper bound on any policy's remaining return.

    Built once per horizon length ``H``; :meth:`solve` changes right-hand sides only.
    """

    def __init__(self, horizon: int, *, travel_time: Any, production_time: int, store_capacity: Any,
                 warehouse_capacity: float, production_capacity: float, price: float, storage_cost: Any,
                 production_cost: float, transport_cost: Any, backorder_cost: Any) -> None:
        H = int(horizon)
        if H < 1:
            raise MalformedProblemError(f"horizon must be >= 1 step, got {horizon}", constraint="horizon")
        tau = np.asarray(travel_time)
        if tau.ndim != 1 or tau.size == 0 or tau.dtype.kind not in "iu" or (tau < 1).any():
            raise MalformedProblemError("travel_time must be a non-empty 1-D array of integers >= 1 (steps)",
                                        constraint="travel_time")
        S = tau.shape[0]
        tP = int(production_time)
        if tP < 1:
            raise MalformedProblemError(f"production_time must be >= 1 step, got {production_time}",
                                        constraint="production_time")
        self.H, self.S, self.tau, self.tP = H, S, tau.astype(np.int64), tP
        self.store_capacity = _count(store_capacity, S, "store_capacity", False)
        self.warehouse_capacity = float(_count(warehouse_capacity, 1, "warehouse_capacity", False)[0])
        self.production_capacity = float(_count(production_capacity, 1, "production_capacity", False)[0])
        self.price = float(_count(price, 1, "price", False)[0])
        hold = _count(storage_cost, S + 1, "storage_cost", False)
        m_o = float(_count(production_cost, 1, "production_cost", False)[0])
        m_t = _count(transport_cost, S, "transport_cost", False)
        m_b = _count(backorder_cost, S, "backorder_cost", False)
        self.lookahead = int(max(tP, int(tau.max())))
        # column blocks, step-major inside each block
        nw, nf, nW, nIp, nIm = H, H * S, H, H * S, H * S
        o_w, o_f = 0, nw
        o_W = o_f + nf
        o_Ip = o_W + nW
        o_Im = o_Ip + nIp
        n_cols = o_Im + nIm
        self._o = {"w": o_w, "f": o_f, "W": o_W, "Ip": o_Ip, "Im": o_Im}

        def f_col(k: int, i: int) -> int:
            return o_f + k * S + i

        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []

        def put(r: int, c: int, v: float) -> None:
            rows.append(r)
            cols.append(c)
            vals.append(v)

        r = 0
        # warehouse balance (equalities): W_k - W_{k-1} - w_{k-tP} + sum_i f_ik = a^w_k  (k=0: W_0 + sum f = q_w)
        self._r_wbal = np.arange(r, r + H)
        for k in range(H):
            put(r, o_W + k, 1.0)
            if k > 0:
                put(r, o_W + k - 1, -1.0)
            if k - tP >= 0:
                put(r, o_w + k - tP, -1.0)
            for i in range(S):
                put(r, f_col(k, i), 1.0)
            r += 1
        # store balance: I+_ik - I-_ik - I+_i,k-1 + I-_i,k-1 - f_i,k-t_i = a_ik - d_ik  (k=0: = q_i - b_i - d_i0)
        self._r_sbal = np.arange(r, r + H * S).reshape(H, S)
        for k in range(H):
            for i in range(S):
                put(r, o_Ip + k * S + i, 1.0)
                put(r, o_Im + k * S + i, -1.0)
                if k > 0:
                    put(r, o_Ip + (k - 1) * S + i, -1.0)
                    put(r, o_Im + (k - 1) * S + i, 1.0)
                if k - tau[i] >= 0:
                    put(r, f_col(k - int(tau[i]), i), -1.0)
                r += 1
        # (33e) per step: W_k + sum_{m=k+1}^{k+tP} w_{m-tP} (planned) <= C_w - known arrivals in (k, k+tP]
        self._r_wcap = np.arange(r, r + H)
        for k in range(H):
            put(r, o_W + k, 1.0)
            for m in range(k + 1, k + tP + 1):
                if m - tP >= 0:
                    put(r, o_w + m - tP, 1.0)
            r += 1
        # (33c) per step: I_ik + sum_{m=k+1}^{k+t_i} f_{i,m-t_i} (planned) <= C_i - known arrivals in (k, k+t_i]
        self._r_scap = np.arange(r, r + H * S).reshape(H, S)
        for k in range(H):
            for i in range(S):
                put(r, o_Ip + k * S + i, 1.0)
                put(r, o_Im + k * S + i, -1.0)
                for m in range(k + 1, k + int(tau[i]) + 1):
                    if m - tau[i] >= 0:
                        put(r, f_col(m - int(tau[i]), i), 1.0)
                r += 1
        n_rows = r
        A = sp.csr_matrix((vals, (rows, cols)), shape=(n_rows, n_cols))
        cost = np.zeros(n_cols)
        cost[o_w:o_w + H] = m_o
        cost[o_f:o_f + H * S] = np.tile(m_t, H)
        cost[o_W:o_W + H] = hold[0]
        cost[o_Ip:o_Ip + H * S] = np.tile(hold[1:], H)
        cost[o_Im:o_Im + H * S] = np.tile(m_b, H)
        cost[o_Im + (H - 1) * S:o_Im + H * S] += self.price  # unmet at the horizon's end: revenue not earned
        ub = np.full(n_cols, np.inf)
        ub[o_w:o_w + H] = self.production_capacity
        lo = np.full(n_rows, -np.inf)
        hi = np.zeros(n_rows)
        eq = np.concatenate([self._r_wbal, self._r_sbal.ravel()])
        lo[eq] = 0.0

        def row_name(k: int) -> str:
            if k < H:
                return f"warehouse balance of step {k}"
            if k < H + H * S:
                return f"store balance of step {(k - H) // S}, store {(k - H) % S}"
            if k < 2 * H + H * S:
                return f"(33e) warehouse capacity at step {k - H - H * S}"
            kk = k - 2 * H - H * S
            return f"(33c) capacity of store {kk % S} at step {kk // S}"

        self._model = LPModel.from_ranged(cost, A, lo, hi, lb=0.0, ub=ub, sense="min", row_names=row_name,
                                          what="supply-chain planning LP (MPC)")

    def solve(self, *, warehouse_stock: float, store_stock: Any, backorders: Any, demand: Any,
              production_arrivals: Any = None, shipment_arrivals: Any = None) -> InventoryPlan:
        """Plan ``H`` steps from the current state.

        Args:
            warehouse_stock: ``q_w`` goods at the warehouse now (arrivals of this step included).
            store_stock: ``(S,)`` goods on hand at the stores now (arrivals included).
            backorders: ``(S,)`` demand carried over from earlier steps.
            demand: ``(H, S)`` demand (realised or forecast) of steps 0..H-1; step 0 is the current step.
            production_arrivals: ``(L,)`` production ordered before now arriving at steps 1..L
                (default none).
            shipment_arrivals: ``(L, S)`` shipments sent before now arriving at steps 1..L.

        Raises:
            MalformedProblemError: bad shapes, NaN or negative quantities.
            InfeasibleError: the current state already violates a capacity.
        """
        H, S = self.H, self.S
        qw = float(_count(warehouse_stock, 1, "warehouse_stock", False)[0])
        qs = _count(store_stock, S, "store_stock", False)
        b = _count(backorders, S, "backorders", False)
        D = np.asarray(demand, dtype=float)
        if D.shape != (H, S):
            raise MalformedProblemError(f"demand has shape {D.shape}, expected ({H}, {S})", constraint="demand")
        D = _count(D.ravel(), H * S, "demand", False).reshape(H, S)
        L = H + self.lookahead + 1
        aw = np.zeros(L)
        as_ = np.zeros((L, S))
        if production_arrivals is not None:
            pa = np.asarray(production_arrivals, dtype=float).ravel()
            pa = _count(pa, pa.shape[0], "production_arrivals", False)
            aw[1:1 + min(pa.shape[0], L - 1)] = pa[:L - 1]
        if shipment_arrivals is not None:
            sa = np.asarray(shipment_arrivals, dtype=float)
            if sa.ndim != 2 or sa.shape[1] != S:
                raise MalformedProblemError(f"shipment_arrivals has shape {sa.shape}, expected (L, {S})",
                                            constraint="shipment_arrivals")
            rows = int(sa.shape[0])
            known = _count(sa.ravel(), sa.size, "shipment_arrivals", False).reshape(rows, S)
            n = min(rows, L - 1)
            as_[1:1 + n] = known[:n]
        # right-hand sides
        wbal = aw[:H].copy()
        wbal[0] = qw
        sbal = as_[:H] - D
        sbal[0] = qs - b - D[0]
        cs = np.cumsum(aw)
        wcap = np.array([self.warehouse_capacity - (cs[k + self.tP] - cs[k]) for k in range(H)])
        cum = np.cumsum(as_, axis=0)
        scap = np.empty((H, S))
        for i in range(S):
            t_i = int(self.tau[i])
            scap[:, i] = self.store_capacity[i] - (cum[t_i:t_i + H, i] - cum[:H, i])
        m = self._model
        m.set_row_bounds(wbal, wbal, self._r_wbal)
        m.set_row_bounds(sbal.ravel(), sbal.ravel(), self._r_sbal.ravel())
        m.set_row_bounds(None, wcap, self._r_wcap)
        m.set_row_bounds(None, scap.ravel(), self._r_scap.ravel())
        sol = m.solve()
        x = sol.x
        o = self._o
        w = np.clip(x[o["w"]:o["w"] + H], 0.0, self.production_capacity)
        f = np.maximum(x[o["f"]:o["f"] + H * S], 0.0).reshape(H, S)
        Wst = x[o["W"]:o["W"] + H]
        net = (x[o["Ip"]:o["Ip"] + H * S] - x[o["Im"]:o["Im"] + H * S]).reshape(H, S)
        profit = self.price * (float(D.sum()) + float(b.sum())) - float(sol.objective)
        return InventoryPlan(production=w, shipments=f, store_net=net, warehouse=Wst, profit=profit)


__all__ = ["InventoryModel", "InventoryPlan", "InventoryPlanModel", "InventoryResult"]
