"""Configuration of the mobility-on-demand environment (OHIO App. B.3; Gammelli et al. 2021-2023)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from hieralloc.config import Config, param
from hieralloc.envs.mobility.scenario import GRAPHS, REB_TIME_HOURS


@dataclass
class MobilityConfig(Config):
    """Every parameter of the mobility environment. Defaults: the synthetic city (no data file).

    The registered scenarios ``mobility-nyc-brooklyn`` and ``mobility-shenzhen-dtw`` set the
    README calibrations (city, demand_ratio, json_hr, json_tstep).
    """

    city: str = param("synthetic", "'synthetic' (generated, no file), a dataset name (e.g. nyc_brooklyn; "
                      "see 'hieralloc data list') read from the data directory, or the path of a scenario "
                      "file in the amod schema")
    data_dir: str = param("", "data directory for dataset names ('' = --data-dir / $HIERALLOC_DATA_DIR / "
                          "~/.cache/hieralloc/data)")
    demand_ratio: float = param(1.0, "demand scaling: expected trips = demand_ratio x the file's rates "
                                "(NYC Brooklyn 9, Shenzhen downtown-west 2.5)", low=0.0, low_open=True)
    json_hr: int = param(-1, "hour of the day where step 0 starts (-1: the first hour with demand in the "
                         "file; NYC Brooklyn 19, Shenzhen 8)", low=-1, high=47)
    json_tstep: int = param(3, "minutes per step (NYC Brooklyn 4, Shenzhen 3)", low=1, high=240)
    beta: float = param(0.5, "operating cost per minute of travel (OHIO App. B.3: 0.5); a trip or "
                        "rebalancing move of k steps costs beta * json_tstep * k", low=0.0)
    episode_length: int = param(20, "steps T per episode (OHIO App. B.3: 20)", low=1, high=10_000)
    start_step: int = param(0, "step of the scenario's window at which episodes start", low=0)
    fleet_size: int = param(0, "vehicles (0: totalAcc of the file, see docs)", low=0)
    graph: str = param("topology", "road graph of graph_obs() edges: the file's topology_graph "
                       "(made symmetric) or the complete graph", choices=GRAPHS)
    rebalance_edges: str = param("complete", "edges the rebalancing LP may use: 'complete' (OHIO App. "
                                 "B.3.1: a complete graph of shortest paths) or 'graph' (only road-graph "
                                 "neighbours)", choices=("complete", "graph"))
    reb_time_hours: str = param("start", "rebTime hour used per step: 'start' (json_hr for every step, the "
                                "published simulators) or 'per-step' (the hour each step starts in)",
                                choices=REB_TIME_HOURS)
    ready_delay: int = param(1, "extra steps before an arriving vehicle is idle: 1 = the published "
                             "simulators (dispatched at t with travel time k steps, idle again at "
                             "t + k + 1), 0 = idle at t + k", low=0, high=10)
    horizon: int = param(10, "planning horizon K of the node features (projected idle vehicles and "
                         "expected demand for the next K steps, OHIO App. B.3.2)", low=1, high=100)
    obs_scale: float = param(0.01, "scale applied to vehicle counts and money in observations (the "
                             "published GNN parser's 0.01)", low=0.0, low_open=True)
    matching: str = param("lp", "passenger matching: 'lp' (the reusable HiGHS matching LP) or 'greedy' "
                          "(exact by the LP's separability, highest fares first)", choices=("lp", "greedy"))
    target_rounding: str = param("largest-remainder", "desired distribution -> integer targets: "
                                 "'largest-remainder' (targets sum to the idle vehicles) or 'floor' (the "
                                 "published simulators)", choices=("largest-remainder", "floor"))
    action_mode: str = param("goal", "'goal': the action is the desired idle-vehicle distribution (N,), "
                             "executed by the rebalancing LP (OHIO App. B.3.2/B.3.4); 'flow': end-to-end "
                             "(OHIO App. B.3.3), the action (F,) sets the fraction of each origin's idle "
                             "vehicles sent along each flow edge, projected onto the feasible set (step info "
                             "'violation'); the LP is bypassed", choices=("goal", "flow"))
    synthetic_regions: int = param(10, "regions of the synthetic city (city='synthetic')", low=2, high=500)
    data_seed: int = param(0, "seed of the synthetic city generator (the data set, not the episode)", low=0)

    def replace(self, **changes: Any) -> MobilityConfig:
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def scenario_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~hieralloc.envs.mobility.scenario.load_scenario`."""
        return {"data_dir": self.data_dir or None, "demand_ratio": self.demand_ratio,
                "json_hr": None if self.json_hr < 0 else self.json_hr, "json_tstep": self.json_tstep,
                "episode_length": self.episode_length, "graph": self.graph,
                "reb_time_hours": self.reb_time_hours, "synthetic_regions": self.synthetic_regions,
                "data_seed": self.data_seed}


__all__ = ["MobilityConfig"]
