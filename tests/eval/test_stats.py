"""Statistics over seeds and episodes against hand-computed values and scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from hieralloc.eval import bootstrap_ci, iqm, mean, stack_ragged, std, summarize


def test_hand_computed_values() -> None:
    assert mean([1, 2, 3, 4]) == 2.5
    assert std([1, 2, 3, 4]) == pytest.approx(math.sqrt(5 / 3))
    assert std([7.0]) == 0.0
    assert iqm([1, 2, 3, 4, 5, 6, 7, 8]) == 4.5  # trims 2 each side: mean(3, 4, 5, 6)
    assert iqm([1, 2, 3, 4, 100]) == 3.0  # n=5 trims int(1.25)=1 each side
    assert iqm([5, 1, 3]) == 3.0  # n=3 trims nothing: the mean
    grid = [[1.0, 2.0], [3.0, 4.0]]
    assert mean(grid) == 2.5
    assert std(grid) == pytest.approx(math.sqrt(2))  # of per-seed means 1.5 and 3.5
    assert iqm(grid) == 2.5  # flattened [1,2,3,4] trims 1 each side: mean(2, 3)


@pytest.mark.parametrize("n", [4, 9, 20, 37])
def test_iqm_matches_scipy_trim_mean(n: int) -> None:
    x = np.random.default_rng(n).normal(size=n)
    assert iqm(x) == pytest.approx(scipy.stats.trim_mean(x, 0.25, axis=None))
    x2 = np.random.default_rng(n).normal(size=(n, 3))
    assert iqm(x2) == pytest.approx(scipy.stats.trim_mean(x2, 0.25, axis=None))


def test_bootstrap_ci_matches_scipy_percentile() -> None:
    x = np.random.default_rng(0).exponential(size=30)
    lo, hi = bootstrap_ci(x, "mean", reps=20000, seed=1)
    ref = scipy.stats.bootstrap(
        (x,),
        np.mean,
        n_resamples=20000,
        method="percentile",
        confidence_level=0.95,
        random_state=np.random.default_rng(2),
    )
    se = float(ref.standard_error)
    assert lo == pytest.approx(ref.confidence_interval.low, abs=0.1 * se)
    assert hi == pytest.approx(ref.confidence_interval.high, abs=0.1 * se)
    lo_t, hi_t = bootstrap_ci(x, "iqm", reps=4000, seed=1)
    ref_t = scipy.stats.bootstrap(
        (x,),
        lambda a, axis: scipy.stats.trim_mean(a, 0.25, axis=axis),
        n_resamples=4000,
        method="percentile",
        random_state=np.random.default_rng(3),
    )
    se_t = float(ref_t.standard_error)
    assert lo_t == pytest.approx(ref_t.confidence_interval.low, abs=0.25 * se_t)
    assert hi_t == pytest.approx(ref_t.confidence_interval.high, abs=0.25 * se_t)


def test_bootstrap_is_seeded_and_sane() -> None:
    x = np.random.default_rng(5).normal(size=(6, 4))
    assert bootstrap_ci(x, seed=3) == bootstrap_ci(x, seed=3)
    assert bootstrap_ci(x, seed=3) != bootstrap_ci(x, seed=4)
    lo, hi = bootstrap_ci(x)
    assert lo < mean(x) < hi
    assert bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0)
    assert bootstrap_ci([3.5]) == (3.5, 3.5)
    assert bootstrap_ci(x, lambda a: float(np.mean(a)), seed=9) == bootstrap_ci(x, "mean", seed=9)
    with pytest.raises(ValueError):
        bootstrap_ci(x, confidence=1.0)
    with pytest.raises(ValueError):
        bootstrap_ci([])


def test_bootstrap_is_stratified_by_episode_column() -> None:
    # each column (episode) is constant across seeds: resampling seeds within a column never
    # changes it, so the stratified interval is a point; an unstratified one would not be
    x = np.array([[0.0, 10.0]] * 3)
    assert bootstrap_ci(x) == (5.0, 5.0)


def test_summarize_and_nonfinite_seeds() -> None:
    s = summarize([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], reps=500)
    assert (s.mean, s.n_seeds, s.n_values) == (3.5, 3, 6)
    assert s.ci_low <= s.mean <= s.ci_high and s.iqm_ci_low <= s.iqm <= s.iqm_ci_high
    d = summarize([[1.0, 2.0], [float("nan"), 4.0]], reps=100)
    assert (d.mean, d.n_seeds) == (1.5, 1)
    assert math.isnan(summarize([float("nan")]).mean)
    assert set(s.to_dict()) >= {"mean", "std", "iqm", "ci_low", "ci_high"}


def test_stack_ragged() -> None:
    assert stack_ragged([[1, 2], [3, 4]]).shape == (2, 2)
    np.testing.assert_allclose(stack_ragged([[1, 2], [3]]), [1.5, 3.0])
    np.testing.assert_allclose(stack_ragged([[1, 2], []]), [[1, 2]])
