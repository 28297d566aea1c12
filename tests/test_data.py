"""Data directory setting, known datasets, checksum verification (on the real files in CI)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hieralloc import data
from hieralloc.errors import DataError, UnknownNameError

SHARED_SIX = ["chicago", "nyc_brooklyn", "nyc_man_south", "san_francisco", "shenzhen_baoan",
              "shenzhen_downtown_west"]


def test_thirteen_cities_registered() -> None:
    assert len([n for n in data.DATASETS if n.startswith("amod/")]) == 13


@pytest.mark.realdata
@pytest.mark.parametrize("city", SHARED_SIX)
def test_real_scenarios_verify(data_root: Path, city: str) -> None:
    st = data.status(data.get_dataset(city), data_root)
    assert st.present and st.verified, st.detail
    assert data.require(city, data_root) == data_root / f"amod/scenario_{city}.json"


def test_checksum_mismatch_and_missing(tmp_path: Path, data_root: Path) -> None:
    (tmp_path / "amod").mkdir()
    src = data_root / "amod/scenario_nyc_brooklyn.json"
    dst = tmp_path / "amod/scenario_nyc_brooklyn.json"
    shutil.copyfile(src, dst)
    assert data.status(data.get_dataset("nyc_brooklyn"), tmp_path).verified
    with open(dst, "ab") as fh:
        fh.write(b" ")
    st = data.status(data.get_dataset("nyc_brooklyn"), tmp_path)
    assert st.present and st.verified is False and "checksum mismatch" in st.detail
    with pytest.raises(DataError, match="checksum mismatch"):
        data.require("nyc_brooklyn", tmp_path)
    with pytest.raises(DataError, match="HIERALLOC_DATA_DIR"):
        data.require("rome", tmp_path)
    with pytest.raises(UnknownNameError, match="unknown dataset 'atlantis'"):
        data.get_dataset("atlantis")


def test_data_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "env"))
    assert data.data_dir() == tmp_path / "env"
    assert data.data_dir(tmp_path / "flag") == tmp_path / "flag"
    monkeypatch.delenv(data.ENV_VAR)
    assert data.data_dir() == data.DEFAULT_DIR.expanduser()


@pytest.mark.realdata
def test_cli_data_list_and_verify(cli, data_root: Path, tmp_path: Path) -> None:
    r = cli("data", "list", "--data-dir", str(data_root))
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("verified") == 6 and r.stdout.count("missing") == 7
    r = cli("data", "verify", "--data-dir", str(data_root))
    assert r.returncode == 0 and "6 passed, 0 failed" in r.stdout
    r = cli("data", "verify", "--data-dir", str(tmp_path))
    assert r.returncode == 2 and r.stderr.startswith("error: no known dataset is present")
    r = cli("data", "verify", "atlantis", "--data-dir", str(data_root))
    assert r.returncode == 2 and "unknown dataset 'atlantis'" in r.stderr
