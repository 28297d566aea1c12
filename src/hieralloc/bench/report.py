"""Benchmark reports: results.json (marl-eval layout), results.md, bench.json and PNG plots.

``results.json`` follows marl-eval's raw-data layout (docs/benchmarks.md)::

    {family: {task: {algo: {"seed_<s>": {
        "step_<k>": {"step_count": <env steps>, <metric>: [values], ...},   # k = 0, 1, ... in step order
        "absolute_metrics": {<metric>: [one value per final evaluation episode]}}}}}}

``family`` is the environment family (``coverage``), ``task`` the env/scenario label of the spec,
``algo`` the algorithm label. Intermediate evaluation points (``metrics.jsonl`` eval lines) hold a
one-element list (the mean over that evaluation's episodes); the last point and
``absolute_metrics`` hold the per-episode values of the final evaluation. Non-finite values are
written as ``null``.

``bench.json`` holds what marl-eval's layout has no room for: the spec, metric directions, and the
aggregated statistics (mean, std, IQM, bootstrap CIs) per task, algorithm and metric.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hieralloc.bench.spec import BenchSpec, MetricSpec
from hieralloc.errors import HierallocError
from hieralloc.eval.stats import bootstrap_ci, stack_ragged, summarize

ARROW = {"higher": "↑", "lower": "↓"}


@dataclass
class CellData:
    family: str
    task: str
    algo: str
    seed: int
    steps: int
    episodes: list[dict[str, float]]
    evals: list[tuple[int, dict[str, float]]]
    extra: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class Report:
    """What :func:`write_report` produced: paths, summaries and notes."""

    spec: BenchSpec
    out: Path
    results: dict[str, Any]
    summaries: dict[str, dict[str, dict[str, dict[str, float | int]]]]
    metrics: tuple[MetricSpec, ...]
    families: dict[str, str]
    full_information: list[str]
    missing: list[str]
    notes: list[str]
    relative: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Collecting finished cells


def _finite(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _read_cell(run_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    from hieralloc.errors import CheckpointError
    from hieralloc.runs import RunDir

    rd = RunDir(run_dir)
    if not rd.is_finished():
        return None
    try:
        return rd.read_summary(), rd.read_metrics()
    except CheckpointError:
        return None


def collect(spec: BenchSpec, out: Path) -> tuple[list[CellData], list[str]]:
    """The finished cells of ``spec`` under ``out`` and the titles of the missing ones."""
    from hieralloc.registry import get_env

    cells: list[CellData] = []
    missing: list[str] = []
    family = {e.label: get_env(e.name).family for e in spec.envs}
    for cell in spec.cells():
        got = _read_cell(out / cell.rel_dir())
        if got is None:
            missing.append(cell.title())
            continue
        summary, lines = got
        episodes = [
            {str(k): float(v) for k, v in ep.items() if _finite(v) is not None or _isnan(v)}
            for ep in summary.get("episodes", [])
            if isinstance(ep, Mapping)
        ]
        evals: dict[int, dict[str, float]] = {}
        for line in lines:
            if line.get("phase") == "eval" and isinstance(line.get("step"), int):
                evals[int(line["step"])] = {
                    k: float(v) for k, v in line.items() if k not in ("step", "phase") and _finite(v) is not None
                }
        cells.append(
            CellData(
                family[cell.env.label],
                cell.env.label,
                cell.algo.label,
                cell.seed,
                int(summary.get("steps", 0)),
                episodes,
                sorted(evals.items()),
            )
        )
    return cells, missing


def _isnan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def add_reference_fraction(spec: BenchSpec, cells: list[CellData]) -> list[str]:
    """Per episode ``numerator / bound`` against the reference cell with the same task and seed.

    Episodes are paired by index: cells with the same seed evaluate the same episode seeds
    (``episode_seed(seed + EVAL_SEED_OFFSET, i)``). Episodes with a non-positive or missing bound
    are left out. Returns notes explaining what could not be computed.
    """
    ref = spec.reference
    if ref is None:
        return []
    notes: list[str] = []
    refs = {(c.task, c.seed): c for c in cells if c.algo in ref.labels}
    for c in cells:
        r = refs.get((c.task, c.seed))
        if r is None:
            continue
        fr = []
        for ep, rep in zip(c.episodes, r.episodes, strict=False):
            num, bound = _finite(ep.get(ref.numerator)), _finite(rep.get(ref.bound))
            if num is None or bound is None or bound <= 0:
                continue
            fr.append(ref.scale * num / bound)
        if fr:
            c.extra[ref.key] = fr
        elif c.episodes:
            has_num = any(ref.numerator in ep for ep in c.episodes)
            has_bound = any(ref.bound in ep for ep in r.episodes)
            why = (
                f"'{c.algo}' reports no metric '{ref.numerator}'"
                if not has_num
                else f"reference '{r.algo}' reports no metric '{ref.bound}'"
                if not has_bound
                else "every bound is zero"
            )
            note = f"{ref.label} on {c.task}: {why}"
            if note not in notes:
                notes.append(note)
    return notes


# ---------------------------------------------------------------------------------------------
# marl-eval results.json


def _json_value(v: float) -> float | None:
    return v if math.isfinite(v) else None


def _episode_lists(episodes: list[dict[str, float]], extra: Mapping[str, list[float]]) -> dict[str, list[Any]]:
    keys: list[str] = []
    for ep in episodes:
        keys.extend(k for k in ep if k not in keys)
    out: dict[str, list[Any]] = {}
    for k in keys:
        if all(k in ep for ep in episodes):
            out[k] = [_json_value(ep[k]) for ep in episodes]
    for k, vals in extra.items():
        out[k] = [_json_value(v) for v in vals]
    return out


def marl_eval_results(cells: Sequence[CellData]) -> dict[str, Any]:
    """The nested marl-eval dictionary of the finished cells."""
    results: dict[str, Any] = {}
    for c in cells:
        run: dict[str, Any] = {}
        final = _episode_lists(c.episodes, c.extra)
        points = [(s, m) for s, m in c.evals if s != c.steps] + [(c.steps, {})]
        for k, (step, means) in enumerate(points):
            if step == c.steps:
                run[f"step_{k}"] = {"step_count": int(step), **final}
            else:
                run[f"step_{k}"] = {
                    "step_count": int(step),
                    **{m: [_json_value(v)] for m, v in means.items()},
                }
        run["absolute_metrics"] = final
        results.setdefault(c.family, {}).setdefault(c.task, {}).setdefault(c.algo, {})[f"seed_{c.seed}"] = run
    return results


def iter_runs(results: Mapping[str, Any]) -> list[tuple[str, str, str, str, dict[str, Any]]]:
    """(family, task, algo, seed key, run dict) for every run of a marl-eval dictionary."""
    out = []
    for fam, tasks in results.items():
        for task, algos in tasks.items():
            for algo, runs in algos.items():
                for seed_key, run in runs.items():
                    out.append((fam, task, algo, seed_key, run))
    return out


def _values(lst: Sequence[Any]) -> list[float]:
    return [float("nan") if v is None else float(v) for v in lst]


def summarize_results(
    results: Mapping[str, Any],
    metrics: Sequence[str],
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, dict[str, dict[str, float | int]]]]:
    """task -> algo -> metric -> summary dict, over seeds of ``absolute_metrics``."""
    per: dict[str, dict[str, dict[str, list[list[float]]]]] = {}
    for _fam, task, algo, _seed, run in iter_runs(results):
        absm = run.get("absolute_metrics", {})
        for m in metrics:
            if m in absm:
                vals = [v for v in _values(absm[m]) if math.isfinite(v)]
                if vals:
                    per.setdefault(task, {}).setdefault(algo, {}).setdefault(m, []).append(vals)
    out: dict[str, dict[str, dict[str, dict[str, float | int]]]] = {}
    for task, algos in per.items():
        for algo, ms in algos.items():
            for m, rows in ms.items():
                s = summarize(stack_ragged(rows), confidence=confidence, reps=reps, seed=seed)
                out.setdefault(task, {}).setdefault(algo, {})[m] = s.to_dict()
    return out


def relative_scores(
    spec: BenchSpec, summaries: Mapping[str, Any], full_information: Sequence[str]
) -> dict[str, dict[str, dict[str, float]]]:
    """task -> score key -> algo -> ``0.5 minmax(mean higher) - 0.5 minmax(mean lower)`` over the
    deployable algorithms of the task that report both metrics (HGRL Table 1's Score scaling)."""
    if not spec.relative_scores:
        return {}
    from hieralloc.envs.coverage.metrics import relative_score

    out: dict[str, dict[str, dict[str, float]]] = {}
    for task, summ in summaries.items():
        for rs in spec.relative_scores:
            algos = [
                a.label
                for a in spec.algos
                if a.label not in full_information
                and rs.higher in summ.get(a.label, {})
                and rs.lower in summ.get(a.label, {})
            ]
            if not algos:
                continue
            hi = [float(summ[a][rs.higher]["mean"]) for a in algos]
            lo = [float(summ[a][rs.lower]["mean"]) for a in algos]
            vals = relative_score(hi, lo)
            out.setdefault(task, {})[rs.key] = {a: float(v) for a, v in zip(algos, vals, strict=True)}
    return out


# ---------------------------------------------------------------------------------------------
# Tables


def _fmt(v: float, digits: int = 4) -> str:
    if not math.isfinite(v):
        return "–"
    return f"{v:.{digits}g}"


def _best(
    algos: Sequence[str],
    summ: Mapping[str, Mapping[str, Mapping[str, float | int]]],
    metric: MetricSpec,
    exclude: Sequence[str],
    stat: str,
) -> set[str]:
    """The deployable algorithms (ties included) with the best ``stat`` of ``metric``."""
    cands = {
        a: float(summ[a][metric.key][stat])
        for a in algos
        if a not in exclude and metric.key in summ.get(a, {}) and math.isfinite(float(summ[a][metric.key][stat]))
    }
    if not cands:
        return set()
    target = max(cands.values()) if metric.direction == "higher" else min(cands.values())
    return {a for a, v in cands.items() if v == target}


def table_rows(
    task: str,
    algos: Sequence[str],
    summaries: Mapping[str, Any],
    metrics: Sequence[MetricSpec],
    full_information: Sequence[str],
    stat: str = "mean",
) -> tuple[list[str], list[list[tuple[str, bool]]]]:
    """Header and rows of (text, is_best) cells: ``stat [low, high]`` per metric."""
    summ = summaries.get(task, {})
    lo_key, hi_key = ("ci_low", "ci_high") if stat == "mean" else ("iqm_ci_low", "iqm_ci_high")
    header = ["algorithm"] + [f"{m.title} {ARROW[m.direction]}" for m in metrics]
    best = {m.key: _best(algos, summ, m, full_information, stat) for m in metrics}
    rows = []
    for a in algos:
        name = a + (" †" if a in full_information else "")
        row: list[tuple[str, bool]] = [(name, False)]
        for m in metrics:
            s = summ.get(a, {}).get(m.key)
            if s is None:
                row.append(("–", False))
            else:
                row.append(
                    (
                        f"{_fmt(float(s[stat]))} [{_fmt(float(s[lo_key]), 3)}, {_fmt(float(s[hi_key]), 3)}]",
                        a in best[m.key],
                    )
                )
        rows.append(row)
    return header, rows


def _md_table(header: list[str], rows: list[list[tuple[str, bool]]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(f"**{t}**" if b else t for t, b in row) + " |")
    return "\n".join(lines)


def curve_summary(
    results: Mapping[str, Any], task: str, algo: str, metric: str, confidence: float, reps: int, seed: int
) -> dict[str, float] | None:
    """EPyMARL's two learning-curve numbers (Papoudakis et al. 2021, Sec. 4.4) for one algorithm.

    *maximum*: the largest mean over seeds at any evaluation point, with the bootstrap CI over seeds
    at that point; *average*: each seed's mean over all its evaluation points, averaged over seeds,
    with the bootstrap CI over seeds. None when the algorithm has fewer than two evaluation points.
    """
    from hieralloc.eval.stats import summarize

    xs, curve = _curve_points(results, task, algo, metric)
    if curve.size == 0 or curve.shape[1] < 2:
        return None
    k = int(np.argmax(curve.mean(axis=0)))
    at_max = summarize(curve[:, k], confidence, reps, seed)
    avg = summarize(curve.mean(axis=1), confidence, reps, seed)
    return {"max": at_max.mean, "max_lo": at_max.ci_low, "max_hi": at_max.ci_high, "max_step": xs[k],
            "avg": avg.mean, "avg_lo": avg.ci_low, "avg_hi": avg.ci_high}


def curve_summary_markdown(report: Report) -> list[str]:
    """Markdown tables of :func:`curve_summary` per task and metric (learners only)."""
    spec = report.spec
    conf = int(round(spec.stats.confidence * 100))
    parts: list[str] = []
    for e in spec.envs:
        for m in report.metrics:
            rows = []
            for a in spec.algos:
                cs = curve_summary(report.results, e.label, a.label, m.key, spec.stats.confidence,
                                   spec.stats.reps, spec.stats.seed)
                if cs is not None:
                    rows.append(f"| {a.label} | {_fmt(cs['max'])} [{_fmt(cs['max_lo'], 3)}, {_fmt(cs['max_hi'], 3)}] "
                                f"| {int(cs['max_step'])} | {_fmt(cs['avg'])} [{_fmt(cs['avg_lo'], 3)}, "
                                f"{_fmt(cs['avg_hi'], 3)}] |")
            if rows:
                parts += [f"### {e.label}: {m.title} over training", "",
                          f"| algorithm | maximum [{conf}% CI] | at step | average over evaluations [{conf}% CI] |",
                          "|---|---:|---:|---:|", *rows, ""]
    if parts:
        parts = ["## Learning curves (EPyMARL's maximum and average returns)", "",
                 "maximum: the largest mean over seeds at any evaluation point (CI over seeds at that point); "
                 "average: each seed's mean over all its evaluation points, then over seeds "
                 "(Papoudakis et al. 2021, Sec. 4.4).", "", *parts]
    return parts


def markdown(report: Report) -> str:
    spec = report.spec
    conf = int(round(spec.stats.confidence * 100))
    n_cells = len(spec.cells())
    parts = [f"# Benchmark: {spec.name}", ""]
    if spec.description:
        parts += [spec.description, ""]
    parts += [
        f"Seeds {', '.join(map(str, spec.seeds))}; {n_cells - len(report.missing)} of {n_cells} cells "
        "finished. Each entry is the mean over seeds and final evaluation episodes with a "
        f"{conf}% stratified bootstrap confidence interval [low, high] ({spec.stats.reps} resamples, "
        "percentile method); the second table gives the interquartile mean (IQM) the same way. "
        "↑: higher is better, ↓: lower is better; bold: best "
        "deployable method."
        + (
            " †: uses information a deployed method cannot have (an upper bound, not a competitor)."
            if report.full_information
            else ""
        ),
        "",
    ]
    if spec.reference is not None:
        r = spec.reference
        parts += [
            f"*{r.label}* (`{r.key}`): per episode, the method's `{r.numerator}` divided by "
            f"`{r.bound}` of {' / '.join(f'`{x}`' for x in r.labels)} on the same episode seed, then aggregated "
            "like the other metrics.",
            "",
        ]
    for e in spec.envs:
        task = e.label
        algos = [a.label for a in spec.algos if a.runs_on(task)]
        parts += [f"## {task} ({report.families.get(task, '?')})", ""]
        if task not in report.summaries:
            parts += ["No finished cells.", ""]
            continue
        h, rows = table_rows(task, algos, report.summaries, report.metrics, report.full_information, "mean")
        parts += [_md_table(h, rows), ""]
        h, rows = table_rows(task, algos, report.summaries, report.metrics, report.full_information, "iqm")
        parts += ["IQM:", "", _md_table(h, rows), ""]
        rel = report.relative.get(task, {})
        if rel:
            specs = [r for r in spec.relative_scores if r.key in rel]
            names = [a for a in algos if any(a in rel[r.key] for r in specs)]
            parts += [
                "Relative scores (0.5 min-max(mean of the ↑ metric) − 0.5 min-max(mean of the ↓ metric) "
                "across the deployable methods of this table, as HGRL Table 1; no interval):",
                "",
                "| algorithm | " + " | ".join(f"{r.title} ({r.higher} ↑, {r.lower} ↓)" for r in specs) + " |",
                "|---|" + "---:|" * len(specs),
            ]
            for a in names:
                parts.append(f"| {a} | " + " | ".join(_fmt(rel[r.key].get(a, float("nan"))) for r in specs) + " |")
            parts.append("")
    curve_md = curve_summary_markdown(report)
    if curve_md:
        parts += curve_md
    if report.missing:
        parts += ["## Missing cells", ""] + [f"- {m}" for m in report.missing] + [""]
    if report.notes:
        parts += ["## Notes", ""] + [f"- {n}" for n in report.notes] + [""]
    plots = [p for p in report.files if p.suffix == ".png"]
    if plots:
        parts += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots] + [""]
    return "\n".join(parts)


def print_report(report: Report, console: Any = None) -> None:
    """Print one compact rich table per task to the terminal: metrics as rows, algorithms as
    columns, ``mean ±h`` with ``h`` the half-width of the bootstrap CI (full intervals and IQM are
    in results.md)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    conf = int(round(report.spec.stats.confidence * 100))
    algos = [a.label for a in report.spec.algos]
    for e in report.spec.envs:
        task = e.label
        summ = report.summaries.get(task)
        if not summ:
            continue
        shown = [a for a in algos if a in summ]
        t = Table(
            title=f"{report.spec.name}: {task}",
            caption=f"mean ± half-width of the {conf}% bootstrap CI over seeds; bold: best deployable",
        )
        t.add_column("metric")
        for a in shown:
            t.add_column(a + (" †" if a in report.full_information else ""), justify="right")
        for m in report.metrics:
            best = _best(shown, summ, m, report.full_information, "mean")
            cells = []
            for a in shown:
                s = summ[a].get(m.key)
                if s is None:
                    cells.append("–")
                    continue
                half = (float(s["ci_high"]) - float(s["ci_low"])) / 2
                txt = f"{_fmt(float(s['mean']), 3)} ±{_fmt(half, 2)}"
                cells.append(f"[bold green]{txt}[/bold green]" if a in best else txt)
            t.add_row(f"{m.title} {ARROW[m.direction]}", *cells)
        for rs in report.spec.relative_scores:
            rel = report.relative.get(task, {}).get(rs.key)
            if rel:
                t.add_row(f"{rs.title} ↑", *[_fmt(rel[a], 3) if a in rel else "–" for a in shown])
        console.print(t)
    for n in report.notes:
        console.print(f"note: {n}", highlight=False)
    console.print(f"report: {report.out / 'results.md'}", highlight=False, soft_wrap=True)


# ---------------------------------------------------------------------------------------------
# Writing everything


def write_report(spec: BenchSpec, out: Path) -> Report:
    """Collect the finished cells under ``out`` and write results.json, bench.json, results.md, plots."""
    from hieralloc.registry import get_algo
    from hieralloc.runs import atomic_write_json, atomic_write_text

    out = Path(out)
    cells, missing = collect(spec, out)
    notes = add_reference_fraction(spec, cells)
    results = marl_eval_results(cells)
    metrics = spec.report_metrics()
    if not metrics:  # no metrics named: report every per-episode metric
        keys: list[str] = []
        for c in cells:
            for ep in c.episodes:
                keys.extend(k for k in ep if k not in keys)
        metrics = tuple(MetricSpec(k) for k in keys)
    keys = list(
        dict.fromkeys([m.key for m in metrics] + [k for r in spec.relative_scores for k in (r.higher, r.lower)])
    )
    summaries = summarize_results(results, keys, spec.stats.reps, spec.stats.confidence, spec.stats.seed)
    for m in metrics:
        if cells and not any(m.key in algos_s for t in summaries.values() for algos_s in t.values()):
            notes.append(f"metric '{m.key}' is reported by no finished cell (check its spelling)")
    full_info = [a.label for a in spec.algos if get_algo(a.name).caps.full_information]
    families = {c.task: c.family for c in cells}
    report = Report(spec, out, results, summaries, metrics, families, full_info, missing, notes)
    report.relative = relative_scores(spec, summaries, full_info)
    atomic_write_text(out / "results.json", json.dumps(results, indent=1, sort_keys=False, allow_nan=False) + "\n")
    meta = {
        "name": spec.name,
        "spec": spec.to_dict(),
        "metrics": [{"key": m.key, "direction": m.direction, "label": m.title} for m in metrics],
        "full_information": full_info,
        "missing": missing,
        "notes": notes,
        "summary": summaries,
        "relative_scores": report.relative,
    }
    atomic_write_json(out / "bench.json", _strip_nan(meta))
    report.files = [out / "results.json", out / "bench.json"]
    if cells:
        report.files += make_plots(
            results,
            out,
            metrics,
            spec.plots,
            full_info,
            spec.stats.reps,
            spec.stats.confidence,
            spec.stats.seed,
        )
    atomic_write_text(out / "results.md", markdown(report))
    report.files.append(out / "results.md")
    return report


def _strip_nan(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {k: _strip_nan(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strip_nan(v) for v in obj]
    return obj


# ---------------------------------------------------------------------------------------------
# Plots


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _metric_keys(results: Mapping[str, Any]) -> list[str]:
    keys: list[str] = []
    for *_, run in iter_runs(results):
        for k in run.get("absolute_metrics", {}):
            if k not in keys:
                keys.append(k)
    return keys


def make_plots(
    results: Mapping[str, Any],
    out_dir: Path,
    metrics: Sequence[MetricSpec],
    kinds: Sequence[str] = ("bars", "curves"),
    full_information: Sequence[str] = (),
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> list[Path]:
    """Bar charts with CIs per task (``bars_<task>.png``) and learning curves with CI bands over
    seeds (``curves_<task>.png``, only for tasks where some algorithm has more than one eval point)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    summaries = summarize_results(results, [m.key for m in metrics], reps, confidence, seed)
    tasks: dict[str, list[str]] = {}
    for _fam, task, algo, _s, _run in iter_runs(results):
        if algo not in tasks.setdefault(task, []):
            tasks[task].append(algo)
    for task, algos in tasks.items():
        summ = summaries.get(task, {})
        shown = [m for m in metrics if any(m.key in summ.get(a, {}) for a in algos)]
        if "bars" in kinds and shown:
            fig, axes = _grid(plt, len(shown))
            for ax, m in zip(axes, shown, strict=False):
                names = [a for a in algos if m.key in summ.get(a, {})]
                means = np.array([float(summ[a][m.key]["mean"]) for a in names])
                lo = np.array([float(summ[a][m.key]["ci_low"]) for a in names])
                hi = np.array([float(summ[a][m.key]["ci_high"]) for a in names])
                err = np.vstack([np.clip(means - lo, 0, None), np.clip(hi - means, 0, None)])
                colors = ["0.6" if a in full_information else f"C{i}" for i, a in enumerate(names)]
                ax.bar(range(len(names)), means, yerr=err, capsize=3, color=colors)
                ax.set_xticks(range(len(names)))
                ax.set_xticklabels(
                    [a + (" †" if a in full_information else "") for a in names], rotation=30, ha="right", fontsize=8
                )
                ax.set_title(f"{m.title} {ARROW[m.direction]}", fontsize=9)
            for ax in axes[len(shown) :]:
                ax.set_visible(False)
            fig.suptitle(f"{task}: mean and {int(round(confidence * 100))}% bootstrap CI over seeds", fontsize=10)
            fig.tight_layout()
            p = out_dir / f"bars_{_safe(task)}.png"
            fig.savefig(p, dpi=110)
            plt.close(fig)
            paths.append(p)
        if "curves" in kinds:
            curve = _curves(plt, results, task, algos, metrics, out_dir, reps, confidence, seed)
            if curve is not None:
                paths.append(curve)
    return paths


def _grid(plt: Any, n: int) -> tuple[Any, list[Any]]:
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.0 * rows), squeeze=False)
    return fig, list(axes.ravel())


