"""Run directories: atomic writes, version capture, safe checkpoint loading with clear errors."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch

from hieralloc.errors import CheckpointError
from hieralloc.runs import RunDir, atomic_write_bytes, config_hash, load_checkpoint, versions


def test_atomic_write_leaves_no_temp_and_replaces(tmp_path: Path) -> None:
    p = tmp_path / "f.bin"
    atomic_write_bytes(p, b"one")
    atomic_write_bytes(p, b"two")
    assert p.read_bytes() == b"two"
    assert sorted(os.listdir(tmp_path)) == ["f.bin"]


def test_atomic_write_failure_keeps_old_file(tmp_path: Path) -> None:
    p = tmp_path / "f.bin"
    atomic_write_bytes(p, b"old")

    with pytest.raises(TypeError):
        atomic_write_bytes(p, 12345)  # type: ignore[arg-type]
    assert p.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["f.bin"]


def test_versions_record_every_package() -> None:
    v = versions()
    for k in ("python", "torch", "numpy", "scipy", "highspy", "hieralloc", "git_commit"):
        assert k in v
    assert v["torch"] and v["numpy"] and v["highspy"]


def test_run_dir_files_and_checkpoint_roundtrip(tmp_path: Path) -> None:
    rd = RunDir(tmp_path / "run")
    tree = {"env": "e", "algo": "a", "seed": 3, "env_config": {}, "algo_config": {}, "train": {}}
    rd.create(tree, 3)
    assert {p.name for p in rd.path.iterdir()} >= {"config.yaml", "seed", "versions.json", "metrics.jsonl"}
    assert rd.read_config() == tree
    rd.log({"step": 1, "phase": "train", "loss": 0.5})
    size = rd.metrics_size()
    rd.log({"step": 2, "phase": "train", "loss": 0.4})
    h = config_hash(tree)
    for step in (10, 20, 30):
        rd.save_checkpoint(step, {"w": torch.arange(3.0), "metrics_size": size, "rng": {"s": 2**100}}, h)
    assert [s for s, _ in rd.checkpoints()] == [20, 30]
    ck = rd.latest_checkpoint(h)
    assert ck is not None and ck["step"] == 30 and torch.equal(ck["payload"]["w"], torch.arange(3.0))
    rd.truncate_metrics(size)
    assert [m["step"] for m in rd.read_metrics()] == [1]
    with pytest.raises(CheckpointError, match="different config"):
        rd.latest_checkpoint("0" * 16)


def test_corrupt_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    p = tmp_path / "ckpt_000000000001.pt"
    p.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="corrupt or not a hieralloc checkpoint"):
        load_checkpoint(p)
    # a truncated real checkpoint
    rd = RunDir(tmp_path / "r")
    good = rd.save_checkpoint(5, {"w": torch.ones(1000)}, "h")
    good.write_bytes(good.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(good)


def test_foreign_and_malicious_checkpoints_are_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    with pytest.raises(CheckpointError, match="foreign"):
        load_checkpoint(foreign)

    class Evil:
        def __reduce__(self):  # pragma: no cover - never executed with weights_only
            return (os.system, ("echo pwned",))

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"format": "hieralloc-checkpoint", "x": Evil()}))
    with pytest.raises(CheckpointError, match="corrupt or not a hieralloc checkpoint"):
        load_checkpoint(evil)


def test_damaged_config_and_summary(tmp_path: Path) -> None:
    rd = RunDir(tmp_path)
    with pytest.raises(CheckpointError, match="not a run directory"):
        rd.read_config()
    (tmp_path / "config.yaml").write_text("env: [unclosed\n")
    with pytest.raises(CheckpointError, match="not valid YAML"):
        rd.read_config()
    (tmp_path / "summary.json").write_text("{")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        rd.read_summary()
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"a": 1}) + "\n{oops\n")
    with pytest.raises(CheckpointError, match="metrics.jsonl:2"):
        rd.read_metrics()
