"""Mobility step benchmark: one environment step on NYC Brooklyn with the reused HiGHS models vs the
same step with each LP built and solved through cvxpy, measured in one run.

Usage::

    python benchmarks/mobility_step.py [--quick] [--out benchmarks/results/mobility_step.json]

Needs the data directory (``HIERALLOC_DATA_DIR`` or ``--data-dir``) holding
``amod/scenario_nyc_brooklyn.json`` and cvxpy (``pip install 'hieralloc[bench]'``).

What is measured (``mobility-nyc-brooklyn``: 14 regions, 1500 vehicles, demand_ratio 9, 4-minute
steps; the high level plays random-dispersion actions, OHIO's DISP behaviour policy, a
Dirichlet(1) draw per step, identical for every variant):

* ``ours``: ``MobilityEnv.step`` as shipped: passenger-matching LP and rebalancing LP (OHIO
  Eq. (30)) on :class:`~hieralloc.solvers.PassengerMatchingModel` /
  :class:`~hieralloc.solvers.RebalancingModel` built once per episode and re-solved warm (their
  per-step paths ``solve_served`` / ``solve_flows``: the counts' signs and the fares' finiteness
  checked, costs and bounds changed on the HiGHS object), plus the bookkeeping, observation and
  infos;
* ``ours_greedy``: the same with ``matching='greedy'`` (the matching LP solved exactly by its
  separability; informational);
* ``cvxpy``: the same ``MobilityEnv.step`` with both LPs built as cvxpy problems at every solve
  and solved with cvxpy's HiGHS interface (a vertex solution, so the flows are integral and the
  episode continues exactly as the published simulators would; the same engine as ours, so the
  ratio is the cost of rebuilding the models through a modelling layer every step). The core
  drives these replacement models through their generic ``solve()`` interface; the bookkeeping,
  observation and infos around them are the same code as ``ours``.

Episodes alternate between the variants (same seeds, same actions). The ratio target is checked
on the medians over all steps; the JSON also records the ratio per block of ``BLOCK`` episodes
(``ratio_blocks``: its spread within the run, as the machine's load drifts). Every LP the cvxpy variant
solves is re-solved afterwards with our models and the optimal objective values must agree. The
LP instances are also solved with cvxpy's default solver (Clarabel, interior point) to report
its per-LP cost; its solutions are not vertices when the optimum is not unique, so it cannot drive
the integer simulation.

Targets (the issue's): ``ours`` median step <= 2 ms and >= 20x faster than ``cvxpy``. Writes JSON
and a Markdown table next to it; exits 1 when a target is missed (``--quick``: a smoke run,
targets reported but not enforced).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import scipy.sparse as sp

from hieralloc.bench.perf import machine_info, write_perf_report
from hieralloc.envs.mobility import MobilityConfig, MobilityEnv
from hieralloc.registry import get_env
from hieralloc.solvers import PassengerMatchingModel, RebalancingModel

TARGET_MS = 2.0
TARGET_RATIO = 20.0
SCENARIO = "mobility-nyc-brooklyn"
BLOCK = 5  # episodes per block of the within-run spread of the ratio


def _cvxpy() -> Any:
    try:
        import cvxpy as cp
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise SystemExit("benchmarks/mobility_step.py needs cvxpy: pip install 'hieralloc[bench]'") from e
    return cp


class CvxpyMatching:
    """The passenger-matching LP built with cvxpy at every solve (same formulation as ours)."""

    def __init__(self, n: int, solver: str | None, record: list[Any] | None = None) -> None:
        self.cp = _cvxpy()
        self.n, self.solver, self.record = n, solver, record

    def solve(self, demand: np.ndarray, idle: np.ndarray, fare: np.ndarray) -> Any:
        cp, n = self.cp, self.n
        f = cp.Variable((n, n))
        prob = cp.Problem(cp.Maximize(cp.sum(cp.multiply(fare, f))),
                          [f >= 0, f <= demand, cp.sum(f, axis=1) <= idle])
        value = prob.solve(solver=self.solver)
        served = np.rint(f.value)
        if self.record is not None:
            self.record.append((demand.copy(), idle.copy(), fare.copy(), float(value)))
        return SimpleNamespace(served=served)


class CvxpyRebalancing:
    """OHIO Eq. (30) with slack built with cvxpy at every solve (same formulation and penalty as ours)."""

    def __init__(self, n: int, solver: str | None, record: list[Any] | None = None) -> None:
        self.cp = _cvxpy()
        self.n, self.solver, self.record = n, solver, record
        ii, jj = np.nonzero(~np.eye(n, dtype=bool))
        e = np.arange(len(ii))
        self.ii, self.jj = ii, jj
        self.inc_in = sp.csr_matrix((np.ones(len(e)), (jj, e)), shape=(n, len(e)))
        self.inc_out = sp.csr_matrix((np.ones(len(e)), (ii, e)), shape=(n, len(e)))
        self.c = np.zeros(len(e))
        self.pen = np.ones(n)

    def solve(self, availability: np.ndarray, target: np.ndarray, cost: np.ndarray | None = None) -> Any:
        cp, n = self.cp, self.n
        if cost is not None:
            self.c = np.asarray(cost, dtype=float)[self.ii, self.jj]
            self.pen = np.full(n, 1.0 + n * float(np.abs(self.c).max()))  # RebalancingModel's default
        q, qh = np.asarray(availability, float), np.asarray(target, float)
        x = cp.Variable(len(self.c), nonneg=True)
        z = cp.Variable(n, nonneg=True)
        prob = cp.Problem(cp.Minimize(self.c @ x + self.pen @ z),
                          [self.inc_in @ x - self.inc_out @ x + q + z >= qh, self.inc_out @ x <= q])
        value = prob.solve(solver=self.solver)
        F = np.zeros((n, n))
        F[self.ii, self.jj] = np.rint(x.value)
        if self.record is not None:
            self.record.append((q.copy(), qh.copy(), self.c.copy(), float(value)))
        return SimpleNamespace(flow_matrix=F, slack=np.rint(z.value))


def run_episode(env: MobilityEnv, seed: int, actions: np.ndarray) -> list[float]:
    """Per-step wall times (seconds) of one episode with the given actions."""
    env.reset(seed=seed)
    times = []
    k = 0
    while env.agents:
        a = {"operator": actions[k]}
        t0 = time.perf_counter()
        env.step(a)
        times.append(time.perf_counter() - t0)
        k += 1
    return times


def summarise(times: Sequence[float]) -> dict[str, float]:
    ms = sorted(t * 1e3 for t in times)
    return {"median_ms": statistics.median(ms), "p10_ms": ms[int(0.1 * (len(ms) - 1))],
            "p90_ms": ms[int(0.9 * (len(ms) - 1))], "mean_ms": statistics.fmean(ms), "n": len(ms)}


def check_objectives(cfg: MobilityConfig, match_rec: list[Any], reb_rec: list[Any], tol: float
                     ) -> dict[str, float]:
    """Re-solve every recorded cvxpy LP with our models; returns the largest objective differences."""
    n = MobilityEnv(cfg).core.N
    pm = PassengerMatchingModel(n)
    worst_m = 0.0
    for d, m, w, v in match_rec:
        worst_m = max(worst_m, abs(pm.solve(d, m, w).revenue - v))
    worst_r = 0.0
    cost = None
    rm: RebalancingModel | None = None
    for q, qh, c, v in reb_rec:
        if rm is None or cost is None or not np.array_equal(c, cost):
            rm, cost = RebalancingModel(n, c), c
        worst_r = max(worst_r, abs(rm.solve(q, qh).objective - v))
    if max(worst_m, worst_r) > tol:
        raise SystemExit(f"benchmark sanity check failed: cvxpy and our LPs disagree "
                         f"(matching {worst_m:g}, rebalancing {worst_r:g})")
    return {"matching": worst_m, "rebalancing": worst_r}


def time_default_solver(cfg: MobilityConfig, match_rec: list[Any], reb_rec: list[Any], count: int
                        ) -> dict[str, Any]:
    """Per-LP build+solve time with cvxpy's default solver on recorded instances (and the largest
    difference of its optimal values from the recorded ones)."""
    n = MobilityEnv(cfg).core.N
    rec_m: list[Any] = []
    rec_r: list[Any] = []
    cm = CvxpyMatching(n, None, rec_m)
    cr = CvxpyRebalancing(n, None, rec_r)
    tm, tr = [], []
    for d, m, w, _v in match_rec[:count]:
        t0 = time.perf_counter()
        cm.solve(d, m, w)
        tm.append(time.perf_counter() - t0)
    for q, qh, c, _v in reb_rec[:count]:
        t0 = time.perf_counter()
        cr.solve(q, qh, cost=_full_cost(c, n))
        tr.append(time.perf_counter() - t0)
    dm = max(abs(a[3] - b[3]) for a, b in zip(rec_m, match_rec, strict=False))
    dr = max(abs(a[3] - b[3]) for a, b in zip(rec_r, reb_rec, strict=False))
    return {"matching": summarise(tm), "rebalancing": summarise(tr), "max_objective_diff": {"matching": dm,
                                                                                               "rebalancing": dr}}


def _full_cost(c: np.ndarray, n: int) -> np.ndarray:
    M = np.zeros((n, n))
    ii, jj = np.nonzero(~np.eye(n, dtype=bool))
    M[ii, jj] = c
    return M


def to_markdown(report: dict[str, Any]) -> str:
    r = report
    lines = [
        "# Mobility step benchmark",
        "",
        f"Produced by `{r['command']}` on {r['date']} ({r['machine']['platform']}, {r['machine']['cpu_count']} "
        f"CPUs, Python {r['machine']['python']}).",
        f"One `MobilityEnv.step` on `{SCENARIO}` ({r['setup']['regions']} regions, {r['setup']['fleet']} vehicles, "
        f"{r['setup']['episodes']} episodes x {r['setup']['steps_per_episode']} steps per variant, DISP actions): "
        "passenger-matching LP + rebalancing LP (OHIO Eq. (30)) + bookkeeping.",
        "",
        "| variant | median ms | p10-p90 ms | mean ms | steps |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, s in r["steps"].items():
        lines.append(f"| {name} | {s['median_ms']:.3f} | {s['p10_ms']:.3f}-{s['p90_ms']:.3f} | {s['mean_ms']:.3f} "
                     f"| {s['n']} |")
    lines += ["", "| target | measured | required | result |", "|---|---:|---:|---|"]
    for name, t in r["targets"].items():
        unit = "ms" if name.endswith("_ms") else "x"
        req = f"<= {t['required']:g} ms" if unit == "ms" else f">= {t['required']:g}x"
        lines.append(f"| {name} | {t['measured']:.3f}{' ms' if unit == 'ms' else 'x'} | {req} | "
                     f"{'PASS' if t['passed'] else 'FAIL'} |")
    d = r["cvxpy_default_per_lp"]
    lines += [
        "",
        "cvxpy's default solver (Clarabel) on the same LP instances, build + solve per LP: matching "
        f"{d['matching']['median_ms']:.3f} ms, rebalancing {d['rebalancing']['median_ms']:.3f} ms (median; "
        "interior-point solutions are not vertices when optima tie, so it cannot drive the integer simulation).",
        f"Largest objective difference between the cvxpy LPs and ours: matching "
        f"{r['objective_check']['matching']:.2e}, rebalancing {r['objective_check']['rebalancing']:.2e}.",
        "",
        f"cvxpy_over_ours per block of {r['ratio_blocks']['episodes_per_block']} episodes (its spread within the "
        f"run): {r['ratio_blocks']['min']:.1f}x to {r['ratio_blocks']['max']:.1f}x "
        f"({', '.join(f'{x:.1f}' for x in r['ratio_blocks']['ratios'])}).",
        "",
        "Other ratios (median step vs median step): " + ", ".join(f"{k} {v:.1f}x" for k, v in r["ratios"].items()),
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(r["machine"]["versions"].items())),
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 episodes (smoke run); targets not enforced")
    ap.add_argument("--out", default="benchmarks/results/mobility_step.json", help="JSON output path")
    ap.add_argument("--episodes", type=int, default=None, help="episodes per variant (default 20, quick 2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", default=None, help="data directory (default: $HIERALLOC_DATA_DIR)")
    args = ap.parse_args(argv)
    if args.data_dir:
        os.environ["HIERALLOC_DATA_DIR"] = str(Path(args.data_dir).expanduser())
    episodes = args.episodes or (2 if args.quick else 20)
    import hieralloc.envs.mobility  # noqa: F401  (registers the scenarios)

    spec = get_env(SCENARIO)
    cfg: MobilityConfig = spec.default_config()
    n = MobilityEnv(cfg).core.N
    match_rec: list[Any] = []
    reb_rec: list[Any] = []
    envs = {
        "ours": MobilityEnv(cfg),
        "ours_greedy": MobilityEnv(cfg.replace(matching="greedy")),
        "cvxpy": MobilityEnv(cfg, matching_model=CvxpyMatching(n, "HIGHS", match_rec),
                             rebalancing_model=CvxpyRebalancing(n, "HIGHS", reb_rec)),
    }
    rng = np.random.default_rng(args.seed)
    T = cfg.episode_length
    times: dict[str, list[float]] = {k: [] for k in envs}
    block_times: list[dict[str, list[float]]] = []
    returns: dict[str, list[float]] = {k: [] for k in envs}
    t_start = time.perf_counter()
    for env in envs.values():  # warm-up: imports, caches, cvxpy's first compilation
        run_episode(env, 10_000, rng.dirichlet(np.ones(n), T).astype(np.float32))
    match_rec.clear()
    reb_rec.clear()
    for ep in range(episodes):
        actions = rng.dirichlet(np.ones(n), T).astype(np.float32)  # DISP: Dirichlet(1) per step
        seed = args.seed * 1000 + ep
        if ep % BLOCK == 0:
            block_times.append({k: [] for k in envs})
        for name, env in envs.items():
            ts = run_episode(env, seed, actions)
            times[name] += ts
            block_times[-1][name] += ts
            returns[name].append(env.episode_metrics()["return"])
    objective_check = check_objectives(cfg, match_rec, reb_rec, tol=1e-6)
    default = time_default_solver(cfg, match_rec, reb_rec, count=min(len(match_rec), 100 if not args.quick else 10))
    steps = {k: summarise(v) for k, v in times.items()}
    ratio = steps["cvxpy"]["median_ms"] / steps["ours"]["median_ms"]
    blocks = [statistics.median(b["cvxpy"]) / statistics.median(b["ours"]) for b in block_times]
    ratio_blocks = {"episodes_per_block": BLOCK, "ratios": blocks, "min": min(blocks), "max": max(blocks)}
    targets = {
        "ours_median_step_ms": {"measured": steps["ours"]["median_ms"], "required": TARGET_MS,
                                "passed": steps["ours"]["median_ms"] <= TARGET_MS},
        "cvxpy_over_ours": {"measured": ratio, "required": TARGET_RATIO, "passed": ratio >= TARGET_RATIO},
    }
    lp_default_ms = default["matching"]["median_ms"] + default["rebalancing"]["median_ms"]
    ratios = {
        "cvxpy_over_ours_greedy": steps["cvxpy"]["median_ms"] / steps["ours_greedy"]["median_ms"],
        "ours_over_ours_greedy": steps["ours"]["median_ms"] / steps["ours_greedy"]["median_ms"],
        "cvxpy_default_two_lps_over_ours_step": lp_default_ms / steps["ours"]["median_ms"],
    }
    command = "python benchmarks/mobility_step.py" + (" --quick" if args.quick else "") + f" --out {args.out}"
    report = {
        "command": command,
        "quick": args.quick,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - t_start, 1),
        "machine": machine_info(("numpy", "scipy", "highspy", "cvxpy", "clarabel", "pettingzoo", "hieralloc")),
        "setup": {"scenario": SCENARIO, "regions": n, "fleet": envs["ours"].core.fleet, "episodes": episodes,
                  "steps_per_episode": T, "actions": "Dirichlet(1) per step (DISP)",
                  "config": cfg.to_dict()},
        "steps": steps,
        "mean_return": {k: float(np.mean(v)) for k, v in returns.items()},
        "objective_check": objective_check,
        "cvxpy_default_per_lp": default,
        "ratios": ratios,
        "ratio_blocks": ratio_blocks,
        "targets": targets,
    }
    for name, s in steps.items():
        print(f"{name:<12} median {s['median_ms']:.3f} ms  (p10 {s['p10_ms']:.3f}, p90 {s['p90_ms']:.3f})")
    for name, t in targets.items():
        print(f"{name}: {t['measured']:.3f} (required {'<=' if name.endswith('_ms') else '>='} {t['required']:g}) "
              f"{'PASS' if t['passed'] else 'FAIL'}")
    print(f"cvxpy_over_ours per block of {BLOCK} episodes: {ratio_blocks['min']:.1f} to {ratio_blocks['max']:.1f}")
    return write_perf_report(report, args.out, to_markdown, args.quick)


if __name__ == "__main__":
    raise SystemExit(main())
