"""Tests of the LBF, RWARE and MPE adapters (hieralloc.envs.adapters).

The ``envs`` extra (lbforaging, rware, mpe2) is installed in CI, so nothing here skips: a missing
package fails the test with the adapter's own message naming the extra.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test
from pettingzoo.utils.conversions import parallel_to_aec

from hieralloc.envs.adapters import FAMILIES, MissingDependencyError
from hieralloc.envs.checks import FAMILY_INVARIANTS, GENERIC_INVARIANTS, rollout, sample_actions
from hieralloc.errors import ConfigError
from hieralloc.eval import evaluate
from hieralloc.registry import ENVS, SCENARIOS, get_env


def _family(name: str) -> str | None:
    if name in ENVS:
        return ENVS[name].family
    env = ENVS.get(SCENARIOS[name].env)
    return env.family if env is not None else None


NAMES = sorted(n for n in [*ENVS, *SCENARIOS] if _family(n) in FAMILIES)
EXPECTED = {"lbf", "lbf-8x8-2p-2f-coop", "lbf-5x5-2p-1f-coop", "rware", "rware-tiny-2ag",
            "mpe-simple-spread", "mpe-simple-spread-continuous"}
TASK_METRICS = {
    "lbf": {"food_collected", "level_collected", "food_spawned", "success"},
    "rware": {"deliveries", "pickups"},
    "mpe": {"distance", "final_distance", "collisions", "occupied", "success"},
}


def make(name: str, **overrides: Any) -> Any:
    spec = get_env(name)
    return spec.make(spec.default_config(**overrides))


def test_registered_names_and_flags() -> None:
    assert EXPECTED <= set(NAMES)
    assert get_env("lbf").has_masks and not get_env("rware").has_masks
    assert get_env("mpe-simple-spread-continuous").continuous
    assert not get_env("mpe-simple-spread-continuous").discrete
    for name in NAMES:
        assert get_env(name).has_global_state
    # the benchmark tasks' parameters
    lbf = get_env("lbf-8x8-2p-2f-coop").default_config()
    assert (lbf.size, lbf.n_agents, lbf.max_food, lbf.coop, lbf.max_steps) == (8, 2, 2, True, 50)
    rw = get_env("rware-tiny-2ag").default_config()
    assert (rw.grid_size, rw.n_agents, rw.queue_size, rw.max_steps) == ((11, 10), 2, 2, 500)
    mpe = make("mpe-simple-spread")
    assert len(mpe.possible_agents) == 3 and mpe.cfg.max_steps == 25


def test_registration_does_not_import_optional_packages() -> None:
    code = ("import sys, hieralloc.envs.adapters\n"
            "print(sorted(m for m in ('lbforaging', 'rware', 'mpe2', 'pygame') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"


@pytest.mark.filterwarnings("ignore:Agent's m.* observation space value is")  # MPE's Box is unbounded
@pytest.mark.parametrize("name", NAMES)
def test_pettingzoo_api(name: str) -> None:
    parallel_api_test(make(name), num_cycles=200)
    parallel_seed_test(lambda: make(name), num_cycles=200)
    api_test(parallel_to_aec(make(name)), num_cycles=200)


@pytest.mark.parametrize("name", NAMES)
def test_invariants(name: str) -> None:
    """Generic invariants (finite rewards, spaces, determinism) and the family's own."""
    invariants = {**GENERIC_INVARIANTS, **FAMILY_INVARIANTS[_family(name) or ""]}
    assert len(invariants) > len(GENERIC_INVARIANTS)
    for inv_name, inv in invariants.items():
        passed, detail = inv(lambda: make(name))
        assert passed, f"{name}: {inv_name}: {detail}"


@pytest.mark.parametrize("name", ["lbf", "rware", "mpe-simple-spread", "mpe-simple-spread-continuous"])
@pytest.mark.parametrize("mode", ["full", "concat"])
def test_state_matches_state_space(name: str, mode: str) -> None:
    overrides = {"max_steps": 30} if name == "rware" else {}
    env = make(name, state=mode, **overrides)
    for obs, *_ in rollout(env, seed=5):
        if not env.agents:
            break
        s = env.state()
        assert s.dtype == np.float32 and s.shape == env.state_space.shape
        assert env.state_space.contains(s)
        if mode == "concat":
            np.testing.assert_array_equal(s, np.concatenate([obs[a] for a in env.possible_agents]))
    if mode == "full":
        assert env.state()[-1] == pytest.approx(env.t / env.cfg.max_steps)


