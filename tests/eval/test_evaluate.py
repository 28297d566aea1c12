"""evaluate(): the one evaluation path, on a hand-written env and on every registered env."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from gymnasium import spaces

from hieralloc.eval import episode_seed, evaluate, mean_metrics
from tiny_env import CountEnv


class ConstPolicy:
    def __init__(self, action: int = 1) -> None:
        self.action = action
        self.resets: list[int | None] = []
        self.states: list[Any] = []

    def reset(self, env: Any, seed: int | None = None) -> None:
        self.resets.append(seed)

    def act(self, observations: dict[str, Any], state: Any = None, explore: bool = False) -> dict[str, int]:
        assert explore is False
        self.states.append(state)
        return {a: self.action for a in observations}

    def episode_metrics(self) -> dict[str, float]:
        return {"bound": 42.0}


def test_episode_seed_is_seedsequence_and_distinct() -> None:
    expected = int(np.random.SeedSequence([7, 3]).generate_state(1, dtype=np.uint32)[0])
    assert episode_seed(7, 3) == expected
    seeds = {episode_seed(s, i) for s in range(5) for i in range(20)}
    assert len(seeds) == 100
    assert all(0 <= s < 2**32 for s in seeds)
    with pytest.raises(ValueError):
        episode_seed(-1, 0)


def test_evaluate_sums_rewards_and_merges_metrics() -> None:
    env, pol = CountEnv(horizon=5), ConstPolicy(action=2)
    calls: list[tuple[int, int]] = []
    eps = evaluate(pol, env, episodes=3, seed=11, progress=lambda i, n, m: calls.append((i, n)))
    assert len(eps) == 3 and calls == [(1, 3), (2, 3), (3, 3)]
    want = [episode_seed(11, i) for i in range(3)]
    assert env.seeds == want and pol.resets == want
    for ep, s in zip(eps, want, strict=True):
        assert ep["return"] == ep["reward_sum"] == 2 * 2 * 5
        assert ep["length"] == 5
        assert ep["steps"] == 5
        assert ep["bonus"] == float(np.random.default_rng(s).random())
        assert "name" not in ep  # non-numeric env metrics are dropped
        assert ep["policy/bound"] == 42.0
        assert ep["decision_ms"] >= 0 and ep["plan_ms"] >= 0
    assert pol.states[0] is not None and pol.states[0][0] == 0


def test_env_return_wins_over_reward_sum() -> None:
    class TeamEnv(CountEnv):
        def episode_metrics(self) -> dict[str, Any]:
            return {"return": 7.0}

    (ep,) = evaluate(ConstPolicy(action=1), TeamEnv(horizon=3), episodes=1, seed=0)
    assert ep["return"] == 7.0 and ep["reward_sum"] == 2 * 1 * 3


def test_evaluate_is_deterministic() -> None:
    timing = {"decision_ms", "plan_ms"}

    def strip(eps: list[dict[str, float]]) -> list[dict[str, float]]:
        return [{k: v for k, v in e.items() if k not in timing} for e in eps]

    a = evaluate(ConstPolicy(), CountEnv(), 4, seed=3)
    b = evaluate(ConstPolicy(), CountEnv(), 4, seed=3)
    c = evaluate(ConstPolicy(), CountEnv(), 4, seed=4)
    assert strip(a) == strip(b)
    assert strip(a) != strip(c)


def test_first_and_observe() -> None:
    """``first`` plays episodes first, first + 1, ... with their own seeds (the same episodes as a longer
    run); ``observe`` sees states 0 .. L of each episode, before each act and once at the end."""
    timing = {"decision_ms", "plan_ms"}
    seen: list[int] = []
    env = CountEnv(horizon=4)
    late = evaluate(ConstPolicy(), env, 2, seed=3, first=2, observe=lambda t, e: seen.append(e.t))
    assert env.seeds == [episode_seed(3, 2), episode_seed(3, 3)]
    full = evaluate(ConstPolicy(), CountEnv(horizon=4), 4, seed=3)
    assert [{k: v for k, v in e.items() if k not in timing} for e in late] == \
        [{k: v for k, v in e.items() if k not in timing} for e in full[2:]]
    assert seen == [0, 1, 2, 3, 4] * 2


def test_mean_metrics() -> None:
    assert mean_metrics([{"a": 1.0, "b": 4.0}, {"a": 3.0}]) == {"a": 2.0, "b": 4.0}
    assert mean_metrics([]) == {}


def _registered_envs() -> list[str]:
    from hieralloc import registry

    try:
        registry.load_builtins()
    except ImportError:  # a built-in module is not written yet
        pass
    return sorted(registry.ENVS) + sorted(registry.SCENARIOS)


class RandomPolicy:
    def reset(self, env: Any, seed: int | None = None) -> None:
        self.env = env
        self.rng = np.random.default_rng(seed)

    def act(self, observations: dict[str, Any], state: Any = None, explore: bool = False) -> dict[str, Any]:
        out = {}
        for a, o in observations.items():
            space = self.env.action_space(a)
            mask = o.get("action_mask") if isinstance(o, dict) else None
            if isinstance(space, spaces.Discrete) and mask is not None:
                out[a] = int(self.rng.choice(np.flatnonzero(mask)))
            else:
                space.seed(int(self.rng.integers(2**31)))
                out[a] = space.sample()
        return out


@pytest.mark.parametrize("name", _registered_envs() or ["<none registered>"])
def test_evaluate_on_registered_envs(name: str) -> None:
    if name == "<none registered>":
        pytest.skip("no environment is registered yet")
    from hieralloc.registry import get_env

    spec = get_env(name)
    env = spec.make(spec.default_config())
    eps = evaluate(RandomPolicy(), env, episodes=1, seed=0)
    assert len(eps) == 1
    assert {"return", "reward_sum", "length", "decision_ms", "plan_ms"} <= set(eps[0])
    assert eps[0]["length"] >= 1
    assert all(isinstance(v, float) for v in eps[0].values())
