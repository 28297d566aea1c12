"""Starting an LPMARL learner from a trained run (``algo.finetune_from``) and Dec-LPMARL's centralised
evaluation (``algo.evaluate_central``): what the lpmarl-table1 / lpmarl-transfer presets rely on.

* a dec-lpmarl run trains exactly what an lpmarl run with the same seed trains (the imitating student
  never feeds back), so the LPMARL row of Table 1 can be evaluated from the Dec-LPMARL run;
* finetune_from loads every network of the source's newest checkpoint, on any (N, M) (Table 2), and
  refuses another variant, a missing path, a run without checkpoint, or other network sizes;
* through the real CLI, a zero-shot cell (train.steps=0) evaluates the loaded policy on another size,
  and a failed start leaves no run directory behind;
* ``hieralloc eval`` / ``plot`` of such a run do not need its source any more.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from hieralloc import registry
from hieralloc.config import from_dict
from hieralloc.errors import CheckpointError, ConfigError

torch.set_num_threads(1)
registry.load_builtins()

TINY = ["algo.gnn_units=[8,8]", "algo.cost_units=[16]", "algo.policy_units=[16,16]", "algo.critic_units=[16]",
        "algo.batch_size=2", "algo.buffer_size=6", "algo.eps_anneal_steps=300"]
TINY_CFG: dict[str, Any] = {"gnn_units": [8, 8], "cost_units": [16], "policy_units": [16, 16], "critic_units": [16],
                            "batch_size": 2, "buffer_size": 6, "eps_anneal_steps": 300}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hieralloc", "--quiet", *args], capture_output=True, text=True,
                          timeout=300)


def _build(env: str, algo: str, seed: int = 5, **extra: Any) -> Any:
    spec, algo_spec = registry.get_env(env), registry.get_algo(algo)
    cfg: Any = from_dict(algo_spec.config_cls, {**TINY_CFG, **extra})
    return algo_spec.build(spec.make(spec.default_config()), cfg, seed)


@pytest.mark.parametrize("env", ["navigation-3x5", "combat-3v3"])
def test_dec_lpmarl_trains_the_same_lp_networks_as_lpmarl(env: str) -> None:
    a, b = _build(env, "lpmarl"), _build(env, "dec-lpmarl")
    for _ in range(4):
        ma, mb = a.train_iteration(), b.train_iteration()
        assert ma["high_return"] == mb["high_return"] and ma.get("actor_loss") == mb.get("actor_loss")
    for name in ("policy_l", "critic_l", "cost_model", "critic_h"):
        for p, q in zip(getattr(a, name).parameters(), getattr(b, name).parameters(), strict=True):
            assert torch.equal(p, q), name
    central = _build(env, "dec-lpmarl", evaluate_central=True)
    assert central.policy is central.central_policy and not central.policy.decentralised
    assert b.policy is not b.central_policy and b.policy.decentralised


def test_evaluate_central_needs_dec_lpmarl() -> None:
    with pytest.raises(ConfigError, match="evaluate_central"):
        _build("navigation-3x5", "lpmarl", evaluate_central=True)


@pytest.fixture(scope="module")
def source_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("src")
    runs = {}
    for algo in ("dec-lpmarl", "lpmarl-nolp"):
        out = root / algo
        r = _cli("train", "navigation-3x5", algo, *TINY, "train.steps=200", "train.eval_episodes=1", "--seed", "2",
                 "--out", str(out))
        assert r.returncode == 0, r.stderr
        runs[algo] = out
    return runs


def test_finetune_from_loads_every_network_on_another_size(source_runs: dict[str, Path]) -> None:
    src = source_runs["dec-lpmarl"]
    spec = registry.get_env("navigation")
    env = spec.make(spec.default_config(n_agents=9, n_landmarks=4))
    algo = registry.get_algo("dec-lpmarl")
    cfg: Any = from_dict(algo.config_cls, {**TINY_CFG, "finetune_from": str(src)})
    learner = algo.build(env, cfg, 11)
    ckpt = torch.load(sorted((src / "checkpoints").glob("ckpt_*.pt"))[-1], weights_only=True)
    nets = ckpt["payload"]["learner"]["nets"]
    for name, module in learner._modules().items():
        for k, v in module.state_dict().items():
            assert torch.equal(v, nets[name][k]), (name, k)
    assert learner.pretrained.endswith(".pt") and learner.env_steps == 0 and learner.low_buf.size == 0
    env.reset(seed=0)
    snap = learner.cost_snapshot(env)
    assert snap["costs"].shape == (9, 4) and (snap["assignment"].sum(0) <= snap["capacity"]).all()


def test_finetune_from_refuses_bad_sources(source_runs: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="same variant"):
        _build("navigation-3x5", "lpmarl", finetune_from=str(source_runs["dec-lpmarl"]))
    with pytest.raises(ConfigError, match="does not exist"):
        _build("navigation-3x5", "lpmarl", finetune_from=str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no checkpoint"):
        _build("navigation-3x5", "lpmarl", finetune_from=str(tmp_path / "empty"))
    with pytest.raises(CheckpointError, match="network sizes"):
        _build("navigation-3x5", "lpmarl-nolp", finetune_from=str(source_runs["lpmarl-nolp"]), cost_units=[32])


def test_zero_shot_cell_through_the_cli(source_runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "zero-shot"
    r = _cli("train", "navigation", "dec-lpmarl", *TINY, "env.n_agents=8", "env.n_landmarks=5",
             f"algo.finetune_from={source_runs['dec-lpmarl']}", "algo.evaluate_central=true", "train.steps=0",
             "train.eval_episodes=2", "--out", str(out))
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["episodes"]) == 2 and all(0.0 <= e["win"] <= 1.0 for e in summary["episodes"])
    assert all("policy/amortisation_accuracy" not in e for e in summary["episodes"])  # the LP hierarchy acted
    bad = tmp_path / "bad"
    r = _cli("train", "navigation-3x5", "lpmarl", *TINY, f"algo.finetune_from={source_runs['dec-lpmarl']}",
             "train.steps=0", "--out", str(bad))
    assert r.returncode != 0 and "algo.finetune_from" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not bad.exists()


def test_a_run_outlives_the_run_it_started_from(source_runs: dict[str, Path], tmp_path: Path) -> None:
    """``hieralloc eval`` and ``hieralloc plot`` load the run's own checkpoint: the source named by
    algo.finetune_from may be moved or deleted afterwards (a copied results folder)."""
    import shutil

    src = tmp_path / "source"
    shutil.copytree(source_runs["dec-lpmarl"], src)
    out = tmp_path / "tuned"
    r = _cli("train", "navigation-3x5", "dec-lpmarl", *TINY, f"algo.finetune_from={src}", "train.steps=100",
             "train.eval_episodes=1", "--out", str(out))
    assert r.returncode == 0, r.stderr
    shutil.rmtree(src)
    r = _cli("eval", str(out), "--episodes", "1")
    assert r.returncode == 0, r.stderr
    assert list(out.glob("eval-1ep-*.json"))
    r = _cli("plot", str(out), "--out", str(tmp_path / "pics"))
    assert r.returncode == 0, r.stderr
    assert sorted(p.suffix for p in (tmp_path / "pics").iterdir()) == [".json", ".png", ".png"]
