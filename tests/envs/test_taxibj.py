"""TaxiBJ loader on small HDF5 files written here in the release's exact layout (h5py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

h5py = pytest.importorskip("h5py", reason="the TaxiBJ loader needs h5py (pip install -e '.[taxibj]')")

from hieralloc.envs.coverage import CoverageConfig, CoverageCore, load_demand  # noqa: E402
from hieralloc.envs.coverage.taxibj import (  # noqa: E402
    PAPER_FRAMES,
    load_taxibj,
    resize_preserving_totals,
    taxibj_demand,
)
from hieralloc.errors import ConfigError, DataError, HierallocError  # noqa: E402


def slot_names(days: list[str], slots_per_day: int = 48) -> list[bytes]:
    return [f"{d}{s:02d}".encode() for d in days for s in range(1, slots_per_day + 1)]


def write_taxibj(path: Path, dates: list[bytes], data: np.ndarray | None = None, *, seed: int = 0,
                 skip: tuple[str, ...] = ()) -> np.ndarray:
    """A BJ*_M32x32_T30_InOut.h5 look-alike: 'data' (T, 2, 32, 32) float64 and 'date' (T,) bytes."""
    if data is None:
        rng = np.random.default_rng(seed)
        data = rng.poisson(5.0, size=(len(dates), 2, 32, 32)).astype(np.float64)
    with h5py.File(path, "w") as f:
        if "data" not in skip:
            f.create_dataset("data", data=data)
        if "date" not in skip:
            f.create_dataset("date", data=np.array(dates, dtype="S10"))
    return data


DAYS = ["20150301", "20150302", "20150303", "20150304", "20150305", "20150306", "20150307", "20150308"]


@pytest.fixture
def bj_file(tmp_path: Path) -> tuple[Path, np.ndarray, list[bytes]]:
    # day 2 (20150302) misses slot 17: the loader must skip it like the release's own tools
    dates = [d for d in slot_names(DAYS) if d != b"2015030217"]
    path = tmp_path / "BJ15_M32x32_T30_InOut.h5"
    data = write_taxibj(path, dates)
    return path, data, dates


def test_inflow_first_seven_complete_days_resized_preserving_totals(bj_file) -> None:
    path, data, dates = bj_file
    out = load_taxibj(path)
    assert out.frames.shape == (PAPER_FRAMES, 64, 64)
    assert out.skipped_days == ["20150302"]
    complete = [d for d in DAYS if d != "20150302"][:7]
    assert out.slots[0] == complete[0] + "01" and out.slots[-1] == complete[-1] + "48"
    rows = [dates.index(s.encode()) for s in out.slots]
    inflow = data[rows, 0]  # channel 0 is the inflow in the standard release
    np.testing.assert_allclose(out.frames.sum(axis=(1, 2)), inflow.sum(axis=(1, 2)), rtol=1e-12)
    # 32 -> 64: every cell splits into four cells of a quarter of its flow
    np.testing.assert_allclose(out.frames[:, ::2, ::2] * 4, inflow, rtol=1e-12)
    np.testing.assert_allclose(out.frames[:, 1::2, 1::2] * 4, inflow, rtol=1e-12)


def test_flow_choice_start_day_and_frames(bj_file) -> None:
    path, data, dates = bj_file
    out = load_taxibj(path, n_frames=50, flow="total", size=(32, 32), start_day=1)
    assert out.slots[0] == "2015030301" and len(out.slots) == 50
    rows = [dates.index(s.encode()) for s in out.slots]
    np.testing.assert_allclose(out.frames, data[rows, 0] + data[rows, 1])
    outflow = load_taxibj(path, n_frames=3, flow="outflow", size=(32, 32))
    np.testing.assert_allclose(outflow.frames, data[:3, 1])


def test_resize_preserves_totals_for_any_size() -> None:
    f = np.random.default_rng(1).gamma(2.0, size=(3, 32, 32))
    for size in [(64, 64), (50, 50), (20, 45), (32, 32)]:
        r = resize_preserving_totals(f, size)
        assert r.shape == (3, *size) and (r >= 0).all()
        np.testing.assert_allclose(r.sum(axis=(1, 2)), f.sum(axis=(1, 2)), rtol=1e-12)


def test_registered_source_through_the_environment(bj_file, tmp_path: Path, monkeypatch) -> None:
    path, data, dates = bj_file
    cfg = CoverageConfig(source="taxibj", source_options={"path": str(path)}, height=64, width=64)
    demand = load_demand(cfg)
    assert demand.frames.shape == (336, 64, 64)
    core = CoverageCore(cfg, 2)
    core.reset(seed=0)
    assert core.step(np.full((2, cfg.n_agents), 4)).served.shape == (2,)
    # a path relative to the data directory
    monkeypatch.setenv("HIERALLOC_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path.parent)
    rel = CoverageConfig(source="taxibj", source_options={"path": path.name}, height=64, width=64, n_frames=48)
    assert taxibj_demand(rel).shape == (48, 64, 64)


@pytest.mark.parametrize("case, field", [
    ("missing_data", "'data' is missing"),
    ("missing_date", "'date' is missing"),
    ("shape", "field 'data' has shape (336, 32, 32)"),
    ("channels", "field 'data' has shape (336, 3, 32, 32)"),
    ("dtype", "field 'data' has dtype"),
    ("nan", "non-finite value"),
    ("negative", "negative flow"),
    ("date_len", "field 'date' has shape (335,)"),
    ("date_format", "field 'date' entry 5"),
    ("slot_range", "field 'date' entry 0"),
    ("short", "has 2 complete days"),
    ("not_hdf5", "not a readable HDF5 file"),
])
def test_bad_files_raise_one_clear_data_error(tmp_path: Path, case: str, field: str) -> None:
    path = tmp_path / "BJ16_M32x32_T30_InOut.h5"
    dates = slot_names(DAYS[:7])
    data = np.ones((336, 2, 32, 32))
    if case == "missing_data":
        write_taxibj(path, dates, data, skip=("data",))
    elif case == "missing_date":
        write_taxibj(path, dates, data, skip=("date",))
    elif case == "shape":
        write_taxibj(path, dates, np.ones((336, 32, 32)))
    elif case == "channels":
        write_taxibj(path, dates, np.ones((336, 3, 32, 32)))
    elif case == "dtype":
        with h5py.File(path, "w") as f:
            f.create_dataset("data", data=np.full((336, 2, 32, 32), b"x", dtype="S1"))
            f.create_dataset("date", data=np.array(dates, dtype="S10"))
    elif case == "nan":
        data[40, 0, 3, 4] = np.nan
        write_taxibj(path, dates, data)
    elif case == "negative":
        data[2, 1, 0, 0] = -1.0
        write_taxibj(path, dates, data)
    elif case == "date_len":
        write_taxibj(path, dates[:-1], data)
    elif case == "date_format":
        dates[5] = b"2015-03-01"
        write_taxibj(path, dates, data)
    elif case == "slot_range":
        dates[0] = b"2015030149"
        write_taxibj(path, dates, data)
    elif case == "short":
        write_taxibj(path, slot_names(DAYS[:2]), np.ones((96, 2, 32, 32)))
    elif case == "not_hdf5":
        path.write_text("not an hdf5 file")
    with pytest.raises(DataError) as e:
        load_taxibj(path)
    msg = str(e.value)
    assert field in msg and str(path) in msg and "\n" not in msg
    assert isinstance(e.value, HierallocError)


def test_missing_file_and_missing_path_option(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HIERALLOC_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(DataError, match="source_options.path"):
        load_taxibj("BJ13_M32x32_T30_InOut.h5")
    with pytest.raises(ConfigError, match="source_options.path"):
        taxibj_demand(CoverageConfig(source="taxibj", height=64, width=64))
    with pytest.raises(ConfigError, match="flow"):
        load_taxibj(tmp_path / "x.h5", flow="both")


def test_missing_h5py_names_the_extra(bj_file, monkeypatch) -> None:
    path, _, _ = bj_file
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(HierallocError, match=r"\.\[taxibj\]"):
        load_taxibj(path)
