"""Registry-parametrised tests of every registered coverage environment and scenario."""

from __future__ import annotations

import numpy as np
import pytest

from hieralloc.envs.checks import check_env, rollout
from hieralloc.registry import ENVS, SCENARIOS, get_env, load_builtins

load_builtins()
COVERAGE_NAMES = sorted(
    [n for n, s in ENVS.items() if s.family == "coverage"]
    + [n for n, s in SCENARIOS.items() if ENVS[s.env].family == "coverage"]
)


def test_names_are_registered() -> None:
    assert {"coverage", "coverage-toy", "coverage-city", "coverage-small"} <= set(COVERAGE_NAMES)


@pytest.mark.parametrize("name", COVERAGE_NAMES)
def test_check_env_passes(name: str) -> None:
    rows = check_env(name, num_cycles=60)
    names = [r[0] for r in rows]
    for required in ("pettingzoo.parallel_api_test", "pettingzoo.parallel_seed_test",
                     "pettingzoo.api_test(parallel_to_aec)", "determinism under seed",
                     "coverage: served <= demand and capacity", "coverage: metrics consistent with infos"):
        assert required in names
    failed = [r for r in rows if not r[1]]
    assert not failed, failed
    assert not any("warnings" in r[2] for r in rows), rows


@pytest.mark.parametrize("name", COVERAGE_NAMES)
def test_seeds_reproduce_and_differ(name: str) -> None:
    spec = get_env(name)
    cfg = spec.default_config()
    a, b = spec.make(cfg), spec.make(cfg)
    ra, rb = rollout(a, seed=11), rollout(b, seed=11)
    assert all(np.array_equal(ra[k][0]["agent_0"], rb[k][0]["agent_0"]) for k in range(len(ra)))
    assert a.episode_metrics() == b.episode_metrics()
    rc = rollout(b, seed=12)
    assert not all(np.array_equal(ra[k][0]["agent_0"], rc[k][0]["agent_0"]) for k in range(len(ra)))


@pytest.mark.parametrize("name", COVERAGE_NAMES)
def test_spaces_and_state(name: str) -> None:
    spec = get_env(name)
    env = spec.make(spec.default_config())
    cfg = env.config
    obs, infos = env.reset(seed=0)
    assert env.action_space("agent_0").n == cfg.window**2
    assert obs["agent_0"].shape == (3 + cfg.window**2,)
    assert env.state().shape == (cfg.height * cfg.width + 2 * cfg.n_agents + 1,)
    assert env.state_space.contains(env.state())
    assert infos["agent_0"]["action_mask"].dtype == np.int8
    assert len(env.possible_agents) == cfg.n_agents


def test_unknown_env_name() -> None:
    from hieralloc.errors import UnknownNameError

    with pytest.raises(UnknownNameError):
        check_env("coverage-nonexistent")


def test_failing_family_invariant_is_reported() -> None:
    from hieralloc.envs.checks import FAMILY_INVARIANTS, register_invariant

    def broken(make: object) -> tuple[bool, str]:
        raise AssertionError("deliberately broken")

    register_invariant("coverage", "deliberately broken", broken)
    try:
        rows = {r[0]: r for r in check_env("coverage-small", num_cycles=10)}
    finally:
        del FAMILY_INVARIANTS["coverage"]["deliberately broken"]
    row = rows["coverage: deliberately broken"]
    assert row[1] is False and "deliberately broken" in row[2]
    assert rows["pettingzoo.parallel_api_test"][1]
