"""Numerical inverses of the LQR goal-tracking controller: Adam and CEM (OHIO Alg. 2-3, App. B.2.1)."""

from __future__ import annotations

import numpy as np
import pytest

from hieralloc.control import (
    CEMInverseConfig,
    GDInverseConfig,
    GoalLQR,
    invert_cem,
    invert_gd,
    recover_goals,
)
from hieralloc.control.recover import error_bound
from hieralloc.errors import ConfigError

N = 12     # transitions per test: small budgets, the whole file runs in seconds


def _data(system: tuple[np.ndarray, np.ndarray], transitions: tuple[np.ndarray, np.ndarray], R: float, q11: float,
          T: int, observed: str) -> tuple[GoalLQR, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    A, B = system
    ctrl = GoalLQR(A, B, np.diag([q11, 1.0]), R, T)
    s, u = transitions[0][:N], transitions[1][:N]
    xs, acts = ctrl.rollout(s, u)
    data: tuple[np.ndarray, np.ndarray] = (s, xs[:, -1]) if observed == "next_state" else (xs[:, :-1], acts)
    return ctrl, s, u, data


@pytest.mark.parametrize("R,q11,T,observed", [(0.0, 5.5, 5, "next_state"), (0.2, 3.5, 5, "next_state"),
                                               (0.0, 3.5, 3, "controls")])
def test_gd_recovers_the_goal_within_the_tolerance_its_stopping_loss_allows(system, transitions, R, q11, T, observed):
    """Adam, lr 0.01, stop below loss 1e-5 (the paper's settings); the goal error is then bounded by
    sqrt(k tol) / sigma_min(G). (Three settings only: each Adam step costs about 0.5 ms.)"""
    ctrl, s, u, data = _data(system, transitions, R, q11, T, observed)
    cfg = GDInverseConfig(lr=0.01, max_steps=10_000, tol=1e-5)
    res = invert_gd(ctrl, *data, observed=observed, config=cfg)
    assert res.goal.shape == u.shape and res.loss.shape == (N,)
    assert res.loss.max() < cfg.tol
    assert np.all(res.iterations > 0) and res.iterations.max() < cfg.max_steps
    bound = error_bound(ctrl, observed, cfg.tol)
    assert np.abs(res.goal - u).max() <= bound
    assert bound < 0.1
    np.testing.assert_allclose(res.loss, ctrl.loss(res.goal, *data, observed=observed), rtol=1e-9)


def test_gd_one_step_reproduces_the_next_state(system, transitions):
    """T = 1: the goal is not unique; GD (started at s', Alg. 2) lands on a goal that reproduces s'."""
    ctrl, s, u, data = _data(system, transitions, 0.0, 4.0, 1, "next_state")
    res = invert_gd(ctrl, *data)
    P = ctrl.identifiable_projector()
    assert np.abs((res.goal - u) @ P.T).max() <= error_bound(ctrl, "next_state", 1e-5)
    assert np.abs(ctrl.next_state(s, res.goal) - data[1]).max() < np.sqrt(2 * 1e-5)


def test_gd_stops_transitions_that_already_fit_and_respects_init(system, transitions):
    ctrl, s, u, data = _data(system, transitions, 0.2, 4.0, 3, "next_state")
    res = invert_gd(ctrl, *data, init=u)              # started at the answer: nothing to do
    assert np.all(res.iterations == 0)
    np.testing.assert_array_equal(res.goal, u)
    short = invert_gd(ctrl, *data, config=GDInverseConfig(max_steps=5))
    assert short.iterations.max() == 5


@pytest.mark.parametrize("R,q11,T", [(0.0, 3.5, 2), (0.2, 5.5, 5), (0.2, 4.0, 3)])
@pytest.mark.parametrize("observed", ["next_state", "controls"])
def test_cem_recovers_the_goal(system, transitions, R, q11, T, observed):
    """50 samples, top 20 %, stop after 4 iterations without improvement (OHIO B.2.1), reruns where the
    loss stays above 1e-10; the goal error is then bounded by the loss."""
    ctrl, s, u, data = _data(system, transitions, R, q11, T, observed)
    res = invert_cem(ctrl, *data, observed=observed, seed=0)
    assert np.abs(res.goal - u).max() <= error_bound(ctrl, observed, float(res.loss.max())) + 1e-12
    assert np.abs(res.goal - u).max() < 1e-3
    assert res.evaluations > 50 * N


def test_cem_is_deterministic_for_a_seed(system, transitions):
    ctrl, s, u, data = _data(system, transitions, 0.2, 4.0, 3, "next_state")
    a = invert_cem(ctrl, *data, seed=3)
    b = invert_cem(ctrl, *data, seed=3)
    c = invert_cem(ctrl, *data, seed=4)
    np.testing.assert_array_equal(a.goal, b.goal)
    np.testing.assert_array_equal(a.iterations, b.iterations)
    assert not np.array_equal(a.goal, c.goal)


def test_cem_paper_refit_variants_run(system, transitions):
    """The plain CEM refits (about the elites' mean; diagonal) are available; they stop earlier on this
    ill-conditioned problem, which is why the default refits about the previous mean (see the docs)."""
    ctrl, s, u, data = _data(system, transitions, 0.2, 5.5, 5, "next_state")
    errs = {}
    for cov in ("previous-mean", "elite-mean", "diagonal"):
        res = invert_cem(ctrl, *data, config=CEMInverseConfig(covariance=cov, reruns=0))
        errs[cov] = np.abs(res.goal - u).max()
    assert errs["previous-mean"] < errs["diagonal"]


def test_recover_goals_dispatches(system, transitions):
    ctrl, s, u, data = _data(system, transitions, 0.0, 5.5, 5, "next_state")
    for method, tol in (("analytical", 1e-9), ("gd", error_bound(ctrl, "next_state", 1e-5)), ("cem", 1e-3)):
        res = recover_goals(ctrl, *data, method=method, seed=0)
        assert np.abs(res.goal - u).max() <= tol, method
    with pytest.raises(ConfigError, match="'method'.*analytical, gd, cem"):
        recover_goals(ctrl, *data, method="newton")


@pytest.mark.parametrize("cls,kwargs,key", [
    (GDInverseConfig, {"lr": 0.0}, "lr"),
    (GDInverseConfig, {"max_steps": 0}, "max_steps"),
    (GDInverseConfig, {"tol": -1.0}, "tol"),
    (CEMInverseConfig, {"samples": 1}, "samples"),
    (CEMInverseConfig, {"elite_frac": 0.01}, "elite_frac"),
    (CEMInverseConfig, {"covariance": "full"}, "covariance"),
    (CEMInverseConfig, {"init_std": float("nan")}, "init_std"),
])
def test_bad_inverse_settings(cls, kwargs, key):
    with pytest.raises(ConfigError) as e:
        cls(**kwargs)
    assert e.value.key == key


def test_cem_rejects_a_non_integer_seed(system, transitions):
    ctrl, s, u, data = _data(system, transitions, 0.2, 4.0, 2, "next_state")
    with pytest.raises(ConfigError, match="'seed'"):
        invert_cem(ctrl, *data, seed=1.5)  # type: ignore[arg-type]
