"""Grid search of the order-up-to levels of the ``heur`` policy (OHIO App. B.4.3).

Usage::

    python -m hieralloc.envs.supply.search supply-1w3s [--episodes 20] [--seed 20240001] [--top 5]
        [--set key=value ...]

ENV is a registered supply environment or scenario; ``--set`` changes environment config fields
(e.g. ``--set production_capacity=30``). Prints the best (store level, warehouse level) pair, its
mean return and the best pairs of the grid. ``TUNED_LEVELS`` in
:mod:`hieralloc.envs.supply.policies` holds the results for the registered scenarios, produced by
this command with its defaults; ``hieralloc train ENV heur algo.levels=[S,W]`` uses other levels.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import numpy as np


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from hieralloc.config import parse_override
    from hieralloc.envs.supply.policies import SEARCH_EPISODES, SEARCH_SEED, search_levels
    from hieralloc.errors import HierallocError
    from hieralloc.registry import get_env

    ap = argparse.ArgumentParser(prog="python -m hieralloc.envs.supply.search", description=__doc__.split("\n")[1])
    ap.add_argument("env", help="supply environment or scenario (e.g. supply-1w3s)")
    ap.add_argument("--episodes", type=int, default=SEARCH_EPISODES, help="episodes per pair of levels")
    ap.add_argument("--seed", type=int, default=SEARCH_SEED, help="seed of the search episodes")
    ap.add_argument("--top", type=int, default=5, help="best pairs to print")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="environment config override")
    args = ap.parse_args(argv)
    try:
        spec = get_env(args.env)
        if spec.family != "supply":
            raise HierallocError(f"'{args.env}' is a {spec.family} environment; the order-up-to search needs a "
                                 "supply environment (supply-1w3s, supply-1w10s, supply-1w10s-cap)")
        overrides = dict(parse_override(s, "--set") for s in args.set)
        cfg = spec.default_config(**overrides)
        res = search_levels(cfg, episodes=args.episodes, seed=args.seed)
    except HierallocError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    ns, nw = res.mean_return.shape
    print(f"{args.env}: grid store 0..{int(res.store_levels.max())} x warehouse 0..{int(res.warehouse_levels.max())} "
          f"({ns * nw} pairs), {res.episodes} episodes from seed {res.seed}")
    print(f"best levels: store {res.best[0]}, warehouse {res.best[1]}  mean return {res.best_return:.2f}")
    order = np.argsort(-res.mean_return.ravel(), kind="stable")[:max(args.top, 0)]
    for k in order:
        i, j = divmod(int(k), nw)
        print(f"  store {int(res.store_levels[i]):3d}  warehouse {int(res.warehouse_levels[j]):3d}  "
              f"mean return {res.mean_return[i, j]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
