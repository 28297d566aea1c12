r"""Differentiable wrappers around any combinatorial solver ``cost -> solution`` (torch autograd).

A *solve function* maps a cost array ``w`` (numpy, float64) to a solution ``y`` **of the same
shape** that optimises the linear objective ``<w, y>`` over a fixed feasible set ``Y``
(``sense='min'``: ``y(w) = argmin_{y in Y} <w, y>``; ``'max'``: argmax). Every solver in
:mod:`hieralloc.solvers` fits, e.g.::

    solve = lambda s: assign_capacitated(s, capacity=3).x              # max, scores (n, m)
    solve = lambda w: max_weight_matching(w, allow_sit_out=True).x       # max, weights (n, n)
    solve = lambda c: reb_model.solve(q, q_hat, cost=c).flows            # min, edge costs (E,)

Such ``y(w)`` is piecewise constant: its true derivative is zero almost everywhere. Two standard
remedies are implemented.

**Blackbox differentiation** (Vlastelica et al. 2020; LPMARL App. B, Eq. (10)-(12), App. C.2
Eq. (16)). Forward returns the exact ``y = y(w)``. Backward, given ``g = dL/dy`` at ``y``::

    min:  w' = w + lam * g,   y_lam = y(w'),   dL/dw := -(y - y_lam) / lam      # Eq. (10)-(12)
    max:  w' = w - lam * g,   y_lam = y(w'),   dL/dw :=  (y - y_lam) / lam

This is the exact gradient of the piecewise-affine interpolation of the linearised loss
``f_lam(w) = (phi(w + lam g) - phi(w)) / lam`` with ``phi(w) = min_y <w, y>`` (for ``max``,
apply it to ``-w``); ``tests/solvers`` checks that identity by finite differences. LPMARL
maximises ``J`` with ``C' = C + lam dJ/dZ`` (Eq. (12)) and ``dJ/dC = (Z_lam - Z) / lam``
(Eq. (16)); with ``L = -J`` that is the ``max`` rule above.

**Perturbed optimiser** (Berthet et al. 2020). Forward returns the Monte-Carlo estimate of the
smooth expectation ``y_sigma(w) = E_Z[y(w + sigma Z)]``, ``Z ~ N(0, I)``. Its Jacobian is
``(1/sigma) E[y(w + sigma Z) Z^T]`` (Gaussian integration by parts), so backward returns::

    dL/dw = (1/sigma) E[(g . y(w + sigma Z)) Z]

estimated with the same samples, using antithetic pairs ``(Z, -Z)`` by default (or a
leave-one-out baseline) to reduce variance. :func:`perturbed_fenchel_young_loss` gives the
Fenchel-Young loss whose gradient is ``y_sigma(w) - y_target`` (``max``), the recommended way to
learn costs that reproduce target solutions.

Batching: costs of shape ``(*batch, *event)`` with ``event_ndim`` trailing problem dimensions
are solved problem by problem (``event_ndim=None``: the whole tensor is one problem).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch

from hieralloc.solvers.errors import MalformedProblemError

SolveFn = Callable[[np.ndarray], np.ndarray]
Sense = Literal["min", "max"]


def _check(sense: str, positive: dict[str, float]) -> None:
    if sense not in ("min", "max"):
        raise MalformedProblemError(f"sense must be 'min' or 'max', got {sense!r}", constraint="sense")
    for name, v in positive.items():
        if not (np.isfinite(v) and v > 0):
            raise MalformedProblemError(f"{name} must be a positive number, got {v!r}", constraint=name)


def _flatten(cost: torch.Tensor, event_ndim: int | None) -> tuple[np.ndarray, tuple[int, ...]]:
    """Cost as a float64 array ``(B, *event)`` plus the batch shape."""
    if not torch.is_tensor(cost):
        raise MalformedProblemError("cost must be a torch.Tensor", constraint="cost")
    nd = cost.dim() if event_ndim is None else int(event_ndim)
    if nd < 0 or nd > cost.dim():
        raise MalformedProblemError(f"event_ndim={event_ndim} but cost has {cost.dim()} dimensions",
                                    constraint="event_ndim")
    c = cost.detach().to("cpu", torch.float64).numpy()
    if not np.isfinite(c).all():
        raise MalformedProblemError("cost contains NaN or inf; the solver needs finite costs",
                                    constraint="cost")
    batch = tuple(c.shape[: c.ndim - nd])
    event = tuple(c.shape[c.ndim - nd:])
    return c.reshape((-1, *event)), batch


def _solve_all(solve_fn: SolveFn, costs: np.ndarray) -> np.ndarray:
    """Solve each problem ``costs[b]``; the solution must have the cost's shape."""
    out = np.empty_like(costs)
    for b in range(costs.shape[0]):
        y = np.asarray(solve_fn(costs[b]), dtype=float)
        if y.shape != costs.shape[1:]:
            raise MalformedProblemError(
                f"solve_fn returned shape {y.shape} for a cost of shape {costs.shape[1:]}: the solution must "
                "have the cost's shape (objective <cost, solution>)", constraint="solve_fn")
        out[b] = y
    return out


