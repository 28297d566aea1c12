"""OHIO inverse benchmark (App. B.3.5): analytical inversion throughput and recovery error on held-out
transitions of the mobility environment, plus the duality inverse on perturbed flows.

Usage::

    python benchmarks/ohio_inverse.py [--quick] [--out benchmarks/results/ohio_inverse.json]

Needs the data directory (``HIERALLOC_DATA_DIR`` or ``--data-dir``) for ``mobility-nyc-brooklyn``.

What is measured, per scenario (``mobility-synthetic``, ``mobility-nyc-brooklyn``):

1. *Held-out transitions*: episodes of each behaviour policy (``disp``, ``prop``, ``inf``, ``dtv``,
   ``mpc-oracle``) in goal mode, collected in memory with the state's ``aux`` (the registered
   :class:`~hieralloc.ohio.Formulation`), the executed flows (``low_level``), the behaviour's goal
   (the action, normalised) and the integer targets the controller was given.
2. *Recovery*: ``Formulation.invert`` on all of them at once. ``targets_exact``: fraction whose
   inverted goal gives the same integer targets; ``goal_l1``: ``||invert - action||_1`` against the
   behaviour's real-valued goal (the integer rounding of the targets, at most about N / M);
   ``replay_identical``: the episodes replayed from the same seeds with the inverted goals instead
   of the actions, fraction of steps with bit-identical flows (same solver state);
   ``fresh_identical`` / ``fresh_same_distribution`` / ``fresh_same_cost``: the inverted goal solved
   by a *fresh* rebalancing LP (another warm-start state), where ties between equally cheap flow sets
   may pick another set.
3. *Throughput* of the analytical inverse: transitions per second of one batched ``invert`` call
   over the transitions tiled to ``--batch`` rows (median of repeats), and of a per-transition loop.
4. *Duality inverse* (:class:`~hieralloc.solvers.inverse.RebalancingInverse`, the absolute
   sub-optimality LP): on the exact flows (gap and target must be exact), and on perturbed flows:
   Gaussian noise of sigma vehicles on every edge (projected onto the supply constraints) and
   ``k`` vehicles sent to a wrong destination (feasible, sub-optimal). Reported: target error
   ``||q^~ - q^||_1`` in vehicles and relative to the idle vehicles, its ratio to the bound
   ``2 ||f~ - f||_1``, the sub-optimality gap, and solves per second.

Targets: batched analytical inversion >= 10,000 transitions per second (issue #5), exact target
recovery on every transition from the controller (fraction 1.0), bit-identical replay (1.0), duality
inverse exact on controller data (1.0) and within its bound on every perturbed transition (1.0).
Writes JSON and Markdown; exits 1 when a target is missed (``--quick``: smoke run, not enforced).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hieralloc.bench.perf import machine_info, write_perf_report
from hieralloc.envs.mobility import MobilityEnv, desired_targets
from hieralloc.eval import episode_seed
from hieralloc.ohio import get_formulation
from hieralloc.registry import get_algo, get_env
from hieralloc.solvers import RebalancingModel
from hieralloc.solvers.inverse import RebalancingInverse

TARGET_TPS = 10_000.0
BEHAVIOURS = ("disp", "prop", "inf", "dtv", "mpc-oracle")
SCENARIOS = ("mobility-synthetic", "mobility-nyc-brooklyn")
SIGMAS = (0.5, 2.0)
SWAPS = (1, 5)


def collect(env: MobilityEnv, behaviour: str, episodes: int, seed: int) -> dict[str, np.ndarray]:
    """Held-out transitions of ``behaviour`` (goal mode) with the true goals, in memory."""
    form = get_formulation("mobility")
    algo = get_algo(behaviour)
    pol = algo.build(env, algo.config_cls(), seed)
    rows: dict[str, list[Any]] = {k: [] for k in ("aux", "flows", "goal", "targets", "t", "episode", "seed")}
    for ep in range(episodes):
        s = episode_seed(seed, ep)
        obs, _ = env.reset(seed=s)
        pol.reset(env, s)
        while env.agents:
            aux = form.observe(env).aux
            t = env.t
            a = np.asarray(pol.act(obs)["operator"], dtype=float)
            obs, _r, _te, _tr, infos = env.step({"operator": a})
            info = infos["operator"]
            rows["aux"].append(aux)
            rows["flows"].append(form.low_level(env, info))
            rows["goal"].append(a / a.sum() if a.sum() > 0 else aux[:env.n_regions] / max(aux[:env.n_regions].sum(), 1))
            rows["targets"].append(info["targets"])
            rows["t"].append(t)
            rows["episode"].append(ep)
            rows["seed"].append(s)
    return {k: np.asarray(v) for k, v in rows.items()}


def replay_identical(env: MobilityEnv, data: dict[str, np.ndarray], goals: np.ndarray) -> float:
    """Fraction of steps whose flows are bit-identical when the episodes are replayed with the inverted goals."""
    form = get_formulation("mobility")
    same = 0
    k = 0
    for ep in np.unique(data["episode"]):
        idx = np.flatnonzero(data["episode"] == ep)
        env.reset(seed=int(data["seed"][idx[0]]))
        for i in idx:
            _o, _r, _te, _tr, infos = env.step({"operator": goals[i]})
            same += bool(np.array_equal(form.low_level(env, infos["operator"]), data["flows"][i]))
            k += 1
    return same / max(k, 1)


def fresh_solver(env: MobilityEnv, data: dict[str, np.ndarray], goals: np.ndarray) -> dict[str, float]:
    """The inverted goals through fresh rebalancing LPs: identical flows / distribution / cost fractions."""
    core = env.core
    src, dst = core.flow_edges[:, 0], core.flow_edges[:, 1]
    edges = None if env.config.rebalance_edges == "complete" else core.graph_edges
    N = core.N
    ident = dist = cost = 0
    for i in range(data["t"].shape[0]):
        q = data["aux"][i, :N]
        t = int(data["t"][i])
        tg = desired_targets(goals[i:i + 1], q[None].astype(np.int64), env.config.target_rounding)[0]
        res = RebalancingModel(N, core.reb_cost_matrix[t], edges=edges).solve(q, tg)
        f = res.flow_matrix[src, dst]
        obs = data["flows"][i]
        R = np.zeros((N, N))
        R[src, dst] = obs
        ident += bool(np.array_equal(f, obs))
        dist += bool(np.array_equal(res.next_idle, q + R.sum(axis=0) - R.sum(axis=1)))
        cost += bool(abs(res.cost - float((R * core.reb_cost_matrix[t]).sum())) <= 1e-9 * (1 + res.cost))
    n = max(data["t"].shape[0], 1)
    return {"fresh_identical": ident / n, "fresh_same_distribution": dist / n, "fresh_same_cost": cost / n}


def throughput(aux: np.ndarray, flows: np.ndarray, batch: int, repeats: int) -> dict[str, float]:
    form = get_formulation("mobility")
    reps = int(np.ceil(batch / aux.shape[0]))
    A = np.tile(aux, (reps, 1))[:batch]
    F = np.tile(flows, (reps, 1))[:batch]
    form.invert(A[:10], F[:10])  # warm caches
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        form.invert(A, F)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    n_loop = min(aux.shape[0], 2000)
    t0 = time.perf_counter()
    for i in range(n_loop):
        form.invert(aux[i], flows[i])
    loop = time.perf_counter() - t0
    return {"batch": batch, "median_s": med, "transitions_per_s": batch / med, "loop_transitions_per_s": n_loop / loop}


def duality(env: MobilityEnv, data: dict[str, np.ndarray], rng: np.random.Generator, quick: bool) -> dict[str, Any]:
    """The absolute sub-optimality inverse on exact and perturbed flows."""
    core = env.core
    N = core.N
    src, dst = core.flow_edges[:, 0], core.flow_edges[:, 1]
    edges = None if env.config.rebalance_edges == "complete" else core.graph_edges
    inv = RebalancingInverse(N, core.reb_cost_matrix[0], edges=edges)
    loaded = core.reb_cost_matrix[0]
    n = data["t"].shape[0] if not quick else min(20, data["t"].shape[0])
    cases: dict[str, dict[str, list[float]]] = {}

    def record(name: str, **vals: float) -> None:
        d = cases.setdefault(name, {})
        for k, v in vals.items():
            d.setdefault(k, []).append(float(v))

    t_solve = 0.0
    solves = 0
    for i in range(n):
        q = data["aux"][i, :N]
        t = int(data["t"][i])
        if not np.array_equal(core.reb_cost_matrix[t], loaded):
            loaded = core.reb_cost_matrix[t]
            inv.set_cost(loaded)
        f = data["flows"][i]
        truth = q.copy()
        np.add.at(truth, dst, f)
        np.subtract.at(truth, src, f)
        M = max(float(q.sum()), 1.0)
        t0 = time.perf_counter()
        r = inv.solve(q, f)
        t_solve += time.perf_counter() - t0
        solves += 1
        record("exact", err=np.abs(r.target - truth).sum(), gap=r.gap, exact=float(np.abs(r.target - truth).max() < 1e-9
                                                                                   and r.gap < 1e-6))
        perturbed: list[tuple[str, np.ndarray]] = [(f"gauss sigma={s:g}", f + rng.normal(0.0, s, f.shape))
                                                   for s in SIGMAS]
        for k in SWAPS:  # k vehicles sent to a wrong destination (feasible, sub-optimal)
            g = f.copy()
            for _ in range(k):
                moving = np.flatnonzero(g > 0)
                if moving.size == 0:
                    break
                e = int(rng.choice(moving))
                alt = np.flatnonzero((src == src[e]) & (dst != dst[e]))
                if alt.size == 0:
                    continue
                g[e] -= 1
                g[int(rng.choice(alt))] += 1
            perturbed.append((f"swap k={k}", g))
        for name, g in perturbed:
            t0 = time.perf_counter()
            r = inv.solve(q, g)
            t_solve += time.perf_counter() - t0
            solves += 1
            err = float(np.abs(r.target - truth).sum())
            bound = 2.0 * float(np.abs(r.flows - f).sum())
            record(name, err=err, rel_err=err / M, bound_ratio=err / bound if bound > 0 else 0.0,
                   within_bound=float(err <= bound + 1e-6), gap=r.gap, rel_gap=r.gap / max(r.cost, 1e-9),
                   removed=r.removed)
    out: dict[str, Any] = {"transitions": n, "solves_per_s": solves / t_solve if t_solve > 0 else float("nan")}
    for name, d in cases.items():
        out[name] = {k: float(np.mean(v)) for k, v in d.items()} | {
            k + "_max": float(np.max(v)) for k, v in d.items() if k in ("err", "gap", "bound_ratio")}
    return out


def run_scenario(scenario: str, episodes: int, seed: int, batch: int, repeats: int, quick: bool) -> dict[str, Any]:
    spec = get_env(scenario)
    cfg = spec.default_config()
    env = spec.make(cfg)
    form = get_formulation("mobility")
    rng = np.random.default_rng(seed)
    per: dict[str, Any] = {}
    all_aux, all_flows = [], []
    for beh in BEHAVIOURS:
        t0 = time.perf_counter()
        data = collect(env, beh, episodes, seed + 1)  # held out: other seeds than any evaluation at seed 0
        goals = form.invert(data["aux"], data["flows"])
        N = env.n_regions
        idle = data["aux"][:, :N].astype(np.int64)
        rec = desired_targets(goals, idle, cfg.target_rounding)
        res: dict[str, Any] = {
            "transitions": int(goals.shape[0]),
            "targets_exact": float(np.mean(np.all(rec == data["targets"], axis=1))),
            "targets_max_abs_err": int(np.abs(rec - data["targets"]).max()),
            "goal_l1_mean": float(np.abs(goals - data["goal"]).sum(axis=1).mean()),
            "goal_l1_max": float(np.abs(goals - data["goal"]).sum(axis=1).max()),
            "replay_identical": replay_identical(spec.make(cfg), data, goals),
            **fresh_solver(env, data, goals),
            "duality": duality(env, data, rng, quick),
            "seconds": 0.0,
        }
        res["seconds"] = round(time.perf_counter() - t0, 1)
        per[beh] = res
        all_aux.append(data["aux"])
        all_flows.append(data["flows"])
        print(f"{scenario} {beh:<10} n={res['transitions']} targets_exact={res['targets_exact']:.3f} "
              f"replay={res['replay_identical']:.3f} fresh_identical={res['fresh_identical']:.3f} "
              f"({res['seconds']} s)", flush=True)
    tp = throughput(np.concatenate(all_aux), np.concatenate(all_flows), batch, repeats)
    print(f"{scenario} invert: {tp['transitions_per_s']:,.0f} transitions/s batched, "
          f"{tp['loop_transitions_per_s']:,.0f}/s one by one", flush=True)
    return {"regions": env.n_regions, "flow_edges": int(env.n_flow_edges), "fleet": int(env.core.fleet),
            "episodes_per_behaviour": episodes, "config": cfg.to_dict(), "behaviours": per, "throughput": tp}


def to_markdown(report: dict[str, Any]) -> str:
    r = report
    lines = ["# OHIO inverse benchmark (App. B.3.5)", "",
             f"Produced by `{r['command']}` on {r['date']} ({r['machine']['platform']}, {r['machine']['cpu_count']} "
             f"CPUs, Python {r['machine']['python']}), {r['seconds']} s.",
             "Held-out goal-mode transitions of each behaviour policy (episode seeds from evaluation seed "
             f"{r['setup']['seed'] + 1}), inverted by the registered mobility Formulation.", ""]
    for sc, s in r["scenarios"].items():
        tp = s["throughput"]
        lines += [f"## {sc} ({s['regions']} regions, {s['flow_edges']} flow edges, {s['fleet']} vehicles, "
                  f"{s['episodes_per_behaviour']} episodes per behaviour)", "",
                  "| behaviour | transitions | targets exact | goal L1 vs action (mean / max) | replay identical | "
                  "fresh LP: identical flows | same distribution | same cost |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for b, v in s["behaviours"].items():
            lines.append(f"| {b} | {v['transitions']} | {v['targets_exact']:.3f} | {v['goal_l1_mean']:.4f} / "
                         f"{v['goal_l1_max']:.4f} | {v['replay_identical']:.3f} | {v['fresh_identical']:.3f} | "
                         f"{v['fresh_same_distribution']:.3f} | {v['fresh_same_cost']:.3f} |")
        lines += ["", f"Analytical inverse: **{tp['transitions_per_s']:,.0f} transitions/s** (one batched call over "
                  f"{tp['batch']:,} transitions, median {tp['median_s'] * 1e3:.2f} ms); "
                  f"{tp['loop_transitions_per_s']:,.0f}/s called one transition at a time.", "",
                  "Duality inverse (absolute sub-optimality LP), mean over transitions of all behaviours:", "",
                  "| flows | target error (vehicles) | relative to idle | error / bound 2‖f~-f‖₁ (mean / max) | "
                  "within bound | gap ε | gap / cost |", "|---|---:|---:|---:|---:|---:|---:|"]
        keys = [k for k in next(iter(s["behaviours"].values()))["duality"] if isinstance(
            next(iter(s["behaviours"].values()))["duality"][k], dict)]
        for k in keys:
            vals = [v["duality"][k] for v in s["behaviours"].values()]
            w = [v["duality"]["transitions"] for v in s["behaviours"].values()]

            def avg(key: str, vals: list[dict[str, float]] = vals, w: list[int] = w) -> float:
                return float(np.average([x.get(key, 0.0) for x in vals], weights=w))

            if k == "exact":
                lines.append(f"| exact (controller) | {avg('err'):.2e} | - | - | - | {avg('gap'):.2e} | - |")
            else:
                mx = max(x["bound_ratio_max"] for x in vals)
                lines.append(f"| {k} | {avg('err'):.2f} | {avg('rel_err'):.4f} | {avg('bound_ratio'):.3f} / {mx:.3f} | "
                             f"{avg('within_bound'):.3f} | {avg('gap'):.2f} | {avg('rel_gap'):.4f} |")
        sps = statistics.fmean(v["duality"]["solves_per_s"] for v in s["behaviours"].values())
        lines += ["", f"Duality inverse: {sps:,.0f} LP solves per second (warm HiGHS re-solves).", ""]
    lines += ["| target | measured | required | result |", "|---|---:|---:|---|"]
    for name, t in r["targets"].items():
        lines.append(f"| {name} | {t['measured']:,.3f} | {t['rule']} | {'PASS' if t['passed'] else 'FAIL'} |")
    lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(r["machine"]["versions"].items())), ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 episode per behaviour, small batch (smoke run)")
    ap.add_argument("--out", default="benchmarks/results/ohio_inverse.json", help="JSON output path")
    ap.add_argument("--episodes", type=int, default=None, help="episodes per behaviour (default 10, quick 1)")
    ap.add_argument("--batch", type=int, default=None, help="rows of the batched inversion (default 100000)")
    ap.add_argument("--scenario", action="append", help="scenario (repeatable; default synthetic and NYC Brooklyn)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", default=None, help="data directory (default: $HIERALLOC_DATA_DIR)")
    args = ap.parse_args(argv)
    if args.data_dir:
        os.environ["HIERALLOC_DATA_DIR"] = str(Path(args.data_dir).expanduser())
    episodes = args.episodes or (1 if args.quick else 10)
    batch = args.batch or (10_000 if args.quick else 100_000)
    repeats = 3 if args.quick else 7
    t_start = time.perf_counter()
    scenarios = {sc: run_scenario(sc, episodes, args.seed, batch, repeats, args.quick)
                 for sc in (args.scenario or SCENARIOS)}
    targets: dict[str, dict[str, Any]] = {}
    for sc, s in scenarios.items():
        tps = s["throughput"]["transitions_per_s"]
        targets[f"{sc}: invert transitions/s"] = {"measured": tps, "required": TARGET_TPS,
                                                 "rule": f">= {TARGET_TPS:,.0f}", "passed": tps >= TARGET_TPS}
        for key in ("targets_exact", "replay_identical"):
            v = min(b[key] for b in s["behaviours"].values())
            targets[f"{sc}: {key} (min over behaviours)"] = {"measured": v, "required": 1.0, "rule": "= 1",
                                                             "passed": v == 1.0}
        v = min(b["duality"]["exact"]["exact"] for b in s["behaviours"].values())
        targets[f"{sc}: duality exact on controller flows"] = {"measured": v, "required": 1.0, "rule": "= 1",
                                                               "passed": v == 1.0}
        v = min(b["duality"][k]["within_bound"] for b in s["behaviours"].values()
                for k in b["duality"] if isinstance(b["duality"][k], dict) and k != "exact")
        targets[f"{sc}: perturbed target error within its bound"] = {"measured": v, "required": 1.0, "rule": "= 1",
                                                              "passed": v == 1.0}
    command = "python benchmarks/ohio_inverse.py" + (" --quick" if args.quick else "") + f" --out {args.out}"
    report = {
        "command": command,
        "quick": args.quick,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - t_start, 1),
        "machine": machine_info(("numpy", "scipy", "highspy", "hieralloc")),
        "setup": {"behaviours": list(BEHAVIOURS), "episodes_per_behaviour": episodes, "seed": args.seed,
                  "batch": batch, "repeats": repeats, "sigmas": list(SIGMAS), "swaps": list(SWAPS)},
        "scenarios": scenarios,
        "targets": targets,
    }
    for name, t in targets.items():
        print(f"{name}: {t['measured']:,.3f} ({t['rule']}) {'PASS' if t['passed'] else 'FAIL'}")
    return write_perf_report(report, args.out, to_markdown, args.quick)


if __name__ == "__main__":
    raise SystemExit(main())
