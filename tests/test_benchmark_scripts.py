"""Smoke runs of the performance benchmark scripts (``--quick``, output to tmp): they must keep
working and write their JSON and Markdown reports. Timing targets are not asserted here; they live
in the committed full runs (benchmarks/results/)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# solvers.py and algo_throughput.py have their own smoke tests next to the code they measure
SCRIPTS = {
    "coverage_throughput": [],
    "mobility_step": [],
    "gdinet_reconstruction": ["--datasets", "toy", "--threads", "1"],
    "hgrl_planning": [],
    "ohio_inference": [],
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_benchmark_script_quick(tmp_path: Path, data_root: Path, name: str) -> None:
    out = tmp_path / f"{name}.json"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), "--quick", "--out", str(out),
                        *SCRIPTS[name]], capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert isinstance(json.loads(out.read_text()), dict)
    assert out.with_suffix(".md").read_text().startswith("#")


def test_run_all_rejects_unknown_names() -> None:
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run_all.py"), "nope"],
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 2 and "unknown benchmark(s) nope" in r.stderr
