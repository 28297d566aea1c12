"""Trip-table rasteriser: CSV / Parquet files written here -> (T, H, W) counts -> the npy source."""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from hieralloc.envs.coverage import CoverageConfig, CoverageCore, load_demand
from hieralloc.envs.coverage.rasterize import (
    add_cli_arguments,
    parse_bbox,
    parse_grid,
    rasterize_trips,
    run_cli,
)
from hieralloc.errors import ConfigError, DataError, HierallocError

BBOX = (116.0, 39.0, 117.0, 40.0)  # lon_min, lat_min, lon_max, lat_max: 4 x 4 cells of 0.25 degrees
HEADER = ["id", "pickup_datetime", "pickup_longitude", "pickup_latitude"]
# (time, lon, lat) -> expected (t, row, col) with 30-minute steps from 2016-01-01 00:00
GOOD = [
    ("2016-01-01 00:05:00", "116.10", "39.90", (0, 0, 0)),   # north-west corner cell (row 0 = north)
    ("2016-01-01 00:29:59", "116.10", "39.90", (0, 0, 0)),
    ("2016-01-01T00:30:00", "116.90", "39.10", (1, 3, 3)),   # south-east, ISO with T, next step
    ("2016-01-01 01:10:00+08:00", "116.60", "39.40", (None, 2, 2)),  # offset -> UTC (previous day 17:10)
    ("1451610000", "116.30", "39.60", (2, 1, 1)),             # epoch seconds = 2016-01-01 01:00 UTC
    ("2016-01-01 02:00:00", "117.0", "39.0", (4, 3, 3)),      # max lon / min lat edges fold into the last cells
]
BAD = [
    ("not a time", "116.5", "39.5"),
    ("", "116.5", "39.5"),
    ("2016-01-01 00:10:00", "nan", "39.5"),
    ("2016-01-01 00:10:00", "", "39.5"),
    ("2016-01-01 00:10:00", "116.5", "north"),
]
OUTSIDE = [("2016-01-01 00:10:00", "118.5", "39.5"), ("2016-01-01 00:10:00", "116.5", "41.0")]


