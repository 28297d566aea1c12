"""Run directories, atomic writes, version capture and checkpoints.

Layout of a run (``runs/<experiment>/<run-id>/`` by default, or the ``--out`` directory)::

    config.yaml        resolved config: env, algo, seed and every section's values
    seed               the seed, as text
    versions.json      python, torch, numpy, scipy, highspy, hieralloc, git commit
    metrics.jsonl      one JSON object per line: {"step", "phase", <metric>: value}
    checkpoints/       ckpt_<step>.pt (state dicts only; loaded with weights_only=True)
    summary.json       final evaluation and run facts, written last

Every file is written to a temporary name in the same directory and renamed into place, so a
crash at any moment leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from hieralloc.errors import CheckpointError

CHECKPOINT_FORMAT = "hieralloc-checkpoint"
CHECKPOINT_VERSION = 1
_CKPT_RE = re.compile(r"^ckpt_(\d+)\.pt$")


# ---------------------------------------------------------------------------------------------
# Atomic file writes


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def dump_yaml(obj: Any) -> str:
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False)


def config_hash(tree: Mapping[str, Any]) -> str:
    """Stable short hash of a resolved config tree (used to match runs and bench cells)."""
    blob = json.dumps(tree, sort_keys=True, default=_json_default).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# Versions


def git_commit(start: Path | None = None) -> str | None:
    """The commit of the checkout hieralloc is imported from (or ``start``), if it is a git checkout."""
    here = Path(start or Path(__file__).resolve().parent)
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    commit = out.stdout.strip()
    try:
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        dirty = ""
    return commit + ("-dirty" if dirty else "")


def versions() -> dict[str, str | None]:
    """Versions of the interpreter and of every package whose numbers a result depends on."""
    import highspy  # noqa: F401
    import numpy
    import scipy
    import torch

    import hieralloc

    try:
        from importlib.metadata import version as _v

        highs_v: str | None = _v("highspy")
    except Exception:  # pragma: no cover - metadata missing in odd installs
        highs_v = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "highspy": highs_v,
        "hieralloc": hieralloc.__version__,
        "git_commit": git_commit(),
    }


# ---------------------------------------------------------------------------------------------
# Run directory


class RunDir:
    """A run's directory: config, metrics log, checkpoints and summary."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    # files
    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def summary_path(self) -> Path:
        return self.path / "summary.json"

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    def exists(self) -> bool:
        return self.config_path.is_file()

    def is_finished(self) -> bool:
        return self.summary_path.is_file()

    def create(self, config_tree: Mapping[str, Any], seed: int) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.config_path, dump_yaml(dict(config_tree)))
        atomic_write_text(self.path / "seed", f"{seed}\n")
        atomic_write_json(self.path / "versions.json", versions())
        atomic_write_text(self.metrics_path, "")

    def read_config(self) -> dict[str, Any]:
        if not self.config_path.is_file():
            raise CheckpointError(f"'{self.path}' is not a run directory (no config.yaml); "
                                  "pass the directory that 'hieralloc train' created")
        try:
            data = yaml.safe_load(self.config_path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise CheckpointError(f"'{self.config_path}' is not valid YAML ({e}); the run is damaged") from None
        if not isinstance(data, dict) or "env" not in data or "algo" not in data:
            raise CheckpointError(f"'{self.config_path}' lacks the env/algo entries of a hieralloc run")
        return data

    # metrics
    def log(self, record: Mapping[str, Any]) -> None:
        """Append one JSON line to metrics.jsonl (flushed and fsynced)."""
        line = json.dumps(dict(record), sort_keys=True, default=_json_default) + "\n"
        with open(self.metrics_path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def metrics_size(self) -> int:
        return self.metrics_path.stat().st_size if self.metrics_path.exists() else 0

    def truncate_metrics(self, size: int) -> None:
        """Cut metrics.jsonl back to ``size`` bytes (the size recorded with a checkpoint)."""
        data = self.metrics_path.read_bytes() if self.metrics_path.exists() else b""
        if len(data) < size:
            raise CheckpointError(f"metrics.jsonl in '{self.path}' is shorter than the checkpoint "
                                  "recorded; the run directory was modified, start a new run")
        atomic_write_bytes(self.metrics_path, data[:size])

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.exists():
            return []
        out = []
        for i, line in enumerate(self.metrics_path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                raise CheckpointError(f"{self.metrics_path}:{i} is not valid JSON") from None
        return out

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        atomic_write_json(self.summary_path, dict(summary))

    def read_summary(self) -> dict[str, Any]:
        try:
            data = json.loads(self.summary_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CheckpointError(f"'{self.path}' has no summary.json: the run has not finished") from None
        except json.JSONDecodeError as e:
            raise CheckpointError(f"'{self.summary_path}' is not valid JSON ({e})") from None
        if not isinstance(data, dict):
            raise CheckpointError(f"'{self.summary_path}' is not a JSON object")
        return data

    # checkpoints
    def checkpoints(self) -> list[tuple[int, Path]]:
        if not self.checkpoint_dir.is_dir():
            return []
        found = []
        for p in self.checkpoint_dir.iterdir():
            m = _CKPT_RE.match(p.name)
            if m:
                found.append((int(m.group(1)), p))
        return sorted(found)

    def save_checkpoint(self, step: int, payload: Mapping[str, Any], run_hash: str, keep: int = 2) -> Path:
        """Atomically write ``ckpt_<step>.pt`` and keep the newest ``keep`` checkpoints."""
        import torch

        buf = io.BytesIO()
        torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "run_hash": run_hash,
                    "step": int(step), "payload": dict(payload)}, buf)
        path = self.checkpoint_dir / f"ckpt_{step:012d}.pt"
        atomic_write_bytes(path, buf.getvalue())
        for _, old in self.checkpoints()[:-keep]:
            with contextlib.suppress(FileNotFoundError):
                old.unlink()
        return path

    def latest_checkpoint(self, run_hash: str) -> dict[str, Any] | None:
        """Load the newest checkpoint, or None when there is none."""
        ckpts = self.checkpoints()
        if not ckpts:
            return None
        return load_checkpoint(ckpts[-1][1], run_hash)


def load_checkpoint(path: Path, run_hash: str | None = None) -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``) and check it belongs to this run."""
    import pickle

    import torch

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint '{path}' does not exist") from None
    except (RuntimeError, pickle.UnpicklingError, EOFError, OSError, ValueError, AttributeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"checkpoint '{path}' is corrupt or not a hieralloc checkpoint ({first[:160]}); delete it to "
            "resume from the previous one, or start a new run without --resume"
        ) from None
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"'{path}' is not a hieralloc checkpoint (foreign file); "
                              "start a new run without --resume")
    if data.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"checkpoint '{path}' has format version {data.get('version')}, "
                              f"this hieralloc reads version {CHECKPOINT_VERSION}")
    if run_hash is not None and data.get("run_hash") != run_hash:
        raise CheckpointError(f"checkpoint '{path}' belongs to a run with a different config; "
                              "resume with the original config or start a new run")
    return data


def iter_run_dirs(root: Path) -> Iterator[RunDir]:
    """Every run directory (one holding config.yaml) under ``root``."""
    for cfg in sorted(Path(root).rglob("config.yaml")):
        yield RunDir(cfg.parent)
