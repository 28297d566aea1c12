"""The LPMARL bipartite agent-task GNN (Eq. (1)-(3)) and cost head: shapes for any (N, M),
permutation equivariance, masks, determinism, and input errors."""

from __future__ import annotations

import pytest
import torch

from hieralloc.errors import HierallocError
from hieralloc.nn.bipartite import (
    BipartiteCostModel,
    BipartiteGNN,
    GraphInputError,
    PairMLP,
    pairwise_features,
    visibility_mask,
)
from hieralloc.nn.mlp import mlp

torch.set_num_threads(1)


def make_inputs(B, N, M, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    ap = torch.rand(B, N, 2, generator=g, dtype=dtype) * 2 - 1
    tp = torch.rand(B, M, 2, generator=g, dtype=dtype) * 1.6 - 0.8
    ax = torch.cat([ap, torch.rand(B, N, 2, generator=g, dtype=dtype)], -1)
    tx = torch.cat([tp, torch.randint(1, 4, (B, M, 1), generator=g).to(dtype)], -1)  # position + capacity
    return ap, tp, ax, tx, pairwise_features(ap, tp)


def model(seed=0, **kw):
    torch.manual_seed(seed)
    kw.setdefault("agent_edge_dim", 3)
    return BipartiteCostModel(4, 3, 3, **kw).double()


def run(m, ax, tx, e, ap, **kw):
    return m(ax, tx, e, agent_edge_attr=pairwise_features(ap, ap), **kw)


def test_shapes_for_any_size_with_one_model():
    m = model()
    for N, M in [(1, 1), (3, 5), (5, 7), (20, 10), (20, 20)]:
        ap, tp, ax, tx, e = make_inputs(2, N, M)
        out = run(m, ax, tx, e, ap, mask=visibility_mask(ap, tp, 1.0))
        assert out.costs.shape == (2, N, M) and out.agent_h.shape == (2, N, 32) and out.task_h.shape == (2, M, 32)
        assert torch.isfinite(out.costs).all()
    single = m(ax[0], tx[0], e[0], agent_edge_attr=pairwise_features(ap[0], ap[0]))
    assert single.costs.shape == (20, 20)
    assert torch.allclose(single.costs, run(m, ax, tx, e, ap).costs[0])
    out.costs.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())


@pytest.mark.parametrize("aggr", ["sum", "mean"])
def test_permutation_equivariance_over_agents_and_tasks(aggr):
    m = model(aggr=aggr)
    ap, tp, ax, tx, e = make_inputs(3, 6, 4, seed=1)
    mask = visibility_mask(ap, tp, 1.2)
    base = run(m, ax, tx, e, ap, mask=mask)
    pa = torch.randperm(6, generator=torch.Generator().manual_seed(2))
    pt = torch.randperm(4, generator=torch.Generator().manual_seed(3))
    out = m(ax[:, pa], tx[:, pt], e[:, pa][:, :, pt], mask=mask[:, pa][:, :, pt],
            agent_edge_attr=pairwise_features(ap[:, pa], ap[:, pa]))
    assert torch.allclose(out.costs, base.costs[:, pa][:, :, pt], atol=1e-10)
    assert torch.allclose(out.agent_h, base.agent_h[:, pa], atol=1e-10)
    assert torch.allclose(out.task_h, base.task_h[:, pt], atol=1e-10)


def test_masked_edge_sends_no_message():
    m = model(rounds=1)
    ap, tp, ax, tx, e = make_inputs(2, 5, 4, seed=4)
    mask = torch.ones(2, 5, 4, dtype=torch.bool)
    mask[0, 1, 2] = False
    base = run(m, ax, tx, e, ap, mask=mask)
    e2 = e.clone()
    e2[0, 1, 2] += 5.0  # the absent edge's feature: unobserved, used nowhere (messages or cost head)
    assert torch.equal(run(m, ax, tx, e2, ap, mask=mask).costs, base.costs)
    tx2 = tx.clone()
    tx2[0, 2] += 3.0  # task 2 changes: after one round agent 1 (which cannot see it) is unaffected
    out = run(m, ax, tx2, e, ap, mask=mask)
    assert torch.equal(out.agent_h[0, 1], base.agent_h[0, 1])
    assert not torch.allclose(out.agent_h[0, 0], base.agent_h[0, 0])  # agent 0 sees it
    # without the mask the edge matters
    assert not torch.equal(run(m, ax, tx, e2, ap).costs, run(m, ax, tx, e, ap).costs)


