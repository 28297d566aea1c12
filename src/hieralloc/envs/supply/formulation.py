r"""The OHIO formulation of the supply-chain family (OHIO App. B.4.2-B.4.5, B.5.1).

* Graph: node 0 the warehouse, nodes 1..S the stores; message edges both ways between the warehouse
  and every store; flow edges warehouse -> store; the warehouse is the only producer.
* Goal (``goal_dim = N + 1``): Dirichlet weights over warehouse + stores (the share of the
  warehouse's stock each store should receive; the warehouse's share stays), then the production
  as a fraction of c_p (the Beta head of B.5.1). The environment's inventory LP (Eq. (33)) turns it
  into flows (:meth:`SupplyCore.goal_targets`).
* Flows (``flow_dim = S + 1``): shipments on the flow edges, then production.
* Inverse (B.4.5): ``q^_i = sum_j f_ji`` (the observed inflow) and ``w^ = w`` (the realised
  production); as a goal vector, store weights ``f_i / q_0``, warehouse weight
  ``(q_0 - sum_i f_i) / q_0`` and production fraction ``w / c_p``. Executing it from the same state
  gives targets equal to the observed flows, which are feasible, so Eq. (33)'s optimum is unique
  (objective 0) and reproduces them exactly.
* End-to-end action (``action_mode='flow'``): ``f_i / U_i`` with ``U_i`` the individual upper bound
  (the warehouse's storage capacity, B.4.3) and ``w / c_p``.

``aux`` layout (float64, length ``6 S + 4``), see :data:`AUX_FIELDS`: stock on hand per node
(N), back-orders per store (S), demand of the step per store (S), ``n_i`` of Eq. (33c) per store
(S), production in the pipeline (1), storage capacity per node (N), production capacity (1),
upper bound of each end-to-end shipment (S).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hieralloc.errors import HierallocError
from hieralloc.ohio.formulation import GraphLayout, GraphState, fingerprint, register_formulation

FAMILY = "supply"

#: (name, length as a function of S) of the aux blocks, in order
AUX_FIELDS: tuple[tuple[str, str], ...] = (
    ("stock", "N"), ("backorders", "S"), ("demand", "S"), ("store_net", "S"), ("pipeline", "1"),
    ("capacity", "N"), ("production_capacity", "1"), ("flow_bound", "S"),
)


def aux_slices(n_stores: int) -> dict[str, slice]:
    """Slices of the aux blocks for S stores (see :data:`AUX_FIELDS`)."""
    S = n_stores
    size = {"N": S + 1, "S": S, "1": 1}
    out, k = {}, 0
    for name, n in AUX_FIELDS:
        out[name] = slice(k, k + size[n])
        k += size[n]
    return out


def aux_dim(n_stores: int) -> int:
    return 6 * n_stores + 4


def make_aux(core: Any) -> np.ndarray:
    """(B, 6S + 4) aux of the core's current states."""
    B = core.B
    parts = [core.stock, core.backorders, core.current_demand(), core.store_net(), core.production_pipeline()[:, None],
             np.broadcast_to(core.capacity, (B, core.N)), np.full((B, 1), core.cp),
             np.broadcast_to(core.flow_bound, (B, core.S))]
    return np.concatenate([np.asarray(p, dtype=float) for p in parts], axis=1)


def _split(aux: Any, flows: Any) -> tuple[np.ndarray, np.ndarray, int, dict[str, slice]]:
    a = np.atleast_2d(np.asarray(aux, dtype=float))
    f = np.atleast_2d(np.asarray(flows, dtype=float))
    S = f.shape[1] - 1
    if S < 1 or a.shape[1] != aux_dim(S) or a.shape[0] != f.shape[0]:
        raise HierallocError(f"supply formulation: aux {a.shape} and flows {f.shape} do not match (flows hold S "
                             "shipments + 1 production, aux 6 S + 4 values, one row per transition)")
    return a, f, S, aux_slices(S)


