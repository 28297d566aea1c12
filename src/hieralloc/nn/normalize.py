"""Running statistics for reward scaling and value-target normalisation (state kept as buffers).

* :class:`RunningMeanStd`: exact mean and variance of everything seen so far (Chan et al.'s
  parallel update), used to scale rewards (EPyMARL's ``standardise_rewards``).
* :class:`ValueNormalizer`: the value normalisation of MAPPO (Yu et al. 2022, Sec. 5 and App.
  "ValueNorm"): debiased exponential moving averages of the mean and second moment of the value
  targets; the critic predicts normalised values. With ``popart=True`` each statistics update
  also rescales the critic's output layer so its *unnormalised* predictions are unchanged
  (PopArt, van Hasselt et al. 2016, Eq. (5)-(6)).

Both are ``nn.Module``s whose statistics are buffers, so they travel in ``state_dict``.
"""

from __future__ import annotations

import torch
from torch import nn


class RunningMeanStd(nn.Module):
    """Mean and variance over every value passed to :meth:`update` (float64 buffers)."""

    mean: torch.Tensor
    var: torch.Tensor
    count: torch.Tensor

    def __init__(self, eps: float = 1e-4) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros((), dtype=torch.float64))
        self.register_buffer("var", torch.ones((), dtype=torch.float64))
        self.register_buffer("count", torch.tensor(eps, dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        x = x.detach().double().reshape(-1)
        if x.numel() == 0:
            return
        b_mean, b_var, b_n = x.mean(), x.var(unbiased=False), float(x.numel())
        delta = b_mean - self.mean
        tot = self.count + b_n
        new_mean = self.mean + delta * b_n / tot
        m2 = self.var * self.count + b_var * b_n + delta**2 * self.count * b_n / tot
        self.mean.copy_(new_mean)
        self.var.copy_(m2 / tot)
        self.count.copy_(tot)

    @property
    def std(self) -> torch.Tensor:
        return torch.sqrt(self.var + 1e-8)


class ValueNormalizer(nn.Module):
    """MAPPO's ValueNorm with optional PopArt output preservation (see the module docstring).

        mu_t = beta mu_{t-1} + (1 - beta) mean(y),   nu_t = beta nu_{t-1} + (1 - beta) mean(y^2)
        d_t  = beta d_{t-1} + (1 - beta)                                  (debiasing term)
        mean = mu_t / d_t,   var = max(nu_t / d_t - mean^2, 1e-2)
    """

    running_mean: torch.Tensor
    running_mean_sq: torch.Tensor
    debias: torch.Tensor

    def __init__(self, beta: float = 0.99999, popart: bool = False, eps: float = 1e-5) -> None:
        super().__init__()
        self.beta, self.popart, self.eps = beta, popart, eps
        self.register_buffer("running_mean", torch.zeros((), dtype=torch.float64))
        self.register_buffer("running_mean_sq", torch.zeros((), dtype=torch.float64))
        self.register_buffer("debias", torch.zeros((), dtype=torch.float64))

    def stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std) as float64 scalars (0, 1 before the first update)."""
        if float(self.debias) == 0.0:
            return torch.zeros((), dtype=torch.float64), torch.ones((), dtype=torch.float64)
        d = self.debias.clamp(min=self.eps)
        mean = self.running_mean / d
        var = (self.running_mean_sq / d - mean**2).clamp(min=1e-2)
        return mean, var.sqrt()

    @torch.no_grad()
    def update(self, y: torch.Tensor, output_layer: nn.Module | None = None) -> None:
        """Fold a batch of targets into the statistics; with PopArt rescale ``output_layer``
        (any module with ``weight`` and ``bias`` whose last dimension is the value output)."""
        y = y.detach().double().reshape(-1)
        if y.numel() == 0:
            return
        old_mean, old_std = self.stats()
        b = self.beta
        self.running_mean.mul_(b).add_((1 - b) * y.mean())
        self.running_mean_sq.mul_(b).add_((1 - b) * (y**2).mean())
        self.debias.mul_(b).add_(1 - b)
        if self.popart and output_layer is not None:
            new_mean, new_std = self.stats()
            w, bias = output_layer.weight, output_layer.bias
            assert isinstance(w, torch.Tensor) and isinstance(bias, torch.Tensor)
            # PopArt Eq. (6): W' = W sigma / sigma',  b' = (sigma b + mu - mu') / sigma'
            w.mul_((old_std / new_std).to(w.dtype))
            bias.mul_((old_std / new_std).to(bias.dtype)).add_(((old_mean - new_mean) / new_std).to(bias.dtype))

    def normalize(self, y: torch.Tensor) -> torch.Tensor:
        mean, std = self.stats()
        return ((y.double() - mean) / std).to(y.dtype)

    def denormalize(self, y: torch.Tensor) -> torch.Tensor:
        mean, std = self.stats()
        return (y.double() * std + mean).to(y.dtype)


__all__ = ["RunningMeanStd", "ValueNormalizer"]
