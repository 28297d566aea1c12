"""Inverse LP optimisation by duality (OHIO App. B.3.5): the general right-hand-side inverse, the
feasibility projection, and the rebalancing-LP instance (exact on controller data, bounded error on
perturbed flows, certificates checked against independent forward solves)."""

from __future__ import annotations

import numpy as np
import pytest

from hieralloc.solvers import (
    MalformedProblemError,
    RebalancingInverse,
    RebalancingModel,
    RhsInverseModel,
    inverse_rhs,
    project_outflows,
    solve_milp,
)


def _random_lp(rng: np.random.Generator, m: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """min c x s.t. A x <= b, x >= 0 with c > 0 and a covering part (rows -x_S <= -r) so the optimum is not 0."""
    A = np.vstack([-rng.integers(0, 2, (m // 2, n)).astype(float) - np.eye(m // 2, n),
                   rng.integers(0, 3, (m - m // 2, n)).astype(float)])
    b = np.concatenate([-rng.integers(1, 5, m // 2).astype(float), rng.integers(20, 40, m - m // 2).astype(float)])
    c = rng.uniform(1.0, 5.0, n)
    return c, A, b


def test_hand_example_tight_rows_and_gap() -> None:
    # min x1 + 2 x2  s.t.  -(x1 + x2) <= b0 (unknown: "cover at least -b0"),  x1 <= 3 (known)
    c = np.array([1.0, 2.0])
    A = np.array([[-1.0, -1.0], [1.0, 0.0]])
    inv = RhsInverseModel(c, A, unknown=[0])
    opt = inv.solve([3.0, 1.0], [0.0, 3.0])  # x1 = 3, x2 = 1 is optimal for covering 4
    assert opt.b.tolist() == [-4.0, 3.0] and opt.gap == pytest.approx(0.0, abs=1e-9)
    assert opt.primal == pytest.approx(5.0) and opt.dual_value == pytest.approx(5.0)
    assert (opt.dual <= 0).all() and opt.dual.tolist() == pytest.approx([-2.0, -1.0])
    sub = inv.solve([1.0, 3.0], [0.0, 3.0])  # covers 4 too, at cost 7: sub-optimal by 2
    assert sub.b[0] == -4.0 and sub.gap == pytest.approx(2.0) and sub.dual_value == pytest.approx(5.0)
    one_shot = inverse_rhs(c, A, [1.0, 3.0], [3.0], unknown=np.array([True, False]))
    assert one_shot.gap == pytest.approx(2.0)


@pytest.mark.parametrize("seed", range(6))
def test_random_lps_exact_on_optimal_and_gap_is_the_optimality_gap(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m, n = 6, 8
    c, A, b = _random_lp(rng, m, n)
    unknown = np.zeros(m, dtype=bool)
    unknown[: m // 2] = True
    fwd = solve_milp(c, A_ub=A, b_ub=b)
    inv = RhsInverseModel(c, A, unknown)
    res = inv.solve(fwd.x, b)
    assert res.gap == pytest.approx(0.0, abs=1e-7)
    # x* is optimal for the recovered b: an independent forward solve there has the same value
    again = solve_milp(c, A_ub=A, b_ub=res.b)
    assert again.objective == pytest.approx(fwd.objective, abs=1e-7)
    assert np.all(A @ fwd.x <= res.b + 1e-9) and np.allclose(res.b[~unknown], b[~unknown])
    # a feasible, sub-optimal observation: the gap equals c x - OPT(recovered b) (strong duality)
    x = fwd.x + rng.uniform(0.0, 1.0, n) * 0.3
    x *= min(1.0, float(np.min(b[~unknown] / np.maximum(A[~unknown] @ x, 1e-12))))
    sub = inv.solve(x, b)
    ref = solve_milp(c, A_ub=A, b_ub=sub.b)
    assert sub.gap == pytest.approx(float(c @ x) - ref.objective, abs=1e-6)
    assert sub.gap >= 0 and sub.dual_value == pytest.approx(ref.objective, abs=1e-6)


def test_observed_slack_and_errors() -> None:
    c = np.array([1.0, 1.0])
    A = np.array([[-1.0, 0.0], [1.0, 1.0]])
    B = np.array([[-1.0], [1.0]])  # slack in a known row: the unobserved-slack inverse is bilinear there
    inv = RhsInverseModel(c, A, unknown=[0], B=B, p=[10.0])
    with pytest.raises(MalformedProblemError, match="pass the observed slack z_obs"):
        inv.solve([1.0, 0.0], [0.0, 5.0])
    res = inv.solve([1.0, 0.0], [0.0, 5.0], z_obs=[0.5])
    assert res.b[0] == pytest.approx(-1.5) and res.primal == pytest.approx(6.0) and res.gap >= 0
    plain = RhsInverseModel(c, A, unknown=[0])
    with pytest.raises(MalformedProblemError, match="breaks known row 1"):
        plain.solve([4.0, 2.0], [0.0, 5.0])
    with pytest.raises(MalformedProblemError, match=r"x_obs\[1\] = -1 < 0"):
        plain.solve([1.0, -1.0], [0.0, 5.0])
    with pytest.raises(MalformedProblemError, match="b_known has shape"):
        plain.solve([1.0, 0.0], [1.0, 2.0, 3.0])
    with pytest.raises(MalformedProblemError, match="needs its slack penalties"):
        RhsInverseModel(c, A, unknown=[0], B=B)
    with pytest.raises(MalformedProblemError, match="unknown rows must lie in"):
        RhsInverseModel(c, A, unknown=[5])


def test_project_outflows() -> None:
    src = np.array([0, 0, 1, 1, 2])
    idle = np.array([[4.0, 3.0, 0.0]])
    f = np.array([[3.0, 3.0, -1.0, 2.0, 5.0]])  # origin 0 asks 6 > 4, a negative flow, origin 2 has nothing
    x, removed = project_outflows(f, idle, src)
    assert x[0].tolist() == pytest.approx([2.0, 2.0, 0.0, 2.0, 0.0])
    assert removed[0] == pytest.approx(2.0 + 1.0 + 5.0)
    xi, _ = project_outflows(f, idle, src, integral=True)
    assert xi[0].tolist() == [2.0, 2.0, 0.0, 2.0, 0.0]
    rng = np.random.default_rng(0)
    for _ in range(100):  # integer flows never exceed the idle vehicles, totals are the rounded sums
        q = rng.integers(0, 30, (3, 4)).astype(float)
        s = rng.integers(0, 4, 9)
        a = rng.uniform(-0.2, 1.0, (3, 9)) * q[:, s]
        xi, _ = project_outflows(a, q, s, integral=True)
        assert (xi >= 0).all() and (xi == np.round(xi)).all()
        out = np.zeros_like(q)
        np.add.at(out.T, s, xi.T)
        assert (out <= q).all()
    single, rem = project_outflows(np.array([1.0, 1.0]), np.array([1.0]), np.array([0, 0]))
    assert single.shape == (2,) and float(rem) == pytest.approx(1.0)
    with pytest.raises(MalformedProblemError, match="finite"):
        project_outflows([[np.nan]], [[1.0]], [0])
    with pytest.raises(MalformedProblemError, match="expected"):
        project_outflows([[1.0, 2.0]], [[1.0]], [0])


@pytest.mark.parametrize("edges", ["complete", "ring"])
def test_rebalancing_inverse_exact_on_controller_flows(edges: str) -> None:
    rng = np.random.default_rng(1)
    n = 7
    C = rng.integers(1, 9, (n, n)).astype(float)
    E = None if edges == "complete" else np.array([(i, (i + d) % n) for i in range(n) for d in (1, n - 1)])
    fwd = RebalancingModel(n, C, edges=E)
    inv = RebalancingInverse(n, C, edges=E)
    for _ in range(150):
        q = rng.integers(0, 25, n)
        target = rng.multinomial(int(q.sum()), rng.dirichlet(np.ones(n)))
        r = fwd.solve(q, target)
        res = inv.solve(q, r.flows)
        assert res.gap == pytest.approx(0.0, abs=1e-7) and res.removed == 0.0
        assert np.array_equal(res.target, r.next_idle)  # the reached distribution (= target when reachable)
        if edges == "complete":
            assert np.array_equal(res.target, target)
        assert res.cost == pytest.approx(r.cost) and res.optimal_cost == pytest.approx(r.cost)
        if q.sum() > 0:
            assert res.goal.sum() == pytest.approx(1.0) and np.allclose(res.goal * q.sum(), res.target)
        # the recovered target, executed, reaches the same distribution at the same cost
        again = RebalancingModel(n, C, edges=E).solve(q, res.target)
        assert np.array_equal(again.next_idle, r.next_idle) and again.cost == pytest.approx(r.cost)
    assert inv.solve(np.zeros(n), np.zeros(len(fwd.edges))).goal.tolist() == pytest.approx([1.0 / n] * n)


def test_rebalancing_inverse_bounded_error_on_perturbed_flows() -> None:
    rng = np.random.default_rng(2)
    n = 6
    C = rng.integers(1, 9, (n, n)).astype(float)
    fwd = RebalancingModel(n, C)
    inv = RebalancingInverse(n, C)
    check = RebalancingModel(n, C, integral=False)
    for k in range(100):
        q = rng.integers(0, 30, n)
        target = rng.multinomial(int(q.sum()), rng.dirichlet(np.ones(n)))
        f = fwd.solve(q, target).flows
        noisy = f + rng.normal(0.0, 1.0 + k % 3, f.shape)
        res = inv.solve(q, noisy)
        # graceful: the target moves by at most 2 ||projected - true||_1 and the gap is the true excess cost
        assert np.abs(res.target - target).sum() <= 2 * np.abs(res.flows - f).sum() + 1e-9
        ref = check.solve(q, res.target)
        assert res.optimal_cost == pytest.approx(ref.cost, rel=1e-7, abs=1e-7)
        assert res.gap == pytest.approx(res.cost - ref.cost, rel=1e-6, abs=1e-6) and res.gap >= 0
        assert res.target.sum() == pytest.approx(q.sum()) and (res.target >= -1e-9).all()


def test_rebalancing_inverse_cost_updates() -> None:
    n = 4
    C = np.ones((n, n))
    inv = RebalancingInverse(n, C)
    q = np.array([4, 0, 0, 0])
    f = RebalancingModel(n, C).solve(q, [1, 1, 1, 1]).flow_matrix
    assert inv.solve(q, f).gap == pytest.approx(0.0, abs=1e-9)
    C2 = C.copy()
    C2[0, 1] = 5.0  # 0 -> 1 directly is now dearer than 0 -> 2 -> ... is not allowed in one step: still optimal
    inv.set_cost(C2)
    res = inv.solve(q, f)
    assert res.cost == pytest.approx(7.0) and res.gap == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(MalformedProblemError):
        inv.solve(q, np.zeros(3))
