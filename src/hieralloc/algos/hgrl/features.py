"""Multi-scale demand features for the agents: what GDI-Net tells each agent (HGRL Sec. 4.2.2).

:class:`DemandFeatures` owns the demand *estimate* an agent may use and turns it into the
per-agent numbers of the state embedding, Eq. (11): the level-l demand D_hat^l and its gradients
G_x^l, G_y^l at the agent's position. It has three sources:

* ``gdinet``: GDI-Net (:mod:`hieralloc.algos.hgrl.gdinet`) fitted by Eq. (14) on the cells the
  agents observed (:class:`ObservationSet`); :meth:`record` adds what the agents see now and
  :meth:`refit` continues the fit (the closed loop of Sec. 4.4).
* ``truth``: the true frames (full information; an upper-bound diagnostic, not the paper's setting).
* ``none``: no map features at all (the "w/o GDI-Net" variants of Fig. 3).

The estimated maps of every frame and every resolution (Eq. (8)/(23) pooling, Eq. (24)/(25) Sobel
gradients) are cached as numpy arrays after each fit, so looking features up while acting is an
index, not a network evaluation. Values are divided by the environment's ``obs_div`` (the data
set's maximum demand) like the observations, so they lie on the same scale.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hieralloc.algos.hgrl.gdinet import (
    GDIEstimator,
    GDINetConfig,
    ObservationSet,
    check_factors,
    multiscale,
    pool_shape,
)
from hieralloc.config import Config, param
from hieralloc.errors import ConfigError

FEATURE_SOURCES = ("gdinet", "truth", "none")


def _small_gdinet() -> GDINetConfig:
    # the closed loop refits GDI-Net many times inside a CPU budget: d = 64, 3 x 64 sine layers,
    # 1024 cells a step (about 9 ms a step on one core); App. C's d = 2048, 3 x 128 is the `paper` budget
    return GDINetConfig(d=64, hidden=64, batch_size=1024)


@dataclass
class FeatureConfig(Config):
    """Where the agents' map features come from and when GDI-Net is (re)fitted (HGRL Sec. 4.4, 5.1)."""

    source: str = param("gdinet", "gdinet (estimate from observed cells), truth (full information, a "
                        "diagnostic) or none (no map features)", choices=FEATURE_SOURCES)
    pool_factors: tuple[int, ...] = param((1, 2, 4), "per-axis pooling factor of each resolution "
                                          "(HGRL App. C: ratios 1, 1/4, 1/16 of the cells)")
    explore_episodes: int = param(10, "random-exploration episodes whose observations seed GDI-Net "
                                  "before learning (HGRL Sec. 5.1); they count as environment steps", low=0)
    initial_steps: int = param(300, "GDI-Net steps of the first fit, on the exploration data", low=0)
    refit_every: int = param(25, "training episodes between closed-loop refits (HGRL Sec. 4.4; 0: never)",
                             low=0)
    refit_steps: int = param(30, "GDI-Net steps of each refit", low=0)
    gdinet: GDINetConfig = param(default_factory=_small_gdinet, help="GDI-Net architecture and optimiser "
                                 "(defaults reduced for CPU, see docs/methods/hgrl.md)")


