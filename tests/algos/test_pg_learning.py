"""Learning evidence for the policy-gradient family with tiny budgets and fixed seeds.

* MAPPO through the real training entry point on ``coverage-small`` beats the random and the
  stay policies evaluated the same way.
* Continuous actions (Gaussian and Beta heads, IPPO and MAPPO) through the same learner: on a
  one-step continuous game (a PettingZoo ParallelEnv defined here) the greedy actions approach
  their targets.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import pytest
import torch
from pettingzoo import ParallelEnv

import hieralloc.algos.pg  # noqa: F401  (registers ippo, mappo)
from hieralloc.algos.pg.ippo import IPPOConfig, IPPOLearner
from hieralloc.algos.pg.mappo import MAPPOConfig, MAPPOLearner
from hieralloc.algos.pg.ppo import PPOLearner
from hieralloc.train import run_training

torch.set_num_threads(1)


def _final_return(out: Path) -> float:
    return float(json.loads((out / "summary.json").read_text())["final"]["return"])


def test_mappo_beats_random_on_coverage_small(tmp_path: Path) -> None:
    common = ["train.eval_episodes=20"]
    baselines = {}
    for name in ("random", "stay"):
        run_training("coverage-small", name, overrides=common, seed=0, out=tmp_path / name)
        baselines[name] = _final_return(tmp_path / name)
    run_training("coverage-small", "mappo", seed=0, out=tmp_path / "mappo",
                 overrides=[*common, "train.steps=4800", "algo.lr=0.002", "algo.critic_lr=0.002",
                            "algo.episodes_per_iteration=8"])
    learned = _final_return(tmp_path / "mappo")
    assert learned > 1.5 * baselines["random"], (learned, baselines)
    assert learned > 1.2 * baselines["stay"], (learned, baselines)


class TargetGame(ParallelEnv):  # type: ignore[misc]
    """One step: agent i observes a target t_i ~ U(-0.8, 0.8) and is paid -(a_i - t_i)^2 (team: the mean)."""

    metadata = {"name": "target_game_v0"}

    def __init__(self, n_agents: int = 2) -> None:
        self.possible_agents = [f"agent_{i}" for i in range(n_agents)]
        self.agents: list[str] = []
        self._obs = gymnasium.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self._act = gymnasium.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.state_space = gymnasium.spaces.Box(-1.0, 1.0, (n_agents,), np.float32)
        self.rng = np.random.default_rng(0)
        self.targets = np.zeros(n_agents, dtype=np.float32)

    def observation_space(self, agent: str) -> gymnasium.spaces.Box:
        return self._obs

    def action_space(self, agent: str) -> gymnasium.spaces.Box:
        return self._act

    def state(self) -> np.ndarray:
        return self.targets.copy()

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.targets = self.rng.uniform(-0.8, 0.8, len(self.possible_agents)).astype(np.float32)
        self.agents = list(self.possible_agents)
        return {a: self.targets[i : i + 1].copy() for i, a in enumerate(self.agents)}, {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        err = [float((np.asarray(actions[a]).reshape(-1)[0] - self.targets[i]) ** 2)
               for i, a in enumerate(self.possible_agents)]
        r = -float(np.mean(err))
        obs = {a: self.targets[i : i + 1].copy() for i, a in enumerate(self.agents)}
        out = (obs, dict.fromkeys(self.agents, r), dict.fromkeys(self.agents, True),
               dict.fromkeys(self.agents, False), {a: {} for a in self.agents})
        self.agents = []
        return out


def _greedy_error(learner: PPOLearner, episodes: int = 30) -> float:
    env = TargetGame()
    errs = []
    for i in range(episodes):
        obs, _ = env.reset(seed=10_000 + i)
        learner.policy.reset(env, i)
        acts = learner.policy.act(obs)
        errs += [float((np.asarray(acts[a]).reshape(-1)[0] - env.targets[k]) ** 2)
                 for k, a in enumerate(env.possible_agents)]
    return float(np.mean(errs))


@pytest.mark.parametrize(("cls", "cfg_cls", "dist"), [
    (IPPOLearner, IPPOConfig, "gaussian"),
    (IPPOLearner, IPPOConfig, "beta"),
    (MAPPOLearner, MAPPOConfig, "gaussian"),
])
def test_continuous_actions_learn_through_the_same_code_path(cls: type[PPOLearner], cfg_cls: type,
                                                               dist: str) -> None:
    cfg = cfg_cls(continuous_dist=dist, recurrent=False, hidden=32, episodes_per_iteration=32, epochs=5,
                  n_minibatches=2, lr=3e-3, critic_lr=3e-3, entropy_coef=0.0, log_std_init=-0.5)
    learner = cls(TargetGame(), cfg, seed=0)
    before = _greedy_error(learner)
    for _ in range(40):
        learner.train_iteration()
    after = _greedy_error(learner)
    assert after < 0.25 * before and after < 0.05, (before, after)


def test_mappo_learns_lbf_5x5(tmp_path: Path) -> None:
    """MAPPO on level-based foraging 5x5 (2 players, 1 cooperative food), 10k steps, fixed seed."""
    out = tmp_path / "mappo-lbf"
    run_training("lbf-5x5-2p-1f-coop", "mappo", seed=0, out=out,
                 overrides=["train.steps=10000", "train.eval_every=2500", "train.eval_episodes=20"])
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    curve = [float(r["food_collected"]) for r in rows if r["phase"] == "eval"]
    assert curve[0] <= 0.2, curve
    assert curve[-1] >= 0.4, curve
