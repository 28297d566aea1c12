r"""LPMARL's assignment layer: the agent-task LP of Eq. (4)-(7), batched, differentiable.

Given the GNN's coefficient matrix ``C`` (``(B, N, M)``: episodes x agents x tasks) and task
capacities ``k`` (``(B, M)``), every batch element solves::

    maximise   sum_ij c_ij z_ij                      # LPMARL Eq. (4)
    s.t.       sum_i z_ij <= k_j     for every task  # Eq. (5)
               sum_j z_ij  = 1       for every agent # Eq. (6)
               0 <= z_ij <= 1                        # Eq. (7)

plus optional forbidden pairs (``z_ij = 0``: unobserved or invalid pairs), dead tasks
(``task_mask``: capacity 0) and dead agents (``agent_mask``: row left out, ``z_i = 0``).

**Sign convention.** Eq. (4) *maximises* ``<C, Z>``: although the paper calls ``c_ij`` a "cost
coefficient", Sec. 3.1 says it "scores the allocation of agent i to task j", so a larger ``c_ij``
makes the pair more likely. The LP-distance ablation (App. F.1.3), which minimises the summed
distance, is therefore ``C = -D``. Everything here follows Eq. (4): ``costs`` are maximised.

**Solution.** The constraint matrix is a bipartite incidence matrix (totally unimodular), so with
integer capacities every vertex is 0/1 and ``Z*`` is an assignment: one task per agent. Two exact
solvers give it (:mod:`hieralloc.solvers.assignment`):

* ``method='fast'`` (default): each task ``j`` expanded into ``min(k_j, n)`` slots, then the
  rectangular assignment problem by Jonker-Volgenant (:func:`scipy.optimize.linear_sum_assignment`).
  It is the fast path of :func:`~hieralloc.solvers.assign_capacitated`, applied here to a whole
  batch in one pass with the input checks done once, vectorised (about 3x less Python overhead
  per problem than calling ``assign_capacitated`` per element);
* ``method='lp'``: the LP itself with HiGHS through :class:`~hieralloc.solvers.AssignmentModel`
  (one reusable model per problem size, re-solved warm).

**Gradients** (Sec. 4.1, App. B-C.2).

* ``mode='blackbox'`` (the paper's): forward returns the exact 0/1 ``Z*``; backward follows
  Vlastelica et al. with LPMARL's Eq. (10)-(12), (16): with the upstream gradient ``g = dL/dZ``
  of a loss ``L = -J_h``, ``C'_lambda = C - lambda g = C + lambda dJ_h/dZ`` (Eq. 12),
  ``Z_lambda = Z*(C'_lambda)`` (Eq. 11) and ``dJ_h/dC = (Z_lambda - Z*) / lambda`` (Eq. 16),
  i.e. ``dL/dC = (Z* - Z_lambda) / lambda``. This is
  :func:`hieralloc.solvers.differentiable.blackbox` with ``sense='max'``; for ``method='fast'``
  the same rule runs in a lean batched autograd function (:class:`_FastBlackbox`, one
  ``linear_sum_assignment`` per element and direction, no dtype round trips) because the generic
  wrapper's per-call overhead alone would take most of the 100x margin over cvxpy that the
  benchmark requires; ``tests/lpmarl/test_assign.py`` checks that both give identical gradients.
  ``method='lp'`` goes through ``differentiable.blackbox`` itself.
* ``mode='perturbed'`` (comparison option): the perturbed optimiser of Berthet et al.
  (:func:`hieralloc.solvers.differentiable.perturbed`): forward returns the Monte-Carlo estimate
  of ``E[Z*(C + sigma eps)]``, ``eps ~ N(0, I)``, backward its Stein-estimator Jacobian.

**"Z* gives the assignment probabilities"** (Sec. 3.2: ``pi^h(a_i^h = j | s) = z*_ij``). With
integral ``Z*`` that policy is deterministic: row ``i`` of ``Z*`` is a one-hot distribution. We
use it that way (greedy action and the deterministic policy gradient of App. C.2 Eq. (15), where
``dJ_h/dZ*`` comes from the high-level critic), and obtain a *stochastic* policy, for exploration
and whenever probabilities are needed, from the perturbed LP:
``pi^h(j | i, s) = E_eps[Z*(C + sigma eps)]_ij`` (:func:`assignment_probs`). Each row of that
expectation is a proper distribution over tasks, the joint draws respect the capacities, and
:func:`sample_assignment` draws a joint action from exactly that distribution (one solve with
perturbed costs). A per-agent softmax over ``C`` or over ``Z*`` was rejected: it ignores the
coupling through the capacities (samples would overfill tasks), and a softmax over 0/1 entries
is just a fixed epsilon-greedy mixture.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from hieralloc.solvers.assignment import AssignmentModel, check_assignment_feasible
from hieralloc.solvers.differentiable import blackbox, perturbed
from hieralloc.solvers.errors import InfeasibleError, MalformedProblemError

Method = Literal["fast", "lp"]
Mode = Literal["blackbox", "perturbed"]
METHODS: tuple[str, ...] = ("fast", "lp")
MODES: tuple[str, ...] = ("blackbox", "perturbed")


# ---------------------------------------------------------------------------------------------
# input checks (once per call, vectorised over the batch)


class AssignmentProblem:
    """A validated batch of assignment LPs (Eq. (4)-(7)) without the scores.

    Holds per element ``b``: capacities ``capacity[b]`` (``(B, M)`` int64, dead tasks set to 0),
    the optional forbidden mask ``(B, N, M)`` and alive-agent mask ``(B, N)``. :meth:`solve`
    solves it for a score array ``(B, N, M)`` (float64) and returns the 0/1 ``Z*`` (all-zero rows
    for dead agents). Raises the errors listed in :func:`lp_assign` for bad capacities or masks.
    """

    def __init__(self, batch: int, n_agents: int, n_tasks: int, capacity: Any, *, forbidden: Any = None,
                 agent_mask: Any = None, task_mask: Any = None, method: str = "fast") -> None:
        if method not in METHODS:
            raise MalformedProblemError(f"method must be one of {', '.join(METHODS)}, got {method!r}",
                                        constraint="method")
        self.B, self.N, self.M, self.method = batch, n_agents, n_tasks, method
        B, N, M = batch, n_agents, n_tasks
        cap = _capacity(capacity, B, M)
        alive_t = _mask(task_mask, (B, M), "task_mask")
        if alive_t is not None:
            cap = np.where(alive_t, cap, 0)  # a dead task takes nobody
        self.agent_mask = _mask(agent_mask, (B, N), "agent_mask")
        F = _mask(forbidden, (B, N, M), "forbidden")
        self.forbidden = F if F is not None and F.any() else None
        if self.agent_mask is None:
            n_alive = np.full(B, N, dtype=np.int64)
            room = np.minimum(cap, N).sum(axis=1)  # Eq. (5)-(6) need sum_j min(k_j, n) >= n
        else:
            n_alive = self.agent_mask.sum(axis=1)
            room = np.minimum(cap, n_alive[:, None]).sum(axis=1)
        if (room < n_alive).any():
            b = int(np.flatnonzero(room < n_alive)[0])
            dead = "" if alive_t is None else " (dead tasks count as capacity 0)"
            raise InfeasibleError(
                f"capacity of batch element {b} sums to {int(room[b])} < {int(n_alive[b])} agents{dead}: every "
                "agent needs a task (LPMARL Eq. (6)); raise the capacities", constraint="capacity")
        self.capacity = np.array(cap)  # own copies: problems are cached by the inputs' bytes
        if self.agent_mask is not None:
            self.agent_mask = self.agent_mask.copy()
        if self.forbidden is not None:
            self.forbidden = self.forbidden.copy()
        self._rows_all = np.arange(N)
        self._slots: dict[int, np.ndarray] = {}
        if self.forbidden is not None:
            for b in range(B):  # named infeasibilities (an agent with every task forbidden, ...)
                rows = self._rows(b)
                try:
                    check_assignment_feasible(len(rows), cap[b], np.zeros(M, dtype=np.int64),
                                              self.forbidden[b][rows])
                except InfeasibleError as e:
                    raise InfeasibleError(f"batch element {b}: {e}", constraint=e.constraint) from None

    @classmethod
    def cached(cls, batch: int, n_agents: int, n_tasks: int, capacity: Any, *, forbidden: Any = None,
               agent_mask: Any = None, task_mask: Any = None, method: str = "fast") -> AssignmentProblem:
        """Like the constructor, but reuses a recent identical problem (same sizes, method and input
        bytes): the steps of an episode share their capacities. Least-recently-used cache of
        :data:`CACHE_SIZE` problems (not thread-safe: one solving thread per process)."""
        try:
            key = (batch, n_agents, n_tasks, method, _fingerprint(capacity), _fingerprint(forbidden),
                   _fingerprint(agent_mask), _fingerprint(task_mask))
        except _Uncacheable:
            return cls(batch, n_agents, n_tasks, capacity, forbidden=forbidden, agent_mask=agent_mask,
                       task_mask=task_mask, method=method)
        problem = _CACHE.get(key)
        if problem is None:
            problem = cls(batch, n_agents, n_tasks, capacity, forbidden=forbidden, agent_mask=agent_mask,
                          task_mask=task_mask, method=method)
            _CACHE[key] = problem
            if len(_CACHE) > CACHE_SIZE:
                _CACHE.popitem(last=False)
        else:
            _CACHE.move_to_end(key)
        return problem

    def _rows(self, b: int) -> np.ndarray:
        return self._rows_all if self.agent_mask is None else np.flatnonzero(self.agent_mask[b])

    def solve(self, scores: np.ndarray, dtype: Any = np.float64) -> np.ndarray:
        """``Z*`` ``(B, N, M)`` for scores ``(B, N, M)`` (LPMARL Eq. (4)-(7); checked finite by the caller)."""
        Z = np.zeros((self.B, self.N, self.M), dtype=dtype)
        for b in range(self.B):
            self.solve_into(scores[b], b, Z[b])
        return Z

    def solve_into(self, S: np.ndarray, b: int, out: np.ndarray) -> None:
        """Write the 0/1 solution of element ``b`` for scores ``S`` ``(N, M)`` into ``out`` (zeros)."""
        if self.agent_mask is None and self.forbidden is None and self.method == "fast":  # the common case
            slots = self._slots.get(b)
            if slots is None:
                slots = self._slots[b] = np.repeat(np.arange(self.M), np.minimum(self.capacity[b], self.N))
            _, cols = linear_sum_assignment(S[:, slots], maximize=True)  # capacity-expanded slots
            out[self._rows_all, slots[cols]] = 1.0
            return
        rows = self._rows(b)
        if rows.size == 0:
            return
        if self.method == "lp":
            out[rows] = self._solve_lp(S[rows], b)
            return
        slots = np.repeat(np.arange(self.M), np.minimum(self.capacity[b], rows.size))
        Sr = S[rows]
        C = Sr[:, slots]  # capacity-expanded slots (the fast path of solvers.assign_capacitated)
        F = None if self.forbidden is None else self.forbidden[b][rows]
        if F is not None:
            # a forbidden pair scores below any feasible total: chosen only if no assignment avoids
            # one, which the feasibility checks in __init__ have excluded
            span = float(np.abs(Sr).max())
            C = np.where(F[:, slots], -(2.0 * len(rows) * (span + 1.0)), C)
        _, cols = linear_sum_assignment(C, maximize=True)
        task = slots[cols]
        if F is not None and F[np.arange(len(rows)), task].any():  # pragma: no cover - pre-checked above
            i = int(rows[np.flatnonzero(F[np.arange(len(rows)), task])[0]])
            raise InfeasibleError(f"batch element {b}: no assignment avoids the forbidden pairs within the "
                                  f"capacities (agent {i} cannot be placed)", constraint=f"agent {i}")
        out[rows, task] = 1.0

    def _solve_lp(self, S: np.ndarray, b: int) -> np.ndarray:
        n = S.shape[0]
        key = (n, self.M)
        model = _MODELS.get(key)
        if model is None:
            model = _MODELS[key] = AssignmentModel(n, self.M, self.capacity[b])
        F = None if self.forbidden is None else self.forbidden[b][self._rows(b)]
        bounds = (self.capacity[b].tobytes(), None if F is None else F.tobytes())
        if _MODEL_BOUNDS.get(key) != bounds:  # bounds changed: re-set them (the basis stays warm)
            # in an order whose intermediate states are feasible (each setter re-checks)
            model.set_forbidden(None)
            model.set_capacity(self.capacity[b])
            if F is not None:
                model.set_forbidden(F)
            _MODEL_BOUNDS[key] = bounds
        return model.solve(S).x

    def solve_fn(self) -> Callable[[np.ndarray], np.ndarray]:
        """The whole batch as one ``solve_fn`` for :mod:`hieralloc.solvers.differentiable`
        (``event_ndim=None``: the feasible set is the product of the elements' sets)."""
        return self.solve


CACHE_SIZE = 16
_CACHE: OrderedDict[tuple[Any, ...], AssignmentProblem] = OrderedDict()
# one warm HiGHS model per problem size (agents, tasks), shared by every problem of that size: bounds
# (capacities, forbidden pairs) are re-set before each solve, so only the basis carries over
_MODELS: dict[tuple[int, int], AssignmentModel] = {}
_MODEL_BOUNDS: dict[tuple[int, int], tuple[bytes, bytes | None]] = {}


class _Uncacheable(Exception):
    pass


def _fingerprint(x: Any) -> Any:
    """A hashable exact description of an input (arrays by dtype, shape and bytes)."""
    if x is None or isinstance(x, (bool, int, float, np.integer, np.floating)):
        return x
    if torch.is_tensor(x):
        x = x.detach().cpu().numpy()
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x)
        except (TypeError, ValueError):
            raise _Uncacheable from None
    if x.dtype.kind not in "biuf":
        raise _Uncacheable
    return x.dtype.str, x.shape, x.tobytes()


