"""PettingZoo ``ParallelEnv`` of the mobility-on-demand network: the batched core with B = 1 and a
single agent, ``"operator"``, the high level of OHIO App. B.3."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

from hieralloc.envs.base import SingleAgentNetworkEnv
from hieralloc.envs.mobility.config import MobilityConfig
from hieralloc.envs.mobility.core import MatchOutcome, MobilityCore, StepResult
from hieralloc.envs.mobility.scenario import Scenario

AGENT = "operator"


class MobilityEnv(SingleAgentNetworkEnv):
    """Mobility on demand (OHIO App. B.3) as a PettingZoo parallel env with one agent.

    * agent ``"operator"``; action (``action_mode='goal'``, default) ``Box(0, 1, (N,), float32)``:
      desired idle-vehicle distribution weights (OHIO B.3.2). They are clipped at 0 and normalised to
      sum 1 (an all-zero action keeps the current distribution, i.e. no rebalancing), then turned into
      integer targets over the idle vehicles (``config.target_rounding``) for the rebalancing LP
      (Eq. (30)). With ``action_mode='flow'`` (end-to-end, OHIO B.3.3) the action is
      ``Box(0, 1, (F,), float32)``, the fraction of the origin's idle vehicles sent along each of the
      F flow edges (``core.flow_edges``), projected onto the feasible set (step info ``violation``).
    * observation = ``state()`` = ``Box(0, inf, (N * (2 + 2K) + 1,), float32)``: the node features of
      :meth:`graph_obs` flattened region-major, then t / T.
    * :meth:`graph_obs`: node features ``x`` (N, 2 + 2K), ``edge_index`` (2, E) and ``edge_attr``
      (E, 5) of the road graph, as numpy arrays (OHIO B.3.2 state as graph data).
    * reward: OHIO B.3.2 profit (see :mod:`hieralloc.envs.mobility.core`); truncation after T steps.
    * ``infos["operator"]`` per step: reward, pax_reward, served, demand, revenue, operating_cost,
      reb_cost, rebalanced, slack (what the reward credits), violation (vehicles removed by the
      flow-mode projection, 0 in goal mode), targets (the distribution aimed at; in flow mode the one
      the flows reach), reb_flow (N, N) of step t,
      pax_flow and od_demand (N, N) of the matching of t + 1, idle_before, idle, in_transit, fleet, t.
      ``reset`` infos hold the matching of step 0 (pax_flow, od_demand, idle_before, idle, ...).
    * ``episode_metrics()``: return, served, demand, served_fraction, revenue, operating_cost,
      reb_cost, rebalanced, slack, violation, steps, fleet.

    ``reset(options={"demand": (T, N, N) ints, "idle": (N,) ints})`` fixes the realised demand or the
    initial vehicles.
    """

    AGENT = AGENT
    metadata = {"name": "mobility_v0", "render_modes": ["ansi"], "is_parallelizable": True}

    def __init__(self, config: MobilityConfig | None = None, scenario: Scenario | None = None,
                 render_mode: str | None = None, **core_kwargs: Any) -> None:
        self.config = config if config is not None else MobilityConfig()
        self.core = MobilityCore(self.config, 1, scenario, **core_kwargs)
        self._init_agents(render_mode)
        self.n_regions = self.core.N
        self._obs_space = gymnasium.spaces.Box(0.0, np.inf, (self.core.obs_dim,), dtype=np.float32)
        self.n_flow_edges = int(self.core.flow_edges.shape[0])
        act_dim = self.n_flow_edges if self.config.action_mode == "flow" else self.core.N
        self._act_space = gymnasium.spaces.Box(0.0, 1.0, (act_dim,), dtype=np.float32)
        self.state_space = self._obs_space

    # ------------------------------------------------------------------ PettingZoo API
    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        opts = options or {}
        m = self.core.reset(seed=seed, demand=opts.get("demand"), idle=opts.get("idle"))
        self.agents = list(self.possible_agents)
        info = {"t": 0, **self._match_info(m), "pax_reward_pending": float(m.pax_reward[0])}
        return {AGENT: self.core.observation()[0]}, {AGENT: info}

    def _match_info(self, m: MatchOutcome | None) -> dict[str, Any]:
        c = self.core
        zeros = np.zeros((c.N, c.N), dtype=np.int64)
        return {"pax_flow": m.pax_flow[0] if m is not None else zeros,
                "od_demand": m.od_demand[0] if m is not None else zeros,
                "idle_before": c.idle_before[0].copy(), "idle": c.idle[0].copy(),
                "in_transit": int(c.in_transit[0]), "fleet": int(c.fleets[0])}

    def _default_action(self) -> np.ndarray:
        """No action: an all-zero one (goal mode: keep the current distribution; flow mode: send nothing)."""
        return np.zeros(self._act_space.shape)

    def _step_info(self, res: StepResult) -> dict[str, Any]:
        return {"t": res.t, "reward": float(res.reward[0]), "pax_reward": float(res.pax_reward[0]),
                "served": float(res.served[0]), "demand": float(res.demand[0]), "revenue": float(res.revenue[0]),
                "operating_cost": float(res.operating_cost[0]), "reb_cost": float(res.reb_cost[0]),
                "rebalanced": float(res.rebalanced[0]), "slack": float(res.slack[0]),
                "violation": float(res.violation[0]),
                "targets": res.targets[0].copy(), "reb_flow": res.reb_flow[0], **self._match_info(res.match)}

    def _render_state(self) -> str:
        c = self.core
        return f"idle={c.idle[0].tolist()} in_transit={int(c.in_transit[0])}"

    # ------------------------------------------------------------------ extras
    def graph_obs(self) -> dict[str, np.ndarray]:
        """OHIO App. B.3.2 state as graph data: ``x`` (N, 2 + 2K) float32 node features,
        ``edge_index`` (2, E) int64 road-graph edges (both directions, no self-loops) and
        ``edge_attr`` (E, 5) float32 (see :meth:`MobilityCore.node_features` / ``edge_features``)."""
        c = self.core
        return {"x": c.node_features()[0], "edge_index": np.ascontiguousarray(c.graph_edges.T),
                "edge_attr": c.edge_features()[0]}

    def idle_vehicles(self) -> np.ndarray:
        """(N,) idle vehicles after the current matching: what the action distributes."""
        return self.core.idle[0].copy()

    def forecast_demand(self, horizon: int) -> np.ndarray:
        """(horizon, N, N) expected trips for the next ``horizon`` steps (the scenario's rates)."""
        return self.core.forecast_demand(horizon)

    @property
    def scenario(self) -> Scenario:
        return self.core.scenario


def make_env(config: MobilityConfig | None = None, **kwargs: Any) -> MobilityEnv:
    return MobilityEnv(config, **kwargs)


__all__ = ["AGENT", "MobilityEnv", "make_env"]
