"""Batched dynamics of constrained cooperative navigation (numpy): B episodes stepped at once.

This is the one implementation of the dynamics, rewards and metrics;
:class:`~hieralloc.envs.navigation.env.NavigationEnv` wraps it with ``B = 1``.

World (LPMARL Sec. 5.1, App. E.2). N agents and M <= N landmarks in the plane. At reset agents
spawn uniformly in [-1, 1]^2 and landmarks in [-0.8, 0.8]^2 (App. E.2), velocities are zero, and
landmark j gets a capacity k_j, a random composition of N into M positive parts
(:func:`random_capacities`; sum_j k_j = N).

Physics: MPE's particle world (Lowe et al. 2017; ``mpe2._mpe_utils.core.World``), mass 1,
dt = 0.1, damping 0.25, sensitivity 5, no walls. Per step, with u the action force and f the
optional soft contact force between agents (``contact_force`` > 0, MPE's formula with margin 1e-3)::

    p <- p + v dt;   v <- (1 - damping) v + (5 u + f) dt

(MPE's order: the position moves with the velocity before the action changes it). Discrete
actions are MPE's ``0 no-op, 1 left (-x), 2 right (+x), 3 down (-y), 4 up (+y)``; continuous
actions are u in [-1, 1]^2 (clipped).

Occupancy and success. Agent i *reaches* a landmark when its nearest landmark j(i) is closer than
``reach_radius``; it then occupies j(i). ``counts_j`` = agents occupying j. The team *succeeds*
(LPMARL Sec. 5.1: "the agents occupy the landmarks while satisfying the capacity constraint") when
every agent occupies a landmark and counts_j <= k_j for every j; as sum_j k_j = N this means every
landmark holds exactly k_j agents. Agents i != l *collide* when |p_i - p_l| < 2 agent_size.

Rewards (LPMARL App. E, Table 5), after each step:

* high level (dense and sparse): r^h = +1 when the team succeeds, else 0.
* low level, agent i: sparse r^l_i = +1 when i reaches a landmark; dense adds the distance and
  collision terms, r^l_i = 1[reached] - distance_weight * min_j d_ij - collision_penalty * c_i with
  c_i the number of agents i collides with.
* environment reward of agent i (what non-hierarchical learners train on, Table 5's right column):
  r_i = high_weight * r^h + (1 - high_weight) * r^l_i (high_weight = 0.5).

The task-conditioned low level of LPMARL (Sec. 2.1, r^l_i(s, a^l; a^h_i); Eq. 8) reads
:meth:`NavigationCore.task_rewards` and :meth:`NavigationCore.task_observation` for an assignment
of agents to landmarks instead.

Observations (flat, per agent, ``5 + 4 M + 3 (N - 1)`` float32)::

    [ p_i (2), v_i (2), t / T,
      for each landmark j:      l_j - p_i (2), k_j, visible_ij,
      for each other agent l:   p_l - p_i (2), visible_il ]        (others in index order, self skipped)

An entity is visible when it lies within ``obs_range`` of the agent (distance <= obs_range;
obs_range = 0: everything is visible); an invisible entity's slot is all zeros.

``state()`` (``4 N + 3 M + 1``): agent positions, agent velocities, landmark positions (each
entity-major, x then y), capacities, t / T.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hieralloc.envs.navigation.config import NavigationConfig
from hieralloc.envs.seeding import batch_rngs
from hieralloc.errors import ConfigError

# MPE particle world constants (mpe2 World / SimpleEnv)
DT = 0.1
DAMPING = 0.25
SENSITIVITY = 5.0
CONTACT_MARGIN = 1e-3
# LPMARL App. E.2 spawn boxes
AGENT_SPAWN = 1.0
LANDMARK_SPAWN = 0.8
#: MPE's discrete movement actions: no-op, left, right, down, up
N_ACTIONS = 5
NOOP = 0
MOVES = np.array([[0.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])
#: per-entry size of the task observation's fixed part (see NavigationCore.task_observation)
TASK_FIXED = 10
TASK_PER_NEIGHBOR = 4

#: episode metric keys (NavigationCore.episode_metrics)
METRIC_KEYS = ("win", "min_distance", "collisions", "return", "high_return", "low_return", "success_ever",
               "success_time", "min_distance_avg", "reached", "capacity_violation", "steps")


def random_capacities(rng: np.random.Generator, n_agents: int, n_landmarks: int) -> np.ndarray:
    """A uniformly random composition of N into M positive parts (LPMARL App. E.2 capacities).

    Stars and bars: the N agents in a row have N - 1 gaps; choosing M - 1 distinct gaps uniformly
    (without replacement) and cutting there gives every ordered tuple (k_1..k_M), k_j >= 1,
    sum k_j = N, with the same probability 1 / C(N - 1, M - 1).
    """
    if n_landmarks < 1 or n_landmarks > n_agents:
        raise ValueError(f"need 1 <= n_landmarks <= n_agents, got M={n_landmarks}, N={n_agents}")
    cuts = np.sort(rng.choice(n_agents - 1, size=n_landmarks - 1, replace=False)) + 1
    return np.diff(np.concatenate([[0], cuts, [n_agents]])).astype(np.int64)


@dataclass
class Geometry:
    """Derived quantities of the current positions (B episodes, N agents, M landmarks)."""

    dist: np.ndarray        #: (B, N, M) agent-landmark distances d_ij
    agent_dist: np.ndarray  #: (B, N, N) agent-agent distances (diagonal 0)
    nearest: np.ndarray     #: (B, N) index of each agent's nearest landmark
    min_dist: np.ndarray    #: (B, N) min_j d_ij
    reached: np.ndarray     #: (B, N) bool, min_dist < reach_radius
    landmark: np.ndarray    #: (B, N) occupied landmark, -1 when not reached
    counts: np.ndarray      #: (B, M) agents occupying each landmark
    success: np.ndarray     #: (B,) every agent occupies a landmark and counts <= capacities
    collisions: np.ndarray  #: (B, N) number of other agents each agent collides with


@dataclass
class StepResult:
    """Arrays returned by :meth:`NavigationCore.step`."""

    obs: np.ndarray          #: (B, N, obs_dim) float32 observations after the step
    rewards: np.ndarray      #: (B, N) environment rewards high_weight r^h + (1 - high_weight) r^l_i
    high_reward: np.ndarray  #: (B,) r^h (LPMARL Table 5)
    low_reward: np.ndarray   #: (B, N) r^l_i (LPMARL Table 5)
    reached: np.ndarray      #: (B, N) bool, agent occupies a landmark
    landmark: np.ndarray     #: (B, N) occupied landmark or -1
    distance: np.ndarray     #: (B, N) distance to the nearest landmark
    collisions: np.ndarray   #: (B, N) other agents each agent collides with
    success: np.ndarray      #: (B,) bool, success condition after the step
    active: np.ndarray       #: (B,) bool, the episode was running during this step
    terminated: np.ndarray   #: (B,) bool, ended by success (terminate_on_success)
    truncated: np.ndarray    #: (B,) bool, ended by the time limit
    t: int                   #: step counter after the step


class NavigationCore:
    """B synchronous episodes of constrained cooperative navigation (see the module docstring).

    Episodes that ended (termination on success) are frozen: later steps leave them unchanged and
    give them zero reward, until :meth:`reset`.
    """

    def __init__(self, config: NavigationConfig, batch_size: int = 1) -> None:
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ConfigError("batch_size", f"must be a positive integer, got {batch_size!r}")
        self.config = config
        self.B = int(batch_size)
        self.N = config.n_agents
        self.M = config.n_landmarks
        self.T = config.episode_length
        self.K = config.task_neighbors
        self.discrete = config.movement == "discrete"
        self.obs_range = float(config.obs_range)
        self.radius = float(config.reach_radius)
        self.collide_dist = 2.0 * float(config.agent_size)
        self._rngs: list[np.random.Generator] = [np.random.default_rng() for _ in range(self.B)]
        # index of the other agents of each agent, self skipped: (N, N - 1)
        self._others = np.array([[j for j in range(self.N) if j != i] for i in range(self.N)],
                                dtype=np.int64).reshape(self.N, self.N - 1)
        self._eye = np.eye(self.N, dtype=bool)
        B, N, M = self.B, self.N, self.M
        self.pos = np.zeros((B, N, 2))
        self.vel = np.zeros((B, N, 2))
        self.landmarks = np.zeros((B, M, 2))
        self.capacity = np.ones((B, M), dtype=np.int64)
        self.t = 0
        self.done = np.zeros(B, dtype=bool)
        #: steps each episode has run (t of the episode; frozen once it ended); t / T in observations
        self.steps = np.zeros(B, dtype=np.int64)
        self._sums: dict[str, np.ndarray] = {}
        self._zero_sums()
        self.geom = self._geometry()
        self._ready = False

    # ------------------------------------------------------------------ sizes
    @property
    def obs_dim(self) -> int:
        return 5 + 4 * self.M + 3 * (self.N - 1)

    @property
    def state_dim(self) -> int:
        return 4 * self.N + 3 * self.M + 1

    @property
    def task_obs_dim(self) -> int:
        return TASK_FIXED + TASK_PER_NEIGHBOR * self.K

    def speed_bound(self) -> float:
        """Bound on |v| per axis: v_t = sum_s (1 - damping)^s F dt <= F_max dt / damping, with F_max the
        action force plus every other agent's largest contact force (at distance 0)."""
        contact = (self.N - 1) * float(self.config.contact_force) * (
            self.collide_dist + CONTACT_MARGIN * np.log(2.0))
        return (SENSITIVITY + contact) * DT / DAMPING

    def bounds(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(obs_low, obs_high, state_low, state_high) float32: the values every episode from the spawn
        boxes can reach in ``episode_length`` steps (|p| <= 1 + T dt v_max per axis; 1 % margin)."""
        vmax = self.speed_bound() * 1.01
        pmax = (AGENT_SPAWN + self.T * DT * vmax) * 1.01
        kmax = float(self.N - self.M + 1)
        hi = np.zeros(self.obs_dim)
        lo = np.zeros(self.obs_dim)
        hi[0:2], hi[2:4], hi[4] = pmax, vmax, 1.0
        lo[0:2], lo[2:4] = -pmax, -vmax
        M = self.M
        lm_hi = np.tile([pmax + LANDMARK_SPAWN, pmax + LANDMARK_SPAWN, kmax, 1.0], M)
        lm_lo = np.tile([-(pmax + LANDMARK_SPAWN), -(pmax + LANDMARK_SPAWN), 0.0, 0.0], M)
        hi[5:5 + 4 * M], lo[5:5 + 4 * M] = lm_hi, lm_lo
        hi[5 + 4 * M:] = np.tile([2 * pmax, 2 * pmax, 1.0], self.N - 1)
        lo[5 + 4 * M:] = np.tile([-2 * pmax, -2 * pmax, 0.0], self.N - 1)
        N = self.N
        s_hi = np.concatenate([np.full(2 * N, pmax), np.full(2 * N, vmax), np.full(2 * M, LANDMARK_SPAWN),
                               np.full(M, kmax), [1.0]])
        s_lo = np.concatenate([np.full(2 * N, -pmax), np.full(2 * N, -vmax), np.full(2 * M, -LANDMARK_SPAWN),
                               np.ones(M), [0.0]])
        f32 = np.float32
        return lo.astype(f32), hi.astype(f32), s_lo.astype(f32), s_hi.astype(f32)

    def _zero_sums(self) -> None:
        self._sums = {k: np.zeros(self.B) for k in ("return", "high", "low", "collisions", "success_steps",
                                                    "success_ever", "dist")}

    # ------------------------------------------------------------------ episode
    def reset(self, seed: Any = None, agent_positions: Any = None, landmark_positions: Any = None,
              capacities: Any = None) -> np.ndarray:
        """Start B episodes; returns the observations (B, N, obs_dim).

        ``seed``: an int (B = 1: ``default_rng(seed)``; B > 1: ``default_rng([seed, b])``), a list of
        B ints, or None (continue the generators). Each episode draws, in this order, the agent
        positions, the landmark positions and the capacities (always all three, so fixing one part
        leaves the others as they would be). ``agent_positions`` (N, 2) or (B, N, 2),
        ``landmark_positions`` (M, 2) or (B, M, 2) and ``capacities`` (M,) or (B, M) override the
        draws; ``config.capacities`` fixes the capacities of every episode.
        """
        B, N, M = self.B, self.N, self.M
        if seed is not None:
            self._rngs = batch_rngs(seed, B)
        pos = np.empty((B, N, 2))
        lm = np.empty((B, M, 2))
        cap = np.empty((B, M), dtype=np.int64)
        for b, rng in enumerate(self._rngs):
            pos[b] = rng.uniform(-AGENT_SPAWN, AGENT_SPAWN, (N, 2))        # LPMARL App. E.2
            lm[b] = rng.uniform(-LANDMARK_SPAWN, LANDMARK_SPAWN, (M, 2))   # LPMARL App. E.2
            cap[b] = random_capacities(rng, N, M)                          # LPMARL App. E.2
        if self.config.capacities:
            cap[:] = np.asarray(self.config.capacities, dtype=np.int64)
        if agent_positions is not None:
            pos = self._points(agent_positions, N, "agent_positions")
        if landmark_positions is not None:
            lm = self._points(landmark_positions, M, "landmark_positions")
        if capacities is not None:
            cap = self._capacities(capacities)
        self.pos, self.landmarks, self.capacity = pos, lm, cap
        self.vel = np.zeros((B, N, 2))
        self.t = 0
        self.done = np.zeros(B, dtype=bool)
        self.steps = np.zeros(B, dtype=np.int64)
        self._zero_sums()
        self.geom = self._geometry()
        self._ready = True
        return self.observations()

    def _points(self, value: Any, n: int, key: str) -> np.ndarray:
        a = np.asarray(value, dtype=float)
        if a.shape == (n, 2):
            a = np.broadcast_to(a, (self.B, n, 2))
        if a.shape != (self.B, n, 2) or not np.isfinite(a).all():
            raise ConfigError(key, f"must be finite coordinates of shape ({n}, 2) or ({self.B}, {n}, 2), "
                              f"got shape {np.shape(value)}")
        return np.array(a, dtype=float)

    def _capacities(self, value: Any) -> np.ndarray:
        a = np.asarray(value)
        if a.shape == (self.M,):
            a = np.broadcast_to(a, (self.B, self.M))
        if (a.shape != (self.B, self.M) or a.dtype.kind not in "iuf" or not np.isfinite(a).all()
                or (a != np.round(a)).any()):
            raise ConfigError("capacities", f"must be integers of shape ({self.M},) or ({self.B}, {self.M}), "
                              f"got {np.asarray(value).tolist()}")
        a = np.array(a, dtype=np.int64)
        if (a < 1).any() or (a.sum(-1) != self.N).any():
            raise ConfigError("capacities", f"must be positive and sum to n_agents = {self.N} in every "
                              f"episode, got {a.tolist()}")
        return a

    # ------------------------------------------------------------------ dynamics
    def _forces(self, actions: Any) -> np.ndarray:
        B, N = self.B, self.N
        a = np.asarray(actions)
        if self.discrete:
            if a.shape == (N,):
                a = np.broadcast_to(a, (B, N))
            if a.shape != (B, N):
                raise ValueError(f"discrete actions must have shape ({B}, {N}), got {np.shape(actions)}")
            if a.dtype.kind not in "iu" and not (a.dtype.kind == "f" and (a == np.round(a)).all()):
                raise ValueError("discrete actions must be integers in [0, 4]")
            ai = a.astype(np.int64)
            if ai.size and (ai.min() < 0 or ai.max() >= N_ACTIONS):
                raise ValueError("discrete actions must be integers in [0, 4] (no-op, left, right, down, up)")
            u = MOVES[ai]
        else:
            if a.shape == (N, 2):
                a = np.broadcast_to(a, (B, N, 2))
            if a.shape != (B, N, 2) or a.dtype.kind not in "iuf" or not np.isfinite(a).all():
                raise ValueError(f"continuous actions must be finite numbers of shape ({B}, {N}, 2), "
                                 f"got {np.shape(actions)}")
            u = np.clip(a.astype(float), -1.0, 1.0)
        return SENSITIVITY * u

    def contact_forces(self) -> np.ndarray:
        """(B, N, 2) MPE soft contact forces between agents (``World.get_collision_force``):
        f_il = c (p_i - p_l) / |p_i - p_l| * k log(1 + exp(-(|p_i - p_l| - 2 size) / k)), k = 1e-3,
        summed over l != i (coincident agents exert no force: the direction is undefined)."""
        c = float(self.config.contact_force)
        if c == 0.0:
            return np.zeros_like(self.pos)
        delta = self.pos[:, :, None, :] - self.pos[:, None, :, :]      # p_i - p_l
        dist = np.sqrt((delta ** 2).sum(-1))
        pen = np.logaddexp(0.0, -(dist - self.collide_dist) / CONTACT_MARGIN) * CONTACT_MARGIN
        safe = np.where(dist > 0, dist, 1.0)
        f = c * delta / safe[..., None] * np.where(dist > 0, pen, 0.0)[..., None]
        f[:, self._eye] = 0.0
        return np.asarray(f.sum(2))

    def step(self, actions: Any) -> StepResult:
        """Apply the actions (discrete: (B, N) ints; continuous: (B, N, 2) floats) to every live episode."""
        if not self._ready:
            raise RuntimeError("call reset() before step()")
        if self.done.all():
            raise RuntimeError("every episode has ended; call reset()")
        force = self._forces(actions) + self.contact_forces()
        live = ~self.done
        lv = live[:, None, None]
        # MPE World.integrate_state (mass 1, no max speed)
        new_pos = self.pos + self.vel * DT
        new_vel = self.vel * (1.0 - DAMPING) + force * DT
        self.pos = np.where(lv, new_pos, self.pos)
        self.vel = np.where(lv, new_vel, self.vel)
        self.t += 1
        self.steps += live
        g = self.geom = self._geometry()
        cfg = self.config
        high = g.success.astype(float)                       # LPMARL Table 5: +1 when all agents reach
        low = g.reached.astype(float)                        # LPMARL Table 5: +1 when each agent reaches
        if cfg.reward == "dense":                            # Table 5 dense: distance and collision terms
            low = low - cfg.distance_weight * g.min_dist - cfg.collision_penalty * g.collisions
        w = float(cfg.high_weight)
        rewards = w * high[:, None] + (1.0 - w) * low        # Table 5, non-hierarchical column
        high = np.where(live, high, 0.0)
        low = np.where(live[:, None], low, 0.0)
        rewards = np.where(live[:, None], rewards, 0.0)
        terminated = live & g.success & bool(cfg.terminate_on_success)
        truncated = live & ~terminated & (self.t >= self.T)
        s = self._sums
        s["return"] += rewards.mean(-1)
        s["high"] += high
        s["low"] += low.mean(-1)
        s["collisions"] += np.where(live, g.collisions.sum(-1) / 2.0, 0.0)
        s["success_steps"] += live & g.success
        s["success_ever"] = np.maximum(s["success_ever"], live & g.success)
        s["dist"] += np.where(live, g.min_dist.mean(-1), 0.0)
        self.done = self.done | terminated | truncated
        return StepResult(obs=self.observations(), rewards=rewards, high_reward=high, low_reward=low,
                          reached=g.reached.copy(), landmark=g.landmark.copy(), distance=g.min_dist.copy(),
                          collisions=g.collisions.copy(), success=g.success.copy(), active=live,
                          terminated=terminated, truncated=truncated, t=self.t)

    def _geometry(self) -> Geometry:
        dist = np.sqrt(((self.pos[:, :, None, :] - self.landmarks[:, None, :, :]) ** 2).sum(-1))
        adist = np.sqrt(((self.pos[:, :, None, :] - self.pos[:, None, :, :]) ** 2).sum(-1))
        nearest = dist.argmin(-1)
        min_dist = np.take_along_axis(dist, nearest[..., None], -1)[..., 0]
        reached = min_dist < self.radius
        landmark = np.where(reached, nearest, -1)
        counts = (landmark[:, :, None] == np.arange(self.M)).sum(1)
        success = reached.all(-1) & (counts <= self.capacity).all(-1)   # LPMARL Sec. 5.1
        coll = ((adist < self.collide_dist) & ~self._eye).sum(-1)
        return Geometry(dist=dist, agent_dist=adist, nearest=nearest, min_dist=min_dist, reached=reached,
                        landmark=landmark, counts=counts, success=success, collisions=coll)

    # ------------------------------------------------------------------ observations
    def visible(self) -> np.ndarray:
        """(B, N, M) bool: landmark j lies within ``obs_range`` of agent i (all True when obs_range = 0)."""
        if self.obs_range == 0:
            return np.ones((self.B, self.N, self.M), dtype=bool)
        return self.geom.dist <= self.obs_range

    def agent_visible(self) -> np.ndarray:
        """(B, N, N) bool: agent l lies within ``obs_range`` of agent i (the diagonal is False)."""
        if self.obs_range == 0:
            vis = np.ones((self.B, self.N, self.N), dtype=bool)
        else:
            vis = self.geom.agent_dist <= self.obs_range
        return vis & ~self._eye

    def observations(self) -> np.ndarray:
        """(B, N, obs_dim) float32 flat observations (layout in the module docstring)."""
        B, N, M = self.B, self.N, self.M
        obs = np.zeros((B, N, self.obs_dim), dtype=np.float32)
        obs[..., 0:2] = self.pos
        obs[..., 2:4] = self.vel
        obs[..., 4] = (self.steps / self.T)[:, None]
        vis = self.visible()
        lm = np.zeros((B, N, M, 4))
        lm[..., 0:2] = self.landmarks[:, None, :, :] - self.pos[:, :, None, :]
        lm[..., 2] = self.capacity[:, None, :]
        lm[..., 3] = 1.0
        lm *= vis[..., None]
        obs[..., 5:5 + 4 * M] = lm.reshape(B, N, 4 * M)
        if N > 1:
            ag = np.zeros((B, N, N - 1, 3))
            rows = np.arange(N)[:, None]
            ag[..., 0:2] = (self.pos[:, None, :, :] - self.pos[:, :, None, :])[:, rows, self._others]
            ag[..., 2] = 1.0
            ag *= self.agent_visible()[:, rows, self._others][..., None]
            obs[..., 5 + 4 * M:] = ag.reshape(B, N, 3 * (N - 1))
        return obs

    def state(self) -> np.ndarray:
        """(B, 4N + 3M + 1) float32 global state (layout in the module docstring)."""
        B = self.B
        return np.concatenate([self.pos.reshape(B, -1), self.vel.reshape(B, -1), self.landmarks.reshape(B, -1),
                               self.capacity.astype(float), (self.steps / self.T)[:, None]],
                              axis=1).astype(np.float32)

    # ------------------------------------------------------------------ task-conditioned low level
    def _assignment(self, assignment: Any) -> np.ndarray:
        a = np.asarray(assignment)
        if a.shape == (self.N,):
            a = np.broadcast_to(a, (self.B, self.N))
        if a.shape != (self.B, self.N) or a.dtype.kind not in "iu":
            raise ValueError(f"assignment must be integer landmark indices of shape ({self.N},) or "
                             f"({self.B}, {self.N}), got {a.dtype} {np.shape(assignment)}")
        if a.size and (a.min() < 0 or a.max() >= self.M):
            raise ValueError(f"assignment must hold landmark indices in [0, {self.M - 1}]")
        return a.astype(np.int64)

    def task_observation(self, assignment: Any) -> np.ndarray:
        """(B, N, 10 + 4K) float32 observation of each agent conditioned on its assigned landmark
        a_i (LPMARL Eq. (8): pi^l(a^l_i | o_i, a^h_i)); K = ``task_neighbors``::

            [ l_{a_i} - p_i (2), |l_{a_i} - p_i|, k_{a_i}, (#other agents assigned to a_i),
              v_i (2), p_i (2), t / T,
              K nearest other agents within obs_range, nearest first:
                  p_l - p_i (2), 1[a_l == a_i], 1 (present) ]

        The assigned landmark is always described (the high level tells the agent its task, even
        beyond obs_range); neighbour slots beyond the visible agents are zero.
        """
        a = self._assignment(assignment)
        B, N, K = self.B, self.N, self.K
        out = np.zeros((B, N, self.task_obs_dim), dtype=np.float32)
        rel = np.take_along_axis(self.landmarks, a[..., None], 1) - self.pos     # (B, N, 2)
        same = (a[:, :, None] == a[:, None, :]) & ~self._eye                     # (B, N, N)
        out[..., 0:2] = rel
        out[..., 2] = np.sqrt((rel ** 2).sum(-1))
        out[..., 3] = np.take_along_axis(self.capacity, a, 1)
        out[..., 4] = same.sum(-1)
        out[..., 5:7] = self.vel
        out[..., 7:9] = self.pos
        out[..., 9] = (self.steps / self.T)[:, None]
        k = min(K, N - 1)
        if k > 0:
            d = np.where(self.agent_visible(), self.geom.agent_dist, np.inf)
            order = np.argsort(d, axis=-1, kind="stable")[..., :k]                 # (B, N, k)
            present = np.isfinite(np.take_along_axis(d, order, -1))
            nb = np.zeros((B, N, k, TASK_PER_NEIGHBOR))
            bidx = np.arange(B)[:, None, None]
            nb[..., 0:2] = self.pos[bidx, order] - self.pos[:, :, None, :]
            nb[..., 2] = np.take_along_axis(same, order, -1)
            nb[..., 3] = 1.0
            nb *= present[..., None]
            out[..., TASK_FIXED:TASK_FIXED + TASK_PER_NEIGHBOR * k] = nb.reshape(B, N, TASK_PER_NEIGHBOR * k)
        return out

    def task_rewards(self, assignment: Any) -> np.ndarray:
        """(B, N) low-level reward of each agent for its assigned landmark a_i after the last step
        (LPMARL Sec. 2.1 r^l_i(s, a^l; a^h_i) with Table 5's terms): +1 when d_{i,a_i} <
        reach_radius; dense: minus distance_weight * d_{i,a_i} and collision_penalty per collision."""
        a = self._assignment(assignment)
        d = np.take_along_axis(self.geom.dist, a[..., None], -1)[..., 0]
        r = (d < self.radius).astype(float)
        if self.config.reward == "dense":
            r = r - self.config.distance_weight * d - self.config.collision_penalty * self.geom.collisions
        return np.asarray(r)

    # ------------------------------------------------------------------ metrics
    def episode_metrics(self) -> dict[str, np.ndarray]:
        """Metrics of the current (or just finished) episodes, arrays of shape (B,).

        * ``win``: 1 if the success condition (LPMARL Sec. 5.1) holds at the end of the episode
          (the last state; with ``terminate_on_success``, the terminal state).
        * ``min_distance``: LPMARL Table 1's low-level metric min_j d_ij, averaged over the agents,
          at the end of the episode.
        * ``collisions``: colliding agent pairs summed over the steps (a pair counts once a step).
        * ``return``: sum over steps of the mean over agents of the environment reward;
          ``high_return`` / ``low_return``: the same for r^h and for the mean r^l_i.
        * ``success_ever``: 1 if the success condition held after some step; ``success_time``:
          fraction of the steps after which it held.
        * ``min_distance_avg``: mean over steps of the agents' mean min_j d_ij.
        * ``reached``: fraction of agents occupying a landmark at the end;
          ``capacity_violation``: sum_j max(0, counts_j - k_j) at the end; ``steps``.
        """
        g, s = self.geom, self._sums
        steps = self.steps.astype(float)
        mean_d = g.min_dist.mean(-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            avg_d = np.where(steps > 0, s["dist"] / np.maximum(steps, 1.0), mean_d)
            succ_t = np.where(steps > 0, s["success_steps"] / np.maximum(steps, 1.0), 0.0)
        return {
            "win": g.success.astype(float),
            "min_distance": mean_d,
            "collisions": s["collisions"].copy(),
            "return": s["return"].copy(),
            "high_return": s["high"].copy(),
            "low_return": s["low"].copy(),
            "success_ever": s["success_ever"].astype(float),
            "success_time": succ_t,
            "min_distance_avg": avg_d,
            "reached": g.reached.mean(-1),
            "capacity_violation": np.maximum(g.counts - self.capacity, 0).sum(-1).astype(float),
            "steps": steps,
        }


__all__ = ["AGENT_SPAWN", "DAMPING", "DT", "LANDMARK_SPAWN", "METRIC_KEYS", "MOVES", "NOOP", "N_ACTIONS",
           "SENSITIVITY", "Geometry", "NavigationCore", "StepResult", "random_capacities"]