def _curve_points(results: Mapping[str, Any], task: str, algo: str, metric: str) -> tuple[list[float], np.ndarray]:
    """x positions and the per-seed mean of ``metric`` at each evaluation point: (seeds, points).

    Seeds with the same number of evaluation points are aligned by index (``step_<k>``) and placed
    at the mean step count (episode boundaries can make step counts differ slightly between seeds);
    otherwise only the step counts every seed has are used.
    """
    per_seed: list[list[tuple[int, float]]] = []
    for _fam, t, a, _s, run in iter_runs(results):
        if t != task or a != algo:
            continue
        pts: list[tuple[int, float]] = []
        for k, v in run.items():
            if k.startswith("step_") and isinstance(v, Mapping) and metric in v:
                vals = [x for x in _values(v[metric]) if math.isfinite(x)]
                if vals:
                    pts.append((int(v["step_count"]), float(np.mean(vals))))
        per_seed.append(sorted(pts))
    if not per_seed or not all(per_seed):
        return [], np.empty((0, 0))
    if len({len(p) for p in per_seed}) == 1:
        xs = np.mean([[s for s, _ in p] for p in per_seed], axis=0)
        return [float(x) for x in xs], np.array([[v for _, v in p] for p in per_seed], dtype=float)
    dicts = [dict(p) for p in per_seed]
    common = sorted(set.intersection(*(set(d) for d in dicts)))
    return [float(c) for c in common], np.array([[d[c] for c in common] for d in dicts], dtype=float)