def _capacity(capacity: Any, B: int, M: int) -> np.ndarray:
    if torch.is_tensor(capacity):
        capacity = capacity.detach().cpu().numpy()
    if isinstance(capacity, np.ndarray) and capacity.dtype.kind in "iu" and capacity.shape in ((M,), (B, M)):
        k = capacity.astype(np.int64, copy=False)  # fast path: integer array, only the sign to check
        if (k < 0).any():
            idx = tuple(int(v) for v in np.argwhere(k < 0)[0])
            raise MalformedProblemError(
                f"capacity[{', '.join(map(str, idx))}] = {k[idx]}: capacities must be non-negative integers "
                "(LPMARL Eq. (5): agents a task can take)", constraint="capacity")
        return k.reshape(1, M) if k.ndim == 1 and B == 1 else np.broadcast_to(k, (B, M))
    try:
        kf = np.asarray(capacity, dtype=float)
    except (TypeError, ValueError) as e:
        raise MalformedProblemError(f"capacity must be numeric: {e}", constraint="capacity") from None
    if kf.ndim == 0:
        kf = np.full((B, M), float(kf))
    elif kf.shape == (M,):
        kf = np.broadcast_to(kf, (B, M))
    elif kf.shape != (B, M):
        raise MalformedProblemError(
            f"capacity has shape {kf.shape}, expected ({B}, {M}) (batch x tasks), ({M},) or a scalar",
            constraint="capacity")
    bad = ~np.isfinite(kf) | (kf < 0) | (np.abs(kf - np.round(kf)) > 1e-9)
    if bad.any():
        idx = tuple(int(v) for v in np.argwhere(bad)[0])
        raise MalformedProblemError(
            f"capacity[{', '.join(map(str, idx))}] = {kf[idx]:g}: capacities must be non-negative integers "
            "(LPMARL Eq. (5): agents a task can take)", constraint="capacity")
    return np.round(kf).astype(np.int64)


