"""The contract between an OHIO environment family and everything generic in OHIO (datasets,
learners, benchmarks): how the network is laid out as a graph, what a state looks like as graph
data, which low-level flows a step executed, and how those flows invert to the high-level goal.

OHIO (Sec. 3-4, App. B.3-B.4) splits a network decision into a high-level *goal* u (a desired
next state: an idle-vehicle distribution, an inventory distribution plus production) and a fixed
low-level optimisation controller (an LP) that turns u into *flows*. Offline data hold states and
flows only; the inverse problem recovers u from the flows (OHIO App. B.3.5, B.4.5), so any
offline RL algorithm can learn the high level from data collected by any behaviour policy.

Every environment family that supports OHIO registers one :class:`Formulation` with
:func:`register_formulation`. Environments of such a family take ``action_mode='goal'`` (the
action is a goal vector, executed by the family's LP controller) or ``action_mode='flow'`` (the
end-to-end baselines of App. B.3.3 / B.4.3: the action sets the edge flows directly, projected
onto the feasible set, with the projection's size logged as the step info ``violation``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from hieralloc.errors import IncompatibleError


@dataclass(frozen=True)
class GraphLayout:
    """The fixed graph of one scenario.

    ``edge_index`` are the GNN's message edges; ``flow_edges`` the edges whose flows the low level
    sets (the support of end-to-end actions); ``producers`` the nodes with a production decision
    (none for mobility). ``fingerprint`` identifies the scenario (see :func:`fingerprint`); a data
    set collected on one fingerprint is rejected on another.
    """

    n_nodes: int
    edge_index: np.ndarray  #: (2, E) int64
    flow_edges: np.ndarray  #: (2, F) int64
    producers: np.ndarray   #: (P,) int64
    fingerprint: str

    @property
    def n_edges(self) -> int:
        return int(self.edge_index.shape[1])

    @property
    def n_flow_edges(self) -> int:
        return int(self.flow_edges.shape[1])


@dataclass
class GraphState:
    """One state as graph data (OHIO App. B.3.2 / B.4.2).

    ``x`` and ``edge_attr`` are scaled for learning; ``aux`` holds the raw quantities the inverse
    and the end-to-end action map need (e.g. idle vehicles per region), in a layout the family
    documents.
    """

    x: np.ndarray          #: (N, Fx) float32 node features
    edge_attr: np.ndarray  #: (E, Fe) float32 edge features
    aux: np.ndarray        #: (A,) float64 raw quantities


class Formulation(Protocol):
    """What an environment family provides to OHIO (one object per family, stateless)."""

    family: str

    def layout(self, env: Any) -> GraphLayout:
        """The scenario's graph (fixed for the environment's lifetime)."""
        ...

    def observe(self, env: Any) -> GraphState:
        """The current state (after ``reset`` or ``step``) as graph data."""
        ...

    def goal_dim(self, layout: GraphLayout) -> int:
        """Length of the goal vector (the ``action_mode='goal'`` action)."""
        ...

    def flow_dim(self, layout: GraphLayout) -> int:
        """Length of the flow vector (the low-level action; also the ``action_mode='flow'`` action)."""
        ...

    def low_level(self, env: Any, info: dict[str, Any]) -> np.ndarray:
        """(flow_dim,) float64 raw flows the step that produced ``info`` executed."""
        ...

    def invert(self, aux: np.ndarray, flows: np.ndarray) -> np.ndarray:
        """Analytical inverse: (B, A) aux of the states and (B, flow_dim) flows -> (B, goal_dim)
        goals that make the controller produce exactly those flows."""
        ...

    def flow_action(self, aux: np.ndarray, flows: np.ndarray) -> np.ndarray:
        """(B, flow_dim) raw flows -> (B, flow_dim) ``action_mode='flow'`` actions that execute them."""
        ...


FORMULATIONS: dict[str, Formulation] = {}


def register_formulation(formulation: Formulation) -> Formulation:
    """Register the OHIO formulation of an environment family (at import of the family's package)."""
    FORMULATIONS[formulation.family] = formulation
    return formulation


def get_formulation(family: str) -> Formulation:
    """The OHIO formulation of an environment family, or one clear error."""
    from hieralloc import registry

    registry.load_builtins()
    if family not in FORMULATIONS:
        raise IncompatibleError(f"environment family '{family}' has no OHIO formulation (families with one: "
                                f"{', '.join(sorted(FORMULATIONS)) or 'none'}); OHIO needs a network environment "
                                "such as mobility or supply-chain")
    return FORMULATIONS[family]


def fingerprint(**arrays: Any) -> str:
    """sha256 (first 16 hex digits) over named arrays/values, order-independent in the names."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(np.asarray(arrays[name]))
        h.update(name.encode())
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


__all__ = ["FORMULATIONS", "Formulation", "GraphLayout", "GraphState", "fingerprint", "get_formulation",
           "register_formulation"]
