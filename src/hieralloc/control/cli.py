"""``hieralloc lqr ...``: the LQR half of OHIO from the command line (see docs/methods/ohio-lqr.md).

``hieralloc lqr recover`` runs the goal-recovery experiment of OHIO App. C.1 on the double
integrator, prints a table of recovery errors per LQR setting, and optionally writes the results
(JSON, atomically) and the Fig. 5 analogue (PNG). ``hieralloc lqr plot RESULTS.json --out PNG``
redraws the figure from a results file.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from hieralloc.errors import ConfigError

# command-line flag of each config field, so errors name what the user typed
_FLAGS = {
    "method": "--method", "observed": "--observed", "horizon": "--horizon", "R": "--R", "Q11": "--Q11",
    "Q22": "--Q22", "dt": "--dt", "samples": "--samples", "seed": "--seed", "state_range": "--state-range",
    "goal_range": "--goal-range", "examples": "--examples",
}
_GD_FLAGS = {"lr": "--gd-lr", "max_steps": "--gd-max-steps", "tol": "--gd-tol"}
_CEM_FLAGS = {"samples": "--cem-samples", "elite_frac": "--cem-elite-frac", "patience": "--cem-patience",
              "max_iters": "--cem-max-iters", "init_std": "--cem-init-std", "covariance": "--cem-covariance",
              "reruns": "--cem-reruns", "rerun_above": "--cem-rerun-above", "tol": "--cem-tol"}


def add_cli(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register the ``lqr`` verb (with ``recover`` and ``plot``) on the top-level sub-parsers ``sub``."""
    parser_class = getattr(sub, "_parser_class", argparse.ArgumentParser)
    s = sub.add_parser("lqr", parents=[common], help="LQR goal tracking and its inverse (OHIO App. A.3, B.1, C.1)")
    lsub = s.add_subparsers(dest="lqr_verb", required=True, parser_class=parser_class)

    r = lsub.add_parser("recover", parents=[common], help="recover goals from LQR transitions on the double "
                        "integrator for every (R, Q11) of OHIO App. C.1 and print the recovery errors")
    r.add_argument("--method", choices=("analytical", "gd", "cem", "all"), default="analytical",
                   help="inverse: analytical (Eq. 23/26), gd (Adam, App. B.2.1), cem (Alg. 2-3), or all three")
    r.add_argument("--observed", choices=("next-state", "controls", "both"), default="next-state",
                   help="what the data hold: the state after the horizon (Alg. 2) or the controls (Alg. 3)")
    r.add_argument("--horizon", type=int, nargs="+", default=[1, 5], metavar="T",
                   help="LQR horizons (low-level steps per goal); default 1 5")
    r.add_argument("--R", dest="R", type=float, nargs="+", default=None, metavar="R",
                   help="control costs (default: the paper's 0 0.2)")
    r.add_argument("--Q11", dest="Q11", type=float, nargs="+", default=None, metavar="Q",
                   help="position costs (default: the paper's 3.5 4 4.5 5 5.5)")
    r.add_argument("--Q22", dest="Q22", type=float, default=1.0, help="velocity cost (default 1)")
    r.add_argument("--dt", type=float, default=0.5, help="time step of the double integrator (default 0.5)")
    r.add_argument("--samples", type=int, default=200, help="transitions per setting (default 200)")
    r.add_argument("--seed", type=int, default=0, help="seed of the sampled states and goals (default 0)")
    r.add_argument("--state-range", type=float, default=1.0, help="states uniform in [-x, x]^2 (default 1)")
    r.add_argument("--goal-range", type=float, default=1.0, help="goals uniform in [-x, x]^2 (default 1)")
    r.add_argument("--examples", type=int, default=4, help="transitions drawn in the plot (default 4)")
    r.add_argument("--gd-lr", type=float, default=0.01, help="Adam learning rate (default 0.01, App. B.2.1)")
    r.add_argument("--gd-max-steps", type=int, default=10_000, help="Adam steps at most (default 10000)")
    r.add_argument("--gd-tol", type=float, default=1e-5, help="stop once the loss is below this (default 1e-5)")
    r.add_argument("--cem-samples", type=int, default=50, help="CEM candidates per iteration (default 50)")
    r.add_argument("--cem-elite-frac", type=float, default=0.2, help="CEM elite fraction (default 0.2)")
    r.add_argument("--cem-patience", type=int, default=4, help="CEM iterations without improvement (default 4)")
    r.add_argument("--cem-max-iters", type=int, default=1000, help="CEM iterations per run at most")
    r.add_argument("--cem-init-std", type=float, default=1.0, help="CEM initial standard deviation (default 1)")
    r.add_argument("--cem-covariance", choices=("previous-mean", "elite-mean", "diagonal"), default="previous-mean",
                   help="CEM refit: full covariance about the previous mean (default), about the elites' mean, "
                   "or diagonal")
    r.add_argument("--cem-reruns", type=int, default=3, help="CEM reruns where the loss stays high (default 3)")
    r.add_argument("--cem-rerun-above", type=float, default=1e-10, help="loss that triggers a rerun (1e-10)")
    r.add_argument("--cem-tol", type=float, default=0.0, help="CEM stops below this loss (default 0: patience)")
    r.add_argument("--out", type=Path, default=None, help="write the results JSON here (atomically)")
    r.add_argument("--plot", type=Path, default=None, help="draw the Fig. 5 analogue to this PNG")
    r.set_defaults(func=cmd_lqr)

    p = lsub.add_parser("plot", parents=[common], help="draw the Fig. 5 analogue from a results JSON")
    p.add_argument("results", type=Path, help="results.json written by 'hieralloc lqr recover --out'")
    p.add_argument("--out", type=Path, default=None, help="PNG path (default: beside the results, recovery.png)")
    p.add_argument("--method", nargs="+", choices=("analytical", "gd", "cem"), default=None,
                   help="draw only these inverses (default: every one in the file)")
    p.set_defaults(func=cmd_lqr)