def _mask(mask: Any, shape: tuple[int, ...], name: str) -> np.ndarray | None:
    if mask is None:
        return None
    if torch.is_tensor(mask):
        mask = mask.detach().cpu().numpy()
    arr = np.asarray(mask)
    if arr.shape == shape[1:]:
        arr = np.broadcast_to(arr, shape)
    if arr.shape != shape:
        raise MalformedProblemError(f"{name} has shape {arr.shape}, expected {shape} or {shape[1:]}",
                                    constraint=name)
    if arr.dtype != bool:
        if not np.isin(arr, (0, 1)).all():
            raise MalformedProblemError(f"{name} must be boolean (or 0/1)", constraint=name)
        arr = arr.astype(bool)
    return arr


def _costs(costs: Any) -> tuple[torch.Tensor, bool]:
    """``(B, N, M)`` tensor view of ``costs`` and whether a batch axis was added."""
    if not torch.is_tensor(costs):
        raise MalformedProblemError(f"costs must be a torch.Tensor (B, N, M) or (N, M), got {type(costs).__name__}",
                                    constraint="costs")
    if costs.dim() == 2:
        costs, squeeze = costs.unsqueeze(0), True
    elif costs.dim() == 3:
        squeeze = False
    else:
        raise MalformedProblemError(f"costs must have shape (B, N, M) or (N, M), got {tuple(costs.shape)}",
                                    constraint="costs")
    if not costs.is_floating_point():
        raise MalformedProblemError(f"costs must be floating point, got {costs.dtype}", constraint="costs")
    if costs.shape[2] == 0:
        raise InfeasibleError(f"there are no tasks for {costs.shape[1]} agents: every agent needs a task",
                              constraint="costs")
    return costs, squeeze


