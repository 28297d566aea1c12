"""The offline dataset format (hieralloc.ohio.dataset): round trips through real files, every
validation error (one DataError naming the file, the field and the fix), the graph-fingerprint
check and atomic writes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hieralloc.errors import DataError
from hieralloc.ohio import GraphLayout
from hieralloc.ohio.dataset import ARRAYS, DATA_FILE, FORMAT, META_FILE, VERSION, OfflineDataset, check_writable

EPISODES, STEPS, N, FX, E, FE, A, L, P = 3, 4, 5, 6, 8, 3, 7, 20, 2
F = L + P  # a flow vector: one entry per flow edge, then one per producer


def _arrays(seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    T = EPISODES * STEPS
    edge_index = np.stack([rng.integers(0, N, E), rng.integers(0, N, E)]).astype(np.int64)
    flow_edges = np.stack([np.repeat(np.arange(N), N), np.tile(np.arange(N), N)])[:, :L].astype(np.int64)
    done = np.zeros(T, dtype=bool)
    done[STEPS - 1::STEPS] = True
    terminated = np.zeros(T, dtype=bool)
    terminated[STEPS - 1] = True  # the first episode terminates, the others are truncated
    return {
        "x": rng.random((T, N, FX), dtype=np.float32),
        "edge_attr": rng.random((T, E, FE), dtype=np.float32),
        "aux": rng.integers(0, 30, (T, A)).astype(np.float64),
        "next_x": rng.random((T, N, FX), dtype=np.float32),
        "next_edge_attr": rng.random((T, E, FE), dtype=np.float32),
        "next_aux": rng.integers(0, 30, (T, A)).astype(np.float64),
        "flows": rng.integers(0, 5, (T, F)).astype(np.float64),
        "reward": rng.normal(size=T),
        "terminated": terminated,
        "done": done,
        "episode": np.repeat(np.arange(EPISODES), STEPS).astype(np.int64),
        "step": np.tile(np.arange(STEPS), EPISODES).astype(np.int64),
        "edge_index": edge_index,
        "flow_edges": flow_edges,
        "producers": np.array([0, 3], dtype=np.int64),
    }


def _meta(**changes: Any) -> dict[str, Any]:
    meta = {"env": "mobility", "scenario": "mobility-synthetic", "family": "mobility",
            "env_config": {"city": "synthetic", "synthetic_regions": N}, "behaviour": "prop",
            "behaviour_config": {"horizon": 6}, "episodes": EPISODES, "seed": 7, "fingerprint": "0123456789abcdef",
            "goal_dim": N, "flow_dim": F, "hieralloc_version": "0.1.0", "git_commit": None,
            "created": "2026-01-01T00:00:00+00:00"}
    meta.update(changes)
    return meta


def _dataset(**array_changes: Any) -> OfflineDataset:
    return OfflineDataset(**{**_arrays(), **array_changes}, meta=_meta())


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    return _dataset().save(tmp_path / "ds")


def _rewrite_npz(path: Path, **changes: Any) -> None:
    """Rewrite data.npz bypassing OfflineDataset's checks (a damaged or foreign file)."""
    with np.load(path / DATA_FILE, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    for k, v in changes.items():
        if v is None:
            arrays.pop(k)
        else:
            arrays[k] = v
    np.savez_compressed(path / DATA_FILE, **arrays)


def _rewrite_meta(path: Path, **changes: Any) -> None:
    meta = json.loads((path / META_FILE).read_text())
    for k, v in changes.items():
        if v is None:
            meta.pop(k)
        else:
            meta[k] = v
    (path / META_FILE).write_text(json.dumps(meta))


# ------------------------------------------------------------------------------------ round trip


def test_round_trip_on_disk(saved: Path) -> None:
    assert sorted(p.name for p in saved.iterdir()) == [DATA_FILE, META_FILE]
    ds = OfflineDataset.load(saved)
    ref = _arrays()
    for name, (dtype, _) in ARRAYS.items():
        a = getattr(ds, name)
        assert a.dtype == np.dtype(dtype), name
        np.testing.assert_array_equal(a, ref[name], err_msg=name)
    meta = json.loads((saved / META_FILE).read_text())
    assert meta["format"] == FORMAT and meta["version"] == VERSION
    assert meta["transitions"] == EPISODES * STEPS == len(ds)
    assert ds.meta == {**_meta(), "format": FORMAT, "version": VERSION, "transitions": EPISODES * STEPS}
    assert ds.path == saved and ds.n_nodes == N and ds.n_episodes == EPISODES
    assert ds.goal_dim == N and ds.flow_dim == F
    # the archive is read without pickle and holds exactly the documented arrays (no actions)
    with np.load(saved / DATA_FILE, allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(ARRAYS)


def test_summary_returns_per_episode(saved: Path) -> None:
    ds = OfflineDataset.load(saved)
    returns = _arrays()["reward"].reshape(EPISODES, STEPS).sum(axis=1)
    np.testing.assert_allclose(ds.episode_returns(), returns)
    s = ds.summary()
    assert s["episodes"] == EPISODES and s["transitions"] == EPISODES * STEPS
    assert s["mean_return"] == pytest.approx(returns.mean())
    assert s["std_return"] == pytest.approx(returns.std())
    assert (s["min_return"], s["max_return"]) == (pytest.approx(returns.min()), pytest.approx(returns.max()))
    assert (s["env"], s["scenario"], s["name"]) == ("mobility", "mobility-synthetic", "mobility-synthetic")
    assert (s["behaviour"], s["seed"]) == ("prop", 7)


def test_constructor_converts_within_a_kind_only() -> None:
    a = _arrays()
    ds = OfflineDataset(**{**a, "x": a["x"].astype(np.float64), "episode": a["episode"].astype(np.int32)},
                        meta=_meta())
    assert ds.x.dtype == np.float32 and ds.episode.dtype == np.int64
    with pytest.raises(DataError, match=r"field 'episode' has dtype float64, the format has int64"):
        OfflineDataset(**{**a, "episode": a["episode"].astype(np.float64)}, meta=_meta())
    with pytest.raises(DataError, match=r"field 'done' has dtype int64, the format has bool"):
        OfflineDataset(**{**a, "done": a["done"].astype(np.int64)}, meta=_meta())


# ------------------------------------------------------------------------------------ validation errors


def _expect(path: Path, *fragments: str) -> DataError:
    with pytest.raises(DataError) as info:
        OfflineDataset.load(path)
    msg = str(info.value)
    for frag in fragments:
        assert frag in msg, (frag, msg)
    assert "\n" not in msg
    return info.value


def test_missing_directory_and_file_instead_of_directory(tmp_path: Path) -> None:
    _expect(tmp_path / "nope", "'" + str(tmp_path / "nope") + "' does not exist", "hieralloc collect")
    (tmp_path / "f.npz").write_bytes(b"x")
    _expect(tmp_path / "f.npz", "is a file", META_FILE)


def test_missing_meta(saved: Path) -> None:
    (saved / META_FILE).unlink()
    _expect(saved, str(saved / META_FILE), "is missing", "hieralloc collect")


@pytest.mark.parametrize("text, fragment", [
    ("{not json", "is not valid JSON"),
    ("[1, 2]", "must hold a JSON object"),
])
def test_meta_not_json_object(saved: Path, text: str, fragment: str) -> None:
    (saved / META_FILE).write_text(text)
    _expect(saved, str(saved / META_FILE), fragment, "--force")


@pytest.mark.parametrize("changes, fragments", [
    ({"format": "something-else"}, ("field 'format'", "not an OHIO dataset", "hieralloc collect")),
    ({"version": 2}, ("field 'version' is 2", "reads dataset format version 1", "hieralloc collect")),
    ({"fingerprint": None}, ("lacks the field 'fingerprint'", "hieralloc collect mobility-synthetic prop")),
    ({"episodes": "3"}, ("field 'episodes' must be int, got str", "--force")),
    ({"git_commit": 5}, ("field 'git_commit' must be str or null",)),
    ({"goal_dim": 0}, ("field 'goal_dim' is 0, must be >= 1",)),
    ({"family": ""}, ("field 'family' is empty",)),
    ({"transitions": 5}, ("holds 12 transitions", "field 'transitions' says 5", "inconsistent lengths")),
    ({"flow_dim": 3}, ("field 'flow_dim' says 3", "inconsistent lengths")),
    ({"episodes": 4}, ("holds 3 episodes", "field 'episodes' says 4")),
])
def test_bad_meta_fields(saved: Path, changes: dict[str, Any], fragments: tuple[str, ...]) -> None:
    _rewrite_meta(saved, **changes)
    _expect(saved, str(saved), *fragments)


def test_recollect_hint_names_the_command(saved: Path) -> None:
    (saved / DATA_FILE).unlink()
    _expect(saved, str(saved / DATA_FILE), "is missing",
            f"hieralloc collect mobility-synthetic prop --episodes {EPISODES} --seed 7 --out {saved} --force")


@pytest.mark.parametrize("damage", ["empty", "foreign", "truncated", "flipped-60", "flipped-400"])
def test_corrupt_archive(saved: Path, damage: str) -> None:
    data = saved / DATA_FILE
    raw = bytearray(data.read_bytes())
    if damage == "empty":
        raw = bytearray()
    elif damage == "foreign":
        raw = bytearray(b"not a zip archive at all")
    elif damage == "truncated":
        raw = raw[: len(raw) // 2]
    else:  # bit rot inside the compressed members (zlib error, bad CRC)
        off = int(damage.split("-")[1])
        raw[off:off + 8] = bytes(b ^ 0xFF for b in raw[off:off + 8])
    data.write_bytes(bytes(raw))
    err = _expect(saved, str(data), "is corrupt or not a numpy .npz archive", "hieralloc collect")
    assert "allow_pickle" not in str(err)


def test_missing_array(saved: Path) -> None:
    _rewrite_npz(saved, flows=None)
    _expect(saved, str(saved / DATA_FILE), "lacks the array 'flows'", "re-collect")


def test_high_level_actions_are_refused(saved: Path) -> None:
    _rewrite_npz(saved, actions=np.zeros((EPISODES * STEPS, N)))
    _expect(saved, str(saved / DATA_FILE), "array(s) actions", "never high-level actions")


def test_object_array_is_never_unpickled(saved: Path) -> None:
    # np.savez pickles object arrays; loading must refuse them rather than run pickle
    _rewrite_npz(saved, reward=np.array([{"a": 1}] * (EPISODES * STEPS), dtype=object))
    _expect(saved, str(saved / DATA_FILE), "field 'reward' cannot be read without pickle")


def test_wrong_dtype_in_file(saved: Path) -> None:
    _rewrite_npz(saved, x=_arrays()["x"].astype(np.float64))
    _expect(saved, "field 'x' has dtype float64, the format has float32", "re-collect")


@pytest.mark.parametrize("name, value, fragments", [
    ("next_x", np.zeros((EPISODES * STEPS, N + 1, FX), np.float32),
     ("field 'next_x' has shape (12, 6, 6)", "N = 5 (from x axis 1)", "inconsistent lengths")),
    ("reward", np.zeros(EPISODES * STEPS - 1), ("field 'reward' has shape (11,)", "T = 12")),
    ("aux", np.zeros(EPISODES * STEPS), ("field 'aux' has shape (12,), the format has (T, A)",)),
    ("edge_index", np.zeros((3, E), np.int64), ("field 'edge_index' has shape (3, 8), the format has (2, E)",)),
    ("flows", np.zeros((EPISODES * STEPS, F + 1)), ("'flows' has 23 entries per row", "'flow_dim' says 22")),
    ("flow_edges", np.zeros((2, L + 1), np.int64), ("'flows' has 22 entries per row", "one per flow edge then one "
                                                    "per producer: 21 + 2", "inconsistent lengths")),
    ("producers", np.zeros((1, P), np.int64), ("field 'producers' has shape (1, 2), the format has (P,)",)),
    ("edge_attr", np.zeros((EPISODES * STEPS, E + 2, FE), np.float32), ("field 'next_edge_attr'", "E = 10")),
])
def test_wrong_shapes(saved: Path, name: str, value: np.ndarray, fragments: tuple[str, ...]) -> None:
    _rewrite_npz(saved, **{name: value})
    _expect(saved, str(saved / DATA_FILE), *fragments)


@pytest.mark.parametrize("name, bad", [("reward", np.nan), ("aux", np.inf), ("next_x", -np.inf), ("flows", np.nan)])
def test_non_finite_values(saved: Path, name: str, bad: float) -> None:
    a = _arrays()[name].copy()
    a.reshape(len(a), -1)[5, 0] = bad
    _rewrite_npz(saved, **{name: a})
    _expect(saved, str(saved / DATA_FILE), f"field '{name}' holds NaN or inf (first at row 5)")


def _episode_case(kind: str) -> dict[str, Any]:
    a = _arrays()
    if kind == "node":
        a["edge_index"] = a["edge_index"].copy()
        a["edge_index"][1, 2] = N
    elif kind == "producer":
        a["producers"] = np.array([0, -1], dtype=np.int64)
    elif kind == "terminated":
        a["terminated"] = a["terminated"].copy()
        a["terminated"][1] = True
    elif kind == "early-done":
        a["done"] = a["done"].copy()
        a["done"][1] = True
    elif kind == "missing-done":
        a["done"] = a["done"].copy()
        a["done"][STEPS - 1] = False
        a["terminated"] = np.zeros_like(a["terminated"])
    elif kind == "last":
        a["done"] = a["done"].copy()
        a["done"][-1] = False
    elif kind == "order":
        a["episode"] = a["episode"][::-1].copy()
    elif kind == "step":
        a["step"] = a["step"].copy()
        a["step"][2] = 7
    return a


@pytest.mark.parametrize("kind, fragments", [
    ("node", ("field 'edge_index' refers to node 5, outside 0..4",)),
    ("producer", ("field 'producers' refers to node -1",)),
    ("terminated", ("field 'terminated' is set at row 1 where 'done' is not",)),
    ("early-done", ("row 1 is 'done' but the episode continues",)),
    ("missing-done", (f"row {STEPS - 1} ends an episode without 'done'",)),
    ("last", ("field 'done' is not set on the last row",)),
    ("order", ("field 'episode' decreases at row",)),
    ("step", ("field 'step' does not count up by one within episode 0 (row 2)",)),
])
def test_episode_structure(saved: Path, kind: str, fragments: tuple[str, ...]) -> None:
    a = _episode_case(kind)
    _rewrite_npz(saved, **a)
    _expect(saved, str(saved / DATA_FILE), *fragments)
    with pytest.raises(DataError, match="OfflineDataset"):  # the constructor runs the same checks
        OfflineDataset(**a, meta=_meta())


# ------------------------------------------------------------------------------------ graph fingerprint


def _layout(ds: OfflineDataset, **changes: Any) -> GraphLayout:
    values = {"n_nodes": ds.n_nodes, "edge_index": ds.edge_index.copy(), "flow_edges": ds.flow_edges.copy(),
              "producers": ds.producers.copy(), "fingerprint": ds.meta["fingerprint"], **changes}
    return GraphLayout(**values)


def test_check_layout_accepts_the_collecting_graph(saved: Path) -> None:
    ds = OfflineDataset.load(saved)
    ds.check_layout(_layout(ds))


@pytest.mark.parametrize("changes, differs", [
    ({"fingerprint": "fedcba9876543210"}, "fingerprint"),
    ({"n_nodes": N + 3}, "nodes"),
    ({"edge_index": np.zeros((2, 3), np.int64)}, "edge_index"),
    ({"flow_edges": np.zeros((2, L), np.int64)}, "flow_edges"),
    ({"producers": np.zeros(0, np.int64)}, "producers"),
])
def test_check_layout_rejects_another_graph(saved: Path, changes: dict[str, Any], differs: str) -> None:
    ds = OfflineDataset.load(saved)
    layout = _layout(ds, **changes)
    with pytest.raises(DataError) as info:
        ds.check_layout(layout, env_name="mobility-nyc-brooklyn")
    msg = str(info.value)
    assert f"dataset '{saved}' was collected on mobility-synthetic" in msg
    assert "this environment is mobility-nyc-brooklyn" in msg
    assert ds.meta["fingerprint"] in msg and layout.fingerprint in msg
    assert f"differs in {differs}" in msg


# ------------------------------------------------------------------------------------ writing


def test_existing_dataset_is_refused_unless_overwrite(saved: Path) -> None:
    other = _dataset(reward=np.ones(EPISODES * STEPS))
    with pytest.raises(DataError, match=r"already exists; pass --force"):
        other.save(saved)
    np.testing.assert_array_equal(OfflineDataset.load(saved).reward, _arrays()["reward"])
    other.save(saved, overwrite=True)
    np.testing.assert_array_equal(OfflineDataset.load(saved).reward, np.ones(EPISODES * STEPS))
    assert sorted(p.name for p in saved.parent.iterdir()) == ["ds"]  # no temporary leftovers


def test_overwrite_never_replaces_a_foreign_directory(tmp_path: Path) -> None:
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match=r"is not a dataset directory .*refusing to replace it even with --force"):
        _dataset().save(target, overwrite=True)
    assert (target / "notes.txt").read_text() == "keep me"
    empty = tmp_path / "empty"
    empty.mkdir()
    check_writable(empty)  # an empty directory is fine without --force
    assert OfflineDataset.load(_dataset().save(empty)).meta["env"] == "mobility"


class DiskFull(OSError):
    pass


def _failing_savez(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    """numpy's writer fails half-way (disk full, Ctrl-C): it writes some bytes, then raises."""
    def savez(file: Any, *args: Any, **kwds: Any) -> None:
        file.write(b"PK\x03\x04 half an archive")
        raise exc
    monkeypatch.setattr(np, "savez_compressed", savez)


@pytest.mark.parametrize("exc", [DiskFull(28, "No space left on device"), KeyboardInterrupt()])
def test_failure_mid_save_leaves_no_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              exc: BaseException) -> None:
    ds = _dataset()
    _failing_savez(monkeypatch, exc)
    with pytest.raises(type(exc)):
        ds.save(tmp_path / "ds")
    assert os.listdir(tmp_path) == []


def test_failure_mid_overwrite_keeps_the_old_dataset(saved: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _failing_savez(monkeypatch, DiskFull(28, "No space left on device"))
    with pytest.raises(DiskFull):
        _dataset(reward=np.ones(EPISODES * STEPS)).save(saved, overwrite=True)
    monkeypatch.undo()
    assert sorted(p.name for p in saved.parent.iterdir()) == ["ds"]
    np.testing.assert_array_equal(OfflineDataset.load(saved).reward, _arrays()["reward"])


def test_failure_writing_meta_leaves_no_directory(tmp_path: Path) -> None:
    # a meta value JSON cannot hold fails after data.npz was written: nothing may remain
    ds = OfflineDataset(**_arrays(), meta=_meta(env_config={"bad": {1, 2}}))
    with pytest.raises(TypeError):
        ds.save(tmp_path / "ds")
    assert os.listdir(tmp_path) == []
