"""Finite-horizon LQR goal tracking and its inverse problem (OHIO Sec. 3, App. A.3, A.4, B.1, B.2.1, C.1).

The low level is a linear system ``x_{t+1} = A x_t + B a_t`` driven for ``T`` steps (the temporal
abstraction of OHIO App. B.1) by the goal-tracking law ``a_t = K_t (x_t - u)``, where ``u`` is the
high-level action (a goal state) and the gains ``K_t`` come from the finite-horizon Riccati
recursion of OHIO App. B.1. The inverse problem recovers ``u`` from what a data set holds:

* the next state ``s_T`` reached after the ``T`` steps (state-only trajectories, OHIO Alg. 2), or
* the low-level controls ``a_0..a_{T-1}`` and the states they were applied in (OHIO Alg. 3),

analytically (OHIO Eq. (23), (26) and the recursion of App. B.1.1) or numerically, by gradient
descent with Adam or by the cross-entropy method (OHIO App. A.4, B.2.1).

Everything is batched over leading axes: states ``(..., n)``, goals ``(..., n)``, controls
``(..., T, m)``. The choices the paper leaves open are recorded in docs/methods/ohio-lqr.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hieralloc.config import Config, param
from hieralloc.errors import ConfigError, DataError

OBSERVED: tuple[str, ...] = ("next_state", "controls")

#: singular values below ``RCOND`` times the largest are treated as zero (pseudo-inverses, ranks)
RCOND = 1e-10


# ---------------------------------------------------------------------------------------------
# Validation helpers (one message per mistake: the field and the fix)


def _as_matrix(key: str, value: Any, *, source: str | None = None) -> np.ndarray:
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ConfigError(key, f"must be a real matrix (a nested list of numbers), got {value!r} ({e})",
                          source) from None
    if arr.ndim != 2:
        raise ConfigError(key, f"must be a 2-D matrix, got an array of shape {arr.shape}; pass a nested list "
                          "such as [[1, 0.5], [0, 1]]", source)
    if arr.size == 0:
        raise ConfigError(key, f"must not be empty, got shape {arr.shape}", source)
    if not np.all(np.isfinite(arr)):
        raise ConfigError(key, "contains NaN or infinite entries; pass finite numbers", source)
    return arr


def _check_psd(key: str, M: np.ndarray, source: str | None, fix: str) -> np.ndarray:
    scale = max(1.0, float(np.abs(M).max()))
    if not np.allclose(M, M.T, rtol=0.0, atol=1e-9 * scale):
        raise ConfigError(key, f"must be symmetric, got {M.tolist()}; pass a symmetric matrix "
                          f"(e.g. ({key} + {key}.T) / 2)", source)
    M = 0.5 * (M + M.T)
    lam = float(np.linalg.eigvalsh(M).min())
    if lam < -1e-10 * scale:
        raise ConfigError(key, f"must be positive semi-definite, but its smallest eigenvalue is {lam:.4g}; {fix}",
                          source)
    return M


def _as_array(key: str, value: Any, trailing: tuple[int, ...], what: str) -> np.ndarray:
    """A float64 array of shape ``(..., *trailing)`` with finite entries, or a DataError naming ``key``."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise DataError(f"{key}: must be an array of numbers ({what}), got {type(value).__name__} ({e})") from None
    k = len(trailing)
    if arr.ndim < k or tuple(arr.shape[arr.ndim - k:]) != trailing:
        want = "(..., " + ", ".join(str(d) for d in trailing) + ")"
        raise DataError(f"{key}: expected shape {want} ({what}), got {arr.shape}; pass one row per transition "
                        "with the system's dimensions")
    if not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise DataError(f"{key}: {bad} NaN or infinite entries; drop or repair those transitions before inverting")
    return arr


# ---------------------------------------------------------------------------------------------
# The controller


