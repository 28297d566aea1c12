"""The OHIO learners on the synthetic mobility city with a real collected dataset: every registered
learner through run_training in both formulations, exact resume, the dataset check before
training, the Observed State goals, the fine-tuning protocol of OHIO App. B.5.2, bad input, and
a CLI smoke run."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conftest import run_cli, state_tensors
from hieralloc import registry
from hieralloc.algos import ohio
from hieralloc.config import from_dict
from hieralloc.errors import ConfigError, DataError
from hieralloc.ohio.collect import collect
from hieralloc.ohio.dataset import OfflineDataset
from hieralloc.runs import RunDir
from hieralloc.train import run_training

torch.set_num_threads(1)
registry.load_builtins()

ENV = "mobility-synthetic"
OFFLINE = sorted(n for n in ohio.LEARNERS if n != "sac")
TINY = {"hidden": 16, "edge_hidden": 8, "batch_size": 8, "updates_per_iteration": 5, "buffer_size": 200,
        "cql_n_actions": 3}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three episodes of PROP on the synthetic city, collected by the real collect path."""
    return collect(ENV, "prop", 3, seed=0, out=tmp_path_factory.mktemp("data") / "prop")


def _env(mode: str = "goal", **extra: Any) -> Any:
    spec = registry.get_env(ENV)
    return spec.make(spec.default_config(action_mode=mode, **extra))


def _tiny(name: str) -> dict[str, Any]:
    """TINY restricted to the keys the learner's config has."""
    keys = {f.name for f in dataclasses.fields(registry.get_algo(name).config_cls)}
    return {k: v for k, v in TINY.items() if k in keys}


def _build(name: str, mode: str = "goal", seed: int = 3, **extra: Any) -> Any:
    spec = registry.get_algo(name)
    cfg: Any = from_dict(spec.config_cls, {**_tiny(name), **extra})
    return spec.build(_env(mode), cfg, seed)


def _overrides(name: str, mode: str, dataset: Path, **algo: Any) -> list[str]:
    values = {**_tiny(name), **({"dataset": str(dataset)} if name != "sac" else {}), **algo}
    return [f"env.action_mode={mode}", *(f"algo.{k}={v}" for k, v in values.items())]


def test_learners_are_registered_for_network_families() -> None:
    assert set(ohio.LEARNERS) == {"sac", "ohio-bc", "ohio-iql", "ohio-cql", "ohio-calql"}
    for name in ohio.LEARNERS:
        caps = registry.get_algo(name).caps
        assert caps.learns and caps.continuous and not caps.discrete
        assert caps.families == ("mobility", "supply")


def test_mobility_architecture_follows_ohio_b33() -> None:
    net = _build("sac", "flow", edge_hidden=0).view.net
    # one GCN layer, 2 hidden layers + output in the node head, an edge convolution as wide as the nodes
    assert (net.encoder, net.conv_layers, net.mlp_layers, net.edge_layers) == ("gcn", 1, 2, 2)
    assert net.edge_hidden == net.hidden == 16 and net.edge_dim == 0  # the GCN reads no edge features
    sac = _build("sac", "flow")
    assert sac.spec.kind == "flow" and sac.spec.edge_dist == "gaussian" and sac.spec.dim == 90  # 10 x 9 edges


@pytest.mark.parametrize("mode", ["goal", "flow"])
@pytest.mark.parametrize("name", sorted(ohio.LEARNERS))
def test_every_learner_trains_through_run_training(name: str, mode: str, dataset: Path, tmp_path: Path) -> None:
    steps = 20 if name == "sac" else 10  # sac: one episode; offline: two iterations of 5 gradient steps
    out = run_training(ENV, name, overrides=[*_overrides(name, mode, dataset), f"train.steps={steps}",
                                             "train.eval_episodes=1"], seed=1, out=tmp_path / "run")
    rd = RunDir(out)
    summary = json.loads(rd.summary_path.read_text())
    assert summary["steps"] == steps and np.isfinite(summary["final"]["return"])
    train = [m for m in rd.read_metrics() if m["phase"] == "train"]
    assert train and all(np.isfinite(v) for m in train for v in m.values() if isinstance(v, float))
    assert train[-1]["gradient_steps"] > 0
    if name == "sac":
        assert "violation" in train[-1] and "episode_return" in train[-1]
        if mode == "flow":  # Fig. 9: the end-to-end policy's projections are logged
            assert train[-1]["violation"] > 0
    assert "violation" in summary["final"]
    if mode == "goal":
        assert summary["final"]["violation"] == 0.0


def _round_trip(a: Any, b_factory: Any, tmp_path: Path, iterations: int = 2) -> None:
    for _ in range(iterations):
        a.train_iteration()
    torch.save(a.state_dict(), tmp_path / "state.pt")
    b = b_factory()
    b.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    for _ in range(2):
        assert a.train_iteration() == b.train_iteration()
    for x, y in zip(state_tensors(a.state_dict()), state_tensors(b.state_dict()), strict=True):
        assert torch.equal(x, y)


