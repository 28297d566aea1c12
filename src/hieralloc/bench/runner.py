"""Run a benchmark: every env x algo x seed cell through ``run_training``, in parallel, resumably.

Layout of ``out`` (default ``results/<spec name>``)::

    spec.yaml                              the resolved spec that was run
    datasets/<env>/<name>/                 offline datasets of the spec's ``datasets`` (OHIO), collected
                                           before the cells and reused while their settings match
    runs/<env>/<algo>/seed_<s>/            one run directory per cell (see hieralloc.runs)
    runs/<env>/<algo>/seed_<s>/error.log   traceback of a failed cell
    results.json, results.md, bench.json, *.png   the report (hieralloc.bench.report)

A cell whose ``summary.json`` exists and records the same resolved config (``config_hash``) is
skipped, so re-running the same command after a kill (or after adding seeds or algorithms) only
computes what is missing. An interrupted cell is continued with ``run_training(resume=True)``; a
cell directory from a different config is moved aside to ``seed_<s>.stale-<k>`` and re-run. Paths
into the bench folder (datasets, source runs) are compared relative to it, so a moved results
folder keeps its finished cells.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import traceback
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hieralloc.bench.spec import BenchSpec, Cell, load_spec, validate_spec
from hieralloc.errors import HierallocError
from hieralloc.progress import progress_bar

Status = Literal["done", "resume", "new"]


class BenchFailedError(HierallocError):
    """Some cells of a benchmark failed; the others finished and are reported."""

    exit_code = 1


@dataclass(frozen=True)
class CellJob:
    """Everything a worker needs to run one cell (picklable)."""

    env: str
    algo: str
    overrides: tuple[str, ...]
    seed: int
    run_dir: str
    resume: bool
    title: str


@dataclass
class CellOutcome:
    title: str
    run_dir: str
    ok: bool
    seconds: float
    error: str = ""
    final: dict[str, float] = field(default_factory=dict)

    @property
    def short(self) -> str:
        """``<env>/<algo>/seed_<s>`` (the tail of the run directory) for the progress bar."""
        parts = Path(self.run_dir).parts[-3:]
        return "/".join(parts)


@dataclass(frozen=True)
class PlannedCell:
    cell: Cell
    run_dir: Path
    config_hash: str
    status: Status
    #: run directory of the cell this one starts from (``pretrained``), or None
    source_dir: Path | None = None


# ---------------------------------------------------------------------------------------------
# Planning


def _read_json(path: Path) -> dict[str, Any] | None:
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _portable_hash(tree: Mapping[str, Any], rel_paths: Mapping[str, str]) -> str:
    """``config_hash`` of a run config with each bench-internal path (``algo_config[key]`` ending in
    ``rel_paths[key]``, a path relative to the bench directory) replaced by that relative path."""
    from hieralloc.runs import config_hash as hash_of

    algo = dict(tree.get("algo_config") or {})
    for key, rel in rel_paths.items():
        value = algo.get(key)
        if isinstance(value, str) and Path(value).parts[-len(Path(rel).parts):] == Path(rel).parts:
            algo[key] = rel
    return hash_of({**tree, "algo_config": algo})


def cell_status(run_dir: Path, config_hash: str, portable: tuple[str, Mapping[str, str]] | None = None,
                ) -> Status | Literal["stale", "empty"]:
    """``done`` (finished with this config), ``resume`` (started with this config), ``stale``
    (another config), ``empty`` (a folder with no run in it) or ``new`` (no folder).

    ``portable`` (the planned config's :func:`_portable_hash` and its relative paths) lets a finished
    run whose dataset / source paths point into the same bench directory at another location (the
    results folder was moved or copied) count as done."""
    from hieralloc.errors import CheckpointError
    from hieralloc.runs import RunDir
    from hieralloc.runs import config_hash as hash_of

    rd = RunDir(run_dir)
    if not run_dir.exists():
        return "new"
    if not rd.exists():
        return "empty"
    try:
        tree = rd.read_config()
    except CheckpointError:
        return "stale"
    saved = hash_of(tree)
    moved = saved != config_hash and portable is not None and _portable_hash(tree, portable[1]) == portable[0]
    if saved != config_hash and not moved:
        return "stale"
    if rd.is_finished():
        summary = _read_json(rd.summary_path)
        if summary is not None and summary.get("config_hash") == saved:
            return "done"
        return "stale"
    # an unfinished run made at another location starts over (its checkpoint names the old paths)
    return "stale" if moved else "resume"


def plan_cells(spec: BenchSpec, out: Path) -> list[PlannedCell]:
    """Resolve every cell's config (raising config errors before anything runs) and its status.

    A cell whose algorithm entry names a dataset trains on ``<out>/datasets/<env label>/<name>``
    (override ``algo.dataset``); one whose entry names a ``pretrained`` cell starts from that cell's
    run directory (override ``algo.finetune_from``) and is re-run whenever its source is."""
    import dataclasses
    import json

    from hieralloc.train import resolve_run

    plans: list[PlannedCell] = []
    for cell in spec.cells():
        extra: tuple[str, ...] = ()
        rel_paths: dict[str, str] = {}
        if cell.algo.dataset:
            rel_paths["dataset"] = str(spec.datasets[cell.algo.dataset].rel_dir(cell.env.label))
        source = spec.source_cell(cell)
        source_dir = (out / source.rel_dir()).resolve() if source is not None else None
        if source is not None:
            rel_paths["finetune_from"] = str(source.rel_dir())
        for key, rel in rel_paths.items():
            extra += (f"algo.{key}={json.dumps(str((out / rel).resolve()))}",)
        cell = dataclasses.replace(cell, overrides=cell.overrides + extra)
        resolved = resolve_run(cell.env.name, cell.algo.name, cell.overrides, seed=cell.seed)
        run_dir = out / cell.rel_dir()
        portable = (_portable_hash(resolved.tree, rel_paths), rel_paths) if rel_paths else None
        status = cell_status(run_dir, resolved.run_hash, portable)
        plans.append(
            PlannedCell(
                cell,
                run_dir,
                resolved.run_hash,
                "done" if status == "done" else "resume" if status == "resume" else "new",
                source_dir,
            )
        )
    redo = {p.run_dir.resolve() for p in plans if p.status != "done"}
    for i, p in enumerate(plans):
        if p.source_dir is not None and p.source_dir in redo and p.status != "new":
            # its source runs again: what this cell started from is gone, so it starts over
            plans[i] = dataclasses.replace(p, status="new")
    return plans


def _prepare_dir(run_dir: Path, config_hash: str) -> None:
    """Make room for a new run: move a run aside (stale, or one to redo because the run it started
    from is redone), remove a folder holding no run."""
    status = cell_status(run_dir, config_hash)
    if status in ("stale", "done", "resume"):
        k = 1
        while (aside := run_dir.with_name(f"{run_dir.name}.stale-{k}")).exists():
            k += 1
        run_dir.rename(aside)
    elif status == "empty":
        shutil.rmtree(run_dir)


# ---------------------------------------------------------------------------------------------
# Offline datasets


@dataclass(frozen=True)
class DatasetJob:
    """One dataset to collect (picklable): ``hieralloc collect`` with these arguments."""

    env: str
    behaviour: str
    episodes: int
    seed: int
    overrides: tuple[str, ...]
    out: str
    title: str


def dataset_jobs(spec: BenchSpec, out: Path) -> list[DatasetJob]:
    """Every (env entry, dataset) pair some algorithm entry trains on, with the env entry's
    ``env.*`` overrides (budget, entry, named budget) followed by the dataset's ``algo.*`` ones."""
    jobs = []
    for e in spec.envs:
        used = {a.dataset for a in spec.algos if a.dataset and a.runs_on(e.label)}
        env_ovr = tuple(o for o in spec.budget + e.overrides + spec.budgets.get(spec.budget_name, ())
                        + e.budget_overrides(spec.budget_name) if o.startswith("env."))
        for name in sorted(used):
            d = spec.datasets[name]
            jobs.append(DatasetJob(e.name, d.behaviour, d.episodes, d.seed, env_ovr + d.overrides,
                                   str(out / d.rel_dir(e.label)), f"dataset {name} on {e.label}"))
    return jobs


def dataset_current(job: DatasetJob) -> bool:
    """Whether ``job.out`` holds a dataset collected with exactly these settings."""
    from hieralloc.ohio.collect import plan_collect
    from hieralloc.ohio.dataset import read_meta

    path = Path(job.out)
    if not (path / "meta.json").is_file() or not (path / "data.npz").is_file():
        return False
    try:
        meta = read_meta(path)
    except HierallocError:
        return False
    plan = plan_collect(job.env, job.behaviour, job.episodes, job.seed, job.overrides, path, force=True)
    tree = plan.resolved.tree
    return (meta.get("episodes") == job.episodes and meta.get("seed") == job.seed
            and meta.get("behaviour") == plan.resolved.algo_spec.name
            and meta.get("env_config") == tree["env_config"] and meta.get("behaviour_config") == tree["algo_config"])


def run_dataset(job: DatasetJob) -> CellOutcome:
    """Collect one dataset (replacing an outdated one); never raises."""
    from hieralloc.ohio.collect import collect

    t0 = time.perf_counter()
    try:
        collect(job.env, job.behaviour, job.episodes, job.seed, job.overrides, job.out, force=True)
    except Exception as e:
        return CellOutcome(job.title, job.out, False, time.perf_counter() - t0, _one_line(e))
    return CellOutcome(job.title, job.out, True, time.perf_counter() - t0)


# ---------------------------------------------------------------------------------------------
# Workers


def _watch_parent(parent: int) -> None:
    """Exit this worker once its parent is gone (killed with SIGKILL, say, so that it could not stop
    the workers itself): the orphan is re-parented, and ``os.getppid()`` changes."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _init_worker() -> None:
    threading.Thread(target=_watch_parent, args=(os.getppid(),), name="parent-watch", daemon=True).start()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    if isinstance(e, HierallocError):
        return text or type(e).__name__
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def run_cell(job: CellJob) -> CellOutcome:
    """Run one cell; never raises (a failure is written to ``<run dir>/error.log``)."""
    from hieralloc.runs import RunDir
    from hieralloc.train import run_training

    t0 = time.perf_counter()
    run_dir = Path(job.run_dir)
    (run_dir / "error.log").unlink(missing_ok=True)
    try:
        run_training(
            job.env,
            job.algo,
            overrides=list(job.overrides),
            seed=job.seed,
            out=run_dir,
            resume=job.resume,
            quiet=True,
        )
        final = RunDir(run_dir).read_summary().get("final", {})
    except Exception as e:  # a cell's failure must not stop the others
        log = run_dir / "error.log"
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            log.write_text(traceback.format_exc(), encoding="utf-8")
        except OSError:
            pass
        return CellOutcome(job.title, job.run_dir, False, time.perf_counter() - t0, _one_line(e))
    return CellOutcome(
        job.title,
        job.run_dir,
        True,
        time.perf_counter() - t0,
        final=dict(final) if isinstance(final, Mapping) else {},
    )


# ---------------------------------------------------------------------------------------------
# The runner


def _latest(outcome: CellOutcome, keys: list[str]) -> str:
    for k in keys + ["return"]:
        v = outcome.final.get(k)
        if isinstance(v, (int, float)):
            return f"{outcome.short}: {k}={v:.4g}"
    return outcome.short


def run_bench(
    spec_or_name: BenchSpec | Mapping[str, Any] | str | Path,
    out: Path | None = None,
    jobs: int | None = None,
    quiet: bool = False,
    budget: str | None = None,
    only: list[str] | None = None,
) -> Path:
    """Run (or finish) a benchmark and write its report; returns the results directory.

    ``budget`` selects one of the spec's named budgets (e.g. ``paper``) instead of the default.
    ``only``: shell-style patterns of algo labels (``"IQL-*"``); just the matching entries' cells
    (and the cells they start from) run, the report covers every finished cell of the spec.

    ``spec_or_name`` is a :class:`BenchSpec`, a spec mapping, a YAML path or a preset name.
    ``jobs`` parallel processes (default ``os.cpu_count()``; 1 runs the cells in this process).
    Raises :class:`BenchFailedError` (exit status 1) after the report when some cells failed.
    """
    spec = load_spec(spec_or_name).with_budget(budget)
    validate_spec(spec)
    out = Path(out) if out is not None else Path("results") / spec.name
    plans = plan_cells(spec, out)
    if jobs is not None and jobs < 1:
        raise HierallocError(f"jobs must be >= 1, got {jobs}")

    from hieralloc.runs import atomic_write_text, dump_yaml

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "spec.yaml", dump_yaml(spec.to_dict()))
    todo = [p for p in plans if p.status != "done"]
    if only:
        todo = _selected(spec, todo, only)
    needed = {str(out / spec.datasets[p.cell.algo.dataset].rel_dir(p.cell.env.label))
              for p in todo if p.cell.algo.dataset}
    data_jobs = [j for j in dataset_jobs(spec, out) if j.out in needed and not dataset_current(j)]
    if data_jobs:
        n_data = min(jobs or os.cpu_count() or 1, len(data_jobs))
        broken: list[CellOutcome] = []
        with progress_bar(len(data_jobs), f"{spec.name}: datasets", quiet) as bar:
            def collected(o: CellOutcome) -> None:
                if not o.ok:
                    broken.append(o)
                    bar.log(f"failed: {o.title}: {o.error}")
                bar.update(advance=1, metric=o.title)

            _run_pool(data_jobs, n_data, collected, run_dataset)
        if broken:
            raise BenchFailedError(f"{len(broken)} of {len(data_jobs)} datasets could not be collected: "
                                   + "; ".join(f"{o.title}: {o.error}" for o in broken[:5])
                                   + ". No cell was run; fix the cause and re-run the same command")
    for p in todo:
        if p.status == "new":
            _prepare_dir(p.run_dir, p.config_hash)

    def job(p: PlannedCell) -> CellJob:
        return CellJob(p.cell.env.name, p.cell.algo.name, p.cell.overrides, p.cell.seed, str(p.run_dir),
                       p.status == "resume", p.cell.title())

    # cells starting from another cell's run go second, once their sources have finished
    phases = [[p for p in todo if p.source_dir is None], [p for p in todo if p.source_dir is not None]]
    n_jobs = min(jobs or os.cpu_count() or 1, max(1, len(phases[0]), len(phases[1])))
    keys = [m.key for m in spec.report_metrics()]
    failures: list[CellOutcome] = []
    failed_dirs: set[Path] = set()
    with progress_bar(len(plans), spec.name, quiet) as bar:
        bar.update(completed=len(plans) - len(todo))

        def finished(o: CellOutcome) -> None:
            if not o.ok:
                failures.append(o)
                failed_dirs.add(Path(o.run_dir).resolve())
                where = f" (log: {Path(o.run_dir) / 'error.log'})" if (Path(o.run_dir) / "error.log").exists() else ""
                bar.log(f"failed: {o.title}: {o.error}{where}")
            bar.update(advance=1, metric=_latest(o, keys) if o.ok else "")

        for phase in phases:
            runnable = []
            for p in phase:
                if p.source_dir is not None and p.source_dir in failed_dirs:
                    finished(CellOutcome(p.cell.title(), str(p.run_dir), False, 0.0,
                                         f"the cell it starts from failed ({p.source_dir})"))
                else:
                    runnable.append(job(p))
            if runnable:
                _run_pool(runnable, n_jobs, finished, run_cell)

    from hieralloc.bench.report import print_report, write_report

    report = write_report(spec, out)
    if not quiet:
        print_report(report)
    if failures:
        lines = "; ".join(f"{o.title} ({Path(o.run_dir) / 'error.log'})" for o in failures[:5])
        more = f" and {len(failures) - 5} more" if len(failures) > 5 else ""
        raise BenchFailedError(
            f"{len(failures)} of {len(plans)} benchmark cells failed: {lines}{more}; the report in '{out}' "
            "covers the finished cells. Fix the cause and re-run the same command to run only what is missing"
        )
    return out


def _selected(spec: BenchSpec, todo: list[PlannedCell], patterns: list[str]) -> list[PlannedCell]:
    """The cells of ``todo`` whose algo label matches a pattern, plus the cells those start from."""
    import fnmatch

    labels = [a.label for a in spec.algos]
    for pat in patterns:
        if not fnmatch.filter(labels, pat):
            raise HierallocError(f"--only {pat!r} matches no algorithm label of {spec.name}; labels: "
                                 f"{', '.join(labels)}")
    chosen = {lab for lab in labels if any(fnmatch.fnmatchcase(lab, pat) for pat in patterns)}
    sources = {p.source_dir for p in todo if p.cell.algo.label in chosen and p.source_dir is not None}
    return [p for p in todo if p.cell.algo.label in chosen or p.run_dir.resolve() in sources]


def _run_pool(jobs: list[Any], n_jobs: int, finished: Any, work: Any) -> None:
    """Run ``work(job)`` for every job (in this process when ``n_jobs`` is 1), calling ``finished``
    with each :class:`CellOutcome` as it arrives."""
    import multiprocessing

    if n_jobs == 1:
        for job in jobs:
            finished(work(job))
        return

    ctx = multiprocessing.get_context("spawn")  # no fork after torch/OpenMP have started threads
    with ProcessPoolExecutor(max_workers=n_jobs, mp_context=ctx, initializer=_init_worker) as pool:
        futures: dict[Future[CellOutcome], Any] = {pool.submit(work, j): j for j in jobs}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    job = futures[f]
                    try:
                        outcome = f.result()
                    except BrokenProcessPool:
                        outcome = CellOutcome(
                            job.title,
                            getattr(job, "run_dir", getattr(job, "out", "")),
                            False,
                            0.0,
                            "its worker process died (out of memory or a crash)",
                        )
                    except Exception as e:  # pickling problems and the like
                        outcome = CellOutcome(job.title, getattr(job, "run_dir", getattr(job, "out", "")), False,
                                              0.0, _one_line(e))
                    finished(outcome)
        except BaseException:  # Ctrl-C or SIGTERM (hieralloc.cli turns it into KeyboardInterrupt)
            _stop_workers(pool)
            raise


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started and terminate the running workers: an interrupted bench must not
    leave cells running behind it (their run directories stay resumable; a re-run finishes them)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
    for proc in procs:
        proc.join(timeout=10)