def invert(aux: Any, flows: Any) -> np.ndarray:
    """OHIO App. B.4.5 analytical inverse, batched: (B, 6S + 4) aux, (B, S + 1) flows -> (B, S + 2) goals."""
    a, f, S, sl = _split(aux, flows)
    q0 = a[:, sl["stock"]][:, 0]
    ship, prod = np.maximum(f[:, :S], 0.0), np.maximum(f[:, S:], 0.0)
    cp = a[:, sl["production_capacity"]]
    goal = np.zeros((a.shape[0], S + 2))
    has = q0 > 0
    den = np.where(has, q0, 1.0)[:, None]
    goal[:, 1:S + 1] = np.where(has[:, None], ship / den, 0.0)
    goal[:, 0] = np.where(has, np.maximum(q0 - ship.sum(axis=1), 0.0) / den[:, 0], 1.0)
    tot = goal[:, :S + 1].sum(axis=1, keepdims=True)
    goal[:, :S + 1] /= tot  # a distribution (only changes anything for infeasible shipments)
    goal[:, S + 1:] = np.clip(np.divide(prod, cp, out=np.zeros_like(prod), where=cp > 0), 0.0, 1.0)
    return goal


def flow_action(aux: Any, flows: Any) -> np.ndarray:
    """(B, S + 1) raw flows -> (B, S + 1) ``action_mode='flow'`` actions (fractions of the individual bounds)."""
    a, f, S, sl = _split(aux, flows)
    bound = np.concatenate([a[:, sl["flow_bound"]], a[:, sl["production_capacity"]]], axis=1)
    out = np.divide(np.maximum(f, 0.0), bound, out=np.zeros_like(f), where=bound > 0)
    return np.clip(out, 0.0, 1.0)


class SupplyFormulation:
    """OHIO formulation of the ``supply`` family (stateless; see the module docstring)."""

    family = FAMILY

    @staticmethod
    def _core(env: Any) -> Any:
        core = getattr(getattr(env, "unwrapped", env), "core", None)
        if core is None or not hasattr(core, "store_net"):
            raise HierallocError(f"the supply formulation needs a supply-chain environment, got {type(env).__name__}")
        return core

    def layout(self, env: Any) -> GraphLayout:
        core = self._core(env)
        cfg = core.config
        fp = fingerprint(family=FAMILY, edge_index=core.edge_index, flow_edges=core.flow_edges,
                         producers=np.zeros(1, dtype=np.int64), obs_scale=cfg.obs_scale, horizon=cfg.horizon,
                         **{k: np.asarray(v) for k, v in cfg.dynamics().items()})
        return GraphLayout(n_nodes=core.N, edge_index=core.edge_index, flow_edges=core.flow_edges,
                           producers=np.zeros(1, dtype=np.int64), fingerprint=fp)

    def observe(self, env: Any) -> GraphState:
        core = self._core(env)
        return GraphState(x=core.node_features()[0], edge_attr=core.edge_features()[0], aux=make_aux(core)[0])

    def goal_dim(self, layout: GraphLayout) -> int:
        return layout.n_nodes + int(layout.producers.shape[0])

    def flow_dim(self, layout: GraphLayout) -> int:
        return layout.n_flow_edges + int(layout.producers.shape[0])

    def low_level(self, env: Any, info: dict[str, Any]) -> np.ndarray:
        try:
            ship, prod = info["shipments"], info["production"]
        except KeyError as e:
            raise HierallocError(f"step info lacks {e}: pass the info of a supply-chain step") from None
        return np.concatenate([np.asarray(ship, dtype=float).ravel(), np.asarray(prod, dtype=float).ravel()])

    def invert(self, aux: np.ndarray, flows: np.ndarray) -> np.ndarray:
        return invert(aux, flows)

    def flow_action(self, aux: np.ndarray, flows: np.ndarray) -> np.ndarray:
        return flow_action(aux, flows)


FORMULATION = register_formulation(SupplyFormulation())

__all__ = ["AUX_FIELDS", "FAMILY", "FORMULATION", "SupplyFormulation", "aux_dim", "aux_slices", "flow_action",
           "invert", "make_aux"]