def _rng(generator: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(generator, np.random.Generator):
        return generator
    if generator is None:  # follow torch.manual_seed for reproducibility
        return np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
    return np.random.default_rng(int(generator))


# ---------------------------------------------------------------------------------------------
# Blackbox differentiation


class _Blackbox(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, cost: torch.Tensor, solve_fn: SolveFn, lam: float, sense: str,
                event_ndim: int | None) -> torch.Tensor:
        c, _ = _flatten(cost, event_ndim)
        y = _solve_all(solve_fn, c)
        ctx.solve_fn, ctx.lam, ctx.sense, ctx.c, ctx.y = solve_fn, lam, sense, c, y
        return torch.as_tensor(y.reshape(cost.shape), dtype=cost.dtype, device=cost.device)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> Any:
        c, y, lam = ctx.c, ctx.y, ctx.lam
        g = grad_out.detach().to("cpu", torch.float64).numpy().reshape(c.shape)
        sign = 1.0 if ctx.sense == "min" else -1.0
        grad = np.zeros_like(c)
        for b in range(c.shape[0]):
            if not g[b].any():
                continue  # zero upstream gradient: y_lam = y, nothing to solve
            w_prime = c[b] + sign * lam * g[b]                   # LPMARL Eq. (12) (sign for min/max)
            y_lam = np.asarray(ctx.solve_fn(w_prime), dtype=float)  # Eq. (11)
            grad[b] = sign * (y_lam - y[b]) / lam                # Eq. (10) / (16)
        out = torch.as_tensor(grad.reshape(grad_out.shape), dtype=grad_out.dtype, device=grad_out.device)
        return out, None, None, None, None


def blackbox(
    cost: torch.Tensor,
    solve_fn: SolveFn,
    lam: float = 10.0,
    sense: Sense = "min",
    event_ndim: int | None = None,
) -> torch.Tensor:
    r"""Exact solver output in the forward pass, Vlastelica's interpolated gradient backward.

    Forward: :math:`y = \arg\min_{y\in Y}\langle w, y\rangle` (or argmax). Backward with
    :math:`g = \partial L/\partial y`:

    .. math::

        \nabla_w L \approx -\tfrac{1}{\lambda}\big(y - y(w + \lambda g)\big)\;(\min),\qquad
        \nabla_w L \approx \tfrac{1}{\lambda}\big(y - y(w - \lambda g)\big)\;(\max).

    Args:
        cost: ``(*batch, *event)`` tensor of costs (scores when ``sense='max'``).
        solve_fn: numpy ``cost -> solution`` of the same shape.
        lam: interpolation strength ``lambda > 0`` (LPMARL's :math:`\lambda`); larger values give
            non-zero gradients further from a decision boundary, smaller ones a closer fit.
        sense: whether ``solve_fn`` minimises or maximises ``<cost, y>``.
        event_ndim: trailing dimensions forming one problem (``None``: all).
    """
    _check(sense, {"lam": lam})
    out: torch.Tensor = _Blackbox.apply(cost, solve_fn, float(lam), sense, event_ndim)
    return out


class BlackboxSolver(torch.nn.Module):
    """Module form of :func:`blackbox` (holds the solve function and hyper-parameters)."""

    def __init__(self, solve_fn: SolveFn, lam: float = 10.0, sense: Sense = "min",
                 event_ndim: int | None = None) -> None:
        super().__init__()
        _check(sense, {"lam": lam})
        self.solve_fn, self.lam, self.sense, self.event_ndim = solve_fn, float(lam), sense, event_ndim

    def forward(self, cost: torch.Tensor) -> torch.Tensor:
        return blackbox(cost, self.solve_fn, self.lam, self.sense, self.event_ndim)


# ---------------------------------------------------------------------------------------------
# Perturbed optimiser


def _sample(c: np.ndarray, solve_fn: SolveFn, sigma: float, n_samples: int, antithetic: bool,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Noise ``Z`` ``(S, B, *event)`` and solutions ``Y = y(c + sigma Z)`` of the same shape."""
    if antithetic:
        half = rng.standard_normal((n_samples - n_samples // 2, *c.shape))
        Z = np.concatenate([half, -half[: n_samples // 2]], axis=0)
    else:
        Z = rng.standard_normal((n_samples, *c.shape))
    Y = np.empty_like(Z)
    for s in range(n_samples):
        Y[s] = _solve_all(solve_fn, c + sigma * Z[s])
    return Z, Y


def _stein_grad(g: np.ndarray, Z: np.ndarray, Y: np.ndarray, sigma: float, antithetic: bool) -> np.ndarray:
    """``(1/sigma) E[(g . Y) Z]`` with a variance-reducing baseline. ``g``: ``(B, *event)``."""
    S = Y.shape[0]
    axes = tuple(range(2, Y.ndim))
    dots = (Y * g[None]).sum(axis=axes)  # (S, B)
    if not antithetic and S > 1:
        dots = dots - (dots.sum(axis=0, keepdims=True) - dots) / (S - 1)  # leave-one-out baseline
    shape = dots.shape + (1,) * (Y.ndim - 2)
    return (dots.reshape(shape) * Z).mean(axis=0) / sigma


class _Perturbed(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, cost: torch.Tensor, solve_fn: SolveFn, sigma: float, n_samples: int,
                antithetic: bool, rng: np.random.Generator, event_ndim: int | None) -> torch.Tensor:
        c, _ = _flatten(cost, event_ndim)
        Z, Y = _sample(c, solve_fn, sigma, n_samples, antithetic, rng)
        ctx.Z, ctx.Y, ctx.sigma, ctx.antithetic = Z, Y, sigma, antithetic
        return torch.as_tensor(Y.mean(axis=0).reshape(cost.shape), dtype=cost.dtype, device=cost.device)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> Any:
        g = grad_out.detach().to("cpu", torch.float64).numpy().reshape(ctx.Y.shape[1:])
        grad = _stein_grad(g, ctx.Z, ctx.Y, ctx.sigma, ctx.antithetic)
        out = torch.as_tensor(grad.reshape(grad_out.shape), dtype=grad_out.dtype, device=grad_out.device)
        return out, None, None, None, None, None, None


def perturbed(
    cost: torch.Tensor,
    solve_fn: SolveFn,
    sigma: float = 1.0,
    n_samples: int = 32,
    event_ndim: int | None = None,
    *,
    antithetic: bool = True,
    generator: np.random.Generator | int | None = None,
) -> torch.Tensor:
    r"""Perturbed optimiser (Berthet et al. 2020): a smooth, differentiable solver output.

    .. math::

        y_\sigma(w) = \mathbb{E}_{Z\sim\mathcal N(0,I)}\,[y(w+\sigma Z)],\qquad
        \partial_w y_\sigma(w) = \tfrac{1}{\sigma}\,\mathbb{E}\,[y(w+\sigma Z)\,Z^\top].

    Both are Monte-Carlo estimates over ``n_samples`` draws (``n_samples`` solver calls per
    problem in the forward pass, none in the backward pass). The same formulas hold for
    ``min`` and ``max`` solvers.

    Args:
        cost: ``(*batch, *event)`` costs/scores.
        solve_fn: numpy ``cost -> solution`` of the same shape.
        sigma: noise scale ``sigma > 0`` (temperature of the smoothing).
        n_samples: Monte-Carlo samples per problem.
        event_ndim: trailing dimensions forming one problem (``None``: all).
        antithetic: draw pairs ``(Z, -Z)`` (lower variance); otherwise use a leave-one-out
            baseline in the gradient.
        generator: numpy Generator or seed; ``None`` derives one from torch's RNG, so
            ``torch.manual_seed`` makes runs reproducible.
    """
    _check("min", {"sigma": sigma})
    if int(n_samples) < 1:
        raise MalformedProblemError(f"n_samples must be >= 1, got {n_samples}", constraint="n_samples")
    out: torch.Tensor = _Perturbed.apply(
        cost, solve_fn, float(sigma), int(n_samples), bool(antithetic), _rng(generator), event_ndim)
    return out


class PerturbedSolver(torch.nn.Module):
    """Module form of :func:`perturbed`; owns a seeded noise generator (advanced every call)."""

    def __init__(self, solve_fn: SolveFn, sigma: float = 1.0, n_samples: int = 32,
                 event_ndim: int | None = None, *, antithetic: bool = True, seed: int | None = None) -> None:
        super().__init__()
        _check("min", {"sigma": sigma})
        self.solve_fn, self.sigma, self.n_samples = solve_fn, float(sigma), int(n_samples)
        self.event_ndim, self.antithetic = event_ndim, antithetic
        self.rng = _rng(seed)

    def forward(self, cost: torch.Tensor) -> torch.Tensor:
        return perturbed(cost, self.solve_fn, self.sigma, self.n_samples, self.event_ndim,
                         antithetic=self.antithetic, generator=self.rng)


class _PerturbedFY(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, cost: torch.Tensor, target: torch.Tensor, solve_fn: SolveFn, sigma: float,
                n_samples: int, sense: str, antithetic: bool, rng: np.random.Generator,
                event_ndim: int | None) -> torch.Tensor:
        c, batch = _flatten(cost, event_ndim)
        t = target.detach().to("cpu", torch.float64).numpy().reshape(c.shape)
        Z, Y = _sample(c, solve_fn, sigma, n_samples, antithetic, rng)
        axes = tuple(range(1, c.ndim))
        # F_sigma(w) = E[opt_y <w + sigma Z, y>]  (smoothed optimal value)
        F = ((c[None] + sigma * Z) * Y).sum(axis=tuple(range(2, Y.ndim))).mean(axis=0)
        lin = (c * t).sum(axis=axes)
        sign = 1.0 if sense == "max" else -1.0
        loss = sign * (F - lin)  # >= 0 up to the (constant) regulariser term and MC error
        ctx.grad_dir = sign * (Y.mean(axis=0) - t)
        ctx.shape = cost.shape
        return torch.as_tensor(loss.reshape(batch), dtype=cost.dtype, device=cost.device)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> Any:
        g = grad_out.detach().to("cpu", torch.float64).numpy().reshape(-1)
        shape = (-1,) + (1,) * (ctx.grad_dir.ndim - 1)
        grad = g.reshape(shape) * ctx.grad_dir
        out = torch.as_tensor(grad.reshape(ctx.shape), dtype=grad_out.dtype, device=grad_out.device)
        return out, None, None, None, None, None, None, None, None


def perturbed_fenchel_young_loss(
    cost: torch.Tensor,
    target: torch.Tensor,
    solve_fn: SolveFn,
    sigma: float = 1.0,
    n_samples: int = 32,
    sense: Sense = "max",
    event_ndim: int | None = None,
    *,
    antithetic: bool = True,
    generator: np.random.Generator | int | None = None,
) -> torch.Tensor:
    r"""Perturbed Fenchel-Young loss (Berthet et al. 2020, Sec. 4), one value per problem.

    For ``max``: :math:`L(w; y^\star) = F_\sigma(w) - \langle w, y^\star\rangle` with
    :math:`F_\sigma(w) = \mathbb E[\max_y \langle w+\sigma Z, y\rangle]`; its gradient is
    :math:`y_\sigma(w) - y^\star` (for ``min`` the signs flip: :math:`y^\star - y_\sigma(w)`).
    It is convex in ``w`` and minimised when the smoothed solution equals the target; the value
    omits the constant regulariser term and is a Monte-Carlo estimate.

    Returns a tensor of the batch shape (``()`` for a single problem).
    """
    _check(sense, {"sigma": sigma})
    if target.shape != cost.shape:
        raise MalformedProblemError(f"target has shape {tuple(target.shape)}, cost {tuple(cost.shape)}; "
                                    "they must match", constraint="target")
    out: torch.Tensor = _PerturbedFY.apply(
        cost, target, solve_fn, float(sigma), int(n_samples), sense, bool(antithetic), _rng(generator),
        event_ndim)
    return out


__all__ = [
    "BlackboxSolver",
    "PerturbedSolver",
    "SolveFn",
    "blackbox",
    "perturbed",
    "perturbed_fenchel_young_loss",
]
