"""Invariants of the supply family, run by :func:`hieralloc.envs.checks.check_env`.

They replay every episode from the per-step infos alone (flows, demand) and the configuration, so
the bookkeeping and the reward of the core are checked by an independent computation, and they
check the OHIO exact-recovery property of the formulation on the same random actions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from hieralloc.envs.checks import sample_actions, single_agent_episodes

TOL = 1e-6
SEEDS = (0, 1)


def goods_conservation(make: Callable[[], Any]) -> tuple[bool, str]:
    """Replay stocks, sales, back-orders and arrivals from the flows and the demand of the infos."""
    n = 0
    for env, infos, _ in single_agent_episodes(make, SEEDS):
        cfg = env.unwrapped.config
        strict = cfg.action_mode == "goal"  # end-to-end flows may break the capacities (penalised instead)
        S, T = cfg.n_stores, cfg.episode_length
        tau = np.asarray(cfg.travel_time)
        cap = np.asarray(cfg.storage_capacity)
        L = T + int(max(tau.max(), cfg.production_time)) + 2
        ship_due = np.zeros((L, S), dtype=np.int64)
        prod_due = np.zeros(L, dtype=np.int64)
        stock = np.asarray(infos[0]["stock"]).copy()
        initial = int(stock.sum())
        back = np.zeros(S, dtype=np.int64)
        produced = sold = discarded = 0
        for k, info in enumerate(infos[1:]):
            t = k
            f, w = np.asarray(info["shipments"]), int(np.asarray(info["production"]).sum())
            d = np.asarray(info["store_demand"])
            net = stock[1:] - d - back + ship_due[t + 1:].sum(axis=0)
            if (f < 0).any() or w < 0 or f.sum() > stock[0]:
                return False, f"t={t}: shipments {f.tolist()} exceed the warehouse stock {stock[0]} (33d)"
            if strict and (f + net > cap[1:]).any():
                return False, f"t={t}: shipments {f.tolist()} break a store capacity (33c)"
            if w > cfg.production_capacity:
                return False, f"t={t}: production {w} exceeds c_p = {cfg.production_capacity}"
            if strict and stock[0] - f.sum() + prod_due[t + 1:].sum() + w > cap[0]:
                return False, f"t={t}: production {w} breaks the warehouse capacity (33e)"
            stock[0] -= f.sum()
            np.add.at(ship_due, (t + tau, np.arange(S)), f)
            prod_due[t + cfg.production_time] += w
            due = d + back
            sales = np.minimum(due, stock[1:])
            stock[1:] -= sales
            back = due - sales
            over = np.maximum(stock - cap, 0)
            stock -= over
            if not (np.array_equal(sales, info["store_sales"]) and np.array_equal(back, info["store_backorders"])
                    and np.array_equal(stock, info["inventory"])):
                return False, f"t={t}: sales/back-orders/stock differ from a replay of the flows"
            stock[0] += prod_due[t + 1]
            stock[1:] += ship_due[t + 1]
            if not np.array_equal(stock, info["stock"]):
                return False, f"t={t + 1}: stock {info['stock'].tolist()} != replay {stock.tolist()}"
            produced += w
            sold += int(sales.sum())
            discarded += int(over.sum())
            moving = int(ship_due[t + 2:].sum() + prod_due[t + 2:].sum())
            if int(stock.sum()) + moving != initial + produced - sold - discarded:
                return False, f"t={t + 1}: goods are not conserved"
            n += 1
    return True, f"{n} steps: stock, sales, back-orders and arrivals equal a replay; goods conserved"


def reward_accounting(make: Callable[[], Any]) -> tuple[bool, str]:
    """OHIO Eq. (32) recomputed from the infos; episode metrics add up."""
    n = 0
    for env, infos, rewards in single_agent_episodes(make, SEEDS):
        cfg = env.unwrapped.config
        hold = np.asarray(cfg.storage_cost)
        sums: dict[str, float] = {}
        for k, info in enumerate(infos[1:]):
            want = {
                "revenue": cfg.price * float(np.sum(info["store_sales"])),
                "storage_cost": float(hold @ np.asarray(info["inventory"])),
                "production_cost": cfg.production_cost * float(np.sum(info["production"])),
                "transport_cost": cfg.transport_cost * float(np.sum(info["shipments"])),
                "overflow_cost": cfg.overflow_penalty * cfg.price * float(np.sum(info["overflow"])),
                "backorder_cost": cfg.backorder_cost * float(np.sum(info["store_backorders"])),
            }
            want["reward"] = want["revenue"] - sum(v for key, v in want.items() if key != "revenue")
            for key, val in want.items():
                if not np.isclose(info[key], val, rtol=1e-9, atol=1e-6):
                    return False, f"step {k}: info['{key}'] = {info[key]}, Eq. (32) from the flows gives {val}"
                sums[key] = sums.get(key, 0.0) + val
            if not np.isclose(rewards[k], want["reward"], rtol=1e-9, atol=1e-6):
                return False, f"step {k}: reward {rewards[k]} != Eq. (32) {want['reward']}"
            if cfg.action_mode == "goal" and np.asarray(info["overflow"]).any():
                return False, f"step {k}: stock above a capacity although the controller enforces (33c)/(33e)"
            n += 1
        m = env.episode_metrics()
        sums["return"] = float(sum(rewards))
        for key in ("return", "revenue", "storage_cost", "production_cost", "transport_cost", "backorder_cost"):
            if not np.isclose(m[key], sums[key], rtol=1e-9, atol=1e-6):
                return False, f"episode_metrics()['{key}'] = {m[key]}, the infos give {sums[key]}"
    return True, f"{n} rewards = Eq. (32) from the infos (goal mode: no overflow); episode metrics add up"


def exact_recovery(make: Callable[[], Any]) -> tuple[bool, str]:
    """OHIO App. B.4.5: the inverse (goal mode) or flow action (flow mode) of the executed flows,
    executed from the same state, reproduces the flows exactly."""
    from hieralloc.envs.supply.formulation import FORMULATION

    n = 0
    for seed in SEEDS:
        env = make()
        base = env.unwrapped
        core = base.core
        rng = np.random.default_rng(seed)
        _, infos = env.reset(seed=seed)
        while env.agents:
            act = sample_actions(env, infos, rng)
            aux = FORMULATION.observe(base).aux[None, :]
            ship, prod, *_ = core.controller(np.asarray(act[base.possible_agents[0]], dtype=float)[None, :])
            flows = np.concatenate([ship, prod], axis=1).astype(float)
            conv = FORMULATION.invert if base.config.action_mode == "goal" else FORMULATION.flow_action
            again = conv(aux, flows).astype(np.float32)  # as a policy would emit it
            ship2, prod2, *_ = core.controller(again)
            if not (np.array_equal(ship, ship2) and np.array_equal(prod, prod2)):
                return False, (f"t={core.t}: flows {flows[0].tolist()} re-executed from their inverse give "
                               f"{np.concatenate([ship2, prod2], axis=1)[0].tolist()}")
            _, _, _, _, infos = env.step(act)
            low = FORMULATION.low_level(base, next(iter(infos.values())))
            if not np.array_equal(low, flows[0]):
                return False, (f"t={core.t}: the step executed {low.tolist()}, the controller planned "
                               f"{flows[0].tolist()}")
            n += 1
    return True, f"{n} transitions: executing the inverse of the observed flows reproduces them exactly"


def _register() -> None:
    from hieralloc.envs.checks import register_invariant

    register_invariant("supply", "goods conservation", goods_conservation)
    register_invariant("supply", "reward accounting", reward_accounting)
    register_invariant("supply", "OHIO exact recovery", exact_recovery)


_register()

__all__ = ["exact_recovery", "goods_conservation", "reward_accounting"]
