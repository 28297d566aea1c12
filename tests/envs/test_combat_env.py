"""Registry-parametrised tests of every combat environment and scenario: PettingZoo API checks and
invariants, spaces, seeding, evaluation, the CLI's bad-input line, and a QMIX / MAPPO smoke run
through the real training entry point."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hieralloc.envs.checks import check_env, rollout
from hieralloc.envs.combat import SCENARIO_VALUES, CombatConfig, CombatEnv
from hieralloc.eval import evaluate
from hieralloc.registry import ENVS, SCENARIOS, get_env, load_builtins
from hieralloc.train import run_training

torch.set_num_threads(1)
load_builtins()
COMBAT_NAMES = sorted(
    [n for n, s in ENVS.items() if s.family == "combat"]
    + [n for n, s in SCENARIOS.items() if ENVS[s.env].family == "combat"]
)


def test_names_are_registered() -> None:
    assert {"combat", "combat-3v3", "combat-2v1", "combat-3v5", "combat-8v8", "combat-8v8-mixed"} <= set(COMBAT_NAMES)
    assert set(SCENARIO_VALUES) <= set(SCENARIOS)
    spec = get_env("combat")
    assert spec.discrete and spec.has_masks and spec.has_global_state and not spec.continuous


@pytest.mark.parametrize("name", COMBAT_NAMES)
def test_check_env_passes(name: str) -> None:
    rows = check_env(name, num_cycles=40)
    names = [r[0] for r in rows]
    for required in ("pettingzoo.parallel_api_test", "pettingzoo.parallel_seed_test",
                     "pettingzoo.api_test(parallel_to_aec)", "determinism under seed",
                     "combat: health, death and arena", "combat: action masks follow the rules",
                     "combat: outcome and metrics consistent"):
        assert required in names
    failed = [r for r in rows if not r[1]]
    assert not failed, failed
    # the only PettingZoo remark allowed: a dead agent observes zeros (as in SMAC)
    for r in rows:
        if "warnings" in r[2]:
            assert r[2].split("warnings: ")[1] == "Observation numpy array is all zeros.", r


@pytest.mark.parametrize("name", COMBAT_NAMES)
def test_spaces_seeds_and_metrics(name: str) -> None:
    spec = get_env(name)
    cfg = spec.default_config()
    a, b = spec.make(cfg), spec.make(cfg)
    obs, infos = a.reset(seed=0)
    n, m = a.n_allies, a.n_enemies
    assert len(a.possible_agents) == n == len(cfg.ally_units) and m == len(cfg.enemy_units)
    assert a.action_space("agent_0").n == 6 + m
    assert obs["agent_0"].shape == a.observation_space("agent_0").shape == (a.core.obs_dim,)
    assert a.state().shape == (a.core.state_dim,) and a.state_space.contains(a.state())
    assert infos["agent_0"]["action_mask"].dtype == np.int8 and infos["agent_0"]["alive"]
    ra, rb = rollout(a, seed=11), rollout(b, seed=11)
    assert all(np.array_equal(ra[k][0]["agent_0"], rb[k][0]["agent_0"]) for k in range(len(ra)))
    assert a.episode_metrics() == b.episode_metrics()
    rc = rollout(b, seed=12)
    assert not np.array_equal(ra[0][0]["agent_0"], rc[0][0]["agent_0"])
    metrics = a.episode_metrics()
    assert {"win", "return", "enemies_killed", "allies_alive", "episode_length"} <= set(metrics)
    assert metrics["episode_length"] == len(ra) - 1


def test_structured_accessors_match_the_core() -> None:
    env = CombatEnv(CombatConfig(allies="3marine", enemies="2marine"))
    env.reset(seed=3)
    c = env.core
    assert env.ally_positions().shape == (3, 2) and env.enemy_positions().shape == (2, 2)
    assert env.distances().shape == (3, 2)
    d = np.linalg.norm(env.ally_positions()[:, None] - env.enemy_positions()[None], axis=-1)
    assert np.allclose(env.distances(), d)
    assert env.ally_alive().all() and env.enemy_alive().all()
    assert np.array_equal(env.ally_health(), np.ones(3)) and np.array_equal(env.enemy_health(), np.ones(2))
    z = np.array([0, 1, 1])
    assert env.task_observation(z).shape == (3, c.task_obs_dim)
    assert env.task_action_masks(z).shape == (3, 7)
    acts = env.task_actions_to_env(z, np.array([6, 6, 1]))
    assert acts == {"agent_0": 6, "agent_1": 7, "agent_2": 1}
    env.step(acts)
    assert env.task_rewards(z).shape == (3,)
    assert env.action_mask("agent_1").tolist() == c.action_masks()[0, 1].astype(np.int8).tolist()


def test_render_ansi() -> None:
    env = CombatEnv(CombatConfig(), render_mode="ansi")
    env.reset(seed=0)
    text = env.render()
    assert text is not None and "A" in text and "0" in text and text.endswith("t=0/60 allies=3 enemies=3")
    assert CombatEnv(CombatConfig()).render() is None


def test_evaluate_reports_win_rate() -> None:
    env = get_env("combat-3v3").make(get_env("combat-3v3").default_config())

    class Stop:
        def reset(self, env: object, seed: int | None = None) -> None:
            pass

        def act(self, observations: dict[str, object], state: object = None, explore: bool = False) -> dict[str, int]:
            return dict.fromkeys(observations, 1)

    eps = evaluate(Stop(), env, episodes=2, seed=0)
    assert len(eps) == 2 and all(e["win"] == 0.0 and e["loss"] == 1.0 for e in eps)
    assert all(e["return"] == -1.0 and e["reward_sum"] == -3.0 for e in eps)  # team reward, 3 agents


@pytest.mark.parametrize(("algo", "small_batch"), [("qmix", "algo.batch_size=4"),
                                                 ("mappo", "algo.episodes_per_iteration=4")])
def test_learner_smoke_through_run_training(algo: str, small_batch: str, tmp_path: Path) -> None:
    """The value and policy-gradient families collect, update (masks, global state) and evaluate."""
    out = tmp_path / algo
    run_training("combat-3v3", algo, overrides=["train.steps=200", "train.eval_episodes=2", small_batch],
                 seed=0, out=out)
    summary = json.loads((out / "summary.json").read_text())
    assert {"win", "return", "enemies_killed", "allies_alive", "episode_length"} <= set(summary["final"])
    assert len(summary["episodes"]) == 2
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["phase"] == "train"]
    assert train and any(any("grad_norm" in k for k in r) for r in train), train[-1]


def test_cli_bad_unit_spec_is_one_line(cli) -> None:
    r = cli("train", "combat-3v3", "qmix", "env.enemies=3hydralisk")
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert r.returncode != 0 and len(lines) == 1, r.stderr
    assert "env.enemies" in lines[0] and "hydralisk" in lines[0] and "marine" in lines[0]
