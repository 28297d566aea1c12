"""An interrupted `hieralloc bench` leaves no worker processes behind (real CLI, real worker pool).

SIGTERM reaches only the parent; it stops its workers and exits 143. A parent killed outright
(SIGKILL) cannot, so each worker watches its parent and exits when it is gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads worker processes from /proc")

SPEC = """\
name: slow-cells
envs: [coverage-small]
algos: [random]
seeds: 2
budget: {train.eval_episodes: 1000000}
"""


def _stat(pid: int) -> tuple[str, int] | None:
    """(state letter, parent pid) of a live process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1])


def _workers(parent: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = _stat(int(d))
        try:
            cmd = Path(f"/proc/{d}/cmdline").read_bytes()
        except OSError:
            continue
        if st is not None and st[1] == parent and b"spawn_main" in cmd:
            out.append(int(d))
    return out


def _alive(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[0] != "Z"  # a zombie has exited; only its parent's reaping is left


def _start(tmp_path: Path) -> tuple[subprocess.Popen[str], list[int]]:
    spec = tmp_path / "slow.yaml"
    spec.write_text(SPEC)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hieralloc", "bench", str(spec), "--jobs", "2", "--out", str(tmp_path / "b"), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    deadline = time.monotonic() + 120
    workers: list[int] = []
    while time.monotonic() < deadline and proc.poll() is None:
        workers = _workers(proc.pid)
        # both workers exist and both cells have started writing their run directories
        if len(workers) == 2 and len(list((tmp_path / "b").glob("runs/*/*/seed_*/config.yaml"))) == 2:
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()
    assert len(workers) == 2, "the bench did not start two workers"
    return proc, workers


def _gone(pids: list[int], within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not any(_alive(p) for p in pids):
            return True
        time.sleep(0.2)
    return False


def test_sigterm_stops_the_workers_and_exits_143(tmp_path: Path) -> None:
    proc, workers = _start(tmp_path)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert "interrupted" in err and "Traceback" not in err
    assert _gone(workers, 15)


def test_workers_exit_when_the_parent_is_killed(tmp_path: Path) -> None:
    proc, workers = _start(tmp_path)
    proc.kill()
    proc.wait(timeout=30)
    try:
        assert _gone(workers, 15), "orphaned bench workers kept running"
    finally:
        for p in workers:
            if _alive(p):
                os.kill(p, signal.SIGKILL)
