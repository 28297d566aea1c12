r"""The OHIO formulation of the mobility family (:class:`hieralloc.ohio.Formulation`; OHIO App. B.3).

* **Graph** (:meth:`MobilityFormulation.layout`): ``edge_index`` = the road-graph edges of
  ``graph_obs()`` (message passing); ``flow_edges`` = the edges of the rebalancing LP (Eq. (30)):
  every ordered pair ``i != j`` in :class:`~hieralloc.solvers.RebalancingModel`'s order (row-major)
  when ``rebalance_edges='complete'`` (OHIO B.3.1), the road-graph edges when ``'graph'``; no
  producers. The fingerprint hashes what defines the network and the demand model of the episode
  window (expected trips, fares, trip and rebalancing times and costs, fleet, edges, T, K,
  ``ready_delay``, ``obs_scale``); the action mode is not part of it, so goal- and flow-mode
  environments of one scenario share data sets.
* **State** (:meth:`observe`): ``x``, ``edge_attr`` of ``graph_obs()`` (B.3.2); ``aux`` =
  ``[q_1..q_N]``, the raw idle vehicles after the matching (what the high level distributes),
  followed, only when the flow edges are not the complete graph, by one code ``src * N + dst`` per
  flow edge (so that :meth:`invert` and :meth:`flow_action`, which see ``aux`` and flows only, know
  the edges). ``A = N`` (complete) or ``N + F`` (road graph); ``A (A - 1) = F`` tells them apart.
* **Low level** (:meth:`low_level`): the step's rebalancing flows ``info['reb_flow'][src, dst]`` on
  the flow edges.
* **Inverse** (:meth:`invert`, OHIO App. B.3.5): ``q^_i = q_i + sum_j (f_ji - f_ij)``, returned as
  the distribution ``q^ / sum_i q_i`` (uniform when no vehicle is idle: every goal then gives no
  flows). Batched numpy: one ``(B, F) @ (F, N)`` product with the signed incidence matrix.
  The general duality inverse (absolute sub-optimality, for noisy flows) is
  :class:`hieralloc.solvers.inverse.RebalancingInverse`; on flows from the controller it returns the
  same target with gap 0.
* **End-to-end action** (:meth:`flow_action`): ``a_e = f_e / q_src(e)`` (0 where no vehicle is idle),
  the ``action_mode='flow'`` action that executes the flows exactly.

Exactness (tests/envs/test_mobility_ohio.py). With the defaults (complete flow edges,
``target_rounding='largest-remainder'``) the controller reaches its integer targets exactly, so the
inverted goal yields the *same integer targets* and the LP, in the same solver state, returns the
same flows bit for bit. Where ties make several flow sets optimal, a solver in another state (a
fresh model, another warm-start basis) may return another optimal set; and with ``'floor'``
rounding or road-graph edges (targets not reached exactly; slack) the inverted goal is the reached
distribution, a different right-hand side with the same optimal flows among its optima. In those
cases exactness means: the same reached distribution and the same rebalancing cost (the observed
flows are optimal for the inverted goal; proof in docs/methods/ohio-inverse.md).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from hieralloc.envs.mobility.env import MobilityEnv
from hieralloc.errors import DataError, IncompatibleError
from hieralloc.ohio.formulation import GraphLayout, GraphState, fingerprint

FAMILY = "mobility"


def _base(env: Any) -> MobilityEnv:
    base = getattr(env, "unwrapped", env)
    if not isinstance(base, MobilityEnv):
        raise IncompatibleError(f"the mobility OHIO formulation needs a mobility environment, got "
                                f"{type(base).__name__}")
    return base


@functools.lru_cache(maxsize=32)
def _complete_edges(n: int) -> tuple[np.ndarray, np.ndarray]:
    ii, jj = np.nonzero(~np.eye(n, dtype=bool))
    return ii.astype(np.int64), jj.astype(np.int64)


@functools.lru_cache(maxsize=32)
def _incidence(n: int, edges: bytes) -> np.ndarray:
    """(F, N) signed incidence: +1 at the edge's destination, -1 at its origin."""
    e = np.frombuffer(edges, dtype=np.int64).reshape(2, -1)
    inc = np.zeros((e.shape[1], n))
    k = np.arange(e.shape[1])
    inc[k, e[1]] += 1.0
    inc[k, e[0]] -= 1.0
    return inc


