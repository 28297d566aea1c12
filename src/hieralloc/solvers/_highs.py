"""Private helpers shared by every HiGHS-based solver: input validation, building a
:class:`highspy.HighsLp` in column-wise (CSC) form, and translating HiGHS statuses into the typed
errors of :mod:`hieralloc.solvers.errors` with messages that name the constraint at fault.

Conventions (the same as :func:`scipy.optimize.linprog`): variables default to ``0 <= x < inf``;
inequality rows are ``A_ub x <= b_ub``; equality rows ``A_eq x == b_eq``. Internally every row is
a ranged row ``row_lower <= A x <= row_upper`` as HiGHS stores it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import highspy
import numpy as np
import scipy.sparse as sp

from hieralloc.solvers.errors import (
    InfeasibleError,
    MalformedProblemError,
    SolverError,
    UnboundedError,
)

INF = float(highspy.kHighsInf)
MS = highspy.HighsModelStatus

Namer = Callable[[int], str]


def vector(
    value: Any,
    n: int,
    name: str,
    *,
    default: float | None = None,
    allow_pos_inf: bool = False,
    allow_neg_inf: bool = False,
) -> np.ndarray:
    """A float vector of length ``n`` (scalars broadcast); NaN and disallowed infinities raise."""
    if value is None:
        if default is None:
            raise MalformedProblemError(f"{name} is required", constraint=name)
        return np.full(n, float(default))
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as e:
        raise MalformedProblemError(f"{name} must be numeric: {e}", constraint=name) from None
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.ndim != 1 or arr.shape[0] != n:
        raise MalformedProblemError(
            f"{name} has shape {arr.shape}, expected ({n},) to match the number of "
            f"{'variables' if name in ('c', 'lb', 'ub', 'integrality') else 'rows'}",
            constraint=name,
        )
    if np.isnan(arr).any():
        i = int(np.flatnonzero(np.isnan(arr))[0])
        raise MalformedProblemError(f"{name}[{i}] is NaN; every entry must be a number", constraint=name)
    if not allow_pos_inf and np.isposinf(arr).any():
        i = int(np.flatnonzero(np.isposinf(arr))[0])
        raise MalformedProblemError(f"{name}[{i}] is +inf; entries must be finite", constraint=name)
    if not allow_neg_inf and np.isneginf(arr).any():
        i = int(np.flatnonzero(np.isneginf(arr))[0])
        raise MalformedProblemError(f"{name}[{i}] is -inf; entries must be finite", constraint=name)
    return arr


def quantities(value: Any, n: int, name: str, integral: bool, *, unit: str = "counts",
               nonneg: bool = True) -> np.ndarray:
    """:func:`vector` of physical quantities (vehicles, goods): non-negative unless ``nonneg`` is
    False, and integer (rounded) when ``integral``; errors name the entry and say what ``unit``
    must be."""
    arr = vector(value, n, name)
    if nonneg and (arr < 0).any():
        i = int(np.flatnonzero(arr < 0)[0])
        raise MalformedProblemError(f"{name}[{i}] = {arr[i]:g} < 0: {unit} must be non-negative",
                                    constraint=f"{name}[{i}]")
    if integral:
        off = np.abs(arr - np.round(arr)) > 1e-9
        if off.any():
            i = int(np.flatnonzero(off)[0])
            raise MalformedProblemError(
                f"{name}[{i}] = {arr[i]:g} is not an integer; integral=True needs integer {unit} "
                "(round them, or build the model with integral=False)", constraint=f"{name}[{i}]")
        arr = np.round(arr)
    return arr


def matrix(A: Any, n: int, name: str) -> sp.csr_matrix:
    """A sparse (CSR) copy of a dense or sparse matrix with ``n`` columns and finite entries."""
    if sp.issparse(A):
        M = sp.csr_matrix(A, dtype=float)
    else:
        try:
            arr = np.asarray(A, dtype=float)
        except (TypeError, ValueError) as e:
            raise MalformedProblemError(f"{name} must be a numeric matrix: {e}", constraint=name) from None
        if arr.ndim == 1 and n > 0 and arr.shape[0] == n:
            arr = arr[None, :]
        if arr.ndim != 2:
            raise MalformedProblemError(f"{name} must be 2-D, got shape {arr.shape}", constraint=name)
        M = sp.csr_matrix(arr)
    if M.shape[1] != n:
        raise MalformedProblemError(
            f"{name} has {M.shape[1]} columns but c has {n} entries; they must match", constraint=name
        )
    if not np.isfinite(M.data).all():
        bad = np.flatnonzero(~np.isfinite(M.data))[0]
        row = int(np.searchsorted(M.indptr, bad, side="right") - 1)
        raise MalformedProblemError(
            f"{name} row {row} has a non-finite coefficient ({M.data[bad]}); all must be finite",
            constraint=name,
        )
    return M


def check_bounds(lo: np.ndarray, hi: np.ndarray, what: str, namer: Namer) -> None:
    """Raise MalformedProblemError naming the first entry whose lower bound exceeds its upper."""
    bad = np.flatnonzero(lo > hi)
    if bad.size:
        i = int(bad[0])
        raise MalformedProblemError(
            f"{what} of {namer(i)}: lower bound {lo[i]:g} > upper bound {hi[i]:g}; "
            f"a lower bound must not exceed its upper bound",
            constraint=namer(i),
        )


def stack_rows(
    n: int, A_ub: Any, b_ub: Any, A_eq: Any, b_eq: Any
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray, Namer, int]:
    """Stack ``A_ub x <= b_ub`` over ``A_eq x == b_eq`` as ranged rows.

    Returns ``(A, row_lower, row_upper, row_namer, m_ub)`` where ``m_ub`` is the number of
    inequality rows (they come first).
    """
    blocks: list[sp.csr_matrix] = []
    lows: list[np.ndarray] = []
    highs: list[np.ndarray] = []
    m_ub = 0
    if (A_ub is None) != (b_ub is None):
        raise MalformedProblemError("A_ub and b_ub must be given together (one of them is None)",
                                    constraint="A_ub")
    if (A_eq is None) != (b_eq is None):
        raise MalformedProblemError("A_eq and b_eq must be given together (one of them is None)",
                                    constraint="A_eq")
    if A_ub is not None:
        M = matrix(A_ub, n, "A_ub")
        m_ub = M.shape[0]
        b = vector(b_ub, m_ub, "b_ub", allow_pos_inf=True)
        blocks.append(M)
        lows.append(np.full(m_ub, -INF))
        highs.append(b)
    if A_eq is not None:
        M = matrix(A_eq, n, "A_eq")
        b = vector(b_eq, M.shape[0], "b_eq")
        blocks.append(M)
        lows.append(b)
        highs.append(b)
    if blocks:
        A = sp.csr_matrix(sp.vstack(blocks, format="csr"))
        lo, hi = np.concatenate(lows), np.concatenate(highs)
    else:
        A = sp.csr_matrix((0, n))
        lo = hi = np.zeros(0)

    def namer(i: int) -> str:
        return f"A_ub row {i}" if i < m_ub else f"A_eq row {i - m_ub}"

    return A, lo, hi, namer, m_ub


def default_col_namer(i: int) -> str:
    return f"x[{i}]"


def names_to_namer(names: Sequence[str] | Namer | None, fallback: Namer) -> Namer:
    if names is None:
        return fallback
    if callable(names):
        return names
    seq = list(names)
    return lambda i: seq[i] if 0 <= i < len(seq) else fallback(i)


def build_lp(
    c: np.ndarray,
    A: sp.spmatrix,
    row_lo: np.ndarray,
    row_hi: np.ndarray,
    col_lo: np.ndarray,
    col_hi: np.ndarray,
    sense: str,
    integer: np.ndarray | None = None,
) -> highspy.HighsLp:
    """A HighsLp (column-wise matrix) for ``opt c@x  s.t. row_lo <= A x <= row_hi, col_lo <= x <= col_hi``."""
    csc = sp.csc_matrix(A)
    csc.sort_indices()
    lp = highspy.HighsLp()
    lp.num_col_ = int(c.shape[0])
    lp.num_row_ = int(csc.shape[0])
    lp.col_cost_ = np.ascontiguousarray(c, dtype=float)
    lp.col_lower_ = np.ascontiguousarray(col_lo, dtype=float)
    lp.col_upper_ = np.ascontiguousarray(col_hi, dtype=float)
    lp.row_lower_ = np.ascontiguousarray(row_lo, dtype=float)
    lp.row_upper_ = np.ascontiguousarray(row_hi, dtype=float)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = csc.indptr.astype(np.int32)
    lp.a_matrix_.index_ = csc.indices.astype(np.int32)
    lp.a_matrix_.value_ = csc.data.astype(float)
    lp.sense_ = highspy.ObjSense.kMaximize if sense == "max" else highspy.ObjSense.kMinimize
    if integer is not None and integer.any():
        lp.integrality_ = [
            highspy.HighsVarType.kInteger if b else highspy.HighsVarType.kContinuous for b in integer
        ]
    return lp


def new_highs(time_limit: float | None = None, mip_rel_gap: float | None = None,
              threads: int | None = None) -> highspy.Highs:
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    if time_limit is not None:
        h.setOptionValue("time_limit", float(time_limit))
    if mip_rel_gap is not None:
        h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
    if threads is not None:
        h.setOptionValue("threads", int(threads))
    return h


def check_sense(sense: str) -> str:
    if sense not in ("min", "max"):
        raise MalformedProblemError(f"sense must be 'min' or 'max', got {sense!r}", constraint="sense")
    return sense


def explain_infeasible(h: highspy.Highs, row_name: Namer, col_name: Namer, mip: bool) -> str:
    """Best-effort list of the conflicting constraints (HiGHS's irreducible infeasible subset)."""
    try:
        if mip:
            # Diagnose the LP relaxation: if it is feasible, integrality is the culprit.
            lp = h.getLp()
            probe = new_highs(time_limit=5.0)
            lp.integrality_ = []
            probe.passModel(lp)
            probe.run()
            if probe.getModelStatus() != MS.kInfeasible:
                return ("the LP relaxation is feasible, so the integrality requirements cannot be met "
                        "together with the constraints")
            h = probe
        h.setOptionValue("iis_strategy", 2)
        status, iis = h.getIis()
        if status != highspy.HighsStatus.kOk or not iis.valid_:
            return ""
        rows = [row_name(int(i)) for i in iis.row_index_]
        cols = [col_name(int(j)) for j in iis.col_index_]
    except Exception:  # pragma: no cover - diagnosis is best-effort only
        return ""
    parts = []
    if rows:
        parts.append("constraints " + ", ".join(rows[:8]) + (" ..." if len(rows) > 8 else ""))
    if cols:
        parts.append("bounds of " + ", ".join(cols[:8]) + (" ..." if len(cols) > 8 else ""))
    return "conflict between " + " and ".join(parts) if parts else ""


def explain_unbounded(h: highspy.Highs, col_name: Namer) -> str:
    """Name the variables along which the objective improves without limit (best effort)."""
    try:
        ok, has_ray, ray = h.getPrimalRay()  # type: ignore[attr-defined]
        if has_ray:
            ray = np.asarray(ray, dtype=float)
            cols = [col_name(int(j)) for j in np.flatnonzero(np.abs(ray) > 1e-9)]
            if cols:
                return ("the objective improves without limit along " + ", ".join(cols[:8])
                        + (" ..." if len(cols) > 8 else "") + "; bound these variables or constrain them")
        lp = h.getLp()
        c = np.asarray(lp.col_cost_, dtype=float)
        if lp.sense_ == highspy.ObjSense.kMaximize:
            c = -c
        lo, hi = np.asarray(lp.col_lower_, dtype=float), np.asarray(lp.col_upper_, dtype=float)
        free = np.flatnonzero(((c < 0) & np.isposinf(hi)) | ((c > 0) & np.isneginf(lo)))
        if free.size:
            cols = [col_name(int(j)) for j in free]
            return ("the objective improves as " + ", ".join(cols[:8]) + (" ..." if len(cols) > 8 else "")
                    + " grow without a bound in that direction; add finite bounds or constraints")
    except Exception:  # pragma: no cover
        pass
    return "add finite bounds to the variables or constraints that limit the objective"


def raise_for_status(
    h: highspy.Highs,
    row_name: Namer,
    col_name: Namer,
    mip: bool,
    what: str = "problem",
) -> str:
    """Map the HiGHS model status after ``run()`` to 'optimal' / 'time_limit' or a typed error."""
    st = h.getModelStatus()
    if st == MS.kOptimal:
        return "optimal"
    if st == MS.kModelEmpty:
        return "optimal"
    if st == MS.kInfeasible:
        why = explain_infeasible(h, row_name, col_name, mip)
        raise InfeasibleError(f"{what} is infeasible" + (f": {why}" if why else ""))
    if st == MS.kUnbounded:
        raise UnboundedError(f"{what} is unbounded: {explain_unbounded(h, col_name)}")
    if st == MS.kUnboundedOrInfeasible:
        # Decide by solving the feasibility problem (zero objective) without presolve.
        lp = h.getLp()
        probe = new_highs(time_limit=30.0)
        lp.col_cost_ = np.zeros(lp.num_col_)
        probe.passModel(lp)
        probe.setOptionValue("presolve", "off")
        probe.run()
        if probe.getModelStatus() == MS.kInfeasible:
            why = explain_infeasible(probe, row_name, col_name, mip)
            raise InfeasibleError(f"{what} is infeasible" + (f": {why}" if why else ""))
        lp = h.getLp()
        probe = new_highs(time_limit=30.0)
        lp.integrality_ = []
        probe.passModel(lp)
        probe.setOptionValue("presolve", "off")
        probe.run()
        raise UnboundedError(f"{what} is unbounded: {explain_unbounded(probe, col_name)}")
    if st in (MS.kTimeLimit, MS.kIterationLimit, MS.kSolutionLimit, MS.kInterrupt):
        if h.getInfo().primal_solution_status == 2:  # kSolutionStatusFeasible
            return "time_limit"
        raise SolverError(
            f"{what}: the solver stopped ({h.modelStatusToString(st)}) before finding any feasible "
            f"solution; raise time_limit"
        )
    raise SolverError(f"{what}: HiGHS failed with status '{h.modelStatusToString(st)}'")