class GoalLQR:
    """Finite-horizon goal-tracking LQR on ``x' = A x + B a`` (OHIO App. B.1).

    Gains by the Riccati recursion of OHIO App. B.1, backwards from ``P_T = Q``::

        K_t = -(R + B^T P_{t+1} B)^{-1} B^T P_{t+1} A
        P_t = Q + A^T P_{t+1} (A + B K_t)

    and the control law ``a_t = K_t (x_t - u)`` for ``t = 0..T-1`` (``K_0`` first). With ``R = 0``
    (OHIO App. C.1) ``R + B^T P B`` is still invertible whenever ``B^T P B`` is; where it is not
    (e.g. ``Q`` singular and ``R = 0``) the Moore-Penrose inverse gives the minimum-norm minimiser,
    the generalised Riccati recursion.

    ``R`` may be a scalar (``R I``) or an ``(m, m)`` matrix. ``source`` names where the parameters
    came from in error messages.
    """

    def __init__(self, A: Any, B: Any, Q: Any, R: Any, horizon: int = 1, *, source: str | None = None) -> None:
        A = _as_matrix("A", A, source=source)
        B = _as_matrix("B", B, source=source)
        n = A.shape[0]
        if A.shape != (n, n):
            raise ConfigError("A", f"must be square (n, n), got shape {A.shape}", source)
        if B.shape[0] != n:
            raise ConfigError("B", f"must have n = {n} rows (one per state of A), got shape {B.shape}", source)
        m = B.shape[1]
        Q = _as_matrix("Q", Q, source=source)
        if Q.shape != (n, n):
            raise ConfigError("Q", f"must be ({n}, {n}) like A, got shape {Q.shape}", source)
        Q = _check_psd("Q", Q, source, "state costs must be >= 0 (e.g. Q = diag(q1, q2) with q >= 0)")
        R_arr = np.asarray(R, dtype=np.float64) if _is_number_like(R) else None
        if R_arr is not None and R_arr.ndim == 0:
            if not np.isfinite(R_arr):
                raise ConfigError("R", f"must be a finite number, got {R!r}", source)
            if float(R_arr) < 0:
                raise ConfigError("R", f"must be >= 0 (a control cost), got {float(R_arr)}; use R >= 0 "
                                  "(R = 0 is allowed)", source)
            R_mat = float(R_arr) * np.eye(m)
        else:
            R_mat = _as_matrix("R", R, source=source)
            if R_mat.shape != (m, m):
                raise ConfigError("R", f"must be a scalar or ({m}, {m}) (one row per control of B), got shape "
                                  f"{R_mat.shape}", source)
            R_mat = _check_psd("R", R_mat, source, "control costs must be >= 0 (R = 0 is allowed)")
        if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
            raise ConfigError("horizon", f"must be an integer >= 1 (low-level steps per goal), got {horizon!r}",
                              source)
        self.A, self.B, self.Q, self.R = A, B, Q, R_mat
        self.horizon = int(horizon)
        self.n, self.m = n, m
        self.gains, self.riccati = _riccati(A, B, Q, R_mat, self.horizon)
        self._maps: dict[str, tuple[np.ndarray, np.ndarray, int]] = {}

    def __repr__(self) -> str:
        return (f"GoalLQR(n={self.n}, m={self.m}, horizon={self.horizon}, Q={self.Q.tolist()}, "
                f"R={self.R.tolist()})")

    # -- forward ------------------------------------------------------------------------------

    def action(self, state: Any, goal: Any, t: int = 0) -> np.ndarray:
        """``a_t = K_t (x - u)`` (OHIO App. B.1), batched: ``(..., n), (..., n) -> (..., m)``."""
        if not 0 <= t < self.horizon:
            raise ConfigError("t", f"must be in [0, {self.horizon - 1}] (the step within the horizon), got {t}")
        x = _as_array("state", state, (self.n,), "states")
        u = _as_array("goal", goal, (self.n,), "goal states")
        return np.asarray((x - u) @ self.gains[t].T)

    def rollout(self, state: Any, goal: Any) -> tuple[np.ndarray, np.ndarray]:
        """Run the ``T`` low-level steps: states ``(..., T+1, n)`` (``x_0 = state``) and controls ``(..., T, m)``."""
        x = _as_array("state", state, (self.n,), "states")
        u = _as_array("goal", goal, (self.n,), "goal states")
        x, u = np.broadcast_arrays(x, u)
        xs, acts = _unroll(self.A, self.B, self.gains, x, u)
        return np.stack(xs, axis=-2), np.stack(acts, axis=-2)

    def next_state(self, state: Any, goal: Any) -> np.ndarray:
        """The state ``s_T`` the controller reaches from ``state`` with ``goal`` after ``T`` steps."""
        return self.rollout(state, goal)[0][..., -1, :]

    # -- the affine maps the inverse works on --------------------------------------------------

    def transition_maps(self) -> tuple[np.ndarray, np.ndarray]:
        """``(M, Phi1)`` with ``s_T = M s - Phi1 u`` (OHIO App. B.1.1: ``Phi2 = M s``).

        Initialisation ``Phi1 = B K_0``, ``Phi2 = (A + B K_0) s``; for ``l = 1..T-1``:
        ``Phi1 <- (A + B K_l) Phi1 + B K_l``, ``Phi2 <- (A + B K_l) Phi2``.
        """
        BK = self.B @ self.gains[0]
        phi1 = BK                      # OHIO App. B.1.1 initialisation
        M = self.A + BK
        for K in self.gains[1:]:       # OHIO App. B.1.1 recursion (T - 1 further steps)
            closed = self.A + self.B @ K
            phi1 = closed @ phi1 + self.B @ K
            M = closed @ M
        return M, phi1

    def observation_map(self, observed: str) -> tuple[np.ndarray, np.ndarray, int]:
        """``(G, G^+, rank)`` of the observation model ``y = G u + h(s)`` (cached per ``observed``).

        ``next_state``: ``G = -Phi1`` and ``h = Phi2 = M s`` (OHIO App. B.1.1); ``controls``: ``G`` stacks
        ``-K_t`` and ``h`` stacks ``K_t s_t`` (``a_t = K_t (s_t - u)``). ``G^+`` treats singular values below
        ``RCOND`` times the largest as zero.
        """
        if observed not in self._maps:
            if observed == "next_state":
                G = -self.transition_maps()[1]              # s_T = Phi2 - Phi1 u
            elif observed == "controls":
                G = -self.gains.reshape(-1, self.n)          # a_t = K_t s_t - K_t u, stacked over t
            else:
                raise ConfigError("observed", f"must be one of {', '.join(OBSERVED)}, got {observed!r}")
            U, sv, Vt = np.linalg.svd(G)
            tol = RCOND * (sv[0] if sv.size else 0.0)
            rank = int(np.count_nonzero(sv > tol))
            pinv = (Vt[:rank].T / sv[:rank]) @ U[:, :rank].T
            self._maps[observed] = (G, pinv, rank)
        return self._maps[observed]

    def identifiable_rank(self, observed: str = "next_state") -> int:
        """Rank of the goal-to-observation map: the goal is unique when it equals ``n``.

        With ``T = 1`` a next state (or one control) fixes only ``rank(B K_0) <= m`` directions of the
        goal; the rest of ``u`` is invisible in the data, and every goal on that affine set
        reproduces the observation exactly (OHIO App. C.1 recovers such goals).
        """
        return self.observation_map(observed)[2]

    def identifiable_projector(self, observed: str = "next_state") -> np.ndarray:
        """Orthogonal projector ``G^+ G`` onto the goal directions the observations determine."""
        G, pinv, _ = self.observation_map(observed)
        return np.asarray(pinv @ G)

    def _validated(self, observed: str, states: Any, target: Any) -> tuple[np.ndarray, np.ndarray]:
        """Checked ``(states, target)`` arrays for ``observed``; DataError naming the field otherwise."""
        if observed == "next_state":
            s = _as_array("states", states, (self.n,), "the state s each transition starts from")
            y = _as_array("next_states", target, (self.n,), "the state s_T reached after T steps")
            s, y = np.broadcast_arrays(s, y)
            return s, y
        if observed == "controls":
            T = self.horizon
            s = _as_array("states", states, (T, self.n), f"the {T} states s_0..s_(T-1) the controls were applied in")
            y = _as_array("controls", target, (T, self.m), f"the {T} controls a_0..a_(T-1)")
            if s.shape[:-2] != y.shape[:-2]:
                raise DataError(f"controls: batch shape {y.shape[:-2]} differs from the states' {s.shape[:-2]}; "
                                "pass one control sequence per state sequence")
            return s, y
        raise ConfigError("observed", f"must be one of {', '.join(OBSERVED)}, got {observed!r}")

    def _observation(self, observed: str, states: Any, target: Any) -> np.ndarray:
        """``y - h(s)``: the part of the observation that depends on the goal (``y = G u + h(s)``)."""
        s, y = self._validated(observed, states, target)
        if observed == "next_state":
            M, _ = self.transition_maps()
            return np.asarray(y - s @ M.T)                            # s_T - Phi2
        Ks = np.einsum("tmn,...tn->...tm", self.gains, s)            # K_t s_t
        return np.asarray((y - Ks).reshape(*y.shape[:-2], self.horizon * self.m))

    # -- analytical inverse ---------------------------------------------------------------------

    def invert(self, states: Any, target: Any, observed: str = "next_state",
               reference: Any = None) -> np.ndarray:
        """The goal that produced an observation, in closed form.

        ``observed='next_state'``: ``states (..., n)`` and ``target`` the state ``s_T (..., n)`` reached
        after the horizon; ``u = -Phi1^+ (s_T - Phi2)`` (OHIO App. B.1.1), which is Eq. (26)
        ``u = (BK)^+ ((A + BK) s - s')`` for ``T = 1`` and an instance of Eq. (23)
        ``u = (BK)^+ (s' - (As + c + Bk))`` with the affine policy ``a = (-K) u + K s``, ``c = 0``.

        ``observed='controls'``: ``states (..., T, n)`` (the states ``s_0..s_{T-1}``) and ``target``
        the controls ``(..., T, m)``; the stacked equations ``a_t = K_t s_t - K_t u`` are solved in
        the same least-squares sense (the action-observed case, OHIO Eq. (13), Alg. 3).

        Where the goal is not unique (:meth:`identifiable_rank` ``< n``) the Moore-Penrose inverse of
        Eq. (23) returns the solution closest to ``reference`` (default: the origin, i.e. the
        minimum-norm goal); every returned goal reproduces the observation exactly.
        """
        G, pinv, _ = self.observation_map(observed)
        y = self._observation(observed, states, target)
        if reference is None:
            return np.asarray(y @ pinv.T)                             # OHIO Eq. (23): u = G^+ y
        u0 = _as_array("reference", reference, (self.n,), "reference goals")
        return np.asarray(u0 + (y - u0 @ G.T) @ pinv.T)             # closest solution to u0

    def loss(self, goal: Any, states: Any, target: Any, observed: str = "next_state") -> np.ndarray:
        """Per-transition mean squared error of an observation predicted from ``goal`` (Alg. 2 / Alg. 3)."""
        u = _as_array("goal", goal, (self.n,), "goal states")
        s, y = self._validated(observed, states, target)
        return np.asarray(_loss(np, self.A, self.B, self.gains, u, s, y, observed))