def config_from_args(args: argparse.Namespace) -> Any:
    """The :class:`RecoverConfig` of a parsed ``lqr recover`` command line (errors name the flag)."""
    from hieralloc.control.lqr import CEMInverseConfig, GDInverseConfig
    from hieralloc.control.recover import PAPER_Q11, PAPER_R, RecoverConfig

    def build(cls: Any, flags: dict[str, str], values: dict[str, Any]) -> Any:
        try:
            return cls(**values)
        except ConfigError as e:
            raise ConfigError(flags.get(e.key, e.key), e.problem, "command line") from None

    gd = build(GDInverseConfig, _GD_FLAGS, {"lr": args.gd_lr, "max_steps": args.gd_max_steps, "tol": args.gd_tol})
    cem = build(CEMInverseConfig, _CEM_FLAGS, {
        "samples": args.cem_samples, "elite_frac": args.cem_elite_frac, "patience": args.cem_patience,
        "max_iters": args.cem_max_iters, "init_std": args.cem_init_std, "covariance": args.cem_covariance,
        "reruns": args.cem_reruns, "rerun_above": args.cem_rerun_above, "tol": args.cem_tol})
    return build(RecoverConfig, _FLAGS, {
        "method": args.method, "observed": args.observed.replace("-", "_"), "horizon": tuple(args.horizon),
        "R": tuple(args.R) if args.R is not None else PAPER_R,
        "Q11": tuple(args.Q11) if args.Q11 is not None else PAPER_Q11,
        "Q22": args.Q22, "dt": args.dt, "samples": args.samples, "seed": args.seed,
        "state_range": args.state_range, "goal_range": args.goal_range, "examples": args.examples,
        "gd": gd, "cem": cem})


def cmd_lqr(args: argparse.Namespace) -> int:
    from hieralloc.control.recover import format_table, load_results, plot_recovery, run_recovery
    from hieralloc.runs import atomic_write_json

    if args.lqr_verb == "plot":
        results = load_results(args.results)
        out = args.out if args.out is not None else args.results.parent / "recovery.png"
        print(f"wrote {plot_recovery(results, out, methods=args.method)}")
        return 0
    for flag, path, suffix in (("--out", args.out, ".json"), ("--plot", args.plot, ".png")):
        if path is not None and path.suffix.lower() != suffix:
            raise ConfigError(flag, f"must name a {suffix} file, got '{path}'; e.g. {flag} recovery{suffix}",
                              "command line")
    cfg = config_from_args(args)
    quiet = getattr(args, "quiet", False)
    t0 = time.perf_counter()
    results = run_recovery(cfg)
    seconds = time.perf_counter() - t0
    if not quiet:
        print(format_table(results))
    print(f"{len(results['rows'])} settings, {cfg.samples} transitions each, {seconds:.2f} s")
    if args.out is not None:
        atomic_write_json(args.out, results)
        print(f"wrote {args.out}")
    if args.plot is not None:
        print(f"wrote {plot_recovery(results, args.plot)}")
    return 0
