"""Offline OHIO datasets: states, low-level flows, rewards and episode ends, never high-level actions.

A dataset is a directory (see docs/methods/ohio-datasets.md)::

    meta.json   what was collected and how: env, scenario, family, the full env config, behaviour
                policy and its config, episodes, seed, transitions, the graph fingerprint, goal and
                flow dimensions, hieralloc version, git commit, creation time
    data.npz    the arrays (np.savez_compressed; always read with allow_pickle=False)

OHIO (Sec. 4, App. B.3.5 / B.4.5) learns the high level offline from such data: the flows a
behaviour policy's low-level controller executed are inverted into the goals that produce them
(:meth:`OfflineDataset.goals`), so the high-level actions never need to be stored, and data from
any behaviour policy (even one that is not hierarchical) can be used.

Writing is atomic: the directory is built under a temporary name beside the target and renamed
into place, so a crash leaves either no dataset or a complete one. Reading validates the format,
version, every array's presence, dtype, shape and finiteness, and the episode structure; each
problem is one :class:`~hieralloc.errors.DataError` naming the file, the field and the fix.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hieralloc.errors import DataError
from hieralloc.ohio.formulation import Formulation, GraphLayout
from hieralloc.runs import atomic_write_json

FORMAT = "hieralloc-ohio-dataset"
VERSION = 1
META_FILE = "meta.json"
DATA_FILE = "data.npz"

#: every array of data.npz: dtype and symbolic shape. T transitions, N nodes, Fx node features,
#: E message edges, Fe edge features, A raw quantities, L flow edges, P producers, F = L + P the
#: length of a flow vector (the flows on the L flow edges, then the production of the P producers).
ARRAYS: dict[str, tuple[type, tuple[str | int, ...]]] = {
    "x": (np.float32, ("T", "N", "Fx")),
    "edge_attr": (np.float32, ("T", "E", "Fe")),
    "aux": (np.float64, ("T", "A")),
    "next_x": (np.float32, ("T", "N", "Fx")),
    "next_edge_attr": (np.float32, ("T", "E", "Fe")),
    "next_aux": (np.float64, ("T", "A")),
    "flows": (np.float64, ("T", "F")),
    "reward": (np.float64, ("T",)),
    "terminated": (np.bool_, ("T",)),
    "done": (np.bool_, ("T",)),
    "episode": (np.int64, ("T",)),
    "step": (np.int64, ("T",)),
    "edge_index": (np.int64, (2, "E")),
    "flow_edges": (np.int64, (2, "L")),
    "producers": (np.int64, ("P",)),
}

#: meta.json keys and their types (extra keys, e.g. ``versions`` or ``episode_metrics``, are kept)
META_KEYS: dict[str, tuple[type, ...]] = {
    "format": (str,),
    "version": (int,),
    "env": (str,),
    "scenario": (str,),
    "family": (str,),
    "env_config": (dict,),
    "behaviour": (str,),
    "behaviour_config": (dict,),
    "episodes": (int,),
    "seed": (int,),
    "transitions": (int,),
    "fingerprint": (str,),
    "goal_dim": (int,),
    "flow_dim": (int,),
    "hieralloc_version": (str,),
    "git_commit": (str, type(None)),
    "created": (str,),
}

_FLOAT_FIELDS = ("x", "edge_attr", "aux", "next_x", "next_edge_attr", "next_aux", "flows", "reward")


def env_label(meta: dict[str, Any]) -> str:
    """The name to pass to ``hieralloc collect`` / ``train`` for a dataset's environment: its
    scenario when it was collected on one, else its environment."""
    return str(meta.get("scenario") or meta.get("env") or "?")


def _recollect_hint(meta: dict[str, Any] | None, path: Path | None) -> str:
    """The command that writes a fresh copy of this dataset (when its meta says how)."""
    if meta and all(isinstance(meta.get(k), (str, int)) for k in ("env", "behaviour", "episodes", "seed")):
        out = f" --out {path}" if path is not None else ""
        return (f"re-collect it: hieralloc collect {env_label(meta)} {meta['behaviour']} --episodes "
                f"{meta['episodes']} --seed {meta['seed']}{out} --force")
    return "re-collect it with 'hieralloc collect ENV BEHAVIOUR --episodes N --force'"


@dataclass(eq=False)
class OfflineDataset:
    """An offline dataset of OHIO transitions (arrays as in :data:`ARRAYS`, plus ``meta``).

    Row ``t`` is one environment step: the state before it (``x``, ``edge_attr``, ``aux``, as
    :meth:`Formulation.observe` returns them), the raw ``flows`` the low level executed
    (:meth:`Formulation.low_level`), the ``reward``, the state after it (``next_*``), and whether
    the episode ended there (``done``; ``terminated`` when it ended by termination rather than by
    the time limit). ``episode`` and ``step`` index the row. ``edge_index``, ``flow_edges`` and
    ``producers`` are the scenario's :class:`GraphLayout`, stored once.

    The constructor converts arrays to the format's dtypes where that loses no kind (e.g. float64
    node features become float32; floats are never turned into integers) and validates
    everything :meth:`load` validates. ``meta`` must hold every key of :data:`META_KEYS`;
    ``format``, ``version`` and ``transitions`` are filled in when absent.
    """

    x: np.ndarray
    edge_attr: np.ndarray
    aux: np.ndarray
    next_x: np.ndarray
    next_edge_attr: np.ndarray
    next_aux: np.ndarray
    flows: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    done: np.ndarray
    episode: np.ndarray
    step: np.ndarray
    edge_index: np.ndarray
    flow_edges: np.ndarray
    producers: np.ndarray
    meta: dict[str, Any]
    #: where the dataset was loaded from or last saved to (not stored in the files)
    path: Path | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        where = self._label()
        for name, (dtype, _shape) in ARRAYS.items():
            setattr(self, name, _coerce(name, getattr(self, name), dtype, where))
        meta = {"format": FORMAT, "version": VERSION, **dict(self.meta)}
        meta.setdefault("transitions", int(self.reward.shape[0]) if self.reward.ndim >= 1 else 0)
        self.meta = meta
        _validate_meta(meta, self._label(META_FILE), self.path)
        _validate_arrays(self, self._label(DATA_FILE))

    # ------------------------------------------------------------------ sizes
    def __len__(self) -> int:
        return int(self.reward.shape[0])

    @property
    def n_nodes(self) -> int:
        return int(self.x.shape[1])

    @property
    def n_episodes(self) -> int:
        return int(np.unique(self.episode).size)

    @property
    def goal_dim(self) -> int:
        return int(self.meta["goal_dim"])

    @property
    def flow_dim(self) -> int:
        return int(self.flows.shape[1])

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays of data.npz by name."""
        return {name: getattr(self, name) for name in ARRAYS}

    def _label(self, file: str | None = None) -> str:
        if self.path is None:
            return "OfflineDataset"
        return str(Path(self.path) / file) if file else str(self.path)

    # ------------------------------------------------------------------ OHIO
    def _check_family(self, formulation: Formulation) -> None:
        if formulation.family != self.meta["family"]:
            raise DataError(f"dataset '{self._label()}' was collected on a {self.meta['family']} environment "
                            f"({self.meta['env']}), the formulation given is for {formulation.family}; use "
                            f"get_formulation('{self.meta['family']}') or a dataset of this family")

    def goals(self, formulation: Formulation) -> np.ndarray:
        """(T, goal_dim) float64: the high-level goals that make the low-level controller execute
        the recorded flows, by the family's analytical inverse over all transitions at once
        (OHIO Sec. 4, App. B.3.5 / B.4.5)."""
        self._check_family(formulation)
        g = np.asarray(formulation.invert(self.aux, self.flows), dtype=np.float64)
        if g.shape != (len(self), self.goal_dim):
            raise DataError(f"the {formulation.family} inverse returned goals of shape {g.shape} for dataset "
                            f"'{self._label()}', which records goal_dim {self.goal_dim} ({META_FILE}); the "
                            f"dataset was written by another version of the formulation: "
                            f"{_recollect_hint(self.meta, self.path)}")
        return g

    def flow_actions(self, formulation: Formulation) -> np.ndarray:
        """(T, flow_dim) float64: the ``action_mode='flow'`` actions that execute the recorded flows
        (the end-to-end baselines' actions, OHIO App. B.3.3 / B.4.3)."""
        self._check_family(formulation)
        a = np.asarray(formulation.flow_action(self.aux, self.flows), dtype=np.float64)
        if a.shape != (len(self), self.flow_dim):
            raise DataError(f"the {formulation.family} flow-action map returned shape {a.shape} for dataset "
                            f"'{self._label()}' with flow_dim {self.flow_dim}; "
                            f"{_recollect_hint(self.meta, self.path)}")
        return a

    def check_layout(self, layout: GraphLayout, env_name: str | None = None) -> None:
        """Raise :class:`DataError` unless the dataset was collected on the graph ``layout``
        describes (same fingerprint, nodes, message edges, flow edges and producers). Call it
        before training on the dataset."""
        problems = []
        if layout.fingerprint != self.meta["fingerprint"]:
            problems.append("fingerprint")
        if int(layout.n_nodes) != self.n_nodes:
            problems.append("nodes")
        for name in ("edge_index", "flow_edges", "producers"):
            mine, theirs = getattr(self, name), np.asarray(getattr(layout, name))
            if mine.shape != theirs.shape or not np.array_equal(mine, theirs):
                problems.append(name)
        if not problems:
            return
        collected = env_label(self.meta)
        this = env_name or "another graph"
        raise DataError(
            f"dataset '{self._label()}' was collected on {collected}: fingerprint {self.meta['fingerprint']}, "
            f"{self.n_nodes} nodes, {self.edge_index.shape[1]} edges, {self.flow_edges.shape[1]} flow edges; this "
            f"environment "
            f"is {this}: fingerprint {layout.fingerprint}, {layout.n_nodes} nodes, {layout.n_edges} edges, "
            f"{layout.n_flow_edges} flow edges (differs in {', '.join(problems)}). Train on "
            f"{collected}, or collect a dataset on this environment with 'hieralloc collect'")

    # ------------------------------------------------------------------ summary
    def episode_returns(self) -> np.ndarray:
        """(episodes,) float64 sum of rewards of each episode, in episode order."""
        ids, inv = np.unique(self.episode, return_inverse=True)
        return np.bincount(inv.reshape(-1), weights=self.reward, minlength=ids.size).astype(np.float64)

    def summary(self) -> dict[str, Any]:
        """Episodes, transitions and the return per episode (mean, std, min, max), plus provenance
        (``name``: the scenario, or the environment when collected on no scenario)."""
        r = self.episode_returns()
        return {"env": self.meta["env"], "scenario": self.meta["scenario"], "name": env_label(self.meta),
                "behaviour": self.meta["behaviour"], "seed": int(self.meta["seed"]),
                "episodes": int(r.size), "transitions": len(self),
                "mean_return": float(r.mean()), "std_return": float(r.std()),
                "min_return": float(r.min()), "max_return": float(r.max()),
                "goal_dim": self.goal_dim, "flow_dim": self.flow_dim}

    # ------------------------------------------------------------------ files
    def save(self, path: Path | str, overwrite: bool = False) -> Path:
        """Write the dataset directory ``path`` atomically and return it.

        The files are written into a temporary directory beside ``path`` and renamed into place;
        on any failure the temporary directory is removed and ``path`` is untouched. An existing
        ``path`` is refused unless ``overwrite``, and even then only when it is a dataset
        directory (holding nothing but meta.json / data.npz) or empty.
        """
        path = Path(path)
        check_writable(path, overwrite)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
        try:
            with open(tmp / DATA_FILE, "wb") as fh:
                arrays: dict[str, Any] = self.arrays()
                np.savez_compressed(fh, **arrays)  # numeric arrays only (validated)
                fh.flush()
                os.fsync(fh.fileno())
            atomic_write_json(tmp / META_FILE, self.meta)
            _replace_dir(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.path = path
        return path

    @classmethod
    def load(cls, path: Path | str) -> OfflineDataset:
        """Read and validate a dataset directory (``allow_pickle=False``)."""
        path = Path(path)
        if not path.exists():
            raise DataError(f"dataset '{path}' does not exist; collect one with "
                            "'hieralloc collect ENV BEHAVIOUR --episodes N --out DIR'")
        if not path.is_dir():
            raise DataError(f"dataset '{path}' is a file; a dataset is the directory holding {META_FILE} and "
                            f"{DATA_FILE} (written by 'hieralloc collect')")
        meta = read_meta(path)
        data_path = path / DATA_FILE
        hint = _recollect_hint(meta, path)
        if not data_path.is_file():
            raise DataError(f"'{data_path}' is missing: the dataset is incomplete; {hint}")
        if not zipfile.is_zipfile(data_path):
            raise DataError(f"'{data_path}' is corrupt or not a numpy .npz archive (not a zip file); {hint}")
        arrays: dict[str, np.ndarray] = {}
        try:
            with np.load(data_path, allow_pickle=False) as npz:
                names = set(npz.files)
                unknown = sorted(names - set(ARRAYS))
                if unknown:
                    raise DataError(f"'{data_path}' holds array(s) {', '.join(unknown)} that format version "
                                    f"{VERSION} does not have (it stores states, flows, rewards and episode ends, "
                                    f"never high-level actions); {hint}")
                for name, (dtype, _shape) in ARRAYS.items():
                    if name not in names:
                        raise DataError(f"'{data_path}' lacks the array '{name}'; {hint}")
                    try:
                        a = npz[name]
                    except ValueError as e:  # object arrays need pickle, which is never allowed
                        raise DataError(f"'{data_path}' field '{name}' cannot be read without pickle ({e}); "
                                        f"datasets hold plain numeric arrays only; {hint}") from None
                    if a.dtype != np.dtype(dtype):
                        raise DataError(f"'{data_path}' field '{name}' has dtype {a.dtype}, the format has "
                                        f"{np.dtype(dtype)}; {hint}")
                    arrays[name] = a
        except DataError:
            raise
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, KeyError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DataError(f"'{data_path}' is corrupt or not a numpy .npz archive ({first[:160]}); {hint}"
                            ) from None
        return cls(**arrays, meta=meta, path=path)


# ---------------------------------------------------------------------------------------------
# validation


def read_meta(path: Path | str) -> dict[str, Any]:
    """Read and validate ``meta.json`` of the dataset directory ``path``."""
    meta_path = Path(path) / META_FILE
    if not meta_path.is_file():
        raise DataError(f"'{meta_path}' is missing: '{path}' is not a hieralloc dataset (or is incomplete); "
                        "collect one with 'hieralloc collect ENV BEHAVIOUR --episodes N'")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"'{meta_path}' is not valid JSON ({e}); "
                        "re-collect the dataset with 'hieralloc collect ... --force'") from None
    if not isinstance(meta, dict):
        raise DataError(f"'{meta_path}' must hold a JSON object, got {type(meta).__name__}; "
                        "re-collect the dataset with 'hieralloc collect ... --force'")
    _validate_meta(meta, str(meta_path), Path(path))
    return meta


