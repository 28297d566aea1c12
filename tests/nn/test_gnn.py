"""GCN and MPNN layers in plain torch: the formulas on a hand-sized graph, permutation equivariance,
batching, and clear errors for malformed graphs."""

from __future__ import annotations

import pytest
import torch

from hieralloc.nn.gnn import GCNConv, GCNEncoder, MPNNConv, MPNNEncoder, gcn_norm, make_encoder

torch.set_num_threads(1)

# a directed 4-node graph (both directions of a path 0-1-2 and an edge 3 -> 0)
EDGES = torch.tensor([[0, 1, 1, 2, 3], [1, 0, 2, 1, 0]])


def _random_graph(n: int, e: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, n, (e,), generator=g)
    dst = torch.randint(0, n, (e,), generator=g)
    return torch.stack([src, dst])


def test_gcn_matches_the_dense_kipf_welling_formula() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 3)
    conv = GCNConv(3, 2)
    A = torch.zeros(4, 4)  # A[i, j] = 1 for a message j -> i
    A[EDGES[1], EDGES[0]] = 1.0
    At = A + torch.eye(4)
    d = At.sum(dim=1)  # in-degree with self-loop
    dense = torch.diag(d.rsqrt()) @ At @ torch.diag(d.rsqrt()) @ (x @ conv.lin.weight.T) + conv.bias
    assert torch.allclose(conv(x, EDGES), dense, atol=1e-6)
    # node 0 receives from 1, 3 and itself: degree 3; node 3 only from itself: degree 1
    assert d.tolist() == [3.0, 3.0, 2.0, 1.0]
    # the edge 3 -> 0 weighs 1 / sqrt(deg(3) deg(0)) = 1 / sqrt(1 x 3); node 3's self-loop (appended last) 1
    src, dst, norm = gcn_norm(EDGES, 4)
    assert torch.isclose(norm[4], torch.tensor(3.0).rsqrt()) and (int(src[4]), int(dst[4])) == (3, 0)
    assert torch.isclose(norm[-1], torch.tensor(1.0)) and (int(src[-1]), int(dst[-1])) == (3, 3)


def test_mpnn_matches_an_explicit_loop_over_edges() -> None:
    torch.manual_seed(1)
    x, ea = torch.randn(4, 3), torch.randn(5, 2)
    conv = MPNNConv(3, 2, 4)
    out = conv(x, EDGES, ea)
    agg = torch.zeros(4, 4)
    for k in range(EDGES.shape[1]):
        j, i = int(EDGES[0, k]), int(EDGES[1, k])
        agg[i] += torch.relu(conv.message(torch.cat([x[i], x[j], ea[k]])))
    expect = torch.relu(conv.update(torch.cat([x, agg], dim=-1)))
    assert torch.allclose(out, expect, atol=1e-6)
    # node 2's only message comes from 1: removing every other edge leaves it unchanged
    only = conv(x, EDGES[:, 2:3], ea[2:3])
    assert torch.allclose(only[2], out[2], atol=1e-6)


@pytest.mark.parametrize("kind", ["gcn", "mpnn"])
def test_encoders_are_permutation_equivariant(kind: str) -> None:
    torch.manual_seed(2)
    n, e = 7, 16
    edges = _random_graph(n, e, 3)
    x, ea = torch.randn(2, n, 5), torch.randn(2, e, 3)
    enc = make_encoder(kind, 5, 3, 8, 2)
    out = enc(x, edges, ea)
    perm = torch.randperm(n)               # new node k is old node perm[k]
    inv = torch.argsort(perm)              # old node i is new node inv[i]
    out_p = enc(x[:, perm], inv[edges], ea)
    assert torch.allclose(out_p, out[:, perm], atol=1e-5)
    # edge order does not matter either (sum aggregation)
    eperm = torch.randperm(e)
    assert torch.allclose(enc(x, edges[:, eperm], ea[:, eperm]), out, atol=1e-5)


@pytest.mark.parametrize("enc", [GCNEncoder(5, 8, 1), MPNNEncoder(5, 3, 8, 2)])
def test_batched_equals_one_graph_at_a_time_and_width(enc: torch.nn.Module) -> None:
    torch.manual_seed(4)
    edges = _random_graph(6, 12, 5)
    x, ea = torch.randn(3, 6, 5), torch.randn(3, 12, 3)
    out = enc(x, edges, ea)
    assert out.shape == (3, 6, enc.out_dim) and enc.out_dim == 8 + 5
    for b in range(3):
        assert torch.allclose(enc(x[b], edges, ea[b]), out[b], atol=1e-6)
    # shared edge features broadcast over the batch
    assert torch.allclose(enc(x, edges, ea[0]), torch.stack([enc(x[b], edges, ea[0]) for b in range(3)]), atol=1e-6)


def test_gradients_reach_every_parameter() -> None:
    enc = MPNNEncoder(4, 2, 6, 2)
    out = enc(torch.randn(5, 4), EDGES, torch.randn(5, 2)).sum()
    out.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in enc.parameters())


def test_malformed_graphs_are_refused() -> None:
    conv = GCNConv(3, 2)
    with pytest.raises(ValueError, match="outside 0..3"):
        conv(torch.randn(4, 3), torch.tensor([[0, 4], [1, 0]]))
    with pytest.raises(ValueError, match=r"\(2, E\)"):
        conv(torch.randn(4, 3), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="edge features"):
        MPNNConv(3, 2, 4)(torch.randn(4, 3), EDGES)
    with pytest.raises(ValueError, match="unknown graph encoder"):
        make_encoder("gat", 3, 0, 4, 1)
