"""Value decomposition on exactly solvable games (Rashid et al. 2018, Sec. 6.1; Sunehag et al. 2018).

The games are tiny PettingZoo ParallelEnvs defined here (test fixtures of a game, not mocks):

* a one-step decomposable 3x3 matrix game, payoff u1(a1) + u2(a2): VDN and QMIX must both find
  the optimal joint action;
* QMIX's two-step game (Rashid et al. 2018, Table 1 / Fig. 3): agent 1's first action chooses
  state 2A (every joint action pays 7) or 2B (payoff [[0, 1], [1, 8]]). The 2B matrix is monotonic
  but not additive: VDN's best additive fit under uniform exploration peaks at 6.5 < 7, so VDN
  goes to 2A and earns 7, while QMIX represents it and earns 8.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import pytest
import torch
from pettingzoo import ParallelEnv

from hieralloc.algos.value.learner import ValueLearner
from hieralloc.algos.value.qmix import QMIXConfig, QMIXLearner
from hieralloc.algos.value.vdn import VDNConfig, VDNLearner
from hieralloc.eval import evaluate

torch.set_num_threads(1)


class StagedMatrixGame(ParallelEnv):  # type: ignore[misc]
    """Two agents; ``payoffs[k]`` is the payoff matrix of stage k, ``move(k, a1, a2)`` the next stage
    (-1 ends the episode). Observations and the state are the one-hot of the current stage."""

    metadata = {"name": "staged_matrix_game_v0"}

    def __init__(self, payoffs: list[np.ndarray], move: Any, n_stages: int) -> None:
        self.payoffs = payoffs
        self.move = move
        self.n_stages = n_stages
        self.possible_agents = ["agent_0", "agent_1"]
        self.agents: list[str] = []
        self.stage = 0
        n_act = payoffs[0].shape[0]
        self._obs = gymnasium.spaces.Box(0.0, 1.0, (n_stages,), np.float32)
        self._act = gymnasium.spaces.Discrete(n_act)
        self.state_space = self._obs

    def observation_space(self, agent: str) -> gymnasium.spaces.Box:
        return self._obs

    def action_space(self, agent: str) -> gymnasium.spaces.Discrete:
        return self._act

    def _one_hot(self) -> np.ndarray:
        o = np.zeros(self.n_stages, dtype=np.float32)
        o[self.stage] = 1.0
        return o

    def state(self) -> np.ndarray:
        return self._one_hot()

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        self.stage = 0
        self.agents = list(self.possible_agents)
        return {a: self._one_hot() for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        a1, a2 = int(actions["agent_0"]), int(actions["agent_1"])
        r = float(self.payoffs[self.stage][a1, a2])
        nxt = self.move(self.stage, a1, a2)
        end = nxt < 0
        self.stage = max(nxt, 0) if not end else self.stage
        obs = {a: self._one_hot() for a in self.agents}
        rew = dict.fromkeys(self.agents, r)
        term = dict.fromkeys(self.agents, end)
        trunc = dict.fromkeys(self.agents, False)
        infos: dict[str, dict] = {a: {} for a in self.agents}
        if end:
            self.agents = []
        return obs, rew, term, trunc, infos


def decomposable_game() -> StagedMatrixGame:
    u1, u2 = np.array([0.0, 2.0, 1.0]), np.array([1.0, 0.0, 3.0])
    return StagedMatrixGame([u1[:, None] + u2[None, :]], lambda k, a1, a2: -1, 1)


def two_step_game() -> StagedMatrixGame:
    """Rashid et al. (2018), Table 1: stage 0 -> 2A (a1 = 0) or 2B (a1 = 1)."""
    payoffs = [np.zeros((2, 2)), np.full((2, 2), 7.0), np.array([[0.0, 1.0], [1.0, 8.0]])]
    return StagedMatrixGame(payoffs, lambda k, a1, a2: (1 + a1) if k == 0 else -1, 3)


# uniform exploration throughout (the paper's setting for the two-step game), MLP agents
GAME_CFG = {"recurrent": False, "hidden": 32, "eps_start": 1.0, "eps_end": 1.0, "batch_size": 32,
            "buffer_size": 500, "target_interval": 50, "lr": 5e-3, "standardise_rewards": False,
            "updates_per_episode": 1}


def _train(learner: ValueLearner, iterations: int) -> None:
    for _ in range(iterations):
        learner.train_iteration()


def _greedy_return(learner: ValueLearner, env: StagedMatrixGame) -> float:
    return float(evaluate(learner.policy, env, 1, 0)[0]["return"]) / 2.0  # both agents get the team reward


@pytest.mark.parametrize(("cls", "cfg_cls"), [(VDNLearner, VDNConfig), (QMIXLearner, QMIXConfig)])
def test_decomposable_game_optimal_joint_action(cls: type[ValueLearner], cfg_cls: type) -> None:
    env = decomposable_game()
    learner = cls(env, cfg_cls(**{**GAME_CFG, "gamma": 0.0}), seed=0)
    _train(learner, 200)
    acts = learner.policy
    acts.reset(env, 0)
    obs, _ = env.reset(seed=0)
    joint = acts.act(obs)
    assert (joint["agent_0"], joint["agent_1"]) == (1, 2)
    assert _greedy_return(learner, decomposable_game()) == pytest.approx(5.0)


def test_two_step_game_qmix_represents_what_vdn_cannot() -> None:
    cfg = {**GAME_CFG, "gamma": 0.99}
    vdn = VDNLearner(two_step_game(), VDNConfig(**cfg), seed=0)
    qmix = QMIXLearner(two_step_game(), QMIXConfig(**cfg), seed=0)
    _train(vdn, 300)
    _train(qmix, 300)
    assert _greedy_return(vdn, two_step_game()) == pytest.approx(7.0)
    assert _greedy_return(qmix, two_step_game()) == pytest.approx(8.0)
