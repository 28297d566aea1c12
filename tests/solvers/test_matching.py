"""Max-weight perfect matching with sit-outs (Pairing Sec. 3.2, Sec. 4) against brute force."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hieralloc.solvers import InfeasibleError, MalformedProblemError, max_weight_matching


def all_matchings(agents, allow_sit, max_sit):
    """Every partition of ``agents`` into pairs and (if allowed) singletons."""
    if not agents:
        yield [], []
        return
    first, rest = agents[0], agents[1:]
    if allow_sit and max_sit > 0:
        for pairs, sits in all_matchings(rest, allow_sit, max_sit - 1):
            yield pairs, [first, *sits]
    for k, other in enumerate(rest):
        for pairs, sits in all_matchings(rest[:k] + rest[k + 1:], allow_sit, max_sit):
            yield [(first, other), *pairs], sits


def brute_force(W, allow_sit, sit_value, max_sit):
    n = W.shape[0]
    best = None
    for pairs, sits in all_matchings(list(range(n)), allow_sit, n if max_sit is None else max_sit):
        v = sum(W[i, j] + W[j, i] for i, j in pairs) + sum(sit_value[i] for i in sits)
        if np.isfinite(v) and (best is None or v > best):
            best = v
    return best


@settings(derandomize=True, max_examples=80, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 7), st.booleans(), st.sampled_from([None, 0, 1, 2]))
def test_matches_brute_force(seed, n, allow_sit, max_sit):
    rng = np.random.default_rng(seed)
    W = np.round(rng.normal(size=(n, n)), 2)
    W[rng.uniform(size=(n, n)) < 0.15] = -np.inf  # some forbidden pairs / sit-outs
    sit_value = np.diag(W)
    best = brute_force(W, allow_sit, sit_value, max_sit)
    if best is None:
        with pytest.raises(InfeasibleError):
            max_weight_matching(W, allow_sit_out=allow_sit, max_sit_outs=max_sit)
        return
    r = max_weight_matching(W, allow_sit_out=allow_sit, max_sit_outs=max_sit)
    assert r.value == pytest.approx(best, abs=1e-9)
    assert r.value == pytest.approx(float(np.where(r.x > 0, W, 0).sum()))
    assert np.array_equal(r.x, r.x.T) and r.x.sum(axis=1).tolist() == [1.0] * n
    assert sorted([i for p in r.pairs for i in p] + r.sit_out) == list(range(n))
    assert all(r.partner[i] == j and r.partner[j] == i for i, j in r.pairs)
    if not allow_sit:
        assert r.sit_out == []
    if max_sit is not None:
        assert len(r.sit_out) <= max_sit


def test_odd_number_sits_one_out_only_when_allowed():
    W = np.ones((5, 5))
    with pytest.raises(InfeasibleError, match=r"^5 agents is odd: .*allow_sit_out=True"):
        max_weight_matching(W)
    r = max_weight_matching(W, allow_sit_out=True, sit_out_value=0.0)
    assert len(r.sit_out) == 1 and len(r.pairs) == 2 and r.value == 4.0
    # with a valuable sit-out everyone sits out, unless limited to n % 2
    r = max_weight_matching(W, allow_sit_out=True, sit_out_value=10.0)
    assert len(r.sit_out) == 5
    r = max_weight_matching(W, allow_sit_out=True, sit_out_value=10.0, max_sit_outs=5 % 2)
    assert len(r.sit_out) == 1
    with pytest.raises(InfeasibleError, match="max_sit_outs=0"):
        max_weight_matching(W, allow_sit_out=True, max_sit_outs=0)


def test_lp_relaxation_would_be_fractional():
    """Two disjoint triangles: the LP relaxation takes 1/2 on every triangle edge (value 6),
    the integral optimum must use a weak cross edge (value 2 + 2 + 2*0.1)."""
    W = np.full((6, 6), 0.1)
    for tri in ([0, 1, 2], [3, 4, 5]):
        for i in tri:
            for j in tri:
                W[i, j] = 1.0
    r = max_weight_matching(W)
    assert r.value == pytest.approx(4.2)


def test_infeasible_and_malformed_messages():
    W = np.zeros((4, 4))
    W[0, 1:] = W[1:, 0] = -np.inf
    with pytest.raises(InfeasibleError, match="agent 0 has no allowed partner"):
        max_weight_matching(W)
    W = np.zeros((6, 6))
    W[:3, 3:] = W[3:, :3] = -np.inf  # two odd components: no perfect matching
    with pytest.raises(InfeasibleError, match="no perfect matching exists"):
        max_weight_matching(W)
    with pytest.raises(MalformedProblemError, match="square"):
        max_weight_matching(np.zeros((2, 3)))
    with pytest.raises(MalformedProblemError, match=r"weights\[0, 1\] = nan"):
        max_weight_matching(np.array([[0, np.nan], [0, 0]]))
    with pytest.raises(MalformedProblemError, match="sit_out_value"):
        max_weight_matching(np.zeros((2, 2)), allow_sit_out=True, sit_out_value=[1.0])


def test_empty_and_time_limit():
    assert max_weight_matching(np.zeros((0, 0))).pairs == []
    rng = np.random.default_rng(0)
    r = max_weight_matching(rng.normal(size=(30, 30)), time_limit=5.0)
    assert len(r.pairs) == 15
