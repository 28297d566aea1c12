"""Batched core vs PettingZoo wrapper, demand sources, time splits and bad inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hieralloc.config import from_dict
from hieralloc.envs.coverage import (
    CoverageConfig,
    CoverageCore,
    CoverageEnv,
    demand_from_array,
    load_demand,
    served_by_positions,
)
from hieralloc.errors import ConfigError, DataError, HierallocError


def test_batched_core_equals_wrapper() -> None:
    cfg = CoverageConfig(source="city", n_agents=4, episode_length=6, reward_split="individual")
    B = 5
    core = CoverageCore(cfg, B)
    core.reset(seed=3)
    offsets, starts = core.offset.copy(), core.pos.copy()
    rng = np.random.default_rng(0)
    acts = rng.integers(0, 9, size=(cfg.episode_length, B, cfg.n_agents))
    res = [core.step(a) for a in acts]
    bm = core.episode_metrics()
    for b in range(B):
        env = CoverageEnv(cfg)
        env.reset(seed=0, options={"offset": int(offsets[b]), "positions": starts[b]})
        for t, r in enumerate(res):
            obs, rew, _, _, info = env.step({f"agent_{i}": int(acts[t, b, i]) for i in range(cfg.n_agents)})
            assert np.array_equal(np.stack([obs[f"agent_{i}"] for i in range(cfg.n_agents)]), r.obs[b])
            assert [rew[f"agent_{i}"] for i in range(cfg.n_agents)] == pytest.approx(r.rewards[b].tolist())
            assert info["agent_0"]["served"] == pytest.approx(r.served[b])
        em = env.episode_metrics()
        assert {k: em[k] for k in bm} == pytest.approx({k: float(v[b]) for k, v in bm.items()})


def test_core_served_matches_reference_batched() -> None:
    cfg = CoverageConfig(source="toy", n_agents=10)
    core = CoverageCore(cfg, 8)
    core.reset(seed=1)
    core.pos[:, :3] = core.pos[:, :1]  # force stacked windows
    for a in np.random.default_rng(1).integers(0, 9, size=(5, 8, 10)):
        r = core.step(a)
        for b in range(8):
            frame = core.frames[core.frame_index(core.t)[b]]
            assert r.served[b] == pytest.approx(served_by_positions(frame, core.pos[b], 3, 1.0))
            assert r.served_agent[b].sum() == pytest.approx(r.served[b])
    with pytest.raises(ValueError, match="actions"):
        core.step(np.full((8, 10), 9))


def test_toy_source_matches_paper() -> None:
    data = load_demand(CoverageConfig(source="toy"))
    F = data.frames
    assert F.shape == (28, 50, 50) and (F >= 0).all()
    mean = F.mean(0)
    for cx, cy in ((15, 15), (35, 35)):
        x, y = np.unravel_index(np.argmax(mean[cx - 8:cx + 8, cy - 8:cy + 8]), (16, 16))
        assert abs(x - 8) <= 1 and abs(y - 8) <= 1
        assert mean[cx, cy] == pytest.approx(1.0, abs=0.05)
    # sigma = 0.15 in normalised units = 7.5 cells: half maximum about 8.8 cells from the peak
    assert 0.45 < mean[15, 15 + 9] < 0.6
    noise = F[:, 15, 15] - mean[15, 15]
    assert 0.03 < noise.std() < 0.07  # 5 % of D_max
    assert not F.flags.writeable


def test_city_source_properties() -> None:
    cfg = CoverageConfig(source="city")
    F = load_demand(cfg).frames
    assert F.shape == (336, 50, 50) and (F >= 0).all()
    assert np.array_equal(F, np.round(F))  # Poisson counts
    total = F.reshape(336, -1).sum(1)
    daily = np.corrcoef(total[:-48], total[48:])[0, 1]
    assert daily > 0.8  # daily cycle
    assert total.max() > 1.5 * total.min()  # pulses
    cells = F.reshape(-1)
    assert cells.max() > 20 * max(np.median(cells), 1.0)  # heavy-tailed intensities
    hot = [np.unravel_index(np.argmax(F[t]), (50, 50)) for t in range(0, 48, 6)]
    assert len(set(hot)) > 1  # hotspots drift / swap over the day
    other = load_demand(CoverageConfig(source="city", data_seed=1)).frames
    assert not np.array_equal(F, other)
    small = load_demand(CoverageConfig(source="city", height=20, width=30, n_frames=10,
                                       source_options={"n_hotspots": 3, "noise": "none"})).frames
    assert small.shape == (10, 20, 30)


def test_npy_source(tmp_path: Path) -> None:
    arr = np.random.default_rng(0).random((12, 6, 7))
    p = tmp_path / "d.npy"
    np.save(p, arr)
    cfg = CoverageConfig(source="npy", height=6, width=7, source_options={"path": str(p)})
    assert np.array_equal(load_demand(cfg).frames, arr)
    env = CoverageEnv(cfg.replace(n_agents=2, episode_length=3))
    env.reset(seed=0)
    with pytest.raises(ConfigError, match="height"):
        load_demand(cfg.replace(height=5))
    with pytest.raises(DataError, match="does not exist"):
        load_demand(cfg.replace(source_options={"path": str(tmp_path / "missing.npy")}))
    bad = arr.copy()
    bad[3, 2, 1] = -1.0
    np.save(tmp_path / "bad.npy", bad)
    with pytest.raises(DataError, match="negative at t=3, x=2, y=1"):
        load_demand(cfg.replace(source_options={"path": str(tmp_path / "bad.npy")}))


def test_time_splits() -> None:
    city = CoverageCore(CoverageConfig(source="city"), 64)
    assert city.split_range == (0, 288)
    assert city.start_offsets() == (0, 288 - 21)
    city.reset(seed=0)
    assert (city.offset + 20 < 288).all()
    ev = CoverageCore(CoverageConfig(source="city", split="eval"), 64)
    assert ev.start_offsets() == (288, 315)
    ev.reset(seed=0)
    assert ((ev.offset >= 288) & (ev.offset <= 315)).all()
    toy = CoverageCore(CoverageConfig(source="toy", split="eval"), 64)
    assert toy.split_range == (24, 28) and toy.start_offsets() == (24, 27)  # wraps around
    toy.reset(seed=0)
    assert set(toy.offset.tolist()) <= {24, 25, 26, 27}
    for _ in range(20):
        toy.step(np.full((64, 10), 4))
    assert ((toy.frame_index(20) >= 0) & (toy.frame_index(20) < 28)).all()


@pytest.mark.parametrize("values, key", [
    ({"window": 4}, "window"),
    ({"window": 7, "height": 5, "width": 5}, "window"),
    ({"n_agents": 0}, "n_agents"),
    ({"episode_length": 0}, "episode_length"),
    ({"capacity": 0.0}, "capacity"),
    ({"delta": -1.0}, "delta"),
    ({"source": "taxibj-missing"}, "source"),
    ({"reward_mode": "other"}, "reward_mode"),
    ({"train_fraction": 1.0}, "train_fraction"),
    ({"nonsense": 1}, "nonsense"),
])
def test_bad_config(values: dict, key: str) -> None:
    with pytest.raises(ConfigError) as e:
        from_dict(CoverageConfig, values, "test")
    assert e.value.key == key
    assert "\n" not in str(e.value)


def test_bad_source_options() -> None:
    with pytest.raises(ConfigError, match="source_options.bogus"):
        load_demand(CoverageConfig(source="city", source_options={"bogus": 1}))
    with pytest.raises(ConfigError, match="source_options.sigma"):
        load_demand(CoverageConfig(source="toy", source_options={"sigma": -1}))
    with pytest.raises(ConfigError, match="source_options.path"):
        load_demand(CoverageConfig(source="npy"))


@pytest.mark.parametrize("value, match", [(np.nan, "NaN"), (-0.5, "negative"), (np.inf, "infinite")])
def test_bad_demand_arrays(value: float, match: str) -> None:
    arr = np.ones((4, 5, 5))
    arr[2, 1, 3] = value
    with pytest.raises(DataError, match=match):
        demand_from_array(arr)
    with pytest.raises(DataError, match=match):
        CoverageEnv(CoverageConfig(height=5, width=5, n_agents=1), demand=arr)
    with pytest.raises(DataError, match="shape"):
        demand_from_array(np.ones((5, 5)))


def test_wrong_shape_positions_offsets() -> None:
    cfg = CoverageConfig(source="toy", n_agents=2)
    env = CoverageEnv(cfg, demand=np.ones((3, 50, 50)))
    with pytest.raises(ConfigError, match="positions"):
        env.reset(options={"positions": [[0, 0]]})
    with pytest.raises(ConfigError, match="positions"):
        env.reset(options={"positions": [[0, 0], [50, 0]]})
    with pytest.raises(ConfigError, match="offset"):
        env.reset(options={"offset": 3})
    with pytest.raises(ConfigError, match="height/width"):
        CoverageEnv(cfg, demand=np.ones((3, 10, 10)))
    with pytest.raises(HierallocError):
        CoverageCore(cfg, batch_size=0)


def test_render_ansi() -> None:
    env = CoverageEnv(CoverageConfig(source="toy", height=10, width=10, n_agents=2), render_mode="ansi")
    env.reset(seed=0)
    text = env.render()
    assert text is not None and "A" in text and "t=0/20" in text
