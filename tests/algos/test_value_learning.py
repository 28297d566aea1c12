"""VDN learns on the small coverage grid through the real training entry point (tiny budget, fixed seed)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

import hieralloc.algos.value  # noqa: F401  (registers vdn, qmix, qplex)
from hieralloc.train import run_training

torch.set_num_threads(1)


def _final_return(out: Path) -> float:
    return float(json.loads((out / "summary.json").read_text())["final"]["return"])


def test_vdn_beats_random_on_coverage_small(tmp_path: Path) -> None:
    common = ["train.eval_episodes=20"]
    baselines = {}
    for name in ("random", "stay"):
        run_training("coverage-small", name, overrides=common, seed=0, out=tmp_path / name)
        baselines[name] = _final_return(tmp_path / name)
    run_training("coverage-small", "vdn", seed=0, out=tmp_path / "vdn",
                 overrides=[*common, "train.steps=3200", "algo.eps_anneal_steps=1600", "algo.batch_size=16"])
    learned = _final_return(tmp_path / "vdn")
    assert learned > 1.5 * baselines["random"], (learned, baselines)
    assert learned > 1.2 * baselines["stay"], (learned, baselines)
    # the training log holds the named loss terms
    rows = [json.loads(x) for x in (tmp_path / "vdn" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["phase"] == "train" and "loss" in r]
    assert train and {"td_error_abs", "q_taken_mean", "target_mean", "grad_norm"} <= set(train[-1])
