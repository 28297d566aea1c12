r"""The agent-task bipartite graph network of LPMARL (Sec. 3.1, Eq. (1)-(3)) and its cost head.

Nodes are the ``N`` agents and the ``M`` tasks of each episode in a batch; edges join every agent
to every task (``E_NM``), every pair of distinct agents (``E_NN``) and, optionally, every pair
of distinct tasks (``E_MM``: Table 4 lists a task-task message network). One round of message
passing (all MLPs with Table 4's ``[32, 32]`` units and LeakyReLU(0.01))::

    m^NM_ij = f([h_i, h_j, e_ij]; theta^NM)     agent i <- task j     # LPMARL Eq. (2)
    m^NN_ii' = f([h_i, h_i', e_ii']; theta^NN)  agent i <- agent i'    # Eq. (2)
    h_i' = f([agg_j m^NM_ij || agg_i' m^NN_ii' || h_i]; theta^V_N)     # Eq. (3)

and symmetrically for the tasks (``m^MN`` from agents, ``m^MM`` from other tasks, ``theta^V_M``).
The self term ``h_i`` inside Eq. (3) plays the role of the self-message of Eq. (1). After
``rounds`` rounds the cost head scores every pair (Sec. 3.1, Table 4's ``[64, 64]`` units)::

    c_ij = f([h_i^N, h_j^M, e_ij]; theta_c)

``c_ij`` is the coefficient the assignment LP *maximises* (LPMARL Eq. (4);
:mod:`hieralloc.lpmarl.assign`). The edge feature ``e_ij`` enters the head as well as the
messages so that relations such as the agent-landmark distance reach the cost directly (the
learned costs of Fig. 2 resemble the distance matrix).

**Size-agnostic.** Every weight acts on one node or one edge and messages are aggregated over
neighbours, so a model trained on ``(N, M) = (3, 5)`` runs unchanged on ``(20, 20)`` (the
transfer experiments, Sec. 5.1.2). Aggregation is the paper's sum (Eq. (3)) by default;
``aggr='mean'`` averages over the present neighbours instead, which keeps the message scale
independent of ``N`` and ``M`` (an option for transfer to larger graphs; documented in
docs/methods/lpmarl.md).

**Masks.** ``mask`` ``(B, N, M)`` (or ``(N, M)``) removes agent-task edges, e.g. tasks outside an
agent's observation range for Dec-LPMARL's local graph (App. D, ``E_dec``): a removed edge sends
no message either way and its edge feature is not used by the cost head. ``agent_mask`` ``(B, N)``
and ``task_mask`` ``(B, M)`` remove whole nodes (dead units, finished tasks): they send no
messages; their own embeddings and costs are still computed (ignore them, e.g. with the
assignment layer's masks). ``agent_adj`` ``(B, N, N)`` optionally restricts agent-agent edges
(Dec-LPMARL's communication range).

The graph is complete and small (N, M <= 20s), so messages are computed densely on ``(B, N, M, .)``
tensors and aggregated with masked sums; this is the sum aggregation of
:func:`hieralloc.nn.gnn.scatter_sum` without building an edge list per episode.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple

import torch
from torch import nn

from hieralloc.errors import HierallocError
from hieralloc.nn.mlp import mlp

Aggregation = Literal["sum", "mean"]


class GraphInputError(HierallocError, ValueError):
    """A bipartite-graph input has the wrong shape or type; ``field`` names it."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        super().__init__(f"{field}: {problem}")


class BipartiteOutput(NamedTuple):
    """Costs ``(B, N, M)`` and the final agent ``(B, N, H)`` and task ``(B, M, H)`` embeddings
    (the ``h^N_i`` / ``h^M_j`` the low-level policy of Eq. (8) conditions on)."""

    costs: torch.Tensor
    agent_h: torch.Tensor
    task_h: torch.Tensor


_ACT = nn.LeakyReLU  # Table 4: LeakyReLU with negative slope 0.01 (torch's default slope)


