"""Aggregation over seeds and episodes: mean, std, IQM and stratified bootstrap CIs.

Definitions (docs/benchmarks.md repeats them):

* Input is either a 1-D array of per-seed values (one number per training seed) or a 2-D array
  of shape ``(seeds, episodes)`` of per-episode values.
* ``mean``: mean of all values (for a balanced 2-D array, the mean of per-seed means).
* ``std``: sample standard deviation (``ddof=1``) across seeds: of the values for 1-D input, of
  the per-seed means for 2-D input; 0 with a single seed.
* ``iqm``: interquartile mean, the mean of the middle 50% of all values: ``int(0.25 n)`` values
  are trimmed from each end of the sorted, flattened array, exactly
  ``scipy.stats.trim_mean(x, 0.25, axis=None)`` as used by rliable (Agarwal et al., 2021).
* ``bootstrap_ci``: percentile-method bootstrap confidence interval of a statistic. For 1-D input
  the seeds are resampled with replacement. For 2-D input the bootstrap is *stratified* as in
  rliable's ``StratifiedBootstrap``: each column (evaluation episode ``i``, which has the same
  episode seed for every method) is a stratum, and its rows (seeds) are resampled with replacement
  independently of the other columns. The statistic is then applied to the resampled array.
  Resampling uses ``np.random.default_rng(seed)``, so intervals are reproducible.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

Statistic = Callable[[np.ndarray], float]


def _array(values: Any) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    if x.ndim not in (1, 2):
        raise ValueError(f"expected per-seed values (1-D) or a (seeds, episodes) array, got shape {x.shape}")
    if x.size == 0:
        raise ValueError("cannot aggregate an empty set of values")
    return x


def mean(values: Any) -> float:
    """Mean over all values."""
    return float(np.mean(_array(values)))


def std(values: Any) -> float:
    """Sample standard deviation across seeds (of per-seed means for a 2-D array)."""
    x = _array(values)
    per_seed = x.mean(axis=1) if x.ndim == 2 else x
    if per_seed.size < 2:
        return 0.0
    return float(np.std(per_seed, ddof=1))


def iqm(values: Any) -> float:
    """Interquartile mean: mean after trimming ``int(0.25 n)`` values from each end."""
    x = np.sort(_array(values).ravel())
    cut = int(0.25 * x.size)
    return float(np.mean(x[cut : x.size - cut]))


_STATISTICS: dict[str, Statistic] = {"mean": mean, "iqm": iqm}


def _statistic(statistic: str | Statistic) -> Statistic:
    if callable(statistic):
        return statistic
    if statistic not in _STATISTICS:
        raise ValueError(f"unknown statistic '{statistic}'; known: {', '.join(_STATISTICS)}")
    return _STATISTICS[statistic]


def _batched(name: str, samples: np.ndarray) -> np.ndarray:
    """Vectorised mean / IQM over the last axis of ``samples`` (one row per replicate)."""
    if name == "mean":
        return samples.mean(axis=1)
    s = np.sort(samples, axis=1)
    cut = int(0.25 * s.shape[1])
    return s[:, cut : s.shape[1] - cut].mean(axis=1)


def bootstrap_distribution(
    values: Any, statistic: str | Statistic = "mean", reps: int = 2000, seed: int = 0
) -> np.ndarray:
    """``reps`` bootstrap replicates of ``statistic`` (see the module docstring for the scheme)."""
    x = _array(values)
    stat = _statistic(statistic)
    rng = np.random.default_rng(seed)
    n = x.shape[0]
    if x.ndim == 1:
        samples = x[rng.integers(0, n, size=(reps, n))]
    else:
        # rows (seeds) resampled independently within each column (stratum)
        idx = rng.integers(0, n, size=(reps, n, x.shape[1]))
        samples = x[idx, np.arange(x.shape[1])]
    if isinstance(statistic, str):
        return _batched(statistic, samples.reshape(reps, -1))
    return np.asarray([stat(s) for s in samples], dtype=float)


def bootstrap_ci(
    values: Any,
    statistic: str | Statistic = "mean",
    confidence: float = 0.95,
    reps: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap ``confidence`` interval of ``statistic`` (``"mean"``, ``"iqm"`` or a
    function of an array). With a single seed and a 1-D input the interval collapses to the value."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if reps < 1:
        raise ValueError(f"reps must be >= 1, got {reps}")
    dist = bootstrap_distribution(values, statistic, reps=reps, seed=seed)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.percentile(dist, [100 * alpha, 100 * (1 - alpha)])
    return float(lo), float(hi)


@dataclass(frozen=True)
class Summary:
    """Aggregate of one metric for one algorithm on one task."""

    mean: float
    std: float
    iqm: float
    ci_low: float
    ci_high: float
    iqm_ci_low: float
    iqm_ci_high: float
    n_seeds: int
    n_values: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def summarize(values: Any, confidence: float = 0.95, reps: int = 2000, seed: int = 0) -> Summary:
    """Mean, std, IQM and bootstrap CIs of mean and IQM for per-seed or (seeds, episodes) values."""
    x = _array(values)
    finite = np.isfinite(x)
    if not finite.all():
        # drop whole seeds (rows) holding a non-finite value so strata stay rectangular
        x = x[finite] if x.ndim == 1 else x[finite.all(axis=1)]
        if x.size == 0:
            nan = float("nan")
            return Summary(nan, nan, nan, nan, nan, nan, nan, 0, 0)
    lo, hi = bootstrap_ci(x, "mean", confidence, reps, seed)
    ilo, ihi = bootstrap_ci(x, "iqm", confidence, reps, seed)
    return Summary(
        mean=mean(x),
        std=std(x),
        iqm=iqm(x),
        ci_low=lo,
        ci_high=hi,
        iqm_ci_low=ilo,
        iqm_ci_high=ihi,
        n_seeds=int(x.shape[0]),
        n_values=int(x.size),
    )


def stack_ragged(rows: Sequence[Sequence[float]]) -> np.ndarray:
    """A (seeds, episodes) array when every seed has the same number of episodes, otherwise the
    1-D array of per-seed means (so unequal evaluation budgets still aggregate over seeds)."""
    if not rows:
        raise ValueError("cannot aggregate an empty set of values")
    lengths = {len(r) for r in rows}
    if 0 in lengths:
        rows = [r for r in rows if len(r)]
        if not rows:
            raise ValueError("cannot aggregate an empty set of values")
        lengths = {len(r) for r in rows}
    if len(lengths) == 1:
        return np.asarray(rows, dtype=float)
    return np.asarray([float(np.mean(r)) for r in rows], dtype=float)
