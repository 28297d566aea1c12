r"""Inverse linear optimisation of right-hand sides by duality (OHIO App. B.3.5; Chan & Kaw 2020;
Chan et al. 2022), and its instance for OHIO's rebalancing LP (Eq. (30)).

Forward problem (OHIO App. B.3.5, "Primal")::

    min_{x, z}  c^T x + p^T z    s.t.   A x + B z <= b,   x >= 0,  z >= 0

with ``x`` the decisions (rebalancing flows), ``z`` a penalised slack (deviation from the goal)
and a right-hand side ``b`` whose rows split into *known* rows ``F`` (e.g. the idle vehicles of
(30c)) and *unknown* rows ``V`` (the goal, e.g. ``q - q^`` of (30b)). Given an observed decision
``x*`` the inverse problem recovers ``b_V`` by minimising the *absolute sub-optimality*
(duality gap) of ``x*`` (OHIO App. B.3.5)::

    min_{eps, b_V, z, lambda}  eps
    s.t.   A x* + B z <= b,                       (x*, z) primal feasible for b
           A^T lambda <= c,  B^T lambda <= p,     lambda dual feasible
           lambda <= 0,  z >= 0,  b_F fixed,
           eps = (c^T x* + p^T z) - b^T lambda    (>= 0 by weak duality)

The product ``b_V^T lambda_V`` makes it bilinear. It becomes an LP as follows (the argument of
Chan & Kaw 2020 for constraint parameters, specialised to right-hand sides):

1. For fixed ``(lambda, z)``, ``-b_V^T lambda_V = b_V^T |lambda_V|`` grows with ``b_V``, so the
   best ``b_V`` is the smallest feasible one: ``b_V = A_V x* + B_V z`` (the unknown rows *tight*
   at the observation, complementary slackness).
2. If the slack only enters unknown rows (``B_F = 0``; true for every goal-tracking LP whose slack
   relaxes the goal rows), substituting gives
   ``eps = [c^T x* - b_F^T lambda_F - (A_V x*)^T lambda_V] + z^T (p - B^T lambda)``, and the last
   term is ``>= 0`` by dual feasibility, so ``z = 0`` is optimal.
3. What is left is linear in ``lambda`` alone: the dual of the forward LP at the right-hand side
   ``b~ = (b_F, A_V x*)``::

       eps* = c^T x* - max_lambda { b~^T lambda : A^T lambda <= c, B^T lambda <= p, lambda <= 0 }

   i.e. ``eps*`` is the optimality gap of ``x*`` for the recovered ``b`` (strong duality), and the
   recovered right-hand side is ``b_V = A_V x*`` - Chan & Kaw's analytical solution, which is why
   OHIO calls the inverse analytical. ``eps* = 0`` certifies that ``x*`` is optimal for it (data
   from the same controller); ``eps* > 0`` measures how far sub-optimal (noisy) data are.

When the slack of the observation is itself observed (``z_obs``; any ``B``), step 1 gives
``b_V = A_V x* + B_V z_obs`` and step 3 is again an LP in ``lambda``.

For the rebalancing LP (:class:`RebalancingInverse`) the unknown rows are (30b) in ``<=`` form,
``-(inflow_i - outflow_i) - z_i <= q_i - q^_i``, so the recovered target is
``q^_i = q_i + sum_j (f_ji - f_ij)`` (OHIO App. B.3.5's closed form), and ``eps*`` is the excess
cost of the observed flows over the cheapest flows that reach the same distribution. Observed
flows that break a known row (noise: more vehicles leaving a region than were idle, negative
flows) are first projected onto the known rows by :func:`project_outflows`; the recovered target
then moves by at most ``2 ||f~ - f||_1`` for a perturbation ``f~`` of the flows ``f``.

The dual LP is one reusable :class:`~hieralloc.solvers.lp.LPModel` (HiGHS): between observations
only its costs change, so re-solves are warm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from hieralloc.solvers import _highs
from hieralloc.solvers.errors import MalformedProblemError
from hieralloc.solvers.flow import RebalancingModel
from hieralloc.solvers.lp import LPModel

#: relative tolerance of the known-row feasibility check of an observation
FEAS_TOL = 1e-7


def project_outflows(flows: Any, idle: Any, src: Any, *, integral: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Project edge flows onto the supply constraints ``f >= 0``, ``sum_{e from i} f_e <= q_i`` (OHIO (30c-d)).

    ``flows`` ``(B, F)`` (or ``(F,)``) requested flows along edges with origins ``src`` ``(F,)``;
    ``idle`` ``(B, N)`` (or ``(N,)``) vehicles available per origin. Negative flows are clipped to
    0; an origin whose requested outflow exceeds its idle vehicles has all its flows scaled down
    by the same factor (the per-origin scale-down of the end-to-end baselines, OHIO App. B.3.3).
    With ``integral=True`` each origin's total is rounded to the nearest integer (never above its
    idle vehicles) and distributed over its edges by largest remainder (ties to the lower edge).

    Returns ``(projected, removed)``: the projected flows (same shape) and, per row, the size
    ``||flows - projected||_1`` of the real-valued projection (rounding excluded).
    """
    f = np.asarray(flows, dtype=float)
    q = np.asarray(idle, dtype=float)
    single = f.ndim == 1
    f2 = np.atleast_2d(f)
    q2 = np.atleast_2d(q)
    s = np.asarray(src, dtype=np.int64)
    if f2.ndim != 2 or f2.shape[1] != s.shape[0] or q2.shape[0] != f2.shape[0]:
        raise MalformedProblemError(f"flows have shape {f.shape} and idle {q.shape}; expected (B, {s.shape[0]}) "
                                    "flows (one per edge) and (B, N) idle vehicles", constraint="flows")
    if s.size and (s.min() < 0 or s.max() >= q2.shape[1]):
        raise MalformedProblemError(f"edge origins reach region {int(s.max())}, outside 0..{q2.shape[1] - 1}",
                                    constraint="src")
    if not np.isfinite(f2).all():
        b, e = (int(v[0]) for v in np.nonzero(~np.isfinite(f2)))
        raise MalformedProblemError(f"flow {e} of row {b} is {f2[b, e]}; flows must be finite numbers",
                                    constraint=f"flow {e}")
    if (q2 < 0).any():
        raise MalformedProblemError("idle vehicles must be non-negative", constraint="idle")
    x = np.maximum(f2, 0.0)
    B, N = q2.shape
    out = np.zeros((B, N))
    np.add.at(out.T, s, x.T)  # out[b, i] = sum of the flows leaving i
    over = out > q2 + 1e-9 * (1.0 + q2)  # round-off of exact fractions is not a violation
    scale = np.where(over, q2 / np.where(out > 0, out, 1.0), 1.0)  # (30c): scale the origin down
    x = x * scale[:, s]
    removed = np.abs(f2 - x).sum(axis=1)
    if integral:
        x = _round_per_origin(x, s, N)
    return (x[0], np.asarray(removed[0])) if single else (x, removed)


