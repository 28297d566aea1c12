"""Metric formulas against hand-computed tiny cases (5 x 5 grid, 2 agents)."""

from __future__ import annotations

import numpy as np
import pytest

from hieralloc.envs.coverage import CoverageConfig, CoverageEnv, relative_score, score
from hieralloc.envs.coverage.core import coverable_demand


def tiny(**kw: object) -> CoverageEnv:
    F = np.zeros((3, 5, 5))
    F[1, 1, 1], F[1, 2, 2], F[1, 4, 4], F[1, 0, 4] = 0.5, 2.0, 0.3, 1.0
    F[2, 2, 2], F[2, 0, 0] = 3.0, 1.0
    cfg = CoverageConfig(height=5, width=5, n_agents=2, window=3, capacity=1.0, episode_length=2,
                         delta=0.2, split="all", **kw)  # type: ignore[arg-type]
    return CoverageEnv(cfg, demand=F)


def play(env: CoverageEnv) -> list[tuple]:
    env.reset(seed=0, options={"offset": 0, "positions": [[1, 1], [3, 3]]})
    out = [env.step({"agent_0": 4, "agent_1": 4})]          # both stay
    out.append(env.step({"agent_0": 8, "agent_1": 1}))      # (+1, +1) and (-1, 0)
    return out


def test_hand_computed_episode() -> None:
    env = tiny()
    (o1, r1, _, _, i1), (o2, r2, _, tr, i2) = play(env)
    # step 1: windows rows/cols 0-2 and 2-4 overlap on (2, 2): min(2.0, 2 U) = 2; plus 0.5 and 0.3
    assert i1["agent_0"]["served"] == pytest.approx(2.8)
    assert i1["agent_0"]["demand"] == pytest.approx(3.8)
    assert i1["agent_0"]["window_demand"] == pytest.approx(2.5 + 2.3)  # Eq. (26) literal numerator
    assert i1["agent_0"]["capacity"] == pytest.approx(18.0)
    assert i1["agent_0"]["served_agent"] == pytest.approx(0.5 + 1.0)
    assert i1["agent_1"]["served_agent"] == pytest.approx(1.0 + 0.3)
    assert r1 == {"agent_0": pytest.approx(2.8), "agent_1": pytest.approx(2.8)}  # team reward
    # step 2: agents at (2, 2) and (2, 3); (2, 2) demand 3 covered twice -> 2; (0, 0) uncovered
    assert env.positions.tolist() == [[2, 2], [2, 3]]
    assert i2["agent_0"]["served"] == pytest.approx(2.0)
    assert i2["agent_0"]["manhattan"] == 2 and i2["agent_1"]["manhattan"] == 1
    assert r2["agent_0"] == pytest.approx(2.0 - 0.2 * 3)
    assert all(tr.values()) and env.agents == []
    # coverable: top 18 cells of min(F, U N) = 2 + 1 + 0.5 + 0.3 = 3.8 (step 1), 2 + 1 (step 2)
    assert i1["agent_0"]["coverable"] == pytest.approx(3.8)
    assert i2["agent_0"]["coverable"] == pytest.approx(3.0)
    m = env.episode_metrics()
    ac_ratio = (2.8 / 3.8 + 2.0 / 4.0) / 2
    ac_norm = (2.8 / 3.8 + 2.0 / 3.0) / 2
    atd = 3 / (2 * 2)
    assert m["AC"] == pytest.approx(2.4)
    assert m["AC_ratio"] == pytest.approx(ac_ratio)
    assert m["AC_norm"] == pytest.approx(ac_norm)
    assert m["ATD"] == pytest.approx(0.75)
    assert m["Score_d1"] == pytest.approx(0.5 * ac_norm - 0.5 * 0.2 * atd / 2)
    assert m["Score_d2"] == pytest.approx(0.5 * ac_norm - 0.5 * 0.75 * atd / 2)
    assert m["served"] == pytest.approx(4.8) and m["demand"] == pytest.approx(7.8)
    assert m["team_return"] == pytest.approx(4.2) and m["distance"] == 3 and m["steps"] == 2