def _is_number_like(x: Any) -> bool:
    return isinstance(x, (int, float, np.number)) or (isinstance(x, np.ndarray) and x.ndim == 0)


def _riccati(A: np.ndarray, B: np.ndarray, Q: np.ndarray, R: np.ndarray, T: int) -> tuple[np.ndarray, np.ndarray]:
    """Gains ``K_0..K_{T-1}`` ``(T, m, n)`` and costs-to-go ``P_0..P_T`` ``(T+1, n, n)`` (OHIO App. B.1)."""
    n, m = B.shape
    P = Q.copy()                                   # terminal cost P_T = Q
    gains = np.empty((T, m, n))
    costs = np.empty((T + 1, n, n))
    costs[T] = P
    for t in range(T - 1, -1, -1):
        S = R + B.T @ P @ B
        sv = np.linalg.svd(S, compute_uv=False)
        if sv[-1] > RCOND * max(sv[0], 1.0):
            K = -np.linalg.solve(S, B.T @ P @ A)   # OHIO App. B.1: K_t = -(R + B^T P B)^{-1} B^T P A
        else:                                      # R = 0 with B^T P B singular: minimum-norm minimiser
            K = -np.linalg.pinv(S, rcond=RCOND) @ (B.T @ P @ A)
        P = Q + A.T @ P @ (A + B @ K)              # OHIO App. B.1: P_t = Q + A^T P_{t+1} (A + B K_t)
        P = 0.5 * (P + P.T)
        gains[t], costs[t] = K, P
    return gains, costs