def _validate_meta(meta: dict[str, Any], where: str, path: Path | None) -> None:
    if meta.get("format") != FORMAT:
        raise DataError(f"'{where}' field 'format' is {meta.get('format')!r}, not '{FORMAT}': this is not an OHIO "
                        "dataset; pass a directory written by 'hieralloc collect'")
    version = meta.get("version")
    if version != VERSION or isinstance(version, bool):
        raise DataError(f"'{where}' field 'version' is {version!r}; this hieralloc reads dataset format version "
                        f"{VERSION}; {_recollect_hint(meta, path)}")
    for key, types in META_KEYS.items():
        if key not in meta:
            raise DataError(f"'{where}' lacks the field '{key}'; {_recollect_hint(meta, path)}")
        v = meta[key]
        if not isinstance(v, types) or (isinstance(v, bool) and bool not in types):
            want = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise DataError(f"'{where}' field '{key}' must be {want}, got {type(v).__name__}; "
                            f"{_recollect_hint(meta, path)}")
    for key, low in (("episodes", 1), ("seed", 0), ("goal_dim", 1), ("flow_dim", 0), ("transitions", 1)):
        if meta[key] < low:
            raise DataError(f"'{where}' field '{key}' is {meta[key]}, must be >= {low}; "
                            f"{_recollect_hint(meta, path)}")
    for key in ("env", "family", "behaviour", "fingerprint"):
        if not meta[key]:
            raise DataError(f"'{where}' field '{key}' is empty; {_recollect_hint(meta, path)}")


