"""Action spaces and policy distributions of the OHIO learners (OHIO App. B.3.3, B.4.3, B.5.1).

Two formulations share every learner:

* ``ohio``: the action is the high-level *goal* of the family's :class:`~hieralloc.ohio.Formulation`,
  ``(N + P,)``: a distribution over the N nodes (Dirichlet: the desired idle-vehicle distribution in
  mobility, the desired inventory distribution over warehouse and stores in the supply chain),
  followed by one production fraction of capacity per producer (Beta; none in mobility). The
  environment (``action_mode='goal'``) scales the fractions by the capacities.
* ``e2e``: the end-to-end baseline; the action sets one flow per flow edge, ``(F,)`` fractions of
  the edges' bounds (``action_mode='flow'``), drawn from a Gaussian per edge (mobility, B.3.3) or a
  Beta per edge (supply chain, B.4.3). Gaussian actions are clipped into [0, 1] when executed.

:class:`ActionSpec` describes one of these spaces; :func:`make_dist` turns a policy network's raw
outputs into a ``torch.distributions`` object whose ``log_prob`` / ``entropy`` are per sample
(summed over action dimensions) and whose ``rsample`` is reparameterised (Dirichlet and Beta by
implicit reparameterisation, Figurnov et al. 2018, as torch implements them), so SAC's actor loss
back-propagates through samples of every head.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.distributions import Beta, Dirichlet, Distribution, Independent, Normal

#: smallest simplex coordinate / Beta value used in log-densities (data on the boundary are moved inside)
EPS = 1e-6
#: added to softplus concentrations so that no Dirichlet parameter is zero
MIN_CONCENTRATION = 1e-3


@dataclass(frozen=True)
class ActionSpec:
    """One learner action space (see the module docstring).

    ``kind``: ``'goal'`` (Dirichlet over ``n_nodes`` plus a Beta per producer) or ``'flow'`` (one
    ``edge_dist`` per flow edge). ``producers`` (P,) and ``flow_edges`` (2, F) come from the
    scenario's :class:`~hieralloc.ohio.GraphLayout`.
    """

    kind: str
    n_nodes: int
    producers: tuple[int, ...] = ()
    flow_edges: tuple[tuple[int, ...], tuple[int, ...]] = ((), ())
    edge_dist: str = "gaussian"

    def __post_init__(self) -> None:
        if self.kind not in ("goal", "flow"):
            raise ValueError(f"unknown action kind {self.kind!r} (goal or flow)")
        if self.edge_dist not in ("gaussian", "beta"):
            raise ValueError(f"unknown edge distribution {self.edge_dist!r} (gaussian or beta)")

    @property
    def n_producers(self) -> int:
        return len(self.producers)

    @property
    def n_flow_edges(self) -> int:
        return len(self.flow_edges[0])

    @property
    def dim(self) -> int:
        """Length of an action vector."""
        return self.n_nodes + self.n_producers if self.kind == "goal" else self.n_flow_edges

    @property
    def n_params(self) -> int:
        """Raw network outputs per sample: N concentrations + 2P Beta parameters, or 2 per flow edge."""
        return self.n_nodes + 2 * self.n_producers if self.kind == "goal" else 2 * self.n_flow_edges

    def producer_index(self) -> torch.Tensor:
        return torch.as_tensor(self.producers, dtype=torch.long)

    def edge_index(self) -> torch.Tensor:
        return torch.as_tensor(np.asarray(self.flow_edges, dtype=np.int64).reshape(2, -1))

    # ------------------------------------------------------------------ helpers on action tensors
    def clean(self, action: torch.Tensor) -> torch.Tensor:
        """Move actions strictly inside the support where log-densities are finite: the simplex
        part to coordinates >= EPS (renormalised), Beta parts into [EPS, 1 - EPS]; Gaussian flows
        are left as they are."""
        if self.kind == "goal":
            n = self.n_nodes
            simplex = action[..., :n].clamp(min=0.0)
            tot = simplex.sum(-1, keepdim=True)
            simplex = torch.where(tot > 0, simplex / tot.clamp(min=1e-12), torch.full_like(simplex, 1.0 / n))
            simplex = simplex.clamp(min=EPS)
            simplex = simplex / simplex.sum(-1, keepdim=True)
            if not self.n_producers:
                return simplex
            return torch.cat([simplex, action[..., n:].clamp(EPS, 1 - EPS)], dim=-1)
        if self.edge_dist == "beta":
            return action.clamp(EPS, 1 - EPS)
        return action

    def to_env(self, action: torch.Tensor) -> torch.Tensor:
        """The executed action: Gaussian flows clipped into [0, 1], everything else unchanged."""
        if self.kind == "flow" and self.edge_dist == "gaussian":
            return action.clamp(0.0, 1.0)
        return action

    def uniform_log_density(self) -> float:
        """Log-density of the uniform distribution on the action space (CQL's random actions):
        Dirichlet(1) on the (N-1)-simplex has density Gamma(N); the unit box has density 1."""
        return math.lgamma(self.n_nodes) if self.kind == "goal" else 0.0

    def sample_uniform(self, shape: tuple[int, ...], gen: np.random.Generator) -> torch.Tensor:
        """``shape + (dim,)`` actions uniform on the action space (Dirichlet(1) x U(0,1)^P, or U(0,1)^F)."""
        if self.kind == "goal":
            simplex = gen.dirichlet(np.ones(self.n_nodes), size=shape)
            prod = gen.random((*shape, self.n_producers))
            return torch.as_tensor(np.concatenate([simplex, prod], axis=-1), dtype=torch.float32)
        return torch.as_tensor(gen.random((*shape, self.dim)), dtype=torch.float32)


class GoalDistribution(Distribution):
    """Dirichlet over the nodes times independent Betas over the producers (OHIO B.5.1)."""

    arg_constraints: dict = {}
    has_rsample = True

    def __init__(self, concentration: torch.Tensor, alpha: torch.Tensor | None, beta: torch.Tensor | None,
                 spec: ActionSpec) -> None:
        self.spec = spec
        self.dirichlet = Dirichlet(concentration)
        self.beta = Independent(Beta(alpha, beta), 1) if alpha is not None and beta is not None else None
        super().__init__(batch_shape=concentration.shape[:-1], validate_args=False)

    def rsample(self, sample_shape: torch.Size | list[int] | tuple[int, ...] = ()) -> torch.Tensor:
        sample_shape = torch.Size(sample_shape)
        parts = [self.dirichlet.rsample(sample_shape)]
        if self.beta is not None:
            parts.append(self.beta.rsample(sample_shape))
        return torch.cat(parts, dim=-1)

    def sample(self, sample_shape: torch.Size | list[int] | tuple[int, ...] = ()) -> torch.Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        v = self.spec.clean(value)
        n = self.spec.n_nodes
        lp = self.dirichlet.log_prob(v[..., :n])
        if self.beta is not None:
            lp = lp + self.beta.log_prob(v[..., n:])
        return lp

    def entropy(self) -> torch.Tensor:
        h = self.dirichlet.entropy()
        if self.beta is not None:
            h = h + self.beta.entropy()
        return h

    @property
    def mean(self) -> torch.Tensor:
        parts = [self.dirichlet.mean]
        if self.beta is not None:
            parts.append(self.beta.mean)
        return torch.cat(parts, dim=-1)


class EdgeBeta(Independent):
    """Independent Beta per flow edge; log_prob moves values into [EPS, 1 - EPS] first."""

    def __init__(self, alpha: torch.Tensor, beta: torch.Tensor) -> None:
        super().__init__(Beta(alpha, beta), 1, validate_args=False)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return super().log_prob(value.clamp(EPS, 1 - EPS))


def make_dist(spec: ActionSpec, params: torch.Tensor) -> Distribution:
    """The policy distribution for raw outputs ``params`` ``(..., spec.n_params)``.

    * goal: concentrations ``softplus(.) + MIN_CONCENTRATION`` (OHIO B.5.1's Softplus), Beta
      parameters ``1 + softplus(.)`` (unimodal, Chou et al. 2017, for finite log-densities at the
      capacity bounds);
    * flow, Gaussian: mean and ``std = exp(clamp(log_std, -5, 2))`` per edge (B.3.3);
    * flow, Beta: ``1 + softplus(.)`` per edge (B.4.3).
    """
    f = nn.functional.softplus
    if spec.kind == "goal":
        n, p = spec.n_nodes, spec.n_producers
        conc = f(params[..., :n]) + MIN_CONCENTRATION
        if p == 0:
            return GoalDistribution(conc, None, None, spec)
        ab = params[..., n:n + 2 * p]
        return GoalDistribution(conc, 1.0 + f(ab[..., :p]), 1.0 + f(ab[..., p:]), spec)
    k = spec.n_flow_edges
    a, b = params[..., :k], params[..., k:2 * k]
    if spec.edge_dist == "gaussian":
        return Independent(Normal(a, torch.clamp(b, -5.0, 2.0).exp()), 1, validate_args=False)
    return EdgeBeta(1.0 + f(a), 1.0 + f(b))


def deterministic_action(dist: Distribution) -> torch.Tensor:
    """The greedy action: the distribution's mean (Dirichlet, Beta and Gaussian means)."""
    return dist.mean


__all__ = ["EPS", "MIN_CONCENTRATION", "ActionSpec", "EdgeBeta", "GoalDistribution", "deterministic_action",
           "make_dist"]
