"""Graph neural network encoders in plain torch (no torch_geometric): GCN and MPNN.

Both layers act on a batch of graphs that share one layout (the same ``edge_index``), which is
what the network environments of OHIO produce (a fixed road or supply graph, varying features):

* node features ``x``: ``(N, F)`` or ``(B, N, F)``;
* ``edge_index``: ``(2, E)`` int64, row 0 the source j, row 1 the target i of a message j -> i;
* edge features ``edge_attr``: ``(E, Fe)`` or ``(B, E, Fe)`` (MPNN only).

Messages are gathered with fancy indexing and summed into their targets with ``index_add_``
(sum aggregation, as OHIO App. B.5.1 specifies for both encoders), so both layers are permutation
equivariant: relabelling the nodes (and the edge index with them) permutes the outputs.

* :class:`GCNConv`: Kipf & Welling (2017), Eq. (2):
  ``H' = D~^{-1/2} (A + I) D~^{-1/2} H W + b`` with ``D~`` the degrees of ``A + I`` (in-degree
  of the target, self-loop included; optional scalar edge weights), i.e. the normalised *sum* of
  the neighbours' transformed features (torch_geometric's ``GCNConv`` with ``aggr='add'``).
* :class:`MPNNConv`: Gilmer et al. (2017), Eqs. (1)-(2): messages
  ``m_i = sum_{j in N(i)} M(h_i, h_j, e_ji)`` and update ``h_i' = U(h_i, m_i)``, with ``M`` a
  linear layer + ReLU on the concatenation ``[h_i, h_j, e_ji]`` (the edge-conditioned message of
  the OHIO supply-chain code) and ``U`` a linear layer + ReLU on ``[h_i, m_i]``.
* :class:`GCNEncoder` / :class:`MPNNEncoder`: stacks of these layers with ReLU; the encoders
  concatenate the input features to the last layer's output (a skip connection: the published
  OHIO / graph-RL code adds the input to the GCN output, which needs equal widths; concatenation
  keeps the raw features available at any width).
"""

from __future__ import annotations

import torch
from torch import nn


def _batched(x: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """``(B, N, F)`` view of ``x`` and whether a batch axis was added."""
    if x.dim() == 2:
        return x.unsqueeze(0), True
    if x.dim() != 3:
        raise ValueError(f"node features must be (N, F) or (B, N, F), got shape {tuple(x.shape)}")
    return x, False


def _check_edges(edge_index: torch.Tensor, n_nodes: int) -> None:
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"edge_index must be (2, E), got shape {tuple(edge_index.shape)}")
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= n_nodes):
        raise ValueError(f"edge_index refers to nodes outside 0..{n_nodes - 1}")


def scatter_sum(messages: torch.Tensor, index: torch.Tensor, n_nodes: int) -> torch.Tensor:
    """Sum ``messages`` ``(B, E, H)`` into ``(B, n_nodes, H)`` by target node ``index`` ``(E,)``."""
    out = messages.new_zeros(messages.shape[0], n_nodes, messages.shape[2])
    return out.index_add_(1, index, messages)


