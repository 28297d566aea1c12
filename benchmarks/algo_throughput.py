"""Training throughput of the cooperative MARL learners on the coverage grid, next to the env-only rate.

Usage::

    python benchmarks/algo_throughput.py [--quick] [--out benchmarks/results/algo_throughput.json]
                                         [--scenario coverage-toy] [--algos iql,vdn,...] [--seconds S]

For each algorithm (default config, ``train.threads = 1`` as in ``hieralloc train``) the learner is
built on the scenario (default ``coverage-toy``: 50 x 50, N = 10, T = 20), warmed up until it
trains in its steady state (value-based: the replay buffer holds ``batch_size`` episodes, so every
iteration collects one episode and takes its gradient steps; PPO: one iteration), then
``train_iteration`` runs for a wall-clock budget. Reported per algorithm:

* ``frames_per_s``: training frames (environment steps x agents) per second, collection and
  updates together;
* ``env_time_share``: the fraction of that time spent inside ``env.reset``/``env.step`` (the
  environment is wrapped in a timing proxy);
* ``env_only_over_train``: the env-only frame rate divided by the training frame rate.

Env-only rates in the same run: the same PettingZoo env stepped with uniformly random valid
actions (``env_pettingzoo``), and the batched numpy core stepping 64 episodes at once
(``env_core_batch64``). Target: the environment takes less than half of the training time for
every algorithm (it is not the bottleneck). Writes JSON and a Markdown table next to it (same
name, ``.md``); exits 1 when a target fails (``--quick``: short budgets, targets reported only).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

import hieralloc.algos.pg  # noqa: F401  (registers ippo, mappo)
import hieralloc.algos.value  # noqa: F401  (registers vdn, qmix, qplex)
from hieralloc import registry
from hieralloc.bench.perf import machine_info, write_perf_report
from hieralloc.config import from_dict

ALGOS = ("iql", "vdn", "qmix", "qplex", "ippo", "mappo")
ENV_SHARE_TARGET = 0.5


class TimedEnv:
    """Forwards everything to a PettingZoo env and accumulates the time spent in reset/step."""

    def __init__(self, env: Any) -> None:
        self._env = env
        self.seconds = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._env, name)

    def reset(self, *args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return self._env.reset(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t

    def step(self, actions: Any) -> Any:
        t = time.perf_counter()
        try:
            return self._env.step(actions)
        finally:
            self.seconds += time.perf_counter() - t


def env_only_pettingzoo(spec: registry.EnvSpec, seconds: float) -> dict[str, float]:
    """Frames per second of the PettingZoo env with random valid actions (masks from infos)."""
    env = spec.make(spec.default_config())
    rng = np.random.default_rng(0)
    steps = 0
    episodes = 0
    n = len(env.possible_agents)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        _, infos = env.reset(seed=episodes)
        episodes += 1
        while env.agents:
            acts = {}
            for a in env.agents:
                valid = np.flatnonzero(infos[a]["action_mask"])
                acts[a] = int(valid[rng.integers(len(valid))])
            _, _, _, _, infos = env.step(acts)
            steps += 1
    dt = time.perf_counter() - t0
    return {"frames_per_s": steps * n / dt, "steps": float(steps), "seconds": dt}


def env_only_core(spec: registry.EnvSpec, seconds: float, batch: int = 64) -> dict[str, float]:
    """Frames per second of the batched numpy core (``batch`` episodes stepped together)."""
    from hieralloc.envs.coverage import CoverageCore

    cfg = spec.default_config()
    core = CoverageCore(cfg, batch)
    rng = np.random.default_rng(0)
    steps = 0
    t0 = time.perf_counter()
    ep = 0
    while time.perf_counter() - t0 < seconds:
        core.reset(seed=ep)
        ep += 1
        for _ in range(core.T):
            core.step(rng.integers(0, core.K, size=(core.B, core.N)))
            steps += 1
    dt = time.perf_counter() - t0
    return {"frames_per_s": steps * core.B * core.N / dt, "steps": float(steps * core.B), "seconds": dt}


def bench_algo(name: str, spec: registry.EnvSpec, seconds: float) -> dict[str, Any]:
    algo = registry.get_algo(name)
    cfg = from_dict(algo.config_cls, {})
    env = TimedEnv(spec.make(spec.default_config()))
    learner = algo.build(env, cfg, 0)
    n_agents = len(env.possible_agents)
    # warm-up to the steady state: value-based learners start updating once the buffer holds a batch
    warm = int(getattr(cfg, "batch_size", 1)) if hasattr(cfg, "buffer_size") else 1
    for _ in range(warm):
        learner.train_iteration()
    env.seconds = 0.0
    steps0, upd0, it = learner.env_steps, getattr(learner, "updates", 0), 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds or it == 0:
        learner.train_iteration()
        it += 1
    dt = time.perf_counter() - t0
    steps = learner.env_steps - steps0
    return {
        "frames_per_s": steps * n_agents / dt,
        "env_steps": steps,
        "seconds": dt,
        "iterations": it,
        "gradient_steps": getattr(learner, "updates", 0) - upd0,
        "env_time_share": env.seconds / dt,
        "config": {k: v for k, v in dataclasses.asdict(cfg).items()
                   if k in ("sharing", "hidden", "recurrent", "batch_size", "updates_per_episode",
                            "episodes_per_iteration", "epochs", "n_minibatches", "critic_input")},
    }


def to_markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        "# Training throughput of the MARL core",
        "",
        f"Produced by `{report['command']}` on {report['date']} ({m['platform']}, {m['cpu_count']} CPUs, "
        f"torch {m['versions']['torch']}, {m['torch_threads']} thread, 1-min load average "
        f"{m['load_average_1min']:.1f} at the start and {report['load_average_end']:.1f} at the end: "
        f"absolute rates scale with the CPU share; the env share and ratios are measured in the same "
        f"conditions). Scenario `{report['scenario']}` "
        f"(N = {report['n_agents']} agents); default configs; frames = environment steps x agents; "
        f"{report['seconds_per_algo']} s of steady-state training per algorithm.",
        "",
        "| algorithm | frames/s | env steps/s | gradient steps/s | env share of time | env-only / train |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    n = report["n_agents"]
    for name, r in report["algorithms"].items():
        lines.append(f"| {name} | {r['frames_per_s']:.0f} | {r['frames_per_s'] / n:.0f} | "
                     f"{r['gradient_steps'] / r['seconds']:.1f} | {r['env_time_share']:.1%} | "
                     f"{r['env_only_over_train']:.1f}x |")
    e = report["env_only"]
    lines += [
        "",
        f"Env only, same run: PettingZoo env with random valid actions {e['env_pettingzoo']['frames_per_s']:.0f} "
        f"frames/s; batched core (64 episodes per step) {e['env_core_batch64']['frames_per_s']:.0f} frames/s.",
        "",
        f"Target: env share of training time < {ENV_SHARE_TARGET:.0%} for every algorithm: "
        f"{'passed' if report['all_targets_passed'] else 'FAILED'}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="short budgets (smoke run); targets not enforced")
    ap.add_argument("--out", default="benchmarks/results/algo_throughput.json", help="JSON output path")
    ap.add_argument("--scenario", default="coverage-toy", help="coverage scenario (default coverage-toy)")
    ap.add_argument("--algos", default=",".join(ALGOS), help="comma-separated algorithm names")
    ap.add_argument("--seconds", type=float, default=None, help="timed seconds per algorithm "
                    "(default 20, --quick 2)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    registry.load_builtins()
    spec = registry.get_env(args.scenario)
    seconds = args.seconds if args.seconds is not None else (2.0 if args.quick else 20.0)
    t_start = time.perf_counter()
    machine = {**machine_info(("numpy", "torch", "pettingzoo", "gymnasium", "hieralloc")),
               "torch_threads": torch.get_num_threads()}
    env_only = {"env_pettingzoo": env_only_pettingzoo(spec, seconds),
                "env_core_batch64": env_only_core(spec, seconds)}
    algos = [a.strip() for a in args.algos.split(",") if a.strip()]
    results: dict[str, Any] = {}
    for name in algos:
        r = bench_algo(name, spec, seconds)
        r["env_only_over_train"] = env_only["env_pettingzoo"]["frames_per_s"] / r["frames_per_s"]
        results[name] = r
        print(f"{name:6s} {r['frames_per_s']:8.0f} frames/s  env share {r['env_time_share']:.1%}", flush=True)
    targets = {name: {"env_time_share": r["env_time_share"], "required_below": ENV_SHARE_TARGET,
                      "passed": r["env_time_share"] < ENV_SHARE_TARGET} for name, r in results.items()}
    report = {
        "command": "python benchmarks/algo_throughput.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "quick": args.quick,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - t_start, 1),
        "seconds_per_algo": seconds,
        "scenario": args.scenario,
        "n_agents": len(spec.make(spec.default_config()).possible_agents),
        "machine": machine,
        "load_average_end": os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"),
        "env_only": env_only,
        "algorithms": results,
        "targets": targets,
    }
    return write_perf_report(report, args.out, to_markdown, args.quick)


if __name__ == "__main__":
    sys.exit(main())
