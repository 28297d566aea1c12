"""Invariants of the navigation family, run by :func:`hieralloc.envs.checks.check_env`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from hieralloc.envs.checks import register_invariant, rollout, sample_actions
from hieralloc.envs.navigation.core import AGENT_SPAWN, LANDMARK_SPAWN, NavigationCore

TOL = 1e-9


def spawn_and_capacities(make: Callable[[], Any]) -> tuple[bool, str]:
    """Every reset: agents in [-1, 1]^2, landmarks in [-0.8, 0.8]^2, capacities a positive
    composition of N (LPMARL App. E.2)."""
    env = make()
    for seed in range(20):
        env.reset(seed=seed)
        k = env.capacities()
        if (k < 1).any() or int(k.sum()) != env.n_agents or k.shape != (env.n_landmarks,):
            return False, f"seed {seed}: capacities {k.tolist()} are not a composition of N={env.n_agents}"
        if np.abs(env.agent_positions()).max() > AGENT_SPAWN:
            return False, f"seed {seed}: an agent spawned outside [-1, 1]^2"
        if np.abs(env.landmark_positions()).max() > LANDMARK_SPAWN:
            return False, f"seed {seed}: a landmark spawned outside [-0.8, 0.8]^2"
    return True, "20 resets: spawn boxes of App. E.2, capacities sum to N"


def rewards_follow_table5(make: Callable[[], Any]) -> tuple[bool, str]:
    """r_i = w r^h + (1 - w) r^l_i, r^h = 1[success], success recomputed from positions."""
    env = make()
    cfg = env.config
    w = cfg.high_weight
    n = 0
    for seed in (0, 1):
        for _obs, rew, _term, _trunc, infos in rollout(env, seed)[1:]:
            pos, lm, cap = env.agent_positions(), env.landmark_positions(), env.capacities()
            d = np.sqrt(((pos[:, None] - lm[None]) ** 2).sum(-1))
            near = d.argmin(1)
            reached = d.min(1) < cfg.reach_radius
            counts = np.bincount(near[reached], minlength=len(lm))
            success = bool(reached.all() and (counts <= cap).all())
            for agent, r in rew.items():
                info = infos[agent]
                if info["success"] != success or info["high_reward"] != float(success):
                    return False, f"seed {seed} t={info['t']}: success {info['success']} != recomputed {success}"
                if abs(r - (w * info["high_reward"] + (1 - w) * info["low_reward"])) > TOL:
                    return False, f"seed {seed} t={info['t']}: reward of {agent} is not the Table 5 mix"
                n += 1
    return True, f"{n} rewards = w r^h + (1 - w) r^l with r^h = success recomputed from positions"


def metrics_consistent(make: Callable[[], Any]) -> tuple[bool, str]:
    env = make()
    for seed in (2, 3):
        steps = rollout(env, seed)[1:]
        m = env.episode_metrics()
        n = env.n_agents
        want = {
            "return": sum(sum(s[1].values()) / n for s in steps),
            "high_return": sum(next(iter(s[4].values()))["high_reward"] for s in steps),
            "collisions": sum(sum(v["collisions"] for v in s[4].values()) / 2 for s in steps),
            "steps": len(steps),
            "win": float(next(iter(steps[-1][4].values()))["success"]),
            "min_distance": float(np.mean([v["distance"] for v in steps[-1][4].values()])),
        }
        for key, val in want.items():
            if not np.isclose(m[key], float(val), rtol=1e-9, atol=1e-9):
                return False, f"seed {seed}: episode_metrics()['{key}'] = {m[key]}, infos give {val}"
    return True, "return, high_return, collisions, steps, win, min_distance recomputed from infos"


def batch_equals_env(make: Callable[[], Any]) -> tuple[bool, str]:
    """A batch of 3 episodes of the core steps exactly like 3 environments with the same seeds."""
    envs = [make() for _ in range(3)]
    core = NavigationCore(envs[0].config, 3)
    seeds = [11, 12, 13]
    obs_b = core.reset(seed=seeds)
    obs_e = [e.reset(seed=s)[0] for e, s in zip(envs, seeds, strict=True)]
    rng = np.random.default_rng(0)
    agents = envs[0].possible_agents
    for t in range(core.T):
        for b, e in enumerate(envs):
            if not np.array_equal(obs_b[b], np.stack([obs_e[b][a] for a in agents])):
                return False, f"episode {b}, step {t}: observations differ"
            if not np.array_equal(core.state()[b], e.state()):
                return False, f"episode {b}, step {t}: states differ"
        idle = {a: 0 if core.discrete else np.zeros(2, dtype=np.float32) for a in agents}
        acts = [sample_actions(e, {}, rng) if e.agents else idle for e in envs]
        batch = np.stack([np.stack([np.asarray(a[x]) for x in agents]) for a in acts])
        res = core.step(batch)
        obs_b = res.obs
        for b, e in enumerate(envs):
            if not e.agents:  # ended (terminate_on_success): the core froze this episode too
                if res.active[b] or res.rewards[b].any():
                    return False, f"episode {b}, step {t}: the core stepped an episode that had ended"
                continue
            o, r, term, trunc, _ = e.step(acts[b])
            obs_e[b] = {a: o.get(a, obs_e[b][a]) for a in agents}
            if not np.array_equal(res.rewards[b], np.array([r[a] for a in agents])):
                return False, f"episode {b}, step {t}: rewards differ"
            if bool(res.terminated[b]) != term[agents[0]] or bool(res.truncated[b]) != trunc[agents[0]]:
                return False, f"episode {b}, step {t}: episode ends differ"
        if core.done.all():
            break
    mb = core.episode_metrics()
    for b, e in enumerate(envs):
        if {k: float(v[b]) for k, v in mb.items()} != e.episode_metrics():
            return False, f"episode {b}: episode metrics differ"
    return True, "batch of 3 = 3 environments (observations, states, rewards, metrics)"


register_invariant("navigation", "spawn boxes and capacities", spawn_and_capacities)
register_invariant("navigation", "rewards follow LPMARL Table 5", rewards_follow_table5)
register_invariant("navigation", "metrics consistent with infos", metrics_consistent)
register_invariant("navigation", "batched core equals environment", batch_equals_env)