def _unroll(A: Any, B: Any, gains: Any, x: Any, u: Any) -> tuple[list[Any], list[Any]]:
    """The ``T`` closed-loop steps on numpy arrays or torch tensors alike (OHIO Alg. 2, lines 5-9)."""
    xs, acts = [x], []
    for K in gains:
        a = (x - u) @ K.T                          # a_t = K_t (x_t - u)   (OHIO App. B.1)
        x = x @ A.T + a @ B.T                      # x_{t+1} = A x_t + B a_t
        xs.append(x)
        acts.append(a)
    return xs, acts


def _loss(xp: Any, A: Any, B: Any, gains: Any, u: Any, s: Any, y: Any, observed: str) -> Any:
    """Per-transition MSE (``xp`` is numpy or torch): ``L(x_T, s_T)`` (Alg. 2) or ``sum_t L(a_t', a_t)`` (Alg. 3)."""
    if observed == "next_state":
        xs, _ = _unroll(A, B, gains, s, u)
        return ((xs[-1] - y) ** 2).mean(-1)
    pred = xp.einsum("tmn,...tn->...tm", gains, s - u[..., None, :])   # a'_t = K_t (s_t - u)
    return ((pred - y) ** 2).mean((-2, -1)) if xp is np else ((pred - y) ** 2).mean(dim=(-2, -1))


