"""Invariants of the mobility family, run by :func:`hieralloc.envs.checks.check_env`.

They replay every episode from the per-step infos alone (flows, targets, realised demand) and the
scenario's travel times, so the bookkeeping of the core is checked by an independent computation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from hieralloc.envs.checks import single_agent_episodes

TOL = 1e-6
SEEDS = (0, 1)


def vehicle_conservation(make: Callable[[], Any]) -> tuple[bool, str]:
    n = 0
    for env, infos, _ in single_agent_episodes(make, SEEDS):
        core = env.unwrapped.core
        delay = env.unwrapped.config.ready_delay
        fleet = infos[0]["fleet"]
        pending = np.zeros((core.H + 1, core.N), dtype=np.int64)
        idle_before = np.asarray(infos[0]["idle_before"])
        prev_idle = idle_before
        for k, info in enumerate(infos):
            t = info["t"]
            if int(info["idle"].sum()) + int(info["in_transit"]) != fleet:
                return False, (f"t={t}: idle {int(info['idle'].sum())} + in transit {info['in_transit']} "
                               f"!= fleet {fleet}")
            if k > 0:  # the rebalancing of step t - 1, then arrivals at t
                R = np.asarray(info["reb_flow"])
                stay = prev_idle - R.sum(axis=1)
                if (stay < 0).any():
                    return False, f"t={t - 1}: rebalancing sends more vehicles than are idle"
                i, j = np.nonzero(R)
                np.add.at(pending, (t - 1 + core.reb_steps[t - 1][i, j] + delay, j), R[i, j])
                idle_before = stay + pending[t]
                if not np.array_equal(idle_before, info["idle_before"]):
                    return False, (f"t={t}: idle vehicles {info['idle_before'].tolist()} "
                                   f"!= replay {idle_before.tolist()}")
            if t < core.T:  # the matching of step t
                P = np.asarray(info["pax_flow"])
                idle = idle_before - P.sum(axis=1)
                if not np.array_equal(idle, info["idle"]):
                    return False, f"t={t}: idle after matching {info['idle'].tolist()} != replay {idle.tolist()}"
                i, j = np.nonzero(P)
                np.add.at(pending, (t + core.trip_steps[t][i, j] + delay, j), P[i, j])
            prev_idle = np.asarray(info["idle"])
            if int(pending[t + 1:].sum()) != int(info["in_transit"]):
                return False, f"t={t}: in transit {info['in_transit']} != replay {int(pending[t + 1:].sum())}"
            n += 1
    return True, f"{n} states: idle + in transit == fleet, and idle vehicles equal a replay of the flows"


def served_within_demand(make: Callable[[], Any]) -> tuple[bool, str]:
    n = 0
    for _env, infos, _ in single_agent_episodes(make, SEEDS):
        for info in infos:
            P, D = np.asarray(info["pax_flow"]), np.asarray(info["od_demand"])
            if (P > D).any():
                i, j = (int(x[0]) for x in np.nonzero(P > D))
                return False, f"t={info['t']}: served {P[i, j]} > demand {D[i, j]} on {i}->{j}"
            if (P.sum(axis=1) > np.asarray(info["idle_before"])).any():
                return False, f"t={info['t']}: departures exceed idle vehicles"
            if "served" in info and info["served"] > info["demand"] + TOL:
                return False, f"t={info['t']}: served {info['served']} > demand {info['demand']}"
            n += 1
    return True, f"{n} matchings: served <= demand per pair, departures <= idle vehicles"


def flows_integral(make: Callable[[], Any]) -> tuple[bool, str]:
    n = 0
    for env, infos, _ in single_agent_episodes(make, SEEDS):
        rounding = env.unwrapped.config.target_rounding
        for k, info in enumerate(infos):
            arrays = {"pax_flow": info["pax_flow"], "od_demand": info["od_demand"], "idle": info["idle"]}
            if k > 0:
                arrays |= {"reb_flow": info["reb_flow"], "targets": info["targets"]}
            for name, a in arrays.items():
                a = np.asarray(a)
                if a.dtype.kind not in "iu" or (a < 0).any():
                    return False, f"t={info['t']}: {name} is not a non-negative integer array ({a.dtype})"
            if k > 0:
                if np.diag(info["reb_flow"]).any():
                    return False, f"t={info['t']}: rebalancing flow on a self-loop"
                prev = int(infos[k - 1]["idle"].sum())
                tot = int(info["targets"].sum())
                if tot > prev or (rounding == "largest-remainder" and tot != prev):
                    return False, f"t={info['t']}: targets sum to {tot}, idle vehicles were {prev} ({rounding})"
            n += 1
    return True, f"{n} steps: flows, demand, targets are non-negative integers; targets sum to the idle vehicles"


def targets_reached(make: Callable[[], Any]) -> tuple[bool, str]:
    """On the complete graph every target is reachable: q + inflow - outflow == q^ (OHIO B.3.5)."""
    n = 0
    for env, infos, _ in single_agent_episodes(make, SEEDS):
        cfg = env.unwrapped.config
        if cfg.rebalance_edges != "complete":
            return True, "skipped: rebalancing restricted to the road graph (targets may be unreachable)"
        for k in range(1, len(infos)):
            R = np.asarray(infos[k]["reb_flow"])
            after = np.asarray(infos[k - 1]["idle"]) + R.sum(axis=0) - R.sum(axis=1)
            want = np.asarray(infos[k]["targets"])
            ok = np.array_equal(after, want) if cfg.target_rounding == "largest-remainder" else (after >= want).all()
            if not ok or infos[k]["slack"] > TOL:
                return False, (f"step {k - 1}: distribution after rebalancing {after.tolist()} "
                               f"!= targets {want.tolist()}")
            n += 1
    return True, f"{n} rebalancings reach their targets exactly (analytical inverse of B.3.5 holds)"


def reward_accounting(make: Callable[[], Any]) -> tuple[bool, str]:
    n = 0
    for env, infos, rewards in single_agent_episodes(make, SEEDS):
        core = env.unwrapped.core
        sums = {"served": 0.0, "demand": 0.0, "revenue": 0.0, "operating_cost": 0.0, "reb_cost": 0.0}
        for k in range(1, len(infos)):
            info, t = infos[k], infos[k]["t"]
            P = np.asarray(info["pax_flow"])
            revenue = float((P * core.price[t]).sum()) if t < core.T else 0.0
            opcost = float((P * core.pax_cost[t]).sum()) if t < core.T else 0.0
            served, demand = float(P.sum()), float(np.asarray(info["od_demand"]).sum())
            if k == 1:  # the matching of step 0 is credited to the first step
                P0 = np.asarray(infos[0]["pax_flow"])
                revenue += float((P0 * core.price[0]).sum())
                opcost += float((P0 * core.pax_cost[0]).sum())
                served += float(P0.sum())
                demand += float(np.asarray(infos[0]["od_demand"]).sum())
            reb = float((np.asarray(info["reb_flow"]) * core.reb_cost_matrix[t - 1]).sum())
            want = {"revenue": revenue, "operating_cost": opcost, "reb_cost": reb, "served": served,
                    "demand": demand, "pax_reward": revenue - opcost, "reward": revenue - opcost - reb}
            for key, val in want.items():
                if not np.isclose(info[key], val, rtol=1e-9, atol=1e-6):
                    return False, f"step {k - 1}: info['{key}'] = {info[key]}, flows x prices give {val}"
            if not np.isclose(rewards[k - 1], want["reward"], rtol=1e-9, atol=1e-6):
                return False, f"step {k - 1}: reward {rewards[k - 1]} != revenue - costs {want['reward']}"
            for key in sums:
                sums[key] += want[key]
            n += 1
        m = env.episode_metrics()
        expect = {**sums, "return": float(sum(rewards)),
                  "served_fraction": sums["served"] / sums["demand"] if sums["demand"] > 0 else 1.0}
        for key, val in expect.items():
            if not np.isclose(m[key], val, rtol=1e-9, atol=1e-6):
                return False, f"episode_metrics()['{key}'] = {m[key]}, infos give {val}"
    return True, f"{n} rewards = sum f (p - c^P) - sum x c^R from the flows; episode metrics add up"


# registered by hieralloc.envs.mobility (imported there); names appear in 'hieralloc check-env'
def _register() -> None:
    from hieralloc.envs.checks import register_invariant

    register_invariant("mobility", "vehicle conservation", vehicle_conservation)
    register_invariant("mobility", "served <= demand", served_within_demand)
    register_invariant("mobility", "flows non-negative integers", flows_integral)
    register_invariant("mobility", "rebalancing reaches targets", targets_reached)
    register_invariant("mobility", "reward accounting", reward_accounting)


_register()

__all__ = ["flows_integral", "reward_accounting", "served_within_demand", "targets_reached", "vehicle_conservation"]