@pytest.mark.parametrize(("name", "mode", "extra"), [
    ("sac", "goal", {}),
    ("sac", "flow", {}),
    ("ohio-bc", "goal", {}),
    ("ohio-iql", "flow", {}),
    ("ohio-cql", "goal", {"lagrange": True}),
    ("ohio-calql", "goal", {}),
    ("ohio-iql", "goal", {"offline_steps": 5, "freeze_episodes": 1}),  # offline, then online fine-tuning
])
def test_exact_state_dict_round_trip(name: str, mode: str, extra: dict[str, Any], dataset: Path,
                                     tmp_path: Path) -> None:
    if name != "sac":
        extra = {**extra, "dataset": str(dataset)}
    _round_trip(_build(name, mode, **extra), lambda: _build(name, mode, **extra), tmp_path)


@pytest.mark.parametrize("name", ["ohio-cql", "sac"])
def test_resume_from_a_checkpoint_matches_the_unbroken_run(name: str, dataset: Path, tmp_path: Path) -> None:
    steps, every = (40, 20) if name == "sac" else (20, 10)
    args = [*_overrides(name, "goal", dataset), f"train.steps={steps}", f"train.checkpoint_every={every}",
            "train.eval_episodes=1"]
    full = run_training(ENV, name, overrides=args, seed=2, out=tmp_path / "full")
    # a copy interrupted after its first checkpoint: later checkpoint and summary gone
    broken = tmp_path / "broken"
    shutil.copytree(full, broken)
    ckpts = RunDir(broken).checkpoints()
    assert [s for s, _ in ckpts] == [every, steps]
    ckpts[-1][1].unlink()
    RunDir(broken).summary_path.unlink()
    run_training(ENV, name, overrides=args, seed=2, out=broken, resume=True)
    untimed = ("train_min",)
    a, b = RunDir(full), RunDir(broken)
    fa = {k: v for k, v in json.loads(a.summary_path.read_text())["final"].items() if k not in untimed}
    fb = {k: v for k, v in json.loads(b.summary_path.read_text())["final"].items() if k not in untimed}
    assert {k: v for k, v in fa.items() if not k.endswith("_ms")} == {k: v for k, v in fb.items()
                                                                      if not k.endswith("_ms")}
    strip = [{k: v for k, v in m.items() if not k.endswith("_ms")} for m in a.read_metrics()]
    assert strip == [{k: v for k, v in m.items() if not k.endswith("_ms")} for m in b.read_metrics()]


def test_a_dataset_of_another_graph_is_rejected_before_training(dataset: Path, tmp_path: Path) -> None:
    spec = registry.get_algo("ohio-iql")
    cfg: Any = from_dict(spec.config_cls, {**_tiny("ohio-iql"), "dataset": str(dataset)})
    other = registry.get_env(ENV)
    env = other.make(other.default_config(synthetic_regions=8))
    with pytest.raises(DataError, match="collected on mobility-synthetic"):
        spec.build(env, cfg, 0)
    with pytest.raises(DataError, match="differs in"):
        run_training(ENV, "ohio-iql", overrides=[*_overrides("ohio-iql", "goal", dataset), "env.data_seed=5",
                                                 "train.steps=10"], out=tmp_path / "run")
    assert RunDir(tmp_path / "run").read_metrics() == []  # nothing was trained


def test_observed_state_goals_are_the_next_idle_distribution(dataset: Path) -> None:
    ds = OfflineDataset.load(dataset)
    obs = _build("ohio-bc", dataset=str(dataset), goals="observed")
    inv = _build("ohio-bc", dataset=str(dataset))
    assert obs.data is not None and inv.data is not None
    a_obs, a_inv = obs.data.data["action"].numpy(), inv.data.data["action"].numpy()
    idle = ds.next_aux[:, : ds.n_nodes]
    np.testing.assert_allclose(a_obs, idle / idle.sum(axis=1, keepdims=True), rtol=1e-6)
    np.testing.assert_allclose(a_inv, ds.goals(ohio.GraphView(_env(), obs.cfg, "x").formulation), rtol=1e-6)
    assert not np.allclose(a_obs, a_inv)  # arrivals and the next matching move vehicles after the rebalancing


