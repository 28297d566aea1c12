"""Rebalancing flow (OHIO Eq. (30) + slack) and the passenger-matching LP."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from hieralloc.solvers import (
    MalformedProblemError,
    PassengerMatchingModel,
    RebalancingModel,
    match_passengers,
    solve_rebalancing,
)


def brute_force_rebalancing(q, qh, C, penalty):
    """Enumerate every integer flow with sum_j f_ij <= q_i (complete graph, n <= 3)."""
    n = len(q)
    edges = [(i, j) for i in range(n) for j in range(n) if i != j]
    best = np.inf
    for f in itertools.product(*[range(int(q[i]) + 1) for i, _ in edges]):
        F = np.zeros((n, n))
        for (i, j), v in zip(edges, f, strict=True):
            F[i, j] = v
        if (F.sum(axis=1) > q).any():
            continue
        nxt = q + F.sum(axis=0) - F.sum(axis=1)
        z = np.maximum(0.0, qh - nxt)
        best = min(best, float((C * F).sum() + penalty @ z))
    return best


@settings(derandomize=True, max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_rebalancing_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 4))
    q = rng.integers(0, 3, n).astype(float)
    qh = rng.integers(0, 4, n).astype(float)
    C = rng.integers(1, 5, (n, n)).astype(float)
    np.fill_diagonal(C, 0)
    model = RebalancingModel(n, C)
    r = model.solve(q, qh)
    assert r.objective == pytest.approx(brute_force_rebalancing(q, qh, C, model.penalty), abs=1e-6)
    assert np.array_equal(r.flows, np.round(r.flows))
    assert (r.flow_matrix.sum(axis=1) <= q + 1e-9).all()                      # (30c)
    assert (r.next_idle + r.slack >= qh - 1e-9).all()                          # (30b) with slack


@settings(derandomize=True, max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(3, 12))
def test_integral_and_equal_to_paper_lp_when_reachable(seed, n):
    """On the complete graph with sum(q^) <= sum(q) no slack is used and the optimum is the
    paper's Eq. (30) optimum (solved without slack by linprog); flows are integral (TU)."""
    rng = np.random.default_rng(seed)
    q = rng.integers(0, 10, n).astype(float)
    qh = rng.multinomial(int(q.sum()), rng.dirichlet(np.ones(n))).astype(float)
    C = rng.uniform(1, 5, (n, n))
    model = RebalancingModel(n, C)
    r = model.solve(q, qh)
    assert r.slack.sum() == 0 and np.array_equal(r.next_idle, qh)
    E = model.edges
    ne = len(E)
    A_b = np.zeros((n, ne))
    A_c = np.zeros((n, ne))
    A_b[E[:, 1], np.arange(ne)] -= 1.0   # -(inflow - outflow) <= q - q^
    A_b[E[:, 0], np.arange(ne)] += 1.0
    A_c[E[:, 0], np.arange(ne)] = 1.0
    ref = linprog(C[E[:, 0], E[:, 1]], A_ub=np.vstack([A_b, A_c]), b_ub=np.concatenate([q - qh, q]))
    assert ref.status == 0
    assert r.cost == pytest.approx(ref.fun, abs=1e-6)
    assert np.array_equal(r.flows, np.round(r.flows))


def test_slack_keeps_unreachable_targets_feasible():
    # region 2 has no incoming edge: its target can only be met by slack
    model = RebalancingModel(3, np.ones((3, 3)), edges=[(0, 1), (1, 0), (2, 0)])
    r = model.solve([5, 0, 0], [1, 1, 3])
    assert r.slack.tolist() == [0.0, 0.0, 3.0]
    assert r.flows.tolist() == [1.0, 0.0, 0.0] and r.cost == 1.0
    # more vehicles wanted than exist: slack is exactly the shortfall, all vehicles still used
    model = RebalancingModel(4, np.full((4, 4), 2.0))
    r = model.solve([3, 0, 0, 1], [1, 2, 2, 2])
    assert r.slack.sum() == 3.0
    assert (r.next_idle >= 0).all() and r.next_idle.sum() == 4
    # a penalty below the edge cost makes slack preferable (documented trade-off)
    r = RebalancingModel(2, np.full((2, 2), 5.0), penalty=1.0).solve([2, 0], [0, 2])
    assert r.flows.sum() == 0 and r.slack.tolist() == [0.0, 2.0]