# ---------------------------------------------------------------------------------------------
# Numerical inverses (OHIO App. A.4, Alg. 2-3, B.2.1)


@dataclass
class GDInverseConfig(Config):
    """Gradient descent with Adam on the inverse problem (OHIO App. B.2.1)."""

    lr: float = param(0.01, "Adam learning rate", low=0.0, low_open=True)
    max_steps: int = param(10_000, "most Adam steps per transition", low=1)
    tol: float = param(1e-5, "a transition stops once its loss (mean squared error) is below this", low=0.0)


@dataclass
class CEMInverseConfig(Config):
    """Cross-entropy method on the inverse problem (OHIO App. B.2.1, Alg. 2-3)."""

    samples: int = param(50, "candidate goals per iteration", low=2)
    elite_frac: float = param(0.2, "fraction of the candidates kept as elites", low=0.0, high=1.0, low_open=True)
    patience: int = param(4, "stop after this many iterations without a better goal", low=1)
    max_iters: int = param(1000, "most iterations per run", low=1)
    init_std: float = param(1.0, "initial standard deviation of the sampling distribution", low=0.0,
                            low_open=True)
    covariance: str = param("previous-mean", "how the elites refit the Gaussian: full covariance about the previous "
                            "mean (rank-mu form), full covariance about the elites' mean, or diagonal about it",
                            choices=("previous-mean", "elite-mean", "diagonal"))
    reruns: int = param(3, "rerun CEM from the best goal, with a fresh distribution, for transitions whose loss is "
                        "still above rerun_above (B.2.1 reruns CEM where the loss stays high)", low=0)
    rerun_above: float = param(1e-10, "loss above which a transition is rerun", low=0.0)
    tol: float = param(0.0, "also stop once the best loss is below this (0: patience only, as in the paper)",
                       low=0.0)

    def validate(self) -> None:
        super().validate()
        if int(self.elite_frac * self.samples) < 1:
            raise ConfigError("elite_frac", f"keeps no elite of {self.samples} samples ({self.elite_frac}); "
                              f"use elite_frac >= {1 / self.samples:.3g} or more samples")


