"""Policy, Q- and value networks of the OHIO learners (OHIO App. B.3.3, B.4.3, B.5.1).

Every network is a graph encoder (:mod:`hieralloc.nn.gnn`: one GCN layer for mobility, two MPNN
layers for the supply chain) producing node embeddings ``h_i``, followed by small MLPs that are
shared over nodes or edges (so the same network runs on any graph size: transfer between cities):

* :class:`GraphActor`, ``ohio`` formulation: a per-node MLP maps ``h_i`` to the Dirichlet
  concentration ``c_i`` (Softplus, B.5.1: "GCN ... followed by three linear layers"), and a
  per-producer MLP maps ``h_i`` to the Beta ``(alpha_i, beta_i)`` of the production fraction.
  ``e2e`` formulation (B.3.3 / B.4.3, "minimal architectural differences"): the same encoder, and
  an *edge convolution*, an MLP on ``[h_i, h_j]`` of every flow edge ``(i, j)``, outputs the
  two parameters of that edge's Gaussian or Beta.
* :class:`GraphCritic` ``Q(s, a)``: the action is attached to the node embeddings (``ohio``: the
  node's share of the distribution and, at producers, the production fraction; ``e2e``: each flow
  edge's flow next to ``[h_i, h_j]``) "before being fed into the linear layers" (B.5.1); the
  per-node (per-edge) outputs are summed and a last linear layer gives the value.
* :class:`GraphValue` ``V(s)``: per-node MLP, "sum aggregation" over nodes, linear output.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from hieralloc.algos.ohio.dists import ActionSpec
from hieralloc.nn.gnn import make_encoder
from hieralloc.nn.mlp import mlp


@dataclass(frozen=True)
class NetSpec:
    """Resolved architecture (family defaults applied; see :mod:`hieralloc.algos.ohio.config`)."""

    node_dim: int       #: node features Fx
    edge_dim: int       #: edge features Fe
    encoder: str        #: 'gcn' or 'mpnn'
    hidden: int         #: width of the encoder and of the node MLPs
    conv_layers: int    #: graph layers
    mlp_layers: int     #: hidden layers of the node MLPs (the output layer comes on top)
    edge_layers: int    #: hidden layers of the edge convolution (e2e)
    edge_hidden: int    #: width of the edge convolution (e2e)


def _encoder(net: NetSpec) -> nn.Module:
    return make_encoder(net.encoder, net.node_dim, net.edge_dim, net.hidden, net.conv_layers)


def _head(in_dim: int, layers: int, width: int, out_dim: int,
          activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    return mlp(in_dim, [width] * layers, out_dim, activation)


class GraphActor(nn.Module):
    """Policy network: graph state -> raw distribution parameters ``(B, spec.n_params)``."""

    producers: torch.Tensor
    flow_edges: torch.Tensor

    def __init__(self, net: NetSpec, spec: ActionSpec) -> None:
        super().__init__()
        self.spec = spec
        self.encoder = _encoder(net)
        emb = int(self.encoder.out_dim)  # type: ignore[arg-type]
        if spec.kind == "goal":
            # LeakyReLU between the policy's linear layers, as the published graph-RL actor
            self.node_head = _head(emb, net.mlp_layers, net.hidden, 1, nn.LeakyReLU)
            self.prod_head = _head(emb, net.mlp_layers, net.hidden, 2, nn.LeakyReLU) if spec.n_producers else None
            self.register_buffer("producers", spec.producer_index(), persistent=False)
        else:
            self.edge_head = _head(2 * emb, net.edge_layers, net.edge_hidden, 2, nn.LeakyReLU)
            self.register_buffer("flow_edges", spec.edge_index(), persistent=False)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor | None) -> torch.Tensor:
        h = self.encoder(x, edge_index, edge_attr)  # (B, N, emb)
        if self.spec.kind == "goal":
            parts = [self.node_head(h).squeeze(-1)]  # (B, N) concentrations (pre-softplus)
            if self.prod_head is not None:
                ab = self.prod_head(h[:, self.producers])  # (B, P, 2)
                parts += [ab[..., 0], ab[..., 1]]
            return torch.cat(parts, dim=-1)
        fe = self.flow_edges
        out = self.edge_head(torch.cat([h[:, fe[0]], h[:, fe[1]]], dim=-1))  # (B, F, 2) edge convolution
        return torch.cat([out[..., 0], out[..., 1]], dim=-1)


class GraphCritic(nn.Module):
    """``Q(s, a)``; :meth:`embed` and :meth:`head` split it so that many actions can be scored
    against one encoding of a state (CQL's sampled actions)."""

    producers: torch.Tensor
    flow_edges: torch.Tensor

    def __init__(self, net: NetSpec, spec: ActionSpec) -> None:
        super().__init__()
        self.spec = spec
        self.encoder = _encoder(net)
        emb = int(self.encoder.out_dim)  # type: ignore[arg-type]
        layers = max(1, net.mlp_layers)
        #: action features per node (share, and production at producers) or per flow edge (flow)
        self.n_action_features = 2 if spec.kind == "goal" and spec.n_producers else 1
        if spec.kind == "goal":
            self.body = _head(emb + self.n_action_features, layers - 1, net.hidden, net.hidden)
            self.register_buffer("producers", spec.producer_index(), persistent=False)
            width = net.hidden
        else:
            self.body = _head(2 * emb + 1, max(1, net.edge_layers) - 1, net.edge_hidden, net.edge_hidden)
            self.register_buffer("flow_edges", spec.edge_index(), persistent=False)
            width = net.edge_hidden
        self.out = nn.Linear(width, 1)

    @property
    def _first(self) -> nn.Linear:
        layer = self.body[0]
        assert isinstance(layer, nn.Linear)
        return layer

    def embed(self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor | None) -> torch.Tensor:
        """The state's share of the first linear layer, ``W_h h + b`` per node (edge): ``(B, N|F, width)``.

        The first layer is linear in ``[h, action features]``, so ``W [h; f(a)] + b = (W_h h + b) +
        W_a f(a)``: the state part is computed once and reused for every action scored against it."""
        h = self.encoder(x, edge_index, edge_attr)
        if self.spec.kind == "flow":
            fe = self.flow_edges
            h = torch.cat([h[:, fe[0]], h[:, fe[1]]], dim=-1)  # (B, F, 2 emb): [h_i, h_j] per flow edge
        first = self._first
        return nn.functional.linear(h, first.weight[:, : h.shape[-1]], first.bias)

    def action_features(self, a: torch.Tensor) -> torch.Tensor:
        """``(..., dim)`` actions -> ``(..., N or F, k)`` features attached to nodes / edges."""
        if self.spec.kind == "flow":
            return a.unsqueeze(-1)
        n = self.spec.n_nodes
        share = a[..., :n].unsqueeze(-1)
        if not self.spec.n_producers:
            return share
        prod = a.new_zeros(share.shape)
        prod[..., self.producers, 0] = a[..., n:]
        return torch.cat([share, prod], dim=-1)

    def head(self, emb: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Q-values of actions ``a`` ``(B, M, dim)`` (or ``(B, dim)``) on a state's :meth:`embed`
        ``(B, N|F, width)``."""
        squeeze = a.dim() == 2
        if squeeze:
            a = a.unsqueeze(1)
        w_a = self._first.weight[:, -self.n_action_features:]
        z = emb.unsqueeze(1) + self.action_features(a) @ w_a.T  # the first layer on [h, f(a)]
        z = torch.relu(self.body[1:](z))
        q = self.out(z.sum(dim=-2)).squeeze(-1)  # sum over nodes / edges, then linear
        return q[:, 0] if squeeze else q

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor | None,
                a: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x, edge_index, edge_attr), a)


class GraphValue(nn.Module):
    """``V(s)``: node embeddings -> per-node MLP -> sum over nodes -> linear (OHIO B.5.1)."""

    def __init__(self, net: NetSpec) -> None:
        super().__init__()
        self.encoder = _encoder(net)
        emb = int(self.encoder.out_dim)  # type: ignore[arg-type]
        self.body = _head(emb, max(1, net.mlp_layers) - 1, net.hidden, net.hidden)
        self.out = nn.Linear(net.hidden, 1)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor | None) -> torch.Tensor:
        z = torch.relu(self.body(self.encoder(x, edge_index, edge_attr)))
        return self.out(z.sum(dim=-2)).squeeze(-1)


__all__ = ["GraphActor", "GraphCritic", "GraphValue", "NetSpec"]
