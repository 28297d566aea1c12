"""Evaluation: the single :func:`evaluate` path and statistics over seeds and episodes."""

from hieralloc.eval.evaluate import TIMING_KEYS, episode_seed, evaluate, mean_metrics
from hieralloc.eval.stats import (
    Summary,
    bootstrap_ci,
    bootstrap_distribution,
    iqm,
    mean,
    stack_ragged,
    std,
    summarize,
)

__all__ = [
    "TIMING_KEYS",
    "Summary",
    "bootstrap_ci",
    "bootstrap_distribution",
    "episode_seed",
    "evaluate",
    "iqm",
    "mean",
    "mean_metrics",
    "stack_ragged",
    "std",
    "summarize",
]
