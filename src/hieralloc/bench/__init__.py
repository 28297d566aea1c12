"""Benchmarks: specs (YAML or presets), a resumable parallel runner, and reports.

``run_bench(spec, out)`` runs every env x algo x seed cell through
:func:`hieralloc.train.run_training`, then :func:`~hieralloc.bench.report.write_report` writes
``results.json`` (marl-eval layout), ``results.md`` and PNG plots. See docs/benchmarks.md.
"""

from typing import Any

from hieralloc.bench.spec import BenchSpec, Cell, Entry, MetricSpec, ReferenceSpec, load_spec, validate_spec

__all__ = [
    "BenchSpec",
    "Cell",
    "Entry",
    "MetricSpec",
    "ReferenceSpec",
    "load_spec",
    "plot_results",
    "run_bench",
    "validate_spec",
    "write_report",
]


def __getattr__(name: str) -> Any:
    # runner and report import matplotlib/rich lazily: keep 'import hieralloc.bench' light
    if name == "run_bench":
        from hieralloc.bench.runner import run_bench

        return run_bench
    if name in ("write_report", "plot_results"):
        from hieralloc.bench import report

        return getattr(report, name)
    raise AttributeError(f"module 'hieralloc.bench' has no attribute {name!r}")
