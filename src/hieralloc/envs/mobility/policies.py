"""Baseline high-level policies of the mobility family (they learn nothing).

* ``no-rebalancing``: the desired distribution is the current idle distribution, so the
  rebalancing LP (OHIO Eq. (30)) moves no vehicle.
* ``prop``: OHIO App. B.3.3 PROP, Eq. (29): the desired distribution is proportional to the
  forecast demand departing each region, averaged over the next K = 6 steps,
  ``q^_i = lambda_i / sum_j lambda_j``; the environment's rebalancing LP then realises it (Eq. (29)
  is Eq. (30) with these targets). The forecast is the scenario's expected demand (the Poisson
  means), as the published heuristic uses the demand rates.

Both read the environment they are reset on (``env.unwrapped`` must be a
:class:`~hieralloc.envs.mobility.env.MobilityEnv`) and act for the agent ``"operator"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hieralloc.config import Config, param
from hieralloc.envs.mobility.env import AGENT, MobilityEnv
from hieralloc.errors import IncompatibleError
from hieralloc.registry import AlgoSpec, Capabilities, register_algo

CAPS = Capabilities(discrete=False, continuous=True, learns=False, families=("mobility",))


def _mobility_env(env: Any) -> MobilityEnv:
    base = getattr(env, "unwrapped", env)
    if not isinstance(base, MobilityEnv):
        raise IncompatibleError(f"this policy drives the mobility environment, got {type(base).__name__}; "
                                "pick a mobility environment (see 'hieralloc list')")
    return base


def _idle_weights(env: MobilityEnv) -> np.ndarray:
    q = env.idle_vehicles().astype(np.float32)
    s = float(q.sum())
    return q / s if s > 0 else np.zeros_like(q)  # all-zero action = keep the distribution


@dataclass
class NoRebalancingConfig(Config):
    """No parameters."""


class NoRebalancingPolicy:
    """Desired distribution = current idle distribution (no vehicle is moved)."""

    def __init__(self, config: NoRebalancingConfig | None = None, seed: int | None = None) -> None:
        self.config = config or NoRebalancingConfig()
        self.env: MobilityEnv | None = None

    def reset(self, env: Any, seed: int | None = None) -> None:
        self.env = _mobility_env(env)

    def act(self, observations: dict[str, Any], state: np.ndarray | None = None,
            explore: bool = False) -> dict[str, Any]:
        assert self.env is not None, "call reset(env) first"
        return {a: _idle_weights(self.env) for a in observations if a == AGENT}


@dataclass
class PropConfig(Config):
    horizon: int = param(6, "steps K of forecast demand averaged (OHIO App. B.3.3: K = 6)", low=1, high=1000)


class PropPolicy:
    """OHIO Eq. (29): desired distribution proportional to the forecast departing demand."""

    def __init__(self, config: PropConfig | None = None, seed: int | None = None) -> None:
        self.config = config or PropConfig()
        self.env: MobilityEnv | None = None

    def reset(self, env: Any, seed: int | None = None) -> None:
        self.env = _mobility_env(env)

    def weights(self) -> np.ndarray:
        """(N,) ``lambda_i / sum_j lambda_j`` with ``lambda_i`` the mean departing forecast over K steps."""
        assert self.env is not None, "call reset(env) first"
        lam = self.env.forecast_demand(self.config.horizon).sum(axis=2).mean(axis=0)  # (N,)
        total = float(lam.sum())
        if total <= 0:  # no forecast demand (past the data window): keep the distribution
            return _idle_weights(self.env)
        return (lam / total).astype(np.float32)

    def act(self, observations: dict[str, Any], state: np.ndarray | None = None,
            explore: bool = False) -> dict[str, Any]:
        return {a: self.weights() for a in observations if a == AGENT}


def _build(cls: type) -> Any:
    def build(env: Any, config: Any, seed: int | None = None) -> Any:
        return cls(config, seed)
    return build


register_algo(AlgoSpec("no-rebalancing", NoRebalancingConfig, _build(NoRebalancingPolicy), CAPS,
                       "mobility: desired distribution = current idle vehicles (nothing is rebalanced)"))
register_algo(AlgoSpec("prop", PropConfig, _build(PropPolicy), CAPS,
                       "mobility: PROP (OHIO Eq. (29)), desired distribution proportional to the forecast "
                       "departing demand over the next K = 6 steps"))

__all__ = ["NoRebalancingConfig", "NoRebalancingPolicy", "PropConfig", "PropPolicy"]