def _round_per_origin(x: np.ndarray, src: np.ndarray, n: int) -> np.ndarray:
    """Integer flows: per origin, total ``rint(sum x)`` split by largest remainder (never above the sum's ceiling)."""
    out = np.zeros_like(x)
    for i in range(n):
        cols = np.flatnonzero(src == i)
        if cols.size == 0:
            continue
        xi = x[:, cols]
        base = np.floor(xi + 1e-9)
        total = np.rint(xi.sum(axis=1))
        extra = (total - base.sum(axis=1)).clip(min=0).astype(np.int64)
        order = np.argsort(-(xi - base), axis=1, kind="stable")
        bump = np.zeros_like(base)
        np.put_along_axis(bump, order, (np.arange(cols.size)[None, :] < extra[:, None]).astype(float), axis=1)
        out[:, cols] = base + bump
    return out


@dataclass
class InverseResult:
    """Solution of the absolute sub-optimality inverse (OHIO App. B.3.5).

    Attributes:
        b: ``(m,)`` right-hand side: the known rows as given, the unknown rows recovered
            (``A_V x* + B_V z``).
        z: ``(k,)`` slack of the observation (zeros unless observed).
        dual: ``(m,)`` optimal dual ``lambda <= 0`` (certificate).
        gap: absolute sub-optimality ``eps = primal - dual_value >= 0`` (0 when ``x*`` is optimal).
        primal: ``c^T x* + p^T z``.
        dual_value: ``b^T lambda``, the optimal forward value at ``b`` (strong duality).
    """

    b: np.ndarray
    z: np.ndarray
    dual: np.ndarray
    gap: float
    primal: float
    dual_value: float


