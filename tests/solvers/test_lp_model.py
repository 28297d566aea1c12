"""LPModel: warm re-solves after changes equal fresh solves, and are cheap."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hieralloc.solvers import InfeasibleError, LPModel, MalformedProblemError, solve_milp


def _random_lp(rng, n=6, m_ub=4, m_eq=2):
    A = rng.normal(size=(m_ub, n))
    Aeq = rng.normal(size=(m_eq, n))
    x0 = rng.uniform(0.2, 0.8, n)
    return rng.normal(size=n), A, A @ x0 + rng.uniform(0, 1, m_ub), Aeq, Aeq @ x0, x0


@settings(derandomize=True, max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.lists(st.sampled_from(["cost", "bounds", "b_ub", "b_eq", "rows"]),
                                           min_size=1, max_size=6))
def test_warm_resolve_equals_fresh_solve(seed, changes):
    rng = np.random.default_rng(seed)
    c, A, b, Aeq, beq, x0 = _random_lp(rng)
    lb, ub = np.zeros(6), np.ones(6)
    model = LPModel(c, A_ub=A, b_ub=b, A_eq=Aeq, b_eq=beq, lb=lb, ub=ub)
    model.solve()
    for change in changes:
        if change == "cost":
            idx = rng.choice(6, size=3, replace=False)
            c[idx] = rng.normal(size=3)
            model.set_costs(c[idx], idx)
        elif change == "bounds":
            lb = np.minimum(x0, rng.uniform(0, 0.2, 6))
            ub = np.maximum(x0, rng.uniform(0.8, 1.5, 6))
            model.set_col_bounds(lb, ub)
        elif change == "b_ub":
            b = A @ x0 + rng.uniform(0, 1, 4)
            model.set_b_ub(b)
        elif change == "b_eq":
            x0 = np.clip(x0 + rng.normal(scale=0.05, size=6), lb + 0.01, ub - 0.01)
            beq = Aeq @ x0
            b = np.maximum(b, A @ x0)
            model.set_b_ub(b)
            model.set_b_eq(beq)
        else:  # ranged row bounds on the A_ub block, by index
            model.set_row_bounds(np.full(2, -np.inf), b[:2] + 0.5, idx=[0, 1])
            b[:2] += 0.5
        warm = model.solve()
        fresh = solve_milp(c, A_ub=A, b_ub=b, A_eq=Aeq, b_eq=beq, lb=lb, ub=ub)
        assert warm.status == "optimal"
        assert warm.objective == pytest.approx(fresh.objective, abs=1e-7)
        assert np.allclose(A @ warm.x, warm.row_activity[:4], atol=1e-7)


def test_warm_resolve_is_cheap():
    """A re-solve after a small change needs far fewer simplex iterations than a cold solve."""
    rng = np.random.default_rng(0)
    n, m = 120, 60
    A = rng.uniform(0, 1, (m, n))
    c = -rng.uniform(0, 1, n)
    b = rng.uniform(5, 10, m)
    model = LPModel(c, A_ub=A, b_ub=b, ub=1.0)
    model.solve()
    warm_iters, cold_iters = [], []
    for _ in range(5):
        b = b * rng.uniform(0.97, 1.03, m)
        model.set_b_ub(b)
        warm_iters.append(model.solve().iterations)
        cold_iters.append(model.solve(cold=True).iterations)
    assert sum(warm_iters) < 0.5 * sum(cold_iters)


def test_ranged_model_and_integer_columns():
    A = np.array([[1.0, 1.0], [1.0, -1.0]])
    model = LPModel.from_ranged([1.0, 2.0], A, [1.5, -np.inf], [np.inf, 0.5], ub=5, integrality=[1, 1],
                                sense="min")
    sol = model.solve()
    assert sol.x.tolist() == [1.0, 1.0] and sol.objective == pytest.approx(3.0)
    model.set_row_bounds([2.5], None, idx=[0])
    assert model.solve().objective == pytest.approx(5.0)
    with pytest.raises(MalformedProblemError, match="set_row_bounds"):
        model.set_b_ub([1.0, 2.0])


def test_update_errors_and_infeasible_after_change():
    model = LPModel([1.0, 1.0], A_ub=[[-1.0, -1.0]], b_ub=[-1.0], ub=[1, 1], row_names=["demand cover"])
    model.solve()
    with pytest.raises(MalformedProblemError, match=r"c has shape \(3,\)"):
        model.set_costs([1.0, 2.0, 3.0])
    with pytest.raises(MalformedProblemError, match="column index out of range"):
        model.set_costs([1.0], idx=[5])
    with pytest.raises(MalformedProblemError, match=r"x\[1\]: lower bound 3 > upper bound 1"):
        model.set_col_bounds(lower=[0, 3])
    with pytest.raises(MalformedProblemError, match="b_ub index out of range"):
        model.set_b_ub([1.0], idx=[3])
    model.set_b_ub([-3.0])  # needs x0 + x1 >= 3 with x <= 1
    with pytest.raises(InfeasibleError, match="demand cover"):
        model.solve()
    model.set_b_ub([-1.5])  # feasible again: the model keeps working after an error
    assert model.solve().objective == pytest.approx(1.5)
