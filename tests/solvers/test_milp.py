"""solve_milp against brute force and scipy, plus its typed errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from hieralloc.solvers import (
    InfeasibleError,
    MalformedProblemError,
    SolverError,
    UnboundedError,
    solve_milp,
)


@st.composite
def small_ip(draw):
    n = draw(st.integers(1, 4))
    m = draw(st.integers(0, 3))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    c = rng.integers(-5, 6, n).astype(float)
    A = rng.integers(-3, 4, (m, n)).astype(float)
    b = rng.integers(0, 8, m).astype(float)
    ub = rng.integers(0, 4, n).astype(float)
    sense = draw(st.sampled_from(["min", "max"]))
    return c, A, b, ub, sense


@settings(derandomize=True, max_examples=60, deadline=None)
@given(small_ip())
def test_integer_program_matches_brute_force(prob):
    c, A, b, ub, sense = prob
    best = None
    for x in itertools.product(*[range(int(u) + 1) for u in ub]):
        xv = np.array(x, dtype=float)
        if A.shape[0] and (A @ xv > b + 1e-9).any():
            continue
        v = float(c @ xv)
        if best is None or (v < best if sense == "min" else v > best):
            best = v
    kw = dict(A_ub=A, b_ub=b) if A.shape[0] else {}
    r = solve_milp(c, lb=0, ub=ub, integrality=1, sense=sense, **kw)  # x = 0 is always feasible
    assert best is not None
    assert r.optimal and r.status == "optimal"
    assert r.objective == pytest.approx(best, abs=1e-6)
    assert np.allclose(r.x, np.round(r.x))
    if A.shape[0]:
        assert (A @ r.x <= b + 1e-6).all()
    # the dual bound is valid and tight at optimality
    assert (r.bound >= r.objective - 1e-6) if sense == "max" else (r.bound <= r.objective + 1e-6)
    assert r.gap <= 1e-5


@settings(derandomize=True, max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from(["min", "max"]), st.booleans())
def test_lp_matches_linprog(seed, sense, sparse):
    rng = np.random.default_rng(seed)
    n, m, k = rng.integers(1, 6), rng.integers(1, 5), rng.integers(0, 3)
    c = rng.normal(size=n)
    A = rng.normal(size=(m, n))
    x0 = rng.uniform(0, 1, n)  # a feasible point
    b = A @ x0 + rng.uniform(0, 1, m)
    Aeq = rng.normal(size=(k, n))
    beq = Aeq @ x0
    eq = dict(A_eq=sp.csr_matrix(Aeq) if sparse else Aeq, b_eq=beq) if k else {}
    ours = solve_milp(c, A_ub=sp.csr_matrix(A) if sparse else A, b_ub=b, ub=2.0, sense=sense, **eq)
    sign = 1.0 if sense == "min" else -1.0
    ref = linprog(sign * c, A_ub=A, b_ub=b, bounds=(0, 2), **({"A_eq": Aeq, "b_eq": beq} if k else {}))
    assert ref.status == 0
    assert ours.objective == pytest.approx(sign * ref.fun, abs=1e-7)
    assert ours.bound == ours.objective and ours.gap == 0.0


def test_time_limit_returns_best_feasible_with_valid_bound():
    rng = np.random.default_rng(1)
    A = rng.integers(1, 100, (6, 80))
    b = A.sum(1) // 2
    c = A.sum(0) + rng.integers(0, 20, 80)
    r = solve_milp(c, A_ub=A, b_ub=b, ub=1, integrality=1, sense="max", time_limit=0.02)
    assert r.status in ("time_limit", "optimal")
    assert (A @ r.x <= b + 1e-6).all() and r.bound >= r.objective - 1e-6
    if r.status == "time_limit":
        assert not r.optimal and r.gap > 0


def test_infeasible_names_rows():
    with pytest.raises(InfeasibleError, match=r"A_ub row 0.*A_ub row 1|A_ub row 1.*A_ub row 0"):
        solve_milp([1, 1], A_ub=[[-1, -1], [1, 1]], b_ub=[-5, 3])
    with pytest.raises(InfeasibleError, match="A_eq row 0"):
        solve_milp([1, 1], A_eq=[[1, 1]], b_eq=[5], ub=1)


def test_integer_infeasible_says_integrality():
    with pytest.raises(InfeasibleError, match="integrality"):
        solve_milp([1, 1], A_eq=[[2, 2]], b_eq=[1], integrality=1)


@pytest.mark.parametrize("integrality", [None, 1])
def test_unbounded_names_direction(integrality):
    with pytest.raises(UnboundedError, match=r"x\[0\], x\[1\]"):
        solve_milp([1, 1], sense="max", integrality=integrality)
    with pytest.raises(UnboundedError, match="unbounded"):
        solve_milp([1, -1], A_ub=[[1, -1]], b_ub=[1], lb=-np.inf)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        (dict(c=[1, np.nan]), r"c\[1\] is NaN"),
        (dict(c=[1, 1], A_ub=[[1, 1, 1]], b_ub=[1]), "A_ub has 3 columns but c has 2"),
        (dict(c=[1, 1], A_ub=[[1, 1]], b_ub=[1, 2]), r"b_ub has shape \(2,\), expected \(1,\)"),
        (dict(c=[1, 1], A_ub=[[1, 1]]), "A_ub and b_ub must be given together"),
        (dict(c=[1, 1], lb=[2, 0], ub=[1, 1]), r"x\[0\]: lower bound 2 > upper bound 1"),
        (dict(c=[1, 1], A_eq=[[1, np.inf]], b_eq=[1]), "A_eq row 0 has a non-finite"),
        (dict(c=[1, 1], integrality=[0, 2]), r"integrality\[1\] = 2"),
        (dict(c=[1, 1], sense="maximise"), "sense must be 'min' or 'max'"),
        (dict(c=[1, 1], time_limit=-1), "time_limit must be a positive"),
        (dict(c=[[1, 1]]), "c must be 1-D"),
        (dict(c=[1, 1], b_eq=[1], A_eq=[[1, 1]], lb=[np.inf, 0]), r"lb\[0\] is \+inf"),
    ],
)
def test_malformed(kwargs, pattern):
    with pytest.raises(MalformedProblemError, match=pattern):
        solve_milp(**kwargs)


def test_errors_are_typed_hierarchy():
    from hieralloc.errors import HierallocError

    assert issubclass(InfeasibleError, SolverError) and issubclass(SolverError, HierallocError)
    assert issubclass(MalformedProblemError, ValueError)


def test_empty_problem():
    r = solve_milp(np.zeros(0))
    assert r.x.shape == (0,) and r.objective == 0.0 and r.optimal
