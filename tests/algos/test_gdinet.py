"""GDI-Net (HGRL Sec. 4.2, App. B): features, network, fitting on observed cells, multi-scale maps."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from hieralloc.algos.hgrl.gdinet import (
    GDIEstimator,
    GDINet,
    GDINetConfig,
    ObservationSet,
    avg_pool,
    block_counts,
    collect_observations,
    multiscale,
    scale_errors,
    sobel,
    window_cells,
)
from hieralloc.config import from_dict
from hieralloc.envs.coverage import CoverageConfig, CoverageCore, CoverageEnv
from hieralloc.errors import ConfigError
from hieralloc.nn.fourier import FourierFeatures, SineLayer, sine_mlp

SMALL = GDINetConfig(d=16, hidden=32, batch_size=512)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny networks: one intra-op thread is faster and immune to CPU contention."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def smooth_field(T: int = 4, H: int = 16, W: int = 16) -> np.ndarray:
    """A smooth, slowly moving bump plus a ramp: the kind of map GDI-Net should interpolate."""
    t = np.arange(T)[:, None, None] / T
    x = np.arange(H)[None, :, None] / H
    y = np.arange(W)[None, None, :] / W
    cx, cy = 0.35 + 0.2 * t, 0.6 - 0.1 * t
    return 0.2 + 0.8 * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * 0.18**2)) + 0.3 * x


# ------------------------------------------------------------------------------ building blocks


def test_fourier_features_layout_and_values() -> None:
    ff = FourierFeatures(2, 3, sigma=1.0, generator=torch.Generator().manual_seed(0))
    assert ff.out_dim == 12 and ff.B.shape == (2, 3) and ff.B.requires_grad
    v = torch.tensor([[0.25, 0.5]])
    out = ff(v)
    B = ff.B.detach()
    expected = torch.cat([torch.sin(2 * math.pi * B[0] * 0.25), torch.cos(2 * math.pi * B[0] * 0.25),
                          torch.sin(2 * math.pi * B[1] * 0.5), torch.cos(2 * math.pi * B[1] * 0.5)])  # Eq. (19)
    torch.testing.assert_close(out[0], expected)
    frozen = FourierFeatures(1, 4, 1.0, trainable=False)
    assert not frozen.B.requires_grad


def test_siren_initialisation_bounds() -> None:
    g = torch.Generator().manual_seed(0)
    hidden = SineLayer(64, 128, omega_0=30.0, generator=g)
    first = SineLayer(64, 128, omega_0=30.0, is_first=True, generator=g)
    assert hidden.linear.weight.abs().max() <= math.sqrt(6 / 64) / 30 + 1e-7
    assert first.linear.weight.abs().max() <= 1 / 64 + 1e-7
    net = sine_mlp(8, 128, 3, out_dim=1)
    assert [type(m).__name__ for m in net] == ["SineLayer", "SineLayer", "SineLayer", "Linear"]
    # SIREN's point: activations stay spread over [-1, 1] at depth (not collapsing to 0 or saturating)
    h = torch.rand(4096, 128) * 2 - 1
    with torch.no_grad():
        for _ in range(3):
            h = SineLayer(128, 128, 30.0, generator=g)(h)
    assert 0.5 < float(h.std()) < 0.9


def test_network_shapes_and_paper_architecture() -> None:
    net = GDINet((5, 7, 9), GDINetConfig(d=8), seed=0)
    assert net.ff_t.out_dim == 2 * 8 and net.ff_s.out_dim == 4 * 8  # Eq. (17), (19)
    for mlp in (net.mlp_t, net.mlp_s):  # 3 hidden sine layers of 128 (App. C)
        assert [m.linear.out_features for m in mlp] == [128, 128, 128]
    assert net.mlp_f[0].linear.in_features == 256 and net.mlp_f[-1].out_features == 1  # Eq. (21)-(22)
    t = torch.tensor([[0, 4], [2, 3]])
    x = torch.tensor([[0, 6], [3, 3]])
    y = torch.tensor([[8, 0], [1, 1]])
    assert net(t, x, y).shape == (2, 2)
    full = net.predict()
    assert full.shape == (5, 7, 9)
    # the decoupled full-grid evaluation equals the pointwise network
    torch.testing.assert_close(full[t, x, y], net(t, x, y), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(net.predict([4, 1]), full[[4, 1]])
    assert GDINetConfig().d == 2048  # paper default (App. C)


def test_config_validation() -> None:
    with pytest.raises(ConfigError, match="pool_factors"):
        GDINetConfig(pool_factors=(2, 4))
    with pytest.raises(ConfigError, match="pool_factors"):
        GDINetConfig(pool_factors=(1, 4, 2))
    with pytest.raises(ConfigError, match="optimizer"):
        from_dict(GDINetConfig, {"optimizer": "sgd"})
    assert from_dict(GDINetConfig, {"pool_factors": [1, 4, 16]}).pool_factors == (1, 4, 16)


# ------------------------------------------------------------------------------ multi-scale maps


@pytest.mark.parametrize("shape", [(3, 16, 16), (2, 50, 50), (1, 13, 7)])
def test_pooling_preserves_totals_and_means(shape: tuple[int, int, int]) -> None:
    f = np.random.default_rng(0).gamma(2.0, size=shape)
    for k in (1, 2, 4):
        p = avg_pool(f, k)
        assert p.shape == (shape[0], math.ceil(shape[1] / k), math.ceil(shape[2] / k))
        counts = block_counts(shape[1], shape[2], k)
        np.testing.assert_allclose((p * counts).sum(axis=(1, 2)), f.sum(axis=(1, 2)), rtol=1e-12)  # totals
        if shape[1] % k == 0 and shape[2] % k == 0:
            np.testing.assert_allclose(p.mean(axis=(1, 2)), f.mean(axis=(1, 2)), rtol=1e-12)  # means
    torch.testing.assert_close(avg_pool(torch.from_numpy(f), 4), torch.from_numpy(avg_pool(f, 4)))
    # Eq. (8) applied twice (2 then 2) equals pooling by 4 when the sizes divide
    if shape[1] % 4 == 0 and shape[2] % 4 == 0:
        np.testing.assert_allclose(avg_pool(avg_pool(f, 2), 2), avg_pool(f, 4), rtol=1e-12)


def test_sobel_on_a_linear_ramp_is_the_exact_constant_gradient() -> None:
    a, b = 0.7, -0.3
    x, y = np.meshgrid(np.arange(16.0), np.arange(24.0), indexing="ij")
    ramp = a * x + b * y + 2.0
    gx, gy = sobel(ramp)  # linear padding: exact everywhere
    np.testing.assert_allclose(gx, 8 * a, atol=1e-12)  # Eq. (24) kernel gain: 2 * (1 + 2 + 1)
    np.testing.assert_allclose(gy, 8 * b, atol=1e-12)
    for pad in ("replicate", "zeros"):
        gx, gy = sobel(ramp, pad)
        np.testing.assert_allclose(gx[1:-1, 1:-1], 8 * a, atol=1e-12)
        np.testing.assert_allclose(gy[1:-1, 1:-1], 8 * b, atol=1e-12)
    # every level reports the same gradient in base-cell units; 'sobel' (Eq. 25) and 'pooled' (Eq. 9) agree
    for mode in ("sobel", "pooled"):
        for lv in multiscale(ramp, (1, 2, 4), mode):
            np.testing.assert_allclose(lv.grad_x, 8 * a, atol=1e-12)
            np.testing.assert_allclose(lv.grad_y, 8 * b, atol=1e-12)


def test_gradient_orientation_and_consistency_across_levels() -> None:
    x, y = np.meshgrid(np.arange(32.0), np.arange(32.0), indexing="ij")
    bump = np.exp(-((x - 20) ** 2 + (y - 8) ** 2) / 128.0)  # Gaussian with sigma = 8 cells
    gx, gy = sobel(bump)
    assert gx[10, 8] > 0 and gx[28, 8] < 0  # rows: demand grows towards x = 20
    assert gy[20, 2] > 0 and gy[20, 14] < 0  # columns: demand grows towards y = 8
    sob = multiscale(bump, (1, 2, 4), "sobel")
    pooled = multiscale(bump, (1, 2, 4), "pooled")
    for s, p, tol in zip(sob[1:], pooled[1:], (0.05, 0.15), strict=True):  # Eq. (9): close for a smooth field
        rel = np.linalg.norm(s.grad_x - p.grad_x) / np.linalg.norm(p.grad_x)
        assert rel < tol
        np.testing.assert_allclose(s.demand, p.demand)


def test_scale_errors_like_table_2() -> None:
    truth = np.random.default_rng(0).random((2, 8, 8))
    assert all(r["rmse"] == 0 and r["max_abs"] == 0 for r in scale_errors(truth, truth))
    est = truth + 0.5
    rows = scale_errors(est, truth)
    assert [(r["scale"], r["height"]) for r in rows] == [(1, 8), (2, 4), (3, 2)]
    for r in rows:
        assert r["rmse"] == pytest.approx(0.5) and r["mean_abs"] == pytest.approx(0.5)
        assert r["max_abs"] == pytest.approx(0.5)
    noisy = truth + np.random.default_rng(1).normal(0, 0.1, truth.shape)
    e = scale_errors(noisy, truth)
    assert e[0]["rmse"] > e[1]["rmse"] > e[2]["rmse"]  # independent noise averages out at coarse scales


# ------------------------------------------------------------------------------ observations


def test_windows_recorded_from_the_coverage_core() -> None:
    cfg = CoverageConfig(source="toy", height=12, width=12, n_agents=2, window=3, episode_length=4)
    core = CoverageCore(cfg, 2)
    core.reset(seed=0, offsets=[3, 10], positions=[[0, 0], [5, 6]])
    t, x, y, v = window_cells(core)
    # agent at the corner sees 4 in-grid cells, the other 9; two episodes
    assert len(t) == 2 * (4 + 9)
    assert set(np.unique(t)) == {3, 10}
    np.testing.assert_array_equal(v, core.frames[t, x, y])
    obs = ObservationSet(core.frames.shape)
    assert obs.record(core) == 26
    assert obs.record(core) == 0  # same cells again: stored once
    assert obs.add([3, 3, 0], [0, 0, 0], [0, 0, 0], [1.0, 1.0, 2.0]) == 1  # duplicates count once
    assert len(obs) == 27 and obs.mask[3, 0, 0] and obs.mask[10, 6, 7] and not obs.mask[3, 2, 2]
    sparse = obs.sparse_frames()
    assert np.isnan(sparse[1]).all() and sparse[3, 1, 1] == core.frames[3, 1, 1]


def test_collect_observations_is_seeded_and_only_sees_windows() -> None:
    from hieralloc.algos.heuristics import RandomConfig, RandomPolicy

    cfg = CoverageConfig(source="toy", height=12, width=12, n_agents=3, episode_length=5, split="all")
    a = collect_observations(CoverageEnv(cfg), RandomPolicy(RandomConfig(), 0), 3, seed=7)
    b = collect_observations(CoverageEnv(cfg), RandomPolicy(RandomConfig(), 0), 3, seed=7)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert 0 < a.fraction < 0.5
    # at most N windows of w^2 cells per observation time
    per_frame = a.mask.reshape(a.mask.shape[0], -1).sum(1)
    assert per_frame.max() <= 3 * 3 * 9 * 6


# ------------------------------------------------------------------------------ fitting


@pytest.fixture(scope="module")
def fitted() -> tuple[GDIEstimator, ObservationSet, np.ndarray, dict[str, float], float]:
    torch.manual_seed(0)
    truth = smooth_field()
    rng = np.random.default_rng(0)
    obs = ObservationSet(truth.shape)
    mask = rng.random(truth.shape) < 0.3  # 30 % of the cells observed
    t, x, y = np.nonzero(mask)
    obs.add(t, x, y, truth[t, x, y])
    est = GDIEstimator(truth.shape, GDINetConfig(d=16, hidden=64, sigma_t=1.0, sigma_s=1.0, batch_size=1024), seed=0)
    before = est.observed_mse(obs)
    terms = est.fit(obs, 150)
    return est, obs, truth, terms, before


def test_fit_on_observed_cells_generalises(fitted) -> None:
    est, obs, truth, terms, before = fitted
    assert set(terms) == {"loss", "mse_observed", "n_observed", "steps"}
    assert terms["n_observed"] == len(obs) and terms["steps"] == 150
    assert terms["mse_observed"] < 0.05 * before  # Eq. (14) on the observed cells went down
    pred = est.predict()
    unobs = ~obs.mask
    const = obs.values[obs.mask].mean()
    rmse = np.sqrt(np.mean((pred - truth)[unobs] ** 2))
    rmse_const = np.sqrt(np.mean((const - truth)[unobs] ** 2))
    assert rmse < 0.35 * rmse_const  # the unseen cells are inferred, not just the mean
    levels = est.multiscale()
    assert [lv.demand.shape for lv in levels] == [(4, 16, 16), (4, 8, 8), (4, 4, 4)]


def test_frequencies_are_trained(fitted) -> None:
    est, obs, *_ = fitted
    fresh = GDINet(est.shape, est.config, seed=0)
    assert not torch.equal(fresh.ff_s.B, est.net.ff_s.B)
    assert not torch.equal(fresh.ff_t.B, est.net.ff_t.B)
    frozen = GDIEstimator(est.shape, GDINetConfig(d=8, hidden=16, trainable_frequencies=False), seed=0)
    b0 = frozen.net.ff_s.B.detach().clone()
    frozen.fit(obs, 3)
    assert torch.equal(b0, frozen.net.ff_s.B)


def test_state_dict_round_trip_and_exact_resume(tmp_path: Path) -> None:
    truth = smooth_field(3, 8, 8)
    obs = ObservationSet(truth.shape)
    t, x, y = np.nonzero(np.random.default_rng(1).random(truth.shape) < 0.5)
    obs.add(t, x, y, truth[t, x, y])
    cfg = GDINetConfig(d=8, hidden=16, batch_size=32)
    first_max = float(obs.values[obs.mask].max())
    a = GDIEstimator(truth.shape, cfg, seed=3)
    a.fit(obs, 5)
    path = tmp_path / "gdi.pt"
    torch.save({"gdi": a.state_dict(), "obs": obs.state_dict()}, path)
    blob = torch.load(path, weights_only=True)
    b = GDIEstimator(truth.shape, cfg, seed=99)
    b.load_state_dict(blob["gdi"])
    obs2 = ObservationSet(truth.shape)
    obs2.load_state_dict(blob["obs"])
    np.testing.assert_array_equal(obs2.mask, obs.mask)
    np.testing.assert_array_equal(a.predict(), b.predict())
    # incremental refit on a grown set continues identically (optimiser, RNG, scale restored)
    for o in (obs, obs2):
        o.add(0, 0, 0, 1.5)
    ra, rb = a.fit(obs, 4), b.fit(obs2, 4)
    assert ra == rb
    np.testing.assert_array_equal(a.predict(), b.predict())
    # the output scale was fixed by the first fit (max observed value) and kept
    assert float(a.net.value_scale) == float(b.net.value_scale) == pytest.approx(first_max, rel=1e-6)


def test_fit_rejects_empty_or_mismatched_observations() -> None:
    est = GDIEstimator((2, 4, 4), SMALL)
    with pytest.raises(ValueError, match="at least one observed cell"):
        est.fit(ObservationSet((2, 4, 4)), 1)
    with pytest.raises(ValueError, match="grid"):
        est.fit(ObservationSet((2, 5, 4)), 1)
    with pytest.raises(ValueError, match="grid"):
        ObservationSet((2, 4, 4)).add(2, 0, 0, 1.0)


def test_figures_are_written(tmp_path: Path) -> None:
    from hieralloc.algos.hgrl.plots import plot_gradient_field, plot_multiscale, pool_observed

    truth = smooth_field(1, 20, 20)[0]
    sparse = np.where(np.random.default_rng(0).random(truth.shape) < 0.2, truth, np.nan)
    pooled = pool_observed(sparse, 4)
    assert pooled.shape == (5, 5)
    p6 = plot_multiscale(sparse, truth, truth * 0.9, tmp_path / "fig6.png", "test")
    p5 = plot_gradient_field(truth, tmp_path / "fig5.png", "test")
    for p in (p6, p5):
        assert p.is_file() and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
