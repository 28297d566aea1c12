"""Supply-chain inventory environment (OHIO App. B.4): registration and PettingZoo checks, dynamics and
reward of Eq. (32) by hand, Eq. (31) demand, conservation, determinism, graph state, the OHIO
formulation with exact recovery, and bad input."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import hieralloc.envs.supply as sup
from hieralloc.config import from_dict
from hieralloc.envs.checks import check_env, rollout
from hieralloc.envs.supply import SupplyChainEnv, SupplyConfig, SupplyCore, expected_demand, seasonal_demand
from hieralloc.envs.supply.formulation import AUX_FIELDS, aux_dim, aux_slices, make_aux
from hieralloc.errors import ConfigError, HierallocError
from hieralloc.ohio.formulation import get_formulation
from hieralloc.registry import ENVS, SCENARIOS, get_env

NAMES = ["supply-chain", "supply-1w3s", "supply-1w10s", "supply-1w10s-cap"]


def tiny(**kw: Any) -> SupplyConfig:
    """One warehouse, one store, constant demand 4 (f = 0, d_var = 0), T = 3."""
    base = dict(demand_max=[4.0], demand_var=[0.0], demand_freq=[0.0], demand_shift=[0.0], travel_time=[1],
                production_time=1, storage_capacity=[10, 5], storage_cost=[1.0, 2.0], production_capacity=6,
                production_cost=3.0, transport_cost=0.5, price=10.0, backorder_cost=1.0, episode_length=3,
                initial_inventory=[4, 1])
    base.update(kw)
    return SupplyConfig(**base)


# ---------------------------------------------------------------------------------------------
# registration, PettingZoo API and invariants


def test_registration_and_scenarios() -> None:
    spec = ENVS["supply-chain"]
    assert spec.family == "supply" and spec.continuous and not spec.discrete and spec.has_global_state
    assert set(NAMES[1:]) <= set(SCENARIOS)
    c3 = get_env("supply-1w3s").default_config()
    assert c3.n_stores == 3 and c3.storage_capacity == (50, 15, 15, 15) and c3.production_capacity == 25
    assert c3.storage_cost == (0.1, 0.5, 0.5, 0.5) and c3.demand_max == (5.0, 15.0, 20.0) and c3.episode_length == 30
    c10 = get_env("supply-1w10s").default_config()
    assert c10.n_stores == 10 and c10.storage_capacity == (80,) + (15,) * 10 and c10.production_capacity == 60
    assert c10.demand_var == (2.0,) * 10 and c10.travel_time == (1,) * 10 and c10.storage_cost[0] == 0.005
    cap = get_env("supply-1w10s-cap").default_config()
    assert cap.storage_capacity == (80,) + (10,) * 10
    assert cap.replace(storage_capacity=c10.storage_capacity) == c10  # only the store capacities differ
    assert get_env("supply-chain").default_config().dynamics() == c3.dynamics()


@pytest.mark.parametrize("name, overrides", [
    ("supply-1w10s-cap", {}),
    ("supply-1w3s", {"action_mode": "flow"}),
    ("supply-chain", {"travel_time": [2, 1, 3], "production_time": 2, "initial_inventory": [20, 5, 0, 15]}),
    ("supply-chain", {"travel_time": [1, 2, 1], "production_time": 3, "action_mode": "flow"}),
])
def test_check_env_passes(name: str, overrides: dict[str, Any]) -> None:
    rows = check_env(name, num_cycles=40, **overrides)
    assert not [r for r in rows if not r[1]], rows
    assert sum(r[0].startswith("supply: ") for r in rows) == 3


# ---------------------------------------------------------------------------------------------
# dynamics and reward by hand


def test_dynamics_and_reward_by_hand() -> None:
    env = SupplyChainEnv(tiny())
    _, infos = env.reset(seed=0)
    assert env.core.demand[0].ravel().tolist() == [4, 4, 4]   # f = 0, d_var = 0: d = floor(4/2 (1 + 1))
    assert infos["manager"]["stock"].tolist() == [4, 1]
    # t = 0: weights (1/2, 1/2) split the warehouse's 4 units 2 / 2 -> ship 2; produce 0.5 x 6 = 3
    _, rew, _, trunc, infos = env.step({"manager": np.array([0.5, 0.5, 0.5], np.float32)})
    i0 = infos["manager"]
    assert i0["targets"].tolist() == [2, 3] and i0["shipments"].tolist() == [2] and i0["production"].tolist() == [3]
    # store sells min(4, 1) = 1, back-orders 3; warehouse keeps 2
    assert i0["store_sales"].tolist() == [1] and i0["store_backorders"].tolist() == [3]
    assert i0["inventory"].tolist() == [2, 0] and i0["slack"] == 0.0 and i0["violation"] == 0.0
    # Eq. (32): 10 x 1 - (1 x 2 + 2 x 0) - 3 x 3 - 0.5 x 2 - 0 - 1 x 3 = -5
    assert rew["manager"] == pytest.approx(-5.0) and i0["storage_cost"] == 2 and i0["backorder_cost"] == 3
    assert i0["stock"].tolist() == [5, 2] and not trunc["manager"]   # arrivals of t = 1: 3 produced, 2 shipped
    # t = 1: everything to the store (5), full production 6; (33e): 5 + 6 - 5 <= 10
    _, rew, _, _, infos = env.step({"manager": np.array([0.0, 1.0, 1.0], np.float32)})
    i1 = infos["manager"]
    assert i1["shipments"].tolist() == [5] and i1["production"].tolist() == [6]
    assert i1["store_sales"].tolist() == [2] and i1["store_backorders"].tolist() == [5]   # 4 + 3 due, 2 on hand
    assert rew["manager"] == pytest.approx(20 - 0 - 18 - 2.5 - 5)
    # t = 2 (last): keep everything, produce nothing; the store sells 5 of 9 due
    _, rew, _, trunc, infos = env.step({"manager": np.array([1.0, 0.0, 0.0], np.float32)})
    i2 = infos["manager"]
    assert i2["store_sales"].tolist() == [5] and i2["store_backorders"].tolist() == [4]
    assert rew["manager"] == pytest.approx(50 - 6 - 4) and trunc["manager"] and env.agents == []
    m = env.episode_metrics()
    assert m["return"] == pytest.approx(-5 - 5.5 + 40) and m["sales"] == 8 and m["demand"] == 12
    assert m["backorders"] == 12 and m["produced"] == 9 and m["shipped"] == 7 and m["steps"] == 3
    assert m["fill_rate"] == pytest.approx(8 / 12) and m["overflow"] == 0 and m["violation"] == 0


def test_capacity_cut_and_slack_in_goal_mode() -> None:
    env = SupplyChainEnv(tiny(initial_inventory=[10, 5]))
    env.reset(seed=0)
    # store: 5 on hand, demand 4 -> n = 1, room C - n = 4; a goal of all 10 units ships only 4 (33c);
    # production 6 wanted, but (33e): 10 + w - 4 <= 10 -> w <= 4
    _, _, _, _, infos = env.step({"manager": np.array([0.0, 1.0, 1.0], np.float32)})
    i = infos["manager"]
    assert i["targets"].tolist() == [10, 6] and i["shipments"].tolist() == [4] and i["production"].tolist() == [4]
    assert i["slack"] == pytest.approx(6 + 2) and i["overflow"].sum() == 0


def test_flow_mode_cuts_to_stock_and_penalises_overflow() -> None:
    env = SupplyChainEnv(tiny(action_mode="flow", initial_inventory=[10, 5]))
    assert env.action_space("manager").shape == (2,)
    env.reset(seed=0)
    # request: ship 1.0 x 10 (the warehouse capacity bounds each shipment), produce 0.5 x 6 = 3
    _, rew, _, _, infos = env.step({"manager": np.array([1.0, 0.5], np.float32)})
    i = infos["manager"]
    assert i["targets"].tolist() == [10, 3] and i["shipments"].tolist() == [10] and i["production"].tolist() == [3]
    # violation: store room is 4, so 6 units beyond (33c); warehouse room 10 - 0 - 0 = 10 >= 3
    assert i["violation"] == 6.0 and i["slack"] == 0.0
    # t = 1: 1 + 10 arrive -> 11 on hand, 4 sold, 7 left <= 5? no: 2 discarded at 1.5 p each
    _, rew, _, _, infos = env.step({"manager": np.array([0.0, 0.0], np.float32)})
    i = infos["manager"]
    assert i["store_sales"].tolist() == [4] and i["overflow"].tolist() == [0, 2] and i["inventory"].tolist() == [3, 5]
    assert i["overflow_cost"] == pytest.approx(1.5 * 10 * 2)
    assert rew["manager"] == pytest.approx(40 - (3 + 10) - 30)
    # a request above the stock is cut to it (in proportion) and counted as violation
    env = SupplyChainEnv(tiny(action_mode="flow", initial_inventory=[3, 0]))
    env.reset(seed=0)
    _, _, _, _, infos = env.step({"manager": np.array([0.7, 0.0], np.float32)})
    assert infos["manager"]["shipments"].tolist() == [3] and infos["manager"]["violation"] == 4.0


def test_no_action_ships_and_produces_nothing() -> None:
    for mode in ("goal", "flow"):
        env = SupplyChainEnv(tiny(action_mode=mode))
        env.reset(seed=0)
        _, _, _, _, infos = env.step({})
        assert infos["manager"]["shipped"] == 0 and infos["manager"]["produced"] == 0


# ---------------------------------------------------------------------------------------------
# demand (Eq. (31)), conservation, determinism, batching


def test_seasonal_demand_matches_eq31() -> None:
    cfg = get_env("supply-1w3s").default_config()
    base = seasonal_demand(cfg)
    t, i = 7, 2
    want = 20 / 2 * (1 + np.cos(6 * np.pi * (2 * 6 + t) / 30))
    assert base.shape == (30, 3) and base[t, i] == pytest.approx(want)
    core = SupplyCore(cfg, 400)
    core.reset(seed=5)
    d = core.demand
    assert (d >= np.floor(base)[None]).all() and (d <= np.floor(base + 2.0)[None]).all()
    # the exact expectation of floor(x + U(0, v)) against 400 episodes
    se = d.std(axis=0) / np.sqrt(400)
    assert (np.abs(d.mean(axis=0) - expected_demand(cfg)) < 5 * se + 1e-9).all()
    assert np.allclose(expected_demand(cfg.replace(demand_var=(0.0, 0.0, 0.0))), np.floor(base))


def test_goods_conservation_with_random_goals() -> None:
    cfg = get_env("supply-1w10s").default_config(travel_time=[1, 2] * 5, production_time=2)
    env = SupplyChainEnv(cfg)
    steps = rollout(env, seed=3)
    infos = [s[4]["manager"] for s in steps]
    produced = sum(i["produced"] for i in infos[1:])
    sold = sum(i["sales"] for i in infos[1:])
    c = env.core
    moving = int(c.ship_arrivals[0, c.t + 1:].sum() + c.prod_arrivals[0, c.t + 1:].sum())
    assert c.stock.sum() + moving == produced - sold          # started empty, nothing discarded
    assert all(i["overflow"].sum() == 0 for i in infos[1:])


def test_determinism_and_batched_core() -> None:
    cfg = get_env("supply-1w3s").default_config()

    def returns(env: SupplyChainEnv, seed: int) -> list[float]:
        return [float(s[1]["manager"]) for s in rollout(env, seed)[1:]]

    a, b = SupplyChainEnv(cfg), SupplyChainEnv(cfg)
    assert returns(a, 3) == returns(b, 3)
    returns(a, 4)
    assert returns(a, 3) == returns(SupplyChainEnv(cfg), 3)   # a used instance replays a fresh one
    d3 = a.episode_demand()
    returns(a, 5)
    assert not np.array_equal(d3, a.episode_demand())
    batch = SupplyCore(cfg, 3)
    singles = [SupplyCore(cfg, 1) for _ in range(3)]
    seeds = [11, 12, 13]
    batch.reset(seed=seeds)
    for s, c in zip(seeds, singles, strict=True):
        c.reset(seed=s)
    rng = np.random.default_rng(0)
    while batch.t < batch.T:
        g = rng.uniform(0, 1, (3, 5))
        r = batch.step(g)
        for k, c in enumerate(singles):
            rk = c.step(g[k:k + 1])
            assert r.reward[k] == rk.reward[0] and np.array_equal(r.shipments[k], rk.shipments[0])
    assert np.array_equal(batch.observation()[2], singles[2].observation()[0])
    with pytest.raises(HierallocError, match="finished episode"):
        batch.step(np.ones((3, 5)))


# ---------------------------------------------------------------------------------------------
# graph state and the OHIO formulation


def test_graph_observation_and_state() -> None:
    cfg = get_env("supply-1w3s").default_config(initial_inventory=[30, 2, 3, 4], horizon=2)
    env = SupplyChainEnv(cfg)
    obs, _ = env.reset(seed=0)
    g = env.graph_obs()
    N, F = 4, 8 + 2 * 2
    assert g["x"].shape == (N, F) and g["x"].dtype == np.float32 and obs["manager"].shape == (N * F + 1,)
    assert np.array_equal(obs["manager"][:-1], g["x"].ravel()) and np.array_equal(env.state(), obs["manager"])
    s = cfg.obs_scale
    assert np.allclose(g["x"][:, 2], np.array([30, 2, 3, 4]) * s)                 # stock
    assert np.allclose(g["x"][1:, 0], env.core.demand[0, 0] * s) and g["x"][0, 0] == 0   # demand at stores
    assert np.allclose(g["x"][:, 6], np.array([50, 15, 15, 15]) * s)              # capacities
    assert g["x"][0, 7] == pytest.approx(25 * s) and g["x"][1, 7] == 0            # production capacity
    assert np.allclose(g["x"][1:, 10:], expected_demand(cfg)[1:3].T * s, atol=1e-6)  # expected demand look-ahead
    assert g["edge_index"].tolist() == [[0, 0, 0, 1, 2, 3], [1, 2, 3, 0, 0, 0]]
    assert g["edge_attr"].shape == (6, 2) and np.allclose(g["edge_attr"][:, 0], 1.0)
    env.step({"manager": np.array([0.1, 0.3, 0.3, 0.3, 1.0], np.float32)})
    x = env.graph_obs()["x"]
    c = env.core
    assert np.allclose(x[0, 8], c.prod_arrivals[0, c.t + 1] * s) and c.prod_arrivals[0, c.t] == 25  # arrived


def test_formulation_layout_and_dims() -> None:
    form = get_formulation("supply")
    env = SupplyChainEnv(get_env("supply-1w10s").default_config())
    lay = form.layout(env)
    assert lay.n_nodes == 11 and lay.n_edges == 20 and lay.n_flow_edges == 10 and lay.producers.tolist() == [0]
    assert lay.flow_edges.tolist() == [[0] * 10, list(range(1, 11))]
    assert form.goal_dim(lay) == 12 and form.flow_dim(lay) == 11
    assert env.action_space("manager").shape == (12,)
    flow_env = SupplyChainEnv(get_env("supply-1w10s").default_config(action_mode="flow"))
    assert flow_env.action_space("manager").shape == (11,)
    assert form.layout(flow_env).fingerprint == lay.fingerprint          # the action mode is not part of it
    cap = SupplyChainEnv(get_env("supply-1w10s-cap").default_config())
    assert form.layout(cap).fingerprint != lay.fingerprint
    env.reset(seed=0)
    st = form.observe(env)
    assert st.x.shape == (11, 14) and st.edge_attr.shape == (20, 2) and st.aux.shape == (aux_dim(10),)
    sl = aux_slices(10)
    assert [n for n, _ in AUX_FIELDS] == list(sl) and sl["flow_bound"].stop == aux_dim(10)
    assert st.aux[sl["capacity"]].tolist() == [80] + [15] * 10 and st.aux[sl["flow_bound"]].tolist() == [80] * 10


@pytest.mark.parametrize("mode", ["goal", "flow"])
def test_exact_recovery_on_many_random_transitions(mode: str) -> None:
    """OHIO App. B.4.5: invert(aux, low_level(info)) executed from the same state gives the same flows.
    Batched core (32 episodes x 30 steps of random actions), then a replay of whole episodes through
    the PettingZoo env with the inverted actions only."""
    form = get_formulation("supply")
    cfg = get_env("supply-1w10s").default_config(action_mode=mode)
    conv = form.invert if mode == "goal" else form.flow_action
    B = 32
    core = SupplyCore(cfg, B)
    core.reset(seed=list(range(B)))
    rng = np.random.default_rng(0)
    n = 0
    while core.t < core.T:
        act = rng.uniform(0, 1, (B, 12 if mode == "goal" else 11)) * (rng.random((B, 1)) < 0.9)
        aux = make_aux(core)
        ship, prod, *_ = core.controller(act)
        flows = np.concatenate([ship, prod], axis=1).astype(float)
        for dtype in (np.float64, np.float32):
            again = conv(aux, flows).astype(dtype)
            ship2, prod2, *_ = core.controller(again)
            assert np.array_equal(ship2, ship) and np.array_equal(prod2, prod)
        res = core.step(act)
        assert np.array_equal(res.shipments, ship) and np.array_equal(res.production, prod)
        n += B
    assert n == B * 30
    # replay: the inverted actions alone reproduce every flow and reward of the episode
    env, replay = SupplyChainEnv(cfg), SupplyChainEnv(cfg)
    _, infos = env.reset(seed=9)
    replay.reset(seed=9)
    while env.agents:
        aux = form.observe(env).aux[None]
        _, r1, _, _, infos = env.step({"manager": rng.uniform(0, 1, env.action_space("manager").shape)})
        low = form.low_level(env, infos["manager"])
        _, r2, _, _, info2 = replay.step({"manager": conv(aux, low[None])[0]})
        assert np.array_equal(form.low_level(replay, info2["manager"]), low) and r1 == r2


def test_invert_values_and_errors() -> None:
    form = get_formulation("supply")
    env = SupplyChainEnv(tiny(initial_inventory=[8, 0]))
    env.reset(seed=0)
    aux = env.aux()[None]
    goal = form.invert(aux, np.array([[6.0, 3.0]]))
    assert goal.tolist() == [[0.25, 0.75, 0.5]]                   # 2 of 8 stay, 6 of 8 shipped, 3 of 6 produced
    assert form.flow_action(aux, np.array([[6.0, 3.0]])).tolist() == [[0.6, 0.5]]
    empty = SupplyChainEnv(tiny(initial_inventory=[0, 0]))
    empty.reset(seed=0)
    assert form.invert(empty.aux()[None], np.array([[0.0, 6.0]])).tolist() == [[1.0, 0.0, 1.0]]
    with pytest.raises(HierallocError, match="do not match"):
        form.invert(aux, np.zeros((1, 5)))
    with pytest.raises(HierallocError, match="lacks"):
        form.low_level(env, {"reward": 1.0})
    with pytest.raises(HierallocError, match="supply-chain environment"):
        form.layout(object())


# ---------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("values, key, text", [
    ({"demand_max": [5.0, -1.0, 20.0]}, "demand_max[1]", "must be >= 0"),
    ({"demand_var": [2.0, 2.0]}, "demand_var", "has 2 entries, expected 3"),
    ({"storage_capacity": [50, 15, 15]}, "storage_capacity", "warehouse first"),
    ({"storage_capacity": [50, 15, -15, 15]}, "storage_capacity[2]", "must be >= 0"),
    ({"storage_capacity": [50, 15.5, 15, 15]}, "storage_capacity[1]", "integer"),
    ({"storage_cost": [0.1, float("nan"), 0.5, 0.5]}, "storage_cost[1]", "finite"),
    ({"travel_time": [1, 0, 1]}, "travel_time[1]", "at least one step"),
    ({"initial_inventory": [60, 0, 0, 0]}, "initial_inventory[0]", "above the node's storage capacity"),
    ({"initial_inventory": [1, 2]}, "initial_inventory", "expected 4"),
    ({"demand_max": []}, "demand_max", "non-empty"),
    ({"production_capacity": -5}, "production_capacity", "must be in [0"),
    ({"price": float("nan")}, "price", "finite"),
    ({"action_mode": "edges"}, "action_mode", "one of 'goal', 'flow'"),
    ({"demand_freq": ["a", 1, 2]}, "demand_freq[0]", "must be a number"),
])
def test_malformed_config_one_clear_error(values: dict[str, Any], key: str, text: str) -> None:
    with pytest.raises(ConfigError) as e:
        from_dict(SupplyConfig, values, "run.yaml", prefix="env.")
    msg = str(e.value)
    assert f"'env.{key}'" in msg and text in msg and "run.yaml" in msg and "\n" not in msg
    with pytest.raises(ConfigError):
        SupplyConfig(**values)


def test_bad_actions_and_reset_options() -> None:
    env = SupplyChainEnv(tiny())
    env.reset(seed=0)
    with pytest.raises(HierallocError, match="entry 1 is nan"):
        env.step({"manager": np.array([0.5, np.nan, 0.5])})
    with pytest.raises(HierallocError, match="has 2 entries, expected 3"):
        env.step({"manager": np.array([0.5, 0.5])})
    with pytest.raises(ConfigError, match="non-negative integer"):
        env.reset(options={"demand": np.full((3, 1), -1)})
    with pytest.raises(ConfigError, match="shape"):
        env.reset(options={"demand": np.zeros((4, 1))})
    with pytest.raises(ConfigError, match="storage capacities"):
        env.reset(options={"inventory": [11, 0]})
    env.reset(options={"demand": np.array([[1], [2], [3]]), "inventory": [2, 2]})
    assert env.core.demand[0, :, 0].tolist() == [1, 2, 3] and env.core.stock[0].tolist() == [2, 2]


def test_public_names() -> None:
    assert sup.FAMILY == "supply" and sup.AGENT == "manager" and sup.FORMULATION.family == "supply"
