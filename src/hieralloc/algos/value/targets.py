"""Bootstrapped value targets over time-major episode batches: n-step returns and TD(lambda).

Shapes: ``reward``, ``done``, ``valid``, ``next_values`` are ``[T, B, ...]`` where
``next_values[t]`` is the (target-network) value of the state reached after step t, ``done[t]``
says that step t ends the episode without bootstrapping, and ``valid[t]`` that step t exists
(padding and departed agents are invalid). When step t + 1 is invalid but t is not done (a
truncated episode bootstrapped through its time limit), every target falls back on
``next_values[t]``.
"""

from __future__ import annotations

import torch


def nstep_targets(reward: torch.Tensor, done: torch.Tensor, valid: torch.Tensor, next_values: torch.Tensor,
                  gamma: float, n: int) -> torch.Tensor:
    """n-step returns (Sutton & Barto 2018, Eq. (7.1)), computed by the recursion

        G^(1)_t = r_t + gamma (1 - d_t) V(s_{t+1})
        G^(k)_t = r_t + gamma (1 - d_t) G^(k-1)_{t+1}          (V(s_{t+1}) when t + 1 is invalid)

    so the sum stops at the episode's end and bootstraps on V(s_{t+n}) otherwise.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    notdone = 1.0 - done.to(reward.dtype)
    G = reward + gamma * notdone * next_values
    for _ in range(n - 1):
        cont = next_values.clone()
        cont[:-1] = torch.where(valid[1:], G[1:], next_values[:-1])
        G = reward + gamma * notdone * cont
    return G


def lambda_targets(reward: torch.Tensor, done: torch.Tensor, valid: torch.Tensor, next_values: torch.Tensor,
                   gamma: float | torch.Tensor, lam: float) -> torch.Tensor:
    """TD(lambda) returns (Sutton & Barto 2018, Eq. (12.18), recursive form)

        G^lambda_t = r_t + gamma (1 - d_t) [(1 - lambda) V(s_{t+1}) + lambda G^lambda_{t+1}]

    with G^lambda_{t+1} := V(s_{t+1}) past the last valid step. lambda = 0 gives 1-step targets,
    lambda = 1 the Monte-Carlo return bootstrapped at the episode's end. ``gamma`` may be a tensor
    shaped like ``reward``: a discount per step (e.g. ``gamma^tau`` of a decision lasting tau steps).
    """
    T = reward.shape[0]
    notdone = 1.0 - done.to(reward.dtype)
    G = torch.empty_like(reward)
    for t in range(T - 1, -1, -1):
        if t == T - 1:
            cont = next_values[t]
        else:
            nxt = torch.where(valid[t + 1], G[t + 1], next_values[t])
            cont = (1.0 - lam) * next_values[t] + lam * nxt
        g = gamma[t] if isinstance(gamma, torch.Tensor) else gamma
        G[t] = reward[t] + g * notdone[t] * cont
    return G


__all__ = ["lambda_targets", "nstep_targets"]
