"""Solver-layer benchmark: median per-solve times on identical random problems, in one run.

Usage::

    python benchmarks/solvers.py [--quick] [--out benchmarks/results/solvers.json]

Measures (every method solves the same list of problems; objectives are cross-checked):

* capacitated assignment 20x10 and 100x20: ours fast path (capacity-expanded
  ``linear_sum_assignment``), ours LP path (fresh HiGHS model per solve), ours reused
  :class:`AssignmentModel` (warm), ``scipy.optimize.linprog`` (fresh), cvxpy with its default
  solver (problem built and solved per instance: the usual per-step use), and cvxpy with a
  ``Parameter`` (compiled once; informational).
* rebalancing flow (OHIO Eq. (30) + slack), 20 and 100 regions: our reused HiGHS model with new
  availability/targets each solve vs our fresh model per solve (cold) vs a fresh ``linprog`` per
  solve vs cvxpy (built per solve).
* max-weight perfect matching, 50 teams (``scipy.optimize.milp``).

Targets, as ratios measured in the same run: assignment 20x10 ours (fast) >= 100x faster than
cvxpy; reused rebalancing model at 20 regions >= 3x faster than fresh linprog. Writes JSON and a
Markdown table next to it (same name, ``.md``); exits 1 when a target fails (with ``--quick``,
a smoke run with few problems, targets are reported but not enforced).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from hieralloc.bench.perf import machine_info, write_perf_report
from hieralloc.solvers import (
    AssignmentModel,
    RebalancingModel,
    assign_capacitated,
    max_weight_matching,
    solve_rebalancing,
)

TARGETS = {
    "assignment_20x10_fast_vs_cvxpy": 100.0,
    "rebalancing_20_reused_vs_linprog": 3.0,
}


def _import_cvxpy() -> Any:
    try:
        import cvxpy as cp
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise SystemExit("benchmarks/solvers.py needs cvxpy: pip install 'hieralloc[bench]'") from e
    return cp


def time_method(
    fn: Callable[[Any], float], problems: Sequence[Any], warmup: int = 2
) -> tuple[list[float], list[float]]:
    """Per-solve wall times (seconds) and returned objective values, after ``warmup`` solves."""
    for p in problems[:warmup]:
        fn(p)
    times, values = [], []
    for p in problems:
        t0 = time.perf_counter()
        v = fn(p)
        times.append(time.perf_counter() - t0)
        values.append(float(v))
    return times, values


def summarise(times: list[float]) -> dict[str, float]:
    ms = sorted(t * 1e3 for t in times)
    return {
        "median_ms": statistics.median(ms),
        "p10_ms": ms[int(0.1 * (len(ms) - 1))],
        "p90_ms": ms[int(0.9 * (len(ms) - 1))],
        "n": len(ms),
    }


# ---------------------------------------------------------------------------------------------
# capacitated assignment


def bench_assignment(n: int, m: int, count: int, rng: np.random.Generator) -> dict[str, Any]:
    cp = _import_cvxpy()
    cap = np.full(m, int(np.ceil(1.5 * n / m)), dtype=np.int64)
    problems = [rng.normal(size=(n, m)) for _ in range(count)]

    k = np.arange(n * m)
    A_eq = sp.csr_matrix((np.ones(n * m), (k // m, k)), shape=(n, n * m))
    A_ub = sp.csr_matrix((np.ones(n * m), (k % m, k)), shape=(m, n * m))
    ones_n, capf = np.ones(n), cap.astype(float)

    def ours_fast(S: np.ndarray) -> float:
        return assign_capacitated(S, cap, method="fast").objective

    def ours_lp(S: np.ndarray) -> float:
        return assign_capacitated(S, cap, method="lp").objective

    model = AssignmentModel(n, m, cap)

    def ours_model(S: np.ndarray) -> float:
        return model.solve(S).objective

    def scipy_linprog(S: np.ndarray) -> float:
        r = linprog(-S.ravel(), A_ub=A_ub, b_ub=capf, A_eq=A_eq, b_eq=ones_n, bounds=(0, 1), method="highs")
        return float(-r.fun)

    def cvxpy_default(S: np.ndarray) -> float:
        x = cp.Variable((n, m))
        prob = cp.Problem(cp.Maximize(cp.sum(cp.multiply(S, x))),
                          [cp.sum(x, axis=1) == 1, cp.sum(x, axis=0) <= cap, x >= 0, x <= 1])
        return float(prob.solve())

    P = cp.Parameter((n, m))
    xp = cp.Variable((n, m))
    pprob = cp.Problem(cp.Maximize(cp.sum(cp.multiply(P, xp))),
                       [cp.sum(xp, axis=1) == 1, cp.sum(xp, axis=0) <= cap, xp >= 0, xp <= 1])

    def cvxpy_param(S: np.ndarray) -> float:
        P.value = S
        return float(pprob.solve())

    methods = {
        "ours_fast": ours_fast,
        "ours_lp": ours_lp,
        "ours_lp_reused": ours_model,
        "scipy_linprog": scipy_linprog,
        "cvxpy_default": cvxpy_default,
        "cvxpy_param": cvxpy_param,
    }
    return _run_methods(methods, problems, exact=("ours_fast", "ours_lp", "ours_lp_reused", "scipy_linprog"),
                        info={"n_agents": n, "n_tasks": m, "capacity": int(cap[0])})


# ---------------------------------------------------------------------------------------------
# rebalancing flow


def bench_rebalancing(n: int, count: int, rng: np.random.Generator) -> dict[str, Any]:
    cp = _import_cvxpy()
    xy = rng.uniform(0, 10, (n, 2))
    C = np.round(1.0 + np.linalg.norm(xy[:, None] - xy[None], axis=-1), 3)  # travel cost ~ distance
    fleet = 10 * n
    problems = []
    for _ in range(count):
        q = rng.multinomial(fleet, rng.dirichlet(np.ones(n))).astype(float)
        qh = rng.multinomial(fleet, rng.dirichlet(np.ones(n))).astype(float)
        problems.append((q, qh))
    model = RebalancingModel(n, C)
    E = model.edges
    ne = len(E)
    pen = model.penalty
    cost = np.concatenate([C[E[:, 0], E[:, 1]], pen])
    e = np.arange(ne)
    # rows: -(inflow - outflow) - z <= q - q^   (30b);   outflow <= q   (30c)
    rows = np.concatenate([E[:, 1], E[:, 0], n + E[:, 0], np.arange(n)])
    cols = np.concatenate([e, e, e, ne + np.arange(n)])
    vals = np.concatenate([-np.ones(ne), np.ones(ne), np.ones(ne), -np.ones(n)])
    A_ub = sp.csr_matrix((vals, (rows, cols)), shape=(2 * n, ne + n))
    inc_in = sp.csr_matrix((np.ones(ne), (E[:, 1], e)), shape=(n, ne))
    inc_out = sp.csr_matrix((np.ones(ne), (E[:, 0], e)), shape=(n, ne))
    c_edges = C[E[:, 0], E[:, 1]]

    def ours_reused(p: tuple[np.ndarray, np.ndarray]) -> float:
        return model.solve(p[0], p[1]).objective

    def scipy_linprog(p: tuple[np.ndarray, np.ndarray]) -> float:
        q, qh = p
        r = linprog(cost, A_ub=A_ub, b_ub=np.concatenate([q - qh, q]), bounds=(0, None), method="highs")
        return float(r.fun)

    def cvxpy_default(p: tuple[np.ndarray, np.ndarray]) -> float:
        q, qh = p
        f = cp.Variable(ne, nonneg=True)
        z = cp.Variable(n, nonneg=True)
        prob = cp.Problem(cp.Minimize(c_edges @ f + pen @ z),
                          [inc_in @ f - inc_out @ f + q + z >= qh, inc_out @ f <= q])
        return float(prob.solve())

    def ours_fresh(p: tuple[np.ndarray, np.ndarray]) -> float:
        return solve_rebalancing(p[0], p[1], C).objective  # new HiGHS model per solve (cold)

    methods = {"ours_reused": ours_reused, "ours_fresh": ours_fresh, "scipy_linprog": scipy_linprog,
               "cvxpy_default": cvxpy_default}
    out = _run_methods(methods, problems, exact=("ours_reused", "ours_fresh", "scipy_linprog"),
                       info={"n_regions": n, "n_edges": int(ne), "fleet": fleet})
    return out


# ---------------------------------------------------------------------------------------------
# matching


def bench_matching(n: int, count: int, rng: np.random.Generator) -> dict[str, Any]:
    problems = []
    for _ in range(count):
        W = rng.normal(size=(n, n))
        problems.append((W + W.T) / 2)

    def ours_milp(W: np.ndarray) -> float:
        return max_weight_matching(W).value

    methods: dict[str, Callable[[Any], float]] = {"ours_milp": ours_milp}
    try:  # optional reference
        import networkx as nx

        def networkx_blossom(W: np.ndarray) -> float:
            G = nx.Graph()
            iu, ju = np.triu_indices(n, 1)
            G.add_weighted_edges_from(zip(iu.tolist(), ju.tolist(), (2 * W[iu, ju]).tolist(), strict=True))
            M = nx.max_weight_matching(G, maxcardinality=True)
            return float(sum(2 * W[a, b] for a, b in M))

        methods["networkx_blossom"] = networkx_blossom
    except ImportError:
        pass
    return _run_methods(methods, problems, exact=tuple(methods), info={"n_teams": n})


# ---------------------------------------------------------------------------------------------


def _run_methods(methods: dict[str, Callable[[Any], float]], problems: list[Any], exact: Sequence[str],
                 info: dict[str, Any]) -> dict[str, Any]:
    results: dict[str, Any] = {"problem": info, "methods": {}}
    values: dict[str, list[float]] = {}
    for name, fn in methods.items():
        times, vals = time_method(fn, problems)
        results["methods"][name] = summarise(times)
        values[name] = vals
    ref = np.array(values[exact[0]])
    # exact methods must agree; interior-point ones (cvxpy default = Clarabel) to their tolerance
    results["max_abs_objective_diff"] = {
        name: float(np.max(np.abs(np.array(v) - ref))) for name, v in values.items() if name != exact[0]
    }
    for name in exact:
        if results["max_abs_objective_diff"].get(name, 0.0) > 1e-6:
            raise SystemExit(f"benchmark sanity check failed: {name} disagrees with {exact[0]}")
    return results


def ratio(results: dict[str, Any], section: str, slow: str, fast: str) -> float:
    m = results[section]["methods"]
    return float(m[slow]["median_ms"] / m[fast]["median_ms"])


def to_markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Solver benchmarks",
        "",
        f"Produced by `{report['command']}` on {report['date']} "
        f"({report['machine']['platform']}, {report['machine']['cpu_count']} CPUs, "
        f"Python {report['machine']['python']}).",
        "Median (p10-p90) wall time per solve in milliseconds over identical random problems.",
        "",
        "| benchmark | method | median ms | p10-p90 ms | solves |",
        "|---|---|---:|---:|---:|",
    ]
    for section, res in report["results"].items():
        for name, s in res["methods"].items():
            lines.append(f"| {section} | {name} | {s['median_ms']:.4f} | {s['p10_ms']:.4f}-{s['p90_ms']:.4f} "
                         f"| {s['n']} |")
    lines += ["", "| target | measured ratio | required | result |", "|---|---:|---:|---|"]
    for name, t in report["targets"].items():
        lines.append(f"| {name} | {t['ratio']:.1f}x | >= {t['required']:.0f}x | "
                     f"{'PASS' if t['passed'] else 'FAIL'} |")
    lines += ["", "Other ratios (median vs median):", ""]
    for name, r in report["ratios"].items():
        if name not in report["targets"]:
            lines.append(f"- {name}: {r:.1f}x")
    v = report["machine"]["versions"]
    lines += ["", "Versions: " + ", ".join(f"{k} {v[k]}" for k in sorted(v)), ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="few problems (smoke run); targets not enforced")
    ap.add_argument("--out", default="benchmarks/results/solvers.json", help="JSON output path")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    count_small, count_large = (5, 3) if args.quick else (200, 40)

    t_start = time.perf_counter()
    results = {
        "assignment_20x10": bench_assignment(20, 10, count_small, rng),
        "assignment_100x20": bench_assignment(100, 20, count_large, rng),
        "rebalancing_20": bench_rebalancing(20, count_small, rng),
        "rebalancing_100": bench_rebalancing(100, count_large, rng),
        "matching_50": bench_matching(50, count_large, rng),
    }
    ratios = {
        "assignment_20x10_fast_vs_cvxpy": ratio(results, "assignment_20x10", "cvxpy_default", "ours_fast"),
        "assignment_20x10_fast_vs_linprog": ratio(results, "assignment_20x10", "scipy_linprog", "ours_fast"),
        "assignment_20x10_reused_lp_vs_cvxpy": ratio(results, "assignment_20x10", "cvxpy_default",
                                                     "ours_lp_reused"),
        "assignment_20x10_fast_vs_cvxpy_param": ratio(results, "assignment_20x10", "cvxpy_param", "ours_fast"),
        "assignment_100x20_fast_vs_cvxpy": ratio(results, "assignment_100x20", "cvxpy_default", "ours_fast"),
        "rebalancing_20_reused_vs_linprog": ratio(results, "rebalancing_20", "scipy_linprog", "ours_reused"),
        "rebalancing_20_reused_vs_cvxpy": ratio(results, "rebalancing_20", "cvxpy_default", "ours_reused"),
        "rebalancing_20_reused_vs_fresh_model": ratio(results, "rebalancing_20", "ours_fresh", "ours_reused"),
        "assignment_20x10_reused_lp_vs_fresh_lp": ratio(results, "assignment_20x10", "ours_lp", "ours_lp_reused"),
        "rebalancing_100_reused_vs_linprog": ratio(results, "rebalancing_100", "scipy_linprog", "ours_reused"),
        "rebalancing_100_reused_vs_cvxpy": ratio(results, "rebalancing_100", "cvxpy_default", "ours_reused"),
    }
    targets = {
        name: {"ratio": ratios[name], "required": req, "passed": ratios[name] >= req}
        for name, req in TARGETS.items()
    }
    command = "python benchmarks/solvers.py" + (" --quick" if args.quick else "") + f" --out {args.out}"
    report = {
        "command": command,
        "quick": args.quick,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - t_start, 1),
        "machine": machine_info(("numpy", "scipy", "highspy", "cvxpy", "clarabel", "torch", "hieralloc", "networkx")),
        "results": results,
        "ratios": ratios,
        "targets": targets,
    }
    for name, t in targets.items():
        print(f"{name}: {t['ratio']:.1f}x (required >= {t['required']:.0f}x) "
              f"{'PASS' if t['passed'] else 'FAIL'}")
    return write_perf_report(report, args.out, to_markdown, args.quick)


if __name__ == "__main__":
    raise SystemExit(main())
