"""Mobility on demand (OHIO App. B.3; Gammelli et al. 2021-2023): scenarios, batched core,
PettingZoo environment, invariants and baseline policies. Importing registers them.

Registered names (stable):

* environment ``mobility`` (family ``mobility``, continuous actions): :class:`MobilityConfig`
  defaults, the synthetic city (no data file needed).
* scenario ``mobility-synthetic``: the synthetic city (10 regions), T = 20, beta = 0.5.
* scenario ``mobility-nyc-brooklyn``: NYC Brooklyn, demand_ratio 9, json_hr 19, json_tstep 4.
* scenario ``mobility-shenzhen-dtw``: Shenzhen downtown-west, demand_ratio 2.5, json_hr 8, json_tstep 3.
* algorithms ``no-rebalancing`` and ``prop`` (OHIO Eq. (29)), and the OHIO behaviour policies
  ``inf`` (Eq. (27)), ``dtv`` (Eq. (28)), ``disp`` (Dirichlet(1)) and the full-information
  ``mpc-oracle``, all ``families=("mobility",)``.
* the OHIO formulation of family ``mobility`` (:class:`MobilityFormulation`), registered with
  :func:`hieralloc.ohio.register_formulation`.

The two city scenarios read their files from the data directory (``hieralloc data fetch``).
"""

from __future__ import annotations

from typing import Any

from hieralloc.envs.mobility.config import MobilityConfig
from hieralloc.envs.mobility.core import MatchOutcome, MobilityCore, StepResult, desired_targets
from hieralloc.envs.mobility.env import AGENT, MobilityEnv, make_env
from hieralloc.envs.mobility.scenario import (
    CALIBRATIONS,
    Scenario,
    load_scenario,
    parse_scenario,
    read_scenario_json,
    synthetic_city,
)
from hieralloc.registry import EnvSpec, ScenarioSpec, register_env, register_scenario

FAMILY = "mobility"

register_env(EnvSpec(
    name="mobility",
    family=FAMILY,
    config_cls=MobilityConfig,
    make=make_env,
    description="mobility on demand (OHIO App. B.3): an operator sets the desired idle-vehicle distribution; "
                "passenger-matching and rebalancing LPs execute it (default: synthetic city)",
    discrete=False,
    continuous=True,
    has_global_state=True,
    has_masks=False,
))


def _calibrated(city: str) -> dict[str, Any]:
    cal = CALIBRATIONS[city]
    return {"city": city, **{k: cal[k] for k in ("demand_ratio", "json_hr", "json_tstep", "beta", "episode_length")}}


SCENARIO_VALUES: dict[str, dict[str, Any]] = {
    "mobility-synthetic": {"city": "synthetic", "synthetic_regions": 10, "beta": 0.5, "episode_length": 20},
    "mobility-nyc-brooklyn": _calibrated("nyc_brooklyn"),
    "mobility-shenzhen-dtw": _calibrated("shenzhen_downtown_west"),
}
_DESCRIPTIONS = {
    "mobility-synthetic": "synthetic morning-commute city, 10 regions, 3-minute steps, T=20 (no data file)",
    "mobility-nyc-brooklyn": "NYC Brooklyn (14 regions, 1500 vehicles), demand_ratio 9, 19:00, 4-minute steps, "
                             "T=20; needs the data directory (hieralloc data fetch nyc_brooklyn)",
    "mobility-shenzhen-dtw": "Shenzhen downtown-west (17 regions), demand_ratio 2.5, 08:00, 3-minute steps, T=20; "
                             "needs the data directory (hieralloc data fetch shenzhen_downtown_west)",
}
for _name, _values in SCENARIO_VALUES.items():
    register_scenario(ScenarioSpec(name=_name, env="mobility", values=_values, description=_DESCRIPTIONS[_name]))

from hieralloc.envs.mobility import behaviour as _behaviour  # noqa: E402,F401  (registers inf, dtv, disp)
from hieralloc.envs.mobility import invariants as _invariants  # noqa: E402,F401  (registers checks)
from hieralloc.envs.mobility import oracle as _oracle  # noqa: E402,F401  (registers mpc-oracle)
from hieralloc.envs.mobility import policies as _policies  # noqa: E402,F401  (registers algorithms)
from hieralloc.envs.mobility.formulation import FORMULATION, MobilityFormulation  # noqa: E402
from hieralloc.ohio.formulation import register_formulation  # noqa: E402

register_formulation(FORMULATION)

__all__ = ["AGENT", "CALIBRATIONS", "FAMILY", "FORMULATION", "SCENARIO_VALUES", "MatchOutcome", "MobilityConfig",
           "MobilityCore", "MobilityEnv", "MobilityFormulation", "Scenario", "StepResult", "desired_targets",
           "load_scenario", "make_env", "parse_scenario", "read_scenario_json", "synthetic_city"]
