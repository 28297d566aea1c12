"""HGRL planning time per decision: N = 10 agents on the 50 x 50 Toy, one CPU core.

Usage::

    python benchmarks/hgrl_planning.py [--quick] [--out benchmarks/results/hgrl_planning.json]

What is measured: the wall-clock time of one ``policy.act`` call of the deployable HGRL policy
(:class:`~hieralloc.algos.hgrl.learner.HGRLPolicy`), through the one evaluation path
(:func:`hieralloc.eval.evaluate`, its ``decision_ms``): at each step the due levels re-decide
top-down (level 2 every tau = 3 steps: Eq. (11) embedding, GRU Q-network, region choice; level 1
every step), reading GDI-Net's cached multi-scale maps (Sec. 4.2). The networks have App. C's
sizes (FC-GRU(64)-FC per level, two levels) and GDI-Net is fitted on random-exploration
observations first, as a trained run would be; the time of a decision does not depend on the
weights' values. For scale, EADS (the paper's fastest method) and the flat VDN on GDI-Net inputs are
timed in the same run.

Target (HGRL issue): at most 10 ms per decision on one core (paper, Table 1: 0.79 s on a GPU
server). Writes JSON and a Markdown table; exits 1 when the target is missed (``--quick``: a smoke
run, targets not enforced).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import statistics
from collections.abc import Sequence
from typing import Any

import torch

from hieralloc.bench.perf import decision_time_markdown, machine_info, write_perf_report
from hieralloc.config import from_dict
from hieralloc.eval import evaluate
from hieralloc.registry import get_algo, get_env

TARGET_MS = 10.0
SCENARIO = "coverage-toy"


def _time(policy: Any, env: Any, episodes: int) -> dict[str, float]:
    per_episode = [ep["decision_ms"] for ep in evaluate(policy, env, episodes, 0)]
    return {"mean_ms": statistics.fmean(per_episode), "median_ms": statistics.median(per_episode),
            "max_episode_ms": max(per_episode), "episodes": episodes}


def run(episodes: int, quick: bool) -> dict[str, Any]:
    torch.set_num_threads(1)
    spec = get_env(SCENARIO)
    env = spec.make(spec.default_config())
    hgrl = get_algo("hgrl")
    feats = {"explore_episodes": 2 if quick else 10, "initial_steps": 10 if quick else 300}
    results: dict[str, Any] = {}
    for label, over in (("hgrl", {}), ("vdn_gdi", {"levels": 1, "gradients": False})):
        learner = hgrl.build(env, from_dict(hgrl.config_cls, {"features": feats, **over}), 0)
        learner.train_iteration()  # exploration, the first GDI-Net fit, one episode
        results[label] = _time(learner.policy, spec.make(spec.default_config()), episodes)
    eads = get_algo("eads")
    results["eads"] = _time(eads.build(env, eads.config_cls(), 0), spec.make(spec.default_config()), episodes)
    ms = results["hgrl"]["median_ms"]
    return {
        "benchmark": "hgrl_planning",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": quick,
        "machine": machine_info(["torch", "numpy"]),
        "setting": {"scenario": SCENARIO, "n_agents": 10, "grid": "50x50", "levels": 2, "tau": 3, "threads": 1},
        "results": results,
        "targets": {"hgrl_median_ms_per_decision": {"value": ms, "target": TARGET_MS, "passed": ms <= TARGET_MS}},
    }


def to_markdown(r: dict[str, Any]) -> str:
    names = {"hgrl": "HGRL (2 levels, tau = 3)", "vdn_gdi": "VDN on GDI-Net inputs (flat)", "eads": "EADS"}
    return decision_time_markdown(r, "HGRL planning time per decision (N = 10, 50 x 50 Toy, one core)",
                                  "python benchmarks/hgrl_planning.py", names, "hgrl_median_ms_per_decision",
                                  " for HGRL (paper: 790 ms on a GPU server)")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run (2 episodes; targets not enforced)")
    ap.add_argument("--out", default="benchmarks/results/hgrl_planning.json")
    args = ap.parse_args(argv)
    report = run(2 if args.quick else 20, args.quick)
    return write_perf_report(report, args.out, to_markdown, args.quick)


if __name__ == "__main__":
    raise SystemExit(main())