class PairMLP(nn.Module):
    """``f([x_r, y_c, e_rc])`` for every pair ``(r, c)`` of two node sets, computed without
    materialising the concatenation: the first linear layer splits into a row part, a column part
    and an edge part that are broadcast-added (the same function as an MLP on the concatenation,
    with ``mlp_units`` hidden layers and LeakyReLU, at a fraction of the cost)."""

    def __init__(self, row_dim: int, col_dim: int, edge_dim: int, units: Sequence[int], out_dim: int,
                 edge_name: str = "edge_attr") -> None:
        super().__init__()
        units = list(units)
        self.edge_name = edge_name
        self.row_dim, self.col_dim, self.edge_dim = row_dim, col_dim, edge_dim
        first_out = units[0] if units else out_dim
        self.first = nn.Linear(row_dim + col_dim + edge_dim, first_out)
        self.rest: nn.Module = nn.Sequential(_ACT(0.01), *mlp(units[0], units[1:], out_dim, _ACT)) if units \
            else nn.Identity()

    def forward(self, rows: torch.Tensor, cols: torch.Tensor, edge: torch.Tensor | None = None) -> torch.Tensor:
        """``rows (B, X, row_dim)``, ``cols (B, Y, col_dim)``, ``edge (B, X, Y, edge_dim)`` -> ``(B, X, Y, out)``."""
        W, r, c = self.first.weight, self.row_dim, self.col_dim
        z = (rows @ W[:, :r].T).unsqueeze(2) + (cols @ W[:, r:r + c].T).unsqueeze(1) + self.first.bias
        if self.edge_dim:
            if edge is None:
                raise GraphInputError(self.edge_name, f"missing: expected {self.edge_dim} features per edge")
            z = z + edge @ W[:, r + c:].T
        out: torch.Tensor = self.rest(z)
        return out


def pairwise_features(a_pos: torch.Tensor, b_pos: torch.Tensor) -> torch.Tensor:
    """Edge features ``[dx, dy, ..., distance]`` from positions ``(B, N, D)`` and ``(B, M, D)``:
    ``b_j - a_i`` and its Euclidean norm, shape ``(B, N, M, D + 1)`` (also for agent-agent edges
    with ``b_pos = a_pos``)."""
    if a_pos.dim() != b_pos.dim() or a_pos.shape[-1] != b_pos.shape[-1]:
        raise GraphInputError("positions", f"shapes {tuple(a_pos.shape)} and {tuple(b_pos.shape)} do not match "
                                           "(expected (B, N, D) and (B, M, D))")
    rel = b_pos.unsqueeze(-3) - a_pos.unsqueeze(-2)
    return torch.cat([rel, rel.norm(dim=-1, keepdim=True)], dim=-1)


def visibility_mask(a_pos: torch.Tensor, b_pos: torch.Tensor, radius: float) -> torch.Tensor:
    """``(B, N, M)`` bool: ``|b_j - a_i| <= radius`` (Dec-LPMARL's observation range, App. D)."""
    return (b_pos.unsqueeze(-3) - a_pos.unsqueeze(-2)).norm(dim=-1) <= radius


