"""Smoke test: the LPMARL assignment-layer benchmark runs end to end with --quick (no timing asserts;
the targets live in the committed full run, benchmarks/results/lpmarl_assignment.json)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_assignment_benchmark_quick(tmp_path):
    pytest.importorskip("cvxpy")
    out = tmp_path / "lpmarl_assignment.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "lpmarl_assignment.py"), "--quick", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["quick"] is True
    assert {"ours", "ours_lp", "ours_perturbed", "cvxpy", "cvxpy_param", "ours_batch32",
            "cvxpy_batch32"} == set(report["steps"])
    assert set(report["targets"]) == {"ours_median_step_ms", "cvxpy_over_ours"}
    assert report["check"]["same_Z"] is True and report["check"]["max_grad_diff"] <= 1e-6
    md = out.with_suffix(".md").read_text()
    assert md.startswith("# LPMARL assignment-layer benchmark") and "| cvxpy_over_ours |" in md
