"""One-shot LP / MILP solve with HiGHS (``highspy`` directly): the exact oracle behind the other
solvers and the fallback for any problem without a specialised solver.

For repeated solves of the same structure with changing data use
:class:`hieralloc.solvers.lp.LPModel`, which keeps the HiGHS model (and its basis) alive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from hieralloc.solvers import _highs
from hieralloc.solvers.errors import MalformedProblemError


@dataclass
class MilpResult:
    """Result of :func:`solve_milp`.

    Attributes:
        x: the best solution found (integer columns rounded to the nearest integer).
        objective: ``c @ x`` in the caller's sense.
        bound: best proven dual bound in the caller's sense (for ``max`` an upper bound on the
            optimum, for ``min`` a lower bound); for an LP solved to optimality it equals
            ``objective`` (an LP stopped by the time limit reports ``+-inf``: nothing proven).
        gap: relative gap ``|objective - bound| / max(|objective|, 1e-10)`` (0 when equal).
        status: ``'optimal'`` (within ``mip_rel_gap``) or ``'time_limit'`` (best feasible
            solution found when the limit was hit).
        optimal: ``status == 'optimal'``.
    """

    x: np.ndarray
    objective: float
    bound: float
    gap: float
    status: str
    optimal: bool


def solve_milp(
    c: Any,
    A_ub: Any = None,
    b_ub: Any = None,
    A_eq: Any = None,
    b_eq: Any = None,
    lb: Any = None,
    ub: Any = None,
    integrality: Any = None,
    sense: Literal["min", "max"] = "min",
    time_limit: float | None = None,
    mip_rel_gap: float = 1e-6,
) -> MilpResult:
    r"""Solve a (mixed-integer) linear program with HiGHS.

    .. math::

        \min_x / \max_x \; c^\top x \quad \text{s.t.}\quad
        A_{ub} x \le b_{ub},\; A_{eq} x = b_{eq},\; lb \le x \le ub,\;
        x_j \in \mathbb{Z} \text{ for } integrality_j = 1.

    Args:
        c: objective coefficients, shape ``(n,)``.
        A_ub, b_ub: inequality rows (dense array or ``scipy.sparse``; ``b_ub`` may contain ``+inf``).
        A_eq, b_eq: equality rows.
        lb, ub: variable bounds, scalar or ``(n,)``; defaults ``0`` and ``+inf`` (as in scipy);
            ``-inf``/``+inf`` allowed.
        integrality: ``None`` for an LP, else ``(n,)`` of 0 (continuous) / 1 (integer), or a scalar.
        sense: ``'min'`` or ``'max'``.
        time_limit: seconds; when hit, the best feasible solution is returned with
            ``status='time_limit'``.
        mip_rel_gap: relative optimality gap at which branch-and-bound stops.

    Raises:
        MalformedProblemError: shape mismatch, NaN, non-finite matrix entry, ``lb > ub``,
            bad option.
        InfeasibleError: no feasible point (message lists an irreducible conflicting subset of
            rows ``A_ub row i`` / ``A_eq row j`` where HiGHS can compute one).
        UnboundedError: the objective is unbounded (message names the free direction).
        SolverError: the solver stopped without any feasible solution.
    """
    _highs.check_sense(sense)
    try:
        c_arr = np.asarray(c, dtype=float)
    except (TypeError, ValueError) as e:
        raise MalformedProblemError(f"c must be a numeric vector: {e}", constraint="c") from None
    if c_arr.ndim != 1:
        raise MalformedProblemError(f"c must be 1-D, got shape {c_arr.shape}", constraint="c")
    n = c_arr.shape[0]
    c_arr = _highs.vector(c_arr, n, "c")
    if time_limit is not None and not (np.isfinite(time_limit) and time_limit > 0):
        raise MalformedProblemError(f"time_limit must be a positive number of seconds, got {time_limit!r}",
                                    constraint="time_limit")
    if not (np.isfinite(mip_rel_gap) and mip_rel_gap >= 0):
        raise MalformedProblemError(f"mip_rel_gap must be >= 0, got {mip_rel_gap!r}",
                                    constraint="mip_rel_gap")
    A, row_lo, row_hi, row_name, _ = _highs.stack_rows(n, A_ub, b_ub, A_eq, b_eq)
    lo = _highs.vector(lb, n, "lb", default=0.0, allow_neg_inf=True)
    hi = _highs.vector(ub, n, "ub", default=_highs.INF, allow_pos_inf=True)
    _highs.check_bounds(lo, hi, "bounds", _highs.default_col_namer)
    integer = None
    if integrality is not None:
        iv = _highs.vector(integrality, n, "integrality")
        if not np.isin(iv, (0, 1)).all():
            j = int(np.flatnonzero(~np.isin(iv, (0, 1)))[0])
            raise MalformedProblemError(
                f"integrality[{j}] = {iv[j]:g}; only 0 (continuous) and 1 (integer) are supported",
                constraint="integrality")
        integer = iv.astype(bool)
        if not integer.any():
            integer = None
    mip = integer is not None

    h = _highs.new_highs(time_limit=time_limit, mip_rel_gap=mip_rel_gap)
    h.passModel(_highs.build_lp(c_arr, A, row_lo, row_hi, lo, hi, sense, integer))
    h.run()
    status = _highs.raise_for_status(h, row_name, _highs.default_col_namer, mip, what="MILP" if mip else "LP")
    x = np.asarray(h.getSolution().col_value, dtype=float)
    if n == 0:
        x = np.zeros(0)
    if integer is not None:
        x[integer] = np.round(x[integer])
    objective = float(c_arr @ x)
    info = h.getInfo()
    if mip:
        bound = float(info.mip_dual_bound)
        if not np.isfinite(bound):
            bound = objective if status == "optimal" else bound
    elif status == "optimal":
        bound = objective
    else:  # an LP stopped early proves no bound
        bound = np.inf if sense == "max" else -np.inf
    diff = abs(objective - bound)
    gap = 0.0 if diff <= 1e-12 else float(diff / max(abs(objective), 1e-10))  # inf when bound is inf
    return MilpResult(x=x, objective=objective, bound=bound, gap=gap, status=status,
                      optimal=status == "optimal")


__all__ = ["MilpResult", "solve_milp"]