class RhsInverseModel:
    r"""The absolute sub-optimality inverse for unknown right-hand-side rows, as one reusable dual LP.

    Forward: ``min c^T x + p^T z  s.t.  A x + B z <= b,  x, z >= 0``; the rows ``unknown`` of ``b``
    are recovered from an observed ``x*`` (module docstring: the bilinear problem of OHIO App. B.3.5
    reduces to ``max {b~^T lambda : A^T lambda <= c, B^T lambda <= p, lambda <= 0}``).

    Args:
        c: ``(n,)`` costs of ``x``.
        A: ``(m, n)`` constraint matrix (dense or sparse).
        unknown: ``(m,)`` bool mask or row indices of the unknown rows ``V``.
        B: ``(m, k)`` slack matrix (``None``: no slack).
        p: ``(k,)`` slack penalties (required with ``B``).

    Raises:
        MalformedProblemError: bad shapes, non-finite data.
    """

    def __init__(self, c: Any, A: Any, unknown: Any, B: Any = None, p: Any = None) -> None:
        if np.ndim(c) != 1:
            raise MalformedProblemError(f"c must be 1-D, got shape {np.shape(c)}", constraint="c")
        n = int(np.shape(c)[0])
        c_arr = _highs.vector(c, n, "c")
        Am = _highs.matrix(A, n, "A")
        m = Am.shape[0]
        mask = np.zeros(m, dtype=bool)
        u = np.asarray(unknown)
        if u.dtype == bool:
            if u.shape != (m,):
                raise MalformedProblemError(f"unknown mask has shape {u.shape}, expected ({m},) (one per row of A)",
                                            constraint="unknown")
            mask = u.copy()
        else:
            idx = u.astype(np.int64).ravel()
            if idx.size and (idx.min() < 0 or idx.max() >= m):
                raise MalformedProblemError(f"unknown rows must lie in 0..{m - 1}", constraint="unknown")
            mask[idx] = True
        if B is None:
            Bm = sp.csr_matrix((m, 0))
            p_arr = np.zeros(0)
        else:
            if p is None:
                raise MalformedProblemError("B needs its slack penalties p", constraint="p")
            Bt = _highs.matrix(sp.csr_matrix(B).T if sp.issparse(B) else np.asarray(B, dtype=float).T, m, "B^T")
            Bm = sp.csr_matrix(Bt.T)
            p_arr = _highs.vector(p, Bm.shape[1], "p")
        self.n, self.m, self.k = n, m, Bm.shape[1]
        self.A, self.B = Am, Bm
        self.unknown = mask
        self.known = ~mask
        self._B_known_zero = Bm[self.known].nnz == 0
        self.c, self.p = c_arr.copy(), p_arr.copy()
        # dual LP over lambda (m,): max b~^T lambda  s.t.  A^T lambda <= c,  B^T lambda <= p,  lambda <= 0
        D = sp.vstack([Am.T, Bm.T], format="csr")
        self._dual = LPModel(np.zeros(m), A_ub=D, b_ub=np.concatenate([c_arr, p_arr]), lb=-np.inf, ub=0.0,
                             sense="max", row_names=self._row_name, col_names=lambda i: f"dual of row {i}",
                             what="inverse (dual) LP, OHIO App. B.3.5")

    def _row_name(self, r: int) -> str:
        return f"dual feasibility of x[{r}]" if r < self.n else f"dual feasibility of z[{r - self.n}]"

    def set_cost(self, c: Any = None, p: Any = None) -> None:
        """Change the forward costs ``c`` and/or penalties ``p`` (right-hand sides of the dual rows)."""
        if c is not None:
            self.c = _highs.vector(c, self.n, "c")
            self._dual.set_b_ub(self.c, np.arange(self.n))
        if p is not None:
            self.p = _highs.vector(p, self.k, "p")
            self._dual.set_b_ub(self.p, np.arange(self.n, self.n + self.k))

    def solve(self, x_obs: Any, b_known: Any, z_obs: Any = None) -> InverseResult:
        """Recover the unknown rows of ``b`` from an observed decision ``x_obs``.

        ``b_known``: ``(m,)`` right-hand side whose unknown entries are ignored, or just the known
        entries ``(|F|,)``. ``z_obs``: the observed slack (``None``: unobserved; then the slack may
        only enter unknown rows and the optimum has ``z = 0``).

        Raises:
            MalformedProblemError: ``x_obs`` negative or breaking a known row (project it first,
                e.g. :func:`project_outflows`), slack in known rows without ``z_obs``, bad shapes.
        """
        x = _highs.vector(x_obs, self.n, "x_obs")
        if (x < -FEAS_TOL).any():
            j = int(np.flatnonzero(x < -FEAS_TOL)[0])
            raise MalformedProblemError(f"x_obs[{j}] = {x[j]:g} < 0: the observed decision must be non-negative "
                                        "(clip or project it first)", constraint=f"x_obs[{j}]")
        bk = np.asarray(b_known, dtype=float).ravel()
        nF = int(self.known.sum())
        if bk.shape == (self.m,):
            bF = bk[self.known]
        elif bk.shape == (nF,):
            bF = bk
        else:
            raise MalformedProblemError(f"b_known has shape {bk.shape}, expected ({self.m},) or ({nF},) "
                                        "(the known rows)", constraint="b_known")
        bF = _highs.vector(bF, nF, "b_known")
        if z_obs is None:
            if not self._B_known_zero:
                raise MalformedProblemError(
                    "the slack enters known rows (B_F != 0): the unobserved-slack inverse is bilinear there; "
                    "pass the observed slack z_obs", constraint="B")
            z = np.zeros(self.k)
        else:
            z = _highs.vector(z_obs, self.k, "z_obs")
            if (z < -FEAS_TOL).any():
                raise MalformedProblemError("z_obs must be non-negative", constraint="z_obs")
        Ax = self.A @ x + (self.B @ z if self.k else 0.0)
        lhsF = np.asarray(Ax)[self.known]
        viol = lhsF - bF
        tol = FEAS_TOL * (1.0 + np.abs(bF))
        if (viol > tol).any():
            r = int(np.flatnonzero(self.known)[np.flatnonzero(viol > tol)[0]])
            raise MalformedProblemError(
                f"the observation breaks known row {r} by {float(viol.max()):g}: A x* + B z <= b must hold on the "
                "known rows (project the observation onto them first, e.g. project_outflows)", constraint=f"row {r}")
        b = np.empty(self.m)
        b[self.known] = bF
        b[self.unknown] = np.asarray(Ax)[self.unknown]  # step 1: the unknown rows tight at x*
        self._dual.set_costs(b)
        sol = self._dual.solve()
        lam = np.minimum(sol.x, 0.0)
        primal = float(self.c @ x + self.p @ z)
        dual_value = float(b @ lam)
        gap = max(primal - dual_value, 0.0)
        return InverseResult(b=b, z=z, dual=lam, gap=gap, primal=primal, dual_value=dual_value)