def _coerce(name: str, value: Any, dtype: type, where: str) -> np.ndarray:
    a = np.asarray(value)
    want = np.dtype(dtype)
    if a.dtype == want:
        return a
    ok = (np.can_cast(a.dtype, want, casting="same_kind")
          and not (want.kind == "b" and a.dtype.kind != "b")
          and not (want.kind in "iu" and a.dtype.kind not in "biu"))
    if not ok:
        raise DataError(f"'{where}' field '{name}' has dtype {a.dtype}, the format has {want} "
                        f"(OfflineDataset converts only within a kind, e.g. float64 -> float32)")
    return a.astype(want)


def _validate_arrays(ds: OfflineDataset, where: str) -> None:
    hint = _recollect_hint(ds.meta, ds.path)
    dims: dict[str, int] = {}
    origin: dict[str, str] = {}
    for name, (_dtype, shape) in ARRAYS.items():
        a = getattr(ds, name)
        spec = "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
        if a.ndim != len(shape):
            raise DataError(f"'{where}' field '{name}' has shape {a.shape}, the format has {spec}; {hint}")
        for axis, (sym, size) in enumerate(zip(shape, a.shape, strict=True)):
            if isinstance(sym, int):
                if size != sym:
                    raise DataError(f"'{where}' field '{name}' has shape {a.shape}, the format has {spec}; {hint}")
            elif sym not in dims:
                dims[sym] = int(size)
                origin[sym] = f"{name} axis {axis}"
            elif dims[sym] != size:
                raise DataError(f"'{where}' field '{name}' has shape {a.shape}, the format has {spec} and "
                                f"{sym} = {dims[sym]} (from {origin[sym]}): inconsistent lengths; {hint}")
    T, N = dims["T"], dims["N"]
    if T < 1:
        raise DataError(f"'{where}' holds no transitions; collect at least one episode ({hint})")
    if ds.meta["transitions"] != T:
        raise DataError(f"'{where}' holds {T} transitions but {META_FILE} field 'transitions' says "
                        f"{ds.meta['transitions']}: inconsistent lengths; {hint}")
    if ds.meta["flow_dim"] != dims["F"]:
        raise DataError(f"'{where}' field 'flows' has {dims['F']} entries per row but {META_FILE} field 'flow_dim' "
                        f"says {ds.meta['flow_dim']}: inconsistent lengths; {hint}")
    if dims["F"] != dims["L"] + dims["P"]:
        raise DataError(f"'{where}' field 'flows' has {dims['F']} entries per row, the format has one per flow edge "
                        f"then one per producer: {dims['L']} + {dims['P']} (fields 'flow_edges', 'producers'): "
                        f"inconsistent lengths; {hint}")
    for name in _FLOAT_FIELDS:
        a = getattr(ds, name)
        bad = ~np.isfinite(a)
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise DataError(f"'{where}' field '{name}' holds NaN or inf (first at row {row}); the collecting "
                            f"environment produced non-finite values; {hint}")
    for name in ("edge_index", "flow_edges", "producers"):
        a = getattr(ds, name)
        if a.size and (a.min() < 0 or a.max() >= N):
            raise DataError(f"'{where}' field '{name}' refers to node {int(a.min() if a.min() < 0 else a.max())}, "
                            f"outside 0..{N - 1} (the {N} nodes of 'x'); {hint}")
    if (ds.terminated & ~ds.done).any():
        row = int(np.argmax(ds.terminated & ~ds.done))
        raise DataError(f"'{where}' field 'terminated' is set at row {row} where 'done' is not (done = "
                        f"terminated or truncated); {hint}")
    ep, st = ds.episode, ds.step
    if ep.min() < 0 or st.min() < 0:
        field_name = "episode" if ep.min() < 0 else "step"
        raise DataError(f"'{where}' field '{field_name}' holds negative indices; {hint}")
    same = ep[1:] == ep[:-1]
    if (ep[1:] < ep[:-1]).any():
        row = int(np.argmax(ep[1:] < ep[:-1])) + 1
        raise DataError(f"'{where}' field 'episode' decreases at row {row}: rows must be in episode order; {hint}")
    boundary = ~same
    if (boundary != ds.done[:-1]).any():
        row = int(np.argmax(boundary != ds.done[:-1]))
        what = "ends an episode without 'done'" if boundary[row] else "is 'done' but the episode continues"
        raise DataError(f"'{where}' row {row} {what} (fields 'episode' and 'done' disagree); {hint}")
    if not ds.done[-1]:
        raise DataError(f"'{where}' field 'done' is not set on the last row: the last episode is cut short; {hint}")
    if (same & (st[1:] != st[:-1] + 1)).any():
        row = int(np.argmax(same & (st[1:] != st[:-1] + 1))) + 1
        raise DataError(f"'{where}' field 'step' does not count up by one within episode {int(ep[row])} "
                        f"(row {row}); {hint}")
    n_eps = int(np.unique(ep).size)
    if n_eps != ds.meta["episodes"]:
        raise DataError(f"'{where}' holds {n_eps} episodes but {META_FILE} field 'episodes' says "
                        f"{ds.meta['episodes']}: inconsistent lengths; {hint}")


