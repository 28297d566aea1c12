"""Registered navigation environments: PettingZoo API and invariants (check_env), config errors, and
the existing learners and CLI running on them (smoke runs with tiny budgets)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hieralloc.envs.checks import check_env
from hieralloc.errors import ConfigError, IncompatibleError
from hieralloc.registry import ENVS, SCENARIOS, check_compatible, get_algo, get_env, load_builtins
from hieralloc.train import run_training

torch.set_num_threads(1)
load_builtins()
NAMES = sorted([n for n, s in ENVS.items() if s.family == "navigation"]
               + [n for n, s in SCENARIOS.items() if ENVS[s.env].family == "navigation"])


def test_names_are_registered() -> None:
    assert NAMES == ["navigation", "navigation-3x5", "navigation-5x7"]
    for name, (m, n) in {"navigation-3x5": (3, 5), "navigation-5x7": (5, 7)}.items():
        cfg = get_env(name).default_config()
        assert (cfg.n_landmarks, cfg.n_agents, cfg.episode_length) == (m, n, 50)
    spec = get_env("navigation")
    assert spec.discrete and spec.continuous and spec.has_global_state
    for algo in ("qmix", "vdn", "mappo"):
        check_compatible(spec, get_algo(algo))


@pytest.mark.parametrize("name", NAMES)
def test_check_env_passes_without_warnings(name: str) -> None:
    rows = check_env(name, num_cycles=60)
    names = [r[0] for r in rows]
    for required in ("pettingzoo.parallel_api_test", "pettingzoo.parallel_seed_test",
                     "pettingzoo.api_test(parallel_to_aec)", "determinism under seed",
                     "navigation: rewards follow LPMARL Table 5", "navigation: batched core equals environment"):
        assert required in names
    assert not [r for r in rows if not r[1]], rows
    assert not any("warnings" in r[2] for r in rows), rows


@pytest.mark.parametrize("overrides", [{"movement": "continuous", "reward": "sparse"},
                                       {"n_agents": 20, "n_landmarks": 20, "obs_range": 0.0, "episode_length": 10},
                                       {"contact_force": 100.0, "terminate_on_success": True, "reach_radius": 0.4}])
def test_check_env_passes_for_other_settings(overrides: dict[str, object]) -> None:
    rows = check_env("navigation", num_cycles=30, **overrides)
    assert not [r for r in rows if not r[1] or "warnings" in r[2]], rows


@pytest.mark.parametrize(("overrides", "key"), [
    ({"n_landmarks": 6}, "n_landmarks"),
    ({"n_agents": 0}, "n_agents"),
    ({"obs_range": -1.0}, "obs_range"),
    ({"reward": "medium"}, "reward"),
    ({"movement": "teleport"}, "movement"),
    ({"capacities": (2, 2)}, "capacities"),
    ({"capacities": (1, 1, 2)}, "capacities"),
    ({"reach_radius": 0.0}, "reach_radius"),
])
def test_bad_config_names_the_field(overrides: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as e:
        get_env("navigation-3x5").default_config(**overrides)
    assert e.value.key == key


def test_too_many_landmarks_on_the_command_line_is_one_line(cli, tmp_path: Path) -> None:
    r = cli("train", "navigation-3x5", "qmix", "env.n_landmarks=9", "--out", str(tmp_path / "x"), "--quiet")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "env.n_landmarks" in lines[0] and "at most n_agents = 5" in lines[0], r.stderr


def test_qmix_trains_on_navigation_3x5_through_the_cli(cli, tmp_path: Path) -> None:
    out = tmp_path / "qmix"
    r = cli("train", "navigation-3x5", "qmix", "train.steps=200", "train.eval_episodes=2", "algo.hidden=16",
            "--seed", "1", "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert {"win", "min_distance", "collisions", "return", "success_ever"} <= set(summary["final"])
    assert all(e["length"] == 50 for e in summary["episodes"])
    assert 0.0 <= summary["final"]["win"] <= 1.0


def test_mappo_trains_with_continuous_movement(tmp_path: Path) -> None:
    out = run_training("navigation-3x5", "mappo", overrides=["env.movement=continuous", "train.steps=100",
                                                              "train.eval_episodes=1", "algo.hidden=16"],
                       seed=0, out=tmp_path / "mappo")
    final = json.loads((out / "summary.json").read_text())["final"]
    assert final["length"] == 50 and "min_distance" in final


def test_discrete_learner_refuses_continuous_movement(tmp_path: Path) -> None:
    with pytest.raises(IncompatibleError, match="discrete"):
        run_training("navigation", "qmix", overrides=["env.movement=continuous", "train.steps=50"],
                     seed=0, out=tmp_path / "q")
