"""Family invariants of the adapters, run by ``hieralloc check-env`` (:mod:`hieralloc.envs.checks`).

Each invariant plays random (mask-respecting) episodes and checks a property that ties the
adapter's numbers to the original environment's rules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from hieralloc.envs.checks import register_invariant, sample_actions


def _episodes(make: Callable[[], Any], seeds: range) -> Any:
    """Yield ``(env, infos_before, step result)`` for every step of random episodes."""
    env = make()
    for seed in seeds:
        rng = np.random.default_rng(seed)
        _, infos = env.reset(seed=seed)
        while env.agents:
            before = infos
            result = env.step(sample_actions(env, infos, rng))
            infos = result[4]
            yield env, before, result


# ---------------------------------------------------------------------------------------------- LBF


def _lbf_masks(make: Callable[[], Any]) -> tuple[bool, str]:
    """Mask = LBF's move rules: a move is valid into an in-bounds cell without food; LOAD next
    to food; NONE always (lbforaging ForagingEnv._is_valid_action)."""
    env = make()
    if not env.cfg.action_masks:
        return True, "masks disabled (action_masks=False)"
    n = 0
    for seed in range(3):
        env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        while env.agents:
            field = env.field
            size = field.shape[0]
            for i, a in enumerate(env.possible_agents):
                r, c = env.positions[i]
                expect = np.zeros(6, dtype=np.int8)
                expect[0] = 1
                for k, (dr, dc) in enumerate(((-1, 0), (1, 0), (0, -1), (0, 1)), start=1):
                    rr, cc = r + dr, c + dc
                    expect[k] = int(0 <= rr < size and 0 <= cc < size and field[rr, cc] == 0)
                adj = [field[rr, cc] for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1))
                       if 0 <= rr < size and 0 <= cc < size]
                expect[5] = int(sum(adj) > 0)
                got = env.action_mask(a)
                n += 1
                if not np.array_equal(got, expect):
                    return False, f"seed {seed}, t={env.t}, {a} at {(r, c)}: mask {got.tolist()} != {expect.tolist()}"
            env.step(sample_actions(env, {a: {"action_mask": env.action_mask(a)} for a in env.agents}, rng))
    return True, f"{n} masks follow LBF's move rules"


def _lbf_reward(make: Callable[[], Any]) -> tuple[bool, str]:
    """With normalised rewards and no penalty, the team reward of a step is the food level
    collected in it divided by the level spawned (lbforaging ForagingEnv.step)."""
    env = make()
    if not env.cfg.normalize_reward or env.cfg.penalty:
        return True, "not applicable (normalize_reward off or penalty > 0)"
    n = 0
    for e, _, (_, _, _, _, infos) in _episodes(make, range(4)):
        info = next(iter(infos.values()))
        spawned = float(e._food_levels.sum())
        n += 1
        if not np.isclose(info["team_reward"], info["level_collected"] / spawned):
            return False, f"t={e.t}: team reward {info['team_reward']} != {info['level_collected']} / {spawned}"
        if e.agents == [] and not np.isclose(e.episode_metrics()["team_return"],
                                             e.episode_metrics()["level_collected"]):
            return False, "team_return differs from the fraction of food level collected"
    return True, f"{n} steps: team reward = collected level / spawned level"


def _lbf_reset_independent(make: Callable[[], Any]) -> tuple[bool, str]:
    """reset(seed=s) gives the same episode on a fresh instance and on a used one."""
    used = make()
    for s in range(40):
        used.reset(seed=1000 + s)
        o1, _ = used.reset(seed=s)
        o2, _ = make().reset(seed=s)
        if any(not np.array_equal(o1[a], o2[a]) for a in o1):
            return False, f"seed {s}: a used instance resets differently from a fresh one"
    return True, "40 seeds: used and fresh instances reset alike"


register_invariant("lbf", "masks follow LBF move rules", _lbf_masks)
register_invariant("lbf", "reward = collected level fraction", _lbf_reward)
register_invariant("lbf", "reset independent of previous episode", _lbf_reset_independent)


# -------------------------------------------------------------------------------------------- RWARE


def _rware_rewards(make: Callable[[], Any]) -> tuple[bool, str]:
    """Rewards agree with the counted deliveries for the env's reward type (rware Warehouse.step)."""
    n = 0
    for e, _, (_, _, _, _, infos) in _episodes(make, range(2)):
        info = next(iter(infos.values()))
        d, team, kind = info["deliveries"], info["team_reward"], e.cfg.reward_type
        n += 1
        ok = (np.isclose(team, d) if kind == "individual"
              else np.isclose(team, d * e.n) if kind == "global"
              else team >= 0.5 * d - 1e-9)
        if not ok:
            return False, f"t={e.t}: team reward {team} inconsistent with {d} deliveries ({kind})"
    return True, f"{n} steps: rewards consistent with deliveries"


def _rware_state(make: Callable[[], Any]) -> tuple[bool, str]:
    """The full state holds every shelf once, every request once, one direction per robot."""
    if make().cfg.state != "full":
        return True, "not applicable (state='concat')"
    n = 0
    for e, _, _ in _episodes(make, range(1)):
        s = e.state()
        nA, HW = e.n, e.H * e.W
        per = s[:8 * nA].reshape(nA, 8)
        shelves, req = s[8 * nA:8 * nA + HW], s[8 * nA + HW:8 * nA + 2 * HW]
        n += 1
        if not np.all(per[:, 2:6].sum(1) == 1):
            return False, f"t={e.t}: a robot's direction one-hot does not sum to 1"
        if int(shelves.sum()) != len(e.core.shelfs) or int(req.sum()) != e.cfg.queue_size:
            return False, (f"t={e.t}: state has {int(shelves.sum())} shelves / {int(req.sum())} requests, "
                           f"warehouse {len(e.core.shelfs)} / {e.cfg.queue_size}")
    return True, f"{n} steps: every shelf and request encoded"


register_invariant("rware", "rewards consistent with deliveries", _rware_rewards)
register_invariant("rware", "full state encodes the warehouse", _rware_state)


# ---------------------------------------------------------------------------------------------- MPE


def _mpe_reward(make: Callable[[], Any]) -> tuple[bool, str]:
    """Team reward = -(N (1 - l) distance + 2 l collisions): mpe2's per-agent reward summed
    (global distance term to everyone, -1 per collision to both agents of a pair)."""
    n = 0
    for e, _, (_, _, _, _, infos) in _episodes(make, range(4)):
        info = next(iter(infos.values()))
        lr = e.cfg.local_ratio
        expect = -(e.n * (1 - lr) * info["distance"] + 2 * lr * info["collisions"])
        n += 1
        if not np.isclose(info["team_reward"], expect, atol=1e-9):
            return False, f"t={e.t}: team reward {info['team_reward']} != {expect} from the geometry"
    return True, f"{n} steps: team reward matches distance and collisions"


def _mpe_concat(make: Callable[[], Any]) -> tuple[bool, str]:
    """The 'concat' observations equal mpe2's own state()."""
    n = 0
    for e, _, _ in _episodes(make, range(2)):
        mine = np.concatenate([np.asarray(o).reshape(-1) for o in e._obs])
        n += 1
        if not np.allclose(mine, e.core.state()):
            return False, f"t={e.t}: concatenated observations differ from mpe2's state()"
    return True, f"{n} steps: concatenated observations = mpe2 state()"


register_invariant("mpe", "reward matches geometry", _mpe_reward)
register_invariant("mpe", "concat state = mpe2 state()", _mpe_concat)
