"""Differentiable wrappers: blackbox (Vlastelica et al.; LPMARL Eq. (10)-(12), (16)) and the
perturbed optimiser (Berthet et al.), checked against finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hieralloc.solvers import (
    BlackboxSolver,
    MalformedProblemError,
    PerturbedSolver,
    RebalancingModel,
    assign_capacitated,
    blackbox,
    max_weight_matching,
    perturbed,
    perturbed_fenchel_young_loss,
)

CAP = np.array([2, 2, 2])


def assign_x(scores: np.ndarray) -> np.ndarray:
    return assign_capacitated(scores, CAP).x


def assign_value(scores: np.ndarray) -> float:
    return assign_capacitated(scores, CAP).objective


def one_hot_argmax(w: np.ndarray) -> np.ndarray:
    y = np.zeros_like(w)
    y[np.argmax(w)] = 1.0
    return y


def interpolated_loss(phi, w, g, lam, sense):
    """Vlastelica's f_lambda for the linear loss <g, y>: min: (phi(w + lam g) - phi(w)) / lam;
    max (phi = max value): (phi(w) - phi(w - lam g)) / lam."""
    if sense == "min":
        return (phi(w + lam * g) - phi(w)) / lam
    return (phi(w) - phi(w - lam * g)) / lam


def central_fd(f, w, h=1e-5):
    grad = np.zeros_like(w)
    for k in np.ndindex(w.shape):
        e = np.zeros_like(w)
        e[k] = h
        grad[k] = (f(w + e) - f(w - e)) / (2 * h)
    return grad


@settings(derandomize=True, max_examples=15, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from([0.5, 3.0, 20.0]))
def test_blackbox_is_gradient_of_interpolated_loss_max(seed, lam):
    rng = np.random.default_rng(seed)
    S = rng.normal(size=(6, 3))
    g = rng.normal(size=(6, 3))
    w = torch.tensor(S, requires_grad=True)
    y = blackbox(w, assign_x, lam=lam, sense="max")
    assert np.array_equal(y.detach().numpy(), assign_x(S))
    (torch.tensor(g) * y).sum().backward()
    fd = central_fd(lambda s: interpolated_loss(assign_value, s, g, lam, "max"), S)
    assert np.allclose(w.grad.numpy(), fd, atol=1e-6)


@settings(derandomize=True, max_examples=10, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from([1.0, 10.0]))
def test_blackbox_is_gradient_of_interpolated_loss_min(seed, lam):
    """A minimising solver: rebalancing flows as a function of edge costs (fixed penalty)."""
    rng = np.random.default_rng(seed)
    n = 4
    model = RebalancingModel(n, np.ones((n, n)), penalty=50.0)
    q, qh = rng.integers(0, 5, n), rng.integers(0, 5, n)

    def flows(c):
        return model.solve(q, qh, cost=c).flows

    def value(c):
        return model.solve(q, qh, cost=c).objective

    c = rng.uniform(1, 5, model.n_edges)
    g = rng.normal(size=model.n_edges)
    w = torch.tensor(c, requires_grad=True)
    (torch.tensor(g) * blackbox(w, flows, lam=lam, sense="min")).sum().backward()
    fd = central_fd(lambda x: interpolated_loss(value, x, g, lam, "min"), c)
    assert np.allclose(w.grad.numpy(), fd, atol=1e-6)


def test_blackbox_lpmarl_sign_convention():
    """LPMARL Eq. (12)/(16): maximising J = <a, Z> with C' = C + lam dJ/dZ, dJ/dC = (Z_lam - Z)/lam.
    With L = -J our 'max' rule must give dL/dC = -(Z_lam - Z)/lam."""
    rng = np.random.default_rng(0)
    C = rng.normal(size=(6, 3))
    a = rng.normal(size=(6, 3))
    lam = 5.0
    Z = assign_x(C)
    Z_lam = assign_x(C + lam * a)
    w = torch.tensor(C, requires_grad=True)
    loss = -(torch.tensor(a) * blackbox(w, assign_x, lam=lam, sense="max")).sum()
    loss.backward()
    assert np.allclose(w.grad.numpy(), -(Z_lam - Z) / lam)


def test_blackbox_batched_equals_unbatched_and_module():
    rng = np.random.default_rng(1)
    S = rng.normal(size=(4, 6, 3))
    G = rng.normal(size=(4, 6, 3))
    G[2] = 0.0  # zero upstream gradient: no solve needed, zero gradient
    w = torch.tensor(S, requires_grad=True)
    layer = BlackboxSolver(assign_x, lam=2.0, sense="max", event_ndim=2)
    y = layer(w)
    assert y.shape == (4, 6, 3)
    (torch.tensor(G) * y).sum().backward()
    for b in range(4):
        wb = torch.tensor(S[b], requires_grad=True)
        (torch.tensor(G[b]) * blackbox(wb, assign_x, lam=2.0, sense="max")).sum().backward()
        assert torch.allclose(w.grad[b], wb.grad)
    assert (w.grad[2] == 0).all()


def test_blackbox_on_matching_and_float32():
    rng = np.random.default_rng(2)
    W = torch.tensor(rng.normal(size=(6, 6)), dtype=torch.float32, requires_grad=True)
    y = blackbox(W, lambda w: max_weight_matching(w).x, lam=1.0, sense="max")
    assert y.dtype == torch.float32 and torch.equal(y, y.T)
    (y * torch.ones(6, 6)).sum().backward()
    assert W.grad is not None and W.grad.shape == (6, 6)


def _expected_argmax_prob(w, sigma, k=0):
    """P[argmax(w + sigma Z) = k] by 1-D quadrature: int phi(z) prod_j Phi((w_k - w_j)/sigma + z) dz."""
    z = np.linspace(-9, 9, 4001)
    dens = np.exp(-z**2 / 2) / math.sqrt(2 * math.pi)
    prod = np.ones_like(z)
    for j in range(len(w)):
        if j != k:
            x = (w[k] - w[j]) / sigma + z
            prod *= 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    return float(np.sum(dens * prod) * (z[1] - z[0]))


@pytest.mark.parametrize("antithetic", [True, False])
def test_perturbed_matches_smooth_expectation_and_its_finite_difference(antithetic):
    w0 = np.array([0.3, 0.0, -0.2])
    sigma = 0.7
    w = torch.tensor(w0, requires_grad=True)
    y = perturbed(w, one_hot_argmax, sigma=sigma, n_samples=40000, antithetic=antithetic, generator=0)
    expected = np.array([_expected_argmax_prob(w0, sigma, k) for k in range(3)])
    assert np.allclose(y.detach().numpy(), expected, atol=0.01)
    y[0].backward()  # d P[argmax = 0] / dw
    fd = central_fd(lambda v: _expected_argmax_prob(v, sigma, 0), w0, h=1e-4)
    assert np.allclose(w.grad.numpy(), fd, atol=0.02)


def test_perturbed_batched_reproducible_and_module():
    rng = np.random.default_rng(3)
    S = torch.tensor(rng.normal(size=(2, 6, 3)))
    a = perturbed(S, assign_x, sigma=0.5, n_samples=8, event_ndim=2, generator=7)
    b = perturbed(S, assign_x, sigma=0.5, n_samples=8, event_ndim=2, generator=7)
    assert torch.equal(a, b) and a.shape == (2, 6, 3)
    assert torch.allclose(a.sum(-1), torch.ones(2, 6, dtype=a.dtype))  # convex hull of assignments
    torch.manual_seed(0)
    c = perturbed(S, assign_x, sigma=0.5, n_samples=8, event_ndim=2)
    torch.manual_seed(0)
    assert torch.equal(c, perturbed(S, assign_x, sigma=0.5, n_samples=8, event_ndim=2))
    layer = PerturbedSolver(assign_x, sigma=0.5, n_samples=4, event_ndim=2, seed=1)
    w = S.clone().requires_grad_(True)
    layer(w).sum().backward()
    assert w.grad.shape == S.shape


def test_fenchel_young_gradient_is_smoothed_solution_minus_target():
    rng = np.random.default_rng(4)
    S = rng.normal(size=(6, 3))
    target = torch.tensor(assign_x(rng.normal(size=(6, 3))))
    w = torch.tensor(S, requires_grad=True)
    loss = perturbed_fenchel_young_loss(w, target, assign_x, sigma=0.5, n_samples=16, generator=3)
    loss.backward()
    y_eps = perturbed(torch.tensor(S), assign_x, sigma=0.5, n_samples=16, generator=3)
    assert loss.shape == () and loss.item() >= -1e-9
    assert torch.allclose(w.grad, y_eps - target)


@pytest.mark.parametrize("method", ["blackbox", "fenchel_young"])
def test_learned_cost_moves_to_produce_target_assignment(method):
    rng = np.random.default_rng(5)
    target_np = assign_x(rng.normal(size=(6, 3)))
    target = torch.tensor(target_np)
    theta = torch.tensor(rng.normal(size=(6, 3)), requires_grad=True)
    assert not np.array_equal(assign_x(theta.detach().numpy()), target_np)
    opt = torch.optim.Adam([theta], lr=0.1)
    gen = np.random.default_rng(0)
    for _ in range(150):
        opt.zero_grad()
        if method == "blackbox":
            y = blackbox(theta, assign_x, lam=2.0, sense="max")
            loss = ((y - target) ** 2).sum()  # Hamming distance
        else:
            loss = perturbed_fenchel_young_loss(theta, target, assign_x, sigma=0.3, n_samples=8,
                                                generator=gen)
        loss.backward()
        opt.step()
        if np.array_equal(assign_x(theta.detach().numpy()), target_np):
            break
    assert np.array_equal(assign_x(theta.detach().numpy()), target_np)


def test_wrapper_errors():
    w = torch.zeros(3)
    with pytest.raises(MalformedProblemError, match="solution must have the cost's shape"):
        blackbox(w, lambda c: np.zeros(2))
    with pytest.raises(MalformedProblemError, match="lam must be a positive"):
        blackbox(w, one_hot_argmax, lam=0.0)
    with pytest.raises(MalformedProblemError, match="sense"):
        blackbox(w, one_hot_argmax, sense="maximise")
    with pytest.raises(MalformedProblemError, match="NaN or inf"):
        blackbox(torch.tensor([0.0, float("nan")]), one_hot_argmax)
    with pytest.raises(MalformedProblemError, match="event_ndim=2"):
        blackbox(w, one_hot_argmax, event_ndim=2)
    with pytest.raises(MalformedProblemError, match="sigma must be a positive"):
        perturbed(w, one_hot_argmax, sigma=-1.0)
    with pytest.raises(MalformedProblemError, match="n_samples"):
        perturbed(w, one_hot_argmax, n_samples=0)
    with pytest.raises(MalformedProblemError, match="target has shape"):
        perturbed_fenchel_young_loss(w, torch.zeros(2), one_hot_argmax)