class BipartiteGNN(nn.Module):
    """Message passing on the agent-task graph (LPMARL Eq. (1)-(3)); returns node embeddings.

    Args:
        agent_dim, task_dim: input features per agent / per task.
        edge_dim: agent-task edge features ``e_ij`` (0: none).
        agent_edge_dim, task_edge_dim: agent-agent / task-task edge features (0: none).
        hidden: embedding width ``H`` (Table 4's GNN units: 32).
        mlp_units: hidden units of every message / update / encoder MLP (Table 4: ``[32, 32]``).
        rounds: message-passing rounds (>= 1; each has its own weights).
        agent_edges, task_edges: include the ``E_NN`` / ``E_MM`` edge types.
        aggr: ``'sum'`` (Eq. (3)) or ``'mean'`` over present neighbours.
    """

    def __init__(self, agent_dim: int, task_dim: int, edge_dim: int = 0, *, agent_edge_dim: int = 0,
                 task_edge_dim: int = 0, hidden: int = 32, mlp_units: Sequence[int] = (32, 32), rounds: int = 2,
                 agent_edges: bool = True, task_edges: bool = True, aggr: Aggregation = "sum") -> None:
        super().__init__()
        for name, v, lo in (("agent_dim", agent_dim, 1), ("task_dim", task_dim, 1), ("edge_dim", edge_dim, 0),
                            ("agent_edge_dim", agent_edge_dim, 0), ("task_edge_dim", task_edge_dim, 0),
                            ("hidden", hidden, 1), ("rounds", rounds, 1)):
            if int(v) < lo:
                raise GraphInputError(name, f"must be an integer >= {lo}, got {v!r}")
        if aggr not in ("sum", "mean"):
            raise GraphInputError("aggr", f"must be 'sum' or 'mean', got {aggr!r}")
        units = list(mlp_units)
        self.agent_dim, self.task_dim, self.edge_dim = agent_dim, task_dim, edge_dim
        self.agent_edge_dim, self.task_edge_dim = agent_edge_dim, task_edge_dim
        self.hidden, self.rounds, self.aggr = hidden, rounds, aggr
        self.agent_edges, self.task_edges = agent_edges, task_edges
        H = hidden
        self.agent_enc = mlp(agent_dim, units, H, _ACT)
        self.task_enc = mlp(task_dim, units, H, _ACT)
        self.msg_nm = nn.ModuleList(PairMLP(H, H, edge_dim, units, H) for _ in range(rounds))  # theta^NM
        self.msg_mn = nn.ModuleList(PairMLP(H, H, edge_dim, units, H) for _ in range(rounds))  # theta^MN
        self.msg_nn = nn.ModuleList(PairMLP(H, H, agent_edge_dim, units, H, 'agent_edge_attr') for _ in range(rounds)) \
            if agent_edges else None                                                        # theta^NN
        self.msg_mm = nn.ModuleList(PairMLP(H, H, task_edge_dim, units, H, 'task_edge_attr') for _ in range(rounds)) \
            if task_edges else None                                                         # theta^MM
        in_n = H * (3 if agent_edges else 2)
        in_m = H * (3 if task_edges else 2)
        self.upd_n = nn.ModuleList(mlp(in_n, units, H, _ACT) for _ in range(rounds))  # theta^V (agents)
        self.upd_m = nn.ModuleList(mlp(in_m, units, H, _ACT) for _ in range(rounds))  # theta^V (tasks)

    def forward(self, agent_x: torch.Tensor, task_x: torch.Tensor, edge_attr: torch.Tensor | None = None, *,
                mask: torch.Tensor | None = None, agent_mask: torch.Tensor | None = None,
                task_mask: torch.Tensor | None = None, agent_adj: torch.Tensor | None = None,
                agent_edge_attr: torch.Tensor | None = None,
                task_edge_attr: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings ``(h_agent (B, N, H), h_task (B, M, H))`` (unbatched inputs give unbatched outputs).

        Shapes: ``agent_x (B, N, agent_dim)``, ``task_x (B, M, task_dim)``, ``edge_attr (B, N, M,
        edge_dim)``, masks as in the module docstring, ``agent_edge_attr (B, N, N, agent_edge_dim)``,
        ``task_edge_attr (B, M, M, task_edge_dim)``; every batch axis may be dropped together.
        """
        g = _Graph.build(self, agent_x, task_x, edge_attr, mask, agent_mask, task_mask, agent_adj,
                         agent_edge_attr, task_edge_attr)
        h_n, h_m = self._propagate(g)
        return (h_n[0], h_m[0]) if g.squeeze else (h_n, h_m)

    def _propagate(self, g: _Graph) -> tuple[torch.Tensor, torch.Tensor]:
        h_n, h_m = self.agent_enc(g.agent_x), self.task_enc(g.task_x)
        for r in range(self.rounds):
            # LPMARL Eq. (2), on the (B, N, M) edge grid: m^NM_ij (task j -> agent i), m^MN_ij (agent i -> task j)
            m_nm = self.msg_nm[r](h_n, h_m, g.edge_attr)
            m_mn = self.msg_mn[r](h_n, h_m, g.edge_attr)
            parts_n = [self._agg(m_nm, g.w_nm, dim=2, count=g.deg_n)]
            parts_m = [self._agg(m_mn, g.w_nm, dim=1, count=g.deg_m)]
            if self.msg_nn is not None:
                m_nn = self.msg_nn[r](h_n, h_n, g.agent_edge_attr)  # Eq. (2): agent i' -> agent i, (B, N, N)
                parts_n.append(self._agg(m_nn, g.w_nn, dim=2, count=g.deg_nn))
            if self.msg_mm is not None:
                m_mm = self.msg_mm[r](h_m, h_m, g.task_edge_attr)   # task j' -> task j, (B, M, M)
                parts_m.append(self._agg(m_mm, g.w_mm, dim=2, count=g.deg_mm))
            # Eq. (3): h' = f([sum m^NM || sum m^NN || h]; theta^V)
            h_n, h_m = self.upd_n[r](torch.cat([*parts_n, h_n], dim=-1)), self.upd_m[r](torch.cat([*parts_m, h_m],
                                                                                                  dim=-1))
        return h_n, h_m

    def _agg(self, msg: torch.Tensor, w: torch.Tensor, dim: int, count: torch.Tensor) -> torch.Tensor:
        """Masked sum (Eq. (3)) or mean over ``dim`` of messages ``(B, X, Y, H)`` with edge weights
        ``w`` ``(B, X, Y)`` (1 = edge present, 0 = absent)."""
        s = (msg * w.unsqueeze(-1)).sum(dim=dim)
        if self.aggr == "mean":
            s = s / count.clamp(min=1.0).unsqueeze(-1)
        return s


class _Graph(NamedTuple):
    """Validated, batched inputs and edge weights of one forward pass."""

    agent_x: torch.Tensor
    task_x: torch.Tensor
    edge_attr: torch.Tensor | None
    agent_edge_attr: torch.Tensor | None
    task_edge_attr: torch.Tensor | None
    w_nm: torch.Tensor   # (B, N, M) 1 where the agent-task edge exists
    w_nn: torch.Tensor   # (B, N, N) 1 where agent i receives from agent i' (no self loops)
    w_mm: torch.Tensor   # (B, M, M)
    deg_n: torch.Tensor  # (B, N) task neighbours of each agent
    deg_m: torch.Tensor  # (B, M) agent neighbours of each task
    deg_nn: torch.Tensor
    deg_mm: torch.Tensor
    squeeze: bool

    @staticmethod
    def build(net: BipartiteGNN, agent_x: torch.Tensor, task_x: torch.Tensor, edge_attr: torch.Tensor | None,
              mask: torch.Tensor | None, agent_mask: torch.Tensor | None, task_mask: torch.Tensor | None,
              agent_adj: torch.Tensor | None, agent_edge_attr: torch.Tensor | None,
              task_edge_attr: torch.Tensor | None) -> _Graph:
        for name, t in (("agent_x", agent_x), ("task_x", task_x)):
            if not torch.is_tensor(t) or t.dim() not in (2, 3):
                shape = tuple(t.shape) if torch.is_tensor(t) else type(t).__name__
                raise GraphInputError(name, f"expected a tensor (B, n, features) or (n, features), got {shape}")
        if agent_x.dim() != task_x.dim():
            raise GraphInputError("task_x", f"has {task_x.dim()} dimensions but agent_x has {agent_x.dim()}: batch "
                                            "both or neither")
        squeeze = agent_x.dim() == 2
        ax, tx = (agent_x.unsqueeze(0), task_x.unsqueeze(0)) if squeeze else (agent_x, task_x)
        B, N, M = ax.shape[0], ax.shape[1], tx.shape[1]
        if tx.shape[0] != B:
            raise GraphInputError("task_x", f"batch size {tx.shape[0]} != agent_x's {B}")
        if ax.shape[2] != net.agent_dim:
            raise GraphInputError("agent_x", f"has {ax.shape[2]} features per agent, the network expects "
                                             f"{net.agent_dim}")
        if tx.shape[2] != net.task_dim:
            raise GraphInputError("task_x", f"has {tx.shape[2]} features per task, the network expects {net.task_dim}")
        dtype, dev = ax.dtype, ax.device

        def batched(t: torch.Tensor | None, name: str, shape: tuple[int, ...]) -> torch.Tensor | None:
            if t is None:
                return None
            if not torch.is_tensor(t):
                raise GraphInputError(name, f"expected a tensor of shape {(B, *shape)}, got {type(t).__name__}")
            if t.dim() == len(shape) and tuple(t.shape) == shape:
                t = t.unsqueeze(0).expand(B, *shape)
            if tuple(t.shape) != (B, *shape):
                raise GraphInputError(name, f"has shape {tuple(t.shape)}, expected {(B, *shape)} or {shape}")
            return t

        def feats(t: torch.Tensor | None, name: str, shape: tuple[int, ...], dim: int) -> torch.Tensor | None:
            if dim == 0:
                if t is not None:
                    raise GraphInputError(name, f"given but the network was built with {name.replace('attr', 'dim')}"
                                                "=0")
                return None
            if t is None:
                raise GraphInputError(name, f"missing: the network expects {dim} features per edge")
            return batched(t, name, (*shape, dim))

        ea = feats(edge_attr, "edge_attr", (N, M), net.edge_dim)
        eaa = feats(agent_edge_attr, "agent_edge_attr", (N, N), net.agent_edge_dim if net.agent_edges else 0)
        eta = feats(task_edge_attr, "task_edge_attr", (M, M), net.task_edge_dim if net.task_edges else 0)

        def weights(t: torch.Tensor | None, name: str, shape: tuple[int, ...]) -> torch.Tensor:
            bt = batched(t, name, shape)
            if bt is None:
                return torch.ones((B, *shape), dtype=dtype, device=dev)
            if bt.dtype != torch.bool:
                raise GraphInputError(name, f"must be a bool tensor, got {bt.dtype}")
            return bt.to(dtype)

        alive_n = weights(agent_mask, "agent_mask", (N,))
        alive_m = weights(task_mask, "task_mask", (M,))
        w_nm = weights(mask, "mask", (N, M)) * alive_n.unsqueeze(2) * alive_m.unsqueeze(1)
        no_self_n = 1.0 - torch.eye(N, dtype=dtype, device=dev)
        no_self_m = 1.0 - torch.eye(M, dtype=dtype, device=dev)
        w_nn = weights(agent_adj, "agent_adj", (N, N)) * no_self_n * alive_n.unsqueeze(2) * alive_n.unsqueeze(1)
        w_mm = no_self_m * alive_m.unsqueeze(2) * alive_m.unsqueeze(1)
        if ea is not None:
            ea = ea.to(dtype) * w_nm.unsqueeze(-1)  # an absent edge's feature is unobserved: never used
        if eaa is not None:
            eaa = eaa.to(dtype) * w_nn.unsqueeze(-1)
        if eta is not None:
            eta = eta.to(dtype) * w_mm.unsqueeze(-1)
        return _Graph(ax, tx, ea, eaa, eta, w_nm, w_nn, w_mm, w_nm.sum(2), w_nm.sum(1), w_nn.sum(2),
                      w_mm.sum(2), squeeze)


class CostHead(nn.Module):
    """``c_ij = f([h_i^N, h_j^M, e_ij]; theta_c)`` for every pair (LPMARL Sec. 3.1; Table 4: ``[64, 64]``)."""

    def __init__(self, hidden: int, edge_dim: int = 0, mlp_units: Sequence[int] = (64, 64)) -> None:
        super().__init__()
        self.hidden, self.edge_dim = hidden, edge_dim
        self.net = PairMLP(hidden, hidden, edge_dim, mlp_units, 1)

    def forward(self, agent_h: torch.Tensor, task_h: torch.Tensor,
                edge_attr: torch.Tensor | None = None) -> torch.Tensor:
        """Costs ``(B, N, M)`` from ``agent_h (B, N, H)``, ``task_h (B, M, H)`` and (masked) edge features."""
        return self.net(agent_h, task_h, edge_attr).squeeze(-1)


class BipartiteCostModel(nn.Module):
    """:class:`BipartiteGNN` followed by :class:`CostHead`: ``C_theta(s)`` of LPMARL Sec. 3.1.

    ``forward`` takes the GNN's inputs and returns :class:`BipartiteOutput` (costs, agent and
    task embeddings). ``cost_edges=False`` leaves ``e_ij`` out of the head (the paper's
    ``c_ij = f(h_i, h_j)`` literally)."""

    def __init__(self, agent_dim: int, task_dim: int, edge_dim: int = 0, *, agent_edge_dim: int = 0,
                 task_edge_dim: int = 0, hidden: int = 32, mlp_units: Sequence[int] = (32, 32),
                 cost_units: Sequence[int] = (64, 64), rounds: int = 2, agent_edges: bool = True,
                 task_edges: bool = True, aggr: Aggregation = "sum", cost_edges: bool = True) -> None:
        super().__init__()
        self.gnn = BipartiteGNN(agent_dim, task_dim, edge_dim, agent_edge_dim=agent_edge_dim,
                                task_edge_dim=task_edge_dim, hidden=hidden, mlp_units=mlp_units, rounds=rounds,
                                agent_edges=agent_edges, task_edges=task_edges, aggr=aggr)
        self.cost_edges = bool(cost_edges and edge_dim)
        self.head = CostHead(hidden, edge_dim if self.cost_edges else 0, cost_units)

    def forward(self, agent_x: torch.Tensor, task_x: torch.Tensor, edge_attr: torch.Tensor | None = None, *,
                mask: torch.Tensor | None = None, agent_mask: torch.Tensor | None = None,
                task_mask: torch.Tensor | None = None, agent_adj: torch.Tensor | None = None,
                agent_edge_attr: torch.Tensor | None = None,
                task_edge_attr: torch.Tensor | None = None) -> BipartiteOutput:
        g = _Graph.build(self.gnn, agent_x, task_x, edge_attr, mask, agent_mask, task_mask, agent_adj,
                         agent_edge_attr, task_edge_attr)
        h_n, h_m = self.gnn._propagate(g)
        costs = self.head(h_n, h_m, g.edge_attr if self.cost_edges else None)
        if g.squeeze:
            return BipartiteOutput(costs[0], h_n[0], h_m[0])
        return BipartiteOutput(costs, h_n, h_m)


__all__ = ["BipartiteCostModel", "BipartiteGNN", "BipartiteOutput", "CostHead", "GraphInputError", "PairMLP",
           "pairwise_features", "visibility_mask"]
