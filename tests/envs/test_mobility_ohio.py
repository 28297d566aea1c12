"""OHIO parts of the mobility family: flow mode (end-to-end actions, projection, violation), the
registered Formulation (layout, exact inverse on many transitions, flow actions), the behaviour
policies INF / DTV / DISP and the MPC-Oracle, the INF grid search and the inverse benchmark script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hieralloc.envs.checks import check_env
from hieralloc.envs.mobility import MobilityConfig, MobilityEnv, desired_targets
from hieralloc.envs.mobility.behaviour import INF_DEFAULT, INF_TUNED, DtvPolicy, InfConfig, InfPolicy, inf_parameters
from hieralloc.envs.mobility.inf_grid import grid_search
from hieralloc.envs.mobility.oracle import MpcOraclePolicy
from hieralloc.errors import DataError, HierallocError
from hieralloc.eval import episode_seed, evaluate, mean_metrics
from hieralloc.ohio import FORMULATIONS, get_formulation
from hieralloc.registry import get_algo, get_env
from hieralloc.solvers import RebalancingInverse, RebalancingModel, solve_milp

ROOT = Path(__file__).resolve().parents[2]
FORM = get_formulation("mobility")
BEHAVIOURS = ("disp", "prop", "inf", "dtv", "mpc-oracle", "no-rebalancing")


def _episode(env: Any, policy: Any, seed: int) -> list[dict[str, Any]]:
    """Transitions of one goal- or flow-mode episode: aux before the step, action, flows, info."""
    obs, _ = env.reset(seed=seed)
    policy.reset(env, seed)
    out = []
    while env.agents:
        aux = FORM.observe(env).aux
        t = env.t
        action = policy.act(obs)["operator"]
        obs, rew, _, _, infos = env.step({"operator": action})
        info = infos["operator"]
        out.append({"aux": aux, "action": np.asarray(action, dtype=float), "flows": FORM.low_level(env, info),
                    "info": info, "reward": rew["operator"], "t": t})
    return out


def _policy(name: str, env: Any) -> Any:
    algo = get_algo(name)
    return algo.build(env, algo.config_cls(), 0)


# ---------------------------------------------------------------------------------------------
# flow mode


def test_flow_mode_projection_and_violation_by_hand() -> None:
    env = MobilityEnv(MobilityConfig(synthetic_regions=4, episode_length=3, action_mode="flow"))
    assert env.action_space("operator").shape == (12,)
    T = 3
    env.reset(seed=0, options={"demand": np.zeros((T, 4, 4), dtype=int), "idle": [5, 3, 0, 2]})
    a = np.zeros(12)  # complete-graph order: (0,1) (0,2) (0,3) (1,0) (1,2) (1,3) (2,0) ... (3,2)
    a[0:3] = 0.5          # origin 0 asks 150% of its 5 vehicles: scaled to 1/3 each, 5 vehicles in all
    a[3], a[5] = 0.2, 0.4  # origin 1: 0.6 and 1.2 vehicles -> 2 in all, the larger remainder first
    a[6:9] = 0.9          # origin 2 has no idle vehicle
    a[9] = 1.0            # origin 3 sends both its vehicles to 0
    _, rew, _, _, infos = env.step({"operator": a.astype(np.float32)})
    info = infos["operator"]
    R = info["reb_flow"]
    assert R[0].tolist() == [0, 2, 2, 1] and R[1].tolist() == [1, 0, 0, 1] and R[2].sum() == 0
    assert R[3].tolist() == [2, 0, 0, 0]
    assert info["violation"] == pytest.approx(3 * (2.5 - 5 / 3), rel=1e-6)  # vehicles removed by the scale-down
    assert info["targets"].tolist() == (np.array([5, 3, 0, 2]) + R.sum(0) - R.sum(1)).tolist()
    assert info["slack"] == 0 and info["reb_cost"] == pytest.approx(float((R * env.core.reb_cost_matrix[0]).sum()))
    _, _, _, _, infos = env.step({"operator": None})  # no action: nothing moves
    assert infos["operator"]["reb_flow"].sum() == 0 and infos["operator"]["violation"] == 0
    env.step({"operator": np.zeros(12)})
    assert env.episode_metrics()["violation"] == pytest.approx(2.5, rel=1e-6)
    with pytest.raises(HierallocError, match="expected 12: one fraction per flow edge"):
        env.reset(seed=0)
        env.step({"operator": np.zeros(4)})
    env.reset(seed=0)
    with pytest.raises(HierallocError, match="fraction of edge 2 is nan"):
        env.step({"operator": np.array([0, 0, np.nan] + [0] * 9)})


def test_flow_mode_passes_api_tests_and_invariants() -> None:
    rows = check_env("mobility", num_cycles=10, synthetic_regions=5, episode_length=6, action_mode="flow")
    assert not [r for r in rows if not r[1]], rows
    rows = check_env("mobility", num_cycles=10, synthetic_regions=5, episode_length=6, action_mode="flow",
                     rebalance_edges="graph")
    assert not [r for r in rows if not r[1]], rows


def test_flow_actions_execute_the_controller_flows_exactly() -> None:
    cfg = MobilityConfig(synthetic_regions=8, episode_length=10)
    goal_env, flow_env = MobilityEnv(cfg), MobilityEnv(cfg.replace(action_mode="flow"))
    for name in ("prop", "disp"):
        steps = _episode(goal_env, _policy(name, goal_env), seed=5)
        flow_env.reset(seed=5)
        for s in steps:
            a = FORM.flow_action(s["aux"][None], s["flows"][None])[0]
            assert ((a >= 0) & (a <= 1 + 1e-12)).all()
            _, rew, _, _, infos = flow_env.step({"operator": a.astype(np.float32)})  # float32 like a policy's
            assert np.array_equal(FORM.low_level(flow_env, infos["operator"]), s["flows"])
            assert infos["operator"]["violation"] < 1e-6 and rew["operator"] == s["reward"]


# ---------------------------------------------------------------------------------------------
# formulation


def test_formulation_layout_and_state() -> None:
    assert FORMULATIONS["mobility"] is FORM
    env = MobilityEnv(MobilityConfig(synthetic_regions=6))
    lay = FORM.layout(env)
    g = env.graph_obs()
    assert lay.n_nodes == 6 and np.array_equal(lay.edge_index, g["edge_index"]) and lay.producers.shape == (0,)
    ref = RebalancingModel(6, env.core.reb_cost_matrix[0]).edges
    assert np.array_equal(lay.flow_edges, ref.T) and FORM.flow_dim(lay) == 30 and FORM.goal_dim(lay) == 6
    variants: list[dict[str, Any]] = [{}, {"action_mode": "flow"}, {"matching": "greedy"}]
    same = [FORM.layout(MobilityEnv(MobilityConfig(synthetic_regions=6, **kw))).fingerprint for kw in variants]
    assert same == [lay.fingerprint] * 3  # goal- and flow-mode envs share data sets
    others: list[dict[str, Any]] = [{"data_seed": 1}, {"beta": 0.4}, {"rebalance_edges": "graph"},
                                    {"demand_ratio": 2.0}]
    for kw in others:
        assert FORM.layout(MobilityEnv(MobilityConfig(synthetic_regions=6, **kw))).fingerprint != lay.fingerprint
    env.reset(seed=0)
    st = FORM.observe(env)
    assert np.array_equal(st.x, env.graph_obs()["x"]) and st.edge_attr.shape == (lay.n_edges, 5)
    assert st.aux.dtype == np.float64 and np.array_equal(st.aux, env.idle_vehicles())
    road = MobilityEnv(MobilityConfig(synthetic_regions=6, rebalance_edges="graph"))
    road.reset(seed=0)
    lay_r, aux = FORM.layout(road), FORM.observe(road).aux
    F = lay_r.n_flow_edges
    assert aux.shape == (6 + F,) and np.array_equal(aux[6:], lay_r.flow_edges[0] * 6 + lay_r.flow_edges[1])
    with pytest.raises(DataError, match="must pair up"):
        FORM.invert(np.ones((2, 6)), np.zeros((3, 30)))
    with pytest.raises(DataError, match="one data set"):
        FORM.invert(np.ones((1, 3)), np.zeros((1, 30)))
    assert FORM.invert(np.zeros((1, 6)), np.zeros((1, 30)))[0].tolist() == pytest.approx([1 / 6] * 6)
    while env.agents:  # the state after the last step (a data set's next state) is observable too
        env.step({"operator": None})
    assert FORM.observe(env).x.shape == st.x.shape and FORM.observe(env).aux.sum() == env.idle_vehicles().sum()


@pytest.mark.parametrize("scenario", ["mobility-synthetic", "mobility-nyc-brooklyn"])
def test_inverse_reproduces_the_controller_flows_exactly(scenario: str, data_root: Path) -> None:
    """Every transition of every behaviour: the inverted goal, executed from the same state (the episode
    replayed with inverted goals instead of actions), gives bit-identical flows, hence identical states."""
    spec = get_env(scenario)
    env, replay = spec.make(spec.default_config()), spec.make(spec.default_config())
    n = 0
    for k, name in enumerate(BEHAVIOURS if scenario == "mobility-synthetic" else ("disp", "inf", "dtv")):
        for ep in range(2 if scenario == "mobility-synthetic" else 1):
            seed = episode_seed(3, 10 * k + ep)
            steps = _episode(env, _policy(name, env), seed)
            aux = np.stack([s["aux"] for s in steps])
            flows = np.stack([s["flows"] for s in steps])
            goals = FORM.invert(aux, flows)  # batched
            assert np.allclose(goals.sum(axis=1), 1.0)
            targets = desired_targets(goals, aux.astype(np.int64))
            assert np.array_equal(targets, np.stack([s["info"]["targets"] for s in steps]))
            replay.reset(seed=seed)
            for s, g in zip(steps, goals, strict=True):
                _, rew, _, _, infos = replay.step({"operator": g})
                assert np.array_equal(FORM.low_level(replay, infos["operator"]), s["flows"])
                assert rew["operator"] == s["reward"]
                n += 1
    assert n >= 60


@pytest.mark.parametrize("overrides", [{"target_rounding": "floor"}, {"rebalance_edges": "graph"}])
def test_inverse_with_unreached_targets_gives_same_distribution_and_cost(overrides: dict[str, Any]) -> None:
    """Targets not reached exactly (floor rounding; road-graph edges with slack): the inverted goal is the
    reached distribution, for which the observed flows are optimal: a fresh LP reaches the same distribution
    at the same cost (the flows may be another optimal set)."""
    cfg = MobilityConfig(synthetic_regions=8, **overrides)
    env = MobilityEnv(cfg)
    core = env.core
    edges = None if cfg.rebalance_edges == "complete" else core.graph_edges
    inv = RebalancingInverse(8, core.reb_cost_matrix[0], edges=edges)
    unreached = 0
    for seed in (0, 1):
        for s in _episode(env, _policy("disp", env), seed):
            q = s["aux"][:8]
            R = s["info"]["reb_flow"]
            reached = q + R.sum(axis=0) - R.sum(axis=1)
            unreached += not np.array_equal(reached, s["info"]["targets"])
            g = FORM.invert(s["aux"][None], s["flows"][None])
            tg = desired_targets(g, q[None].astype(np.int64), cfg.target_rounding)[0]
            assert np.array_equal(tg, reached)
            res = RebalancingModel(8, core.reb_cost_matrix[s["t"]], edges=edges).solve(q, tg)
            assert np.array_equal(res.next_idle, reached)
            assert res.cost == pytest.approx(float((R * core.reb_cost_matrix[s["t"]]).sum()))
            dual = inv.solve(q, s["flows"])  # the duality inverse agrees and certifies optimality
            assert np.allclose(dual.target, reached) and dual.gap == pytest.approx(0.0, abs=1e-6)
    assert unreached > 0  # the case is exercised


# ---------------------------------------------------------------------------------------------
# behaviour policies and the oracle


def test_behaviour_policies_registered_and_deterministic() -> None:
    env = MobilityEnv(MobilityConfig(synthetic_regions=6, episode_length=8))
    for name in ("inf", "dtv", "disp", "mpc-oracle"):
        algo = get_algo(name)
        assert algo.caps.families == ("mobility",) and not algo.caps.learns and algo.caps.continuous
        assert algo.caps.full_information == (name == "mpc-oracle")
        a = evaluate(_policy(name, env), env, episodes=2, seed=4)
        b = evaluate(_policy(name, env), env, episodes=2, seed=4)
        assert [e["return"] for e in a] == [e["return"] for e in b] and a[0]["length"] == 8
        _episode(env, _policy(name, env), episode_seed(4, 1))  # an episode depends on its seed only
        assert env.episode_metrics()["return"] == a[1]["return"]
        assert all(e["violation"] == 0 for e in a)
    disp = _policy("disp", env)
    env.reset(seed=1)
    disp.reset(env, 1)
    w1 = disp.act({"operator": None})["operator"]
    disp.reset(env, 2)
    w2 = disp.act({"operator": None})["operator"]
    disp.reset(env, 1)
    assert np.array_equal(disp.act({"operator": None})["operator"], w1) and not np.allclose(w1, w2)
    assert w1.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("scenario", ["mobility-synthetic", "mobility-nyc-brooklyn"])
def test_oracle_beats_the_heuristics_and_respects_its_bound(scenario: str, data_root: Path) -> None:
    spec = get_env(scenario)
    env = spec.make(spec.default_config())
    eps = 3 if scenario == "mobility-synthetic" else 2
    oracle = evaluate(MpcOraclePolicy(), env, episodes=eps, seed=0)
    for e in oracle:
        assert e["return"] <= e["policy/bound"] + 1e-6 and e["policy/solves"] == env.core.T
    ref = mean_metrics(oracle)["return"]
    for name in ("prop", "no-rebalancing", "dtv", "inf"):
        m = mean_metrics(evaluate(_policy(name, env), env, episodes=eps, seed=0))
        assert m["return"] < ref, (name, m["return"], ref)
        for e in evaluate(_policy(name, env), env, episodes=1, seed=0):
            assert e["return"] <= oracle[0]["policy/bound"] + 1e-6  # the bound holds for every policy


def test_inf_matches_a_per_vehicle_milp_and_dtv_the_transportation_lp() -> None:
    """INF's aggregated counts and DTV's assignment are optimal for OHIO Eq. (27) / (28) written per vehicle."""
    env = MobilityEnv(MobilityConfig(synthetic_regions=5, episode_length=6))
    rng = np.random.default_rng(0)
    for trial in range(4):
        env.reset(seed=trial, options={"idle": rng.integers(0, 4, 5)})
        core = env.core
        tau = core.reb_steps[0].astype(float)
        np.fill_diagonal(tau, 0.0)
        q = env.idle_vehicles()
        inf = InfPolicy(InfConfig(horizon=3, rho=0.5))
        inf.reset(env, 0)
        y = inf.assignment()
        H = 3.0
        lam = env.forecast_demand(3).sum(axis=2).mean(axis=0)
        w = lam[None, :] * np.maximum(H - tau, 0.0)
        assert (y.sum(axis=1) <= q).all() and (y[tau > H] == 0).all()                     # (27b), (27c)
        assert ((np.maximum(H - tau, 0) * y).sum(axis=0) <= lam * H * H * 0.5 + 1e-9).all()  # (27d)
        veh = np.repeat(np.arange(5), q)  # per-vehicle binaries y_vj
        V = veh.size
        if V:
            c = w[veh].ravel()
            k = np.arange(V * 5)
            A1 = np.zeros((V, V * 5))
            A1[k // 5, k] = 1.0
            A2 = np.zeros((5, V * 5))
            A2[k % 5, k] = np.maximum(H - tau[veh], 0).ravel()
            ub = (tau[veh] <= H).astype(float).ravel()
            ref = solve_milp(c, A_ub=np.vstack([A1, A2]), b_ub=np.concatenate([np.ones(V), lam * H * H * 0.5]),
                             ub=ub, integrality=np.ones(V * 5), sense="max")
            assert float((w * y).sum()) == pytest.approx(ref.objective, abs=1e-6)
        dtv = DtvPolicy()
        dtv.reset(env, 0)
        Y, r = dtv.assignment(), dtv.requests()
        want = min(int(q.sum()), int(r.sum()))
        assert Y.sum() == want and (Y.sum(axis=1) <= q).all() and (Y.sum(axis=0) <= r).all()  # (28b)
        k = np.arange(25)
        A = np.zeros((10, 25))
        A[k // 5, k] = 1.0
        A[5 + k % 5, k] = 1.0
        lp = solve_milp(tau.ravel(), A_ub=A, b_ub=np.concatenate([q, r]), A_eq=np.ones((1, 25)), b_eq=[want])
        assert float((tau * Y).sum()) == pytest.approx(lp.objective, abs=1e-9)                 # (28a) optimal


def test_inf_parameters_and_grid_search(data_root: Path) -> None:
    nyc = get_env("mobility-nyc-brooklyn")
    env = nyc.make(nyc.default_config())
    assert inf_parameters(env, InfConfig()) == INF_TUNED["nyc_brooklyn"]
    assert inf_parameters(env, InfConfig(horizon=2, rho=5.0)) == (2, 5.0)
    assert inf_parameters(MobilityEnv(MobilityConfig(synthetic_regions=5)), InfConfig()) == INF_DEFAULT
    res = grid_search("mobility-synthetic", horizons=(2, 4), rhos=(1.0, 3.0), episodes=1,
                      overrides={"synthetic_regions": 5, "episode_length": 6})
    assert len(res["cells"]) == 4 and res["oracle_return"] > 0
    assert res["best"]["return"] == max(c["return"] for c in res["cells"])
    assert all(c["score"] == pytest.approx(100 * c["return"] / res["oracle_return"]) for c in res["cells"])
    committed = json.loads((ROOT / "benchmarks" / "results" / "inf_grid.json").read_text())
    for r in committed["results"]:  # the tuned values are the committed grid search's choices
        assert INF_TUNED[r["city"]] == (r["best"]["H"], r["best"]["rho"])


def test_inverse_benchmark_script_quick(tmp_path: Path) -> None:
    out = tmp_path / "ohio_inverse.json"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ohio_inverse.py"), "--quick", "--scenario",
                        "mobility-synthetic", "--out", str(out)], capture_output=True, text=True, timeout=300,
                       check=False)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["quick"] and set(report["scenarios"]) == {"mobility-synthetic"}
    exact = {k: v for k, v in report["targets"].items() if "transitions/s" not in k}
    assert len(exact) == 4 and all(v["passed"] for v in exact.values()), exact
    assert out.with_suffix(".md").read_text().startswith("# OHIO inverse benchmark")
