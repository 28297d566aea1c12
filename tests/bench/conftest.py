"""Test-only environment and algorithms for the benchmark runner (registered per test, then removed).

They run inline (``jobs=1``): worker processes only know the built-in registry entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from hieralloc import registry
from hieralloc.config import Config, param
from hieralloc.registry import AlgoSpec, Capabilities, EnvSpec
from tiny_env import CountEnv


@dataclass
class BTEnvConfig(Config):
    horizon: int = param(4, "steps per episode", low=1)
    n_agents: int = param(2, "agents", low=1)


def make_bt(cfg: BTEnvConfig) -> CountEnv:
    """Reward = action; per-episode metric ``served`` = sum of actions (see ``tiny_env.CountEnv``)."""
    return CountEnv(cfg.horizon, cfg.n_agents)


@dataclass
class BTAlgoConfig(Config):
    action: int = param(1, "constant action", low=0, high=2)


class ConstPolicy:
    def __init__(self, env: Any, cfg: BTAlgoConfig, seed: int) -> None:
        self.action = cfg.action
        self.env = env

    def reset(self, env: Any, seed: int | None = None) -> None:
        self.env = env

    def act(self, observations: dict[str, Any], state: Any = None, explore: bool = False) -> dict[str, int]:
        return {a: self.action for a in observations}


class OraclePolicy(ConstPolicy):
    def __init__(self, env: Any, cfg: BTAlgoConfig, seed: int) -> None:
        super().__init__(env, cfg, seed)
        self.action = 2

    def episode_metrics(self) -> dict[str, float]:
        return {"bound": 2.0 * self.env.horizon * len(self.env.possible_agents)}


class Learner:
    """Action grows with training: 0 before 8 steps, 1 before 16, then 2."""

    def __init__(self, env: Any, cfg: BTAlgoConfig, seed: int) -> None:
        self.env_steps = 0
        self.policy = self

    def train_iteration(self) -> dict[str, float]:
        self.env_steps += 4
        return {"loss": 1.0 / self.env_steps}

    def reset(self, env: Any, seed: int | None = None) -> None:
        pass

    def act(self, observations: dict[str, Any], state: Any = None, explore: bool = False) -> dict[str, int]:
        return {a: min(2, self.env_steps // 8) for a in observations}

    def state_dict(self) -> dict[str, Any]:
        return {"env_steps": self.env_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.env_steps = int(state["env_steps"])


def _fail(env: Any, cfg: BTAlgoConfig, seed: int) -> Any:
    if seed == 1:
        raise RuntimeError("boom on seed 1")
    return ConstPolicy(env, cfg, seed)


FAM = ("benchtest",)
ENV = EnvSpec(name="bt-env", family="benchtest", config_cls=BTEnvConfig, make=make_bt, description="test env")
ALGOS = [
    AlgoSpec("bt-const", BTAlgoConfig, ConstPolicy, Capabilities(families=FAM), "constant"),
    AlgoSpec("bt-oracle", BTAlgoConfig, OraclePolicy, Capabilities(full_information=True, families=FAM), "bound"),
    AlgoSpec("bt-learner", BTAlgoConfig, Learner, Capabilities(learns=True, families=FAM), "learner"),
    AlgoSpec("bt-fail", BTAlgoConfig, _fail, Capabilities(families=FAM), "fails on seed 1"),
    AlgoSpec("bt-continuous", BTAlgoConfig, ConstPolicy, Capabilities(discrete=False, continuous=True), "cont."),
]


@pytest.fixture
def bt_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register the test env and algos for one test (the registry is restored afterwards)."""
    try:
        registry.load_builtins()
    except ImportError:  # a built-in module is not written yet: the test entries suffice
        pass
    monkeypatch.setitem(registry.ENVS, ENV.name, ENV)
    for a in ALGOS:
        monkeypatch.setitem(registry.ALGOS, a.name, a)
