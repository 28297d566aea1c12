"""OHIO inference time per decision on the largest shared city (Shenzhen downtown-west, 17 regions).

Usage::

    python benchmarks/ohio_inference.py [--quick] [--out benchmarks/results/ohio_inference.json]

What is measured: the wall-clock time of one ``policy.act`` call of the deployable OHIO high-level
policy, through the one evaluation path (:func:`hieralloc.eval.evaluate`, its ``decision_ms``):
graph features -> GCN encoder (App. B.5.1, width 256) -> Dirichlet concentrations -> the goal
(the environment's rebalancing LP then executes it; that LP is part of the environment step,
benchmarked by ``mobility_step.py``). The end-to-end policy (edge convolution over the 272 flow
edges) is timed in the same run. The networks have the paper's sizes; the time of a decision does
not depend on the weights' values, so an untrained policy is timed. The largest of the shared
scenarios by regions is Shenzhen downtown-west (17 regions; Chicago has more vehicles, not more
regions, and the policy's cost grows with the graph only).

Target (OHIO issue): at most 50 ms per decision. Writes JSON and a Markdown table; exits 1 when the
target is missed (``--quick``: a smoke run, targets not enforced).
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

TARGET_MS = 50.0
SCENARIO = "mobility-shenzhen-dtw"


def run(episodes: int, quick: bool) -> dict[str, Any]:
    torch.set_num_threads(1)
    spec = get_env(SCENARIO)
    sac = get_algo("sac")
    results: dict[str, Any] = {}
    for label, mode in (("ohio", "goal"), ("e2e", "flow")):
        cfg: Any = from_dict(spec.config_cls, {**spec.default_config().to_dict(), "action_mode": mode})
        env = spec.make(cfg)
        learner = sac.build(env, from_dict(sac.config_cls, {"hidden": 256}), 0)
        per_episode = [ep["decision_ms"] for ep in evaluate(learner.policy, spec.make(cfg), episodes, 0)]
        results[label] = {"mean_ms": statistics.fmean(per_episode), "median_ms": statistics.median(per_episode),
                          "max_episode_ms": max(per_episode), "episodes": episodes}
    ms = results["ohio"]["median_ms"]
    return {
        "benchmark": "ohio_inference",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": quick,
        "machine": machine_info(["torch", "numpy"]),
        "setting": {"scenario": SCENARIO, "regions": 17, "hidden": 256, "threads": 1},
        "results": results,
        "targets": {"ohio_median_ms_per_decision": {"value": ms, "target": TARGET_MS, "passed": ms <= TARGET_MS}},
    }


def to_markdown(r: dict[str, Any]) -> str:
    names = {"ohio": "OHIO (GCN + Dirichlet goal, width 256)", "e2e": "end-to-end (edge convolution, 272 flow edges)"}
    return decision_time_markdown(r, "OHIO inference time per decision (Shenzhen downtown-west, 17 regions, one core)",
                                  "python benchmarks/ohio_inference.py", names, "ohio_median_ms_per_decision",
                                  " for the OHIO policy")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run (1 episode; targets not enforced)")
    ap.add_argument("--out", default="benchmarks/results/ohio_inference.json")
    args = ap.parse_args(argv)
    report = run(1 if args.quick else 10, args.quick)
    return write_perf_report(report, args.out, to_markdown, args.quick)


if __name__ == "__main__":
    raise SystemExit(main())
