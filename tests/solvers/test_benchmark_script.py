"""Smoke test: the solver benchmark script runs end to end with --quick (no timing asserts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_benchmark_script_quick(tmp_path):
    pytest.importorskip("cvxpy")
    out = tmp_path / "solvers.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "solvers.py"), "--quick", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["quick"] is True
    assert set(report["results"]) == {"assignment_20x10", "assignment_100x20", "rebalancing_20",
                                      "rebalancing_100", "matching_50"}
    methods = report["results"]["assignment_20x10"]["methods"]
    assert {"ours_fast", "ours_lp", "scipy_linprog", "cvxpy_default"} <= set(methods)
    assert set(report["targets"]) == {"assignment_20x10_fast_vs_cvxpy", "rebalancing_20_reused_vs_linprog"}
    assert "versions" in report["machine"] and report["machine"]["versions"]["highspy"]
    md = out.with_suffix(".md").read_text()
    assert "| target |" in md and "assignment_20x10" in md