def test_lbf_full_state_layout() -> None:
    env = make("lbf-8x8-2p-2f-coop")
    env.reset(seed=3)
    s = env.state()
    food = s[:6].reshape(2, 3)
    players = s[6:12].reshape(2, 3)
    field = env.field
    for r, c, level in food:
        assert field[int(r), int(c)] == level > 0
    np.testing.assert_array_equal(players[:, :2], env.positions)
    np.testing.assert_array_equal(players[:, 2], env.levels)
    assert s[-1] == 0.0


def test_lbf_masks_and_invalid_actions() -> None:
    env = make("lbf-5x5-2p-1f-coop")
    _, infos = env.reset(seed=0)
    for a in env.agents:
        m = infos[a]["action_mask"]
        assert m.dtype == np.int8 and m.shape == (6,) and m[0] == 1
        np.testing.assert_array_equal(m, env.action_mask(a))
    env_off = make("lbf-5x5-2p-1f-coop", action_masks=False)
    _, infos = env_off.reset(seed=0)
    assert all("action_mask" not in i for i in infos.values())
    with pytest.raises(ValueError, match="agent_0"):
        env.step({"agent_0": 6, "agent_1": 0})


def _place_lbf(env: Any, positions: list[tuple[int, int]]) -> None:
    for p, pos in zip(env.core.players, positions, strict=True):
        p.position = pos
    env.core._gen_valid_moves()


def test_lbf_collecting_all_food_terminates() -> None:
    env = make("lbf-5x5-2p-1f-coop")
    env.reset(seed=0)
    (r, c), = np.argwhere(env.field > 0)
    _place_lbf(env, [(r - 1, c), (r + 1, c)])  # food is spawned inside the border
    # one loader alone is too weak in a coop task
    _, rew, term, trunc, infos = env.step({"agent_0": 5, "agent_1": 0})
    assert infos["agent_0"]["food_collected"] == 0 and not term["agent_0"]
    _, rew, term, trunc, infos = env.step({"agent_0": 5, "agent_1": 5})
    assert infos["agent_0"]["food_collected"] == 1
    assert term == {"agent_0": True, "agent_1": True} and not any(trunc.values())
    assert sum(rew.values()) == pytest.approx(1.0)
    m = env.episode_metrics()
    assert m["food_collected"] == m["level_collected"] == m["success"] == 1.0
    assert m["team_return"] == pytest.approx(1.0) and m["steps"] == 2 and env.agents == []
    s = env.state()
    np.testing.assert_array_equal(s[:3], [-1, -1, 0])  # the collected food's slot


def test_time_limits_truncate() -> None:
    for name, over in [("lbf-5x5-2p-1f-coop", {"max_steps": 7}), ("rware", {"max_steps": 9}),
                       ("mpe-simple-spread", {"max_steps": 6})]:
        env = make(name, **over)
        env.reset(seed=1)
        steps = 0
        while env.agents:
            _, _, term, trunc, _ = env.step({})  # every agent takes the no-op
            steps += 1
        assert steps == over["max_steps"]
        assert all(trunc.values()) and not any(term.values())


@pytest.mark.parametrize("reward_type", ["individual", "global", "two_stage"])
def test_rware_delivery_counted(reward_type: str) -> None:
    env = make("rware-tiny-2ag", reward_type=reward_type)
    env.reset(seed=0)
    core = env.core
    H, W = core.grid_size
    robot, other = core.agents
    shelf = core.request_queue[0]
    home = (shelf.x, shelf.y)
    gx, gy = core.goals[0]
    # the robot carries a requested shelf one cell above a goal, facing down (rware Direction.DOWN)
    robot.x, robot.y, robot.dir = gx, gy - 1, type(robot.dir)(1)
    robot.carrying_shelf = shelf
    shelf.x, shelf.y = robot.x, robot.y
    other.x, other.y, other.carrying_shelf = 0, 0, None
    core._recalc_grid()
    _, rew, _, _, infos = env.step({"agent_0": 1, "agent_1": 0})  # FORWARD onto the goal
    assert infos["agent_0"]["deliveries"] == 1
    assert shelf not in core.request_queue
    expect = {"individual": 1.0, "global": 2.0, "two_stage": 0.5}[reward_type]
    assert sum(rew.values()) == pytest.approx(expect)
    # put the shelf back where it came from: two_stage pays 0.5 for the return, no new delivery
    robot.x, robot.y = home
    shelf.x, shelf.y = home
    core._recalc_grid()
    _, rew, _, _, infos = env.step({"agent_0": 4, "agent_1": 0})  # TOGGLE_LOAD on a shelf cell
    assert infos["agent_0"]["deliveries"] == 0 and robot.carrying_shelf is None
    assert sum(rew.values()) == pytest.approx(0.5 if reward_type == "two_stage" else 0.0)
    assert env.episode_metrics()["deliveries"] == 1.0


