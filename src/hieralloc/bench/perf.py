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


def decision_time_markdown(report: dict[str, Any], title: str, command: str, names: dict[str, str],
                           target_key: str, target_note: str = "") -> str:
    """Markdown of a per-decision timing benchmark (``hgrl_planning.py``, ``ohio_inference.py``):
    the machine, one row per policy in ``report["results"]`` (mean / median / worst episode, ms) and
    the target line for ``report["targets"][target_key]``."""
    m = report["machine"]
    lines = [
        f"# {title}",
        "",
        f"Command: `{command}`  ",
        f"Machine: {m['machine']}, Python {m['python']}, torch {m['versions'].get('torch', '?')}, 1 thread  ",
        f"Date: {report['date']}" + (" (quick smoke run)" if report["quick"] else "") + "  ",
        f"Load average (1 min) when it started: {m['load_average_1min']} on {m['cpu_count']} CPUs (times grow "
        "when other processes share the cores)",
        "",
        "| policy | mean ms / decision | median over episodes | worst episode |",
        "|---|---|---|---|",
    ]
    for k, v in report["results"].items():
        lines.append(f"| {names.get(k, k)} | {v['mean_ms']:.3f} | {v['median_ms']:.3f} | {v['max_episode_ms']:.3f} |")
    t = report["targets"][target_key]
    lines += ["", f"Target: <= {t['target']:g} ms per decision{target_note}: {t['value']:.3f} ms, "
              f"{'passed' if t['passed'] else 'MISSED'}.", ""]
    return "\n".join(lines)


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
