"""Batched dynamics of the demand-coverage grid (numpy): B episodes stepped at once.

This is the one implementation of the dynamics; :class:`~hieralloc.envs.coverage.env.CoverageEnv`
wraps it with ``B = 1``.

Dynamics (HGRL Sec. 3 and Sec. 4.1, level l = 1). Positions ``pos[b, i] = (x, y)`` with x the row
(0..H-1) and y the column (0..W-1). An episode reads T + 1 consecutive frames
``F_k = D[(o + k) mod L]``, k = 0..T, from a start offset o drawn in the configured time split.

* ``reset``: draw o and the positions P_0 (uniform, independent); observe F_0 around P_0.
* ``step(a)`` for t = 1..T: action a in {0..w^2-1} picks the cell (dx, dy) = (a // w - r,
  a % w - r), r = (w-1)/2, of the agent's w x w window (the centre a = (w^2-1)/2 is *stay*);
  P_t = clip(P_{t-1} + (dx, dy)) (off-grid moves are clipped to the border; masks that mark them
  are available). Then the agents serve frame F_t at P_t and observe F_t around P_t. So an agent
  never sees the demand it is scored on before committing to its move.

Coverage rule: with k_t(c) the number of windows covering cell c, the demand served is
``served_t(c) = min(F_t(c), U * k_t(c))``. For non-overlapping windows this is exactly
``sum_n sum_{g in W(l_n)} min(D, U)`` of HGRL Eq. (1); unlike a literal sum over agents it does not
reward stacking windows on demand that one resource already serves. Agent i's share is
``sum_{c in W_i} served_t(c) / k_t(c)``; the shares add up to the team's served demand.

Reward (HGRL Eq. (4)): team reward ``r_t = C_t - delta * sum_i Dist_i`` with ``C_t = served_t``
(``reward_mode='served'``, the default: the undiscounted return is the Eq. (1) objective) or
``C_t - C_{t-1}`` (``'gain'``, the literal difference of Eq. (4), C_0 = coverage at reset).
``reward_split='team'`` gives every agent r_t; ``'individual'`` gives agent i its share minus its
own distance term (the shares sum to r_t).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hieralloc.envs.coverage.config import CoverageConfig
from hieralloc.envs.coverage.demand import DemandData, demand_from_array, load_demand
from hieralloc.envs.coverage.metrics import metrics_from_sums
from hieralloc.errors import ConfigError


@dataclass
class StepResult:
    """Arrays returned by :meth:`CoverageCore.step` (B = batch size, N agents)."""

    obs: np.ndarray            #: (B, N, 3 + w^2) float32 observations after the step
    rewards: np.ndarray        #: (B, N) per-agent rewards (team reward broadcast, or individual)
    team_reward: np.ndarray    #: (B,) coverage term - delta * sum of distances
    served: np.ndarray         #: (B,) demand served this step, sum_c min(F_t(c), U k_t(c))
    served_agent: np.ndarray   #: (B, N) each agent's share of ``served``
    demand: np.ndarray         #: (B,) total demand of the frame, sum_{x,y} F_t
    coverable: np.ndarray      #: (B,) per-step upper bound on served (see :func:`coverable_demand`)
    window_demand: np.ndarray  #: (B,) sum_i sum_{c in W_i} F_t(c) (Eq. (26)'s literal numerator)
    capacity: np.ndarray       #: (B,) U * number of in-grid window cells over agents (bound on served)
    distance: np.ndarray       #: (B, N) distance moved as used in the reward (config.distance)
    manhattan: np.ndarray      #: (B, N) Manhattan distance moved (HGRL Eq. (27))
    t: int                     #: step index after this step (1..T)
    done: bool                 #: t == T (every episode of the batch ends together)


class CoverageCore:
    """B synchronous episodes of the coverage grid.

    Args:
        config: the environment configuration.
        batch_size: number of episodes B stepped together.
        demand: optional demand override (``DemandData`` or an ``(L, H, W)`` array); by default
            the configured source is loaded (and cached).
    """

    def __init__(self, config: CoverageConfig, batch_size: int = 1,
                 demand: DemandData | np.ndarray | None = None) -> None:
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ConfigError("batch_size", f"must be a positive integer, got {batch_size!r}")
        self.config = config
        if demand is None:
            data = load_demand(config)
        elif isinstance(demand, DemandData):
            data = demand
        else:
            data = demand_from_array(demand)
        if data.shape != (config.height, config.width):
            raise ConfigError("height/width", f"the demand grid is {data.shape[0]}x{data.shape[1]} but the "
                              f"config asks for {config.height}x{config.width}")
        self.data = data
        self.B = int(batch_size)
        self.H, self.W = config.height, config.width
        self.N = config.n_agents
        self.w = config.window
        self.r = (self.w - 1) // 2
        self.K = self.w * self.w
        self.T = config.episode_length
        self.U = float(config.capacity)
        self.delta = float(config.delta)
        self.L = data.n_frames
        frames = data.frames
        self.frames = frames
        dmax = float(frames.max())
        #: observations and state show demand / obs_div (the data set's maximum when normalised,
        #: so they lie in [0, 1]); obs_scale = 1 / obs_div
        self.obs_div = dmax if (config.obs_normalize and dmax > 0) else 1.0
        self.obs_scale = 1.0 / self.obs_div

        r = self.r
        self.Hp, self.Wp = self.H + 2 * r, self.W + 2 * r
        self.HWp = self.Hp * self.Wp
        padded = np.zeros((self.L, self.Hp, self.Wp))
        padded[:, r:r + self.H, r:r + self.W] = frames
        self._dflat = padded.reshape(-1)  # zero demand outside the grid
        self.frame_total = frames.reshape(self.L, -1).sum(1)
        self.coverable = coverable_demand(frames, self.N, self.w, self.U)

        d = np.arange(-r, r + 1)
        self.moves = np.stack(np.meshgrid(d, d, indexing="ij"), -1).reshape(self.K, 2)  # a -> (dx, dy)
        self.stay_action = (self.K - 1) // 2
        self._offs = self.moves[:, 0] * self.Wp + self.moves[:, 1]
        self._boff = (np.arange(self.B) * self.HWp)[:, None, None]
        self._hi = np.array([self.H - 1, self.W - 1])

        self.split_range = self._split_range()
        self.rng = np.random.default_rng()
        self.pos = np.zeros((self.B, self.N, 2), dtype=np.int64)
        self.offset = np.zeros(self.B, dtype=np.int64)
        self.t = 0
        self._d = np.zeros((self.B, self.N, self.K))
        self._share = np.zeros((self.B, self.N))
        self._extras: dict[str, Any] = {}
        self._zero_sums()
        self._ready = False

    # ------------------------------------------------------------------ sizes and helpers
    @property
    def obs_dim(self) -> int:
        return 3 + self.K

    @property
    def state_dim(self) -> int:
        return self.H * self.W + 2 * self.N + 1

    def _split_range(self) -> tuple[int, int]:
        L, cfg = self.L, self.config
        if cfg.split == "all" or L == 1:
            return 0, L
        n_train = int(np.clip(round(L * cfg.train_fraction), 1, L - 1))
        return (0, n_train) if cfg.split == "train" else (n_train, L)

    def start_offsets(self) -> tuple[int, int]:
        """Inclusive range of episode start offsets in the configured split.

        When the split holds the T + 1 frames of an episode, the episode stays inside it;
        otherwise (e.g. Toy's 4-frame eval split) the start is drawn in the split and frames wrap
        around the end of the data (index modulo L).
        """
        s0, s1 = self.split_range
        if s1 - s0 >= self.T + 1:
            return s0, s1 - self.T - 1
        return s0, s1 - 1

    def frame_index(self, k: int) -> np.ndarray:
        """(B,) absolute frame index of episode frame k (k = 0..T)."""
        return (self.offset + k) % self.L

    def episode_frames(self, b: int = 0) -> np.ndarray:
        """The T + 1 frames F_0..F_T of episode ``b`` (full information; used by oracles)."""
        idx = (self.offset[b] + np.arange(self.T + 1)) % self.L
        return np.asarray(self.frames[idx])

    def _zero_sums(self) -> None:
        z = np.zeros(self.B)
        self._sum_served, self._sum_ratio, self._sum_manh = z.copy(), z.copy(), z.copy()
        self._sum_norm = z.copy()
        self._sum_demand, self._sum_return = z.copy(), z.copy()

    def _cover(self, pos: np.ndarray, fidx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Window demand (B, N, K) and each agent's share of served demand (B, N).

        Vectorised over batch, agents and window offsets: the window cells' flat indices into the
        padded grid, ``bincount`` for k(c) (windows covering each cell), one gather for F_t(c).
        """
        cells = ((pos[..., 0] + self.r) * self.Wp + (pos[..., 1] + self.r))[..., None] + self._offs
        gidx = cells + self._boff[: pos.shape[0]]
        k = np.bincount(gidx.ravel(), minlength=pos.shape[0] * self.HWp)[gidx]
        d = self._dflat[cells + (fidx * self.HWp)[:, None, None]]
        share = (np.minimum(d, self.U * k) / k).sum(-1)
        return d, share

    def _capacity(self) -> np.ndarray:
        x, y, r = self.pos[..., 0], self.pos[..., 1], self.r
        nx = np.minimum(x + r, self.H - 1) - np.maximum(x - r, 0) + 1
        ny = np.minimum(y + r, self.W - 1) - np.maximum(y - r, 0) + 1
        return self.U * (nx * ny).sum(-1).astype(float)

    # ------------------------------------------------------------------ API
    def seed(self, seed: int | None) -> None:
        self.rng = np.random.default_rng(seed)

    def reset(self, seed: int | None = None, offsets: Any = None, positions: Any = None) -> np.ndarray:
        """Start B new episodes; returns the observations (B, N, 3 + w^2).

        ``offsets`` (B,) or scalar: start frames (any integer in [0, L)); ``positions`` (N, 2) or
        (B, N, 2): start cells. Drawn from the core's RNG when omitted (offsets first).
        """
        if seed is not None:
            self.seed(seed)
        lo, hi = self.start_offsets()
        if offsets is None:
            self.offset = self.rng.integers(lo, hi + 1, size=self.B)
        else:
            off = np.broadcast_to(np.asarray(offsets, dtype=np.int64), (self.B,)).copy()
            if (off < 0).any() or (off >= self.L).any():
                raise ConfigError("offset", f"must be in [0, {self.L - 1}], got {off.tolist()}")
            self.offset = off
        if positions is None:
            self.pos = np.stack([self.rng.integers(0, self.H, size=(self.B, self.N)),
                                 self.rng.integers(0, self.W, size=(self.B, self.N))], -1)
        else:
            p = np.asarray(positions)
            if p.shape not in ((self.N, 2), (self.B, self.N, 2)) or not np.issubdtype(p.dtype, np.integer):
                raise ConfigError("positions", f"must be integer cells of shape ({self.N}, 2) or "
                                  f"({self.B}, {self.N}, 2), got {p.dtype} {p.shape}")
            p = np.broadcast_to(p, (self.B, self.N, 2)).astype(np.int64)
            if (p < 0).any() or (p > self._hi).any():
                raise ConfigError("positions", f"must lie in the {self.H}x{self.W} grid")
            self.pos = p.copy()
        self.t = 0
        self._zero_sums()
        self._extras = {}
        self._d, self._share = self._cover(self.pos, self.frame_index(0))
        self._ready = True
        return self.observations()

    def step(self, actions: Any) -> StepResult:
        """Apply (B, N) integer actions; see the module docstring for the order of events."""
        if not self._ready:
            raise RuntimeError("call reset() before step()")
        if self.t >= self.T:
            raise RuntimeError(f"the episodes ended after {self.T} steps; call reset()")
        a = np.asarray(actions)
        if a.shape != (self.B, self.N):
            a = np.broadcast_to(a, (self.B, self.N)) if a.size in (1, self.N) else a
            if a.shape != (self.B, self.N):
                raise ValueError(f"actions must have shape ({self.B}, {self.N}), got {np.shape(actions)}")
        if a.size and (a.min() < 0 or a.max() >= self.K):
            raise ValueError(f"actions must be integers in [0, {self.K - 1}]")
        a = a.astype(np.int64, copy=False)
        new = np.clip(self.pos + self.moves[a], 0, self._hi)
        disp = new - self.pos
        manh = np.abs(disp).sum(-1).astype(float)
        dist = manh if self.config.distance == "manhattan" else np.hypot(disp[..., 0], disp[..., 1])
        self.pos = new
        self.t += 1
        fidx = self.frame_index(self.t)
        prev_share = self._share
        self._d, self._share = self._cover(new, fidx)
        served = self._share.sum(-1)
        demand = self.frame_total[fidx]
        cov_agent = self._share - prev_share if self.config.reward_mode == "gain" else self._share
        pen = self.delta * dist
        team = cov_agent.sum(-1) - pen.sum(-1)
        if self.config.reward_split == "team":
            rewards = np.repeat(team[:, None], self.N, axis=1)
        else:
            rewards = cov_agent - pen
        self._sum_served += served
        self._sum_ratio += np.where(demand > 0, served / np.where(demand > 0, demand, 1.0), 1.0)  # HGRL Eq. (26)
        cov = self.coverable[fidx]
        self._sum_norm += np.where(cov > 0, served / np.where(cov > 0, cov, 1.0), 1.0)
        self._sum_manh += manh.sum(-1)  # HGRL Eq. (27)
        self._sum_demand += demand
        self._sum_return += team
        return StepResult(obs=self.observations(), rewards=rewards, team_reward=team, served=served,
                          served_agent=self._share, demand=demand, coverable=cov, window_demand=self._d.sum((1, 2)),
                          capacity=self._capacity(), distance=dist, manhattan=manh, t=self.t,
                          done=self.t >= self.T)

    def observations(self) -> np.ndarray:
        """(B, N, 3 + w^2) float32: x / (H-1), y / (W-1), t / T, then the w x w window of F_t
        (row-major, the same order as the actions; 0 outside the grid), divided by ``obs_div``."""
        obs = np.empty((self.B, self.N, self.obs_dim), dtype=np.float32)
        obs[..., 0] = self.pos[..., 0] / max(self.H - 1, 1)
        obs[..., 1] = self.pos[..., 1] / max(self.W - 1, 1)
        obs[..., 2] = self.t / self.T
        obs[..., 3:] = self._d / self.obs_div
        return obs

    def state(self) -> np.ndarray:
        """(B, H*W + 2N + 1) float32: the frame F_t (scaled like observations, row-major), the
        normalised positions (x_0, y_0, x_1, ...), and t / T."""
        fr = self.frames[self.frame_index(self.t)].reshape(self.B, -1) / self.obs_div
        p = (self.pos / np.array([max(self.H - 1, 1), max(self.W - 1, 1)])).reshape(self.B, -1)
        tt = np.full((self.B, 1), self.t / self.T)
        return np.concatenate([fr, p, tt], axis=1).astype(np.float32)

    def action_masks(self) -> np.ndarray:
        """(B, N, w^2) bool: True where the move keeps the agent on the grid (stay is always True).
        Masked moves are still accepted by :meth:`step` (they are clipped to the border)."""
        tx = self.pos[..., None, 0] + self.moves[:, 0]
        ty = self.pos[..., None, 1] + self.moves[:, 1]
        return (tx >= 0) & (tx < self.H) & (ty >= 0) & (ty < self.W)

    def episode_metrics(self) -> dict[str, np.ndarray]:
        """Metrics of the current episodes so far, arrays of shape (B,) (HGRL Eqs. (26)-(28))."""
        out = metrics_from_sums(self._sum_served, self._sum_ratio, self._sum_norm, self._sum_manh,
                                self._sum_demand, self._sum_return, self.t, self.N, self.w)
        for k, v in self._extras.items():
            out[k] = np.broadcast_to(np.asarray(v, dtype=float), (self.B,)).copy()
        return out

    def add_episode_info(self, **values: float) -> None:
        """Attach extra numbers to this episode's metrics (e.g. an oracle's bound); cleared by reset."""
        self._extras.update(values)


def coverable_demand(frames: np.ndarray, n_agents: int, window: int, capacity: float) -> np.ndarray:
    """(L,) per-frame upper bound on the demand N windows can serve, whatever their positions.

    N windows cover at most N w^2 distinct cells, a cell serves at most min(D, U N), and the
    resources together serve at most U N w^2:

        coverable_t = min( sum of the N w^2 largest min(F_t(c), U N),  U N w^2 ).
    """
    L = frames.shape[0]
    v = np.minimum(frames.reshape(L, -1), capacity * n_agents)
    m = min(n_agents * window * window, v.shape[1])
    top = -np.partition(-v, m - 1, axis=1)[:, :m] if m < v.shape[1] else v
    return np.minimum(top.sum(1), capacity * n_agents * window * window)


def served_by_positions(frame: np.ndarray, positions: np.ndarray, window: int, capacity: float) -> float:
    """Reference (unvectorised) served demand of one frame: sum_c min(F(c), U * k(c)).

    Used by tests and oracles to check the batched core; positions is (N, 2).
    """
    H, W = frame.shape
    r = (window - 1) // 2
    k = np.zeros((H, W))
    for x, y in np.asarray(positions):
        k[max(x - r, 0):x + r + 1, max(y - r, 0):y + r + 1] += 1
    return float(np.minimum(frame, capacity * k).sum())


__all__ = ["CoverageCore", "StepResult", "coverable_demand", "served_by_positions"]
