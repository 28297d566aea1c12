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


def _eval_curve(out: Path, key: str) -> list[float]:
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return [float(r[key]) for r in rows if r["phase"] == "eval"]


def test_vdn_learns_lbf_5x5(tmp_path: Path) -> None:
    """Level-based foraging 5x5, 2 players, 1 cooperative food: from almost never collecting the food
    to collecting it in most evaluation episodes within 10k steps (fixed seed)."""
    out = tmp_path / "vdn-lbf"
    run_training("lbf-5x5-2p-1f-coop", "vdn", seed=0, out=out,
                 overrides=["train.steps=10000", "train.eval_every=2500", "train.eval_episodes=20",
                            "algo.eps_anneal_steps=5000"])
    curve = _eval_curve(out, "food_collected")
    assert curve[0] <= 0.2, curve
    assert curve[-1] >= 0.5, curve
