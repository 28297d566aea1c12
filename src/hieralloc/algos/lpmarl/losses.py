r"""LPMARL's training objectives as pure functions of tensors (App. B-D; Sec. 4).

* :func:`interval_returns`: the reward and discount of each high-level decision lasting until the
  next one (Eq. (14)'s ``r^h_t`` and ``gamma^tau``; intervals shortened by events have their own
  length);
* :func:`high_critic_target` / :func:`high_critic_loss`: Eq. (13)-(14);
* :func:`agent_targets` and :func:`group_vdn_loss`: the low-level critic's per-group VDN sum, Eq. (17)-(18)
  (with TD(lambda) targets; ``lambda = 0`` is Eq. (18) exactly), :func:`lambda_returns` the high level's;
* :func:`low_actor_loss`: the low-level policy gradient, Eq. (19);
* :func:`high_actor_loss`: ``-J_h`` through the assignment ``Z``, Eq. (15) (the LP's gradient,
  Eq. (16), comes from :func:`hieralloc.lpmarl.assign.lp_assign`);
* :func:`level_weight` and :func:`joint_loss`: ``J = w J_l + (1 - w) J_h`` with ``w`` decayed
  from 0.9 to 0.1 (Sec. 4);
* :func:`bc_loss`: Dec-LPMARL's behaviour cloning, Eq. (20), with the amortisation accuracy (Fig. 6).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from hieralloc.algos.hierarchy import aggregate_rewards
from hieralloc.algos.marl import masked_mean
from hieralloc.algos.value.targets import lambda_targets

_NEG = -1e9


def interval_returns(rewards: np.ndarray, decision_steps: Sequence[int], gamma: float) -> tuple[np.ndarray,
                                                                                                np.ndarray]:
    """``(R_k, gamma^(t_{k+1} - t_k))`` per decision ``k`` at ``decision_steps`` of an episode of
    ``len(rewards)`` steps: ``R_k = sum_{t=t_k}^{t_{k+1}-1} gamma^(t - t_k) r^h_t`` (the reward of a
    high-level action that lasts until the next decision; HGRL Eq. (3), the library's
    :func:`~hieralloc.algos.hierarchy.aggregate_rewards`) and the discount of the bootstrap in
    Eq. (14) (``gamma^tau``, or the length of an interval cut short by an event)."""
    T = int(np.asarray(rewards).shape[0])
    steps = [int(s) for s in decision_steps]
    R = aggregate_rewards(np.asarray(rewards, dtype=np.float64), steps, gamma)
    nxt = np.asarray([*steps[1:], T], dtype=np.float64)
    disc = gamma ** (nxt - np.asarray(steps, dtype=np.float64))
    return R, disc


def high_critic_target(reward: torch.Tensor, discount: torch.Tensor, done: torch.Tensor,
                       next_value: torch.Tensor) -> torch.Tensor:
    """LPMARL Eq. (14): ``y = r^h + gamma^tau (1 - done) sum_i max_{a_i} Q^h-bar(s_{t+tau}, a_i)``, with
    ``next_value`` the summed maximum (``(K,)``, computed by the caller over the feasible next actions)."""
    return reward + discount * (1.0 - done.to(reward.dtype)) * next_value


def independent_max(q_next: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """``sum_i max_{j allowed} Q(s', i, j)`` over agents with an allowed task (Eq. (14) literally): ``(K,)``."""
    has = allowed.any(-1)
    best = q_next.masked_fill(~allowed, _NEG).amax(-1)
    return torch.where(has, best, torch.zeros_like(best)).sum(-1)


def high_critic_loss(q: torch.Tensor, tasks: torch.Tensor, alive: torch.Tensor, y: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """LPMARL Eq. (13): ``(sum_i Q^h(s_t, a^h_i) - y)^2`` averaged over decisions.

    ``q`` ``(K, N, M)`` critic values of every (agent, task), ``tasks`` ``(K, N)`` the assigned tasks
    (-1: dead agent, not counted), ``alive`` ``(K, N)``. The sum over agents is the VDN reading of the
    ``sum_i`` in Eq. (14). Returns ``(loss, Q_tot (K,))``."""
    valid = alive & (tasks >= 0)
    taken = q.gather(-1, tasks.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    q_tot = (taken * valid.to(q.dtype)).sum(-1)
    return ((q_tot - y) ** 2).mean(), q_tot


def agent_targets(reward: torch.Tensor, next_max: torch.Tensor, next_alive: torch.Tensor, done: torch.Tensor,
                  valid: torch.Tensor, gamma: float, lam: float) -> torch.Tensor:
    """Per-agent bootstrapped targets ``(T, B, N)`` of the low-level critic, time-major over episodes:
    ``G_i,t = r^l_i,t + gamma (1 - done_t) [(1 - lam) V_i(s_{t+1}) + lam G_i,t+1]`` with
    ``V_i(s') = max_a Q^l-bar(s', a; a^h_i)`` under the assignment of step t (``next_max``; zero for a unit
    that died in the step) (:func:`hieralloc.algos.value.targets.lambda_targets`). ``lam = 0`` gives
    Eq. (18)'s one-step term ``r^l_i + gamma max_a Q^l-bar``; summed over a group (:func:`group_vdn_loss`)
    it is Eq. (18)'s ``y_j``."""
    n = reward.shape[-1]
    d = done.unsqueeze(-1).expand(*done.shape, n)
    return lambda_targets(reward, d, valid, next_max * next_alive.to(next_max.dtype), gamma, lam)


def group_vdn_loss(q_taken: torch.Tensor, target: torch.Tensor, tasks: torch.Tensor, alive: torch.Tensor,
                   n_tasks: int) -> dict[str, torch.Tensor]:
    """LPMARL Eq. (17)-(18): for every group ``j`` (the agents assigned to task ``j`` at step t)

        y_j  = sum_{i | a^h_i = j} (r^l_i + gamma (1 - done) max_a Q^l-bar(s', a; a^h_i))
             = r^l_j + gamma (1 - done) sum_{i | a^h_i = j} max_a Q^l-bar(s', a; a^h_i),   r^l_j = sum_i r^l_i
        L    = mean over (steps, non-empty groups) of (sum_{i | a^h_i = j} Q^l(s, a^l_i; a^h_i) - y_j)^2

    ``q_taken``, ``target`` (each agent's term of ``y_j``, :func:`agent_targets`), ``tasks`` and
    ``alive`` have shape ``(R, N)`` (any leading axes flattened by the caller). Returns named terms
    (``loss``, ``q_group``, ``target``)."""
    member = torch.nn.functional.one_hot(tasks.clamp(min=0), n_tasks).to(q_taken.dtype)  # (R, N, M)
    member = member * (alive & (tasks >= 0)).to(q_taken.dtype).unsqueeze(-1)
    q_group = torch.einsum("rn,rnm->rm", q_taken, member)
    y = torch.einsum("rn,rnm->rm", target.detach().to(q_taken.dtype), member)
    nonempty = member.sum(1) > 0
    err = q_group - y
    return {"loss": masked_mean(err ** 2, nonempty), "q_group": masked_mean(q_group.detach(), nonempty),
            "target": masked_mean(y, nonempty)}


def lambda_returns(reward: torch.Tensor, discount: torch.Tensor, done: torch.Tensor, valid: torch.Tensor,
                   next_values: torch.Tensor, lam: float) -> torch.Tensor:
    """TD(lambda) targets ``(K, B)`` over an episode's high-level decisions, time-major, with a discount
    per decision (``gamma^tau``, or the length of an interval cut short by an event):

        G_k = R_k + discount_k (1 - done_k) [(1 - lam) V(s_{k+1}) + lam G_{k+1}]

    (``G_{k+1} := V(s_{k+1})`` past the last valid decision). With a constant discount this is
    :func:`hieralloc.algos.value.targets.lambda_targets`; ``lam = 0`` gives Eq. (14)'s one-step target
    (:func:`high_critic_target`)."""
    return lambda_targets(reward, done, valid, next_values, discount, lam)


def masked_log_softmax(logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Log-softmax over the allowed entries of the last axis (rows without any allowed entry: uniform)."""
    safe = allowed | ~allowed.any(-1, keepdim=True)
    return torch.log_softmax(logits.masked_fill(~safe, _NEG), dim=-1)


def low_actor_loss(logits: torch.Tensor, avail: torch.Tensor, q: torch.Tensor, alive: torch.Tensor,
                   entropy_coef: float) -> dict[str, torch.Tensor]:
    """LPMARL Eq. (19): ``grad J_l = E[sum_i Q^l(s, a^l_i; a^h_i, phi_l-bar) grad log pi^l(a^l_i | s, a^h_i)]``.

    The expectation over ``a^l_i ~ pi^l`` is taken in closed form over the discrete actions on
    replayed states: ``J_l = sum_i sum_a pi^l(a) A(a) / sigma`` with ``A(a) = Q^l(a) - sum_b pi^l(b) Q^l(b)``
    (a baseline, which leaves Eq. (19)'s gradient unchanged in closed form) and ``sigma`` the batch
    standard deviation of ``A`` (a positive constant per batch, as PPO normalises advantages; it makes
    ``entropy_coef`` independent of the reward scale). ``q`` are the target critic's values (no
    gradient). Returns ``loss`` (``-J_l`` minus the entropy bonus, averaged over living agents),
    ``entropy`` and ``adv_std``."""
    logp = masked_log_softmax(logits, avail)
    p = logp.exp()
    qd = q.detach().masked_fill(~avail, 0.0)
    with torch.no_grad():
        adv = (qd - (p * qd).sum(-1, keepdim=True)).masked_fill(~avail, 0.0)
        sel = (avail & alive.unsqueeze(-1))
        n = sel.sum().clamp(min=1)
        sigma = ((adv ** 2 * sel).sum() / n).sqrt().clamp(min=1e-6)
    j = (p * adv).sum(-1) / sigma
    ent = -(p * logp.masked_fill(~avail, 0.0)).sum(-1)
    loss = -masked_mean(j + entropy_coef * ent, alive)
    return {"loss": loss, "entropy": masked_mean(ent.detach(), alive), "adv_std": sigma}


def high_actor_loss(z: torch.Tensor, q: torch.Tensor, alive: torch.Tensor) -> torch.Tensor:
    """LPMARL Eq. (15): ``-J_h = -sum_i sum_j z_ij Q^h(s, i, j)`` averaged over states, ``z`` ``(K, N, M)``
    the assignment (the LP's ``Z*(C_theta(s))`` or No-LP's softmax), ``q`` the critic's values (no
    gradient): ``dJ_h/dZ = Q^h`` enters Eq. (12)'s perturbed costs in the LP's backward pass."""
    w = alive.to(z.dtype).unsqueeze(-1)
    return -(z * q.detach() * w).sum((-1, -2)).mean()


def level_weight(env_steps: int, start: float, end: float, decay_steps: int) -> float:
    """``w`` of Sec. 4's ``J = w J_l + (1 - w) J_h``, decayed linearly from ``start`` (0.9) to ``end``
    (0.1) over ``decay_steps`` environment steps, then held."""
    frac = min(1.0, max(0, int(env_steps)) / max(1, int(decay_steps)))
    return float(start + frac * (end - start))


def joint_loss(w: float, low: torch.Tensor | None, high: torch.Tensor | None) -> torch.Tensor:
    """Sec. 4: the minimised ``-J = w (-J_l) + (1 - w) (-J_h)`` (a missing level contributes nothing)."""
    parts = []
    if low is not None:
        parts.append(w * low)
    if high is not None:
        parts.append((1.0 - w) * high)
    if not parts:
        raise ValueError("joint_loss needs at least one level's loss")
    return torch.stack(parts).sum()


def bc_loss(logits: torch.Tensor, allowed: torch.Tensor, teacher: torch.Tensor, alive: torch.Tensor
            ) -> dict[str, torch.Tensor]:
    """Dec-LPMARL Eq. (20): ``L_BC = -E[log pi-hat^h_i(a^h*_i | o_i)]`` over living agents whose expert
    task ``teacher`` (``(K, N)``) lies in their choice set ``allowed`` (``(K, N, M)``); ``accuracy``:
    the fraction of living agents whose greedy choice equals the expert's (Fig. 6), counting an
    expert task outside the choice set as a miss."""
    logp = masked_log_softmax(logits, allowed)
    tgt = teacher.clamp(min=0)
    chosen = logp.gather(-1, tgt.unsqueeze(-1)).squeeze(-1)
    reachable = alive & (teacher >= 0) & allowed.gather(-1, tgt.unsqueeze(-1)).squeeze(-1)
    counted = alive & (teacher >= 0)
    greedy = logp.argmax(-1)
    acc = masked_mean((greedy == teacher).to(logits.dtype), counted)
    return {"loss": -masked_mean(chosen, reachable), "accuracy": acc}


__all__ = ["agent_targets", "bc_loss", "group_vdn_loss", "high_actor_loss", "high_critic_loss", "high_critic_target",
           "independent_max", "interval_returns", "joint_loss", "lambda_returns", "level_weight", "low_actor_loss",
           "masked_log_softmax"]
