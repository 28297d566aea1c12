"""Loss terms of the OHIO learners on hand-checkable tensors (SAC, BC, IQL, CQL, Cal-QL) and the
fine-tuning schedule of OHIO App. B.5.2."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from hieralloc.algos.ohio.data import offline_fraction
from hieralloc.algos.ohio.losses import (
    awr_policy_loss,
    awr_weights,
    bc_loss,
    cql_penalty,
    cql_sampled_values,
    discounted_returns,
    expectile_loss,
    lagrange_terms,
    mse,
    polyak_update,
    sac_actor_loss,
    soft_td_target,
    td_target,
)

torch.set_num_threads(1)


def test_expectile_regression_weights_the_two_signs() -> None:
    # u = Q - V = +1 weighs tau, u = -2 weighs 1 - tau: (0.9 * 1 + 0.1 * 4) / 2
    diff = torch.tensor([1.0, -2.0])
    assert expectile_loss(diff, 0.9).item() == pytest.approx(0.65)
    # tau = 0.5 is half the mean squared error
    assert expectile_loss(diff, 0.5).item() == pytest.approx(0.5 * (1 + 4) / 2)
    # minimising over a constant V: tau = 0.9 lands above the mean of Q (an upper expectile)
    q = torch.tensor([0.0, 1.0, 2.0, 10.0])
    v = torch.zeros((), requires_grad=True)
    opt = torch.optim.SGD([v], lr=0.1)
    for _ in range(2000):
        opt.zero_grad()
        expectile_loss(q - v, 0.9).backward()
        opt.step()
    assert q.mean() < v.item() < q.max()
    # the stationarity condition of the 0.9-expectile: 0.9 sum (q - v)+ = 0.1 sum (v - q)+
    up, down = (q - v.detach()).clamp(min=0).sum(), (v.detach() - q).clamp(min=0).sum()
    assert 0.9 * up.item() == pytest.approx(0.1 * down.item(), rel=1e-3)


def test_td_targets() -> None:
    r, d = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 1.0])
    assert td_target(r, d, torch.tensor([10.0, 10.0]), 0.9).tolist() == pytest.approx([10.0, 2.0])
    # SAC: min of the two target critics minus alpha log pi
    y = soft_td_target(r, d, torch.tensor([5.0, 1.0]), torch.tensor([3.0, 7.0]), torch.tensor([2.0, 2.0]), 0.5, 0.3)
    assert y.tolist() == pytest.approx([1.0 + 0.5 * (3.0 - 0.6), 2.0])
    assert not y.requires_grad
    assert mse(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 0.0])).item() == pytest.approx(5.0)


def test_sac_actor_loss_trades_value_for_entropy() -> None:
    q, logp = torch.tensor([2.0, 4.0]), torch.tensor([-1.0, 1.0])
    assert sac_actor_loss(q, logp, 0.3).item() == pytest.approx(((-0.3 - 2.0) + (0.3 - 4.0)) / 2)


def test_behaviour_cloning_is_the_negative_log_likelihood() -> None:
    # a Gaussian with unit variance at the data point: log N(0; 0, 1) = -0.5 log(2 pi)
    logp = torch.distributions.Normal(torch.zeros(3), torch.ones(3)).log_prob(torch.zeros(3))
    assert bc_loss(logp).item() == pytest.approx(0.5 * math.log(2 * math.pi))
    # minimising it moves the mean onto the data
    mu = torch.zeros((), requires_grad=True)
    opt = torch.optim.SGD([mu], lr=0.5)
    data = torch.tensor([1.0, 2.0, 3.0])
    for _ in range(100):
        opt.zero_grad()
        bc_loss(torch.distributions.Normal(mu, 1.0).log_prob(data)).backward()
        opt.step()
    assert mu.item() == pytest.approx(2.0, abs=1e-4)


def test_awr_weights_are_exponential_and_clipped() -> None:
    adv = torch.tensor([0.0, 1.0, 10.0])
    w = awr_weights(adv, 3.0, 100.0)
    assert w.tolist() == pytest.approx([1.0, math.exp(3.0), 100.0])
    logp = torch.tensor([-1.0, -2.0, -3.0], requires_grad=True)
    loss = awr_policy_loss(logp, adv, 3.0, 100.0)
    assert loss.item() == pytest.approx(-(1.0 * -1 + math.exp(3) * -2 + 100 * -3) / 3)
    loss.backward()
    assert logp.grad is not None and (logp.grad < 0).all()  # every data action's likelihood is raised
    adv_t = torch.tensor([1.0], requires_grad=True)
    awr_policy_loss(torch.tensor([-1.0], requires_grad=True), adv_t, 3.0).backward()
    assert adv_t.grad is None  # the weights carry no gradient into the critic


def test_cql_penalty_sign_and_gradients() -> None:
    # data action is the best: log sum exp over sampled values (all 0, log-density 0) is log 4 < 5
    q_data = torch.tensor([5.0], requires_grad=True)
    sampled = torch.zeros(1, 4, requires_grad=True)
    pen = cql_penalty(q_data, sampled)
    assert pen.item() == pytest.approx(math.log(4) - 5.0)
    pen.backward()
    assert q_data.grad is not None and q_data.grad.item() == pytest.approx(-1.0)       # data Q pushed up
    assert sampled.grad is not None and sampled.grad.sum().item() == pytest.approx(1.0)  # softmax weights
    assert (sampled.grad > 0).all()                                                     # sampled Q pushed down
    # an out-of-distribution action valued above the data: positive penalty
    assert cql_penalty(torch.tensor([0.0]), torch.tensor([[10.0, 0.0]])).item() > 9.0
    # temperature T: T log sum exp(q / T)
    assert cql_penalty(torch.tensor([0.0]), torch.tensor([[1.0, 1.0]]), 0.5).item() == \
        pytest.approx(0.5 * math.log(2 * math.exp(2.0)))


def test_cql_importance_weights_and_calql_lower_bound() -> None:
    q_rand = torch.tensor([[1.0, 2.0]])
    q_pi, logp_pi = torch.tensor([[0.0, 5.0]]), torch.tensor([[1.0, 1.0]])
    q_next, logp_next = torch.tensor([[-4.0, 3.0]]), torch.tensor([[0.5, 0.5]])
    v = cql_sampled_values(q_rand, 2.0, q_pi, logp_pi, q_next, logp_next)
    assert v.tolist() == [[-1.0, 0.0, -1.0, 4.0, -4.5, 2.5]]
    # Cal-QL: policy-action values below V^mu = 1 are raised to it; uniform-action values are not
    cal = cql_sampled_values(q_rand, 2.0, q_pi, logp_pi, q_next, logp_next, lower_bound=torch.tensor([1.0]))
    assert cal.tolist() == [[-1.0, 0.0, 0.0, 4.0, 0.5, 2.5]]
    # so the calibrated penalty is never smaller
    q_data = torch.tensor([0.0])
    assert cql_penalty(q_data, cal).item() >= cql_penalty(q_data, v).item()


def test_lagrange_dual_raises_alpha_while_the_gap_is_exceeded() -> None:
    log_alpha = torch.zeros((), requires_grad=True)
    critic_term, dual, alpha = lagrange_terms(torch.tensor(8.0), log_alpha, 5.0)
    assert alpha.item() == pytest.approx(1.0) and critic_term.item() == pytest.approx(3.0)
    dual.backward()
    assert log_alpha.grad is not None and log_alpha.grad.item() < 0  # gradient descent increases alpha
    log_alpha.grad = None
    _, dual, _ = lagrange_terms(torch.tensor(2.0), log_alpha, 5.0)
    dual.backward()
    assert log_alpha.grad is not None and log_alpha.grad.item() > 0  # below the threshold: alpha decreases


def test_discounted_returns_restart_at_episode_boundaries() -> None:
    r = torch.tensor([1.0, 1.0, 1.0, 2.0, 2.0])
    ep = torch.tensor([0, 0, 0, 1, 1])
    g = discounted_returns(r, ep, 0.5)
    assert g.tolist() == pytest.approx([1.75, 1.5, 1.0, 3.0, 2.0])


def test_polyak_update() -> None:
    src, tgt = nn.Linear(2, 1), nn.Linear(2, 1)
    with torch.no_grad():
        for p in src.parameters():
            p.fill_(1.0)
        for p in tgt.parameters():
            p.fill_(0.0)
    polyak_update(tgt, src, 0.005)
    assert all(torch.allclose(p, torch.full_like(p, 0.005)) for p in tgt.parameters())


def test_finetuning_mixing_schedule() -> None:
    # OHIO App. B.5.2: 50 % of the batch offline at the first online episode, linearly to 0 over 3000
    assert offline_fraction(0, 0.5, 3000) == 0.5
    assert offline_fraction(1500, 0.5, 3000) == pytest.approx(0.25)
    assert offline_fraction(3000, 0.5, 3000) == 0.0
    assert offline_fraction(5000, 0.5, 3000) == 0.0