def gcn_norm(edge_index: torch.Tensor, n_nodes: int, edge_weight: torch.Tensor | None = None,
             add_self_loops: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source, target and symmetric normalisation ``w_ji / sqrt(deg_j deg_i)`` of every edge of
    ``A + I`` (Kipf & Welling 2017, Eq. (2)); degrees are weighted in-degrees with the self-loop."""
    src, dst = edge_index[0], edge_index[1]
    w = torch.ones(src.shape[0], dtype=torch.float32, device=edge_index.device) if edge_weight is None \
        else edge_weight.to(torch.float32)
    if add_self_loops:
        loop = torch.arange(n_nodes, device=edge_index.device)
        src, dst = torch.cat([src, loop]), torch.cat([dst, loop])
        w = torch.cat([w, torch.ones(n_nodes, dtype=w.dtype, device=w.device)])
    deg = torch.zeros(n_nodes, dtype=w.dtype, device=w.device).index_add_(0, dst, w)
    inv_sqrt = torch.where(deg > 0, deg.clamp(min=1e-12).rsqrt(), torch.zeros_like(deg))
    return src, dst, inv_sqrt[src] * w * inv_sqrt[dst]


class GCNConv(nn.Module):
    """One graph-convolution layer (Kipf & Welling 2017, Eq. (2)), sum aggregation."""

    def __init__(self, in_dim: int, out_dim: int, add_self_loops: bool = True, normalize: bool = True) -> None:
        super().__init__()
        self.lin = nn.Linear(in_dim, out_dim, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_dim))
        self.add_self_loops = add_self_loops
        self.normalize = normalize

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor,
                edge_weight: torch.Tensor | None = None) -> torch.Tensor:
        xb, squeeze = _batched(x)
        n = xb.shape[1]
        _check_edges(edge_index, n)
        h = self.lin(xb)  # H W
        if self.normalize:
            src, dst, norm = gcn_norm(edge_index, n, edge_weight, self.add_self_loops)
        else:
            src, dst = edge_index[0], edge_index[1]
            norm = torch.ones(src.shape[0]) if edge_weight is None else edge_weight.to(torch.float32)
            if self.add_self_loops:
                loop = torch.arange(n)
                src, dst = torch.cat([src, loop]), torch.cat([dst, loop])
                norm = torch.cat([norm, torch.ones(n)])
        out = scatter_sum(h[:, src] * norm.to(h.dtype)[None, :, None], dst, n) + self.bias
        return out[0] if squeeze else out


class MPNNConv(nn.Module):
    """One message-passing layer (Gilmer et al. 2017, Eqs. (1)-(2)) with edge features, sum aggregation."""

    def __init__(self, in_dim: int, edge_dim: int, out_dim: int) -> None:
        super().__init__()
        self.edge_dim = edge_dim
        self.message = nn.Linear(2 * in_dim + edge_dim, out_dim)  # M(h_i, h_j, e_ji)
        self.update = nn.Linear(in_dim + out_dim, out_dim)        # U(h_i, m_i)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor,
                edge_attr: torch.Tensor | None = None) -> torch.Tensor:
        xb, squeeze = _batched(x)
        B, n = xb.shape[0], xb.shape[1]
        _check_edges(edge_index, n)
        src, dst = edge_index[0], edge_index[1]
        parts = [xb[:, dst], xb[:, src]]
        if self.edge_dim:
            if edge_attr is None:
                raise ValueError(f"this MPNN layer expects {self.edge_dim} edge features per edge, got none")
            ea = edge_attr if edge_attr.dim() == 3 else edge_attr.unsqueeze(0)
            parts.append(ea.expand(B, -1, -1).to(xb.dtype))
        msg = torch.relu(self.message(torch.cat(parts, dim=-1)))
        agg = scatter_sum(msg, dst, n)
        out = torch.relu(self.update(torch.cat([xb, agg], dim=-1)))
        return out[0] if squeeze else out


class GCNEncoder(nn.Module):
    """``layers`` GCN layers (ReLU) followed by concatenation with the input: node embeddings of
    width ``out_dim = hidden + in_dim``. Edge features are ignored (the GCN of OHIO App. B.5.1)."""

    uses_edge_attr = False

    def __init__(self, in_dim: int, hidden: int, layers: int = 1) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError("a GCN encoder needs at least one layer")
        dims = [in_dim] + [hidden] * layers
        self.convs = nn.ModuleList(GCNConv(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))
        self.out_dim = hidden + in_dim

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor,
                edge_attr: torch.Tensor | None = None) -> torch.Tensor:
        h = x
        for conv in self.convs:
            h = torch.relu(conv(h, edge_index))
        return torch.cat([h, x], dim=-1)


class MPNNEncoder(nn.Module):
    """``layers`` MPNN layers over node and edge features, then concatenation with the input:
    node embeddings of width ``out_dim = hidden + in_dim`` (the MPNN of OHIO App. B.5.1)."""

    uses_edge_attr = True

    def __init__(self, in_dim: int, edge_dim: int, hidden: int, layers: int = 2) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError("an MPNN encoder needs at least one layer")
        dims = [in_dim] + [hidden] * layers
        self.convs = nn.ModuleList(MPNNConv(a, edge_dim, b) for a, b in zip(dims[:-1], dims[1:], strict=True))
        self.out_dim = hidden + in_dim

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor,
                edge_attr: torch.Tensor | None = None) -> torch.Tensor:
        h = x
        for conv in self.convs:
            h = conv(h, edge_index, edge_attr)
        return torch.cat([h, x], dim=-1)


def make_encoder(kind: str, in_dim: int, edge_dim: int, hidden: int, layers: int) -> GCNEncoder | MPNNEncoder:
    """``'gcn'`` or ``'mpnn'`` encoder."""
    if kind == "gcn":
        return GCNEncoder(in_dim, hidden, layers)
    if kind == "mpnn":
        return MPNNEncoder(in_dim, edge_dim, hidden, layers)
    raise ValueError(f"unknown graph encoder {kind!r} (gcn or mpnn)")


__all__ = ["GCNConv", "GCNEncoder", "MPNNConv", "MPNNEncoder", "gcn_norm", "make_encoder", "scatter_sum"]
