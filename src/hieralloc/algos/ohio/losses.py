"""Loss terms of SAC, BC, IQL, CQL and Cal-QL as pure functions of tensors.

Each is tested on hand-checkable inputs (tests/algos/test_ohio_losses.py); the learners in
:mod:`hieralloc.algos.ohio.learners` compose them. Shapes: ``(B,)`` per transition unless noted.

References: SAC, Haarnoja et al. (2018); IQL, Kostrikov et al. (2021); CQL, Kumar et al. (2020);
Cal-QL, Nakamoto et al. (2023); AWR weights as in IQL's reference implementation.
"""

from __future__ import annotations

import numpy as np
import torch


def td_target(reward: torch.Tensor, done: torch.Tensor, next_value: torch.Tensor, gamma: float) -> torch.Tensor:
    """``y = r + gamma (1 - d) V(s')`` (IQL Eq. (6)'s target; no gradient flows into it)."""
    return (reward + gamma * (1.0 - done.to(reward.dtype)) * next_value).detach()


def soft_td_target(reward: torch.Tensor, done: torch.Tensor, q1_next: torch.Tensor, q2_next: torch.Tensor,
                   logp_next: torch.Tensor, gamma: float, alpha: float) -> torch.Tensor:
    """Clipped double-Q soft target (SAC Eqs. (3), (5); Fujimoto et al. 2018's min over two target
    critics, OHIO B.5.3 "double estimator ... target Q-networks"):
    ``y = r + gamma (1 - d) (min(Q1'(s', a'), Q2'(s', a')) - alpha log pi(a' | s'))``, ``a' ~ pi(.|s')``."""
    soft_v = torch.min(q1_next, q2_next) - alpha * logp_next
    return td_target(reward, done, soft_v, gamma)


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean (pred - target)^2`` (the squared TD error of SAC Eq. (5) / IQL Eq. (6), without SAC's 1/2)."""
    return ((pred - target) ** 2).mean()


def sac_actor_loss(q: torch.Tensor, logp: torch.Tensor, alpha: float) -> torch.Tensor:
    """SAC Eq. (12): ``E_s E_{a ~ pi} [alpha log pi(a | s) - Q(s, a)]`` with reparameterised ``a``."""
    return (alpha * logp - q).mean()


def expectile_loss(diff: torch.Tensor, tau: float) -> torch.Tensor:
    """IQL Eq. (5): ``L_2^tau(u) = |tau - 1(u < 0)| u^2`` averaged, ``u = Q(s, a) - V(s)``.

    With ``tau > 0.5`` positive errors (Q above V) weigh more, so V approaches an upper expectile of
    Q over the data's actions (tau = 0.5 is the mean squared error / 2)."""
    weight = torch.where(diff < 0, 1.0 - tau, tau)
    return (weight * diff**2).mean()


def awr_weights(advantage: torch.Tensor, temperature: float, max_weight: float = 100.0) -> torch.Tensor:
    """IQL Eq. (7)'s ``exp(beta (Q(s, a) - V(s)))``, clipped at ``max_weight`` (IQL's code: 100)."""
    return torch.exp(temperature * advantage.detach()).clamp(max=max_weight)


def awr_policy_loss(logp: torch.Tensor, advantage: torch.Tensor, temperature: float,
                    max_weight: float = 100.0) -> torch.Tensor:
    """IQL Eq. (7), advantage-weighted regression: ``-E[exp(beta A) log pi(a | s)]`` over data."""
    return -(awr_weights(advantage, temperature, max_weight) * logp).mean()


def bc_loss(logp: torch.Tensor) -> torch.Tensor:
    """Behaviour cloning: the negative log-likelihood ``-E_{(s, a) ~ D} log pi(a | s)``."""
    return -logp.mean()


def cql_sampled_values(q_rand: torch.Tensor, log_density_rand: float | torch.Tensor,
                       q_pi: torch.Tensor, logp_pi: torch.Tensor,
                       q_pi_next: torch.Tensor, logp_pi_next: torch.Tensor,
                       lower_bound: torch.Tensor | None = None) -> torch.Tensor:
    """Importance-weighted Q-values for CQL(H)'s ``log sum_a exp Q(s, a)`` (CQL App. F).

    ``q_rand`` ``(B, M)`` at M uniform actions with log-density ``log_density_rand``; ``q_pi``,
    ``q_pi_next`` ``(B, M)`` at M actions of the current policy drawn at s and at s' (scored at s),
    with their log-probabilities. Returns ``(B, 3M)``: ``Q - log density`` of every sample, whose
    logsumexp estimates ``log integral exp Q(s, a) da`` up to the constant ``log 3M``.

    Cal-QL (Nakamoto et al. 2023, Eq. (5) and its Alg. 1): with ``lower_bound`` ``(B,)`` (the
    Monte-Carlo return of the behaviour policy, ``V^mu(s)``), the policy-action values are
    replaced by ``max(Q, V^mu)`` before weighting, so the penalty stops pushing Q below the
    behaviour policy's value (calibration). Uniform-action values are not bounded (as in Cal-QL's code).
    """
    if lower_bound is not None:
        lb = lower_bound.detach().unsqueeze(-1)
        q_pi = torch.max(q_pi, lb)
        q_pi_next = torch.max(q_pi_next, lb)
    return torch.cat([q_rand - log_density_rand, q_pi - logp_pi.detach(), q_pi_next - logp_pi_next.detach()],
                     dim=-1)


def cql_penalty(q_data: torch.Tensor, q_sampled: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """CQL(H), Kumar et al. (2020) Eq. (4) regulariser (per critic, before the factor alpha):
    ``E_s[ T log sum_a exp(Q(s, a) / T) - E_{a ~ D} Q(s, a) ]``: pushes Q down on sampled
    (out-of-distribution) actions and up on the data's actions. Positive when the data's actions
    are not the Q-maximisers."""
    return (temperature * torch.logsumexp(q_sampled / temperature, dim=-1) - q_data).mean()


def lagrange_terms(penalty: torch.Tensor, log_alpha: torch.Tensor, target_gap: float,
                   max_alpha: float = 1e6) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CQL's Lagrangian version (Kumar et al. 2020, Eq. (30) / App. F "Lagrange"): the penalty
    term ``alpha' (penalty - tau)`` for the critic, the dual loss ``-alpha' (penalty - tau)`` that
    raises ``alpha'`` while the gap exceeds the threshold ``tau`` and lowers it otherwise, and
    ``alpha'`` itself (``exp(log alpha')`` clipped to [0, max_alpha])."""
    alpha = log_alpha.exp().clamp(0.0, max_alpha)
    critic_term = alpha.detach() * (penalty - target_gap)
    dual_loss = -alpha * (penalty.detach() - target_gap)
    return critic_term, dual_loss, alpha.detach()


def discounted_returns(reward: torch.Tensor, episode: torch.Tensor, gamma: float) -> torch.Tensor:
    """Return-to-go ``G_t = sum_k gamma^k r_{t+k}`` to the end of each episode.

    ``reward`` and ``episode`` ``(T,)`` hold transitions in time order, episodes contiguous (any
    change of ``episode`` starts a new one). Cal-QL's Monte-Carlo lower bound ``V^mu(s_t)``."""
    r = reward.detach().cpu().double().numpy()
    ep = episode.detach().cpu().numpy()
    out = np.zeros_like(r)
    running = 0.0
    for t in range(r.shape[0] - 1, -1, -1):
        if t + 1 < r.shape[0] and ep[t + 1] != ep[t]:
            running = 0.0
        running = r[t] + gamma * running
        out[t] = running
    return torch.as_tensor(out, dtype=reward.dtype)


def polyak_update(target: torch.nn.Module, source: torch.nn.Module, tau: float) -> None:
    """Soft target update ``theta' <- tau theta + (1 - tau) theta'`` (SAC; Table 12: tau = 0.005)."""
    with torch.no_grad():
        for pt, ps in zip(target.parameters(), source.parameters(), strict=True):
            pt.mul_(1.0 - tau).add_(ps, alpha=tau)


__all__ = ["awr_policy_loss", "awr_weights", "bc_loss", "cql_penalty", "cql_sampled_values", "discounted_returns",
           "expectile_loss", "lagrange_terms", "mse", "polyak_update", "sac_actor_loss", "soft_td_target",
           "td_target"]
