r"""OHIO behaviour policies of the mobility family (App. B.3.3): INF, DTV and DISP.

They collect OHIO's offline data sets and act in ``action_mode='goal'``: each outputs a desired
idle-vehicle distribution, which the environment's rebalancing LP (Eq. (30)) executes, so the data
hold exactly the flows of the controller (recoverable by the inverse of B.3.5).

* ``inf`` (informed rebalancing, Waller et al. 2018; OHIO Eq. (27)): idle vehicles are assigned to
  regions reachable within ``H`` steps, maximising the expected requests they would observe,
  ``sum y_ij lambda~_j (H - tau_ij)`` (27a), each vehicle at most once (27b), only reachable regions
  (27c), and a region's weighted assignments capped by ``lambda~_j H^2 rho`` (27d). Vehicles in one
  region are interchangeable, so the per-vehicle binaries aggregate into integer counts ``y_ij``
  (``0 <= y_ij <= q_i``, (27b) becomes ``sum_j y_ij <= q_i``); the weighted capacity (27d) breaks
  total unimodularity, so it is solved as a MILP (HiGHS, :class:`~hieralloc.solvers.LPModel` with
  integrality). ``tau_ij`` = rebalancing time in steps (``tau_ii = 0``: staying counts as serving the
  own region), ``lambda~_j`` = forecast departing trips of region j per step, averaged over the next
  ``H`` steps (the scenario's Poisson means). Unassigned vehicles stay. ``H`` and ``rho`` are tuned
  per city by :func:`~hieralloc.envs.mobility.inf_grid.grid_search` (OHIO Tables 8-9); ``INF_TUNED``
  holds our choices.
* ``dtv`` (dynamic trip-vehicle assignment, Alonso-Mora et al. 2017; OHIO Eq. (28)): idle vehicles
  are assigned to open requests minimising the total pick-up time (28a), assigning all vehicles or
  all requests, whichever are fewer (28b), through the solver layer's capacitated assignment
  (:func:`~hieralloc.solvers.assign_capacitated`): the smaller side are the agents (one each), the
  larger side's regions are tasks with their counts as capacities. Open requests = forecast trips
  departing each region over the next ``lookahead`` steps, rounded (requests of step t were matched
  or lost in the matching already). An assigned vehicle moves to its request's region.
* ``disp`` (random dispersion): a Dirichlet(1) desired distribution per step (OHIO B.3.3), from a
  generator seeded by the episode's reset seed (``default_rng([seed, 1])``, a stream independent of
  the environment's demand draws from ``default_rng(seed)``).

The goal of INF and DTV is the distribution their assignment produces,
``n_j = (q_j - sum_k y_jk) + sum_i y_ij``, as weights ``n / sum n``; the environment's
largest-remainder targets reproduce ``n`` exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from hieralloc.config import Config, param
from hieralloc.envs.mobility.env import AGENT, MobilityEnv
from hieralloc.envs.mobility.policies import CAPS, _build, _idle_weights, _mobility_env
from hieralloc.registry import AlgoSpec, register_algo
from hieralloc.solvers import LPModel, assign_capacitated

#: INF's (H, rho) chosen by our grid search (OHIO Tables 8-9 protocol; docs/environments/mobility.md)
INF_TUNED: dict[str, tuple[int, float]] = {
    "nyc_brooklyn": (7, 1.0),            # benchmarks/results/inf_grid.md (OHIO Table 9 picked H=6, rho=3)
    "shenzhen_downtown_west": (2, 3.0),  # benchmarks/results/inf_grid.md (OHIO Table 8 picked H=3, rho=1)
}
#: (H, rho) for cities without a tuned value (the middle of the grid)
INF_DEFAULT: tuple[int, float] = (4, 2.0)


def assignment_goal(idle: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(N,) weights of the distribution after moving ``y[i, j]`` vehicles from i to j (diagonal = stay)."""
    q = np.asarray(idle, dtype=float)
    n = q - y.sum(axis=1) + y.sum(axis=0)  # unassigned stay; assigned end up in their region
    s = float(n.sum())
    return (n / s).astype(np.float64) if s > 0 else np.zeros_like(q)


