"""GridNet (Han et al. 2019; HGRL App. D): registration, network shapes, the per-cell policy and its
masks, PPO training terms, exact resume through a checkpoint file, and the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import hieralloc.algos.hgrl.gridnet  # noqa: F401  (registers gridnet)
from conftest import state_tensors
from hieralloc import registry
from hieralloc.algos.hgrl.gridnet import (
    GridNetConfig,
    GridNetLearner,
    GridNetModule,
    agent_logits,
    grid_inputs,
)
from hieralloc.config import from_dict
from hieralloc.errors import CheckpointError, ConfigError, IncompatibleError
from hieralloc.eval import TIMING_KEYS, evaluate

ENV = registry.get_env("coverage-small")
#: GDI-Net features small enough for tests: one exploration episode, a few fit steps, a refit per episode
SMALL_GDI = {"source": "gdinet", "explore_episodes": 1, "initial_steps": 5, "refit_every": 1, "refit_steps": 2,
             "gdinet": {"d": 8, "hidden": 16, "batch_size": 128}}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _env() -> Any:
    return ENV.make(ENV.default_config())


def _learner(seed: int = 3, env: Any = None, **values: Any) -> GridNetLearner:
    values = {"channels": 8, "hidden": 16, "episodes_per_iteration": 2, "epochs": 2, "n_minibatches": 2,
              "features": {"source": "truth"}, **values}
    return GridNetLearner(env if env is not None else _env(), from_dict(GridNetConfig, values), seed)


# ------------------------------------------------------------------------------ registration


def test_registered_with_flags_and_family_check() -> None:
    spec = registry.get_algo("gridnet")
    assert spec.config_cls is GridNetConfig and spec.build is GridNetLearner
    c = spec.caps
    assert (c.discrete, c.on_policy, c.learns, c.families) == (True, True, True, ("coverage",))
    assert not (c.continuous or c.off_policy or c.full_information)
    registry.check_compatible(ENV, spec)
    with pytest.raises(IncompatibleError, match="written for coverage"):
        registry.check_compatible(registry.get_env("lbf"), spec)
    lbf = registry.get_env("lbf")
    with pytest.raises(IncompatibleError, match="coverage environment"):
        GridNetLearner(lbf.make(lbf.default_config()), GridNetConfig(), 0)


def test_config_defaults_and_validation() -> None:
    cfg = GridNetConfig()
    assert (cfg.lr, cfg.gamma, cfg.gae_lambda, cfg.clip, cfg.epochs, cfg.episodes_per_iteration,
            cfg.entropy_coef, cfg.grad_clip) == (5e-4, 0.99, 0.95, 0.2, 4, 4, 0.01, 10.0)
    with pytest.raises(ConfigError, match="channels"):
        from_dict(GridNetConfig, {"channels": 0})
    with pytest.raises(ConfigError, match="source"):
        from_dict(GridNetConfig, {"features": {"source": "oracle"}})


# ------------------------------------------------------------------------------ network and inputs


@pytest.mark.parametrize(("H", "W", "depth"), [(12, 12, 3), (7, 5, 3), (50, 50, 3), (3, 9, 1)])
def test_encoder_decoder_restores_the_grid(H: int, W: int, depth: int) -> None:
    net = GridNetModule(3, 9, channels=4, depth=depth, hidden=8)
    logits, v = net(torch.randn(2, 3, H, W))
    assert logits.shape == (2, 9, H, W) and v.shape == (2,)


def test_inputs_and_forward_shapes_on_coverage_small() -> None:
    env = _env()
    lr = _learner(env=env)
    core = env.core
    env.reset(seed=0, options={"positions": [[0, 0], [0, 0], [5, 7]]})
    env.step({a: core.stay_action for a in env.agents})
    x = grid_inputs(core, lr.features)
    assert x.shape == (3, 12, 12) and x.dtype == np.float32
    frame = int(core.frame_index(core.t)[0])
    np.testing.assert_allclose(x[0], core.frames[frame] / core.obs_div, rtol=1e-6)  # source truth: F_t
    assert x[1, 0, 0] == pytest.approx(2 / 3) and x[1, 5, 7] == pytest.approx(1 / 3) and x[1].sum() == pytest.approx(1)
    assert np.all(x[2] == pytest.approx(1 / 8))
    logits, v = lr.net(torch.from_numpy(np.stack([x, x])))
    assert logits.shape == (2, 9, 12, 12) and v.shape == (2,)
    per_agent = agent_logits(logits, torch.as_tensor([[[0, 0], [0, 0], [5, 7]]] * 2))
    assert per_agent.shape == (2, 3, 9)
    assert torch.equal(per_agent[1, 2], logits[1, :, 5, 7]) and torch.equal(per_agent[0, 1], per_agent[0, 0])
    # source none: no demand channel at all
    none = _learner(env=env, features={"source": "none"})
    assert not grid_inputs(core, none.features)[0].any()


def test_joint_log_prob_is_the_sum_over_agents_of_their_cells_log_softmax() -> None:
    lr = _learner()
    env = lr.env
    env.reset(seed=1, options={"positions": [[0, 0], [4, 4], [11, 3]]})
    x = torch.from_numpy(grid_inputs(env.core, lr.features))[None]
    pos = torch.as_tensor(env.core.pos[0])[None]
    avail = torch.as_tensor(env.core.action_masks()[0])[None]
    actions = torch.tensor([[8, 0, 5]])
    with torch.no_grad():
        logp, ent, _ = lr.evaluate_actions(x, pos, avail, actions)
        logits, _ = lr.net(x)
    expected, ents = 0.0, []
    for i, (px, py) in enumerate(pos[0].tolist()):
        lg = logits[0, :, px, py].masked_fill(~avail[0, i], -1e9)
        ls = torch.log_softmax(lg, -1)
        expected += float(ls[actions[0, i]])
        ents.append(float(-(ls.exp() * ls.clamp(min=-1e8)).sum()))
    assert float(logp[0]) == pytest.approx(expected, rel=1e-5)
    assert float(ent[0]) == pytest.approx(np.mean(ents), rel=1e-5)


# ------------------------------------------------------------------------------ masks


def test_masked_moves_are_never_chosen() -> None:
    lr = _learner()
    # make every off-grid move of a corner agent the most likely unmasked action
    bias = lr.net.policy.bias
    assert bias is not None
    with torch.no_grad():
        bias.zero_()
        bias[[0, 1, 2, 3, 6]] = 50.0
    env = _env()
    corners = [[0, 0], [0, 11], [11, 0]]
    obs, _ = env.reset(seed=5, options={"positions": corners})
    for explore in (False, True):
        lr.policy.reset(env, 5)
        for _ in range(20):
            acts = lr.policy.act(obs, explore=explore)
            assert set(acts) == set(env.agents)
            for a, x in acts.items():
                assert env.action_mask(a)[x], (a, x, explore)
    # training collection as well: every stored action was available
    ep = lr.collect_episode()
    assert np.take_along_axis(ep["avail"][:-1], ep["actions"][..., None], -1).all()


def test_agents_in_one_cell_sample_independently() -> None:
    lr = _learner()
    env = _env()
    obs, _ = env.reset(seed=2, options={"positions": [[6, 6]] * 3})
    lr.policy.reset(env, 0)
    draws = np.array([[lr.policy.act(obs, explore=True)[a] for a in env.agents] for _ in range(30)])
    assert (draws != draws[:, :1]).any()  # not one action per cell
    greedy = lr.policy.act(obs)
    assert len(set(greedy.values())) == 1  # the mode of one cell's distribution


# ------------------------------------------------------------------------------ training and resume


def test_train_iterations_return_finite_named_terms() -> None:
    lr = _learner(features=SMALL_GDI)
    before = [p.detach().clone() for p in lr.net.parameters()]
    m = lr.train_iteration()
    expected = {"policy_loss", "value_loss", "entropy", "loss", "clip_frac", "approx_kl", "grad_norm",
                "episode_return", "team_return", "episode_length", "updates", "feature_fits", "gdi_loss"}
    assert expected <= set(m)
    assert all(isinstance(v, float) and np.isfinite(v) for v in m.values()), m
    # exploration (1 episode) + 2 training episodes of T = 8; initial fit + a refit after each episode
    assert lr.env_steps == 3 * 8 and lr.episodes == 2 and m["feature_fits"] == 3.0
    assert m["updates"] == 2 * 2 and m["episode_length"] == 8.0
    assert lr.features.maps[0][0].any()  # GDI-Net's estimate now drives the demand channel
    m2 = lr.train_iteration()
    assert lr.env_steps == 5 * 8 and m2["updates"] == 8.0
    assert any(not torch.equal(a, b) for a, b in zip(before, lr.net.parameters(), strict=True))
    eps = evaluate(lr.policy, _env(), 1, 0)
    assert eps[0]["length"] == 8 and np.isfinite(eps[0]["AC"])


def test_state_dict_round_trip_through_a_file_resumes_exactly(tmp_path: Path) -> None:
    a = _learner(features=SMALL_GDI, greedy_eval=False)
    a.train_iteration()
    path = tmp_path / "gridnet.pt"
    torch.save(a.state_dict(), path)
    b = _learner(features=SMALL_GDI, greedy_eval=False)
    b.load_state_dict(torch.load(path, weights_only=True))
    assert b.env_steps == a.env_steps and b.explored
    for _ in range(2):
        assert a.train_iteration() == b.train_iteration()
    for x, y in zip(state_tensors(a.state_dict()), state_tensors(b.state_dict()), strict=True):
        assert torch.equal(x, y)
    # the same evaluation (sampling policy: greedy_eval=false), apart from wall-clock timings
    ea = [{k: v for k, v in e.items() if k not in TIMING_KEYS} for e in evaluate(a.policy, _env(), 2, 7)]
    eb = [{k: v for k, v in e.items() if k not in TIMING_KEYS} for e in evaluate(b.policy, _env(), 2, 7)]
    assert ea == eb
    with pytest.raises(CheckpointError, match="checkpoint does not match"):
        _learner(features={"source": "truth"}).load_state_dict(torch.load(path, weights_only=True))


# ------------------------------------------------------------------------------ the real CLI


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    # the lead's package import registers gridnet for 'python -m hieralloc'; importing the module
    # explicitly first keeps this test independent of that line
    code = ("import sys, hieralloc.algos.hgrl.gridnet; from hieralloc.cli import main; "
            "raise SystemExit(main(sys.argv[1:]))")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
                          check=False, env={**os.environ, "PYTHONHASHSEED": "0"})


def test_cli_train_smoke_and_one_line_errors(tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = _cli("train", "coverage-small", "gridnet", "train.steps=24", "train.eval_episodes=1",
             "train.checkpoint_every=16", "algo.episodes_per_iteration=1", "algo.epochs=1", "algo.channels=8",
             "algo.features.explore_episodes=1", "algo.features.initial_steps=5", "algo.features.refit_steps=2",
             "algo.features.gdinet.d=8", "algo.features.gdinet.hidden=16", "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["algo"] == "gridnet" and summary["steps"] == 24  # 8 exploration + 2 x 8 training
    assert np.isfinite(summary["final"]["AC"])
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in rows if x["phase"] == "train"] == [16, 24]
    assert len(list((out / "checkpoints").glob("ckpt_*.pt"))) >= 1
    r = _cli("train", "coverage-small", "gridnet", "algo.features.source=oracle", "--out", str(tmp_path / "bad"))
    assert r.returncode != 0 and r.stderr.count("\n") == 1 and "algo.features.source" in r.stderr