def decode_aux(aux: np.ndarray, n_flows: int) -> tuple[int, np.ndarray, np.ndarray]:
    """``(N, src, dst)`` of the flow edges from an aux row layout (see the module docstring)."""
    A = int(aux.shape[-1])
    if A * (A - 1) == n_flows:
        src, dst = _complete_edges(A)
        return A, src, dst
    N = A - n_flows
    if N < 1:
        raise DataError(f"mobility aux has {A} entries and the flows {n_flows}: expected N idle counts (complete "
                        "flow edges, N (N - 1) flows) or N idle counts plus one code per flow edge; were aux and "
                        "flows taken from one data set?")
    codes = np.rint(np.atleast_2d(aux)[0, N:]).astype(np.int64)
    return N, codes // N, codes % N


class MobilityFormulation:
    """OHIO formulation of the mobility family (stateless; see the module docstring)."""

    family = FAMILY

    def layout(self, env: Any) -> GraphLayout:
        base = _base(env)
        c = base.core
        g = base.graph_obs()
        fp = fingerprint(lam=c.lam, price=c.price, trip_steps=c.trip_steps, reb_steps=c.reb_steps,
                         pax_cost=c.pax_cost, reb_cost=c.reb_cost_matrix, initial_idle=c.initial_idle,
                         graph_edges=c.graph_edges, flow_edges=c.flow_edges, T=c.T, K=c.K,
                         ready_delay=base.config.ready_delay, obs_scale=base.config.obs_scale)
        return GraphLayout(n_nodes=c.N, edge_index=np.ascontiguousarray(g["edge_index"], dtype=np.int64),
                           flow_edges=np.ascontiguousarray(c.flow_edges.T, dtype=np.int64),
                           producers=np.zeros(0, dtype=np.int64), fingerprint=fp)

    def aux(self, env: Any) -> np.ndarray:
        """(A,) float64 raw quantities of the current state (module docstring)."""
        base = _base(env)
        c = base.core
        idle = c.idle[0].astype(np.float64)
        if c.flow_edges.shape[0] == c.N * (c.N - 1):
            return idle
        codes = (c.flow_edges[:, 0] * c.N + c.flow_edges[:, 1]).astype(np.float64)
        return np.concatenate([idle, codes])

    def observe(self, env: Any) -> GraphState:
        base = _base(env)
        g = base.graph_obs()
        return GraphState(x=g["x"], edge_attr=g["edge_attr"], aux=self.aux(base))

    def goal_dim(self, layout: GraphLayout) -> int:
        return layout.n_nodes

    def flow_dim(self, layout: GraphLayout) -> int:
        return layout.n_flow_edges

    def low_level(self, env: Any, info: dict[str, Any]) -> np.ndarray:
        """(F,) float64 rebalancing flows of the step (``info['reb_flow']`` on the flow edges)."""
        c = _base(env).core
        R = np.asarray(info["reb_flow"])
        return R[c.flow_edges[:, 0], c.flow_edges[:, 1]].astype(np.float64)

    def invert(self, aux: np.ndarray, flows: np.ndarray) -> np.ndarray:
        """OHIO App. B.3.5: ``(B, A)`` aux and ``(B, F)`` flows -> ``(B, N)`` desired distributions."""
        a = np.atleast_2d(np.asarray(aux, dtype=np.float64))
        f = np.atleast_2d(np.asarray(flows, dtype=np.float64))
        if a.shape[0] != f.shape[0]:
            raise DataError(f"invert got {a.shape[0]} aux rows and {f.shape[0]} flow rows; they must pair up")
        N, src, dst = decode_aux(a, f.shape[1])
        idle = a[:, :N]
        target = idle + f @ _incidence(N, np.stack([src, dst]).tobytes())  # q + inflow - outflow
        M = idle.sum(axis=1, keepdims=True)
        return np.where(M > 0, target / np.where(M > 0, M, 1.0), 1.0 / N)

    def flow_action(self, aux: np.ndarray, flows: np.ndarray) -> np.ndarray:
        """``(B, F)`` flows -> ``(B, F)`` flow-mode actions ``f_e / q_src(e)`` (0 where nothing is idle)."""
        a = np.atleast_2d(np.asarray(aux, dtype=np.float64))
        f = np.atleast_2d(np.asarray(flows, dtype=np.float64))
        N, src, _dst = decode_aux(a, f.shape[1])
        q = a[:, :N][:, src]
        return np.where(q > 0, f / np.where(q > 0, q, 1.0), 0.0)


FORMULATION = MobilityFormulation()

__all__ = ["FAMILY", "FORMULATION", "MobilityFormulation", "decode_aux"]