@dataclass(frozen=True)
class InverseResult:
    """Recovered goals ``(..., n)``, their final loss ``(...)`` and iterations used per transition ``(...)``.

    ``evaluations`` counts controller roll-outs (or control predictions) per transition, summed over
    the batch, so methods can be compared by the work they did.
    """

    goal: np.ndarray
    loss: np.ndarray
    iterations: np.ndarray
    evaluations: int


def _flat_observation(ctrl: GoalLQR, states: Any, target: Any, observed: str) -> tuple[np.ndarray, np.ndarray,
                                                                                     tuple[int, ...]]:
    s, y = ctrl._validated(observed, states, target)
    k = 1 if observed == "next_state" else 2
    batch = s.shape[:s.ndim - k]
    return s.reshape(-1, *s.shape[s.ndim - k:]), y.reshape(-1, *y.shape[y.ndim - k:]), batch


def _initial_goal(ctrl: GoalLQR, s: np.ndarray, y: np.ndarray, observed: str, init: Any) -> np.ndarray:
    if init is not None:
        u0 = _as_array("init", init, (ctrl.n,), "initial goals")
        return np.broadcast_to(u0.reshape(-1, ctrl.n) if u0.ndim > 1 else u0, (s.shape[0], ctrl.n)).copy()
    if observed == "next_state":
        return y.copy()                            # OHIO Alg. 2 line 3: u <- s'
    return np.zeros((s.shape[0], ctrl.n))          # OHIO Alg. 3 line 2: u <- 0


def invert_gd(ctrl: GoalLQR, states: Any, target: Any, observed: str = "next_state",
              config: GDInverseConfig | None = None, init: Any = None) -> InverseResult:
    """Recover goals by gradient descent with Adam through the controller (OHIO Alg. 2-3, App. B.2.1).

    Each transition has its own goal; the batch is optimised at once (Adam acts element-wise, so
    this equals one optimiser per transition) and a transition stops updating once its loss falls
    below ``config.tol``. Initialisation: ``init`` if given, else ``s'`` (Alg. 2) or ``0`` (Alg. 3).
    """
    import torch

    cfg = config or GDInverseConfig()
    s_np, y_np, batch = _flat_observation(ctrl, states, target, observed)
    u0 = _initial_goal(ctrl, s_np, y_np, observed, init)
    P = s_np.shape[0]
    dt = torch.float64
    A, B = torch.as_tensor(ctrl.A, dtype=dt), torch.as_tensor(ctrl.B, dtype=dt)
    gains = torch.as_tensor(ctrl.gains, dtype=dt)
    s, y = torch.as_tensor(s_np, dtype=dt), torch.as_tensor(y_np, dtype=dt)
    u = torch.tensor(u0, dtype=dt, requires_grad=True)
    opt = torch.optim.Adam([u], lr=cfg.lr)
    active = torch.ones(P, dtype=torch.bool)
    steps = torch.zeros(P, dtype=torch.int64)
    for step in range(cfg.max_steps + 1):
        loss = _loss(torch, A, B, gains, u, s, y, observed)
        active &= loss.detach() >= cfg.tol        # OHIO B.2.1: early stop once the loss is below 1e-5
        if step == cfg.max_steps or not bool(active.any()):
            break
        opt.zero_grad(set_to_none=True)
        (loss * active).sum().backward()
        frozen = u.detach().clone()
        opt.step()
        with torch.no_grad():
            u.copy_(torch.where(active[:, None], u, frozen))   # finished transitions keep their goal
        steps += active
    with torch.no_grad():
        final = _loss(torch, A, B, gains, u, s, y, observed)
    evaluations = int(steps.sum()) + P             # one loss evaluation per step, plus the last
    return InverseResult(goal=u.detach().numpy().reshape(*batch, ctrl.n), loss=final.numpy().reshape(batch),
                         iterations=steps.numpy().reshape(batch), evaluations=evaluations)


