"""Capacitated assignment: fast path, LP path and reusable model against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hieralloc.solvers import (
    AssignmentModel,
    InfeasibleError,
    MalformedProblemError,
    assign_capacitated,
)


def brute_force(S, cap, lo=None, F=None):
    """Best total score over all m**n assignments (vectorised), None if none is feasible."""
    n, m = S.shape
    lo = np.zeros(m, int) if lo is None else lo
    tasks = np.array(list(itertools.product(range(m), repeat=n)))  # (m**n, n)
    loads = (tasks[:, :, None] == np.arange(m)).sum(axis=1)
    ok = (loads <= cap).all(axis=1) & (loads >= lo).all(axis=1)
    if F is not None:
        ok &= ~F[np.arange(n), tasks].any(axis=1)
    if not ok.any():
        return None
    return float(S[np.arange(n), tasks[ok]].sum(axis=1).max())


@st.composite
def instances(draw):
    n = draw(st.integers(1, 6))
    m = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    S = np.round(rng.normal(size=(n, m)), 2)  # ties happen: objectives must still agree
    cap = rng.integers(0, n + 1, m)
    lo = np.minimum(rng.integers(0, 3, m), cap) if draw(st.booleans()) else None
    F = rng.uniform(size=(n, m)) < 0.2 if draw(st.booleans()) else None
    return S, cap, lo, F


@settings(derandomize=True, max_examples=120, deadline=None)
@given(instances())
def test_all_paths_match_brute_force(inst):
    S, cap, lo, F = inst
    best = brute_force(S, cap, lo, F)
    methods = ["lp", "auto"] + ([] if lo is not None and lo.any() else ["fast"])
    for method in methods:
        if best is None:
            with pytest.raises(InfeasibleError):
                assign_capacitated(S, cap, min_load=lo, forbidden=F, method=method)
            continue
        r = assign_capacitated(S, cap, min_load=lo, forbidden=F, method=method)
        assert r.objective == pytest.approx(best, abs=1e-9), method
        assert (r.loads <= cap).all() and r.x.sum(axis=1).tolist() == [1.0] * S.shape[0]
        assert r.objective == pytest.approx(float((S * r.x).sum()))
        if lo is not None:
            assert (r.loads >= lo).all()
        if F is not None:
            assert not F[np.arange(S.shape[0]), r.task].any()


@settings(derandomize=True, max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_reused_model_equals_fresh_solve(seed):
    rng = np.random.default_rng(seed)
    n, m = 7, 3
    cap = np.array([3, 3, 2])
    model = AssignmentModel(n, m, cap)
    for step in range(4):
        S = rng.normal(size=(n, m))
        if step == 2:
            cap = np.array([4, 2, 2])
            model.set_capacity(cap, min_load=[1, 1, 1])
        warm = model.solve(S)
        fresh = assign_capacitated(S, cap, min_load=[1, 1, 1] if step >= 2 else None, method="lp")
        assert warm.objective == pytest.approx(fresh.objective, abs=1e-9)
        assert warm.objective == pytest.approx(brute_force(S, cap, np.array([1, 1, 1]) if step >= 2 else None))
    F = np.zeros((n, m), bool)
    F[:, 0] = True
    model.set_capacity([4, 4, 4], min_load=[0, 0, 0])
    model.set_forbidden(F)
    assert (model.solve(rng.normal(size=(n, m))).task != 0).all()


def test_lp_path_is_integral_for_larger_instance():
    rng = np.random.default_rng(3)
    S = rng.normal(size=(40, 8))
    cap = rng.integers(3, 9, 8)
    a = assign_capacitated(S, cap, method="fast")
    b = assign_capacitated(S, cap, method="lp")
    assert a.objective == pytest.approx(b.objective, abs=1e-9)
    assert set(np.unique(b.x)) <= {0.0, 1.0}


def test_infeasible_messages_name_the_constraint():
    S = np.zeros((9, 3))
    with pytest.raises(InfeasibleError, match=r"^capacity sum 7 < 9 agents: every agent needs a task; "
                                              r"raise capacities$") as e:
        assign_capacitated(S, [2, 2, 3])
    assert e.value.constraint == "capacity"
    with pytest.raises(InfeasibleError, match="per-task minimums sum to 12 > 9 agents"):
        assign_capacitated(S, 9, min_load=[4, 4, 4])
    F = np.zeros((9, 3), bool)
    F[4] = True
    with pytest.raises(InfeasibleError, match="agent 4 has every task forbidden"):
        assign_capacitated(S, 5, forbidden=F)
    F = np.zeros((9, 3), bool)
    F[:7, 0] = True
    with pytest.raises(InfeasibleError, match=r"task 0 needs at least 3 agents but only 2 may take it"):
        assign_capacitated(S, 5, min_load=[3, 0, 0], forbidden=F)
    F = np.ones((2, 2), bool)
    F[:, 0] = False
    with pytest.raises(InfeasibleError, match="forbidden pairs leave room for at most 1 of 2 agents"):
        assign_capacitated(np.zeros((2, 2)), [1, 1], forbidden=F)
    # not detectable before solving (Hall's condition fails for agents {0, 1}): the solver names rows
    F = np.array([[0, 1, 1], [0, 1, 1], [1, 0, 0]], bool)
    for method in ("fast", "lp"):
        with pytest.raises(InfeasibleError, match="agent 0|agent 1|task 0"):
            assign_capacitated(np.zeros((3, 3)), [1, 2, 2], forbidden=F, method=method)


@pytest.mark.parametrize(
    ("args", "kwargs", "pattern"),
    [
        ((np.zeros(3),), {}, "2-D"),
        ((np.array([[0.0, np.nan]]),), {}, r"scores\[0, 1\] = nan"),
        ((np.zeros((2, 2)), [1, -1]), {}, r"capacity\[1\] = -1 < 0"),
        ((np.zeros((2, 2)), [1.5, 1]), {}, "must be an integer"),
        ((np.zeros((2, 2)), [1, 1, 1]), {}, r"capacity has shape \(3,\)"),
        ((np.zeros((2, 2)), [1, 1]), {"min_load": [2, 0]}, "min_load 2 > capacity 1"),
        ((np.zeros((2, 2)), 2), {"min_load": [1, 0], "method": "fast"}, "min_load needs method='lp'"),
        ((np.zeros((2, 2)), 2), {"method": "hungarian"}, "method must be"),
        ((np.zeros((2, 2)), 2), {"forbidden": np.zeros((3, 2), bool)}, r"forbidden has shape \(3, 2\)"),
    ],
)
def test_malformed(args, kwargs, pattern):
    with pytest.raises(MalformedProblemError, match=pattern):
        assign_capacitated(*args, **kwargs)


def test_model_rejects_wrong_score_shape():
    with pytest.raises(MalformedProblemError, match=r"built for \(3, 2\)"):
        AssignmentModel(3, 2, 2).solve(np.zeros((2, 3)))