def write_csv(path: Path, rows: list[tuple[str, str, str]], opener=open) -> Path:
    with opener(path, "wt", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        for i, r in enumerate(rows):
            w.writerow([i, *r])
    return path


def test_counts_cells_orientation_and_bad_rows(tmp_path: Path) -> None:
    rows = [r[:3] for r in GOOD] + BAD + OUTSIDE
    src = write_csv(tmp_path / "trips.csv", rows)
    out = tmp_path / "grid.npy"
    rep = rasterize_trips(src, out, bbox=BBOX, grid=(4, 4), step_min=30)
    grid = np.load(out)
    # start: midnight before the first trip in the box (the +08:00 trip is 2015-12-31 17:10 UTC)
    assert rep.start == "2015-12-31T00:00:00"
    off = 48  # steps from 2015-12-31 00:00 to 2016-01-01 00:00
    assert grid.shape == (off + 5, 4, 4) and rep.shape == grid.shape
    assert grid[off + 0, 0, 0] == 2 and grid[off + 1, 3, 3] == 1 and grid[off + 2, 1, 1] == 1
    assert grid[off + 4, 3, 3] == 1
    assert grid[34, 2, 2] == 1  # 17:10 UTC on 2015-12-31 is step 34
    assert grid.sum() == len(GOOD) == rep.used
    assert rep.rows == len(rows) and rep.bad == {"time": 2, "coordinates": 3} and rep.n_bad == 5
    assert rep.out_of_box == 2 and rep.out_of_time == 0
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["used"] == rep.used and meta["bad"] == rep.bad and "north" in meta["orientation"]
    assert "bad rows 5" in rep.summary()


def test_start_end_time_format_and_the_npy_source(tmp_path: Path) -> None:
    rows = [("01/01/2016 00:10", "116.1", "39.9"), ("01/01/2016 01:40", "116.9", "39.1"),
            ("31/12/2015 23:50", "116.5", "39.5"), ("01/01/2016 03:00", "116.5", "39.5")]
    src = write_csv(tmp_path / "trips.csv", rows)
    out = tmp_path / "sub" / "grid.npy"
    rep = rasterize_trips(src, out, bbox="116,39,117,40", grid="8x6", step_min=60, start="2016-01-01T00:00:00",
                          end="2016-01-01T02:00:00", time_format="%d/%m/%Y %H:%M")
    assert rep.shape == (2, 8, 6) and rep.used == 2 and rep.out_of_time == 2
    # the grid is a demand source like any other
    cfg = CoverageConfig(source="npy", source_options={"path": str(out)}, height=8, width=6, n_agents=2,
                         window=3, episode_length=1, split="all")
    assert load_demand(cfg).frames.sum() == 2
    core = CoverageCore(cfg, 1)
    core.reset(seed=0)
    core.step(np.full((1, 2), 4))


def test_gzip_csv_and_cli_helpers(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "trips.csv.gz", [r[:3] for r in GOOD[:3]], opener=gzip.open)
    p = argparse.ArgumentParser()
    add_cli_arguments(p)
    args = p.parse_args([str(src), "--out", str(tmp_path / "g.npy"), "--bbox", "116,39,117,40", "--grid", "2x2",
                         "--step-min", "15"])
    rep = run_cli(args)
    assert rep.shape == (3, 2, 2) and rep.used == 3
    assert parse_grid("64x32") == (64, 32) and parse_bbox("1,2,3,4") == (1.0, 2.0, 3.0, 4.0)


def test_parquet_with_timestamp_and_text_columns(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow", reason="Parquet input needs pyarrow")
    import datetime as dt

    import pyarrow.parquet as pq

    times = [dt.datetime(2016, 1, 1, 0, 5), dt.datetime(2016, 1, 1, 0, 40), None]
    table = pa.table({"tpep_pickup_datetime": pa.array(times, pa.timestamp("us")),
                      "lon": [116.1, 116.9, 116.5], "lat": [39.9, 39.1, 39.5],
                      "when": ["2016-01-01 00:05:00", "bad", "2016-01-01 00:50:00"]})
    src = tmp_path / "trips.parquet"
    pq.write_table(table, src)
    rep = rasterize_trips(src, tmp_path / "a.npy", bbox=BBOX, grid=(4, 4), time_col="tpep_pickup_datetime",
                          lon_col="lon", lat_col="lat")
    grid = np.load(tmp_path / "a.npy")
    assert rep.used == 2 and rep.bad == {"time": 1} and grid[0, 0, 0] == 1 and grid[1, 3, 3] == 1
    rep2 = rasterize_trips(src, tmp_path / "b.npy", bbox=BBOX, grid=(4, 4), time_col="when", lon_col="lon",
                           lat_col="lat")
    assert rep2.used == 2 and rep2.bad == {"time": 1}


def test_missing_pyarrow_names_the_package(tmp_path: Path, monkeypatch) -> None:
    src = tmp_path / "trips.parquet"
    src.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(HierallocError, match="pyarrow"):
        rasterize_trips(src, tmp_path / "g.npy", bbox=BBOX)


@pytest.mark.parametrize("kwargs, err, text", [
    ({"bbox": "117,39,116,40"}, ConfigError, "LON_MIN < LON_MAX"),
    ({"bbox": "1,2,3"}, ConfigError, "four"),
    ({"bbox": BBOX, "grid": "64by64"}, ConfigError, "HxW"),
    ({"bbox": BBOX, "step_min": 0}, ConfigError, "step-min"),
    ({"bbox": BBOX, "time_col": "tpep_pickup_datetime"}, DataError, "no column 'tpep_pickup_datetime'"),
    ({"bbox": (0.0, 0.0, 1.0, 1.0)}, DataError, "no trip"),
    ({"bbox": BBOX, "start": "yesterday"}, ConfigError, "--start"),
])
def test_bad_arguments_give_one_clear_error(tmp_path: Path, kwargs, err, text) -> None:
    src = write_csv(tmp_path / "trips.csv", [r[:3] for r in GOOD])
    with pytest.raises(err) as e:
        rasterize_trips(src, tmp_path / "g.npy", **kwargs)
    assert text in str(e.value) and "\n" not in str(e.value)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        rasterize_trips(tmp_path / "nope.csv", tmp_path / "g.npy", bbox=BBOX)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="empty"):
        rasterize_trips(empty, tmp_path / "g.npy", bbox=BBOX)


def test_cli_rasterize_then_train_on_the_grid(cli, tmp_path: Path) -> None:
    """The real CLI: trips.csv -> grid.npy -> a coverage run on that demand through the npy source."""
    rng = np.random.default_rng(0)
    trips = tmp_path / "trips.csv"
    with open(trips, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        for i in range(400):
            minute = int(rng.integers(0, 24 * 60))
            w.writerow([i, f"2016-01-01 {minute // 60:02d}:{minute % 60:02d}:00",
                        f"{116.0 + rng.random():.5f}", f"{39.0 + rng.random():.5f}"])
    grid = tmp_path / "grid.npy"
    r = cli("data", "rasterize", str(trips), "--out", str(grid), "--bbox", "116,39,117,40", "--grid", "8x8",
            "--step-min", "60")
    assert r.returncode == 0, r.stderr
    arr = np.load(grid)
    assert arr.shape == (24, 8, 8) and arr.sum() == 400
    out = tmp_path / "run"
    r = cli("train", "coverage", "greedy-local", "env.source=npy", f"env.source_options={{path: {grid}}}",
            "env.height=8", "env.width=8", "env.n_agents=2", "env.episode_length=5", "train.eval_episodes=2",
            "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "summary.json").read_text())["final"]["served"] >= 0
    r = cli("data", "rasterize", str(trips), "--out", str(grid), "--bbox", "117,39,116,40")
    assert r.returncode == 2 and r.stderr.startswith("error:") and r.stderr.count("\n") == 1
