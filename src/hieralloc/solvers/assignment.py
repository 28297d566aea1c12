r"""Capacitated agent-task assignment (LPMARL Eq. (4)-(7)).

Formulation (``n`` agents, ``m`` tasks, score matrix ``S``)::

    max_x   sum_ij S_ij x_ij                                  # LPMARL Eq. (4)
    s.t.    sum_j x_ij = 1                for every agent i   # Eq. (6): each agent exactly one task
            l_j <= sum_i x_ij <= k_j      for every task j    # Eq. (5) capacity k_j, optional minimum l_j
            x_ij = 0                      for forbidden (i, j)
            0 <= x_ij <= 1                                    # Eq. (7)

The constraint matrix is the incidence matrix of a bipartite graph (agents x tasks), which is
totally unimodular; with integer ``k`` and ``l`` every vertex of the polytope is a 0/1 matrix, so
the LP optimum returned by the simplex method *is* an optimal assignment. We verify integrality
and round (tolerance 1e-6); a fractional vertex would raise :class:`SolverError`.

Three paths, one answer (the optimal objective; ties may be broken differently):

* ``method='fast'``: expand task ``j`` into ``min(k_j, n)`` identical slots and solve the
  rectangular assignment problem ``n x sum_j k_j`` with :func:`scipy.optimize.linear_sum_assignment`
  (Jonker-Volgenant). Handles capacities and forbidden pairs; not minimum loads.
* ``method='lp'``: the LP above with HiGHS (any side constraint).
* :class:`AssignmentModel`: the same LP built once and re-solved warm when only the scores change
  (LPMARL solves it every step with costs from a GNN).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment

from hieralloc.solvers.errors import InfeasibleError, MalformedProblemError, SolverError
from hieralloc.solvers.lp import LPModel

INTEGRALITY_TOL = 1e-6


@dataclass
class AssignmentResult:
    """An assignment of every agent to one task.

    Attributes:
        task: ``(n_agents,)`` int, the task of each agent.
        x: ``(n_agents, n_tasks)`` 0/1 float matrix, ``x[i, task[i]] = 1``.
        objective: ``sum(scores * x)``.
        loads: ``(n_tasks,)`` int, agents per task.
    """

    task: np.ndarray
    x: np.ndarray
    objective: float
    loads: np.ndarray


def _scores(scores: Any) -> np.ndarray:
    try:
        S = np.asarray(scores, dtype=float)
    except (TypeError, ValueError) as e:
        raise MalformedProblemError(f"scores must be a numeric matrix: {e}", constraint="scores") from None
    if S.ndim != 2:
        raise MalformedProblemError(f"scores must be a 2-D (agents x tasks) matrix, got shape {S.shape}",
                                    constraint="scores")
    if S.shape[1] == 0 and S.shape[0] > 0:
        raise InfeasibleError(f"there are no tasks for {S.shape[0]} agents: every agent needs a task",
                              constraint="tasks")
    if not np.isfinite(S).all():
        i, j = np.argwhere(~np.isfinite(S))[0]
        raise MalformedProblemError(
            f"scores[{i}, {j}] = {S[i, j]}: scores must be finite (use forbidden= to disallow a pair)",
            constraint="scores")
    return S


def _int_vector(value: Any, m: int, name: str, default: int) -> np.ndarray:
    if value is None:
        return np.full(m, default, dtype=np.int64)
    if isinstance(value, np.ndarray) and value.dtype.kind in "iu" and value.shape == (m,):
        if (value < 0).any():
            j = int(np.flatnonzero(value < 0)[0])
            raise MalformedProblemError(f"{name}[{j}] = {value[j]} < 0: {name} must be non-negative",
                                        constraint=name)
        return value.astype(np.int64, copy=False)
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        arr = np.full(m, float(arr))
    if arr.shape != (m,):
        raise MalformedProblemError(f"{name} has shape {arr.shape}, expected ({m},): one entry per task",
                                    constraint=name)
    if not np.isfinite(arr).all():
        j = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise MalformedProblemError(f"{name}[{j}] = {arr[j]} must be a finite integer", constraint=name)
    if (arr < 0).any():
        j = int(np.flatnonzero(arr < 0)[0])
        raise MalformedProblemError(f"{name}[{j}] = {arr[j]:g} < 0: {name} must be non-negative",
                                    constraint=name)
    if (np.abs(arr - np.round(arr)) > 1e-9).any():
        j = int(np.flatnonzero(np.abs(arr - np.round(arr)) > 1e-9)[0])
        raise MalformedProblemError(f"{name}[{j}] = {arr[j]:g} must be an integer number of agents",
                                    constraint=name)
    return np.round(arr).astype(np.int64)


def _forbidden(value: Any, n: int, m: int) -> np.ndarray | None:
    if value is None:
        return None
    F = np.asarray(value)
    if F.shape != (n, m):
        raise MalformedProblemError(f"forbidden has shape {F.shape}, expected ({n}, {m}) like scores",
                                    constraint="forbidden")
    F = F.astype(bool)
    return F if F.any() else None


def check_assignment_feasible(
    n: int, capacity: np.ndarray, min_load: np.ndarray, forbidden: np.ndarray | None
) -> None:
    """Raise InfeasibleError / MalformedProblemError for the infeasibilities that can be named
    without solving: capacities too small, minimums too large, agents or tasks cut off."""
    cap_sum = int(np.minimum(capacity, n).sum())
    if cap_sum < n:
        raise InfeasibleError(
            f"capacity sum {cap_sum} < {n} agents: every agent needs a task; raise capacities",
            constraint="capacity")
    bad = np.flatnonzero(min_load > capacity) if min_load.any() else np.zeros(0, dtype=np.int64)
    if bad.size:
        j = int(bad[0])
        raise MalformedProblemError(
            f"task {j}: min_load {min_load[j]} > capacity {capacity[j]}; "
            "a minimum cannot exceed the capacity",
            constraint=f"min_load[{j}]")
    if min_load.sum() > n:
        raise InfeasibleError(
            f"per-task minimums sum to {int(min_load.sum())} > {n} agents: not enough agents; lower min_load",
            constraint="min_load")
    if forbidden is not None:
        allowed = ~forbidden
        none_allowed = np.flatnonzero(~allowed.any(axis=1))
        if none_allowed.size:
            i = int(none_allowed[0])
            raise InfeasibleError(
                f"agent {i} has every task forbidden: it must take exactly one task; allow at least one",
                constraint=f"agent {i}")
        per_task = allowed.sum(axis=0)
        room = int(np.minimum(np.minimum(capacity, n), per_task).sum())
        if room < n:
            raise InfeasibleError(
                f"forbidden pairs leave room for at most {room} of {n} agents (task j takes at most "
                "min(capacity_j, agents allowed on j)); raise capacities or allow more pairs",
                constraint="forbidden")
        short = np.flatnonzero(per_task < min_load)
        if short.size:
            j = int(short[0])
            raise InfeasibleError(
                f"task {j} needs at least {min_load[j]} agents but only {per_task[j]} may take it "
                f"(forbidden pairs); lower min_load[{j}] or allow more pairs",
                constraint=f"min_load[{j}]")


def _result(S: np.ndarray, task: np.ndarray) -> AssignmentResult:
    n, m = S.shape
    rows = np.arange(n)
    x = np.zeros((n, m))
    x[rows, task] = 1.0
    return AssignmentResult(task=task, x=x, objective=float(S[rows, task].sum()),
                            loads=np.bincount(task, minlength=m))


def assign_capacitated(
    scores: Any,
    capacity: Any = None,
    *,
    min_load: Any = None,
    forbidden: Any = None,
    method: Literal["auto", "fast", "lp"] = "auto",
) -> AssignmentResult:
    r"""Assign every agent to exactly one task, maximising the total score.

    .. math::

        \max_{x\in\{0,1\}^{n\times m}} \sum_{ij} S_{ij}x_{ij}\;\;\text{s.t.}\;\;
        \sum_j x_{ij}=1\;\forall i,\quad l_j \le \sum_i x_{ij}\le k_j\;\forall j,\quad
        x_{ij}=0\;\forall (i,j)\in F.

    Args:
        scores: ``(n_agents, n_tasks)`` finite scores (to minimise costs pass ``-cost``).
        capacity: ``k``: an int or ``(n_tasks,)`` non-negative ints; ``None`` = unlimited.
        min_load: ``l``: per-task minimum number of agents (``None`` = 0). LP path only.
        forbidden: ``(n_agents, n_tasks)`` bool mask ``F`` of disallowed pairs.
        method: ``'fast'`` (capacity-expanded :func:`~scipy.optimize.linear_sum_assignment`),
            ``'lp'`` (HiGHS), or ``'auto'`` (fast unless ``min_load`` is given).

    Raises:
        MalformedProblemError: non-finite scores, bad shapes, negative/non-integer capacities,
            ``min_load > capacity``, unknown method, or ``min_load`` with ``method='fast'``.
        InfeasibleError: e.g. ``"capacity sum 7 < 9 agents: every agent needs a task; raise
            capacities"``, minimums above the number of agents, an agent with every task
            forbidden, or (from HiGHS) the conflicting agent/task rows.
    """
    S = _scores(scores)
    n, m = S.shape
    cap = _int_vector(capacity, m, "capacity", n)
    lo = _int_vector(min_load, m, "min_load", 0)
    F = _forbidden(forbidden, n, m)
    if method not in ("auto", "fast", "lp"):
        raise MalformedProblemError(f"method must be 'auto', 'fast' or 'lp', got {method!r}",
                                    constraint="method")
    check_assignment_feasible(n, cap, lo, F)
    if n == 0:
        return _result(S, np.zeros(0, dtype=np.int64))
    has_min = bool(lo.any())
    if method == "fast" and has_min:
        raise MalformedProblemError("min_load needs method='lp' (or 'auto'); the fast path has no minimums",
                                    constraint="min_load")
    if method == "fast" or (method == "auto" and not has_min):
        return _assign_fast(S, cap, F)
    model = AssignmentModel(n, m, cap, min_load=lo, forbidden=F)
    return model.solve(S)


def _assign_fast(S: np.ndarray, cap: np.ndarray, F: np.ndarray | None) -> AssignmentResult:
    n, m = S.shape
    slots = np.repeat(np.arange(m), np.minimum(cap, n))  # task of each slot
    C = S[:, slots]
    if F is not None:
        # a forbidden pair gets a score below any feasible total, so it is only chosen when no
        # assignment avoids forbidden pairs (detected below)
        span = float(np.abs(S).max()) if S.size else 0.0
        C = np.where(F[:, slots], -(2.0 * n * (span + 1.0)), C)
    _, cols = linear_sum_assignment(C, maximize=True)  # rows come back as 0..n-1 (n <= slots)
    task = slots[cols]
    if F is not None and F[np.arange(n), task].any():
        i = int(np.flatnonzero(F[np.arange(n), task])[0])
        raise InfeasibleError(
            f"no assignment avoids the forbidden pairs within the capacities (agent {i} cannot be placed); "
            "allow more pairs or raise capacities", constraint=f"agent {i}")
    return _result(S, task)


class AssignmentModel:
    r"""The capacitated assignment LP built once in HiGHS, re-solved warm for new scores.

    Same formulation as :func:`assign_capacitated` (maximise ``sum S_ij x_ij``, each agent one
    task, ``min_load_j <= load_j <= capacity_j``, forbidden pairs fixed to 0). Variables are
    ``x.ravel()`` (row-major: index ``i * n_tasks + j``). Capacities, minimums and forbidden
    pairs can be changed between solves too (they only change bounds).

    Example::

        model = AssignmentModel(n_agents=8, n_tasks=3, capacity=[3, 3, 2])
        for scores in stream:            # e.g. GNN outputs each step (LPMARL Eq. (4))
            result = model.solve(scores)
    """

    def __init__(
        self,
        n_agents: int,
        n_tasks: int,
        capacity: Any = None,
        *,
        min_load: Any = None,
        forbidden: Any = None,
    ) -> None:
        if int(n_agents) < 0 or int(n_tasks) < 1:
            raise MalformedProblemError(
                f"need n_agents >= 0 and n_tasks >= 1, got {n_agents} x {n_tasks}", constraint="shape")
        n, m = int(n_agents), int(n_tasks)
        self.n_agents, self.n_tasks = n, m
        self.capacity = _int_vector(capacity, m, "capacity", n)
        self.min_load = _int_vector(min_load, m, "min_load", 0)
        self.forbidden = _forbidden(forbidden, n, m)
        check_assignment_feasible(n, self.capacity, self.min_load, self.forbidden)
        k = np.arange(n * m)
        agent_rows = sp.csr_matrix((np.ones(n * m), (k // m, k)), shape=(n, n * m))
        task_rows = sp.csr_matrix((np.ones(n * m), (k % m, k)), shape=(m, n * m))
        A = sp.vstack([agent_rows, task_rows], format="csr")
        lower = np.concatenate([np.ones(n), self.min_load.astype(float)])
        upper = np.concatenate([np.ones(n), self.capacity.astype(float)])
        ub = np.ones(n * m) if self.forbidden is None else (~self.forbidden).ravel().astype(float)

        def row_name(r: int) -> str:
            if r < n:
                return f"agent {r} takes exactly one task"
            j = r - n
            return f"load of task {j} in [{self.min_load[j]}, {self.capacity[j]}]"

        self._model = LPModel.from_ranged(
            np.zeros(n * m), A, lower, upper, lb=0.0, ub=ub, sense="max",
            row_names=row_name, col_names=lambda c: f"x[agent {c // m}, task {c % m}]",
            what="capacitated assignment LP")

    def set_capacity(self, capacity: Any = None, min_load: Any = None) -> None:
        """Change capacities and/or per-task minimums (``None`` keeps the current value)."""
        n, m = self.n_agents, self.n_tasks
        cap = self.capacity if capacity is None else _int_vector(capacity, m, "capacity", n)
        lo = self.min_load if min_load is None else _int_vector(min_load, m, "min_load", 0)
        check_assignment_feasible(n, cap, lo, self.forbidden)
        self.capacity, self.min_load = cap, lo
        self._model.set_row_bounds(lo.astype(float), cap.astype(float), np.arange(n, n + m))

    def set_forbidden(self, forbidden: Any) -> None:
        """Replace the forbidden-pair mask (``None`` allows every pair)."""
        F = _forbidden(forbidden, self.n_agents, self.n_tasks)
        check_assignment_feasible(self.n_agents, self.capacity, self.min_load, F)
        self.forbidden = F
        ub = np.ones(self.n_agents * self.n_tasks) if F is None else (~F).ravel().astype(float)
        self._model.set_col_bounds(None, ub)

    def solve(self, scores: Any) -> AssignmentResult:
        """Solve for new scores ``(n_agents, n_tasks)`` (warm from the previous basis)."""
        S = _scores(scores)
        if S.shape != (self.n_agents, self.n_tasks):
            raise MalformedProblemError(
                f"scores has shape {S.shape}, the model was built for ({self.n_agents}, {self.n_tasks})",
                constraint="scores")
        if self.n_agents == 0:
            return _result(S, np.zeros(0, dtype=np.int64))
        self._model.set_costs(S.ravel())
        x = self._model.solve_x().reshape(S.shape)
        frac = np.abs(x - np.round(x))
        if frac.max() > INTEGRALITY_TOL:  # pragma: no cover - impossible for a TU vertex
            raise SolverError(
                f"the assignment LP returned a fractional vertex (max deviation {frac.max():g})")
        return _result(S, np.argmax(x, axis=1).astype(np.int64))


__all__ = ["AssignmentModel", "AssignmentResult", "assign_capacitated", "check_assignment_feasible"]