def invert_cem(ctrl: GoalLQR, states: Any, target: Any, observed: str = "next_state",
               config: CEMInverseConfig | None = None, init: Any = None, seed: int = 0) -> InverseResult:
    """Recover goals with the cross-entropy method (OHIO Alg. 2-3, App. B.2.1).

    Per transition a Gaussian over goals, centred on the initial goal (as for :func:`invert_gd`)
    with standard deviation ``init_std``: sample ``samples`` goals, keep the best ``elite_frac`` of
    them, refit the Gaussian to the elites (``covariance``); stop after ``patience`` iterations in
    which no sample beat the run's best (or at ``max_iters``, or below ``tol``). Transitions whose
    best loss is still above ``rerun_above`` are rerun from their best goal, up to ``reruns`` times.
    Returns the best goal seen; deterministic for a given ``seed`` and batch.
    """
    cfg = config or CEMInverseConfig()
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ConfigError("seed", f"must be an integer, got {seed!r}")
    s, y, batch = _flat_observation(ctrl, states, target, observed)
    rng = np.random.default_rng(seed)
    best = _initial_goal(ctrl, s, y, observed, init)
    best_loss = _loss(np, ctrl.A, ctrl.B, ctrl.gains, best, s, y, observed)
    iters = np.zeros(s.shape[0], dtype=np.int64)
    evaluations = s.shape[0]
    todo = np.arange(s.shape[0])
    if cfg.tol > 0:
        todo = todo[best_loss[todo] >= cfg.tol]
    for _ in range(cfg.reruns + 1):
        if todo.size == 0:
            break
        u, loss, it, ev = _cem_run(ctrl, s[todo], y[todo], observed, best[todo], cfg, rng)
        better = loss < best_loss[todo]
        best[todo[better]] = u[better]
        best_loss[todo] = np.minimum(best_loss[todo], loss)
        iters[todo] += it
        evaluations += ev
        todo = todo[best_loss[todo] > cfg.rerun_above]          # OHIO B.2.1: rerun where the loss stays high
        if cfg.tol > 0:
            todo = todo[best_loss[todo] >= cfg.tol]
    return InverseResult(goal=best.reshape(*batch, ctrl.n), loss=best_loss.reshape(batch),
                         iterations=iters.reshape(batch), evaluations=evaluations)