def _costs_numpy(costs: torch.Tensor) -> np.ndarray:
    c = costs.detach().cpu().numpy().astype(np.float64, copy=False)
    if not np.isfinite(c).all():
        idx = tuple(int(v) for v in np.argwhere(~np.isfinite(c))[0])
        raise MalformedProblemError(
            f"costs[{', '.join(map(str, idx))}] = {c[idx]}: costs must be finite (use forbidden= or the masks "
            "to exclude a pair)", constraint="costs")
    return c


def _positive(name: str, value: float) -> float:
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise MalformedProblemError(f"{name} must be a positive number, got {value!r}", constraint=name)
    return v


# ---------------------------------------------------------------------------------------------
# differentiation


_NP_DTYPE: dict[torch.dtype, Any] = {torch.float32: np.float32, torch.float64: np.float64}


class _FastBlackbox(torch.autograd.Function):
    """LPMARL Eq. (10)-(12), (16) (the ``sense='max'`` rule of ``differentiable.blackbox``) over a
    batch, with the problem's own solver and no dtype round trips."""

    @staticmethod
    def forward(ctx: Any, costs: torch.Tensor, problem: AssignmentProblem, lam: float) -> torch.Tensor:
        c = _costs_numpy(costs)
        Z = problem.solve(c, dtype=_NP_DTYPE.get(costs.dtype, np.float64))
        ctx.problem, ctx.lam, ctx.c, ctx.Z = problem, lam, c, Z
        return _tensor(Z.copy(), costs)  # own copy: in-place edits of Z cannot reach ctx

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> Any:
        g = grad_out.detach().cpu().numpy()
        c, Z, lam, problem = ctx.c, ctx.Z, ctx.lam, ctx.problem
        C_lam = c - lam * g  # Eq. (12): C' = C + lam dJ/dZ with g = dL/dZ = -dJ/dZ
        Z_lam = Z.copy()     # an element with g_b = 0 keeps Z_lam = Z (gradient 0, no solve)
        for b in np.flatnonzero(g.reshape(g.shape[0], -1).any(axis=1)):
            Z_lam[b] = 0.0
            problem.solve_into(C_lam[b], int(b), Z_lam[b])  # Eq. (11): Z_lam = Z*(C')
        grad = _tensor((Z - Z_lam) * (1.0 / lam), grad_out)  # Eq. (16): dL/dC = -dJ/dC = (Z* - Z_lam)/lam
        return grad, None, None


