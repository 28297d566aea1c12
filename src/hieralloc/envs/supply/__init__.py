"""Supply-chain inventory management (OHIO App. B.4): configuration, batched core, PettingZoo
environment, OHIO formulation, invariants and behaviour policies. Importing registers them.

Registered names (stable):

* environment ``supply-chain`` (family ``supply``, continuous actions): :class:`SupplyConfig`
  defaults, the 1W3S network of OHIO Table 10.
* scenario ``supply-1w3s``: one warehouse, 3 stores (Table 10).
* scenario ``supply-1w10s``: one warehouse, 10 stores (Table 11, read as documented).
* scenario ``supply-1w10s-cap``: 1W10S with store capacities 15 reduced to 10 (Table 5's transfer row).
* OHIO formulation of family ``supply`` (:mod:`hieralloc.envs.supply.formulation`).
* algorithms ``heur`` (S-type order-up-to), ``mpc`` (noisy forecasts) and ``supply-mpc-oracle``
  (perfect foresight), ``families=("supply",)``.

See docs/environments/supply-chain.md.
"""

from __future__ import annotations

from typing import Any

from hieralloc.envs.supply.config import ACTION_MODES, SupplyConfig
from hieralloc.envs.supply.core import StepResult, SupplyCore, allocate, expected_demand, seasonal_demand
from hieralloc.envs.supply.env import AGENT, SupplyChainEnv, make_env
from hieralloc.envs.supply.formulation import FORMULATION, SupplyFormulation
from hieralloc.registry import EnvSpec, ScenarioSpec, register_env, register_scenario

FAMILY = "supply"

register_env(EnvSpec(
    name="supply-chain",
    family=FAMILY,
    config_cls=SupplyConfig,
    make=make_env,
    description="supply-chain inventory management (OHIO App. B.4): a manager sets the goal inventory "
                "distribution and production; the inventory LP (Eq. (33)) executes it (default: 1W3S, Table 10)",
    discrete=False,
    continuous=True,
    has_global_state=True,
    has_masks=False,
))

_1W3S: dict[str, Any] = {  # OHIO Table 10 (titled "1F10S" in the paper; it is the 3-store network)
    "demand_max": [5.0, 15.0, 20.0], "demand_var": [2.0, 2.0, 2.0], "demand_freq": [2.0, 4.0, 6.0],
    "demand_shift": [1.0, 3.0, 6.0], "travel_time": [1, 1, 1], "production_time": 1,
    "storage_capacity": [50, 15, 15, 15], "storage_cost": [0.1, 0.5, 0.5, 0.5], "production_capacity": 25,
    "production_cost": 5.0, "transport_cost": 0.5, "price": 15.0, "backorder_cost": 1.5, "episode_length": 30,
}
_1W10S: dict[str, Any] = {  # OHIO Table 11; its 3-entry and 9-entry lists completed as documented
    **_1W3S,
    "demand_max": [5.0, 5.0, 5.0, 5.0, 10.0, 10.0, 10.0, 18.0, 18.0, 18.0], "demand_var": [2.0] * 10,
    "demand_freq": [2.0, 4.0, 6.0, 2.0, 4.0, 6.0, 2.0, 4.0, 6.0, 3.0],
    "demand_shift": [1.0, 1.0, 1.0, 3.0, 3.0, 3.0, 6.0, 6.0, 6.0, 2.0], "travel_time": [1] * 10,
    "storage_capacity": [80] + [15] * 10, "storage_cost": [0.005] + [2.0] * 10, "production_capacity": 60,
}
SCENARIO_VALUES: dict[str, dict[str, Any]] = {
    "supply-1w3s": _1W3S,
    "supply-1w10s": _1W10S,
    "supply-1w10s-cap": {**_1W10S, "storage_capacity": [80] + [10] * 10},
}
_DESCRIPTIONS = {
    "supply-1w3s": "supply chain, one warehouse and 3 stores (OHIO Table 10), T=30",
    "supply-1w10s": "supply chain, one warehouse and 10 stores (OHIO Table 11), T=30",
    "supply-1w10s-cap": "1W10S with store capacities reduced from 15 to 10 (OHIO Table 5 transfer row), T=30",
}
for _name, _values in SCENARIO_VALUES.items():
    register_scenario(ScenarioSpec(name=_name, env="supply-chain", values=_values, description=_DESCRIPTIONS[_name]))

from hieralloc.envs.supply import invariants as _invariants  # noqa: E402,F401  (registers checks)
from hieralloc.envs.supply import policies as _policies  # noqa: E402,F401  (registers algorithms)

__all__ = ["ACTION_MODES", "AGENT", "FAMILY", "FORMULATION", "SCENARIO_VALUES", "StepResult", "SupplyChainEnv",
           "SupplyConfig", "SupplyCore", "SupplyFormulation", "allocate", "expected_demand", "make_env",
           "seasonal_demand"]