def _cem_run(ctrl: GoalLQR, s: np.ndarray, y: np.ndarray, observed: str, mean0: np.ndarray, cfg: CEMInverseConfig,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """One CEM run per transition, batched: best sampled goal, its loss, iterations, roll-outs."""
    P, n = mean0.shape
    n_elite = max(1, int(cfg.elite_frac * cfg.samples))
    mean = mean0.copy()
    cov = np.repeat(np.eye(n)[None] * cfg.init_std ** 2, P, axis=0)
    best = mean0.copy()
    best_loss = np.full(P, np.inf)          # a run's patience counts its own samples only
    stall = np.zeros(P, dtype=np.int64)
    iters = np.zeros(P, dtype=np.int64)
    active = np.ones(P, dtype=bool)
    cols = np.arange(P)
    evaluations = 0
    for _ in range(cfg.max_iters):
        if not active.any():
            break
        lam, V = np.linalg.eigh(cov)
        root = V * np.sqrt(np.clip(lam, 0.0, None))[:, None, :]             # cov = root root^T
        cand = mean + np.einsum("pij,spj->spi", root, rng.standard_normal((cfg.samples, P, n)))  # (S, P, n)
        L = _loss(np, ctrl.A, ctrl.B, ctrl.gains, cand, s, y, observed)      # (S, P)
        evaluations += cfg.samples * int(active.sum())
        order = np.argsort(L, axis=0, kind="stable")[:n_elite]              # top elite_frac (OHIO B.2.1)
        elites = np.take_along_axis(cand, order[..., None], axis=0)         # (E, P, n)
        it_loss = L[order[0], cols]
        improved = active & (it_loss < best_loss)
        best[improved] = cand[order[0], cols][improved]
        best_loss = np.where(improved, it_loss, best_loss)
        stall = np.where(improved, 0, stall + active)
        new_mean = elites.mean(axis=0)
        d = elites - (mean if cfg.covariance == "previous-mean" else new_mean)
        new_cov = np.einsum("epi,epj->pij", d, d) / n_elite
        if cfg.covariance == "diagonal":
            new_cov = new_cov * np.eye(n)
        mean[active] = new_mean[active]
        cov[active] = new_cov[active]
        iters += active
        active &= stall < cfg.patience                                      # OHIO B.2.1: 4 steps w/o improvement
        if cfg.tol > 0:
            active &= best_loss >= cfg.tol
    return best, best_loss, iters, evaluations


def invert_analytical(ctrl: GoalLQR, states: Any, target: Any, observed: str = "next_state",
                      reference: Any = None) -> InverseResult:
    """:meth:`GoalLQR.invert` with the same result type as the numerical inverses."""
    goal = ctrl.invert(states, target, observed, reference=reference)
    loss = ctrl.loss(goal, states, target, observed)
    return InverseResult(goal=goal, loss=loss, iterations=np.zeros(loss.shape, dtype=np.int64),
                         evaluations=int(loss.size))


METHODS: tuple[str, ...] = ("analytical", "gd", "cem")


def recover_goals(ctrl: GoalLQR, states: Any, target: Any, *, method: str = "analytical",
                  observed: str = "next_state", gd: GDInverseConfig | None = None,
                  cem: CEMInverseConfig | None = None, seed: int = 0) -> InverseResult:
    """One entry point for the three inverses (``method`` in :data:`METHODS`)."""
    if method == "analytical":
        return invert_analytical(ctrl, states, target, observed)
    if method == "gd":
        return invert_gd(ctrl, states, target, observed, gd)
    if method == "cem":
        return invert_cem(ctrl, states, target, observed, cem, seed=seed)
    raise ConfigError("method", f"must be one of {', '.join(METHODS)}, got {method!r}")


def double_integrator(dt: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """``A_s = [[1, dt], [0, 1]]``, ``B_s = [[dt^2 / 2], [dt]]`` (OHIO App. C.1, ``dt = 0.5``)."""
    if isinstance(dt, bool) or not isinstance(dt, (int, float, np.number)) or not np.isfinite(dt) or dt <= 0:
        raise ConfigError("dt", f"must be a positive time step, got {dt!r}")
    dt = float(dt)
    return np.array([[1.0, dt], [0.0, 1.0]]), np.array([[dt * dt / 2.0], [dt]])


__all__ = ["CEMInverseConfig", "GDInverseConfig", "GoalLQR", "InverseResult", "METHODS", "OBSERVED",
           "double_integrator", "invert_analytical", "invert_cem", "invert_gd", "recover_goals"]