def test_finetuning_freezes_the_policy_then_mixes_less_offline_data(dataset: Path) -> None:
    learner = _build("ohio-iql", dataset=str(dataset), offline_steps=5, freeze_episodes=1, mix_episodes=2)
    m0 = learner.train_iteration()
    assert "episode_return" not in m0 and learner.env_steps == 5  # offline: gradient steps
    actor = [p.clone() for p in learner.actor.parameters()]
    critic = [p.clone() for p in learner.q1.parameters()]
    m1 = learner.train_iteration()  # first online episode: policy frozen, half the batch offline
    assert m1["policy_frozen"] == 1.0 and m1["offline_fraction"] == 0.5 and "actor_loss" not in m1
    assert all(torch.equal(a, b) for a, b in zip(actor, learner.actor.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(critic, learner.q1.parameters(), strict=True))
    assert learner.env_steps == 5 + 20 and learner.online_steps == 20
    m2 = learner.train_iteration()
    assert m2["policy_frozen"] == 0.0 and m2["offline_fraction"] == 0.25 and "actor_loss" in m2
    assert any(not torch.equal(a, b) for a, b in zip(actor, learner.actor.parameters(), strict=True))
    assert learner.train_iteration()["offline_fraction"] == 0.0


def test_sac_fine_tunes_a_pretrained_run(dataset: Path, tmp_path: Path) -> None:
    pre = run_training(ENV, "ohio-iql", overrides=[*_overrides("ohio-iql", "goal", dataset), "train.steps=5",
                                                   "train.eval_episodes=1"], out=tmp_path / "pre")
    trained = RunDir(pre)
    state = torch.load(trained.checkpoints()[-1][1], weights_only=True)["payload"]["learner"]
    sac = _build("sac", finetune_from=str(pre), dataset=str(dataset), freeze_episodes=1)
    for name in ("actor", "q1", "q2"):
        for key, value in state[name].items():
            assert torch.equal(getattr(sac, name).state_dict()[key], value), (name, key)
    m = sac.train_iteration()
    assert m["policy_frozen"] == 1.0 and m["offline_fraction"] == 0.5
    assert sac.train_iteration()["policy_frozen"] == 0.0
    # an end-to-end run cannot seed an OHIO policy
    e2e = run_training(ENV, "ohio-bc", overrides=[*_overrides("ohio-bc", "flow", dataset), "train.steps=5",
                                                  "train.eval_episodes=1"], out=tmp_path / "e2e")
    with pytest.raises(ConfigError, match="finetune_from"):
        _build("sac", finetune_from=str(e2e))
    with pytest.raises(ConfigError, match="does not exist"):
        _build("sac", finetune_from=str(tmp_path / "nowhere"))


def test_bad_configurations_fail_with_one_clear_message(dataset: Path) -> None:
    with pytest.raises(ConfigError, match="algo.dataset=DIR"):
        _build("ohio-iql")
    with pytest.raises(ConfigError, match="env.action_mode=flow"):
        _build("ohio-iql", dataset=str(dataset), formulation="e2e")
    with pytest.raises(ConfigError, match="finetune_from"):
        _build("ohio-bc", dataset=str(dataset), offline_steps=10)
    with pytest.raises(ConfigError, match="goals"):
        _build("ohio-iql", mode="flow", dataset=str(dataset), goals="observed", formulation="e2e")
    with pytest.raises(DataError, match="does not exist"):
        _build("ohio-iql", dataset=str(dataset) + "-missing")


def test_behaviour_cloning_fits_the_inverted_goals(dataset: Path) -> None:
    bc = _build("ohio-bc", dataset=str(dataset), updates_per_iteration=40, actor_lr=3e-3, batch_size=30)
    assert bc.data is not None
    batch = bc.data.get(np.arange(len(bc.data)))

    def nll() -> float:
        with torch.no_grad():
            return float(-bc.actor_dist(batch["x"], batch["edge_attr"]).log_prob(batch["action"]).mean())

    before = nll()
    for _ in range(3):
        bc.train_iteration()
    assert nll() < before - 1.0


def test_cli_trains_and_evaluates_an_offline_learner(dataset: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from hieralloc.cli import main

    out = tmp_path / "cli"
    r = run_cli("train", ENV, "ohio-iql", f"algo.dataset={dataset}", "algo.hidden=16", "algo.batch_size=8",
                "algo.updates_per_iteration=5", "train.steps=10", "train.eval_episodes=1", "--out", str(out),
                "--quiet")  # the real entry point, in a subprocess
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["algo"] == "ohio-iql" and summary["steps"] == 10
    assert main(["eval", str(out), "--episodes", "1", "--quiet"]) == 0  # reloads the checkpoint
    capsys.readouterr()
    assert main(["train", ENV, "ohio-iql", "train.steps=10", "--out", str(tmp_path / "bad"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "algo.dataset=DIR" in err and len(err.splitlines()) == 1


def test_a_trained_policy_runs_on_a_city_of_another_size(dataset: Path, tmp_path: Path) -> None:
    """OHIO Fig. 8b's setting (NYC -> Shenzhen): the networks are shared over nodes and edges."""
    from hieralloc.algos.ohio import policy_from_run
    from hieralloc.eval import evaluate

    run = run_training(ENV, "ohio-bc", overrides=[*_overrides("ohio-bc", "goal", dataset), "train.steps=5",
                                                  "train.eval_episodes=1"], out=tmp_path / "run")
    other = _env(synthetic_regions=7, data_seed=4)
    policy = policy_from_run(run, other)
    assert policy.learner.spec.dim == 7
    ep = evaluate(policy, other, 1, 0)[0]
    assert ep["length"] == 20.0 and np.isfinite(ep["return"])
    with pytest.raises(ConfigError, match="not a run directory"):
        policy_from_run(tmp_path / "nothing", other)
