"""Grid search of INF's H and rho (OHIO Eq. (27)), reproducing the tuning protocol of OHIO Tables 8-9.

Every (H, rho) cell runs INF for ``episodes`` evaluation episodes (:func:`hieralloc.eval.evaluate`,
the same episode seeds for every cell) and reports the mean return and the score normalised by the
MPC-Oracle on the same episodes (OHIO Sec. 5: ``100 x return / oracle return``). The best cell is
the chosen (H, rho) (ties to the smaller H, then the smaller rho); ``INF_TUNED`` in
:mod:`hieralloc.envs.mobility.behaviour` records the choices.

Usage (needs the data directory for the city scenarios)::

    python -m hieralloc.envs.mobility.inf_grid [--scenario mobility-nyc-brooklyn ...] [--episodes 3]
        [--out benchmarks/results/inf_grid.json]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: the grids of OHIO Tables 8-9 (SHZ: H 2-6, rho 1-6; NYC: H 2-7, rho 1-7); we run their union on both
HORIZONS = (2, 3, 4, 5, 6, 7)
RHOS = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0)
SCENARIOS = ("mobility-nyc-brooklyn", "mobility-shenzhen-dtw")


def grid_search(scenario: str, horizons: Sequence[int] = HORIZONS, rhos: Sequence[float] = RHOS,
                episodes: int = 3, seed: int = 0, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Evaluate INF on every (H, rho) of the grid; returns the table, the oracle reference and the best cell.

    Result keys: ``scenario``, ``episodes``, ``seed``, ``oracle_return`` (mean), ``cells`` (list of
    ``{"H", "rho", "return", "score"}``), ``best`` (the chosen cell), ``seconds``.
    """
    from hieralloc.envs.mobility.behaviour import InfConfig, InfPolicy
    from hieralloc.envs.mobility.oracle import MpcOraclePolicy
    from hieralloc.eval import evaluate
    from hieralloc.registry import get_env

    t0 = time.perf_counter()
    spec = get_env(scenario)
    env = spec.make(spec.default_config(**(overrides or {})))
    oracle = evaluate(MpcOraclePolicy(), env, episodes=episodes, seed=seed)
    ref = np.array([e["return"] for e in oracle])
    cells = []
    for H in horizons:
        for rho in rhos:
            eps = evaluate(InfPolicy(InfConfig(horizon=int(H), rho=float(rho))), env, episodes=episodes, seed=seed)
            ret = np.array([e["return"] for e in eps])
            cells.append({"H": int(H), "rho": float(rho), "return": float(ret.mean()),
                          "score": float(100.0 * ret.mean() / ref.mean())})
    best = max(cells, key=lambda c: (round(c["return"], 6), -c["H"], -c["rho"]))
    return {"scenario": scenario, "city": env.unwrapped.scenario.name, "episodes": episodes, "seed": seed,
            "oracle_return": float(ref.mean()), "cells": cells, "best": best,
            "seconds": round(time.perf_counter() - t0, 1)}


def to_markdown(report: dict[str, Any]) -> str:
    lines = ["# INF hyper-parameter grid (OHIO Tables 8-9 protocol)", "",
             f"Produced by `{report['command']}` on {report['date']}. Score = 100 x mean INF return / mean "
             "MPC-Oracle return on the same evaluation episodes (OHIO Sec. 5); rows H, columns rho.", ""]
    for r in report["results"]:
        hs = sorted({c["H"] for c in r["cells"]})
        rs = sorted({c["rho"] for c in r["cells"]})
        cell = {(c["H"], c["rho"]): c for c in r["cells"]}
        b = r["best"]
        lines += [f"## {r['scenario']} ({r['episodes']} episodes, seed {r['seed']}, oracle return "
                  f"{r['oracle_return']:.0f}, {r['seconds']:.0f} s)", "",
                  "| H \\ rho | " + " | ".join(f"{x:g}" for x in rs) + " |",
                  "|---|" + "---:|" * len(rs)]
        for H in hs:
            vals = []
            for x in rs:
                c = cell[(H, x)]
                s = f"{c['score']:.2f}"
                vals.append(f"**{s}**" if (H, x) == (b["H"], b["rho"]) else s)
            lines.append(f"| {H} | " + " | ".join(vals) + " |")
        lines += ["", f"Chosen: H = {b['H']}, rho = {b['rho']:g} (return {b['return']:.0f}, score {b['score']:.2f}).",
                  ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--scenario", action="append", help="scenario (repeatable; default NYC Brooklyn and Shenzhen)")
    ap.add_argument("--episodes", type=int, default=3, help="evaluation episodes per cell (default 3)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--horizons", type=int, nargs="+", default=list(HORIZONS))
    ap.add_argument("--rhos", type=float, nargs="+", default=list(RHOS))
    ap.add_argument("--data-dir", default=None, help="data directory (default: $HIERALLOC_DATA_DIR)")
    ap.add_argument("--out", default="benchmarks/results/inf_grid.json", help="JSON output (Markdown beside it)")
    args = ap.parse_args(argv)
    if args.data_dir:
        os.environ["HIERALLOC_DATA_DIR"] = str(Path(args.data_dir).expanduser())
    results = []
    for sc in args.scenario or SCENARIOS:
        r = grid_search(sc, args.horizons, args.rhos, args.episodes, args.seed)
        b = r["best"]
        print(f"{sc}: best H={b['H']} rho={b['rho']:g} return {b['return']:.1f} score {b['score']:.2f} "
              f"({r['seconds']:.0f} s)", flush=True)
        results.append(r)
    cmd = "python -m hieralloc.envs.mobility.inf_grid" + (
        "".join(f" --scenario {s}" for s in args.scenario) if args.scenario else "") + \
        f" --episodes {args.episodes} --seed {args.seed} --out {args.out}"
    report = {"command": cmd, "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
              "horizons": list(args.horizons), "rhos": list(args.rhos), "results": results}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(to_markdown(report), encoding="utf-8")
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
