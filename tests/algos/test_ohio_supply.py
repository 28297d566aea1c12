"""The OHIO learners on the supply chain (OHIO App. B.4, B.5.1): the MPNN encoder with edge
features, the Dirichlet + Beta goal head (production as a fraction of capacity), the end-to-end
Beta-per-edge head with production as a producer self-loop, offline training from a collected
dataset and exact resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import hieralloc.envs.supply  # noqa: F401  (registers the supply family)
from conftest import state_tensors
from hieralloc import registry
from hieralloc.config import from_dict
from hieralloc.errors import DataError
from hieralloc.eval import evaluate
from hieralloc.ohio.collect import collect

torch.set_num_threads(1)
registry.load_builtins()

ENV = "supply-1w3s"
TINY = {"hidden": 16, "edge_hidden": 8, "batch_size": 8, "updates_per_iteration": 4, "buffer_size": 100}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return collect(ENV, "heur", 2, seed=0, out=tmp_path_factory.mktemp("supply") / "heur")


def _build(name: str, mode: str, **extra: Any) -> Any:
    spec = registry.get_algo(name)
    env_spec = registry.get_env(ENV)
    cfg: Any = from_dict(spec.config_cls, {**TINY, **extra})
    return spec.build(env_spec.make(env_spec.default_config(action_mode=mode)), cfg, 1)


@pytest.mark.parametrize("mode", ["goal", "flow"])
def test_supply_architecture_and_action_supports(mode: str) -> None:
    sac = _build("sac", mode)
    net, spec = sac.view.net, sac.spec
    assert net.encoder == "mpnn" and net.conv_layers == 2 and net.edge_dim > 0  # OHIO B.4.3 / B.5.1
    env_spec = registry.get_env(ENV)
    env = env_spec.make(env_spec.default_config(action_mode=mode))
    env.reset(seed=0)
    x, ea = sac.view.observe(env)
    dist = sac.actor_dist(x[None], ea[None])
    a = dist.sample((32,))[:, 0]
    assert a.shape == (32, env.action_space(sac.view.agent).shape[0])
    assert ((a >= 0) & (a <= 1)).all()
    if mode == "goal":  # Dirichlet over warehouse + 3 stores, then the warehouse's production fraction
        assert spec.kind == "goal" and spec.producers == (0,) and spec.dim == 5
        assert torch.allclose(a[:, :4].sum(-1), torch.ones(32), atol=1e-5)
    else:  # Beta per warehouse -> store edge, then production as the producer's self-loop (0, 0)
        assert spec.kind == "flow" and spec.edge_dist == "beta" and spec.dim == 4
        assert spec.flow_edges == ((0, 0, 0, 0), (1, 2, 3, 0))
    m = sac.train_iteration()
    assert m["episode_length"] == 30.0 and np.isfinite(m["episode_return"])
    if mode == "flow":
        assert "violation" in m
    ep = evaluate(sac.policy, env, 1, 0)[0]
    assert ep["length"] == 30.0 and np.isfinite(ep["return"])


@pytest.mark.parametrize(("name", "mode"), [("ohio-iql", "goal"), ("ohio-cql", "flow"), ("ohio-calql", "goal"),
                                            ("ohio-bc", "flow")])
def test_offline_learners_on_supply_data_resume_exactly(name: str, mode: str, dataset: Path,
                                                         tmp_path: Path) -> None:
    a = _build(name, mode, dataset=str(dataset))
    assert a.data is not None and len(a.data) == 60
    goals = a.data.data["action"]
    assert ((goals >= 0) & (goals <= 1)).all()
    if mode == "goal":  # inverted goals: a distribution over the 4 nodes, then production / capacity
        assert torch.allclose(goals[:, :4].sum(-1), torch.ones(60), atol=1e-5)
    for _ in range(2):
        a.train_iteration()
    torch.save(a.state_dict(), tmp_path / "s.pt")
    b = _build(name, mode, dataset=str(dataset))
    b.load_state_dict(torch.load(tmp_path / "s.pt", weights_only=True))
    assert a.train_iteration() == b.train_iteration()
    assert all(torch.equal(x, y) for x, y in zip(state_tensors(a.state_dict()), state_tensors(b.state_dict()),
                                                  strict=True))


def test_observed_state_goals_are_the_next_stock_and_production(dataset: Path) -> None:
    from hieralloc.envs.supply.formulation import aux_slices
    from hieralloc.ohio.dataset import OfflineDataset

    bc = _build("ohio-bc", "goal", dataset=str(dataset), goals="observed")
    assert bc.data is not None
    goals = bc.data.data["action"].numpy()
    ds = OfflineDataset.load(dataset)
    sl = aux_slices(3)
    stock = ds.next_aux[:, sl["stock"]]
    np.testing.assert_allclose(goals[:, :4], stock / stock.sum(axis=1, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(goals[:, 4], ds.next_aux[:, sl["pipeline"]][:, 0] / 25.0, rtol=1e-5)
    with pytest.raises(DataError, match="mobility and supply"):
        from hieralloc.algos.ohio.data import observed_goals

        observed_goals("coverage", ds.next_aux, 4, 5)


def test_a_trained_policy_transfers_to_reduced_capacities(dataset: Path, tmp_path: Path) -> None:
    """OHIO Table 5's transfer row: trained on one network, evaluated where store capacities shrink."""
    from hieralloc.algos.ohio import policy_from_run
    from hieralloc.train import run_training

    run = run_training(ENV, "ohio-iql", overrides=[f"algo.dataset={dataset}", "algo.hidden=16",
                                                   "algo.batch_size=8", "algo.updates_per_iteration=4",
                                                   "train.steps=4", "train.eval_episodes=1"], out=tmp_path / "run")
    env_spec = registry.get_env(ENV)
    cap = env_spec.make(env_spec.default_config(storage_capacity=[50, 10, 10, 10]))
    spec = registry.get_algo("ohio-iql")
    with pytest.raises(DataError, match="fingerprint"):  # the data belong to the original network
        spec.build(cap, from_dict(spec.config_cls, {**TINY, "dataset": str(dataset)}), 0)
    policy = policy_from_run(run, cap)
    trained = torch.load(sorted((run / "checkpoints").glob("ckpt_*.pt"))[-1], weights_only=True)
    for key, value in trained["payload"]["learner"]["actor"].items():
        assert torch.equal(policy.learner.actor.state_dict()[key], value)
    ep = evaluate(policy, cap, 1, 0)[0]
    assert ep["length"] == 30.0 and np.isfinite(ep["return"])
