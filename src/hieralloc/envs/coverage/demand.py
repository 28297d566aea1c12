"""Demand sources: anything that yields a non-negative demand tensor ``D[t, x, y]``.

A *source* is a function ``build(config) -> ndarray`` of shape ``(L, H, W)`` registered under a
name with :func:`register_source`. :func:`load_demand` calls it, validates the result (finite,
non-negative, the configured grid size) and caches it, so every environment instance with the same
data configuration shares one read-only array. New loaders (TaxiBJ's HDF5 layout, a trip-table
rasteriser) plug in by registering another source; see docs/environments/coverage.md.

Built-in sources:

* ``toy``  -- HGRL Sec. 5.1 Toy example: two Gaussian peaks at (15, 15) and (35, 35) of a 50 x 50
  grid with sigma = 0.15 in coordinates normalised to [0, 1], min-max normalised to [0, 1], plus
  N(0, (0.05 D_max)^2) noise per frame, clipped at 0; 28 frames.
* ``city`` -- synthetic city: heavy-tailed hotspots that drift and pulse on a daily cycle over a
  smooth background, Poisson noise; 7 days x 48 half-hour steps (TaxiBJ's layout).
* ``npy``  -- an ``(L, H, W)`` array saved with ``numpy.save`` (``source_options.path``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hieralloc.errors import ConfigError, DataError

if TYPE_CHECKING:
    from hieralloc.envs.coverage.config import CoverageConfig

SourceFn = Callable[["CoverageConfig"], np.ndarray]


@dataclass(frozen=True)
class SourceSpec:
    name: str
    build: SourceFn
    description: str
    #: default number of frames when ``config.n_frames == 0`` (None: the source decides)
    default_frames: int | None = None


@dataclass(frozen=True)
class DemandData:
    """A validated demand tensor: ``frames[t, x, y] >= 0``, finite, read-only."""

    frames: np.ndarray
    name: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.frames.shape[1]), int(self.frames.shape[2])


SOURCES: dict[str, SourceSpec] = {}
_CACHE: dict[str, DemandData] = {}
_CACHE_MAX = 32


def register_source(name: str, build: SourceFn, description: str,
                    default_frames: int | None = None) -> SourceSpec:
    """Register a demand source under ``name`` (idempotent for the same function)."""
    spec = SourceSpec(name, build, description, default_frames)
    old = SOURCES.get(name)
    if old is not None and old.build is not build:
        raise ValueError(f"duplicate demand source '{name}'")
    SOURCES[name] = spec
    return spec


def validate_demand(arr: Any, what: str, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Return ``arr`` as a float64 ``(L, H, W)`` array or raise :class:`DataError`.

    Rejects: not 3-D, no frame, NaN, +/-inf, negative values, and (when ``shape`` is given) a grid
    size different from the configured ``(height, width)`` (a :class:`ConfigError`).
    """
    try:
        a = np.asarray(arr, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise DataError(f"demand from {what} is not numeric: {e}") from None
    if a.ndim != 3:
        raise DataError(f"demand from {what} must have shape (T, H, W), got {a.shape}")
    if a.shape[0] < 1 or a.shape[1] < 1 or a.shape[2] < 1:
        raise DataError(f"demand from {what} is empty: shape {a.shape}")
    if np.isnan(a).any():
        t, x, y = np.argwhere(np.isnan(a))[0]
        raise DataError(f"demand from {what} contains NaN (first at t={t}, x={x}, y={y}); "
                        f"fill or drop missing values before use")
    if np.isinf(a).any():
        t, x, y = np.argwhere(np.isinf(a))[0]
        raise DataError(f"demand from {what} contains an infinite value at t={t}, x={x}, y={y}")
    if (a < 0).any():
        t, x, y = np.argwhere(a < 0)[0]
        raise DataError(f"demand from {what} is negative at t={t}, x={x}, y={y} "
                        f"(value {a[t, x, y]:g}); demand must be >= 0")
    if shape is not None and a.shape[1:] != tuple(shape):
        raise ConfigError("height/width", f"the demand from {what} is {a.shape[1]}x{a.shape[2]} but "
                          f"the config asks for {shape[0]}x{shape[1]}; set height={a.shape[1]} "
                          f"width={a.shape[2]}")
    return a


def _cache_key(cfg: CoverageConfig) -> str:
    payload = json.dumps([cfg.source, cfg.height, cfg.width, cfg.n_frames, cfg.data_seed,
                          cfg.source_options], sort_keys=True, default=str)
    return hashlib.sha1(payload.encode()).hexdigest()


def load_demand(cfg: CoverageConfig) -> DemandData:
    """Build (or fetch from the cache) the validated demand tensor of ``cfg``."""
    key = _cache_key(cfg)
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    spec = SOURCES.get(cfg.source)
    if spec is None:
        raise ConfigError("source", f"must be one of {', '.join(sorted(SOURCES))}, got {cfg.source!r}")
    frames = validate_demand(spec.build(cfg), f"source '{cfg.source}'", (cfg.height, cfg.width))
    frames.setflags(write=False)
    data = DemandData(frames, cfg.source, {"options": dict(cfg.source_options),
                                           "data_seed": cfg.data_seed})
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = data
    return data


def demand_from_array(arr: Any, name: str = "array") -> DemandData:
    """Wrap an in-memory ``(L, H, W)`` array as validated :class:`DemandData`."""
    frames = validate_demand(arr, name).copy()
    frames.setflags(write=False)
    return DemandData(frames, name, {})


# ---------------------------------------------------------------------------------------------
# helpers


def _options(cfg: CoverageConfig, defaults: dict[str, Any]) -> dict[str, Any]:
    """Merge ``cfg.source_options`` over ``defaults``; unknown keys are a ConfigError."""
    unknown = sorted(set(cfg.source_options) - set(defaults))
    if unknown:
        raise ConfigError(f"source_options.{unknown[0]}",
                          f"unknown option of source '{cfg.source}'; valid: {', '.join(sorted(defaults))}")
    out = dict(defaults)
    out.update(cfg.source_options)
    return out


def _number(opts: dict[str, Any], key: str, low: float, high: float = np.inf, *,
            integer: bool = False, low_open: bool = False) -> float:
    v = opts[key]
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)
    if ok and integer:
        ok = float(v).is_integer()
    if ok:
        ok = (v > low if low_open else v >= low) and v <= high
    if not ok:
        kind = "an integer" if integer else "a number"
        lo = "(" if low_open else "["
        raise ConfigError(f"source_options.{key}", f"must be {kind} in {lo}{low}, {high}], got {v!r}")
    return float(v)