def _tensor(a: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """``a`` as a tensor with ``like``'s dtype and device (no copy on CPU for float32/64)."""
    t = torch.from_numpy(a)
    return t if t.dtype == like.dtype and t.device == like.device else t.to(like.device, like.dtype)


def lp_assign(
    costs: torch.Tensor,
    capacity: Any,
    *,
    forbidden: Any = None,
    agent_mask: Any = None,
    task_mask: Any = None,
    mode: Mode = "blackbox",
    lam: float = 10.0,
    sigma: float = 1.0,
    n_samples: int = 16,
    method: Method = "fast",
    generator: np.random.Generator | int | None = None,
) -> torch.Tensor:
    r"""The LPMARL assignment layer: ``Z*`` of Eq. (4)-(7) per batch element, differentiable.

    Args:
        costs: ``C``, ``(B, N, M)`` or ``(N, M)`` float tensor (maximised, Eq. (4)); gradients
            flow back to it.
        capacity: ``k``, ``(B, M)``, ``(M,)`` or a scalar: non-negative integers (Eq. (5)).
        forbidden: optional bool ``(B, N, M)`` / ``(N, M)``: pairs fixed to ``z_ij = 0`` (e.g. tasks
            outside an agent's observation range).
        agent_mask: optional bool ``(B, N)``: alive agents; a dead agent gets an all-zero row.
        task_mask: optional bool ``(B, M)``: alive tasks; a dead task gets capacity 0.
        mode: ``'blackbox'`` (exact 0/1 ``Z*``, Vlastelica gradient with ``lam``; the paper's) or
            ``'perturbed'`` (``E[Z*(C + sigma eps)]`` over ``n_samples`` draws, Berthet gradient).
        lam: ``lambda`` of Eq. (10)-(12) (> 0): how far the costs are moved along the upstream
            gradient in the backward solve; larger = non-zero gradients further from a decision
            boundary, smaller = closer to the true piecewise-constant map.
        sigma, n_samples, generator: noise scale, Monte-Carlo draws and numpy generator/seed of
            ``mode='perturbed'`` (``generator=None`` follows ``torch.manual_seed``).
        method: ``'fast'`` (Jonker-Volgenant on capacity slots) or ``'lp'`` (HiGHS LP).

    Returns:
        ``Z`` with the shape and dtype of ``costs``: 0/1 (blackbox) or row-stochastic over alive
        agents (perturbed).

    Raises:
        MalformedProblemError: wrong shapes/types, NaN/inf costs, negative or non-integer
            capacities, bad ``lam``/``sigma``/``n_samples``/``mode``/``method`` (names the field).
        InfeasibleError: capacities (of alive tasks) summing to fewer than the (alive) agents, or
            forbidden pairs leaving an agent without a task.
    """
    C, squeeze = _costs(costs)
    if mode not in MODES:
        raise MalformedProblemError(f"mode must be one of {', '.join(MODES)}, got {mode!r}", constraint="mode")
    B, N, M = C.shape
    problem = AssignmentProblem.cached(B, N, M, capacity, forbidden=forbidden, agent_mask=agent_mask,
                                       task_mask=task_mask, method=method)
    if mode == "blackbox":
        lam_f = _positive("lam", lam)
        if method == "fast":
            Z: torch.Tensor = _FastBlackbox.apply(C, problem, lam_f)
        else:
            _costs_numpy(C)  # named NaN check before the generic wrapper's
            Z = blackbox(C, problem.solve_fn(), lam=lam_f, sense="max", event_ndim=None)
    else:
        _positive("sigma", sigma)
        if int(n_samples) < 1:
            raise MalformedProblemError(f"n_samples must be >= 1, got {n_samples}", constraint="n_samples")
        _costs_numpy(C)
        Z = perturbed(C, problem.solve_fn(), sigma=sigma, n_samples=int(n_samples), event_ndim=None,
                      generator=generator)
    return Z[0] if squeeze else Z


def assignment_probs(costs: torch.Tensor, capacity: Any, *, sigma: float = 1.0, n_samples: int = 16,
                     generator: np.random.Generator | int | None = None, **masks: Any) -> torch.Tensor:
    r"""The stochastic high-level policy ``pi^h(j | i, s) = E_eps[Z*(C + sigma eps)]_ij``
    (LPMARL Sec. 3.2 "Z* gives the assignment probabilities", made stochastic by the perturbed
    LP): rows of alive agents sum to 1, differentiable (``mode='perturbed'`` of :func:`lp_assign`).
    ``masks``: ``forbidden``, ``agent_mask``, ``task_mask``, ``method``."""
    return lp_assign(costs, capacity, mode="perturbed", sigma=sigma, n_samples=n_samples, generator=generator,
                     **masks)


def sample_assignment(costs: torch.Tensor, capacity: Any, *, sigma: float = 1.0,
                      generator: np.random.Generator | int | None = None, forbidden: Any = None,
                      agent_mask: Any = None, task_mask: Any = None, method: Method = "fast") -> torch.Tensor:
    """Draw one joint assignment from the perturbed policy: ``Z*(C + sigma eps)``, ``eps ~ N(0, I)``
    (no gradient). Every draw is feasible (capacities hold); agent ``i``'s task is distributed as
    row ``i`` of :func:`assignment_probs`. ``sigma = 0`` gives the greedy ``Z*(C)``."""
    C, squeeze = _costs(costs)
    s = float(sigma)
    if not (np.isfinite(s) and s >= 0):
        raise MalformedProblemError(f"sigma must be a non-negative number, got {sigma!r}", constraint="sigma")
    B, N, M = C.shape
    problem = AssignmentProblem.cached(B, N, M, capacity, forbidden=forbidden, agent_mask=agent_mask,
                                       task_mask=task_mask, method=method)
    c = _costs_numpy(C).astype(np.float64)
    if s > 0:
        rng = generator if isinstance(generator, np.random.Generator) else np.random.default_rng(
            int(torch.randint(0, 2**62, (1,)).item()) if generator is None else int(generator))
        c = c + s * rng.standard_normal(c.shape)
    Z = _tensor(problem.solve(c, dtype=_NP_DTYPE.get(C.dtype, np.float64)), C)
    return Z[0] if squeeze else Z


def assigned_tasks(Z: torch.Tensor) -> torch.Tensor:
    """Task index per agent from a 0/1 ``Z`` (``(..., N, M)`` -> ``(..., N)`` int64); agents
    without a task (dead: all-zero row) get ``-1``."""
    task = Z.argmax(dim=-1)
    return torch.where(Z.amax(dim=-1) > 0.5, task, torch.full_like(task, -1))


class LPAssignment(torch.nn.Module):
    """Module form of :func:`lp_assign` holding its hyper-parameters. The paper gives no value for
    ``lambda`` (Table 4 lists none); 10 is the solver layer's default. ``seed`` seeds the noise of
    ``mode='perturbed'`` (``None``: follow ``torch.manual_seed``)."""

    def __init__(self, mode: Mode = "blackbox", lam: float = 10.0, sigma: float = 1.0, n_samples: int = 16,
                 method: Method = "fast", seed: int | None = None) -> None:
        super().__init__()
        if mode not in MODES:
            raise MalformedProblemError(f"mode must be one of {', '.join(MODES)}, got {mode!r}", constraint="mode")
        if method not in METHODS:
            raise MalformedProblemError(f"method must be one of {', '.join(METHODS)}, got {method!r}",
                                        constraint="method")
        self.mode, self.method = mode, method
        self.lam, self.sigma = _positive("lam", lam), _positive("sigma", sigma)
        if int(n_samples) < 1:
            raise MalformedProblemError(f"n_samples must be >= 1, got {n_samples}", constraint="n_samples")
        self.n_samples = int(n_samples)
        self.rng = np.random.default_rng(seed) if seed is not None else None

    def forward(self, costs: torch.Tensor, capacity: Any, *, forbidden: Any = None, agent_mask: Any = None,
                task_mask: Any = None) -> torch.Tensor:
        return lp_assign(costs, capacity, forbidden=forbidden, agent_mask=agent_mask, task_mask=task_mask,
                         mode=self.mode, lam=self.lam, sigma=self.sigma, n_samples=self.n_samples,
                         method=self.method, generator=self.rng)

    def extra_repr(self) -> str:
        return f"mode={self.mode}, method={self.method}, lam={self.lam:g}, sigma={self.sigma:g}, " \
               f"n_samples={self.n_samples}"


__all__ = [
    "METHODS",
    "MODES",
    "AssignmentProblem",
    "LPAssignment",
    "assigned_tasks",
    "assignment_probs",
    "lp_assign",
    "sample_assignment",
]
