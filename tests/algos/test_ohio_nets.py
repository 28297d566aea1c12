"""Policy heads and networks of the OHIO learners on synthetic graphs: supports of the Dirichlet,
Dirichlet + Beta and per-edge heads, reparameterised gradients, finite log-densities on the
boundary, size-agnostic (transferable) networks and permutation invariance of Q and V."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hieralloc.algos.ohio.dists import ActionSpec, GoalDistribution, make_dist
from hieralloc.algos.ohio.nets import GraphActor, GraphCritic, GraphValue, NetSpec

torch.set_num_threads(1)

N = 5
EDGES = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 4, 4, 0], [1, 0, 2, 1, 3, 2, 4, 3, 0, 4]])
FLOW = ((0, 0, 1, 2, 3), (1, 2, 3, 4, 4))
NET = NetSpec(node_dim=4, edge_dim=2, encoder="mpnn", hidden=16, conv_layers=2, mlp_layers=1, edge_layers=1,
              edge_hidden=8)
SPECS = {
    "dirichlet": ActionSpec("goal", N),
    "dirichlet+beta": ActionSpec("goal", N, producers=(0, 3)),
    "edge-gaussian": ActionSpec("flow", N, flow_edges=FLOW, edge_dist="gaussian"),
    "edge-beta": ActionSpec("flow", N, flow_edges=FLOW, edge_dist="beta"),
}


def _state(batch: int = 3, n: int = N, e: int = 10, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, n, 4, generator=g), torch.rand(batch, e, 2, generator=g)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_policy_supports_and_reparameterised_samples(name: str) -> None:
    spec = SPECS[name]
    torch.manual_seed(0)
    actor = GraphActor(NET, spec)
    x, ea = _state()
    params = actor(x, EDGES, ea)
    assert params.shape == (3, spec.n_params)
    dist = make_dist(spec, params)
    a = dist.rsample((64,))
    assert a.shape == (64, 3, spec.dim)
    logp = dist.log_prob(a)
    assert logp.shape == (64, 3) and torch.isfinite(logp).all()
    if spec.kind == "goal":
        simplex = a[..., :N]
        assert (simplex >= 0).all() and torch.allclose(simplex.sum(-1), torch.ones(64, 3), atol=1e-5)
        assert torch.allclose(dist.mean[..., :N].sum(-1), torch.ones(3), atol=1e-6)
        prod = a[..., N:]
        assert prod.shape[-1] == spec.n_producers and ((prod >= 0) & (prod <= 1)).all()
        # the environment scales the production fraction by capacity: within [0, capacity]
        cap = torch.tensor([25.0, 60.0])[: spec.n_producers]
        assert ((prod * cap >= 0) & (prod * cap <= cap)).all()
    elif spec.edge_dist == "beta":
        assert ((a > 0) & (a < 1)).all()
    else:
        executed = spec.to_env(a)
        assert ((executed >= 0) & (executed <= 1)).all() and (a < 0).any()  # Gaussian samples get clipped
    # reparameterised: the log-likelihood of samples back-propagates into the network
    (logp.mean() + a.sum()).backward()
    assert all(p.grad is not None for p in actor.parameters())
    assert torch.isfinite(dist.entropy()).all()


def test_goal_log_density_is_finite_on_the_boundary() -> None:
    spec = SPECS["dirichlet+beta"]
    dist = make_dist(spec, torch.zeros(2, spec.n_params))
    # inverted goals can hold exact zeros (no vehicle wanted) and full / zero production
    goals = torch.tensor([[0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0], [0.2, 0.2, 0.2, 0.2, 0.2, 0.5, 0.5]])
    assert torch.isfinite(dist.log_prob(goals)).all()
    cleaned = spec.clean(goals)
    assert torch.allclose(cleaned[:, :N].sum(-1), torch.ones(2)) and (cleaned[:, :N] > 0).all()
    # an all-zero distribution is read as uniform
    assert torch.allclose(spec.clean(torch.zeros(1, 7))[0, :N], torch.full((N,), 0.2))


def test_uniform_actions_and_their_density() -> None:
    rng = np.random.default_rng(0)
    spec = SPECS["dirichlet+beta"]
    a = spec.sample_uniform((4, 6), rng)
    assert a.shape == (4, 6, 7)
    assert torch.allclose(a[..., :N].sum(-1), torch.ones(4, 6), atol=1e-6)
    assert ((a[..., N:] >= 0) & (a[..., N:] <= 1)).all()
    # Dirichlet(1) on the simplex of N = 5 nodes has density Gamma(5) = 24 everywhere
    assert spec.uniform_log_density() == pytest.approx(math.log(24.0))
    dir1 = torch.distributions.Dirichlet(torch.ones(N))
    assert dir1.log_prob(a[0, 0, :N]).item() == pytest.approx(math.log(24.0), abs=1e-4)
    flow = SPECS["edge-beta"]
    assert flow.uniform_log_density() == 0.0 and flow.sample_uniform((2,), rng).shape == (2, 5)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_q_and_v_are_invariant_to_relabelling_nodes(name: str) -> None:
    spec = SPECS[name]
    torch.manual_seed(1)
    q, v = GraphCritic(NET, spec), GraphValue(NET)
    x, ea = _state(batch=2)
    a = spec.sample_uniform((2,), np.random.default_rng(1))
    perm = torch.tensor([3, 0, 4, 1, 2])  # new node k is old node perm[k]
    inv = torch.argsort(perm)
    if spec.kind == "goal":
        pspec = ActionSpec("goal", N, producers=tuple(int(inv[p]) for p in spec.producers))
        ap = torch.cat([a[:, :N][:, perm], a[:, N:]], dim=-1)
    else:
        fe = torch.tensor(FLOW)
        pfe = inv[fe]
        pspec = ActionSpec("flow", N, flow_edges=(tuple(pfe[0].tolist()), tuple(pfe[1].tolist())),
                           edge_dist=spec.edge_dist)
        ap = a
    qp = GraphCritic(NET, pspec)
    qp.load_state_dict(q.state_dict())
    before = q(x, EDGES, ea, a)
    after = qp(x[:, perm], inv[EDGES], ea, ap)
    assert torch.allclose(before, after, atol=1e-5)
    assert torch.allclose(v(x, EDGES, ea), v(x[:, perm], inv[EDGES], ea), atol=1e-5)
    # many actions against one state encoding give the same values as one at a time
    many = torch.stack([a, a.flip(0)], dim=1)  # (B, 2, dim)
    emb = q.embed(x, EDGES, ea)
    assert torch.allclose(q.head(emb, many)[:, 0], before, atol=1e-6)
    assert torch.allclose(q.head(emb, many)[:, 1], q(x, EDGES, ea, a.flip(0)), atol=1e-6)


def test_critic_reads_production_at_the_producers_only() -> None:
    spec = SPECS["dirichlet+beta"]
    q = GraphCritic(NET, spec)
    a = torch.tensor([[0.2, 0.2, 0.2, 0.2, 0.2, 0.9, 0.1]])
    feats = q.action_features(a)
    assert feats.shape == (1, N, 2)
    assert feats[0, :, 1].tolist() == pytest.approx([0.9, 0.0, 0.0, 0.1, 0.0])
    assert feats[0, :, 0].tolist() == pytest.approx([0.2] * N)


@pytest.mark.parametrize("name", ["dirichlet", "edge-gaussian"])
def test_networks_run_on_graphs_of_another_size(name: str) -> None:
    """The per-node / per-edge MLPs are shared, so a policy trained on one city runs on another
    (OHIO Fig. 8b, NYC -> Shenzhen): the state dict of a 5-node network loads into an 8-node one."""
    spec = SPECS[name]
    actor = GraphActor(NET, spec)
    n8 = 8
    edges8 = torch.stack([torch.arange(n8), (torch.arange(n8) + 1) % n8])
    spec8 = ActionSpec("goal", n8) if spec.kind == "goal" else \
        ActionSpec("flow", n8, flow_edges=(tuple(range(n8)), tuple((i + 2) % n8 for i in range(n8))))
    actor8 = GraphActor(NET, spec8)
    actor8.load_state_dict(actor.state_dict())
    x, ea = _state(batch=1, n=n8, e=n8)
    dist = make_dist(spec8, actor8(x, edges8, ea))
    assert dist.mean.shape == (1, spec8.dim)


def test_goal_distribution_mean_is_the_dirichlet_and_beta_means() -> None:
    conc = torch.tensor([[1.0, 2.0, 3.0, 4.0, 10.0]])
    d = GoalDistribution(conc, torch.tensor([[2.0, 1.0]]), torch.tensor([[2.0, 3.0]]), SPECS["dirichlet+beta"])
    assert d.mean.tolist()[0] == pytest.approx([0.05, 0.1, 0.15, 0.2, 0.5, 0.5, 0.25])


@pytest.mark.parametrize("name", ["dirichlet+beta", "edge-beta"])
def test_critic_equals_the_mlp_on_concatenated_embeddings_and_actions(name: str) -> None:
    """OHIO B.5.1: "the node embeddings are concatenated with the action before being fed into the
    linear layers"; the critic computes the state's part of the first layer once (embed) and adds
    the action's part per action, which must equal the plain concatenation."""
    spec = SPECS[name]
    torch.manual_seed(3)
    q = GraphCritic(NET, spec)
    x, ea = _state(batch=2)
    a = spec.sample_uniform((2,), np.random.default_rng(2))
    h = q.encoder(x, EDGES, ea)
    if spec.kind == "flow":
        fe = torch.tensor(FLOW)
        h = torch.cat([h[:, fe[0]], h[:, fe[1]]], dim=-1)
    plain = q.out(torch.relu(q.body(torch.cat([h, q.action_features(a)], dim=-1))).sum(dim=-2)).squeeze(-1)
    assert torch.allclose(q(x, EDGES, ea, a), plain, atol=1e-5)