def test_mpe_collisions_and_distance() -> None:
    env = make("mpe-simple-spread", local_ratio=0.5)
    env.reset(seed=0)
    w = env.world
    for k, a in enumerate(w.agents):
        a.state.p_pos = np.array([0.0, 0.1 * k]) if k < 2 else np.array([0.9, 0.9])
        a.state.p_vel = np.zeros(2)
    for k, lm in enumerate(w.landmarks):
        lm.state.p_pos = np.array([0.0, 0.05 * k])
    _, rew, _, _, infos = env.step({})
    info = infos["agent_0"]
    assert info["collisions"] == 1.0 and info["occupied"] >= 1
    assert rew["agent_0"] == pytest.approx(0.5 * -info["distance"] + 0.5 * -1.0)
    assert rew["agent_2"] == pytest.approx(0.5 * -info["distance"])
    m = env.episode_metrics()
    assert m["collisions"] == 1.0 and m["distance"] == pytest.approx(info["distance"])


def test_mpe_continuous_actions() -> None:
    env = make("mpe-simple-spread-continuous")
    env.reset(seed=0)
    assert env.action_space("agent_0").shape == (5,)
    env.step({"agent_0": np.array([0, 0, 3.0, 0, 0]), "agent_1": None})  # clipped to 1: push right
    a0, a1 = env.world.agents[:2]
    np.testing.assert_allclose(a0.action.u, [5.0, 0.0])  # mpe2: (a[2] - a[1]) * sensitivity 5
    assert a0.state.p_vel[0] > 0 and np.allclose(a1.action.u, 0.0)


@pytest.mark.parametrize("name", ["lbf-5x5-2p-1f-coop", "rware", "mpe-simple-spread"])
def test_episode_metrics_after_random_episode(name: str) -> None:
    over = {"max_steps": 60} if name == "rware" else {}
    env = make(name, **over)
    fam = _family(name) or ""
    seen: dict[str, float] = {}
    for seed in range(6):
        steps = rollout(env, seed=seed)[1:]
        m = env.episode_metrics()
        assert set(m) == {"return", "team_return", "steps"} | TASK_METRICS[fam]
        assert all(isinstance(v, float) and np.isfinite(v) for v in m.values())
        assert m["steps"] == len(steps)
        assert m["return"] == pytest.approx(sum(sum(r.values()) for _, r, *_ in steps))
        infos = [next(iter(i.values())) for *_, i in steps]
        assert m["team_return"] == pytest.approx(sum(i["team_reward"] for i in infos))
        if fam == "lbf":
            assert m["food_collected"] * m["food_spawned"] == pytest.approx(sum(i["food_collected"] for i in infos))
            assert 0 <= m["food_collected"] <= 1 and m["team_return"] == pytest.approx(m["level_collected"])
        elif fam == "rware":
            assert m["deliveries"] == sum(i["deliveries"] for i in infos)
            assert m["pickups"] == sum(i["pickups"] for i in infos)
        else:
            assert m["collisions"] == sum(i["collisions"] for i in infos)
            assert m["distance"] == pytest.approx(np.mean([i["distance"] for i in infos]))
            assert 0 <= m["occupied"] <= 1
        for k, v in m.items():
            seen[k] = seen.get(k, 0.0) + abs(v)
    # random play exercises the metrics (not all zero)
    key = {"lbf": "food_collected", "rware": "pickups", "mpe": "collisions"}[fam]
    assert seen[key] > 0


