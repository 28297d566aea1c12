"""PettingZoo ``ParallelEnv`` of the supply-chain inventory network: the batched core with B = 1 and a
single agent, ``"manager"``, the high level of OHIO App. B.4."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

from hieralloc.envs.base import SingleAgentNetworkEnv
from hieralloc.envs.supply.config import SupplyConfig
from hieralloc.envs.supply.core import StepResult, SupplyCore
from hieralloc.envs.supply.formulation import flow_action, invert, make_aux

AGENT = "manager"


class SupplyChainEnv(SingleAgentNetworkEnv):
    """Supply-chain inventory management (OHIO App. B.4) as a PettingZoo parallel env with one agent.

    * agent ``"manager"``; action ``Box(0, 1, (dim,), float32)``:

      - ``action_mode='goal'`` (default), ``dim = N + 1``: weights over warehouse + stores (a point of
        the Dirichlet's support after normalisation; the share of the warehouse's stock each store
        should receive) and the production fraction of c_p, executed by the inventory LP (Eq. (33));
      - ``action_mode='flow'``, ``dim = S + 1`` (end-to-end): each shipment and the production as a
        fraction of its individual upper bound (warehouse storage capacity; c_p, OHIO App. B.4.3),
        cut to the warehouse stock; storage capacities are not enforced (excess is discarded and
        penalised by Eq. (32)); ``violation`` = units the request breaks Eq. (33c-e) by.

    * observation = ``state()`` = ``Box(0, inf, (N (8 + 2K) + 1,), float32)``: the node features of
      :meth:`graph_obs` flattened node-major, then t / T.
    * reward: OHIO Eq. (32); truncation after T steps.
    * ``infos["manager"]`` per step: reward and its terms (revenue, storage_cost, production_cost,
      transport_cost, overflow_cost, backorder_cost), sales (units), demand, backorders, produced, shipped,
      violation (flow mode: units the request breaks Eq. (33c-e) by), slack (goal mode: sum |eps| of Eq. (33a)),
      shipments (S,), production (1,), targets (S + 1,), store_demand, store_sales,
      store_backorders (S,), inventory and overflow (N,) at the end of the step, and the state after
      the step: stock (N,), t, store_demand_next (S,). ``reset`` infos hold that state.
    * ``episode_metrics()``: see :meth:`SupplyCore.episode_metrics`.

    ``reset(options={"demand": (T, S) ints, "inventory": (N,) ints})`` fixes the demand or the
    initial stock.
    """

    AGENT = AGENT
    metadata = {"name": "supply_chain_v0", "render_modes": ["ansi"], "is_parallelizable": True}

    def __init__(self, config: SupplyConfig | None = None, render_mode: str | None = None) -> None:
        self.config = config if config is not None else SupplyConfig()
        self.core = SupplyCore(self.config, 1)
        self._init_agents(render_mode)
        c = self.core
        self.n_nodes, self.n_stores = c.N, c.S
        dim = c.N + c.P if self.config.action_mode == "goal" else c.S + c.P
        self._obs_space = gymnasium.spaces.Box(0.0, np.inf, (c.obs_dim,), dtype=np.float32)
        self._act_space = gymnasium.spaces.Box(0.0, 1.0, (dim,), dtype=np.float32)
        self.state_space = self._obs_space

    # ------------------------------------------------------------------ PettingZoo API
    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        opts = options or {}
        self.core.reset(seed=seed, demand=opts.get("demand"), inventory=opts.get("inventory"))
        self.agents = list(self.possible_agents)
        return {AGENT: self.core.observation()[0]}, {AGENT: self._state_info()}

    def _state_info(self) -> dict[str, Any]:
        c = self.core
        return {"t": c.t, "stock": c.stock[0].copy(), "store_demand_next": c.current_demand()[0].copy()}

    def _default_action(self) -> np.ndarray:
        """No action: keep everything at the warehouse and produce nothing."""
        a = np.zeros(self._act_space.shape)
        if self.config.action_mode == "goal":
            a[0] = 1.0
        return a

    def _step_info(self, res: StepResult) -> dict[str, Any]:
        scalars = ("reward", "revenue", "sales", "demand", "backorders", "storage_cost", "production_cost",
                   "transport_cost", "overflow_cost", "backorder_cost", "violation", "slack")
        info: dict[str, Any] = {k: float(getattr(res, k)[0]) for k in scalars}
        info["produced"] = float(res.production[0].sum())
        info["shipped"] = float(res.shipments[0].sum())
        for k in ("shipments", "production", "targets", "store_demand", "store_sales", "store_backorders",
                  "inventory", "overflow"):
            info[k] = getattr(res, k)[0].copy()
        info.update(self._state_info())
        return info

    def _render_state(self) -> str:
        c = self.core
        return f"stock={c.stock[0].tolist()} backorders={c.backorders[0].tolist()}"

    # ------------------------------------------------------------------ extras
    def graph_obs(self) -> dict[str, np.ndarray]:
        """OHIO App. B.4.2 state as graph data: ``x`` (N, 8 + 2K) float32 node features, ``edge_index``
        (2, 2S) int64 (warehouse <-> stores) and ``edge_attr`` (2S, 2) float32 (travel time, transport cost)."""
        c = self.core
        return {"x": c.node_features()[0], "edge_index": c.edge_index, "edge_attr": c.edge_features()[0]}

    def aux(self) -> np.ndarray:
        """(6S + 4,) raw state quantities (layout: :data:`~hieralloc.envs.supply.formulation.AUX_FIELDS`)."""
        return make_aux(self.core)[0]

    def action_for_flows(self, shipments: Any, production: Any) -> np.ndarray:
        """The action (of this env's ``action_mode``) that asks for these shipments (S,) and production (1,):
        the OHIO inverse (B.4.5) in goal mode, the end-to-end fractions in flow mode. Feasible flows are
        executed exactly; infeasible ones are projected by the controller."""
        flows = np.concatenate([np.asarray(shipments, dtype=float).ravel(),
                                np.asarray(production, dtype=float).ravel()])[None, :]
        conv = invert if self.config.action_mode == "goal" else flow_action
        return conv(self.aux()[None, :], flows)[0].astype(np.float32)


def make_env(config: SupplyConfig | None = None, **kwargs: Any) -> SupplyChainEnv:
    return SupplyChainEnv(config, **kwargs)


__all__ = ["AGENT", "SupplyChainEnv", "make_env"]