class DemandFeatures:
    """Per-resolution demand/gradient maps of a coverage data set and lookups at agent positions.

    Args:
        frames: ``(L, H, W)`` true demand frames of the data set (used by ``truth``, and for the
            shape of GDI-Net's grid; GDI-Net itself only ever sees :meth:`record`-ed cells).
        obs_div: divisor of every returned value (the env core's ``obs_div``).
        source: ``gdinet``, ``truth`` or ``none``.
        factors: per-axis pooling factor of each resolution (HGRL App. C: 1, 2, 4).
        gdinet: GDI-Net configuration (``pool_factors`` is overridden by ``factors``).
        seed: seed of GDI-Net's initialisation and minibatches.
    """

    def __init__(self, frames: np.ndarray, obs_div: float, source: str = "gdinet",
                 factors: Sequence[int] = (1, 2, 4), gdinet: GDINetConfig | None = None, seed: int = 0) -> None:
        if source not in FEATURE_SOURCES:
            raise ConfigError("features", f"must be one of {', '.join(FEATURE_SOURCES)}, got {source!r}")
        self.frames = np.asarray(frames, dtype=np.float64)
        if self.frames.ndim != 3:
            raise ValueError(f"frames must be (L, H, W), got shape {self.frames.shape}")
        self.L, self.H, self.W = self.frames.shape
        self.obs_div = float(obs_div) if obs_div > 0 else 1.0
        self.source = source
        self.factors = check_factors(factors, "pool_factors")
        cfg = gdinet if gdinet is not None else GDINetConfig()
        self.gdi_config = dataclasses.replace(cfg, pool_factors=self.factors)
        self.observations = ObservationSet((self.L, self.H, self.W))
        self.estimator: GDIEstimator | None = None
        if source == "gdinet":
            self.estimator = GDIEstimator((self.L, self.H, self.W), self.gdi_config, seed)
        #: maps[k] = (demand, grad_x, grad_y), each (L, H_k, W_k) float32, for resolution k
        self.maps: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.fits = 0
        if source == "truth":
            self._set_maps(self.frames)
        elif source == "gdinet":  # before any fit: zero maps (nothing is known yet)
            self._set_maps(np.zeros_like(self.frames))

    # ------------------------------------------------------------------ maps
    @property
    def enabled(self) -> bool:
        return self.source != "none"

    @property
    def n_resolutions(self) -> int:
        return len(self.factors)

    def _set_maps(self, base: np.ndarray) -> None:
        c = self.gdi_config
        levels = multiscale(base / self.obs_div, self.factors, c.gradient_mode, c.padding)
        self.maps = [(m.demand.astype(np.float32), m.grad_x.astype(np.float32), m.grad_y.astype(np.float32))
                     for m in levels]

    def grid_shape(self, resolution: int) -> tuple[int, int]:
        """(H_k, W_k) of resolution ``k`` (ceil division by its factor)."""
        return pool_shape(self.H, self.W, self.factors[resolution])

    def record(self, env_or_core: Any) -> int:
        """Add what every agent of a coverage env/core observes right now (``gdinet`` only)."""
        if self.source != "gdinet":
            return 0
        return self.observations.record(env_or_core)

    def refit(self, steps: int) -> dict[str, float]:
        """``steps`` more GDI-Net steps on the observations so far, then refresh the cached maps."""
        if self.estimator is None or steps <= 0 or len(self.observations) == 0:
            return {}
        out = self.estimator.fit(self.observations, steps)
        self._set_maps(self.estimator.predict())
        self.fits += 1
        return {f"gdi_{k}": v for k, v in out.items()}

    def lookup(self, resolution: int, frame: int, positions: np.ndarray, gradients: bool = True) -> np.ndarray:
        """``(N, 3)`` (or ``(N, 1)`` without gradients) D_hat, G_x, G_y of resolution ``k`` at the
        cells containing ``positions`` (``(N, 2)`` base-grid cells) in frame ``frame`` (Eq. (11))."""
        k = min(resolution, self.n_resolutions - 1)
        f = self.factors[k]
        d, gx, gy = self.maps[k]
        cx, cy = positions[:, 0] // f, positions[:, 1] // f
        fr = int(frame) % self.L
        if gradients:
            return np.stack([d[fr, cx, cy], gx[fr, cx, cy], gy[fr, cx, cy]], axis=-1)
        return d[fr, cx, cy][:, None]

    def demand_map(self, resolution: int, frame: int) -> np.ndarray:
        """(H_k, W_k) estimated demand of resolution ``k`` in frame ``frame`` (divided by ``obs_div``)."""
        return self.maps[min(resolution, self.n_resolutions - 1)][0][int(frame) % self.L]

    # ------------------------------------------------------------------ the closed loop
    @classmethod
    def for_env(cls, env: Any, cfg: FeatureConfig, seed: int) -> DemandFeatures:
        """Features over the data set of a coverage env (``env.core``)."""
        core = getattr(env, "core", env)
        return cls(np.asarray(core.frames), float(core.obs_div), cfg.source, cfg.pool_factors, cfg.gdinet, seed)

    def explore(self, env: Any, cfg: FeatureConfig, seed: int) -> int:
        """Run ``cfg.explore_episodes`` uniformly random episodes, record every window the agents
        see, and fit GDI-Net ``cfg.initial_steps`` steps (HGRL Sec. 5.1: "demand observations are
        collected from agent trajectories via random exploration"). Returns the environment steps
        taken. Episodes are seeded from ``seed`` so a run is reproducible."""
        if self.source != "gdinet" or cfg.explore_episodes == 0:
            return 0
        from hieralloc.eval import episode_seed

        rng = np.random.default_rng(seed)
        steps = 0
        for i in range(cfg.explore_episodes):
            env.reset(seed=episode_seed(seed, i))
            self.record(env)
            while env.agents:
                n = env.action_space(env.agents[0]).n
                env.step({a: int(rng.integers(n)) for a in env.agents})
                self.record(env)
                steps += 1
        self.refit(cfg.initial_steps)
        return steps

    def maybe_refit(self, episodes_done: int, cfg: FeatureConfig) -> dict[str, float]:
        """The closed-loop refit of HGRL Sec. 4.4: every ``refit_every`` training episodes."""
        if self.source != "gdinet" or cfg.refit_every == 0 or episodes_done % cfg.refit_every != 0:
            return {}
        return self.refit(cfg.refit_steps)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "fits": self.fits}
        if self.estimator is not None:
            out["estimator"] = self.estimator.state_dict()
            out["observations"] = self.observations.state_dict()
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("source") != self.source:
            raise ValueError(f"features were saved with source {state.get('source')!r}, this run uses {self.source!r}")
        self.fits = int(state["fits"])
        if self.estimator is not None:
            self.estimator.load_state_dict(state["estimator"])
            self.observations.load_state_dict(state["observations"])
            if self.fits > 0:
                self._set_maps(self.estimator.predict())


__all__ = ["FEATURE_SOURCES", "DemandFeatures", "FeatureConfig"]
