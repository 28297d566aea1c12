"""GDI-Net: global demand inference from the agents' partial observations (HGRL Sec. 4.2, App. B).

A spatio-temporal implicit neural representation (after Nie et al. 2024, ST-INR) maps a coordinate
(t, x, y) to a demand estimate D_hat(t, x, y):

    phi_t   = [sin(2 pi B_t t), cos(2 pi B_t t)]                                   HGRL Eq. (17)
    z_t     = MLP_t(phi_t)          sine layers, 3 x 128                            HGRL Eq. (18)
    phi_xy  = [sin(2 pi B_x x), cos(2 pi B_x x), sin(2 pi B_y y), cos(2 pi B_y y)]   HGRL Eq. (19)
    z_s     = MLP_s(phi_xy)         sine layers, 3 x 128                            HGRL Eq. (20)
    z       = [z_t ; z_s]                                                           HGRL Eq. (21)
    D_hat   = MLP_f(z)              sine layers, 3 x 128, linear output            HGRL Eq. (22)

with trainable frequency vectors B_t, B_x, B_y in R^d (d = 2048 in App. C). It is fitted by the
MSE of Eq. (14) on the cells the agents actually observed (their w x w windows along their
trajectories), never on the full map: :class:`ObservationSet` accumulates those cells and
:meth:`GDIEstimator.fit` can be called again and again as the set grows (the closed loop of
Sec. 4.4).

Multi-scale outputs (Sec. 4.2.2, App. B.3): level l averages the base map over blocks of
``f_l x f_l`` cells (Eq. (8), (23)); the paper's "downsampling ratios 1, 1/4, 1/16" are read as
ratios of the number of cells, i.e. per-axis factors 1, 2, 4 (see docs/methods/hgrl.md for why).
Gradients are Sobel filters (Eq. (24)) applied at each level (Eq. (25)) and divided by the level's
per-axis factor so they are in units of the base grid; with this scaling the coarse gradient equals
the average of the fine gradients over the block exactly for affine fields, which is the
consistency Eq. (9) asks for (``gradient_mode='pooled'`` computes Eq. (9) literally instead).

Axis conventions follow the coverage grid: ``x`` is the row (axis -2, 0..H-1), ``y`` the column
(axis -1, 0..W-1); ``grad_x`` is the derivative along rows (positive where demand grows with x),
``grad_y`` along columns. Eq. (24) writes K_x for the image's horizontal axis; here each kernel is
applied along the axis its gradient is named after.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from hieralloc.config import Config, param
from hieralloc.errors import ConfigError
from hieralloc.nn.fourier import FourierFeatures, SineLayer, sine_mlp

#: per-axis pooling factors of the three levels: HGRL App. C's ratios 1, 1/4, 1/16 of the cells
PAPER_POOL_FACTORS: tuple[int, ...] = (1, 2, 4)

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


@dataclass
class GDINetConfig(Config):
    """Hyper-parameters of GDI-Net (architecture, training, multi-scale outputs)."""

    d: int = param(2048, "Fourier frequencies per coordinate (HGRL App. C: d = 2048); the temporal "
                   "features have 2d entries (Eq. 17), the spatial ones 4d (Eq. 19)", low=1, high=65536)
    sigma_t: float = param(10.0, "std of the initial temporal frequencies B_t, in cycles over the data "
                           "set's length (t normalised to (0, 1)); not given in the paper; 10 resolves the "
                           "daily cycle of 7-day data (use ~1 for static maps such as the Toy)",
                           low=0.0, low_open=True)
    sigma_s: float = param(1.0, "std of the initial spatial frequencies B_x, B_y, in cycles per grid side "
                           "(x, y normalised to (0, 1)); not given in the paper", low=0.0, low_open=True)
    trainable_frequencies: bool = param(True, "train B_t, B_x, B_y (HGRL App. B.1: trainable frequency "
                                        "matrices)")
    hidden: int = param(128, "width of every sine MLP (HGRL App. C: 128)", low=1, high=65536)
    n_hidden: int = param(3, "hidden sine layers of MLP_t, MLP_s and MLP_f (HGRL App. C: 3)", low=1, high=64)
    omega_0: float = param(10.0, "frequency factor of the sine layers sin(omega_0 (W x + b)) (SIREN, "
                           "Sitzmann et al. 2020, uses 30; with Adam omega_0 * lr is the step size of the "
                           "effective weights; see docs/methods/hgrl.md)", low=0.0, low_open=True)
    optimizer: str = param("adam", "optimiser of Eq. (14): 'adam' (SIREN's) or 'rmsprop' (HGRL App. C; "
                           "unstable with sine layers at lr 1e-4 here, see docs)", choices=("rmsprop", "adam"))
    lr: float = param(1e-4, "learning rate (HGRL App. C and SIREN: 1e-4)", low=0.0, low_open=True)
    batch_size: int = param(4096, "observed cells per gradient step (all of them when fewer)", low=1)
    pool_factors: tuple[int, ...] = param(PAPER_POOL_FACTORS, "per-axis average-pooling factor of each "
                                          "level (HGRL App. C ratios 1, 1/4, 1/16 of the cells -> 1, 2, 4)")
    gradient_mode: str = param("sobel", "'sobel': Sobel at every level (Eq. 25) in base-cell units; "
                               "'pooled': average-pool the level-1 gradients (Eq. 9 literally)",
                               choices=("sobel", "pooled"))
    padding: str = param("linear", "border handling of the Sobel filter: 'linear' extrapolation (exact "
                         "for affine fields), 'replicate', or 'zeros' (Conv2d's default)",
                         choices=("linear", "replicate", "zeros"))

    def validate(self) -> None:
        super().validate()
        check_factors(self.pool_factors, "pool_factors")


def check_factors(factors: Sequence[int], key: str = "pool_factors") -> tuple[int, ...]:
    """Validate per-axis pooling factors: positive integers, the first 1, non-decreasing."""
    try:
        fs = tuple(int(f) for f in factors)
    except (TypeError, ValueError):
        raise ConfigError(key, f"must be a list of positive integers, got {factors!r}") from None
    if not fs or any(f < 1 for f in fs) or any(float(f) != float(g) for f, g in zip(fs, factors, strict=True)):
        raise ConfigError(key, f"must be a non-empty list of positive integers, got {list(factors)!r}")
    if fs[0] != 1:
        raise ConfigError(key, f"the first level is the base grid, so the first factor must be 1, got {fs[0]}")
    if any(b < a for a, b in zip(fs, fs[1:], strict=False)):
        raise ConfigError(key, f"must be non-decreasing (coarser levels follow finer ones), got {list(fs)}")
    return fs


# ---------------------------------------------------------------------------------------------
# Multi-scale maps: pooling (Eq. 8 / 23), Sobel gradients (Eq. 24-25), consistency (Eq. 9)


class ScaleMaps(NamedTuple):
    """Demand and gradients of one level, each of shape (..., H_l, W_l)."""

    demand: Any
    grad_x: Any
    grad_y: Any


def _as_tensor(a: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, bool]:
    if isinstance(a, torch.Tensor):
        return a, False
    return torch.from_numpy(np.array(a, dtype=np.float64)), True


def _back(t: torch.Tensor, to_numpy: bool) -> Any:
    return t.detach().cpu().numpy() if to_numpy else t


def pool_shape(height: int, width: int, factor: int) -> tuple[int, int]:
    """Grid size of a level pooled by ``factor`` per axis (partial blocks at the border count)."""
    return math.ceil(height / factor), math.ceil(width / factor)


def avg_pool(frames: ArrayT, factor: int) -> ArrayT:
    """Average over ``factor x factor`` blocks of the last two axes (HGRL Eq. (8), (23)).

    Each coarse cell is the mean of the fine cells of its receptive field Omega(x, y). When H or W is
    not a multiple of ``factor``, the last row/column of blocks is partial and is averaged over the
    cells it really holds (never over padding), so ``sum(coarse * cells per block) == sum(fine)``
    holds exactly for any size, and ``mean(coarse) == mean(fine)`` when the factor divides H and W.
    """
    t, to_np = _as_tensor(frames)
    if factor == 1:
        return _back(t.clone(), to_np)
    H, W = t.shape[-2], t.shape[-1]
    Hc, Wc = pool_shape(H, W, factor)
    ph, pw = Hc * factor - H, Wc * factor - W
    lead = t.shape[:-2]
    padded = F.pad(t.reshape(-1, H, W), (0, pw, 0, ph))
    sums = padded.reshape(-1, Hc, factor, Wc, factor).sum(dim=(2, 4))
    ones = F.pad(torch.ones(1, H, W, dtype=t.dtype, device=t.device), (0, pw, 0, ph))
    counts = ones.reshape(1, Hc, factor, Wc, factor).sum(dim=(2, 4))
    return _back((sums / counts).reshape(*lead, Hc, Wc), to_np)


def block_counts(height: int, width: int, factor: int) -> np.ndarray:
    """(H_l, W_l) number of fine cells in each coarse cell of :func:`avg_pool`."""
    Hc, Wc = pool_shape(height, width, factor)
    rows = np.minimum(factor, height - factor * np.arange(Hc))
    cols = np.minimum(factor, width - factor * np.arange(Wc))
    return np.outer(rows, cols).astype(np.float64)


#: HGRL Eq. (24) in image orientation: K_X differentiates along the last axis (columns, our y),
#: K_Y along the second-to-last (rows, our x). F.conv2d is a cross-correlation, so
#: conv2d(D, K_X)[i, j] = sum_k w_k (D[i+k, j+1] - D[i+k, j-1]): positive where D grows with j.
SOBEL_K_X = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))
SOBEL_K_Y = ((-1.0, -2.0, -1.0), (0.0, 0.0, 0.0), (1.0, 2.0, 1.0))


def _pad_one(t: torch.Tensor, mode: str) -> torch.Tensor:
    """Pad the last two axes by one cell: linear extrapolation, replicate or zeros."""
    if mode == "zeros":
        return F.pad(t, (1, 1, 1, 1))
    if mode == "replicate":
        t = torch.cat([t[..., :1, :], t, t[..., -1:, :]], dim=-2)
        return torch.cat([t[..., :, :1], t, t[..., :, -1:]], dim=-1)

    def ext(a: torch.Tensor, axis: int) -> torch.Tensor:
        n = a.shape[axis]
        first = a.narrow(axis, 0, 1)
        last = a.narrow(axis, n - 1, 1)
        if n >= 2:  # 2 D[0] - D[1]: exact continuation of an affine field
            first = 2 * first - a.narrow(axis, 1, 1)
            last = 2 * last - a.narrow(axis, n - 2, 1)
        return torch.cat([first, a, last], dim=axis)

    return ext(ext(t, -2), -1)


def sobel(frames: ArrayT, padding: str = "linear") -> tuple[ArrayT, ArrayT]:
    """Sobel gradients (grad_x along rows, grad_y along columns) of (..., H, W) maps, HGRL Eq. (24)-(25).

    The raw kernels of Eq. (24) are used, so a ramp ``D = a x + b y + c`` gives ``grad_x = 8 a`` and
    ``grad_y = 8 b`` (everywhere with ``padding='linear'``, in the interior otherwise).
    """
    if padding not in ("linear", "replicate", "zeros"):
        raise ConfigError("padding", f"must be one of 'linear', 'replicate', 'zeros', got {padding!r}")
    t, to_np = _as_tensor(frames)
    H, W = t.shape[-2], t.shape[-1]
    lead = t.shape[:-2]
    x = _pad_one(t.reshape(-1, 1, H, W), padding)
    k = torch.tensor([SOBEL_K_Y, SOBEL_K_X], dtype=t.dtype, device=t.device).unsqueeze(1)  # (2, 1, 3, 3)
    g = F.conv2d(x, k)  # HGRL Eq. (25): Conv2d(D, K)
    gx = g[:, 0].reshape(*lead, H, W)  # along rows (x)
    gy = g[:, 1].reshape(*lead, H, W)  # along columns (y)
    return _back(gx, to_np), _back(gy, to_np)


def multiscale(frames: ArrayT, factors: Sequence[int] = PAPER_POOL_FACTORS, gradient_mode: str = "sobel",
               padding: str = "linear") -> list[ScaleMaps]:
    """Demand and Sobel gradients of every level for any (..., H, W) demand maps (estimate or truth).

    Level l's demand is the block average of the base map by ``factors[l]`` per axis (Eq. (8), (23)).
    Gradients: ``'sobel'``: Sobel of the level's own map (Eq. (25)) divided by ``factors[l]``, so
    every level reports change per base cell and coarse gradients equal the block average of the fine
    ones for affine fields (the consistency of Eq. (9)); ``'pooled'``: block average of the level-1
    Sobel gradients (Eq. (9) as an equality). Returns one :class:`ScaleMaps` per level, numpy in
    numpy out, torch in torch out.
    """
    fs = check_factors(factors, "factors")
    if gradient_mode not in ("sobel", "pooled"):
        raise ConfigError("gradient_mode", f"must be 'sobel' or 'pooled', got {gradient_mode!r}")
    t, to_np = _as_tensor(frames)
    if t.ndim < 2:
        raise ValueError(f"frames must have at least 2 axes (H, W), got shape {tuple(t.shape)}")
    out: list[ScaleMaps] = []
    base_g: tuple[torch.Tensor, torch.Tensor] | None = None
    for f in fs:
        d = avg_pool(t, f)
        if gradient_mode == "sobel":
            gx, gy = sobel(d, padding)
            gx, gy = gx / f, gy / f
        else:
            if base_g is None:
                base_g = sobel(t, padding)
            gx, gy = avg_pool(base_g[0], f), avg_pool(base_g[1], f)
        out.append(ScaleMaps(_back(d, to_np), _back(gx, to_np), _back(gy, to_np)))
    return out


def scale_errors(estimate: np.ndarray | torch.Tensor, truth: np.ndarray | torch.Tensor,
                 factors: Sequence[int] = PAPER_POOL_FACTORS) -> list[dict[str, float]]:
    """Reconstruction errors per level, like HGRL Table 2: RMSE, mean and max absolute error.

    Both (..., H, W) tensors are pooled to every level (Eq. (8)) and compared over all their cells
    (every frame, every coarse cell). Returns one dict per level: scale (1-based), factor, height,
    width, rmse, mean_abs, max_abs.
    """
    e = np.asarray(_back(_as_tensor(estimate)[0], True), dtype=np.float64)
    g = np.asarray(_back(_as_tensor(truth)[0], True), dtype=np.float64)
    if e.shape != g.shape:
        raise ValueError(f"estimate {e.shape} and truth {g.shape} differ in shape")
    rows = []
    for i, f in enumerate(check_factors(factors, "factors")):
        diff = avg_pool(e, f) - avg_pool(g, f)
        rows.append({"scale": i + 1, "factor": f, "height": int(diff.shape[-2]), "width": int(diff.shape[-1]),
                     "rmse": float(np.sqrt(np.mean(diff**2))), "mean_abs": float(np.mean(np.abs(diff))),
                     "max_abs": float(np.max(np.abs(diff)))})
    return rows


# ---------------------------------------------------------------------------------------------
# Observations: the cells the agents saw


class ObservationSet:
    """The growing set of observed cells (t, x, y) -> demand on a (T, H, W) grid.

    Dense storage (a boolean mask and the values), so a cell observed twice is stored once (the
    demand of a frame is fixed; the latest value wins). ``version`` counts additions.
    """

    def __init__(self, shape: tuple[int, int, int]) -> None:
        T, H, W = (int(s) for s in shape)
        if min(T, H, W) < 1:
            raise ValueError(f"shape must be positive (T, H, W), got {shape}")
        self.shape = (T, H, W)
        self.mask = np.zeros(self.shape, dtype=bool)
        self.values = np.zeros(self.shape, dtype=np.float64)
        self.version = 0

    def __len__(self) -> int:
        return int(self.mask.sum())

    @property
    def fraction(self) -> float:
        """Fraction of the (T, H, W) cells observed so far."""
        return len(self) / float(self.mask.size)

    def add(self, t: Any, x: Any, y: Any, values: Any) -> int:
        """Record observations (broadcastable integer arrays and values); returns the number of new cells."""
        tt, xx, yy, vv = np.broadcast_arrays(np.asarray(t), np.asarray(x), np.asarray(y),
                                             np.asarray(values, dtype=np.float64))
        tt, xx, yy, vv = (a.ravel() for a in (tt, xx, yy, vv))
        T, H, W = self.shape
        if tt.size and (tt.min() < 0 or tt.max() >= T or xx.min() < 0 or xx.max() >= H
                        or yy.min() < 0 or yy.max() >= W):
            raise ValueError(f"observed cells must lie in the ({T}, {H}, {W}) grid")
        if not np.isfinite(vv).all():
            raise ValueError("observed demand must be finite")
        flat = np.unique(np.ravel_multi_index((tt, xx, yy), self.shape))
        new_cells = int(flat.size - self.mask.reshape(-1)[flat].sum())
        self.mask[tt, xx, yy] = True
        self.values[tt, xx, yy] = vv
        self.version += 1
        return new_cells

    def record(self, env_or_core: Any) -> int:
        """Record what every agent of a coverage env (or its batched core) observes right now."""
        t, x, y, v = window_cells(env_or_core)
        return self.add(t, x, y, v)

    def cells(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(t, x, y, value) arrays of every observed cell, in (t, x, y) order."""
        t, x, y = np.nonzero(self.mask)
        return t, x, y, self.values[t, x, y]

    def sparse_frames(self) -> np.ndarray:
        """(T, H, W) float: the observed demand, NaN where nothing was observed (for plots)."""
        return np.where(self.mask, self.values, np.nan)

    def state_dict(self) -> dict[str, Any]:
        return {"shape": torch.tensor(self.shape), "mask": torch.from_numpy(self.mask.copy()),
                "values": torch.from_numpy(self.values.copy()), "version": torch.tensor(self.version)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        shape = tuple(int(s) for s in state["shape"].tolist())
        if shape != self.shape:
            raise ValueError(f"observation set of shape {shape} does not fit this one {self.shape}")
        self.mask = state["mask"].numpy().astype(bool).copy()
        self.values = state["values"].numpy().astype(np.float64).copy()
        self.version = int(state["version"])


def window_cells(env_or_core: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(t, x, y, demand) of every in-grid cell of every agent's window, now, in a coverage core.

    ``t`` is the absolute frame index of the data set (the core's ``frame_index(t)``), so
    observations of different episodes land on the same (T, H, W) grid. The windows are the
    ``w x w`` squares centred on the agents (cells outside the grid are not observations), exactly
    what :meth:`CoverageCore.observations` shows the agents (there scaled by ``obs_div``).
    Accepts a :class:`~hieralloc.envs.coverage.env.CoverageEnv` or a
    :class:`~hieralloc.envs.coverage.core.CoverageCore` (any batch size).
    """
    core = getattr(env_or_core, "core", env_or_core)
    pos = np.asarray(core.pos)  # (B, N, 2)
    r, H, W = int(core.r), int(core.H), int(core.W)
    fidx = np.asarray(core.frame_index(core.t))  # (B,)
    d = np.arange(-r, r + 1)
    dx, dy = np.meshgrid(d, d, indexing="ij")
    x = pos[..., 0, None] + dx.ravel()  # (B, N, w^2)
    y = pos[..., 1, None] + dy.ravel()
    t = np.broadcast_to(fidx[:, None, None], x.shape)
    keep = (x >= 0) & (x < H) & (y >= 0) & (y < W)
    t, x, y = t[keep], x[keep], y[keep]
    return t, x, y, np.asarray(core.frames)[t, x, y]


def collect_observations(env: Any, policy: Any, episodes: int, seed: int = 0,
                         observations: ObservationSet | None = None) -> ObservationSet:
    """Run ``episodes`` episodes of ``policy`` on a coverage ``env`` and record every agent's window.

    Episode i is reset with ``hieralloc.eval.episode_seed(seed, i)`` and the windows are recorded
    after the reset and after every step (what the agents saw, HGRL Sec. 5.1: "demand observations
    are collected from agent trajectories"). Returns ``observations`` (a new set by default).
    """
    from hieralloc.eval import episode_seed

    core = getattr(env, "core", env)
    obs_set = observations if observations is not None else ObservationSet(tuple(np.asarray(core.frames).shape))
    for i in range(int(episodes)):
        s = episode_seed(seed, i)
        obs, _ = env.reset(seed=s)
        policy.reset(env, s)
        obs_set.record(env)
        while env.agents:
            obs, *_ = env.step(policy.act(obs, state=env.state(), explore=False))
            obs_set.record(env)
    return obs_set


# ---------------------------------------------------------------------------------------------
# The network


class GDINet(nn.Module):
    """The ST-INR of HGRL App. B: D_hat(t, x, y) for a (T, H, W) grid.

    Coordinates are grid indices (t in [0, T), x in [0, H), y in [0, W)); they are normalised to
    (0, 1) as (index + 0.5) / size before the Fourier features, so ``sigma_t``/``sigma_s`` are
    frequencies in cycles per data set length / grid side whatever the grid size. Outputs are in
    the data's units: the network predicts D / ``value_scale`` (a buffer fixed at the first fit).
    """

    value_scale: torch.Tensor
    grid_shape: torch.Tensor

    def __init__(self, shape: tuple[int, int, int], config: GDINetConfig | None = None, seed: int = 0) -> None:
        super().__init__()
        self.config = cfg = config if config is not None else GDINetConfig()
        T, H, W = (int(s) for s in shape)
        if min(T, H, W) < 1:
            raise ValueError(f"shape must be positive (T, H, W), got {shape}")
        self.shape = (T, H, W)
        gen = torch.Generator().manual_seed(int(seed))
        self.ff_t = FourierFeatures(1, cfg.d, cfg.sigma_t, cfg.trainable_frequencies, gen)  # Eq. (17)
        self.mlp_t = sine_mlp(self.ff_t.out_dim, cfg.hidden, cfg.n_hidden, None, cfg.omega_0, generator=gen)  # (18)
        self.ff_s = FourierFeatures(2, cfg.d, cfg.sigma_s, cfg.trainable_frequencies, gen)  # Eq. (19)
        self.mlp_s = sine_mlp(self.ff_s.out_dim, cfg.hidden, cfg.n_hidden, None, cfg.omega_0, generator=gen)  # (20)
        self.mlp_f = sine_mlp(2 * cfg.hidden, cfg.hidden, cfg.n_hidden, 1, cfg.omega_0, generator=gen)  # Eq. (22)
        self.register_buffer("grid_shape", torch.tensor(self.shape, dtype=torch.int64))
        self.register_buffer("value_scale", torch.zeros((), dtype=torch.float32))

    # -- embeddings of unique coordinates, shared by every point that uses them
    def embed_time(self, t: torch.Tensor) -> torch.Tensor:
        """z_t (Eq. (17)-(18)) of time indices ``t`` (n,) -> (n, hidden)."""
        tn = (t.to(torch.float32) + 0.5) / self.shape[0]
        out: torch.Tensor = self.mlp_t(self.ff_t(tn[:, None]))
        return out

    def embed_space(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """z_s (Eq. (19)-(20)) of cells (x, y) (n,) -> (n, hidden)."""
        xy = torch.stack([(x.to(torch.float32) + 0.5) / self.shape[1],
                          (y.to(torch.float32) + 0.5) / self.shape[2]], dim=-1)
        out: torch.Tensor = self.mlp_s(self.ff_s(xy))
        return out

    def forward(self, t: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """D_hat at points (t, x, y) (same shape, grid units, fractional allowed), in data units.

        The temporal and spatial branches run once per distinct t and per distinct (x, y) of the
        batch; only the fusion MLP runs per point.
        """
        shp = t.shape
        t, x, y = t.reshape(-1), x.reshape(-1), y.reshape(-1)
        tu, ti = torch.unique(t, return_inverse=True)
        if not (x.dtype.is_floating_point or y.dtype.is_floating_point):  # grid cells: 1-D unique is fast
            cu, si = torch.unique(x.to(torch.int64) * self.shape[2] + y.to(torch.int64), return_inverse=True)
            zs = self.embed_space(cu // self.shape[2], cu % self.shape[2])[si]
        else:
            su, si = torch.unique(torch.stack([x, y], dim=-1).to(torch.float32), dim=0, return_inverse=True)
            zs = self.embed_space(su[:, 0], su[:, 1])[si]
        zt = self.embed_time(tu)[ti]
        z = torch.cat([zt, zs], dim=-1)  # HGRL Eq. (21)
        out = self.mlp_f(z).squeeze(-1) * self._scale()  # HGRL Eq. (22)
        return out.reshape(shp)

    def _scale(self) -> torch.Tensor:
        s = self.value_scale
        return torch.where(s > 0, s, torch.ones_like(s))

    @torch.no_grad()
    def predict(self, frames: Sequence[int] | None = None, chunk: int = 262_144) -> torch.Tensor:
        """The full estimate (len(frames), H, W) (all T frames by default), without gradients.

        Uses the decoupling of Eq. (21): the first fusion layer is linear in [z_t; z_s], so its
        pre-activation is computed as A[t] + B[x, y] and only the remaining layers run per cell.
        """
        T, H, W = self.shape
        ts = torch.arange(T) if frames is None else torch.as_tensor(list(frames), dtype=torch.int64)
        zt = self.embed_time(ts)
        xs, ys = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
        zs = self.embed_space(xs.reshape(-1), ys.reshape(-1))
        first = self.mlp_f[0]
        assert isinstance(first, SineLayer)
        lin = first.linear
        hdim = zt.shape[1]
        a = zt @ lin.weight[:, :hdim].T + lin.bias  # (n_t, hidden)
        b = zs @ lin.weight[:, hdim:].T  # (HW, hidden)
        rest = self.mlp_f[1:]
        out = torch.empty(len(ts), H * W)
        per = max(1, chunk // (H * W))
        for i in range(0, len(ts), per):
            h = torch.sin(first.omega_0 * (a[i:i + per, None, :] + b[None]))
            out[i:i + per] = rest(h).squeeze(-1)
        return (out * self._scale()).reshape(len(ts), H, W)


class GDIEstimator:
    """GDI-Net plus its optimiser: refit on a growing :class:`ObservationSet` (HGRL Sec. 4.4).

    ``fit(observations, steps)`` runs ``steps`` minibatch steps of the Eq. (14) MSE over observed
    cells only, continuing the same optimiser state each call. ``state_dict()`` holds the network,
    the optimiser, the sampling RNG and the step counter (tensors and plain Python, loadable with
    ``torch.load(weights_only=True)``).
    """

    def __init__(self, shape: tuple[int, int, int], config: GDINetConfig | None = None, seed: int = 0) -> None:
        self.config = config if config is not None else GDINetConfig()
        self.net = GDINet(shape, self.config, seed)
        self.shape = self.net.shape
        params = list(self.net.parameters())
        if self.config.optimizer == "rmsprop":
            self.optim: torch.optim.Optimizer = torch.optim.RMSprop(params, lr=self.config.lr)
        else:
            self.optim = torch.optim.Adam(params, lr=self.config.lr)
        self.gen = torch.Generator().manual_seed(int(seed) + 1)
        self.steps_done = 0

    def fit(self, observations: ObservationSet, steps: int) -> dict[str, float]:
        """``steps`` gradient steps of HGRL Eq. (14) on the observed cells; returns named terms.

        ``loss``: mean minibatch MSE over these steps (in units of value_scale^2); ``mse_observed``:
        MSE over every observed cell after the steps (data units); ``n_observed``; ``steps``.
        """
        if observations.shape != self.shape:
            raise ValueError(f"observations are on a {observations.shape} grid, GDI-Net on {self.shape}")
        t, x, y, v = observations.cells()
        if t.size == 0:
            raise ValueError("GDI-Net needs at least one observed cell to fit")
        if float(self.net.value_scale) <= 0:  # fixed once so later refits keep the output's meaning
            m = float(np.max(np.abs(v)))
            self.net.value_scale.fill_(m if m > 0 else 1.0)
        scale = float(self.net.value_scale)
        tt, xx, yy = (torch.from_numpy(a.astype(np.int64)) for a in (t, x, y))
        target = torch.from_numpy(v.astype(np.float32)) / scale
        n = t.size
        bs = min(self.config.batch_size, n)
        self.net.train()
        total = 0.0
        for _ in range(int(steps)):
            idx = torch.randint(n, (bs,), generator=self.gen) if bs < n else torch.arange(n)
            pred = self.net(tt[idx], xx[idx], yy[idx]) / scale
            loss = torch.mean((pred - target[idx]) ** 2)  # HGRL Eq. (14)
            self.optim.zero_grad(set_to_none=True)
            loss.backward()
            self.optim.step()
            total += float(loss.detach())
            self.steps_done += 1
        self.net.eval()
        return {"loss": total / max(int(steps), 1), "mse_observed": self.observed_mse(observations),
                "n_observed": float(n), "steps": float(self.steps_done)}

    @torch.no_grad()
    def observed_mse(self, observations: ObservationSet, chunk: int = 65_536) -> float:
        """MSE (data units) of the current estimate over every observed cell (Eq. (14))."""
        t, x, y, v = observations.cells()
        if t.size == 0:
            return float("nan")
        sse = 0.0
        for i in range(0, t.size, chunk):
            s = slice(i, i + chunk)
            pred = self.net(*(torch.from_numpy(a[s].astype(np.int64)) for a in (t, x, y)))
            sse += float(((pred.double() - torch.from_numpy(v[s])) ** 2).sum())
        return sse / t.size

    def predict(self, frames: Sequence[int] | None = None) -> np.ndarray:
        """(n_frames, H, W) estimate D_hat as float64 numpy."""
        return self.net.predict(frames).double().numpy()

    def multiscale(self, frames: Sequence[int] | None = None) -> list[ScaleMaps]:
        """Estimated demand and gradients per level for the given frames (numpy)."""
        c = self.config
        return multiscale(self.predict(frames), c.pool_factors, c.gradient_mode, c.padding)

    def state_dict(self) -> dict[str, Any]:
        return {"net": self.net.state_dict(), "optim": self.optim.state_dict(),
                "rng": self.gen.get_state(), "steps_done": self.steps_done}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.optim.load_state_dict(state["optim"])
        self.gen.set_state(state["rng"])
        self.steps_done = int(state["steps_done"])


__all__ = ["PAPER_POOL_FACTORS", "SOBEL_K_X", "SOBEL_K_Y", "GDIEstimator", "GDINet", "GDINetConfig",
           "ObservationSet", "ScaleMaps", "avg_pool", "block_counts", "check_factors", "collect_observations",
           "multiscale",
           "pool_shape", "scale_errors", "sobel", "window_cells"]