# ---------------------------------------------------------------------------------------------
# directories


def _is_dataset_dir(path: Path) -> bool:
    """A directory holding nothing but dataset files (what ``overwrite`` may replace)."""
    return path.is_dir() and all(p.name in (META_FILE, DATA_FILE) for p in path.iterdir())


def check_writable(path: Path | str, overwrite: bool = False) -> None:
    """Raise :class:`DataError` when a dataset may not be written to ``path``."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return
    if path.is_dir() and not any(path.iterdir()):
        return
    if not overwrite:
        raise DataError(f"dataset directory '{path}' already exists; pass --force to replace it or choose "
                        "another --out")
    if path.is_symlink() or not _is_dataset_dir(path):
        raise DataError(f"'{path}' exists and is not a dataset directory (it holds other files); refusing to "
                        "replace it even with --force; choose another --out")


def _replace_dir(tmp: Path, path: Path) -> None:
    """Rename the finished directory ``tmp`` to ``path``, replacing an empty or dataset directory there."""
    if not path.exists():
        os.rename(tmp, path)
        return
    if not any(path.iterdir()):
        os.rmdir(path)
        os.rename(tmp, path)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
    os.rmdir(old)
    os.rename(path, old)
    try:
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.rename(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)


__all__ = ["ARRAYS", "DATA_FILE", "FORMAT", "META_FILE", "META_KEYS", "VERSION", "OfflineDataset",
           "check_writable", "env_label", "read_meta"]
