"""GDI-Net figures (matplotlib, Agg, PNG): HGRL Fig. 6 (multi-scale reconstruction) and Fig. 5
(gradient fields over the demand).

Both take one frame (H, W) of the ground truth, the estimate and the sparse observations (NaN where
unobserved, e.g. ``ObservationSet.sparse_frames()[t]``) and compute the levels with
:func:`hieralloc.algos.hgrl.gdinet.multiscale`, so they work for any demand map. Images are drawn
with x (rows) downwards and y (columns) to the right, as the coverage grid prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hieralloc.algos.hgrl.gdinet import PAPER_POOL_FACTORS, avg_pool, multiscale


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def pool_observed(sparse: np.ndarray, factor: int) -> np.ndarray:
    """Block average of the observed cells only (NaN where a block holds no observation)."""
    mask = np.isfinite(sparse)
    vals = np.where(mask, sparse, 0.0)
    n = avg_pool(mask.astype(np.float64), factor)
    s = avg_pool(vals, factor)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / np.where(n > 0, n, 1.0), np.nan)


def plot_multiscale(sparse: np.ndarray, truth: np.ndarray, estimate: np.ndarray, path: str | Path,
                    title: str = "", factors: Sequence[int] = PAPER_POOL_FACTORS, gradient_mode: str = "sobel",
                    padding: str = "linear") -> Path:
    """HGRL Fig. 6: per scale (rows) the sparse observations, ground truth, estimate and the estimate's
    x / y Sobel gradients (columns), for one (H, W) frame. Returns the PNG path."""
    plt = _plt()
    est = multiscale(np.asarray(estimate, dtype=np.float64), factors, gradient_mode, padding)
    gt = multiscale(np.asarray(truth, dtype=np.float64), factors, gradient_mode, padding)
    n = len(est)
    fig, axes = plt.subplots(n, 5, figsize=(14.5, 2.9 * n), squeeze=False)
    cols = ["sparse observations", "ground truth", "GDI-Net estimate", "estimated grad x (rows)",
            "estimated grad y (columns)"]
    for i, (f, e, g) in enumerate(zip(factors, est, gt, strict=True)):
        obs = pool_observed(np.asarray(sparse, dtype=np.float64), f)
        vmax = float(np.nanmax([np.nanmax(g.demand), np.nanmax(e.demand)]))
        vmin = float(min(np.nanmin(g.demand), np.nanmin(e.demand), 0.0))
        gmax = float(max(np.abs(e.grad_x).max(), np.abs(e.grad_y).max(), 1e-12))
        cmap = plt.get_cmap("viridis").with_extremes(bad="0.85")  # unobserved cells in grey
        panels = [(obs, cmap, vmin, vmax), (g.demand, cmap, vmin, vmax), (e.demand, cmap, vmin, vmax),
                  (e.grad_x, "RdBu_r", -gmax, gmax), (e.grad_y, "RdBu_r", -gmax, gmax)]
        for j, (img, cm, lo, hi) in enumerate(panels):
            ax = axes[i, j]
            im = ax.imshow(img, cmap=cm, vmin=lo, vmax=hi, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(cols[j], fontsize=9)
            if j == 0:
                ax.set_ylabel(f"scale {i + 1}: {img.shape[0]}x{img.shape[1]}", fontsize=9)
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p


def plot_gradient_field(estimate: np.ndarray, path: str | Path, title: str = "",
                        factors: Sequence[int] = PAPER_POOL_FACTORS, gradient_mode: str = "sobel",
                        padding: str = "linear", max_arrows: int = 24) -> Path:
    """HGRL Fig. 5: the estimated demand of each scale with its Sobel gradient field as arrows
    (pointing towards increasing demand). At most ``max_arrows`` arrows per axis are drawn."""
    plt = _plt()
    levels = multiscale(np.asarray(estimate, dtype=np.float64), factors, gradient_mode, padding)
    n = len(levels)
    fig, axes = plt.subplots(1, n, figsize=(4.4 * n, 4.2), squeeze=False)
    for i, (f, lv) in enumerate(zip(factors, levels, strict=True)):
        ax = axes[0, i]
        H, W = lv.demand.shape
        im = ax.imshow(lv.demand, cmap="viridis", interpolation="nearest")
        step = max(1, int(np.ceil(max(H, W) / max_arrows)))
        xs, ys = np.meshgrid(np.arange(0, H, step), np.arange(0, W, step), indexing="ij")
        u = lv.grad_y[xs, ys]  # along columns: horizontal on screen
        v = lv.grad_x[xs, ys]  # along rows: downwards on screen (image y axis is inverted)
        norm = float(np.hypot(u, v).max())
        if norm > 0:
            ax.quiver(ys, xs, u / norm, v / norm, angles="xy", scale_units="xy", scale=1.0 / (0.9 * step),
                      color="white", width=0.006, headwidth=3.5)
        ax.set_title(f"scale {i + 1} ({H}x{W}, pool {f}x{f})", fontsize=9)
        ax.set_xlabel("y (column)", fontsize=8)
        ax.set_ylabel("x (row)", fontsize=8)
        ax.set_xlim(-0.5, W - 0.5)
        ax.set_ylim(H - 0.5, -0.5)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p


__all__ = ["plot_gradient_field", "plot_multiscale", "pool_observed"]
