"""Throughput of the coverage grid's batched core (and the PettingZoo wrapper, and the oracle).

Measures agent-steps per second (B episodes x N agents per core step) with N = 10 on the 50 x 50
Toy and synthetic-city grids, pinned to one CPU core with single-threaded numpy. Target: at least
10^6 agent-steps/s at B = 512. Also times the PettingZoo wrapper (B = 1) and the full-information
oracle (solve time and gap) for reference.

    python benchmarks/coverage_throughput.py [--quick] [--out benchmarks/results/coverage_throughput.json]

Writes the JSON file and a Markdown table next to it (same name, .md); exits 1 when the target is
missed.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

TARGET = 1_000_000.0
TARGET_BATCH = 512
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "coverage_throughput.json"


def pin_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        cpu = sorted(os.sched_getaffinity(0))[0]
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    return "not pinned (no sched_setaffinity)"


def core_throughput(scenario: str, batch: int, steps: int, repeats: int) -> dict:
    from hieralloc.envs.coverage import CoverageCore
    from hieralloc.registry import get_env

    cfg = get_env(scenario).default_config()
    core = CoverageCore(cfg, batch)
    core.reset(seed=0)
    acts = np.random.default_rng(0).integers(0, core.K, size=(64, batch, cfg.n_agents))
    for i in range(10):  # warm-up
        if core.t >= core.T:
            core.reset()
        core.step(acts[i])
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(steps):
            if core.t >= core.T:
                core.reset()  # resets are part of the measured loop
            core.step(acts[i % 64])
        dt = time.perf_counter() - t0
        rates.append(steps * batch * cfg.n_agents / dt)
    rate = statistics.median(rates)
    return {"kind": "core", "scenario": scenario, "batch": batch, "n_agents": cfg.n_agents,
            "grid": f"{cfg.height}x{cfg.width}", "steps": steps, "repeats": repeats,
            "agent_steps_per_s": rate, "ms_per_batch_step": 1e3 * batch * cfg.n_agents / rate}


def wrapper_throughput(scenario: str, steps: int) -> dict:
    from hieralloc.registry import get_env

    spec = get_env(scenario)
    env = spec.make(spec.default_config())
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    t0 = time.perf_counter()
    for _ in range(steps):
        if not env.agents:
            env.reset()
        env.step({a: int(rng.integers(9)) for a in env.agents})
    dt = time.perf_counter() - t0
    n = spec.default_config().n_agents
    return {"kind": "pettingzoo", "scenario": scenario, "batch": 1, "n_agents": n, "steps": steps,
            "agent_steps_per_s": steps * n / dt, "ms_per_batch_step": 1e3 * dt / steps}


def oracle_timing(scenario: str, seeds: list[int]) -> dict:
    from hieralloc.algos.oracles import OracleConfig, plan_env
    from hieralloc.registry import get_env

    spec = get_env(scenario)
    env = spec.make(spec.default_config())
    rows = []
    for s in seeds:
        env.reset(seed=s)
        t0 = time.perf_counter()
        plan = plan_env(env, OracleConfig())
        rows.append({"seed": s, "seconds": time.perf_counter() - t0, "served": plan.served,
                     "served_bound": plan.served_bound, "gap": plan.gap, "method": plan.method,
                     "status": plan.status})
    return {"kind": "oracle", "scenario": scenario, "runs": rows,
            "mean_seconds": statistics.mean(r["seconds"] for r in rows),
            "max_gap": max(r["gap"] for r in rows)}


def to_markdown(res: dict) -> str:
    lines = ["# Coverage grid throughput", "",
             f"Command: `{res['command']}`  ", f"Machine: {res['machine']['cpu']}, "
             f"Python {res['machine']['python']}, numpy {res['machine']['numpy']}, "
             f"{res['machine']['pinning']}  ",
             f"Target: >= {TARGET:,.0f} agent-steps/s at B = {TARGET_BATCH} (N = 10, 50x50): "
             f"**{'met' if res['passed'] else 'MISSED'}**", "",
             "| kind | scenario | B | N | agent-steps/s | ms per batch step |", "|---|---|---|---|---|---|"]
    for r in res["throughput"]:
        lines.append(f"| {r['kind']} | {r['scenario']} | {r['batch']} | {r['n_agents']} | "
                     f"{r['agent_steps_per_s']:,.0f} | {r['ms_per_batch_step']:.3f} |")
    lines += ["", "## Oracle (full information, default OracleConfig)", "",
              "| scenario | seed | seconds | served | served bound | gap | model | status |",
              "|---|---|---|---|---|---|---|---|"]
    for o in res["oracle"]:
        for r in o["runs"]:
            lines.append(f"| {o['scenario']} | {r['seed']} | {r['seconds']:.2f} | {r['served']:.2f} | "
                         f"{r['served_bound']:.2f} | {100 * r['gap']:.2f}% | {r['method']} | {r['status']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps, batches and oracle seeds")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output (Markdown next to it)")
    args = ap.parse_args(argv)
    pinning = pin_one_core()
    batches = [1, 64, TARGET_BATCH] if args.quick else [1, 64, 256, TARGET_BATCH, 1024]
    steps, repeats = (100, 3) if args.quick else (400, 5)
    throughput = []
    for scenario in ("coverage-toy", "coverage-city"):
        for b in batches:
            throughput.append(core_throughput(scenario, b, steps if b > 1 else 10 * steps, repeats))
            r = throughput[-1]
            print(f"core {scenario:14s} B={b:5d}: {r['agent_steps_per_s']:>14,.0f} agent-steps/s", flush=True)
        throughput.append(wrapper_throughput(scenario, 500 if args.quick else 2000))
        print(f"pettingzoo {scenario}: {throughput[-1]['agent_steps_per_s']:,.0f} agent-steps/s", flush=True)
    seeds = [0] if args.quick else [0, 1, 2]
    oracle = [oracle_timing(s, seeds) for s in ("coverage-toy", "coverage-city")]
    for o in oracle:
        print(f"oracle {o['scenario']}: {o['mean_seconds']:.2f} s mean, max gap {100 * o['max_gap']:.2f}%")
    at_target = [r for r in throughput if r["kind"] == "core" and r["batch"] == TARGET_BATCH]
    passed = all(r["agent_steps_per_s"] >= TARGET for r in at_target)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    res = {
        "benchmark": "coverage_throughput",
        "command": "python benchmarks/coverage_throughput.py" + (" --quick" if args.quick else ""),
        "machine": {"cpu": cpu, "python": platform.python_version(), "numpy": np.__version__,
                    "pinning": pinning},
        "target": {"agent_steps_per_s": TARGET, "batch": TARGET_BATCH, "n_agents": 10, "grid": "50x50"},
        "passed": passed,
        "throughput": throughput,
        "oracle": oracle,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(to_markdown(res))
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}; target {'met' if passed else 'MISSED'}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