def inverse_rhs(c: Any, A: Any, x_obs: Any, b_known: Any, unknown: Any, B: Any = None, p: Any = None,
                z_obs: Any = None) -> InverseResult:
    """One-shot :class:`RhsInverseModel` solve (see it and the module docstring)."""
    return RhsInverseModel(c, A, unknown, B, p).solve(x_obs, b_known, z_obs)


@dataclass
class RebalancingInverseResult:
    """The desired distribution recovered from observed rebalancing flows (OHIO App. B.3.5).

    Attributes:
        target: ``(n,)`` desired idle vehicles ``q^ = q + inflow - outflow`` of the (projected) flows.
        goal: ``(n,)`` the same as a distribution (sums to 1; uniform when no vehicle is idle).
        flows: ``(n_edges,)`` the observed flows after projection onto (30c-d).
        removed: ``||observed - projected||_1`` (0 for feasible observations).
        gap: absolute sub-optimality ``eps``: cost of the flows minus the cheapest cost reaching ``target``.
        cost: ``sum c f`` of the projected flows.
        optimal_cost: ``cost - gap``, the forward LP's optimum at ``target`` (strong duality).
        dual: ``(2n,)`` dual certificate (rows (30b) then (30c), ``<=`` form, ``<= 0``).
    """

    target: np.ndarray
    goal: np.ndarray
    flows: np.ndarray
    removed: float
    gap: float
    cost: float
    optimal_cost: float
    dual: np.ndarray


