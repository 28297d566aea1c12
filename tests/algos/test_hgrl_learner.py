"""HGRL's hierarchy (HGRL Sec. 4.1, 4.3, 4.4) through the library's one hierarchical composition."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from hieralloc import registry
from hieralloc.algos.hgrl.features import DemandFeatures, FeatureConfig
from hieralloc.algos.hgrl.learner import MIXERS, HGRLLearner
from hieralloc.algos.hierarchy import HierarchicalController, aggregate_rewards
from hieralloc.config import from_dict
from hieralloc.errors import ConfigError, IncompatibleError
from hieralloc.eval import evaluate, mean_metrics

torch.set_num_threads(1)
registry.load_builtins()
SMALL = registry.get_env("coverage-small")
FAST_FEATURES = {"explore_episodes": 2, "initial_steps": 10, "refit_every": 2, "refit_steps": 3,
                 "gdinet": {"d": 8, "hidden": 8, "batch_size": 128}}


def _learner(env: Any = None, seed: int = 0, **over: Any) -> HGRLLearner:
    spec = registry.get_algo("hgrl")
    values = {"hidden": 16, "batch_size": 2, "mixing_embed_dim": 8, "hypernet_embed": 16,
              "adv_hypernet_embed": 16, "num_kernel": 2, "features": FAST_FEATURES, **over}
    cfg = from_dict(spec.config_cls, values)
    learner = spec.build(env if env is not None else SMALL.make(SMALL.default_config()), cfg, seed)
    assert isinstance(learner, HGRLLearner)
    return learner


def test_aggregate_rewards_is_eq3_by_hand() -> None:
    r = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    out = aggregate_rewards(r, [0, 3, 6], 0.5)
    assert out.tolist() == [1 + 0.5 * 2 + 0.25 * 3, 4 + 0.5 * 5 + 0.25 * 6, 7.0]
    per_agent = aggregate_rewards(np.stack([r, 2 * r], 1), [0, 3, 6], 1.0)
    assert per_agent[:, 1].tolist() == [12.0, 30.0, 14.0]


def test_gain_rewards_telescope_across_levels_eq5_to_7() -> None:
    """With the literal Eq. (4) gain reward and delta = 0 the level-2 reward of an interval (gamma = 1)
    is C(end) - C(start): Eq. (7)."""
    cfg = dataclasses.replace(SMALL.default_config(), reward_mode="gain", delta=0.0)
    env = SMALL.make(cfg)
    env.reset(seed=4)
    coverage = [float(env.core._share.sum())]  # C_0: the team's coverage at reset
    rewards = []
    rng = np.random.default_rng(0)
    while env.agents:
        _, rew, *_ = env.step({a: int(rng.integers(9)) for a in env.agents})
        rewards.append(rew["agent_0"])
        coverage.append(float(env.core._share.sum()))  # C_t
    steps = [0, 3, 6]
    agg = aggregate_rewards(np.array(rewards), steps, 1.0)
    for k, s in enumerate(steps):
        e = steps[k + 1] if k + 1 < len(steps) else len(rewards)
        assert agg[k] == pytest.approx(coverage[e] - coverage[s])


def test_controller_periods_and_goals_flow_down() -> None:
    learner = _learner(levels=2, tau=3)
    assert [lv.period for lv in learner.levels] == [1, 3]
    episodes, info = learner.collect_episode()
    T = SMALL.default_config().episode_length
    low, high = episodes
    assert low["length"] == T and high["length"] == len(range(0, T, 3))
    assert low["obs"].shape[0] == T + 1 and high["obs"].shape[0] == high["length"] + 1
    assert high["reward"].shape == (high["length"], 3) and np.isfinite(low["reward"]).all()
    # every stored choice was valid at its level
    for ep in episodes:
        taken = np.take_along_axis(ep["avail"][:-1], ep["actions"][..., None], -1)
        assert taken.all()
    assert info["episode_length"] == T


def test_level2_reward_without_shaping_equals_aggregated_env_reward() -> None:
    learner = _learner(levels=2, tau=3, goal_shaping=0.0)
    episodes, info = learner.collect_episode()
    low, high = episodes
    agg = aggregate_rewards(low["reward"], [0, 3, 6], learner.cfg.gamma)
    np.testing.assert_allclose(high["reward"], agg, rtol=1e-5)
    assert float(low["reward"][:, 0].sum()) == pytest.approx(info["episode_return"] / 3, rel=1e-5)


def test_goal_regions_masks_and_potential() -> None:
    learner = _learner(levels=2, goal_window=3)
    f = learner.levels[1].goal_factor
    assert f == 4 and learner.region_grid(f) == (3, 3)
    pos = np.array([[0, 0], [11, 11], [5, 6]])
    m = learner.region_masks(pos, f)
    assert m.shape == (3, 9)
    assert m[0].tolist() == [False, False, False, False, True, True, False, True, True]
    assert m[2].all()
    goal = (np.array([[0, 0], [0, 0], [1, 1]]), f)
    phi = learner.goal_potential(pos, goal)
    assert phi.tolist() == [0.0, -8 / 4, 0.0]  # (11, 11) is 8 cells from the region [0, 3]^2
    feats = learner.goal_features(pos, goal)
    assert feats[:, 4].tolist() == [1.0, 0.0, 1.0]


@pytest.mark.parametrize("mixer", sorted(MIXERS))
@pytest.mark.parametrize("levels", [1, 2])
def test_every_mixer_and_depth_trains_and_resumes_exactly(mixer: str, levels: int, tmp_path: Path) -> None:
    a = _learner(mixer=mixer, levels=levels)
    for _ in range(3):
        m = a.train_iteration()
        assert all(np.isfinite(v) for v in m.values()), m
    assert m["updates"] > 0 and ("gdi_loss" in m or a.episodes % 2 == 1)
    torch.save(a.state_dict(), tmp_path / "s.pt")
    b = _learner(mixer=mixer, levels=levels)
    b.load_state_dict(torch.load(tmp_path / "s.pt", weights_only=True))
    for _ in range(2):
        assert a.train_iteration() == b.train_iteration()
    ep = evaluate(b.policy, SMALL.make(SMALL.default_config()), 1, 0)[0]
    assert ep["length"] == 8


def test_three_levels_with_four_resolutions() -> None:
    a = _learner(levels=3, tau=2, features={**FAST_FEATURES, "pool_factors": [1, 2, 3, 6]})
    assert [lv.period for lv in a.levels] == [1, 2, 4]
    episodes, _ = a.collect_episode()
    assert [e["length"] for e in episodes] == [8, 4, 2]
    a.train_iteration()


@pytest.mark.parametrize(("over", "needle"), [
    ({"levels": 3}, "features.pool_factors"),
    ({"goal_window": 4}, "goal_window"),
    ({"mixer": "qtran"}, "mixer"),
    ({"features": {"source": "oracle"}}, "source"),
])
def test_bad_config_names_the_field(over: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        _learner(**over)


def test_refuses_non_coverage_envs() -> None:
    spec = registry.get_algo("hgrl")
    with pytest.raises(IncompatibleError):
        registry.check_compatible(registry.get_env("mobility"), spec)


def test_features_sources_and_lookup() -> None:
    env = SMALL.make(SMALL.default_config())
    env.reset(seed=0)
    truth = DemandFeatures.for_env(env, FeatureConfig(source="truth"), 0)
    frame = int(env.core.frame_index(0)[0])
    f0 = truth.lookup(0, frame, env.positions)
    x, y = env.positions[0]
    assert f0[0, 0] == pytest.approx(env.core.frames[frame, x, y] / env.core.obs_div)
    assert truth.lookup(0, frame, env.positions, gradients=False).shape == (3, 1)
    gdi = DemandFeatures.for_env(env, from_dict(FeatureConfig, FAST_FEATURES), 0)
    assert not gdi.lookup(1, frame, env.positions).any()  # nothing observed yet: zero maps
    steps = gdi.explore(env, FeatureConfig(explore_episodes=2, initial_steps=20), 0)
    assert steps == 16 and len(gdi.observations) > 0 and gdi.fits == 1
    assert np.abs(gdi.lookup(0, frame, env.positions)).sum() > 0
    none = DemandFeatures.for_env(env, FeatureConfig(source="none"), 0)
    assert not none.enabled and none.explore(env, FeatureConfig(), 0) == 0


def test_hgrl_learns_on_coverage_small() -> None:
    """A short run on the 12 x 12 Toy: the learned hierarchy serves more than a random policy."""
    env = SMALL.make(SMALL.default_config())
    learner = _learner(env, seed=1, hidden=32, batch_size=16, lr=1e-3, eps_anneal_steps=1500,
                       features={**FAST_FEATURES, "source": "truth"})
    for _ in range(300):
        learner.train_iteration()
    eval_env = SMALL.make(dataclasses.replace(SMALL.default_config(), split="eval"))
    learned = mean_metrics(evaluate(learner.policy, eval_env, 10, 5))
    rand = registry.get_algo("random")
    policy = rand.build(eval_env, rand.config_cls(), 0)
    base = mean_metrics(evaluate(policy, eval_env, 10, 5))
    assert learned["served"] > 1.2 * base["served"], (learned["served"], base["served"])


def test_controller_checks_periods() -> None:
    a, b = _learner(levels=2, tau=2), _learner(levels=2, tau=3)
    with pytest.raises(ValueError, match="executor"):
        HierarchicalController([a.levels[1], a.levels[0]])
    with pytest.raises(ValueError, match="divide"):
        HierarchicalController([a.levels[0], a.levels[1], b.levels[1]])  # periods 1, 2, 3
