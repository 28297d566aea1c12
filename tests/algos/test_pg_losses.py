"""PPO's loss terms against values computed by hand (Schulman et al. 2016, 2017; Yu et al. 2022)."""

from __future__ import annotations

import math

import pytest
import torch

from hieralloc.algos.pg.ppo import clipped_surrogate, gae, value_loss


def test_gae_matches_hand_computation() -> None:
    # column 0: a terminated 3-step episode; column 1: 2 steps, truncated and bootstrapped, then padding
    reward = torch.tensor([[1.0, 1.0], [0.0, 1.0], [2.0, 0.0]])
    values = torch.tensor([[0.5, 1.0], [0.4, 2.0], [0.3, 3.0], [0.2, 0.0]])
    done = torch.tensor([[False, False], [False, False], [True, False]])
    valid = torch.tensor([[True, True], [True, True], [True, False]])
    adv, ret = gae(reward, values, done, valid, gamma=0.9, lam=0.8)
    # column 0: delta = (0.86, -0.13, 1.7); A_2 = 1.7, A_1 = -0.13 + 0.72 * 1.7, A_0 = 0.86 + 0.72 * A_1
    a1 = -0.13 + 0.72 * 1.7
    a0 = 0.86 + 0.72 * a1
    # column 1: A_1 = 1 + 0.9 * 3 - 2 (bootstraps on the final state's value), A_0 = 1.8 + 0.72 * 1.7
    expected = torch.tensor([[a0, 1.8 + 0.72 * 1.7], [a1, 1.7], [1.7, 0.0]])
    torch.testing.assert_close(adv, expected)
    torch.testing.assert_close(ret, torch.tensor([[a0 + 0.5, 3.024 + 1.0], [a1 + 0.4, 3.7], [2.0, 0.0]]))
    # lambda = 1, no discounting: advantages are Monte-Carlo returns minus values
    adv1, _ = gae(reward[:, :1], values[:, :1], done[:, :1], valid[:, :1], gamma=1.0, lam=1.0)
    torch.testing.assert_close(adv1[:, 0], torch.tensor([3.0 - 0.5, 2.0 - 0.4, 2.0 - 0.3]))


def test_clipped_surrogate_matches_hand_computation() -> None:
    ratio = torch.tensor([1.5, 0.5, 1.1, 0.7])
    adv = torch.tensor([1.0, 1.0, -1.0, -1.0])
    mask = torch.ones(4, dtype=torch.bool)
    out = clipped_surrogate(torch.log(ratio), torch.zeros(4), adv, 0.2, mask)
    # min(r A, clip(r) A) = 1.2, 0.5, -1.1, -0.8 -> mean -0.05; the loss is its negative
    assert float(out["policy_loss"]) == pytest.approx(0.05)
    assert float(out["clip_frac"]) == pytest.approx(0.75)
    kl = sum((r - 1) - math.log(r) for r in (1.5, 0.5, 1.1, 0.7)) / 4
    assert float(out["approx_kl"]) == pytest.approx(kl, rel=1e-6)
    # masked entries do not count
    m = torch.tensor([True, True, False, False])
    masked = clipped_surrogate(torch.log(ratio), torch.zeros(4), adv, 0.2, m)
    assert float(masked["policy_loss"]) == pytest.approx(-0.85)
    # gradient flows only through unclipped terms: d/dlogp of r A where r is inside the clip range
    logp = torch.log(ratio).requires_grad_(True)
    clipped_surrogate(logp, torch.zeros(4), adv, 0.2, mask)["policy_loss"].backward()
    assert logp.grad is not None
    torch.testing.assert_close(logp.grad, torch.tensor([0.0, -0.5, 1.1, 0.0]) / 4)


def test_value_loss_clipping_and_huber() -> None:
    v = torch.tensor([1.0, 3.0])
    v_old = torch.tensor([0.0, 2.9])
    ret = torch.tensor([2.0, 2.0])
    mask = torch.ones(2, dtype=torch.bool)
    # mse: max(0.5, 1.125) and max(0.5, 0.5)
    assert float(value_loss(v, v_old, ret, 0.5, mask, "mse")) == pytest.approx((1.125 + 0.5) / 2)
    assert float(value_loss(v, v_old, ret, 0.0, mask, "mse")) == pytest.approx(0.5)
    # huber with delta 1: clipped error 1.5 -> 1.0; others 0.5
    assert float(value_loss(v, v_old, ret, 0.5, mask, "huber", 1.0)) == pytest.approx(0.75)