# ------------------------------------------------------------------------------------------- INF
@dataclass
class InfConfig(Config):
    """Informed rebalancing (OHIO Eq. (27))."""

    horizon: int = param(0, "H: reachability horizon in steps (0 = the tuned value of the scenario's city, "
                         "INF_TUNED: NYC Brooklyn 7, Shenzhen downtown-west 2; else 4)", low=0, high=100)
    rho: float = param(0.0, "rho: capacity factor of Eq. (27d) (0 = the tuned value of the city: NYC Brooklyn 1, "
                       "Shenzhen downtown-west 3; else 2)", low=0.0)
    time_limit: float = param(5.0, "seconds per MILP solve (HiGHS)", low=0.0, low_open=True)


def inf_parameters(env: MobilityEnv, config: InfConfig) -> tuple[int, float]:
    """(H, rho) of ``config`` with 0 meaning the tuned value of the environment's city."""
    H0, rho0 = INF_TUNED.get(env.scenario.name, INF_DEFAULT)
    return (config.horizon or H0, config.rho or rho0)


class InfPolicy:
    """OHIO Eq. (27) as an integer program over aggregated vehicle counts (module docstring)."""

    def __init__(self, config: InfConfig | None = None, seed: int | None = None) -> None:
        self.config = config or InfConfig()
        self.env: MobilityEnv | None = None
        self._model: LPModel | None = None
        self._key: tuple[Any, ...] = ()

    def reset(self, env: Any, seed: int | None = None) -> None:
        self.env = _mobility_env(env)
        self.H, self.rho = inf_parameters(self.env, self.config)
        self._model = None  # a fresh MILP per episode: ties never depend on earlier episodes

    def _lp(self, tau: np.ndarray) -> LPModel:
        """The MILP with structure for this travel-time matrix (rebuilt only when reachability changes)."""
        N = tau.shape[0]
        key = (N, tau.tobytes())
        if self._model is None or key != self._key:
            k = np.arange(N * N)
            rows = np.concatenate([k // N, N + k % N])  # (27b) per origin, (27d) per destination
            vals = np.concatenate([np.ones(N * N), np.maximum(self.H - tau.ravel(), 0.0)])
            A = sp.csr_matrix((vals, (rows, np.concatenate([k, k]))), shape=(2 * N, N * N))
            reach = (tau.ravel() <= self.H).astype(float)  # (27c): y_ij = 0 when tau_ij > H
            self._model = LPModel(np.zeros(N * N), A_ub=A, b_ub=np.zeros(2 * N), lb=0.0, ub=reach * 0.0,
                                  integrality=np.ones(N * N), sense="max", time_limit=self.config.time_limit,
                                  row_names=lambda r: (f"(27b) vehicles of region {r}" if r < N
                                                       else f"(27d) capacity of region {r - N}"),
                                  col_names=lambda c: f"y {c // N}->{c % N}", what="INF MILP (OHIO Eq. (27))")
            self._reach = reach
            self._key = key
        return self._model

    def assignment(self) -> np.ndarray:
        """(N, N) integer vehicles assigned from region i to region j (Eq. (27) optimum)."""
        env = self.env
        assert env is not None, "call reset(env) first"
        q = env.idle_vehicles().astype(float)
        N = q.shape[0]
        core = env.core
        tau = core.reb_steps[min(env.t, core.reb_steps.shape[0] - 1)].astype(float)
        np.fill_diagonal(tau, 0.0)
        lam = env.forecast_demand(self.H).sum(axis=2).mean(axis=0)  # lambda~_j: departing trips per step
        m = self._lp(tau)
        H = float(self.H)
        m.set_costs((lam[None, :] * np.maximum(H - tau, 0.0)).ravel())  # (27a)
        m.set_col_bounds(np.zeros(N * N), (self._reach.reshape(N, N) * q[:, None]).ravel())
        m.set_b_ub(np.concatenate([q, lam * H * H * self.rho]))
        y = np.rint(np.maximum(m.solve().x, 0.0)).reshape(N, N)
        return y

    def act(self, observations: dict[str, Any], state: np.ndarray | None = None,
            explore: bool = False) -> dict[str, Any]:
        if AGENT not in observations:
            return {}
        assert self.env is not None, "call reset(env) first"
        return {AGENT: assignment_goal(self.env.idle_vehicles(), self.assignment())}


# ------------------------------------------------------------------------------------------- DTV
@dataclass
class DtvConfig(Config):
    """Dynamic trip-vehicle assignment (OHIO Eq. (28))."""

    lookahead: int = param(1, "steps of forecast trips counted as open requests (rounded per region)",
                           low=1, high=100)


class DtvPolicy:
    """OHIO Eq. (28) with the solver layer's capacitated assignment (module docstring)."""

    def __init__(self, config: DtvConfig | None = None, seed: int | None = None) -> None:
        self.config = config or DtvConfig()
        self.env: MobilityEnv | None = None

    def reset(self, env: Any, seed: int | None = None) -> None:
        self.env = _mobility_env(env)

    def requests(self) -> np.ndarray:
        """(N,) open requests per region: forecast departing trips over the look-ahead, rounded."""
        assert self.env is not None, "call reset(env) first"
        return np.rint(self.env.forecast_demand(self.config.lookahead).sum(axis=(0, 2))).astype(np.int64)

    def assignment(self) -> np.ndarray:
        """(N, N) vehicles of region i assigned to requests of region j (Eq. (28) optimum)."""
        env = self.env
        assert env is not None, "call reset(env) first"
        q = env.idle_vehicles().astype(np.int64)
        r = self.requests()
        N = q.shape[0]
        core = env.core
        tau = core.reb_steps[min(env.t, core.reb_steps.shape[0] - 1)].astype(float)
        np.fill_diagonal(tau, 0.0)
        y = np.zeros((N, N))
        if q.sum() == 0 or r.sum() == 0:
            return y
        if r.sum() <= q.sum():  # every request gets a vehicle: requests are the agents (28b)
            reg = np.repeat(np.arange(N), r)
            res = assign_capacitated(-tau[:, reg].T, q)  # (28a): min travel time = max -tau
            np.add.at(y, (res.task, reg), 1.0)
        else:  # every vehicle gets a request: vehicles are the agents
            reg = np.repeat(np.arange(N), q)
            res = assign_capacitated(-tau[reg, :], r)
            np.add.at(y, (reg, res.task), 1.0)
        return y

    def act(self, observations: dict[str, Any], state: np.ndarray | None = None,
            explore: bool = False) -> dict[str, Any]:
        if AGENT not in observations:
            return {}
        assert self.env is not None, "call reset(env) first"
        return {AGENT: assignment_goal(self.env.idle_vehicles(), self.assignment())}


# ------------------------------------------------------------------------------------------- DISP
@dataclass
class DispConfig(Config):
    """Random dispersion (OHIO App. B.3.3)."""

    concentration: float = param(1.0, "Dirichlet concentration c (OHIO: c = [1, ..., 1])", low=0.0, low_open=True)


class DispPolicy:
    """A Dirichlet(c) desired distribution per step, seeded by the reset seed."""

    def __init__(self, config: DispConfig | None = None, seed: int | None = None) -> None:
        self.config = config or DispConfig()
        self.seed = seed
        self.env: MobilityEnv | None = None
        self.rng = np.random.default_rng(seed)

    def reset(self, env: Any, seed: int | None = None) -> None:
        self.env = _mobility_env(env)
        s = seed if seed is not None else self.seed
        # a stream of its own: the environment draws its demand from default_rng(seed)
        self.rng = np.random.default_rng(None if s is None else [int(s), 1])

    def act(self, observations: dict[str, Any], state: np.ndarray | None = None,
            explore: bool = False) -> dict[str, Any]:
        if AGENT not in observations:
            return {}
        assert self.env is not None, "call reset(env) first"
        if self.env.idle_vehicles().sum() == 0:  # nothing to distribute (keeps the draw sequence)
            self.rng.dirichlet(np.full(self.env.n_regions, self.config.concentration))
            return {AGENT: _idle_weights(self.env)}
        return {AGENT: self.rng.dirichlet(np.full(self.env.n_regions, self.config.concentration))}


register_algo(AlgoSpec("inf", InfConfig, _build(InfPolicy), CAPS,
                       "mobility: informed rebalancing INF (OHIO Eq. (27), Waller et al. 2018), MILP over "
                       "vehicle counts; H and rho tuned per city (OHIO Tables 8-9)"))
register_algo(AlgoSpec("dtv", DtvConfig, _build(DtvPolicy), CAPS,
                       "mobility: dynamic trip-vehicle assignment DTV (OHIO Eq. (28), Alonso-Mora et al. 2017): "
                       "idle vehicles to forecast requests by min travel time"))
register_algo(AlgoSpec("disp", DispConfig, _build(DispPolicy), CAPS,
                       "mobility: random dispersion DISP (OHIO App. B.3.3), Dirichlet(1) desired distribution"))

__all__ = ["INF_DEFAULT", "INF_TUNED", "DispConfig", "DispPolicy", "DtvConfig", "DtvPolicy", "InfConfig",
           "InfPolicy", "assignment_goal", "inf_parameters"]
