"""The networks of the LPMARL learner (Table 4 sizes, LeakyReLU(0.01)).

* :func:`graph_model`: a :class:`~hieralloc.nn.bipartite.BipartiteCostModel` over the agent-task
  graph (Eq. (1)-(3) and a pair head). It is the cost model ``C_theta(s)`` (Sec. 3.1; head units
  ``cost_units``), the high-level critic ``Q^h(s, a^h_i = j; phi_h)`` (one value per agent-task
  pair, head units ``critic_units``) and Dec-LPMARL's local policy (App. D: logits per pair on the
  graph restricted to the observation range).
* :func:`graph_forward`: runs such a model on a :class:`~hieralloc.algos.lpmarl.graph.GraphBatch`,
  with relative positions and distances as edge features (agent-task, agent-agent, task-task) and,
  for the local graph, edges only within range.
* :func:`low_net`: the task-conditioned low-level policy ``pi^l(a^l | o_i, a^h_i)`` (Eq. (8)) and
  critic ``Q^l(s, a^l; a^h_i)`` (Eq. (17)): MLPs over ``env.task_observation(assignment)``, one
  network for all agents (shared within every group).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from hieralloc.algos.lpmarl.graph import GraphBatch
from hieralloc.nn.bipartite import BipartiteCostModel, pairwise_features
from hieralloc.nn.mlp import mlp

#: edge features: relative position (2) and distance (1), see :func:`~hieralloc.nn.bipartite.pairwise_features`
EDGE_DIM = 3


def graph_model(agent_dim: int, task_dim: int, gnn_units: Sequence[int], head_units: Sequence[int], rounds: int,
                aggr: str) -> BipartiteCostModel:
    """A bipartite GNN (Eq. (1)-(3), units ``gnn_units``, embedding width ``gnn_units[-1]``) with a pair head."""
    units = [int(u) for u in gnn_units]
    return BipartiteCostModel(agent_dim, task_dim, EDGE_DIM, agent_edge_dim=EDGE_DIM, task_edge_dim=EDGE_DIM,
                              hidden=units[-1], mlp_units=units, cost_units=[int(u) for u in head_units],
                              rounds=rounds, aggr="mean" if aggr == "mean" else "sum")


def graph_forward(model: BipartiteCostModel, g: GraphBatch, local: bool = False) -> torch.Tensor:
    """Pair outputs ``(B, N, M)`` of ``model`` on the graphs ``g``; ``local``: only the edges within the
    agents' observation range (Dec-LPMARL's ``E_dec``, App. D)."""
    a_pos, t_pos = g.agent_x[..., :2], g.task_x[..., :2]
    out = model(g.agent_x, g.task_x, pairwise_features(a_pos, t_pos),
                agent_edge_attr=pairwise_features(a_pos, a_pos), task_edge_attr=pairwise_features(t_pos, t_pos),
                agent_mask=g.agent_alive, task_mask=g.task_alive,
                mask=g.visible if local else None, agent_adj=g.agent_visible if local else None)
    return out.costs


def low_net(in_dim: int, units: Sequence[int], n_actions: int) -> nn.Sequential:
    """``f(o_i^{a^h_i}; theta_l)``: an MLP with LeakyReLU(0.01) (Table 4) from the task observation to one
    output per low-level action (logits of Eq. (8), or Q^l values)."""
    return mlp(in_dim, [int(u) for u in units], n_actions, nn.LeakyReLU)


__all__ = ["EDGE_DIM", "graph_forward", "graph_model", "low_net"]
