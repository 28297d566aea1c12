"""Invariants of the coverage family, run by :func:`hieralloc.envs.checks.check_env`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from hieralloc.envs.checks import register_invariant, rollout, sample_actions
from hieralloc.envs.coverage.core import served_by_positions
from hieralloc.envs.coverage.metrics import SCORE_DELTAS, score

TOL = 1e-9


def _team_infos(steps: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """The first agent's info of every step after the reset (team quantities are shared)."""
    return [next(iter(s[4].values())) for s in steps[1:] if s[4]]


def served_bounds(make: Callable[[], Any]) -> tuple[bool, str]:
    env = make()
    n = 0
    for seed in (0, 1):
        steps = rollout(env, seed)
        for k, s in enumerate(steps[1:], 1):
            infos = s[4]
            i0 = next(iter(infos.values()))
            tol = TOL * max(1.0, i0["demand"])
            if i0["served"] > i0["demand"] + tol:
                return False, f"step {k}: served {i0['served']} > demand {i0['demand']}"
            if i0["served"] > i0["capacity"] + tol:
                return False, f"step {k}: served {i0['served']} > capacity bound {i0['capacity']}"
            if i0["served"] > i0["coverable"] + tol:
                return False, f"step {k}: served {i0['served']} > coverable bound {i0['coverable']}"
            if i0["served"] > i0["window_demand"] + tol:
                return False, f"step {k}: served {i0['served']} > demand in windows {i0['window_demand']}"
            share = sum(v["served_agent"] for v in infos.values())
            if abs(share - i0["served"]) > tol:
                return False, f"step {k}: agent shares sum to {share}, served is {i0['served']}"
            n += 1
    return True, f"{n} steps: served <= demand, coverable, U * window cells; shares add up"


def served_reference(make: Callable[[], Any]) -> tuple[bool, str]:
    env = make()
    rng = np.random.default_rng(5)
    obs, infos = env.reset(seed=5)
    n = 0
    cfg = env.config
    while env.agents:
        obs, rew, term, trunc, infos = env.step(sample_actions(env, infos, rng))
        frame = env.core.frames[int(env.core.frame_index(env.t)[0])]
        ref = served_by_positions(frame, env.positions, cfg.window, cfg.capacity)
        got = next(iter(infos.values()))["served"]
        if abs(ref - got) > 1e-9 * max(1.0, ref):
            return False, f"step {env.t}: served {got} != reference {ref}"
        n += 1
    return True, f"{n} steps equal the unvectorised reference"


def positions_in_bounds(make: Callable[[], Any]) -> tuple[bool, str]:
    env = make()
    cfg = env.config
    rng = np.random.default_rng(2)
    # try every action including off-grid ones (clipped): masks are ignored on purpose
    env.reset(seed=2)
    while env.agents:
        acts = {a: int(rng.integers(env.action_space(a).n)) for a in env.agents}
        _, _, _, _, infos = env.step(acts)
        p = env.positions
        if (p < 0).any() or (p[:, 0] >= cfg.height).any() or (p[:, 1] >= cfg.width).any():
            return False, f"position out of the grid at t={env.t}: {p.tolist()}"
        if any(v["manhattan"] > cfg.window - 1 for v in infos.values()):
            return False, f"a move longer than w - 1 at t={env.t}"
    return True, "positions stay in the grid under any actions; moves <= w - 1"


def metrics_consistent(make: Callable[[], Any]) -> tuple[bool, str]:
    env = make()
    cfg = env.config
    for seed in (0, 4):
        steps = rollout(env, seed)
        team = _team_infos(steps)
        T = len(team)
        m = env.episode_metrics()
        manh = sum(v["manhattan"] for s in steps[1:] for v in s[4].values())
        ac_ratio = np.mean([i["served"] / i["demand"] if i["demand"] > 0 else 1.0 for i in team])
        ac_norm = np.mean([i["served"] / i["coverable"] if i["coverable"] > 0 else 1.0 for i in team])
        atd = manh / (cfg.n_agents * T)  # HGRL Eq. (27)
        want = {
            "AC": np.mean([i["served"] for i in team]),
            "AC_ratio": ac_ratio,  # HGRL Eq. (26)
            "AC_norm": ac_norm,
            "ATD": atd,
            "served": sum(i["served"] for i in team),
            "demand": sum(i["demand"] for i in team),
            "team_return": sum(i["team_reward"] for i in team),
            "steps": T,
            **{k: score(ac_norm, atd, cfg.window, d) for k, d in SCORE_DELTAS.items()},  # Eq. (28)
        }
        for key, val in want.items():
            if not np.isclose(m[key], float(val), rtol=1e-9, atol=1e-9):
                return False, f"seed {seed}: episode_metrics()['{key}'] = {m[key]}, infos give {val}"
        team_rew = [s[1] for s in steps[1:]]
        if cfg.reward_split == "team":
            bad = [r for i, r in zip(team, team_rew, strict=True)
                   if any(abs(v - i["team_reward"]) > 1e-9 for v in r.values())]
        else:
            bad = [r for i, r in zip(team, team_rew, strict=True) if abs(sum(r.values()) - i["team_reward"]) > 1e-9]
        if bad:
            return False, f"seed {seed}: rewards disagree with the team reward ({cfg.reward_split} split)"
    return True, "AC, AC_ratio, AC_norm, ATD, Score_d1/d2, served, team_return recomputed from infos"


register_invariant("coverage", "served <= demand and capacity", served_bounds)
register_invariant("coverage", "served equals reference", served_reference)
register_invariant("coverage", "positions in bounds", positions_in_bounds)
register_invariant("coverage", "metrics consistent with infos", metrics_consistent)