def _curves(
    plt: Any,
    results: Mapping[str, Any],
    task: str,
    algos: Sequence[str],
    metrics: Sequence[MetricSpec],
    out_dir: Path,
    reps: int,
    confidence: float,
    seed: int,
) -> Path | None:
    series: dict[str, dict[str, tuple[list[float], np.ndarray]]] = {}
    flat: dict[str, dict[str, float]] = {}  # algorithms with one point: drawn as dashed levels
    for m in metrics:
        for a in algos:
            steps, arr = _curve_points(results, task, a, m.key)
            if len(steps) > 1:
                series.setdefault(m.key, {})[a] = (steps, arr)
            elif len(steps) == 1:
                flat.setdefault(m.key, {})[a] = float(arr.mean())
    if not series:
        return None
    shown = [m for m in metrics if m.key in series]
    fig, axes = _grid(plt, len(shown))
    for ax, m in zip(axes, shown, strict=False):
        for i, a in enumerate(algos):
            if a not in series[m.key]:
                continue
            steps, arr = series[m.key][a]
            mu = arr.mean(axis=0)
            band = np.array([bootstrap_ci(arr[:, j], "mean", confidence, reps, seed) for j in range(arr.shape[1])])
            ax.plot(steps, mu, label=a, color=f"C{i}")
            ax.fill_between(steps, band[:, 0], band[:, 1], alpha=0.25, color=f"C{i}")
        for i, a in enumerate(algos):
            if a in flat.get(m.key, {}):
                ax.axhline(flat[m.key][a], color=f"C{i}", linestyle="--", linewidth=1, label=f"{a} (fixed)")
        ax.set_xlabel("environment steps", fontsize=8)
        ax.set_title(f"{m.title} {ARROW[m.direction]}", fontsize=9)
        ax.legend(fontsize=7)
    for ax in axes[len(shown) :]:
        ax.set_visible(False)
    fig.suptitle(f"{task}: learning curves, mean and {int(round(confidence * 100))}% CI over seeds", fontsize=10)
    fig.tight_layout()
    p = out_dir / f"curves_{_safe(task)}.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p


