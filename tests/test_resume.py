"""Resume after a kill: a real training subprocess is killed after its first checkpoint, resumed,
and must end with exactly the metrics of an unbroken run with the same seed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from hieralloc.eval import TIMING_KEYS
from hieralloc.runs import RunDir

ARGS = ["coverage-toy", "iql", "env.n_agents=3", "env.height=12", "env.width=12", "train.steps=600",
        "train.eval_every=200", "train.checkpoint_every=100", "train.eval_episodes=2",
        "algo.batch_size=16", "algo.updates_per_episode=8", "--seed", "4", "--quiet"]


def _train(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hieralloc", "train", *ARGS, "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=300, check=False)


def _untimed(d: dict) -> dict:
    return {k: v for k, v in d.items() if k not in TIMING_KEYS}


def test_kill_and_resume_matches_unbroken_run(tmp_path: Path) -> None:
    full = tmp_path / "full"
    r = _train(full)
    assert r.returncode == 0, r.stderr

    broken = tmp_path / "broken"
    proc = subprocess.Popen([sys.executable, "-m", "hieralloc", "train", *ARGS, "--out", str(broken)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    ckdir = broken / "checkpoints"
    deadline = time.time() + 240
    while time.time() < deadline:
        if ckdir.is_dir() and any(p.name.startswith("ckpt_") for p in ckdir.iterdir()):
            break
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "training finished before it could be killed; raise train.steps"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (broken / "summary.json").exists()

    r = _train(broken, "--resume")
    assert r.returncode == 0, r.stderr

    a = RunDir(full)
    b = RunDir(broken)
    # identical numbers; wall-clock timings (decision_ms, plan_ms) measure the machine, not the run
    assert _untimed(json.loads(a.summary_path.read_text())["final"]) == \
        _untimed(json.loads(b.summary_path.read_text())["final"])
    assert [_untimed(m) for m in a.read_metrics()] == [_untimed(m) for m in b.read_metrics()]
    # resuming a finished run is a no-op
    r = _train(broken, "--resume")
    assert r.returncode == 0, r.stderr


def test_resume_with_other_config_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = _train(out)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "hieralloc", "train", *ARGS, "algo.lr=0.01", "--out", str(out),
                        "--resume"], capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 2
    assert "algo_config.lr" in r.stderr and r.stderr.count("\n") == 1
    r = subprocess.run([sys.executable, "-m", "hieralloc", "train", *ARGS, "--out", str(out)],
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 2 and "already exists" in r.stderr