def test_gain_individual_and_euclidean_rewards() -> None:
    (_, r1, *_), (_, r2, *_) = play(tiny(reward_mode="gain"))
    assert r1["agent_0"] == pytest.approx(2.8)          # C_1 - C_0, C_0 = 0 (frame 0 is empty)
    assert r2["agent_0"] == pytest.approx(2.0 - 2.8 - 0.6)
    (_, r1, *_), (_, r2, *_) = play(tiny(reward_split="individual"))
    assert (r1["agent_0"], r1["agent_1"]) == (pytest.approx(1.5), pytest.approx(1.3))
    assert (r2["agent_0"], r2["agent_1"]) == (pytest.approx(1.0 - 0.4), pytest.approx(1.0 - 0.2))
    env = tiny(distance="euclidean")
    (_, _, _, _, i1), (_, r2, _, _, i2) = play(env)
    assert i2["agent_0"]["distance"] == pytest.approx(np.sqrt(2))
    assert r2["agent_0"] == pytest.approx(2.0 - 0.2 * (np.sqrt(2) + 1))
    assert env.episode_metrics()["ATD"] == pytest.approx(0.75)  # ATD stays Manhattan (Eq. (27))


def test_stacking_is_not_rewarded_beyond_demand() -> None:
    F = np.zeros((2, 5, 5))
    F[1, 2, 2] = 0.4
    cfg = CoverageConfig(height=5, width=5, n_agents=2, capacity=1.0, episode_length=1, split="all")
    env = CoverageEnv(cfg, demand=F)
    env.reset(options={"offset": 0, "positions": [[2, 2], [2, 2]]})
    _, _, _, _, info = env.step({"agent_0": 4, "agent_1": 4})
    assert info["agent_0"]["served"] == pytest.approx(0.4)              # not 0.8 (Eq. (1) literal)
    assert info["agent_0"]["window_demand"] == pytest.approx(0.8)


def test_corner_capacity_and_clipping() -> None:
    F = np.ones((2, 5, 5))
    cfg = CoverageConfig(height=5, width=5, n_agents=1, capacity=0.5, episode_length=1, split="all")
    env = CoverageEnv(cfg, demand=F)
    _, infos = env.reset(options={"offset": 0, "positions": [[0, 0]]})
    assert infos["agent_0"]["action_mask"].tolist() == [0, 0, 0, 0, 1, 1, 0, 1, 1]
    _, _, _, _, info = env.step({"agent_0": 0})  # (-1, -1): clipped, stays in the corner
    assert env.positions.tolist() == [[0, 0]]
    assert info["agent_0"]["manhattan"] == 0
    assert info["agent_0"]["capacity"] == pytest.approx(0.5 * 4)
    assert info["agent_0"]["served"] == pytest.approx(0.5 * 4)  # min(1, U) on 4 cells


def test_score_and_relative_score() -> None:
    assert score(1.0, 0.0, 3, 0.2) == pytest.approx(0.5)
    assert score(0.0, 2.0, 3, 0.75) == pytest.approx(-0.375)
    assert score(0.5, 1.0, 1, 0.75) == pytest.approx(0.25)  # w = 1: no move possible
    # HGRL Table 1 (Toy): AC and ATD of EADS, HGRL, MAPPO, HMF, QMIX, QPLEX, GridNet, HMF-IPC, MDPO
    ac = [5.025, 6.601, 1.19, 4.22, 4.1582, 3.52, 4.262, 4.34, 5.82]
    atd = [2.38, 3.81, 6.05, 14.27, 4.68, 6.44, 11.31, 13.38, 13.81]
    published = [0.354, 0.440, -0.154, -0.220, 0.178, 0.045, -0.092, -0.171, -0.053]
    assert relative_score(ac, atd) == pytest.approx(published, abs=1.5e-3)


def test_coverable_demand() -> None:
    F = np.arange(25, dtype=float).reshape(1, 5, 5)
    assert coverable_demand(F, 1, 3, 100.0)[0] == pytest.approx(sum(range(16, 25)))
    assert coverable_demand(F, 1, 3, 2.0)[0] == pytest.approx(2.0 * 9)
    assert coverable_demand(F, 4, 3, 100.0)[0] == pytest.approx(F.sum())
