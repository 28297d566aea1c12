"""Scripted ally controllers of the combat environment (batched): references for tests, invariants and docs.

* :func:`focus_fire_actions`: every living ally attacks the attackable enemy with the least health
  (ties: the nearest, then the lowest index), otherwise walks towards the nearest living enemy along
  its larger coordinate gap. A hand-written focus-fire micro, the kind of coordination SMAC's dense
  reward teaches; with nothing learnt it shows how hard each scenario is.
* :func:`kite_actions`: focus fire, except that an ally whose attacker (an enemy targeting it) is
  closer than ``flee_distance`` moves away from it, staying within ``cohesion`` of its nearest living
  teammate so that the teammates keep shooting the chaser (the kiting that SMAC's 2m_vs_1z needs).
* :func:`random_legal_actions`: a uniformly random legal action per ally (the random baseline).
"""

from __future__ import annotations

import numpy as np

from hieralloc.envs.combat.core import DIRECTIONS, EAST, N_NO_ATTACK, NOOP, NORTH, SOUTH, STOP, WEST, CombatCore


def focus_fire_actions(core: CombatCore) -> np.ndarray:
    """(B, N) actions of the focus-fire script for the current state (see the module docstring)."""
    masks = core.action_masks()
    att = masks[..., N_NO_ATTACK:]
    d = core.distances()
    hp = np.broadcast_to(core.e_hp[:, None, :], d.shape)
    # lexicographic (health, distance, index) among attackable enemies
    key = np.where(att, hp * 1e6 + d, np.inf)
    best = np.argmin(key, axis=2)
    can_attack = att.any(axis=2)
    e_alive = np.broadcast_to((core.e_hp > 0)[:, None, :], d.shape)
    near = np.argmin(np.where(e_alive, d, np.inf), axis=2)
    gap = np.take_along_axis(core.e_pos, near[..., None], axis=1) - core.a_pos
    horizontal = np.abs(gap[..., 0]) >= np.abs(gap[..., 1])
    move = np.where(horizontal, np.where(gap[..., 0] >= 0, EAST, WEST), np.where(gap[..., 1] >= 0, NORTH, SOUTH))
    move = np.where(np.take_along_axis(masks, move[..., None], axis=2)[..., 0], move, STOP)
    alive = core.a_hp > 0
    return np.where(~alive, NOOP, np.where(can_attack, N_NO_ATTACK + best, move)).astype(np.int64)


def kite_actions(core: CombatCore, flee_distance: float = 3.0, cohesion: float = 3.0) -> np.ndarray:
    """(B, N) actions of the kiting script for the current state (see the module docstring)."""
    acts = focus_fire_actions(core)
    masks = core.action_masks()
    d = core.distances()                                                    # (B, N, M)
    chased = core.enemy_targets()[:, None, :] == np.arange(core.N)[None, :, None]  # (B, N, M)
    dt = np.where(chased, d, np.inf)
    threat = np.argmin(dt, axis=2)
    threat_d = dt.min(axis=2)
    tpos = np.take_along_axis(core.e_pos, threat[..., None], axis=1)       # (B, N, 2)
    cand = core.a_pos[:, :, None, :] + DIRECTIONS[None, None] * core.a_speed[None, :, None, None]  # (B, N, 4, 2)
    away = np.hypot(*np.moveaxis(cand - tpos[:, :, None, :], -1, 0))
    # distance from each candidate point to the nearest other living ally (0 when there is none)
    gap = cand[:, :, :, None, :] - core.a_pos[:, None, None, :, :]         # (B, N, 4, N, 2)
    dist = np.hypot(gap[..., 0], gap[..., 1])
    other = (core.a_hp > 0)[:, None, None, :] & ~np.eye(core.N, dtype=bool)[None, :, None, :]
    mate = np.where(other, dist, np.inf).min(axis=3)
    mate = np.where(np.isfinite(mate), mate, 0.0)
    wall = np.minimum.reduce([cand[..., 0], cand[..., 1], core.W - cand[..., 0], core.H - cand[..., 1]])
    score = away - np.maximum(mate - cohesion, 0.0) + 0.3 * np.minimum(wall, 4.0)
    legal = masks[..., NORTH:WEST + 1]
    score = np.where(legal, score, -np.inf)
    flee = (threat_d < flee_distance) & legal.any(axis=2) & (core.a_hp > 0)
    return np.where(flee, NORTH + np.argmax(score, axis=2), acts).astype(np.int64)


def random_legal_actions(core: CombatCore, rng: np.random.Generator) -> np.ndarray:
    """(B, N) one uniformly random legal action per ally."""
    masks = core.action_masks()
    u = rng.random(masks.shape)
    return np.argmax(np.where(masks, u, -1.0), axis=2).astype(np.int64)


__all__ = ["focus_fire_actions", "kite_actions", "random_legal_actions"]
