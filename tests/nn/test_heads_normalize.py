"""Action-distribution heads and running statistics (value normalisation, PopArt)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from hieralloc.errors import IncompatibleError
from hieralloc.nn.heads import BetaHead, CategoricalHead, GaussianHead, make_head
from hieralloc.nn.normalize import RunningMeanStd, ValueNormalizer
from hieralloc.nn.sharing import GroupLinear

torch.set_num_threads(1)


def test_categorical_head_masks_and_samples() -> None:
    head = make_head(spaces.Discrete(4))
    assert isinstance(head, CategoricalHead) and head.n_params == 4
    params = torch.tensor([[0.0, 5.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    mask = torch.tensor([[True, False, True, True], [False, False, True, False]])
    d = head.dist(params, mask)
    assert d.probs[0, 1] == 0 and d.probs[1, 2] == pytest.approx(1.0)
    assert head.mode(params, mask).tolist() == [3, 2]
    rng = np.random.default_rng(0)
    draws = torch.stack([head.sample(params, mask, rng) for _ in range(2000)])
    assert not (draws[:, 0] == 1).any() and (draws[:, 1] == 2).all()
    freq = (draws[:, 0] == 3).float().mean().item()
    p3 = float(d.probs[0, 3])
    assert abs(freq - p3) < 0.04
    torch.testing.assert_close(d.log_prob(torch.tensor([3, 2])), torch.log(d.probs[[0, 1], [3, 2]]))


def test_gaussian_and_beta_heads_on_a_box() -> None:
    box = spaces.Box(-2.0, 2.0, (2,), np.float32)
    g = make_head(box, "gaussian", log_std_init=-1.0)
    b = make_head(box, "beta")
    assert isinstance(g, GaussianHead) and isinstance(b, BetaHead) and g.n_params == b.n_params == 4
    params = torch.zeros(3, 4)
    rng = np.random.default_rng(1)
    a = g.sample(params, None, rng)
    assert a.shape == (3, 2)
    lp = g.dist(params).log_prob(a)
    ref = torch.distributions.Normal(0.0, float(np.exp(-1.0))).log_prob(a).sum(-1)
    torch.testing.assert_close(lp, ref)
    assert np.all(np.abs(g.to_env(np.array([5.0, -5.0]))) <= 2.0)
    u = b.sample(params, None, rng)
    assert ((u > 0) & (u < 1)).all()
    torch.testing.assert_close(b.mode(params), torch.full((3, 2), 0.5))  # alpha = beta = 1 + softplus(0)
    assert np.allclose(b.to_env(np.array([0.0, 1.0])), [-2.0, 2.0])
    assert torch.isfinite(b.dist(params).log_prob(torch.tensor([[0.0, 1.0]] * 3))).all()
    with pytest.raises(IncompatibleError, match="bounded"):
        make_head(spaces.Box(-np.inf, np.inf, (1,)), "beta")
    with pytest.raises(IncompatibleError):
        make_head(spaces.MultiBinary(3))


def test_running_mean_std_matches_numpy() -> None:
    rms = RunningMeanStd(eps=0.0)
    rng = np.random.default_rng(2)
    chunks = [rng.normal(3.0, 2.0, size=n) for n in (5, 17, 40)]
    for c in chunks:
        rms.update(torch.as_tensor(c))
    allv = np.concatenate(chunks)
    assert float(rms.mean) == pytest.approx(allv.mean())
    assert float(rms.var) == pytest.approx(allv.var())


def test_value_normalizer_debiased_stats_and_popart_preserves_outputs() -> None:
    vn = ValueNormalizer(beta=0.9, popart=True)
    torch.manual_seed(0)
    layer = GroupLinear(2, 3, 1)
    x = torch.randn(2, 5, 3)
    y_before = vn.denormalize(layer(x).detach())
    targets = torch.tensor([10.0, 12.0, 14.0])
    vn.update(targets, layer)
    mean, std = vn.stats()
    # one update with debiasing: the statistics of the first batch exactly
    assert float(mean) == pytest.approx(12.0)
    assert float(std) == pytest.approx(float(np.sqrt(max(np.var([10.0, 12.0, 14.0]), 1e-2))))
    torch.testing.assert_close(vn.denormalize(layer(x).detach()), y_before, rtol=1e-5, atol=1e-5)
    vn.update(torch.tensor([100.0, -50.0]), layer)
    torch.testing.assert_close(vn.denormalize(layer(x).detach()), y_before, rtol=1e-4, atol=1e-4)
    z = torch.tensor([1.0, -3.0])
    torch.testing.assert_close(vn.denormalize(vn.normalize(z)), z)