class RebalancingInverse:
    r"""OHIO App. B.3.5: recover the desired distribution of the rebalancing LP (Eq. (30)) from flows.

    Eq. (30) in the ``A x + B z <= b`` form of :class:`RhsInverseModel`: rows ``i < n`` are (30b)
    ``-(sum_j f_ji - sum_j f_ij) - z_i <= q_i - q^_i`` (unknown: the goal), rows ``n + i`` are
    (30c) ``sum_j f_ij <= q_i`` (known: the idle vehicles). Costs, edges and slack penalties are
    those of a :class:`~hieralloc.solvers.RebalancingModel` built with the same arguments (the
    environment's controller), so the certificate refers to exactly the forward LP that executes
    goals.
    """

    def __init__(self, n_regions: int, cost: Any, edges: Any = None, penalty: Any = None) -> None:
        fwd = RebalancingModel(n_regions, cost, edges, penalty, integral=False)
        self.forward = fwd
        n, E = fwd.n, fwd.edges
        ne = E.shape[0]
        self.n, self.edges, self.n_edges = n, E, ne
        e = np.arange(ne)
        src, dst = E[:, 0], E[:, 1]
        rows = np.concatenate([dst, src, n + src])
        cols = np.concatenate([e, e, e])
        vals = np.concatenate([-np.ones(ne), np.ones(ne), np.ones(ne)])
        A = sp.csr_matrix((vals, (rows, cols)), shape=(2 * n, ne))
        Bm = sp.csr_matrix((-np.ones(n), (np.arange(n), np.arange(n))), shape=(2 * n, n))
        self._edge_cost = fwd._edge_cost.copy()
        self._model = RhsInverseModel(self._edge_cost, A, np.arange(n), Bm, fwd.penalty)

    def set_cost(self, cost: Any, penalty: Any = None) -> None:
        """Change the edge costs (``(n, n)`` or ``(n_edges,)``; the default penalty follows them)."""
        self.forward.set_cost(cost, penalty)
        self._edge_cost = self.forward._edge_cost.copy()
        self._model.set_cost(self._edge_cost, self.forward.penalty)

    def solve(self, idle: Any, flows: Any) -> RebalancingInverseResult:
        """Recover the target from idle vehicles ``q`` ``(n,)`` and observed flows ``(n_edges,)`` or ``(n, n)``.

        Flows may be noisy or sub-optimal: they are projected onto (30c-d) first
        (:func:`project_outflows`), then the inverse LP certifies their sub-optimality ``gap``.
        """
        n, E = self.n, self.edges
        q = _highs.vector(idle, n, "idle")
        f = np.asarray(flows, dtype=float)
        if f.shape == (n, n):
            f = f[E[:, 0], E[:, 1]]
        f = _highs.vector(f, self.n_edges, "flows")
        proj, removed = project_outflows(f, q, E[:, 0])
        res = self._model.solve(proj, q, None)
        target = q - res.b[:n]
        target = np.where(np.abs(target) < 1e-12, 0.0, target)
        M = float(q.sum())
        goal = target / M if M > 0 else np.full(n, 1.0 / n)
        return RebalancingInverseResult(target=target, goal=goal, flows=proj, removed=float(removed), gap=res.gap,
                                        cost=res.primal, optimal_cost=res.dual_value, dual=res.dual)


__all__ = ["InverseResult", "RebalancingInverse", "RebalancingInverseResult", "RhsInverseModel", "inverse_rhs",
           "project_outflows"]
