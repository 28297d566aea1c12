"""LPMARL trained on mixed problem sizes (``algo.size_range``; paper 002 Sec. 5.1.2 / Table 2: "the policy
learned from 3 <= N, M <= 10"): config checks, the per-episode (N, M) draw, dead padding of the replay
(packed graphs and low-level fields) and that it leaves the losses unchanged, training of the learned
variants, exact resume, evaluation on other sizes, and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conftest import state_tensors
from hieralloc import registry
from hieralloc.algos.lpmarl import VARIANTS
from hieralloc.algos.lpmarl.buffer import pad_agents
from hieralloc.algos.lpmarl.graph import NavigationFamily, graph_width, pack_graph, pad_graph, pad_packed, unpack_graph
from hieralloc.config import from_dict
from hieralloc.errors import CheckpointError, ConfigError, IncompatibleError
from hieralloc.eval import evaluate

torch.set_num_threads(1)
registry.load_builtins()

TINY: dict[str, Any] = {"gnn_units": [8, 8], "cost_units": [16], "policy_units": [16, 16], "critic_units": [16],
                        "batch_size": 2, "buffer_size": 6, "eps_anneal_steps": 300}
SHORT = 10  # steps per navigation episode in these tests


def _env(name: str = "navigation", **values: Any) -> Any:
    spec = registry.get_env(name)
    if name == "navigation":
        values = {"episode_length": SHORT, **values}
    return spec.make(spec.default_config(**values))


def _build(algo: str, env: Any = None, seed: int = 3, **extra: Any) -> Any:
    spec = registry.get_algo(algo)
    cfg: Any = from_dict(spec.config_cls, {**TINY, **extra})
    return spec.build(env if env is not None else _env(), cfg, seed)


# --- config and refusals ---------------------------------------------------------------------------------

def test_size_range_validation_in_every_variant() -> None:
    for algo in VARIANTS:
        cls = registry.get_algo(algo).config_cls
        assert from_dict(cls, {}).size_range == ()
        assert from_dict(cls, {"size_range": [3, 10]}).size_range == (3, 10)
        assert from_dict(cls, {"size_range": [4, 4]}).size_range == (4, 4)
        with pytest.raises(ConfigError, match=r"size_range.*1 <= lo <= hi.*got \[5, 3\]; write \[3, 5\]"):
            from_dict(cls, {"size_range": [5, 3]})
        for bad in ([0, 3], [3], [3, 5, 7]):
            with pytest.raises(ConfigError, match="size_range") as e:
                from_dict(cls, {"size_range": bad})
            assert e.value.key.endswith("size_range")


def test_size_range_is_refused_where_sizes_cannot_be_drawn() -> None:
    # combat's sizes are its maps
    with pytest.raises(IncompatibleError, match="size_range.*combat"):
        _build("lpmarl", env=_env("combat-3v3"), size_range=[3, 5])
    # fixed capacities fit one (N, M) only
    with pytest.raises(IncompatibleError, match="env.capacities"):
        _build("lpmarl", env=_env(n_agents=4, n_landmarks=2, capacities=[2, 2]), size_range=[3, 5])


# --- padding ----------------------------------------------------------------------------------------------

def test_pad_packed_is_packing_the_dead_padded_graph() -> None:
    env = _env(n_agents=3, n_landmarks=2)
    fam = NavigationFamily(env)
    fa, ft = fam.agent_dim, fam.task_dim
    graphs = []
    for seed in (0, 1):
        env.reset(seed=seed)
        graphs.append(fam.graph(env))
    g = graphs[0]
    x = pack_graph(g)
    assert pad_packed(x, 3, 2, 3, 2, fa, ft) is x  # nothing to pad
    padded = pad_packed(x, 3, 2, 5, 4, fa, ft)
    assert padded.shape == (5, graph_width(5, 4, fa, ft)) and padded.dtype == np.float32
    assert np.array_equal(padded, pack_graph(pad_graph(g, 5, 4)))
    # leading axes (an episode's decisions) pad graph by graph
    stacked = np.stack([pack_graph(h) for h in graphs])
    assert np.array_equal(pad_packed(stacked, 3, 2, 5, 4, fa, ft),
                          np.stack([pack_graph(pad_graph(h, 5, 4)) for h in graphs]))
    # unpacked: the real nodes unchanged, the padding dead, with capacity 0 and no edges
    b = unpack_graph(torch.from_numpy(padded), 4, fa, ft)
    assert b.agent_alive[0].tolist() == [True] * 3 + [False] * 2
    assert b.task_alive[0].tolist() == [True] * 2 + [False] * 2
    assert b.capacity[0].tolist() == [*g.capacity.tolist(), 0, 0]
    assert torch.equal(b.agent_x[0, :3], torch.as_tensor(g.agent_x, dtype=torch.float32))
    assert torch.equal(b.task_x[0, :2], torch.as_tensor(g.task_x, dtype=torch.float32))
    assert not b.agent_x[0, 3:].any() and not b.task_x[0, 2:].any()
    assert torch.equal(b.visible[0, :3, :2], torch.as_tensor(g.visible))
    assert not b.visible[0, 3:].any() and not b.visible[0, :, 2:].any()
    assert torch.equal(b.agent_visible[0, :3, :3], torch.as_tensor(g.agent_visible))
    assert not b.agent_visible[0, 3:].any() and not b.agent_visible[0, :, 3:].any()
    assert not b.allowed[0, 3:].any() and not b.allowed[0, :, 2:].any()
    # every row repeats the task block, padded rows too
    t = fa + 1 + 4 + 5
    assert (padded[:, t:] == padded[:1, t:]).all()
    with pytest.raises(ValueError, match="down to"):
        pad_packed(x, 3, 2, 2, 2, fa, ft)
    with pytest.raises(ValueError, match="expected"):
        pad_packed(x, 3, 3, 5, 5, fa, ft)


def test_pad_agents() -> None:
    a = np.arange(12, dtype=np.float32).reshape(2, 3, 2)
    p = pad_agents(a, 5, 0.0)
    assert p.shape == (2, 5, 2) and np.array_equal(p[:, :3], a) and not p[:, 3:].any()
    t = pad_agents(np.zeros((4, 3), dtype=np.int64), 4, -1)
    assert (t[:, 3] == -1).all() and t.dtype == np.int64
    assert pad_agents(a, 3) is a


@pytest.mark.parametrize("algo", ["lpmarl", "dec-lpmarl", "lpmarl-nolp"])
def test_dead_padding_leaves_the_update_unchanged(algo: str) -> None:
    """The same two 3 x 3 episodes, replayed unpadded and padded to 5 x 5 with dead agents and tasks:
    identical losses and identical networks after two gradient steps."""
    a = _build(algo, env=_env(n_agents=3, n_landmarks=3), updates_per_episode=0)
    for _ in range(2):
        a.train_iteration()
    b = _build(algo, env=_env(n_agents=3, n_landmarks=3), updates_per_episode=0, size_range=[3, 5])
    assert (b.n_agents, b.n_tasks) == (5, 5)
    idx = torch.arange(2)
    lo, hi = a.low_buf.gather(idx), a.high_buf.gather(idx)
    for i in range(2):
        L, K = int(lo["length"][i]), int(hi["length"][i])
        b.store_low(L, 3, {k: v[i, :L].numpy() for k, v in lo.items() if k not in ("mask", "length")})
        b.store_high(K, 3, 3, {k: v[i, :K + 1 if k == "x" else K].numpy() for k, v in hi.items()
                               if k not in ("mask", "length")})
    assert b.low_buf.data["alive"].shape[2] == 5 and not b.low_buf.data["alive"][:, :, 3:].any()
    assert (b.low_buf.data["task"][:, :, 3:] == -1).all()
    assert b.high_buf.data["x"].shape[-2:] == (5, graph_width(5, 5, 5, 4))
    b.rng.bit_generator.state = a.rng.bit_generator.state
    b.env_steps, b.episodes = a.env_steps, a.episodes
    for x, y in zip(state_tensors(a._modules()), state_tensors(b._modules()), strict=True):
        assert torch.equal(x, y)  # the same initial networks
    for _ in range(2):
        oa, ob = a.update(), b.update()
        assert set(oa) == set(ob)
        for k in oa:
            assert ob[k] == pytest.approx(oa[k], rel=1e-5, abs=1e-6), k
    for x, y in zip(state_tensors(a._modules()), state_tensors(b._modules()), strict=True):
        assert torch.allclose(x, y, rtol=1e-5, atol=1e-6)


# --- the draw, training, resume, evaluation ---------------------------------------------------------------

def test_sizes_drawn_within_range_with_m_at_most_n() -> None:
    lr = _build("lpmarl-greedy", size_range=[3, 6])
    draws = [lr.draw_size() for _ in range(400)]
    assert all(3 <= m <= n <= 6 for n, m in draws)
    # every feasible pair occurs; N is uniform on [3, 6] (100 draws each on average)
    assert set(draws) == {(n, m) for n in range(3, 7) for m in range(3, n + 1)}
    counts = np.bincount([n for n, _ in draws], minlength=7)[3:]
    assert counts.min() > 60, counts
    same = _build("lpmarl-greedy", size_range=[3, 6])
    assert [same.draw_size() for _ in range(400)] == draws  # the learner's generator, seeded


@pytest.mark.parametrize("algo", ["lpmarl", "dec-lpmarl", "lpmarl-nolp"])
def test_mixed_size_training_runs(algo: str) -> None:
    lr = _build(algo, size_range=[3, 5])
    sizes, ms = set(), []
    for _ in range(5):
        m = lr.train_iteration()
        ms.append(m)
        sizes.add((m["size/n_agents"], m["size/n_tasks"]))
    assert all(isinstance(v, float) and np.isfinite(v) for m in ms for v in m.values())
    assert all(3 <= t <= n <= 5 for n, t in sizes) and len(sizes) > 1, sizes
    assert {"low/critic_loss", "low/actor_loss", "high/critic_loss", "high/actor_loss", "actor_loss"} <= set(ms[-1])
    if algo == "dec-lpmarl":
        assert np.isfinite(ms[-1]["dec/bc_loss"])
    assert lr.updates == 4
    # replay: every episode padded to (5, 5); per step, the living agents are the episode's N
    data = lr.low_buf.data
    assert data["obs"].shape[2] == 5 and lr.high_buf.data["x"].shape[-2:] == (5, graph_width(5, 5, 5, 4))
    n_alive = data["alive"][: lr.low_buf.size, 0].sum(-1).tolist()
    assert sorted(n_alive) == sorted(int(m["size/n_agents"]) for m in ms)
    # the envs of the drawn sizes are cached, one per size, with the training env's other settings
    assert set(lr._sized_envs) >= {(int(n), int(t)) for n, t in sizes}
    assert all(e.config.episode_length == SHORT for e in lr._sized_envs.values())
    # the Fig. 2 snapshot of the last training state, at its size
    snap = lr.cost_snapshot()
    assert snap["costs"].shape == (int(ms[-1]["size/n_agents"]), int(ms[-1]["size/n_tasks"]))


def test_resume_continues_exactly(tmp_path: Path) -> None:
    a = _build("lpmarl", size_range=[3, 5])
    for _ in range(3):
        a.train_iteration()
    path = tmp_path / "state.pt"
    torch.save(a.state_dict(), path)
    b = _build("lpmarl", size_range=[3, 5])
    b.load_state_dict(torch.load(path, weights_only=True))
    for _ in range(3):
        assert a.train_iteration() == b.train_iteration()
    for x, y in zip(state_tensors(a.state_dict()), state_tensors(b.state_dict()), strict=True):
        assert torch.equal(x, y)
    # a learner storing another number of agents refuses the replay with a clear message
    c = _build("lpmarl", env=_env(n_agents=3, n_landmarks=3))
    with pytest.raises(CheckpointError, match="replay stores 5 agents"):
        c.load_state_dict(torch.load(path, weights_only=True))


def test_mixed_size_policy_evaluates_on_other_sizes() -> None:
    lr = _build("dec-lpmarl", size_range=[3, 5])
    for _ in range(3):
        lr.train_iteration()
    for n, m in ((8, 4), (3, 3)):
        for pol in (lr.policy, lr.central_policy):
            eps = evaluate(pol, _env(n_agents=n, n_landmarks=m), 1, 7)
            assert eps[0]["length"] == SHORT and "win" in eps[0] and "min_distance" in eps[0]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hieralloc", *args], capture_output=True, text=True, timeout=300,
                          check=False)


def test_cli_trains_on_a_size_range_and_rejects_a_reversed_one(tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = _cli("train", "navigation", "lpmarl", "algo.size_range=[3,5]", "train.steps=40", f"env.episode_length={SHORT}",
             "train.eval_episodes=1", "algo.batch_size=2", "algo.gnn_units=[8,8]", "algo.cost_units=[8]",
             "algo.critic_units=[8]", "algo.policy_units=[8]", "--seed", "1", "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["algo"] == "lpmarl" and summary["steps"] == 40
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    sizes = {(m["size/n_agents"], m["size/n_tasks"]) for m in metrics if "size/n_agents" in m}
    assert sizes and all(3 <= t <= n <= 5 for n, t in sizes), metrics
    r = _cli("train", "navigation", "lpmarl", "algo.size_range=[5,3]", "--out", str(tmp_path / "bad"), "--quiet")
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "size_range" in lines[0], r.stderr
    assert "write [3, 5]" in lines[0]
    assert not (tmp_path / "bad").exists()