def plot_results(results_path: Path, out_dir: Path | None = None) -> list[Path]:
    """Re-make the plots from a results.json (or the directory holding it); returns the PNG paths.

    Metric selection, directions and statistics settings come from ``bench.json`` beside it when
    present; otherwise every metric in ``absolute_metrics`` is plotted (higher is better).
    """
    path = Path(results_path)
    if path.is_dir():
        path = path / "results.json"
    if not path.is_file():
        raise HierallocError(
            f"'{results_path}' is neither a results.json nor a folder holding one; "
            "pass the output folder of 'hieralloc bench'"
        )
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise HierallocError(f"'{path}' is not valid JSON ({e})") from None
    if not isinstance(results, dict) or not all(
        isinstance(run, Mapping) and "absolute_metrics" in run for *_, run in iter_runs(results)
    ):
        raise HierallocError(
            f"'{path}' is not in marl-eval's layout (env -> task -> algo -> seed -> "
            "step_<k>/absolute_metrics); see docs/benchmarks.md"
        )
    metrics: tuple[MetricSpec, ...] = tuple(MetricSpec(k) for k in _metric_keys(results))
    kinds: Sequence[str] = ("bars", "curves")
    full_info: list[str] = []
    reps, confidence, seed = 2000, 0.95, 0
    meta_path = path.parent / "bench.json"
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            metrics = (
                tuple(
                    MetricSpec(m["key"], m.get("direction", "higher"), m.get("label", ""))
                    for m in meta.get("metrics", [])
                )
                or metrics
            )
            spec = meta.get("spec", {})
            kinds = spec.get("plots", kinds) or kinds
            st = spec.get("stats", {})
            reps, confidence, seed = (
                int(st.get("reps", reps)),
                float(st.get("confidence", confidence)),
                int(st.get("seed", seed)),
            )
            full_info = list(meta.get("full_information", []))
        except (ValueError, KeyError, TypeError, AttributeError):
            pass  # a damaged bench.json only loses labels and directions
    return make_plots(
        results,
        out_dir if out_dir is not None else path.parent,
        metrics,
        kinds,
        full_info,
        reps,
        confidence,
        seed,
    )