@settings(derandomize=True, max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_reused_model_equals_fresh_model(seed):
    rng = np.random.default_rng(seed)
    n = 6
    edges = np.array([(i, j) for i in range(n) for j in range(n) if i != j and rng.uniform() < 0.6])
    if len(edges) == 0:
        edges = np.array([[0, 1]])
    C = rng.uniform(1, 4, len(edges))
    model = RebalancingModel(n, C, edges=edges)
    for step in range(5):
        q = rng.integers(0, 6, n)
        qh = rng.integers(0, 8, n)
        if step == 3:
            C = rng.uniform(1, 4, len(edges))
            warm = model.solve(q, qh, cost=C)
        else:
            warm = model.solve(q, qh)
        fresh = solve_rebalancing(q, qh, C, edges=edges)
        assert warm.objective == pytest.approx(fresh.objective, abs=1e-6)
        assert np.array_equal(warm.slack, fresh.slack) or warm.slack.sum() == fresh.slack.sum()


def test_fractional_mode_and_rounding_of_targets():
    C = np.ones((2, 2))
    r = RebalancingModel(2, C, integral=False).solve([1.5, 0.0], [0.25, 1.25])
    assert r.flows.tolist() == [1.25, 0.0] and r.slack.sum() == 0.0
    r = RebalancingModel(2, C).solve([2, 0], [0.6, 1.4])  # integral: targets rounded to [1, 1]
    assert r.flows.tolist() == [1.0, 0.0]


@pytest.mark.parametrize(
    ("build", "pattern"),
    [
        (lambda: RebalancingModel(3, np.ones((2, 2))), r"cost has shape \(2, 2\), expected \(3, 3\)"),
        (lambda: RebalancingModel(3, np.ones(2), edges=[(0, 0), (1, 2)]), "edge 0 is a self-loop"),
        (lambda: RebalancingModel(3, np.ones(2), edges=[(0, 1), (0, 1)]), "duplicate"),
        (lambda: RebalancingModel(3, np.ones(1), edges=[(0, 5)]), "region 5, outside 0..2"),
        (lambda: RebalancingModel(2, np.ones((2, 2)), penalty=0.0), r"penalty\[0\] = 0"),
        (lambda: RebalancingModel(2, np.ones((2, 2))).solve([1, -1], [0, 0]), r"availability\[1\] = -1 < 0"),
        (lambda: RebalancingModel(2, np.ones((2, 2))).solve([1.5, 0], [0, 0]), "not an integer"),
        (lambda: RebalancingModel(2, np.ones((2, 2))).solve([1, 0], [np.nan, 0]), r"target\[0\] is NaN"),
        (lambda: RebalancingModel(2, np.ones((2, 2))).solve([1, 0, 0], [0, 0]), r"availability has shape"),
        (lambda: RebalancingModel(2, np.array([[0, np.inf], [1, 0]])), "cost"),
    ],
)
def test_rebalancing_malformed(build, pattern):
    with pytest.raises(MalformedProblemError, match=pattern):
        build()


def brute_force_matching(d, m, w):
    n = d.shape[0]
    best = 0.0
    for f in itertools.product(*[range(int(v) + 1) for v in d.ravel()]):
        F = np.array(f, dtype=float).reshape(n, n)
        if (F.sum(axis=1) <= m).all():
            best = max(best, float((w * F).sum()))
    return best


@settings(derandomize=True, max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_passenger_matching_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = 2
    d = rng.integers(0, 3, (n, n))
    m = rng.integers(0, 4, n)
    w = np.round(rng.uniform(-1, 3, (n, n)), 1)
    best = brute_force_matching(d, m, w)
    greedy = match_passengers(d, m, w)
    lp = match_passengers(d, m, w, method="lp")
    assert greedy.revenue == pytest.approx(best) and lp.revenue == pytest.approx(best)
    assert (lp.served <= d).all() and (lp.departures <= m).all()
    assert np.array_equal(lp.served, np.round(lp.served))


def test_passenger_matching_model_reuse():
    rng = np.random.default_rng(0)
    n = 8
    model = PassengerMatchingModel(n)
    for _ in range(5):
        d = rng.poisson(2.0, (n, n))
        m = rng.integers(0, 10, n)
        w = rng.uniform(1, 10, (n, n))
        warm = model.solve(d, m, w)
        assert warm.revenue == pytest.approx(match_passengers(d, m, w).revenue)
        assert np.array_equal(warm.served, np.round(warm.served))
    with pytest.raises(MalformedProblemError, match=r"demand has shape \(3, 3\), expected \(8, 8\)"):
        model.solve(np.ones((3, 3)), np.ones(3), 1.0)
    with pytest.raises(MalformedProblemError, match="method must be"):
        match_passengers(np.ones((2, 2)), np.ones(2), 1.0, method="auction")
