r"""A reusable HiGHS LP/MILP model: build the constraint matrix once, then change costs, variable
bounds or right-hand sides and re-solve *warm* from the previous simplex basis.

Every per-step controller in hieralloc (LPMARL's assignment LP, OHIO's rebalancing LP, the
passenger-matching LP) keeps one :class:`LPModel` and only changes numbers between solves; that
is what makes the high-level decision cheap enough to call every environment step (see
``benchmarks/solvers.py``: the warm re-solve of the 20-region rebalancing LP is several times
faster than a fresh :func:`scipy.optimize.linprog`).

Formulation (HiGHS's ranged form)::

    min / max   c @ x
    s.t.        row_lower <= A @ x <= row_upper
                lb <= x <= ub,   x_j integer where integrality_j = 1

The constructor also takes :func:`scipy.optimize.linprog`-style blocks ``A_ub x <= b_ub`` and
``A_eq x == b_eq`` (stacked in that order: inequality rows first), so ``set_b_ub`` /
``set_b_eq`` can update them by block.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import highspy
import numpy as np

from hieralloc.solvers import _highs
from hieralloc.solvers.errors import MalformedProblemError


@dataclass
class LPSolution:
    """Result of :meth:`LPModel.solve`.

    Attributes:
        x: primal solution (integer columns rounded).
        objective: objective value in the model's sense.
        status: ``'optimal'`` or ``'time_limit'`` (best feasible point when the limit was hit).
        row_activity: ``A @ x`` per row.
        row_dual: dual values of the rows (HiGHS sign convention; empty for a MILP).
        col_dual: reduced costs of the columns (empty for a MILP).
        iterations: simplex iterations of this solve (small for a good warm start).
        seconds: wall time of the HiGHS ``run()`` call.
    """

    x: np.ndarray
    objective: float
    status: str
    row_activity: np.ndarray
    row_dual: np.ndarray
    col_dual: np.ndarray
    iterations: int
    seconds: float


class LPModel:
    r"""A HiGHS model built once and re-solved after changing numbers (costs, bounds, rhs).

    .. math::

        \min_x / \max_x\; c^\top x \;\text{ s.t. }\; A_{ub}x \le b_{ub},\; A_{eq}x = b_{eq},\;
        lb \le x \le ub.

    Structure (the sparsity pattern of ``A`` and the number of rows/columns) is fixed; use a new
    model when it changes. Between solves HiGHS keeps its basis, so a re-solve after a small
    change typically needs a handful of simplex iterations instead of a full solve.

    Args:
        c: costs, shape ``(n,)``.
        A_ub, b_ub, A_eq, b_eq: constraint blocks as in :func:`scipy.optimize.linprog`
            (dense or ``scipy.sparse``); ``b_ub`` may contain ``+inf``.
        lb, ub: variable bounds (default ``0`` / ``+inf``).
        integrality: ``None`` (LP) or ``(n,)`` of 0/1 (1 = integer variable).
        sense: ``'min'`` or ``'max'``.
        row_names, col_names: names used in error messages (a sequence or ``i -> str``);
            default ``'A_ub row i'`` / ``'A_eq row j'`` and ``'x[j]'``.
        time_limit: seconds per solve (``None`` = no limit).
        threads: HiGHS threads (``None`` = HiGHS default).
        what: the problem's name in error messages (e.g. ``'rebalancing LP'``).

    Raises:
        MalformedProblemError: on construction or update with bad shapes/values.
        InfeasibleError, UnboundedError, SolverError: from :meth:`solve`.
    """

    def __init__(
        self,
        c: Any,
        A_ub: Any = None,
        b_ub: Any = None,
        A_eq: Any = None,
        b_eq: Any = None,
        lb: Any = None,
        ub: Any = None,
        *,
        integrality: Any = None,
        sense: Literal["min", "max"] = "min",
        row_names: Sequence[str] | _highs.Namer | None = None,
        col_names: Sequence[str] | _highs.Namer | None = None,
        time_limit: float | None = None,
        threads: int | None = None,
        what: str = "LP",
    ) -> None:
        _highs.check_sense(sense)
        c_arr = np.asarray(c, dtype=float)
        if c_arr.ndim != 1:
            raise MalformedProblemError(f"c must be 1-D, got shape {c_arr.shape}", constraint="c")
        n = c_arr.shape[0]
        self.n_cols = n
        self.sense = sense
        self.what = what
        self._c = _highs.vector(c_arr, n, "c")
        A, row_lo, row_hi, default_row_name, self._m_ub = _highs.stack_rows(n, A_ub, b_ub, A_eq, b_eq)
        self.n_rows = A.shape[0]
        self._row_name = _highs.names_to_namer(row_names, default_row_name)
        self._col_name = _highs.names_to_namer(col_names, _highs.default_col_namer)
        self._lb = _highs.vector(lb, n, "lb", default=0.0, allow_neg_inf=True)
        self._ub = _highs.vector(ub, n, "ub", default=_highs.INF, allow_pos_inf=True)
        _highs.check_bounds(self._lb, self._ub, "bounds", self._col_name)
        self._row_lo, self._row_hi = row_lo.copy(), row_hi.copy()
        self._integer: np.ndarray | None = None
        if integrality is not None:
            iv = _highs.vector(integrality, n, "integrality")
            if not np.isin(iv, (0, 1)).all():
                raise MalformedProblemError("integrality entries must be 0 (continuous) or 1 (integer)",
                                            constraint="integrality")
            self._integer = iv.astype(bool) if iv.any() else None
        self._h = _highs.new_highs(time_limit=time_limit, threads=threads)
        self._h.passModel(_highs.build_lp(self._c, A, row_lo, row_hi, self._lb, self._ub, sense,
                                          self._integer))
        self._all_cols = np.arange(n, dtype=np.int32)
        self._all_rows = np.arange(self.n_rows, dtype=np.int32)
        self.n_solves = 0

    @classmethod
    def from_ranged(
        cls,
        c: Any,
        A: Any,
        row_lower: Any,
        row_upper: Any,
        lb: Any = None,
        ub: Any = None,
        **kwargs: Any,
    ) -> LPModel:
        """Build from HiGHS's ranged rows ``row_lower <= A x <= row_upper`` (``+-inf`` allowed)."""
        c_arr = np.asarray(c, dtype=float)
        if c_arr.ndim != 1:
            raise MalformedProblemError(f"c must be 1-D, got shape {c_arr.shape}", constraint="c")
        M = _highs.matrix(A, c_arr.shape[0], "A")
        lo = _highs.vector(row_lower, M.shape[0], "row_lower", allow_neg_inf=True)
        hi = _highs.vector(row_upper, M.shape[0], "row_upper", allow_pos_inf=True)
        finite_lo = np.isfinite(lo)
        # Start with everything as ranged rows: encode via A_ub with +inf upper, then fix bounds.
        model = cls(c_arr, A_ub=M, b_ub=np.full(M.shape[0], np.inf), lb=lb, ub=ub, **kwargs)
        if "row_names" not in kwargs:
            model._row_name = lambda i: f"row {i}"
        model._m_ub = -1  # set_b_ub / set_b_eq are meaningless for a ranged model
        model.set_row_bounds(np.where(finite_lo, lo, -_highs.INF), hi)
        return model

    # ------------------------------------------------------------------------------------------
    # updates

    def _index(self, idx: Any, n: int, what: str) -> np.ndarray:
        if idx is None:
            return self._all_cols if what == "column" else self._all_rows
        arr = np.asarray(idx)
        if arr.dtype == bool:
            if arr.shape != (n,):
                raise MalformedProblemError(f"{what} mask has shape {arr.shape}, expected ({n},)",
                                            constraint=f"{what} index")
            arr = np.flatnonzero(arr)
        arr = arr.astype(np.int64).ravel()
        if arr.size and (arr.min() < 0 or arr.max() >= n):
            raise MalformedProblemError(
                f"{what} index out of range: got {int(arr.min())}..{int(arr.max())}, model has {n} {what}s",
                constraint=f"{what} index")
        return arr.astype(np.int32)

    def set_costs(self, c: Any, idx: Any = None) -> None:
        """Change objective coefficients ``c[idx] = values`` (all columns when ``idx`` is None)."""
        ix = self._index(idx, self.n_cols, "column")
        vals = _highs.vector(c, ix.shape[0], "c")
        self._c[ix] = vals
        self._h.changeColsCost(ix.shape[0], ix, np.ascontiguousarray(vals))

    def set_col_bounds(self, lower: Any = None, upper: Any = None, idx: Any = None) -> None:
        """Change variable bounds on columns ``idx`` (``None`` keeps that side unchanged)."""
        ix = self._index(idx, self.n_cols, "column")
        lo = self._lb[ix] if lower is None else _highs.vector(lower, ix.shape[0], "lb", allow_neg_inf=True)
        hi = self._ub[ix] if upper is None else _highs.vector(upper, ix.shape[0], "ub", allow_pos_inf=True)
        _highs.check_bounds(lo, hi, "bounds", lambda i: self._col_name(int(ix[i])))
        self._lb[ix], self._ub[ix] = lo, hi
        self._h.changeColsBounds(ix.shape[0], ix, np.ascontiguousarray(lo), np.ascontiguousarray(hi))

    def set_row_bounds(self, lower: Any = None, upper: Any = None, idx: Any = None) -> None:
        """Change ranged row bounds ``lower <= A[idx] x <= upper`` (``None`` keeps that side)."""
        ix = self._index(idx, self.n_rows, "row")
        lo = self._row_lo[ix] if lower is None else _highs.vector(
            lower, ix.shape[0], "row_lower", allow_neg_inf=True)
        hi = self._row_hi[ix] if upper is None else _highs.vector(
            upper, ix.shape[0], "row_upper", allow_pos_inf=True)
        _highs.check_bounds(lo, hi, "row bounds", lambda i: self._row_name(int(ix[i])))
        self._row_lo[ix], self._row_hi[ix] = lo, hi
        self._h.changeRowsBounds(  # type: ignore[attr-defined]
            ix.shape[0], ix, np.ascontiguousarray(lo), np.ascontiguousarray(hi))

    def set_b_ub(self, b_ub: Any, idx: Any = None) -> None:
        """Change right-hand sides of the ``A_ub x <= b_ub`` rows (indices within that block)."""
        if self._m_ub < 0:
            raise MalformedProblemError("set_b_ub needs a model built from A_ub/b_ub; use set_row_bounds",
                                        constraint="b_ub")
        ix = np.arange(self._m_ub) if idx is None else np.asarray(idx, dtype=np.int64).ravel()
        if ix.size and (ix.min() < 0 or ix.max() >= self._m_ub):
            raise MalformedProblemError(f"b_ub index out of range: the model has {self._m_ub} A_ub rows",
                                        constraint="b_ub")
        vals = _highs.vector(b_ub, ix.shape[0], "b_ub", allow_pos_inf=True)
        self.set_row_bounds(None, vals, ix)

    def set_b_eq(self, b_eq: Any, idx: Any = None) -> None:
        """Change right-hand sides of the ``A_eq x == b_eq`` rows (indices within that block)."""
        m_eq = self.n_rows - self._m_ub
        if self._m_ub < 0:
            raise MalformedProblemError("set_b_eq needs a model built from A_eq/b_eq; use set_row_bounds",
                                        constraint="b_eq")
        ix = np.arange(m_eq) if idx is None else np.asarray(idx, dtype=np.int64).ravel()
        if ix.size and (ix.min() < 0 or ix.max() >= m_eq):
            raise MalformedProblemError(f"b_eq index out of range: the model has {m_eq} A_eq rows",
                                        constraint="b_eq")
        vals = _highs.vector(b_eq, ix.shape[0], "b_eq")
        rows = ix + self._m_ub
        # widen first so that the intermediate state never has lower > upper
        self._row_lo[rows], self._row_hi[rows] = -_highs.INF, _highs.INF
        self.set_row_bounds(vals, vals, rows)

    @property
    def costs(self) -> np.ndarray:
        return self._c.copy()

    @property
    def highs(self) -> highspy.Highs:
        """The underlying :class:`highspy.Highs` object (for options not wrapped here)."""
        return self._h

    # ------------------------------------------------------------------------------------------

    def solve(self, *, cold: bool = False) -> LPSolution:
        """Solve (warm from the last basis unless ``cold``); raises the typed solver errors."""
        h = self._h
        if cold:
            h.clearSolver()
        t0 = time.perf_counter()
        h.run()
        seconds = time.perf_counter() - t0
        self.n_solves += 1
        status = _highs.raise_for_status(h, self._row_name, self._col_name, self._integer is not None,
                                         what=self.what)
        sol = h.getSolution()
        x = np.asarray(sol.col_value, dtype=float)
        if self._integer is not None:
            x[self._integer] = np.round(x[self._integer])
        info = h.getInfo()
        return LPSolution(
            x=x,
            objective=float(info.objective_function_value),
            status=status,
            row_activity=np.asarray(sol.row_value, dtype=float),
            row_dual=np.asarray(sol.row_dual, dtype=float),
            col_dual=np.asarray(sol.col_dual, dtype=float),
            iterations=int(info.simplex_iteration_count),
            seconds=seconds,
        )

    def solve_x(self) -> np.ndarray:
        """Solve and return only the primal solution (cheapest path for per-step use)."""
        h = self._h
        h.run()
        self.n_solves += 1
        _highs.raise_for_status(h, self._row_name, self._col_name, self._integer is not None,
                                what=self.what)
        x = np.asarray(h.getSolution().col_value, dtype=float)
        if self._integer is not None:
            x[self._integer] = np.round(x[self._integer])
        return x


__all__ = ["LPModel", "LPSolution"]
