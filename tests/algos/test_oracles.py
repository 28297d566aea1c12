"""Full-information oracle: optimal vs brute force, >= heuristics, bound exposure."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hieralloc.algos.oracles import OracleConfig, OraclePolicy, plan_episode
from hieralloc.envs.coverage import CoverageConfig, CoverageEnv
from hieralloc.registry import get_algo, get_env


def brute_force(frames: np.ndarray, start: np.ndarray, cfg: CoverageConfig, delta: float) -> float:
    """max over all joint routes of served - delta * Manhattan distance (2 agents)."""
    T, H, W = frames.shape[0] - 1, cfg.height, cfg.width
    moves = [(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]
    routes = []
    for i in range(len(start)):
        rs = []
        for seq in itertools.product(moves, repeat=T):
            p, path = start[i].copy(), []
            for dx, dy in seq:
                q = p + (dx, dy)
                if not (0 <= q[0] < H and 0 <= q[1] < W):
                    break
                path.append(q)
                p = q
            else:
                cov = np.zeros((T, H, W))
                for t, (x, y) in enumerate(path):
                    cov[t, max(x - 1, 0):x + 2, max(y - 1, 0):y + 2] = 1
                dist = sum(abs(a - b).sum() for a, b in zip([start[i], *path[:-1]], path, strict=True))
                rs.append((cov, dist))
        routes.append(rs)
    covs = [np.stack([c for c, _ in rs]) for rs in routes]
    dists = [np.array([d for _, d in rs], dtype=float) for rs in routes]
    D = frames[1:]
    best = -np.inf
    for j in range(0, len(covs[0]), 64):  # vectorised over blocks of agent 0's routes
        k = covs[0][j:j + 64, None] + covs[1][None]
        val = np.minimum(D, cfg.capacity * k).sum((2, 3, 4)) - delta * (dists[0][j:j + 64, None] + dists[1][None])
        best = max(best, float(val.max()))
    return best


@pytest.mark.parametrize("capacity, seed", [(0.6, 0), (1.0, 1), (0.35, 2)])
def test_optimal_vs_brute_force(capacity: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    frames = rng.gamma(0.6, 0.5, size=(4, 4, 4))
    frames[:, rng.integers(4), rng.integers(4)] += 1.2  # a peak worth stacking on when U is small
    cfg = CoverageConfig(height=4, width=4, n_agents=2, window=3, capacity=capacity, episode_length=3,
                         delta=0.05, split="all")
    start = rng.integers(0, 4, size=(2, 2))
    for objective, delta in (("served", 0.0), ("reward", cfg.delta)):
        plan = plan_episode(frames, start, cfg, OracleConfig(objective=objective, mip_rel_gap=0.0))
        want = brute_force(frames, start, cfg, delta)
        assert plan.method == "full" and plan.exact and plan.status == "optimal"
        if objective == "served":
            assert plan.served == pytest.approx(want, rel=1e-6, abs=1e-6)
            assert plan.served_bound == pytest.approx(want, rel=1e-5, abs=1e-5)
            assert plan.gap == pytest.approx(0.0, abs=1e-5)
        else:
            assert plan.objective == pytest.approx(want, rel=1e-7, abs=1e-7)
            assert plan.bound >= want - 1e-7
            assert plan.served_bound >= plan.served - 1e-9


def run_policy(algo: str, env: CoverageEnv, seed: int) -> tuple[dict[str, float], object]:
    spec = get_algo(algo)
    pol = spec.build(env, spec.config_cls(), seed)
    obs, _ = env.reset(seed=seed)
    pol.reset(env, seed)
    while env.agents:
        obs, *_ = env.step(pol.act(obs, state=env.state()))
    return env.episode_metrics(), pol


def test_oracle_beats_every_heuristic_and_plays_its_plan() -> None:
    spec = get_env("coverage-small")
    env = spec.make(spec.default_config())
    for seed in (0, 1):
        om, pol = run_policy("oracle", env, seed)
        plan = pol.last_plan  # type: ignore[attr-defined]
        assert om["served"] == pytest.approx(plan.served, rel=1e-9)
        assert om["oracle_served_bound"] == pytest.approx(plan.served_bound)
        assert om["oracle_exact"] == 1.0 and om["oracle_gap"] < 1e-3
        for algo in ("random", "stay", "greedy-local", "eads"):
            hm, _ = run_policy(algo, env, seed)
            assert om["served"] >= hm["served"] - 1e-9, algo
            assert hm["served"] / om["oracle_served_bound"] <= 1.0 + 1e-9
            assert "oracle_served_bound" not in hm  # cleared by reset


def test_large_instance_reports_bound_and_gap() -> None:
    spec = get_env("coverage-city")
    env = spec.make(spec.default_config(n_agents=6, episode_length=12))
    env.reset(seed=3)
    pol = OraclePolicy(OracleConfig(time_limit=3.0, max_full_arcs=0, lagrange_iters=80))
    pol.reset(env, 3)
    plan = pol.last_plan
    assert plan is not None and plan.method == "restricted" and not plan.exact
    assert plan.served <= plan.served_bound
    assert 0.0 <= plan.gap < 0.05
    assert plan.positions.shape == (13, 6, 2) and plan.actions.shape == (12, 6)
    hm, _ = run_policy("eads", env, 3)
    assert hm["served"] <= plan.served_bound


def test_oracle_capabilities() -> None:
    caps = get_algo("oracle").caps
    assert caps.full_information and not caps.learns and caps.families == ("coverage",)


def test_evaluate_reports_fraction_of_bound() -> None:
    from hieralloc.eval import evaluate

    spec = get_env("coverage-small")
    env = spec.make(spec.default_config())
    oracle = get_algo("oracle")
    rows = evaluate(oracle.build(env, oracle.config_cls(), 0), env, episodes=2, seed=5)
    eads = get_algo("eads")
    base = evaluate(eads.build(env, eads.config_cls(), 0), env, episodes=2, seed=5)
    for o, b in zip(rows, base, strict=True):
        assert o["oracle_served_bound"] == pytest.approx(o["policy/served_bound"])
        assert o["served"] <= o["oracle_served_bound"] + 1e-9
        assert 0.0 < b["served"] / o["oracle_served_bound"] <= 1.0 + 1e-9  # same episode (paired seeds)
