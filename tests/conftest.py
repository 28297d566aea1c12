"""Shared fixtures. Tests that need real data fail (never skip) when the data directory lacks it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The data directory holding the real datasets (../shared/data in CI, via HIERALLOC_DATA_DIR)."""
    from hieralloc.data import data_dir

    root = data_dir()
    if not (root / "amod").is_dir():
        pytest.fail(f"real data not found in the data directory {root}: set HIERALLOC_DATA_DIR to the folder "
                    "holding amod/ (CI: ../shared/data). Real-data tests never skip.")
    return root


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess (``python -m hieralloc ...``)."""
    full_env = {**os.environ, **(env or {})}
    full_env.setdefault("PYTHONHASHSEED", "0")
    return subprocess.run([sys.executable, "-m", "hieralloc", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture
def cli():
    return run_cli


def state_tensors(state: Any) -> list[Any]:
    """Every tensor of a (nested) learner ``state_dict`` in a fixed order, for exact-resume checks."""
    import torch

    out: list[torch.Tensor] = []

    def walk(x: Any) -> None:
        if isinstance(x, torch.Tensor):
            out.append(x)
        elif isinstance(x, dict):
            for k in sorted(x, key=str):
                walk(x[k])
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v)

    walk(state)
    return out
