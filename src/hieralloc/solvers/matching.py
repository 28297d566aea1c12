r"""Max-weight perfect matching of agents (teams) with optional sit-outs (Pairing Sec. 3.2, Sec. 4).

The Pairing paper's greedy policy over options solves (Sec. 3.2)::

    max_a   sum_{t1} sum_{t2} a_{t1,t2} psi(t1, t2)
    s.t.    a_{t1,t2} in {0, 1},   a_{t1,t2} = a_{t2,t1},
            sum_{t1 != t2} a_{t1,t2} = 1          for every t2

and Sec. 4 lets a team skip a week, written as the pair ``(k, k)``, i.e. the diagonal
``a_{kk} = 1``. With one variable per unordered pair ``y_{ij}`` (``i < j``) and one per
sit-out ``s_i``::

    max     sum_{i<j} (W_ij + W_ji) y_ij + sum_i W_ii s_i
    s.t.    sum_{j != i} y_{min(i,j),max(i,j)} + s_i = 1     for every agent i
            sum_i s_i <= max_sit_outs                        (if given)
            y, s in {0, 1};   s_i = 0 unless sit-outs are allowed;  y_ij = 0 if W_ij or W_ji = -inf

``a = y + y^T + diag(s)`` recovers the paper's symmetric matrix and the objective is exactly
``sum(W * a)``, so :attr:`MatchingResult.x` is a valid solver output for the differentiable
wrappers (cost and solution have the same shape). The LP relaxation of non-bipartite matching
can be fractional (odd cycles), so the problem is solved as a MILP with
:func:`scipy.optimize.milp` (HiGHS branch-and-cut).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from hieralloc.solvers.errors import InfeasibleError, MalformedProblemError, SolverError


@dataclass
class MatchingResult:
    """A matching of ``n`` agents into pairs (plus sit-outs).

    Attributes:
        pairs: list of ``(i, j)`` with ``i < j``, sorted.
        sit_out: sorted list of agents that sit out.
        partner: ``(n,)`` int, ``partner[i] = j`` for a pair, ``i`` for a sit-out.
        x: ``(n, n)`` symmetric 0/1 matrix ``a`` of the paper (diagonal = sit-outs).
        value: the objective: ``W_ij + W_ji`` per pair plus the sit-out value of each sit-out
            (``== sum(W * x)`` when the sit-out values are the diagonal of ``W``, the default).
        optimal: False only when a time limit stopped the search first.
    """

    pairs: list[tuple[int, int]]
    sit_out: list[int]
    partner: np.ndarray
    x: np.ndarray
    value: float
    optimal: bool


def max_weight_matching(
    weights: Any,
    *,
    allow_sit_out: bool = False,
    sit_out_value: Any = None,
    max_sit_outs: int | None = None,
    time_limit: float | None = None,
) -> MatchingResult:
    r"""Max-weight perfect matching, optionally letting agents sit out.

    .. math::

        \max_{a\in\{0,1\}^{n\times n},\,a=a^\top} \sum_{ij} W_{ij} a_{ij}\;\text{s.t.}\;
        \sum_j a_{ij} = 1\;\forall i,\quad a_{ii}=0 \text{ unless sit-outs are allowed},\quad
        \textstyle\sum_i a_{ii}\le \text{max\_sit\_outs}.

    Args:
        weights: ``(n, n)`` pair values ``W`` (the paper's ``psi(t1, t2)``); a pair ``{i, j}``
            is worth ``W_ij + W_ji``. ``-inf`` forbids a pair; NaN/``+inf`` are rejected.
        allow_sit_out: let agents sit out (Pairing Sec. 4); with an odd ``n`` at least one must.
        sit_out_value: value of sitting out, scalar or ``(n,)``; default the diagonal of ``W``
            (``-inf`` forbids that agent from sitting out).
        max_sit_outs: at most this many sit-outs (e.g. ``n % 2`` for "only when odd").
        time_limit: seconds for the MILP (best matching found is returned, ``optimal=False``).

    Raises:
        MalformedProblemError: non-square/NaN/``+inf`` weights, bad ``sit_out_value``.
        InfeasibleError: odd ``n`` without sit-outs (``"5 agents is odd: ..."``), an agent with
            no allowed partner, or forbidden pairs that leave no perfect matching.
    """
    try:
        W = np.array(weights, dtype=float)
    except (TypeError, ValueError) as e:
        raise MalformedProblemError(f"weights must be a numeric matrix: {e}", constraint="weights") from None
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise MalformedProblemError(f"weights must be a square (n, n) matrix, got shape {W.shape}",
                                    constraint="weights")
    n = W.shape[0]
    if np.isnan(W).any() or np.isposinf(W).any():
        i, j = np.argwhere(np.isnan(W) | np.isposinf(W))[0]
        raise MalformedProblemError(f"weights[{i}, {j}] = {W[i, j]}: weights must be finite or -inf "
                                    "(forbidden pair)", constraint="weights")
    if sit_out_value is None:
        sv = np.diag(W).copy()
    else:
        sv = np.asarray(sit_out_value, dtype=float)
        if sv.ndim == 0:
            sv = np.full(n, float(sv))
        if sv.shape != (n,) or np.isnan(sv).any() or np.isposinf(sv).any():
            raise MalformedProblemError(
                f"sit_out_value must be a scalar or ({n},) of finite values or -inf, got {sv!r}",
                constraint="sit_out_value")
    if max_sit_outs is not None and max_sit_outs < 0:
        raise MalformedProblemError(f"max_sit_outs must be >= 0, got {max_sit_outs}",
                                    constraint="max_sit_outs")
    can_sit = np.full(n, allow_sit_out) & np.isfinite(sv)
    if max_sit_outs == 0:
        can_sit[:] = False
    if n == 0:
        return MatchingResult([], [], np.zeros(0, dtype=np.int64), np.zeros((0, 0)), 0.0, True)
    if n % 2 == 1 and not can_sit.any():
        why = ("allow_sit_out=False" if not allow_sit_out else
               "max_sit_outs=0" if max_sit_outs == 0 else "every sit_out_value is -inf")
        raise InfeasibleError(
            f"{n} agents is odd: a perfect matching pairs everyone, so one must sit out, but {why}; "
            "pass allow_sit_out=True (with max_sit_outs >= 1)", constraint="perfect matching")

    iu, ju = np.triu_indices(n, k=1)
    pair_ok = np.isfinite(W[iu, ju]) & np.isfinite(W[ju, iu])
    iu, ju = iu[pair_ok], ju[pair_ok]
    npair = iu.shape[0]
    sit_idx = np.flatnonzero(can_sit)
    nsit = sit_idx.shape[0]
    has_option = np.zeros(n, dtype=bool)
    has_option[iu] = True
    has_option[ju] = True
    has_option[sit_idx] = True
    lonely = np.flatnonzero(~has_option)
    if lonely.size:
        i = int(lonely[0])
        raise InfeasibleError(
            f"agent {i} has no allowed partner (every pair with it is -inf) and may not sit out; "
            "allow a pair or a sit-out", constraint=f"agent {i}")

    c = np.concatenate([W[iu, ju] + W[ju, iu], sv[sit_idx]])
    nv = npair + nsit
    k = np.arange(npair)
    rows = np.concatenate([iu, ju, sit_idx])
    cols = np.concatenate([k, k, npair + np.arange(nsit)])
    A = sp.csr_matrix((np.ones(rows.shape[0]), (rows, cols)), shape=(n, nv))
    constraints = [LinearConstraint(A, np.ones(n), np.ones(n))]
    if max_sit_outs is not None and nsit:
        row = np.zeros((1, nv))
        row[0, npair:] = 1.0
        constraints.append(LinearConstraint(row, -np.inf, float(max_sit_outs)))
    options: dict[str, Any] = {"disp": False}
    if time_limit is not None:
        options["time_limit"] = float(time_limit)
    res = milp(-c, constraints=constraints, integrality=np.ones(nv), bounds=Bounds(0, 1), options=options)
    if res.status == 2:
        raise InfeasibleError(
            "no perfect matching exists: the forbidden pairs (-inf weights)"
            + (" and sit-out limits" if allow_sit_out else "")
            + " leave some agents without a partner; allow more pairs or sit-outs",
            constraint="perfect matching")
    if res.x is None:
        raise SolverError(f"max-weight matching: the MILP stopped without a solution ({res.message})")
    sol = np.round(res.x).astype(bool)
    partner = np.arange(n)
    pairs = sorted((int(a), int(b)) for a, b in zip(iu[sol[:npair]], ju[sol[:npair]], strict=True))
    for a, b in pairs:
        partner[a], partner[b] = b, a
    sit = sorted(int(i) for i in sit_idx[sol[npair:]])
    x = np.zeros((n, n))
    for a, b in pairs:
        x[a, b] = x[b, a] = 1.0
    x[sit, sit] = 1.0
    value = float(c[sol].sum())
    return MatchingResult(pairs=pairs, sit_out=sit, partner=partner, x=x, value=value,
                          optimal=res.status == 0)


__all__ = ["MatchingResult", "max_weight_matching"]
