"""Episode plumbing shared by the MARL learners: run_episode, stack_episodes and the replay buffer."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from hieralloc import registry
from hieralloc.algos.marl import EnvView, EpisodeBuffer, run_episode, stack_episodes

registry.load_builtins()
SMALL = registry.get_env("coverage-small")


def _random_act(view: EnvView, rng: np.random.Generator) -> Any:
    def act(o: np.ndarray, m: np.ndarray, present: np.ndarray, s: np.ndarray | None) -> tuple[np.ndarray, list]:
        a = np.array([rng.choice(np.flatnonzero(row)) for row in m])
        return a, [int(x) for x in a]
    return act


@pytest.mark.parametrize("bootstrap", [False, True])
def test_run_episode_arrays_and_end_flags(bootstrap: bool) -> None:
    env = SMALL.make(SMALL.default_config())
    view = EnvView(env, need_state=True)
    ep = run_episode(env, view, 7, _random_act(view, np.random.default_rng(0)), bootstrap)
    L, N = 8, 3
    assert ep["length"] == L
    assert ep["obs"].shape == (L + 1, N, view.obs_dim) and ep["state"].shape == (L + 1, view.state_dim)
    assert ep["avail"].shape == (L + 1, N, 9) and ep["actions"].shape == (L, N)
    assert ep["active"].all()
    # the coverage grid ends by truncation: terminal unless bootstrapping through it
    assert ep["done"][-1].all() == (not bootstrap) and not ep["done"][:-1].any()
    assert ep["terminated"][-1] == (not bootstrap) and not ep["terminated"][:-1].any()
    assert ep["return"] == pytest.approx(float(ep["reward"].sum()))
    # the same seed replays the same episode
    again = run_episode(env, view, 7, _random_act(view, np.random.default_rng(0)), bootstrap)
    np.testing.assert_array_equal(again["obs"], ep["obs"])


def _episode(L: int, tag: float, N: int = 2) -> dict[str, Any]:
    return {"obs": np.full((L + 1, N, 3), tag, np.float32), "avail": np.ones((L + 1, N, 4), bool),
            "active": np.ones((L + 1, N), bool), "actions": np.zeros((L, N), np.int64),
            "reward": np.full((L, N), tag, np.float32), "done": np.zeros((L, N), bool),
            "terminated": np.zeros(L, bool), "length": L}


def test_replay_buffer_grows_wraps_samples_and_round_trips() -> None:
    buf = EpisodeBuffer(capacity=5)
    for k, L in enumerate([3, 5, 2, 7, 4, 6, 1]):  # 7 episodes into 5 slots; the longest grows T
        buf.insert(_episode(L, float(k)), [0, 1])
    assert buf.size == 5 and buf.pos == 2 and buf.max_len == 7
    assert sorted(buf.lengths.tolist()) == [1, 2, 4, 6, 7]  # episodes 0 and 1 were overwritten
    batch = buf.sample(5, np.random.default_rng(0))
    T = int(batch["length"].max())
    assert batch["obs"].shape == (T + 1, 5, 2, 3) and batch["actions"].shape == (T, 5, 2)
    for b in range(5):
        L = int(batch["length"][b])
        assert batch["filled"][:, b].tolist() == [t < L for t in range(T)]
        tag = batch["obs"][0, b, 0, 0]
        assert (batch["reward"][:L, b] == tag).all() and (batch["reward"][L:, b] == 0).all()
        assert batch["avail"][L + 1 :, b].all()  # padding keeps every action available
    other = EpisodeBuffer(capacity=5)
    other.load_state_dict(buf.state_dict())
    x = buf.sample(3, np.random.default_rng(1))
    y = other.sample(3, np.random.default_rng(1))
    for k in x:
        assert torch.equal(x[k], y[k])
    other.insert(_episode(2, 9.0), [1, 1])
    assert other.size == 5 and other.pos == 3


def test_stack_episodes_pads_time_major() -> None:
    batch = stack_episodes([_episode(2, 1.0), _episode(4, 2.0)], [[0, 0], [1, 0]])
    assert batch["obs"].shape == (5, 2, 2, 3) and batch["filled"].tolist() == [[True, True], [True, True],
                                                                               [False, True], [False, True]]
    assert batch["groups"].tolist() == [[0, 0], [1, 0]] and batch["length"].tolist() == [2, 4]
