"""Invariants of the combat family, run by :func:`hieralloc.envs.checks.check_env`.

Each plays random legal episodes and episodes of the kiting script (which wins some battles, so
the win path is exercised too) and checks the rules of docs/environments/combat.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from hieralloc.envs.checks import register_invariant
from hieralloc.envs.combat.core import N_NO_ATTACK, NOOP, STOP
from hieralloc.envs.combat.scripted import kite_actions, random_legal_actions

TOL = 1e-9


def _episodes(env: Any, seeds: tuple[int, ...] = (0, 1)) -> Iterator[tuple[str, int]]:
    """Reset ``env`` for a random and a scripted episode per seed; yields (controller, seed) after reset."""
    for seed in seeds:
        for who in ("random", "kite"):
            env.reset(seed=seed)
            yield who, seed


def _play(env: Any, who: str, rng: np.random.Generator) -> tuple[Any, ...]:
    core = env.core
    acts = kite_actions(core) if who == "kite" else random_legal_actions(core, rng)
    return env.step({a: int(acts[0, i]) for i, a in enumerate(env.possible_agents)})


def health_and_death(make: Callable[[], Any]) -> tuple[bool, str]:
    env = make()
    core = env.core
    rng = np.random.default_rng(0)
    n = 0
    for who, seed in _episodes(env):
        while env.agents:
            a_hp, e_hp = core.a_hp.copy(), core.e_hp.copy()
            a_pos, e_pos = core.a_pos.copy(), core.e_pos.copy()
            _play(env, who, rng)
            n += 1
            if (core.a_hp > a_hp + TOL).any() or (core.e_hp > e_hp + TOL).any():
                return False, f"{who} seed {seed} t={env.t}: a unit gained health"
            if (core.a_hp < 0).any() or (core.e_hp < 0).any() or (core.a_hp > core.a_hp_max).any():
                return False, f"{who} seed {seed} t={env.t}: health outside [0, max]"
            if not (np.array_equal(core.a_pos[a_hp <= 0], a_pos[a_hp <= 0])
                    and np.array_equal(core.e_pos[e_hp <= 0], e_pos[e_hp <= 0])):
                return False, f"{who} seed {seed} t={env.t}: a dead unit moved"
            lo, hi = np.zeros(2), np.array([core.W, core.H])
            if (core.a_pos < lo).any() or (core.a_pos > hi).any() or (core.e_pos < lo).any() or (core.e_pos > hi).any():
                return False, f"{who} seed {seed} t={env.t}: a unit left the arena"
            if (core.a_cdl < 0).any() or (core.a_cdl >= core.a_cd).any():
                return False, f"{who} seed {seed} t={env.t}: cooldown counter outside [0, cooldown)"
    return True, f"{n} steps: health never rises, stays in [0, max]; dead units stay put; units stay in the arena"


def masks_follow_rules(make: Callable[[], Any]) -> tuple[bool, str]:
    env = make()
    core = env.core
    rng = np.random.default_rng(1)
    n = 0
    for who, seed in _episodes(env):
        infos: dict[str, Any] = {}
        while env.agents:
            m = core.action_masks()[0]
            alive = core.a_hp[0] > 0
            e_alive = core.e_hp[0] > 0
            d = core.distances()[0]
            want_att = alive[:, None] & e_alive[None, :] & (d <= core.a_ar[:, None])
            if not np.array_equal(m[:, N_NO_ATTACK:], want_att):
                return False, f"{who} seed {seed} t={env.t}: attack masks disagree with alive/range"
            if not (m[~alive, NOOP].all() and not m[~alive, 1:].any()):
                return False, f"{who} seed {seed} t={env.t}: a dead ally has an action other than no-op"
            if m[alive, NOOP].any() or not m[alive, STOP].all():
                return False, f"{who} seed {seed} t={env.t}: a living ally may no-op or may not stop"
            for i, a in enumerate(env.possible_agents):
                if a in infos and not np.array_equal(infos[a]["action_mask"], m[i].astype(np.int8)):
                    return False, f"{who} seed {seed} t={env.t}: infos action_mask differs from action_masks()"
            _, _, _, _, infos = _play(env, who, rng)
            n += 1
    return True, f"{n} states: dead -> only no-op; living -> stop, no no-op; attack iff alive and in range"


def outcome_and_metrics(make: Callable[[], Any]) -> tuple[bool, str]:
    env = make()
    core = env.core
    cfg = env.config
    rng = np.random.default_rng(2)
    wins = 0
    for who, seed in _episodes(env, (0, 1, 2)):
        team, last = 0.0, None
        while env.agents:
            _, rew, term, trunc, infos = _play(env, who, rng)
            r = set(rew.values())
            if len(r) != 1:
                return False, f"{who} seed {seed}: agents received different team rewards {r}"
            team += r.pop()
            last = (term, trunc, infos)
        assert last is not None
        term, trunc, infos = last
        m = env.episode_metrics()
        n_a, n_e = int((core.a_hp[0] > 0).sum()), int((core.e_hp[0] > 0).sum())
        ended = n_a == 0 or n_e == 0
        if any(term.values()) != ended:
            return False, f"{who} seed {seed}: terminated={any(term.values())} with {n_a} allies, {n_e} enemies alive"
        if any(trunc.values()) != (not ended and m["episode_length"] == cfg.episode_limit):
            return False, f"{who} seed {seed}: truncation disagrees with the episode limit"
        if m["win"] != float(n_e == 0 and n_a > 0) or m["loss"] != float(n_a == 0 and n_e > 0):
            return False, f"{who} seed {seed}: win/loss flags disagree with the survivors"
        if abs(m["return"] - team) > TOL:
            return False, f"{who} seed {seed}: episode_metrics return {m['return']} != summed rewards {team}"
        if cfg.reward == "sparse":
            want = 1.0 if m["win"] else (cfg.sparse_loss if m["loss"] else 0.0)
            if abs(team - want) > TOL:
                return False, f"{who} seed {seed}: sparse return {team}, expected {want}"
        if m["enemies_killed"] != core.M - n_e or m["allies_alive"] != n_a:
            return False, f"{who} seed {seed}: kill counts disagree with the units"
        first = next(iter(infos.values()))
        if first["battle_won"] != bool(m["win"]) or first["enemies_alive"] != n_e:
            return False, f"{who} seed {seed}: the last step's infos disagree with the outcome"
        wins += int(m["win"])
    return True, f"6 episodes ({wins} won): termination, truncation, win/loss, return and counts agree"


register_invariant("combat", "health, death and arena", health_and_death)
register_invariant("combat", "action masks follow the rules", masks_follow_rules)
register_invariant("combat", "outcome and metrics consistent", outcome_and_metrics)
