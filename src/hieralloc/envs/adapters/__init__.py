"""Adapters for third-party benchmark environments: LBF, RWARE and MPE simple_spread.

Importing this package registers (without importing the optional packages, which are loaded
when an environment is built; ``pip install -e '.[envs]'`` installs them):

* environment ``lbf`` (family ``lbf``): Level-Based Foraging, defaults = Foraging-8x8-2p-2f-coop;
  scenarios ``lbf-8x8-2p-2f-coop`` (EPyMARL benchmark task) and ``lbf-5x5-2p-1f-coop`` (quick tests).
* environment ``rware`` (family ``rware``): multi-robot warehouse, defaults = rware-tiny-2ag;
  scenario ``rware-tiny-2ag`` (EPyMARL benchmark task).
* environments ``mpe-simple-spread`` (discrete actions) and ``mpe-simple-spread-continuous``
  (family ``mpe``): MPE simple_spread with N = 3 agents and 25 steps (EPyMARL's MPE Spread).

Pages: docs/environments/lbf.md, rware.md, mpe.md.
"""

from __future__ import annotations

from typing import Any

from hieralloc.envs.adapters.base import AdapterConfig, AdapterEnv, MissingDependencyError
from hieralloc.envs.adapters.lbf import LBFConfig, LBFEnv, make_lbf
from hieralloc.envs.adapters.mpe import SpreadConfig, SpreadEnv, make_spread, make_spread_continuous
from hieralloc.envs.adapters.rware import RWAREConfig, RWAREEnv, make_rware
from hieralloc.registry import EnvSpec, ScenarioSpec, register_env, register_scenario

#: family of every environment registered here
FAMILIES = ("lbf", "rware", "mpe")

register_env(EnvSpec(
    name="lbf", family="lbf", config_cls=LBFConfig, make=make_lbf,
    description="Level-Based Foraging (lbforaging; Papoudakis et al. 2021): agents with levels load "
                "food whose level their summed levels must reach (default Foraging-8x8-2p-2f-coop)",
    discrete=True, continuous=False, has_global_state=True, has_masks=True,
))
register_env(EnvSpec(
    name="rware", family="rware", config_cls=RWAREConfig, make=make_rware,
    description="multi-robot warehouse (rware; Papoudakis et al. 2021): robots carry requested shelves "
                "to the goals (default rware-tiny-2ag)",
    discrete=True, continuous=False, has_global_state=True, has_masks=False,
))
register_env(EnvSpec(
    name="mpe-simple-spread", family="mpe", config_cls=SpreadConfig, make=make_spread,
    description="MPE simple_spread / cooperative navigation (mpe2; Lowe et al. 2017): N agents cover N "
                "landmarks without colliding, discrete actions (default N=3, 25 steps)",
    discrete=True, continuous=False, has_global_state=True, has_masks=False,
))
register_env(EnvSpec(
    name="mpe-simple-spread-continuous", family="mpe", config_cls=SpreadConfig, make=make_spread_continuous,
    description="MPE simple_spread with mpe2's continuous actions Box(0, 1, (5,)) (default N=3, 25 steps)",
    discrete=False, continuous=True, has_global_state=True, has_masks=False,
))

SCENARIO_VALUES: dict[str, tuple[str, dict[str, Any], str]] = {
    "lbf-8x8-2p-2f-coop": ("lbf", {"size": 8, "n_agents": 2, "max_food": 2, "coop": True, "sight": 0,
                                   "max_steps": 50},
                           "EPyMARL benchmark task Foraging-8x8-2p-2f-coop: 8x8, 2 players, 2 food, "
                           "cooperative, full observability, 50 steps"),
    "lbf-5x5-2p-1f-coop": ("lbf", {"size": 5, "n_agents": 2, "max_food": 1, "coop": True, "sight": 0,
                                   "max_steps": 50},
                           "Foraging-5x5-2p-1f-coop: 5x5, 2 players, 1 food, cooperative, 50 steps "
                           "(quick learning tests)"),
    "rware-tiny-2ag": ("rware", {"shelf_rows": 1, "shelf_columns": 3, "column_height": 8, "n_agents": 2,
                                 "request_queue_size": 2, "sensor_range": 1, "max_steps": 500,
                                 "reward_type": "individual"},
                       "EPyMARL benchmark task rware-tiny-2ag: 11x10 warehouse, 2 robots, 2 requests, "
                       "500 steps"),
}
for _name, (_env, _values, _desc) in SCENARIO_VALUES.items():
    register_scenario(ScenarioSpec(name=_name, env=_env, values=_values, description=_desc))

__all__ = [
    "FAMILIES", "SCENARIO_VALUES", "AdapterConfig", "AdapterEnv", "LBFConfig", "LBFEnv",
    "MissingDependencyError", "RWAREConfig", "RWAREEnv", "SpreadConfig", "SpreadEnv", "make_lbf",
    "make_rware", "make_spread", "make_spread_continuous",
]

from hieralloc.envs.adapters import invariants as _invariants  # noqa: E402,F401  (registers checks)
