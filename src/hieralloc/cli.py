"""The ``hieralloc`` command line (also ``python -m hieralloc``). See docs/cli.md.

Every user mistake ends in one line on stderr (``error: ...``) naming what is wrong and how to
fix it, and a non-zero exit status; tracebacks are reserved for bugs in hieralloc itself.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from hieralloc import __version__
from hieralloc.errors import HierallocError


class Terminated(KeyboardInterrupt):
    """SIGTERM stops like Ctrl-C: bench workers stopped, runs left resumable (exit 143)."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message} (see '{self.prog} --help')\n")


def _console() -> Any:
    from rich.console import Console

    return Console()


def _metrics_table(title: str, metrics: dict[str, Any]) -> Any:
    from rich.table import Table

    t = Table(title=title)
    t.add_column("metric")
    t.add_column("value", justify="right")
    for k, v in metrics.items():
        if isinstance(v, (int, float)):
            t.add_row(k, f"{v:.6g}")
    return t


# ---------------------------------------------------------------------------------------------
# verbs


def cmd_list(args: argparse.Namespace) -> int:
    from hieralloc import registry

    registry.load_builtins()
    out = []
    for e in sorted(registry.ENVS.values(), key=lambda s: s.name):
        out.append(f"env       {e.name:<24} family={e.family}  {e.description}")
    for s in sorted(registry.SCENARIOS.values(), key=lambda s: s.name):
        out.append(f"scenario  {s.name:<24} env={s.env}  {s.description}")
    for a in sorted(registry.ALGOS.values(), key=lambda s: s.name):
        out.append(f"algo      {a.name:<24} [{a.caps.flags()}]  {a.description}")
    for p in sorted(registry.PRESETS.values(), key=lambda s: s.name):
        out.append(f"preset    {p.name:<24} {p.description}")
    print("\n".join(out))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from hieralloc.runs import RunDir
    from hieralloc.train import run_training

    run = run_training(
        args.env, args.algo, overrides=args.overrides, config_file=args.config, seed=args.seed,
        out=args.out, resume=args.resume, quiet=args.quiet, runs_root=args.runs_root,
    )
    summary = RunDir(run).read_summary()
    if not args.quiet:
        _console().print(_metrics_table(f"{summary['algo']} on {summary['env']} (seed {summary['seed']})",
                                        summary["final"]))
    print(f"run directory: {run}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from hieralloc.train import evaluate_run

    result = evaluate_run(Path(args.run_dir), episodes=args.episodes, seed=args.seed, quiet=args.quiet)
    if not args.quiet:
        _console().print(_metrics_table(f"evaluation of {args.run_dir} ({args.episodes} episodes)",
                                        result["mean"]))
    print(f"wrote {result['path']}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from hieralloc.bench.runner import run_bench

    out = run_bench(args.spec, out=args.out, jobs=args.jobs, quiet=args.quiet, budget=args.budget, only=args.only)
    print(f"results: {out}")
    return 0


def _plot_run_dir(path: Path, out: Path | None, args: argparse.Namespace) -> list[Path]:
    """A run directory of 'hieralloc train': the figures of its algorithm (HGRL's GDI-Net, LPMARL's assignment)."""
    from hieralloc.algos.hgrl.run_plots import GDI_ALGOS
    from hieralloc.algos.lpmarl.plots import LPMARL_ALGOS
    from hieralloc.runs import RunDir

    algo = str(RunDir(path).read_config()["algo"])
    if algo in GDI_ALGOS:  # HGRL Fig. 5, 6
        if args.episode is not None or args.step is not None:
            raise HierallocError(f"--episode / --step pick the evaluation episode and state of an LPMARL run's "
                                 f"pictures; '{path}' is a run of {algo}, whose GDI-Net figures take --frame K")
        from hieralloc.algos.hgrl.run_plots import plot_run

        return plot_run(path, out, frame=args.frame)
    if algo in LPMARL_ALGOS:  # LPMARL Fig. 2, 3, 8
        if args.frame is not None:
            raise HierallocError(f"--frame picks a data-set frame of an hgrl run's GDI-Net figures; '{path}' is a "
                                 f"run of {algo}, whose pictures take --episode K and --step T")
        from hieralloc.algos.lpmarl.plots import plot_run as plot_lpmarl_run

        return plot_lpmarl_run(path, out, episode=args.episode or 0, step=args.step or 0)
    raise HierallocError(f"'{path}' is a run of {algo}: plots of runs are drawn for hgrl runs (GDI-Net figures) and "
                         f"for {' / '.join(LPMARL_ALGOS)} runs (LPMARL Fig. 2, 3, 8); for benchmarks pass "
                         "results.json or the results directory")


def cmd_plot(args: argparse.Namespace) -> int:
    from hieralloc.runs import RunDir

    path, out = Path(args.results), Path(args.out) if args.out else None
    if RunDir(path).exists():  # a run directory of 'hieralloc train': its algorithm's figures
        paths = _plot_run_dir(path, out, args)
    elif path.is_file() or (path / "results.json").is_file():
        from hieralloc.bench.report import plot_results

        if args.frame is not None:
            raise HierallocError("--frame selects a frame of a run directory's GDI-Net figures; "
                                 "drop it for a benchmark's results")
        if args.episode is not None or args.step is not None:
            raise HierallocError("--episode / --step select an evaluation episode and a state of an LPMARL run "
                                 "directory's pictures; drop them for a benchmark's results")
        paths = plot_results(path, out)
    else:
        raise HierallocError(f"'{path}' is neither a benchmark's results.json (or the folder holding it) nor a "
                             "run directory of 'hieralloc train'; pass the output folder of 'hieralloc bench' "
                             "or of 'hieralloc train'")
    for p in paths:
        print(p)
    return 0


def cmd_check_env(args: argparse.Namespace) -> int:
    from rich.table import Table

    from hieralloc.envs.checks import check_env

    rows = check_env(args.env)
    t = Table(title=f"check-env {args.env}")
    t.add_column("check")
    t.add_column("result")
    t.add_column("detail")
    failed = 0
    for name, ok, detail in rows:
        failed += not ok
        t.add_row(name, "[green]pass[/]" if ok else "[red]FAIL[/]", detail)
    _console().print(t)
    print(f"{len(rows) - failed} passed, {failed} failed")
    return 1 if failed else 0


def cmd_data(args: argparse.Namespace) -> int:
    from hieralloc import data

    root = data.data_dir(args.data_dir)
    if args.data_verb == "rasterize":
        from hieralloc.envs.coverage.rasterize import run_cli

        print(run_cli(args).summary())
        return 0
    if args.data_verb == "fetch":
        from hieralloc.data_fetch import fetch

        results = fetch(args.names, root=root, base_url=args.url, timeout=args.timeout,
                        report=lambda r: print(f"{r.name:<32} {r.status:<10} {r.path}"))
        print(f"{len(results)} dataset(s) verified in {root}")
        return 0
    if args.data_verb == "list":
        print(f"data directory: {root}")
        for ds in data.DATASETS.values():
            st = data.status(ds, root, check=True)
            print(f"{ds.name:<32} {st.detail if st.present else 'missing':<12} {ds.relpath}")
        return 0
    # verify
    names = args.names or [n for n in data.DATASETS if (root / data.DATASETS[n].relpath).is_file()]
    if not names:
        raise HierallocError(f"no known dataset is present in the data directory {root}; set --data-dir or "
                             f"${data.ENV_VAR}, or name datasets to verify (see 'hieralloc data list')")
    bad = 0
    for n in names:
        ds = data.get_dataset(n)
        st = data.status(ds, root, check=True)
        ok = bool(st.verified)
        bad += not ok
        print(f"{ds.name:<32} {'ok' if ok else 'FAIL'}  {st.detail}")
    print(f"{len(names) - bad} passed, {bad} failed")
    return 1 if bad else 0


def cmd_collect(args: argparse.Namespace) -> int:
    from hieralloc.ohio.collect import plan_collect, run_collect
    from hieralloc.ohio.dataset import OfflineDataset
    from hieralloc.progress import fmt_metrics, progress_bar

    plan = plan_collect(args.env, args.behaviour, args.episodes, seed=args.seed, overrides=args.overrides,
                        out=args.out, force=args.force)  # every check before the progress bar
    with progress_bar(args.episodes, f"collecting {args.behaviour} on {args.env}", args.quiet) as bar:
        path = run_collect(plan, progress=lambda i, n, m: bar.update(completed=i, metric=fmt_metrics(m)))
    s = OfflineDataset.load(path).summary()
    print(f"{s['episodes']} episodes, {s['transitions']} transitions of {s['behaviour']} on {s['name']}; return per "
          f"episode: mean {s['mean_return']:.6g}, std {s['std_return']:.6g}, min {s['min_return']:.6g}, "
          f"max {s['max_return']:.6g}")
    print(f"dataset: {path}")
    return 0


# ---------------------------------------------------------------------------------------------
# parser


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--quiet", action="store_true", help="no progress bars or tables")
    common.add_argument("--data-dir", default=None, metavar="DIR",
                        help="where datasets live (default: $HIERALLOC_DATA_DIR or ~/.cache/hieralloc/data)")

    p = _Parser(prog="hieralloc", description="Hierarchical multi-agent RL for dynamic resource allocation.",
                parents=[common])
    p.add_argument("--version", action="version", version=f"hieralloc {__version__}")
    sub = p.add_subparsers(dest="verb", required=True, parser_class=_Parser)

    s = sub.add_parser("list", parents=[common], help="registered environments, algorithms, scenarios, presets")
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("train", parents=[common], help="train (or evaluate a fixed policy) and record a run")
    s.add_argument("env", help="environment or scenario name (see 'hieralloc list')")
    s.add_argument("algo", help="algorithm name (see 'hieralloc list')")
    s.add_argument("overrides", nargs="*", metavar="key=value",
                   help="config overrides, e.g. env.n_agents=5 algo.lr=1e-3 train.steps=2000")
    s.add_argument("--config", type=Path, default=None, help="YAML file with env/algo/train sections")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", type=Path, default=None, help="run directory (default runs/<experiment>/<run-id>)")
    s.add_argument("--runs-root", type=Path, default=Path("runs"), help=argparse.SUPPRESS)
    s.add_argument("--resume", action="store_true", help="continue an interrupted run from its last checkpoint")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("eval", parents=[common], help="evaluate a finished run's policy again")
    s.add_argument("run_dir")
    s.add_argument("--episodes", type=int, default=10)
    s.add_argument("--seed", type=int, default=None, help="evaluation seed (default: the run's)")
    s.set_defaults(func=cmd_eval)

    s = sub.add_parser("bench", parents=[common], help="run a benchmark spec (YAML file or preset name)")
    s.add_argument("spec", help="path to a spec YAML or a preset name (see 'hieralloc list')")
    s.add_argument("--jobs", type=int, default=None, help="parallel processes (default: one per core)")
    s.add_argument("--out", type=Path, default=None, help="results directory (default results/<name>)")
    s.add_argument("--budget", default=None, help="a named budget of the spec instead of its default "
                   "(e.g. 'paper': the paper's training budget, for a GPU machine or a cluster)")
    s.add_argument("--only", action="append", default=None, metavar="PATTERN",
                   help="run only the algorithms whose label matches this shell pattern (repeatable, e.g. "
                   "--only 'IQL-*'); the report covers every finished cell")
    s.set_defaults(func=cmd_bench)

    s = sub.add_parser("plot", parents=[common], help="plots from a benchmark's results.json, the GDI-Net "
                       "figures of a trained hgrl run (HGRL Fig. 5, 6), or the cost matrices and assignments of "
                       "a trained LPMARL run (LPMARL Fig. 2, 3, 8)")
    s.add_argument("results", help="results.json or the benchmark's results directory, or a run directory of hgrl "
                   "or of the LPMARL family (lpmarl, dec-lpmarl, lpmarl-nolp, lpmarl-lpdist, lpmarl-greedy)")
    s.add_argument("--out", default=None, help="folder for the PNG files (default: beside the results; a run's "
                   "plots/ folder)")
    s.add_argument("--frame", type=int, default=None, metavar="K", help="hgrl run directories: the data set's frame "
                   "to draw (default: the frame with the most observed cells)")
    s.add_argument("--episode", type=int, default=None, metavar="K", help="LPMARL run directories: the evaluation "
                   "episode to play and draw (episode K of 'hieralloc eval'; default 0)")
    s.add_argument("--step", type=int, default=None, metavar="T", help="LPMARL run directories: the state of that "
                   "episode whose costs, distances and LP solution are drawn (Fig. 2; default 0)")
    s.set_defaults(func=cmd_plot)

    s = sub.add_parser("check-env", parents=[common], help="PettingZoo API tests plus hieralloc invariants")
    s.add_argument("env")
    s.set_defaults(func=cmd_check_env)

    s = sub.add_parser("data", parents=[common], help="datasets in the data directory")
    dsub = s.add_subparsers(dest="data_verb", required=True, parser_class=_Parser)
    d = dsub.add_parser("list", parents=[common], help="known datasets and whether each is present and verified")
    d.set_defaults(func=cmd_data)
    d = dsub.add_parser("verify", parents=[common], help="re-check present datasets against their checksums")
    d.add_argument("names", nargs="*", help="datasets to verify (default: every present one)")
    d.set_defaults(func=cmd_data)
    d = dsub.add_parser("fetch", parents=[common],
                        help="download datasets from their public origin (atomic, checksum-verified)")
    d.add_argument("names", nargs="+", help="dataset names (e.g. nyc_brooklyn) or 'all'")
    d.add_argument("--url", default=None, help="mirror: URL pattern with {file} or a folder URL "
                   "(default $HIERALLOC_DATA_URL, else the public origin)")
    d.add_argument("--timeout", type=float, default=60.0, help="seconds per network operation")
    d.set_defaults(func=cmd_data)
    from hieralloc.envs.coverage.rasterize import add_cli_arguments

    d = dsub.add_parser("rasterize", parents=[common], help="trip table (CSV/Parquet) -> (T, H, W) demand .npy")
    add_cli_arguments(d)
    d.set_defaults(func=cmd_data)

    s = sub.add_parser("collect", parents=[common], help="run a fixed behaviour policy on an OHIO environment and "
                       "write an offline dataset (states, flows, rewards; no high-level actions)")
    s.add_argument("env", help="environment or scenario name (see 'hieralloc list')")
    s.add_argument("behaviour", help="a fixed (non-learning) policy for the environment, e.g. prop")
    s.add_argument("--episodes", type=int, required=True, help="episodes to collect")
    s.add_argument("--seed", type=int, default=0, help="episode k is reset with episode_seed(seed, k)")
    s.add_argument("--out", type=Path, default=None,
                   help="dataset directory (default datasets/<env>-<behaviour>-<episodes>ep-s<seed>)")
    s.add_argument("--force", action="store_true", help="replace an existing dataset at the output directory")
    s.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[], metavar="key=value",
                   help="config overrides: env.KEY=VALUE (environment), algo.KEY=VALUE (behaviour policy)")
    s.set_defaults(func=cmd_collect)

    from hieralloc.control.cli import add_cli as add_lqr_cli

    add_lqr_cli(sub, common)  # `hieralloc lqr recover|plot`: OHIO's control half (docs/methods/ohio-lqr.md)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        # key=value overrides may also come after options (train ENV ALGO --seed 1 algo.lr=0.1)
        if args.verb == "train" and all("=" in e and not e.startswith("-") for e in extra):
            args.overrides = [*args.overrides, *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if getattr(args, "episodes", 1) is not None and getattr(args, "episodes", 1) < 1:
        parser.error("--episodes must be >= 1")
    if getattr(args, "jobs", None) is not None and args.jobs < 1:
        parser.error("--jobs must be >= 1")
    if getattr(args, "frame", None) is not None and args.frame < 0:
        parser.error("--frame must be >= 0")
    if args.verb == "plot" and args.episode is not None and args.episode < 0:
        parser.error("--episode must be >= 0 (evaluation episodes are numbered 0, 1, 2, ...)")
    if args.verb == "plot" and args.step is not None and args.step < 0:
        parser.error("--step must be >= 0 (an episode's states are numbered 0, 1, 2, ...)")
    if args.data_dir:
        import os

        from hieralloc.data import ENV_VAR

        os.environ[ENV_VAR] = str(Path(args.data_dir).expanduser())
    # only the main thread may install handlers (main() also runs inside tests and other programs)
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main else None
    try:
        return int(args.func(args))
    except HierallocError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt as e:
        print("interrupted: re-run the same command to continue (`train ... --resume` for a single run; "
              "`bench` finishes only the missing cells)", file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
