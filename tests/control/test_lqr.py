"""Finite-horizon LQR goal tracking (OHIO App. B.1) and its analytical inverse (Eq. (23), (26), App. B.1.1)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import solve_discrete_are

from hieralloc.control import GoalLQR, double_integrator
from hieralloc.errors import ConfigError, DataError, HierallocError

SETTINGS = [(R, q11) for R in (0.0, 0.2) for q11 in (3.5, 4.5, 5.5)]   # OHIO App. C.1 grid (subset of Q11)


def _ctrl(system, R, q11, T):
    A, B = system
    return GoalLQR(A, B, np.diag([q11, 1.0]), R, T)


# ---------------------------------------------------------------------------------------------
# the controller


def test_one_step_gain_is_the_formula(system):
    A, B = system
    Q, R = np.diag([4.0, 1.0]), np.array([[0.2]])
    ctrl = GoalLQR(A, B, Q, R, horizon=1)
    K = -np.linalg.solve(R + B.T @ Q @ B, B.T @ Q @ A)          # OHIO App. B.1 with P_1 = Q
    np.testing.assert_allclose(ctrl.gains[0], K, rtol=1e-12)
    np.testing.assert_allclose(ctrl.riccati[0], Q + A.T @ Q @ (A + B @ K), rtol=1e-12)


def test_long_horizon_gain_tends_to_the_infinite_horizon_lqr(system):
    A, B = system
    Q, R = np.diag([5.0, 1.0]), np.array([[0.2]])
    ctrl = GoalLQR(A, B, Q, R, horizon=300)
    P = solve_discrete_are(A, B, Q, R)
    K = -np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)
    np.testing.assert_allclose(ctrl.gains[0], K, rtol=1e-8)
    np.testing.assert_allclose(ctrl.riccati[0], P, rtol=1e-8)


@pytest.mark.parametrize("R,q11", SETTINGS)
@pytest.mark.parametrize("T", [1, 3])
def test_controls_solve_the_finite_horizon_tracking_problem(system, R, q11, T):
    """For goals at rest (A u = u) the closed loop equals the open-loop optimum of
    sum_{t=1..T} (x_t-u)' Q (x_t-u) + sum_t a_t' R a_t, solved here as one least-squares problem."""
    A, B = system
    ctrl = _ctrl(system, R, q11, T)
    rng = np.random.default_rng(3)
    x0 = rng.uniform(-1, 1, 2)
    u = np.array([rng.uniform(-1, 1), 0.0])                    # velocity 0: an equilibrium of A
    xs, acts = ctrl.rollout(x0, u)
    # x_t - u = A^t (x0 - u) + sum_{j<t} A^{t-1-j} B a_j
    Qh, Rh = np.linalg.cholesky(np.diag([q11, 1.0])).T, np.sqrt(R)
    rows, rhs = [], []
    for t in range(1, T + 1):
        row = np.zeros((2, T))
        for j in range(t):
            row[:, j] = (np.linalg.matrix_power(A, t - 1 - j) @ B)[:, 0]
        rows.append(Qh @ row)
        rhs.append(-Qh @ np.linalg.matrix_power(A, t) @ (x0 - u))
    rows.append(Rh * np.eye(T))
    rhs.append(np.zeros(T))
    a_opt = np.linalg.lstsq(np.vstack(rows), np.concatenate(rhs), rcond=None)[0]
    np.testing.assert_allclose(acts[:, 0], a_opt, atol=1e-10)


def test_rollout_and_action_are_batched(system):
    ctrl = _ctrl(system, 0.2, 4.0, 4)
    rng = np.random.default_rng(0)
    s, u = rng.normal(size=(3, 5, 2)), rng.normal(size=(3, 5, 2))
    xs, acts = ctrl.rollout(s, u)
    assert xs.shape == (3, 5, 5, 2) and acts.shape == (3, 5, 4, 1)
    np.testing.assert_allclose(xs[..., 0, :], s)
    np.testing.assert_allclose(acts[..., 0, :], ctrl.action(s, u, t=0))
    np.testing.assert_allclose(xs[1, 2], ctrl.rollout(s[1, 2], u[1, 2])[0])
    np.testing.assert_allclose(ctrl.next_state(s, u), xs[..., -1, :])


def test_transition_maps_match_the_rollout(system, transitions):
    s, u = transitions
    ctrl = _ctrl(system, 0.0, 5.0, 5)
    M, phi1 = ctrl.transition_maps()                           # OHIO App. B.1.1: s_T = Phi2 - Phi1 u
    np.testing.assert_allclose(ctrl.next_state(s, u), s @ M.T - u @ phi1.T, atol=1e-12)


def test_r_zero_with_a_singular_control_cost_uses_the_minimum_norm_control():
    """Two identical actuators and R = 0: R + B'PB is singular; the controller splits the optimal
    control equally (minimum norm) and drives the state exactly as one actuator would."""
    A, b = double_integrator(0.5)
    Q = np.diag([4.0, 1.0])
    twin = GoalLQR(A, np.hstack([b, b]), Q, 0.0, horizon=3)
    single = GoalLQR(A, b, Q, 0.0, horizon=3)
    np.testing.assert_allclose(twin.gains, np.repeat(single.gains / 2, 2, axis=1), atol=1e-12)
    s, u = np.array([0.3, -0.2]), np.array([-0.5, 0.4])
    np.testing.assert_allclose(twin.next_state(s, u), single.next_state(s, u), atol=1e-12)


def test_zero_costs_give_zero_gains_and_a_goal_that_is_not_identifiable(system):
    A, B = system
    ctrl = GoalLQR(A, B, np.zeros((2, 2)), 0.0, horizon=2)
    assert np.all(ctrl.gains == 0)
    s = np.array([0.5, 1.0])
    np.testing.assert_allclose(ctrl.next_state(s, [3.0, 3.0]), A @ A @ s)
    assert ctrl.identifiable_rank() == 0
    np.testing.assert_allclose(ctrl.invert(s, A @ A @ s), [0.0, 0.0])
    np.testing.assert_allclose(ctrl.invert(s, A @ A @ s, reference=[2.0, -1.0]), [2.0, -1.0])


# ---------------------------------------------------------------------------------------------
# analytical inverse


@pytest.mark.parametrize("R,q11", SETTINGS)
@pytest.mark.parametrize("T", [2, 5])
@pytest.mark.parametrize("observed", ["next_state", "controls"])
def test_analytical_inverse_recovers_the_goal_exactly(system, transitions, R, q11, T, observed):
    """T >= 2 on the double integrator: Phi1 (and the stacked gains) have full rank, the goal is unique."""
    s, u = transitions
    ctrl = _ctrl(system, R, q11, T)
    xs, acts = ctrl.rollout(s, u)
    data = (s, xs[:, -1]) if observed == "next_state" else (xs[:, :-1], acts)
    assert ctrl.identifiable_rank(observed) == 2
    u_hat = ctrl.invert(*data, observed=observed)
    assert np.abs(u_hat - u).max() < 1e-9
    assert np.abs(ctrl.next_state(s, u_hat) - xs[:, -1]).max() < 1e-9
    assert ctrl.loss(u_hat, *data, observed=observed).max() < 1e-20


@pytest.mark.parametrize("R,q11", SETTINGS)
def test_one_step_inverse_is_eq_26_and_eq_23(system, transitions, R, q11):
    """T = 1 (OHIO App. C.1): rank(BK) = 1, so a next state fixes the goal only along the row space of
    BK. Eq. (26) returns the minimum-norm goal: the true goal's projection, which reproduces s' exactly."""
    A, B = system
    s, u = transitions
    ctrl = _ctrl(system, R, q11, 1)
    s1 = ctrl.next_state(s, u)
    K = ctrl.gains[0]
    BK = B @ K
    eq26 = ((A + BK) @ s.T - s1.T).T @ np.linalg.pinv(BK).T                 # OHIO Eq. (26)
    Kt, kt = -K, s @ K.T                                                      # a = Kt u + kt  (Eq. (19)-(20) form)
    eq23 = (s1 - (s @ A.T + kt @ B.T)) @ np.linalg.pinv(B @ Kt).T           # OHIO Eq. (23), c = 0
    u_hat = ctrl.invert(s, s1)
    np.testing.assert_allclose(u_hat, eq26, atol=1e-12)
    np.testing.assert_allclose(u_hat, eq23, atol=1e-12)
    assert ctrl.identifiable_rank() == 1
    P = ctrl.identifiable_projector()
    np.testing.assert_allclose(P, K.T @ K / (K @ K.T), atol=1e-12)           # row space of K
    assert np.abs(u_hat - u @ P.T).max() < 1e-9                              # exact in the identifiable part
    assert np.abs(ctrl.next_state(s, u_hat) - s1).max() < 1e-9               # and reproduces s' exactly
    assert np.abs(u_hat - u).max() > 0.1                                     # not the true goal itself
    # the solution closest to a reference on the right line is the true goal
    np.testing.assert_allclose(ctrl.invert(s, s1, reference=u), u, atol=1e-12)
    # the action-observed inverse sees the same single direction (one control per goal)
    a = ctrl.rollout(s, u)[1]
    np.testing.assert_allclose(ctrl.invert(s[:, None, :], a, observed="controls"), u_hat, atol=1e-9)


def test_inverse_is_batched(system):
    ctrl = _ctrl(system, 0.2, 4.0, 3)
    rng = np.random.default_rng(1)
    s, u = rng.normal(size=(4, 6, 2)), rng.normal(size=(4, 6, 2))
    xs, acts = ctrl.rollout(s, u)
    np.testing.assert_allclose(ctrl.invert(s, xs[..., -1, :]), u, atol=1e-9)
    np.testing.assert_allclose(ctrl.invert(xs[..., :-1, :], acts, observed="controls"), u, atol=1e-9)


# ---------------------------------------------------------------------------------------------
# bad input: one clear message naming the field and the fix


A0, B0 = double_integrator(0.5)


@pytest.mark.parametrize("kwargs,field,fix", [
    ({"A": [[1.0, 0.5, 0.0], [0.0, 1.0, 0.0]]}, "A", "square"),
    ({"A": [1.0, 0.5]}, "A", "2-D"),
    ({"B": [[0.1], [0.5], [0.2]]}, "B", "rows"),
    ({"Q": [[-1.0, 0.0], [0.0, 1.0]]}, "Q", "positive semi-definite"),
    ({"Q": [[1.0, 2.0], [0.0, 1.0]]}, "Q", "symmetric"),
    ({"Q": [[np.nan, 0.0], [0.0, 1.0]]}, "Q", "NaN"),
    ({"Q": np.eye(3)}, "Q", "(2, 2)"),
    ({"R": -0.2}, "R", "R >= 0"),
    ({"R": [[0.1, 0.0], [0.0, 0.1]]}, "R", "(1, 1)"),
    ({"R": [[-0.1]]}, "R", "positive semi-definite"),
    ({"R": float("inf")}, "R", "finite"),
    ({"horizon": 0}, "horizon", ">= 1"),
    ({"horizon": 2.5}, "horizon", "integer"),
    ({"horizon": True}, "horizon", "integer"),
    ({"A": "abc"}, "A", "real matrix"),
])
def test_bad_parameters_raise_one_config_error(kwargs, field, fix):
    args = {"A": A0, "B": B0, "Q": np.diag([4.0, 1.0]), "R": 0.2, "horizon": 2, **kwargs}
    with pytest.raises(ConfigError) as e:
        GoalLQR(args["A"], args["B"], args["Q"], args["R"], args["horizon"])
    assert e.value.key == field
    assert fix in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("states,target,field,fix", [
    (np.zeros((4, 3)), np.zeros((4, 2)), "states", "(..., 2)"),
    (np.zeros((4, 2)), np.zeros(3), "next_states", "(..., 2)"),
    (np.array([[np.nan, 0.0]]), np.zeros((1, 2)), "states", "NaN"),
    (np.zeros((1, 2)), np.array([[0.0, np.inf]]), "next_states", "NaN"),
    ([["a", "b"]], np.zeros((1, 2)), "states", "numbers"),
])
def test_bad_observations_raise_one_data_error(system, states, target, field, fix):
    ctrl = _ctrl(system, 0.2, 4.0, 2)
    with pytest.raises(DataError) as e:
        ctrl.invert(states, target)
    msg = str(e.value)
    assert msg.startswith(field + ":") and fix in msg and "\n" not in msg


def test_bad_controls_and_observed_kind(system):
    ctrl = _ctrl(system, 0.2, 4.0, 3)
    with pytest.raises(DataError, match=r"^controls: expected shape \(\.\.\., 3, 1\)"):
        ctrl.invert(np.zeros((5, 3, 2)), np.zeros((5, 2, 1)), observed="controls")
    with pytest.raises(DataError, match="^controls: batch shape"):
        ctrl.invert(np.zeros((5, 3, 2)), np.zeros((4, 3, 1)), observed="controls")
    with pytest.raises(ConfigError, match="observed.*next_state, controls"):
        ctrl.invert(np.zeros((5, 2)), np.zeros((5, 2)), observed="actions")
    with pytest.raises(ConfigError, match="'t'"):
        ctrl.action(np.zeros(2), np.zeros(2), t=3)
    with pytest.raises(ConfigError, match="'dt'.*positive"):
        double_integrator(0.0)
    assert issubclass(ConfigError, HierallocError) and issubclass(DataError, HierallocError)