def test_team_reward_split() -> None:
    for name in ["lbf-5x5-2p-1f-coop", "mpe-simple-spread"]:
        env = make(name, reward_split="team")
        steps = rollout(env, seed=2)[1:]
        for _, rew, *_, infos in steps:
            team = next(iter(infos.values()))["team_reward"]
            assert all(r == pytest.approx(team) for r in rew.values())
        m = env.episode_metrics()
        assert m["return"] == pytest.approx(len(env.possible_agents) * m["team_return"])


@pytest.mark.parametrize("name", ["lbf-8x8-2p-2f-coop", "rware-tiny-2ag", "mpe-simple-spread"])
def test_same_seed_same_episode(name: str) -> None:
    over = {"max_steps": 40} if name.startswith("rware") else {}

    def play(env: Any) -> tuple[list[np.ndarray], list[Any], dict[str, float]]:
        rng = np.random.default_rng(11)
        obs, infos = env.reset(seed=123)
        states, trace = [env.state()], [obs]
        while env.agents:
            obs, rew, term, trunc, infos = env.step(sample_actions(env, infos, rng))
            states.append(env.state())
            trace.append((obs, rew, term, trunc))
        return states, trace, env.episode_metrics()

    a, b = play(make(name, **over)), play(make(name, **over))
    assert len(a[0]) == len(b[0])
    for sa, sb in zip(a[0], b[0], strict=True):
        np.testing.assert_array_equal(sa, sb)
    assert repr(a[1]) == repr(b[1]) and a[2] == b[2]
    c = make(name, **over)
    c.reset(seed=7)
    assert play(c)[2] == a[2]  # a used instance re-seeded gives the same episode


def test_evaluate_reads_adapter_metrics() -> None:
    class RandomPolicy:
        def reset(self, env: Any, seed: int) -> None:
            self.env, self.rng = env, np.random.default_rng(seed)

        def act(self, observations: dict[str, Any], state: Any = None, explore: bool = False) -> dict[str, int]:
            return {a: int(self.rng.integers(6)) for a in observations}

    env = make("lbf-5x5-2p-1f-coop")
    out = evaluate(RandomPolicy(), env, episodes=3, seed=0)
    assert len(out) == 3
    for m in out:
        assert {"food_collected", "team_return", "return", "length"} <= set(m)
        assert m["return"] == pytest.approx(m["team_return"])


BAD = [
    ("lbf", {"size": 2}, "size"),
    ("lbf", {"size": 5, "max_food": 5}, "max_food"),
    ("lbf", {"min_player_level": 3}, "min_player_level"),
    ("lbf", {"sight": 9}, "sight"),
    ("lbf", {"max_food_level": 1, "min_food_level": 2}, "max_food_level"),
    ("lbf", {"state": "image"}, "state"),
    ("lbf", {"grid": 5}, "grid"),
    ("rware", {"shelf_columns": 2}, "shelf_columns"),
    ("rware", {"reward_type": "shared"}, "reward_type"),
    ("rware", {"n_agents": 0}, "n_agents"),
    ("rware", {"request_queue_size": 32}, "request_queue_size"),
    ("mpe-simple-spread", {"local_ratio": 1.5}, "local_ratio"),
    ("mpe-simple-spread", {"num_agent_neighbors": 3}, "num_agent_neighbors"),
    ("mpe-simple-spread", {"reward_split": "mean"}, "reward_split"),
]


@pytest.mark.parametrize(("name", "overrides", "key"), BAD, ids=[f"{n}-{k}" for n, _, k in BAD])
def test_bad_config_one_clear_error(name: str, overrides: dict[str, Any], key: str) -> None:
    spec = get_env(name)
    with pytest.raises(ConfigError) as ei:
        spec.make(spec.default_config(**overrides))
    err = ei.value
    assert err.key == key and key in str(err) and "\n" not in str(err)
    assert err.__cause__ is None and err.__suppress_context__ or err.__context__ is None


@pytest.mark.parametrize(("name", "module"), [("lbf", "lbforaging.foraging.environment"),
                                              ("rware", "rware.warehouse"),
                                              ("mpe-simple-spread", "mpe2.simple_spread_v3")])
def test_missing_package_names_the_extra(name: str, module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # what Python does for an absent module
    with pytest.raises(MissingDependencyError, match=r"pip install -e '\.\[envs\]'"):
        make(name)