def _n_frames(cfg: CoverageConfig, default: int) -> int:
    return cfg.n_frames if cfg.n_frames > 0 else default


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell coordinates normalised to [0, 1): x / H, y / W (so cell 15 of 50 is 0.3)."""
    return np.meshgrid(np.arange(h) / h, np.arange(w) / w, indexing="ij")


# ---------------------------------------------------------------------------------------------
# Toy example, HGRL Sec. 5.1


def toy_demand(cfg: CoverageConfig) -> np.ndarray:
    """HGRL Sec. 5.1: D = G(0.3, 0.3) + G(0.7, 0.7), min-max normalised, plus 5 % noise.

    G(mu) = exp(-((x - mu_x)^2 + (y - mu_y)^2) / (2 sigma^2)) in coordinates normalised by the
    grid size (x / H, y / W; the paper's centres (15, 15) and (35, 35) on 50 x 50 become 0.3 and
    0.7). sigma = 0.15 in these units is 7.5 cells on 50 x 50; read in cell units the peaks would
    be single cells. Noise eps ~ N(0, (noise * D_max)^2), independent per frame and cell; the
    result is clipped at 0 because demand cannot be negative.
    """
    o = _options(cfg, {"sigma": 0.15, "noise": 0.05, "centers": [[0.3, 0.3], [0.7, 0.7]]})
    sigma = _number(o, "sigma", 0.0, low_open=True)
    noise = _number(o, "noise", 0.0)
    try:
        centers = np.asarray(o["centers"], dtype=float).reshape(-1, 2)
    except (TypeError, ValueError):
        raise ConfigError("source_options.centers", "must be a list of [x, y] pairs in [0, 1]") from None
    if len(centers) == 0 or not np.isfinite(centers).all():
        raise ConfigError("source_options.centers", "must be a non-empty list of finite [x, y] pairs")
    X, Y = _grid(cfg.height, cfg.width)
    base = np.zeros((cfg.height, cfg.width))
    for mx, my in centers:
        base += np.exp(-((X - mx) ** 2 + (Y - my) ** 2) / (2 * sigma**2))
    span = base.max() - base.min()
    base = (base - base.min()) / span if span > 0 else np.ones_like(base)
    L = _n_frames(cfg, 28)
    rng = np.random.default_rng(cfg.data_seed)
    d_max = float(base.max())
    frames = base[None] + rng.normal(0.0, noise * d_max, size=(L, cfg.height, cfg.width))
    return np.maximum(frames, 0.0)


# ---------------------------------------------------------------------------------------------
# Synthetic city


def city_demand(cfg: CoverageConfig) -> np.ndarray:
    """Synthetic city: drifting, pulsing, heavy-tailed hotspots over a daily-cycling background.

    Intensity at step tau (hour h = 24 (tau mod S) / S, S steps per day) and normalised cell z:

        lambda(tau, z) = b(h) * B(z) + sum_k A_k * w_d * m_k(h) * exp(-|z - c_k(h)|^2 / (2 s_k^2))

    * A_k = peak * P_k / 2^(1/tail), P_k ~ Pareto(tail) (type I, x_m = 1): median = ``peak``,
      heavy right tail (capped at 20 peak).
    * m_k(h) = 0.2 + 0.8 exp(-d(h, h_k)^2 / (2 * 2.5^2)): the hotspot pulses around its own rush
      hour h_k (morning 8:30, midday 13:00, evening 18:30 or night 22:00, +-1 h jitter).
    * c_k(h) = c_k + drift * rho_k (cos, sin)(2 pi h / 24 + phi_k): a daily loop (drift).
    * w_d = 0.75 on days 5 and 6 of each week (weekend), else 1.
    * B(z): 0.5 + a broad bump around the city centre; b(h) = background * (0.3 + 0.7 * day
      profile), the day profile being low at night.
    * Noise: ``poisson`` draws D ~ Poisson(lambda) (trip counts), ``gaussian`` multiplies by
      max(0, 1 + noise_level * N(0, 1)), ``none`` returns lambda.
    """
    o = _options(cfg, {"n_hotspots": 8, "steps_per_day": 48, "n_days": 7, "peak": 20.0,
                       "tail": 1.5, "width_min": 0.03, "width_max": 0.08, "drift": 0.08,
                       "background": 0.5, "noise": "poisson", "noise_level": 0.2})
    K = int(_number(o, "n_hotspots", 0, 1000, integer=True))
    S = int(_number(o, "steps_per_day", 1, 10_000, integer=True))
    n_days = int(_number(o, "n_days", 1, 10_000, integer=True))
    peak = _number(o, "peak", 0.0)
    tail = _number(o, "tail", 0.0, low_open=True)
    wmin = _number(o, "width_min", 0.0, low_open=True)
    wmax = _number(o, "width_max", wmin)
    drift = _number(o, "drift", 0.0, 1.0)
    background = _number(o, "background", 0.0)
    noise_level = _number(o, "noise_level", 0.0)
    if o["noise"] not in ("poisson", "gaussian", "none"):
        raise ConfigError("source_options.noise", f"must be one of poisson, gaussian, none, got {o['noise']!r}")
    L = _n_frames(cfg, S * n_days)
    rng = np.random.default_rng(cfg.data_seed)
    centers = rng.uniform(0.1, 0.9, size=(K, 2))
    amp = np.minimum(peak * (1.0 + rng.pareto(tail, size=K)) / 2 ** (1 / tail), 20 * peak)
    widths = rng.uniform(wmin, wmax, size=K)
    rush = rng.choice([8.5, 13.0, 18.5, 22.0], p=[0.35, 0.15, 0.35, 0.15], size=K)
    rush = rush + rng.uniform(-1.0, 1.0, size=K)
    rho = rng.uniform(0.3, 1.0, size=K)
    phi = rng.uniform(0, 2 * np.pi, size=K)

    tau = np.arange(L)
    hour = 24.0 * (tau % S) / S
    day = tau // S
    weekend = np.where(day % 7 >= 5, 0.75, 1.0)
    dh = np.abs(hour[:, None] - rush[None, :])
    dh = np.minimum(dh, 24.0 - dh)  # circular distance in hours
    pulse = 0.2 + 0.8 * np.exp(-(dh**2) / (2 * 2.5**2))  # (L, K)
    ang = 2 * np.pi * hour[:, None] / 24.0 + phi[None, :]
    cx = np.clip(centers[None, :, 0] + drift * rho * np.cos(ang), 0.0, 1.0)  # (L, K)
    cy = np.clip(centers[None, :, 1] + drift * rho * np.sin(ang), 0.0, 1.0)

    X, Y = _grid(cfg.height, cfg.width)
    lam = np.zeros((L, cfg.height, cfg.width))
    for k in range(K):  # K hotspots, each vectorised over time and space
        g = np.exp(-((X[None] - cx[:, k, None, None]) ** 2 + (Y[None] - cy[:, k, None, None]) ** 2)
                   / (2 * widths[k] ** 2))
        lam += (amp[k] * weekend * pulse[:, k])[:, None, None] * g
    day_profile = 0.3 + 0.7 * np.exp(-((hour - 14.0) ** 2) / (2 * 5.0**2))
    bump = 0.5 + np.exp(-((X - 0.5) ** 2 + (Y - 0.5) ** 2) / (2 * 0.25**2))
    lam += background * (day_profile * weekend)[:, None, None] * bump[None]
    if o["noise"] == "poisson":
        return rng.poisson(lam).astype(np.float64)
    if o["noise"] == "gaussian":
        return lam * np.maximum(0.0, 1.0 + noise_level * rng.standard_normal(lam.shape))
    return lam


# ---------------------------------------------------------------------------------------------
# File source


def npy_demand(cfg: CoverageConfig) -> np.ndarray:
    """Load ``source_options.path`` (an ``(L, H, W)`` ``.npy`` file); ``n_frames`` truncates."""
    o = _options(cfg, {"path": ""})
    path = Path(str(o["path"]))
    if not str(o["path"]):
        raise ConfigError("source_options.path", "source 'npy' needs the path of a .npy file")
    if not path.is_file():
        raise DataError(f"demand file '{path}' does not exist")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise DataError(f"demand file '{path}' is not a readable .npy array: {e}") from None
    arr = validate_demand(arr, f"file '{path}'")
    if cfg.n_frames > 0:
        if cfg.n_frames > arr.shape[0]:
            raise ConfigError("n_frames", f"file '{path}' has only {arr.shape[0]} frames, "
                              f"asked for {cfg.n_frames}")
        arr = arr[: cfg.n_frames]
    return arr


register_source("toy", toy_demand, "HGRL Sec. 5.1 Toy example: two Gaussian peaks, 5% noise", 28)
register_source("city", city_demand, "synthetic city: drifting, pulsing, heavy-tailed hotspots", 336)
register_source("npy", npy_demand, "an (L, H, W) array saved with numpy.save (source_options.path)")

__all__ = ["DemandData", "SOURCES", "SourceSpec", "city_demand", "demand_from_array", "load_demand",
           "npy_demand", "register_source", "toy_demand", "validate_demand"]
