"""Every registered learner: smoke run on coverage-small, exact state_dict round trip, masks, groups.

Parametrised over the algorithm registry, so a learner added later is covered automatically.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import hieralloc.algos.pg  # noqa: F401  (registers ippo, mappo)
import hieralloc.algos.value  # noqa: F401  (registers vdn, qmix, qplex)
from conftest import state_tensors
from hieralloc import registry
from hieralloc.config import from_dict
from hieralloc.errors import ConfigError, IncompatibleError
from hieralloc.eval import evaluate

torch.set_num_threads(1)
registry.load_builtins()

ENV = registry.get_env("coverage-small")
LEARNERS = sorted(n for n, s in registry.ALGOS.items() if s.caps.learns)
# small, fast settings applied wherever a learner's config has the key
TINY = {"hidden": 16, "batch_size": 2, "episodes_per_iteration": 2, "epochs": 2, "n_minibatches": 2,
        "updates_per_episode": 2, "mixing_embed_dim": 8, "hypernet_embed": 16, "adv_hypernet_embed": 16,
        "num_kernel": 2, "features": {"explore_episodes": 1, "initial_steps": 5, "refit_every": 1,
                                      "refit_steps": 2, "gdinet": {"d": 8, "hidden": 8, "batch_size": 64}}}


def _compatible(name: str) -> bool:
    try:
        registry.check_compatible(ENV, registry.get_algo(name))
    except IncompatibleError:
        return False
    return True


def _build(name: str, **extra: Any) -> Any:
    spec = registry.get_algo(name)
    keys = {f.name for f in dataclasses.fields(spec.config_cls)}
    cfg = from_dict(spec.config_cls, {k: v for k, v in {**TINY, **extra}.items() if k in keys})
    return spec.build(ENV.make(ENV.default_config()), cfg, 3)


def _params(learner: Any) -> list[torch.Tensor]:
    return state_tensors(learner.state_dict())


def test_the_core_learners_are_registered_with_flags() -> None:
    expected = {
        "iql": dict(off_policy=True, on_policy=False, continuous=False, needs_global_state=False),
        "vdn": dict(off_policy=True, on_policy=False, continuous=False, needs_global_state=False),
        "qmix": dict(off_policy=True, on_policy=False, continuous=False, needs_global_state=True),
        "qplex": dict(off_policy=True, on_policy=False, continuous=False, needs_global_state=True),
        "ippo": dict(off_policy=False, on_policy=True, continuous=True, needs_global_state=False),
        "mappo": dict(off_policy=False, on_policy=True, continuous=True, needs_global_state=True),
    }
    for name, flags in expected.items():
        caps = registry.get_algo(name).caps
        assert caps.learns and caps.discrete and caps.supports_masks
        for flag, value in flags.items():
            assert getattr(caps, flag) == value, (name, flag)


@pytest.mark.parametrize("name", LEARNERS)
def test_learner_smoke_and_exact_state_dict_round_trip(name: str, tmp_path: Path) -> None:
    if not _compatible(name):
        pytest.skip(f"{name} is not compatible with coverage-small")
    a = _build(name)
    for _ in range(2):
        metrics = a.train_iteration()
        assert all(isinstance(v, float) and np.isfinite(v) for v in metrics.values()), metrics
    assert a.env_steps > 0 and a.episodes >= 2
    path = tmp_path / "state.pt"
    torch.save(a.state_dict(), path)
    b = _build(name)
    b.load_state_dict(torch.load(path, weights_only=True))
    for _ in range(2):
        ma, mb = a.train_iteration(), b.train_iteration()
        assert ma == mb
    for x, y in zip(_params(a), _params(b), strict=True):
        assert torch.equal(x, y)
    # the greedy policy runs through the one evaluation path
    eps = evaluate(a.policy, ENV.make(ENV.default_config()), 1, 0)
    assert eps[0]["length"] == 8


@pytest.mark.parametrize("name", ["iql", "vdn", "qmix", "qplex", "ippo", "mappo"])
def test_actions_respect_masks_during_training_and_evaluation(name: str) -> None:
    learner = _build(name)
    for _ in range(2):
        learner.train_iteration()
    env = ENV.make(ENV.default_config())
    # start everyone in a corner so some moves are invalid
    obs, _ = env.reset(seed=5, options={"positions": [[0, 0], [0, 11], [11, 0]]})
    learner.policy.reset(env, 5)
    while env.agents:
        acts = learner.policy.act(obs)
        for a, x in acts.items():
            assert env.action_mask(a)[x], (a, x)
        obs, *_ = env.step(acts)
    # exploration during collection too: every stored action was available
    ep = learner.collect_episode()
    taken = np.take_along_axis(ep["avail"][:-1], ep["actions"][..., None], -1)
    assert taken.all()


@pytest.mark.parametrize("name", ["vdn", "mappo"])
def test_grouped_sharing_reassignment_in_a_learner(name: str, tmp_path: Path) -> None:
    learner = _build(name, sharing="grouped", n_groups=2, groups=(0, 1, 1))
    learner.train_iteration()
    learner.set_groups([1, 1, 0])
    m1 = learner.train_iteration()
    assert learner.groups == [1, 1, 0]
    torch.save(learner.state_dict(), tmp_path / "s.pt")
    other = _build(name, sharing="grouped", n_groups=2, groups=(0, 1, 1))
    other.load_state_dict(torch.load(tmp_path / "s.pt", weights_only=True))
    assert other.groups == [1, 1, 0]
    assert learner.train_iteration() == other.train_iteration()
    assert np.isfinite(list(m1.values())).all()
    with pytest.raises(ConfigError, match="group"):
        learner.set_groups([0, 2, 1])
    with pytest.raises(ConfigError, match="one group id per agent"):
        _build(name, sharing="grouped", n_groups=2, groups=(0, 1))
    with pytest.raises(ConfigError, match="fixed assignment"):
        _build(name).set_groups([0, 1, 0])


def test_mixers_refuse_individual_rewards() -> None:
    with pytest.raises(ConfigError, match="algo.reward"):
        _build("qmix", reward="individual")
    _build("iql", reward="individual").train_iteration()


def test_throughput_benchmark_script_runs(tmp_path: Path) -> None:
    import importlib.util
    import json

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "algo_throughput.py"
    spec = importlib.util.spec_from_file_location("algo_throughput", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "thr.json"
    assert mod.main(["--quick", "--scenario", "coverage-small", "--algos", "vdn,ippo", "--seconds", "0.2",
                     "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report["algorithms"]) == {"vdn", "ippo"}
    for r in report["algorithms"].values():
        assert r["frames_per_s"] > 0 and 0 < r["env_time_share"] < 1 and r["gradient_steps"] > 0
    assert report["env_only"]["env_pettingzoo"]["frames_per_s"] > 0
    assert "| vdn |" in out.with_suffix(".md").read_text()


@pytest.mark.parametrize(("name", "options"), [
    ("vdn", {"td": "lambda", "target_update": "soft", "optimizer": "rmsprop", "recurrent": False}),
    ("qmix", {"n_step": 3, "double_q": False, "hypernet_layers": 1, "standardise_rewards": False}),
    ("qplex", {"adv_hypernet_layers": 3, "stop_gradient": False, "sharing": "none"}),
    ("iql", {"reward": "sum", "bootstrap_on_truncation": True, "sharing": "full"}),
    ("mappo", {"value_norm": "popart", "critic_input": "state", "critic_recurrent": True, "value_loss": "mse"}),
    ("mappo", {"critic_input": "state_obs", "value_norm": "none", "recurrent": False, "sharing": "none"}),
    ("ippo", {"reward": "individual", "standardise_rewards": True, "normalise_advantages": False,
              "value_clip": 0.0}),
])
def test_option_combinations_train(name: str, options: dict[str, Any]) -> None:
    learner = _build(name, **options)
    before = [p.clone() for p in _params(learner)]
    for _ in range(3):
        metrics = learner.train_iteration()
        assert all(np.isfinite(v) for v in metrics.values()), metrics
    assert metrics["updates"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, _params(learner), strict=True))