def test_dead_nodes_and_agent_adjacency_over_several_rounds():
    m = model(rounds=3)
    ap, tp, ax, tx, e = make_inputs(1, 4, 3, seed=5)
    task_mask = torch.tensor([[True, False, True]])
    agent_mask = torch.tensor([[True, True, False, True]])
    base = run(m, ax, tx, e, ap, task_mask=task_mask, agent_mask=agent_mask)
    tx2, ax2 = tx.clone(), ax.clone()
    tx2[0, 1] += 2.0
    ax2[0, 2] -= 2.0
    out = run(m, ax2, tx2, e, ap, task_mask=task_mask, agent_mask=agent_mask)
    keep_t, keep_a = [0, 2], [0, 1, 3]
    assert torch.equal(out.agent_h[0, keep_a], base.agent_h[0, keep_a])
    assert torch.equal(out.task_h[0, keep_t], base.task_h[0, keep_t])
    assert torch.equal(out.costs[0][keep_a][:, keep_t], base.costs[0][keep_a][:, keep_t])
    # agent_adj: agent 0 hears no other agent -> other agents' features reach it only via tasks
    adj = torch.ones(1, 4, 4, dtype=torch.bool)
    adj[0, 0] = False
    solo = BipartiteCostModel(4, 3, 3, rounds=1, task_edges=False).double()
    a = solo(ax, tx, e, agent_adj=adj)
    ax3 = ax.clone()
    ax3[0, 3] += 1.0
    assert torch.equal(solo(ax3, tx, e, agent_adj=adj).agent_h[0, 0], a.agent_h[0, 0])


def test_mean_aggregation_is_invariant_to_duplicated_tasks():
    """With aggr='mean' the messages' scale does not grow with M: duplicating every task leaves the
    agent embeddings unchanged (the option for zero-shot transfer to larger graphs)."""
    m = model(aggr="mean", agent_edge_dim=0, task_edges=False, agent_edges=False)
    ap, tp, ax, tx, e = make_inputs(2, 3, 4, seed=6)
    one = m(ax, tx, e)
    two = m(ax, torch.cat([tx, tx], 1), torch.cat([e, e], 2))
    assert torch.allclose(two.agent_h, one.agent_h, atol=1e-12)
    assert torch.allclose(two.costs, torch.cat([one.costs, one.costs], 2), atol=1e-12)


def test_deterministic_with_seed_and_sensitive_to_it():
    ap, tp, ax, tx, e = make_inputs(2, 5, 3, seed=7)
    a, b, c = (run(model(s), ax, tx, e, ap).costs for s in (0, 0, 1))
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_pair_mlp_equals_mlp_on_concatenation():
    torch.manual_seed(0)
    pm = PairMLP(3, 2, 4, (8, 5), 6).double()
    ref = mlp(9, [8, 5], 6, torch.nn.LeakyReLU).double()
    with torch.no_grad():
        ref[0].weight.copy_(pm.first.weight)
        ref[0].bias.copy_(pm.first.bias)
        for r, p in zip([ref[2], ref[4]], [pm.rest[1], pm.rest[3]], strict=True):
            r.weight.copy_(p.weight)
            r.bias.copy_(p.bias)
    x, y, e = torch.randn(2, 4, 3).double(), torch.randn(2, 5, 2).double(), torch.randn(2, 4, 5, 4).double()
    cat = torch.cat([x.unsqueeze(2).expand(2, 4, 5, 3), y.unsqueeze(1).expand(2, 4, 5, 2), e], -1)
    assert torch.allclose(pm(x, y, e), ref(cat), atol=1e-12)
    assert PairMLP(3, 2, 0, (), 1).double()(x, y).shape == (2, 4, 5, 1)


def test_pairwise_features_and_visibility():
    a = torch.tensor([[[0.0, 0.0], [1.0, 0.0]]])
    b = torch.tensor([[[3.0, 4.0]]])
    f = pairwise_features(a, b)
    assert torch.allclose(f[0, 0, 0], torch.tensor([3.0, 4.0, 5.0]))
    assert torch.allclose(f[0, 1, 0, 2], torch.tensor(20.0).sqrt())
    assert visibility_mask(a, b, 4.6).tolist() == [[[False], [True]]]


def test_bad_inputs_name_the_field():
    m = model()
    ap, tp, ax, tx, e = make_inputs(2, 3, 2)
    ee = pairwise_features(ap, ap)
    cases = [
        (lambda: m(ax[..., :3], tx, e, agent_edge_attr=ee), "agent_x"),
        (lambda: m(ax, tx[..., :2], e, agent_edge_attr=ee), "task_x"),
        (lambda: m(ax, tx[0], e, agent_edge_attr=ee), "task_x"),
        (lambda: m(ax, tx, None, agent_edge_attr=ee), "edge_attr"),
        (lambda: m(ax, tx, e[:, :, :1], agent_edge_attr=ee), "edge_attr"),
        (lambda: m(ax, tx, e), "agent_edge_attr"),
        (lambda: m(ax, tx, e, agent_edge_attr=ee, mask=torch.ones(3, 3, dtype=torch.bool)), "mask"),
        (lambda: m(ax, tx, e, agent_edge_attr=ee, mask=torch.ones(2, 3, 2)), "mask"),
        (lambda: m(ax, tx, e, agent_edge_attr=ee, task_edge_attr=torch.zeros(2, 2, 2, 1)), "task_edge_attr"),
        (lambda: BipartiteGNN(4, 3, rounds=0), "rounds"),
        (lambda: BipartiteGNN(4, 3, aggr="max"), "aggr"),  # type: ignore[arg-type]
        (lambda: pairwise_features(ap, tp[..., :1]), "positions"),
    ]
    for fn, field in cases:
        with pytest.raises(GraphInputError) as info:
            fn()
        assert info.value.field == field and str(info.value).startswith(f"{field}: ")
        assert isinstance(info.value, HierallocError)
