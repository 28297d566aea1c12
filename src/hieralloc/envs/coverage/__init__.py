"""Demand-coverage grid of HGRL (Sec. 3, 4.1, 5.1): environment, demand sources, registration.

Registered names (stable):

* environment ``coverage`` (family ``coverage``): :class:`CoverageConfig` defaults (synthetic city).
* scenario ``coverage-toy``: HGRL Toy example (50 x 50, 28 frames, U = 1, delta = 0.2).
* scenario ``coverage-city``: synthetic city (50 x 50, 7 days x 48 steps, U = 10, delta = 0.75).
* scenario ``coverage-small``: a 12 x 12 Toy with N = 3, T = 8 for quick tests and exact oracles.

Every scenario uses N = 10 agents (HGRL App. C), w = 3 and T = 20 unless stated.
"""

from __future__ import annotations

from typing import Any

from hieralloc.envs.coverage.config import CoverageConfig
from hieralloc.envs.coverage.core import CoverageCore, StepResult, served_by_positions
from hieralloc.envs.coverage.demand import (
    SOURCES,
    DemandData,
    demand_from_array,
    load_demand,
    register_source,
    validate_demand,
)
from hieralloc.envs.coverage.env import CoverageEnv, make_env
from hieralloc.envs.coverage.metrics import SCORE_DELTAS, relative_score, score
from hieralloc.registry import EnvSpec, ScenarioSpec, register_env, register_scenario

FAMILY = "coverage"

register_env(EnvSpec(
    name="coverage",
    family=FAMILY,
    config_cls=CoverageConfig,
    make=make_env,
    description="HGRL demand-coverage grid: N resources with w x w service windows move on an "
                "H x W demand map (default: synthetic city)",
    discrete=True,
    continuous=False,
    has_global_state=True,
    has_masks=True,
))

SCENARIO_VALUES: dict[str, dict[str, Any]] = {
    "coverage-toy": {"source": "toy", "height": 50, "width": 50, "n_frames": 28, "capacity": 1.0,
                     "delta": 0.2, "n_agents": 10, "episode_length": 20},
    "coverage-city": {"source": "city", "height": 50, "width": 50, "capacity": 10.0, "delta": 0.75,
                      "n_agents": 10, "episode_length": 20},
    "coverage-small": {"source": "toy", "height": 12, "width": 12, "n_frames": 28, "capacity": 1.0,
                       "delta": 0.2, "n_agents": 3, "episode_length": 8},
}
_DESCRIPTIONS = {
    "coverage-toy": "HGRL Sec. 5.1 Toy example: 50x50, two Gaussian peaks, 28 frames, N=10, T=20",
    "coverage-city": "synthetic city: 50x50, drifting/pulsing heavy-tailed hotspots, 336 frames, "
                     "N=10, T=20, U=10",
    "coverage-small": "12x12 Toy, N=3, T=8: quick tests and exact oracle solves",
}
for _name, _values in SCENARIO_VALUES.items():
    register_scenario(ScenarioSpec(name=_name, env="coverage", values=_values,
                                   description=_DESCRIPTIONS[_name]))

from hieralloc.envs.coverage import invariants as _invariants  # noqa: E402,F401  (registers checks)
from hieralloc.envs.coverage import taxibj as _taxibj  # noqa: E402,F401  (registers the 'taxibj' demand source)

__all__ = [
    "FAMILY", "SCENARIO_VALUES", "SCORE_DELTAS", "SOURCES", "CoverageConfig", "CoverageCore",
    "CoverageEnv", "DemandData", "StepResult", "demand_from_array", "load_demand", "make_env",
    "register_source", "relative_score", "score", "served_by_positions", "validate_demand",
]
