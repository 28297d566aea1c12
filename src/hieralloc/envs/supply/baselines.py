"""Returns of the supply-chain behaviour policies (HEUR, MPC, MPC-Oracle) as a Markdown table.

Usage::

    python -m hieralloc.envs.supply.baselines [ENV ...] [--episodes 10] [--seed 0]

Every policy runs the same ``--episodes`` evaluation episodes (``hieralloc.eval.evaluate``, episode i
reset with ``episode_seed(seed, i)``) of each environment (default: the three registered
scenarios). The score is OHIO Sec. 5's normalisation, ``100 x mean return / mean MPC-Oracle return``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

SCENARIOS = ("supply-1w3s", "supply-1w10s", "supply-1w10s-cap")


def compare(env_name: str, episodes: int, seed: int) -> list[dict[str, Any]]:
    """One row per policy: name, mean and std of the return, score, fill rate, back-orders, violations."""
    from hieralloc.envs.supply.policies import ORACLE_NAME
    from hieralloc.errors import HierallocError
    from hieralloc.eval import evaluate
    from hieralloc.registry import get_algo, get_env

    spec = get_env(env_name)
    if spec.family != "supply":
        raise HierallocError(f"'{env_name}' is a {spec.family} environment; these baselines need a supply "
                             f"environment ({', '.join(SCENARIOS)})")
    env = spec.make(spec.default_config())
    rows: list[dict[str, Any]] = []
    for name in ("heur", "mpc", ORACLE_NAME):
        algo = get_algo(name)
        eps = evaluate(algo.build(env, algo.config_cls(), seed), env, episodes=episodes, seed=seed)
        ret = np.array([e["return"] for e in eps])
        rows.append({"env": env_name, "policy": name, "return": float(ret.mean()), "std": float(ret.std()),
                     "fill_rate": float(np.mean([e["fill_rate"] for e in eps])),
                     "backorders": float(np.mean([e["backorders"] for e in eps])),
                     "decision_ms": float(np.mean([e["decision_ms"] for e in eps]))})
    oracle = float(rows[-1]["return"])
    for r in rows:
        r["score"] = 100.0 * float(r["return"]) / oracle if oracle else float("nan")
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from hieralloc.errors import HierallocError

    ap = argparse.ArgumentParser(prog="python -m hieralloc.envs.supply.baselines", description=__doc__.split("\n")[0])
    ap.add_argument("envs", nargs="*", default=list(SCENARIOS), help="supply environments or scenarios")
    ap.add_argument("--episodes", type=int, default=10, help="evaluation episodes per policy")
    ap.add_argument("--seed", type=int, default=0, help="evaluation seed")
    args = ap.parse_args(argv)
    try:
        rows = [r for name in args.envs for r in compare(name, args.episodes, args.seed)]
    except HierallocError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{args.episodes} episodes, seed {args.seed}\n")
    print("| environment | policy | return (mean +- std) | score | fill rate | back-ordered unit-steps | ms/decision |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['env']} | {r['policy']} | {r['return']:.1f} +- {r['std']:.1f} | {r['score']:.1f} | "
              f"{r['fill_rate']:.3f} | {r['backorders']:.1f} | {r['decision_ms']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
