"""Shared plumbing of the performance benchmarks in ``benchmarks/`` (``make bench``).

Each benchmark script measures its targets as ratios within one run (or absolute floors), builds
a report dict with ``targets`` (name -> {..., "passed": bool}), and hands it to
:func:`write_perf_report`, which writes the JSON and Markdown files and gives the exit status.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path
from typing import Any


def machine_info(packages: Iterable[str]) -> dict[str, Any]:
    """Interpreter, platform, CPUs, load and the versions of ``packages`` (absent ones omitted)."""
    versions = {}
    for pkg in packages:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or "unknown",
        "cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "versions": versions,
    }


def write_perf_report(report: dict[str, Any], out: str | Path, to_markdown: Callable[[dict[str, Any]], str],
                      quick: bool) -> int:
    """Write ``out`` (JSON) and its ``.md`` twin; exit status 1 when a target failed in a full run.

    ``report["all_targets_passed"]`` is set from ``report["targets"]``. Quick (smoke) runs record
    pass/fail but always return 0, so timing noise cannot fail a smoke test.
    """
    report["all_targets_passed"] = all(t["passed"] for t in report.get("targets", {}).values())
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    path.with_suffix(".md").write_text(to_markdown(report), encoding="utf-8")
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return 1 if not report["all_targets_passed"] and not quick else 0
