"""Action-distribution heads: turn a network's raw outputs into a policy distribution.

One interface for discrete and continuous actions, so a policy-gradient learner has one code path:

* ``n_params``: how many raw outputs per agent the actor network must produce;
* ``dist(params, mask)``: a ``torch.distributions`` object whose ``log_prob(action)`` and
  ``entropy()`` are per agent (summed over action dimensions);
* ``sample(params, mask, rng)``: actions drawn with a numpy ``Generator`` (so exploration is part
  of the learner's checkpointed RNG state), ``mode(params, mask)``: the deterministic action;
* ``to_env(action)``: the value handed to the environment (continuous actions are mapped or
  clipped into the action box; the learner keeps the raw sample for log-probabilities).

Heads: :class:`CategoricalHead` (logits, invalid actions masked to -inf before the softmax),
:class:`GaussianHead` (mean and log-std per dimension; the sample is clipped to the box when sent
to the environment) and :class:`BetaHead` (Chou et al. 2017: alpha, beta = 1 + softplus(.), a
sample in (0, 1) mapped affinely onto [low, high]).
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn
from torch.distributions import Beta, Categorical, Distribution, Independent, Normal

from hieralloc.errors import IncompatibleError

_NEG = -1e9


class ActionHead(nn.Module, abc.ABC):
    """Base class; see the module docstring."""

    n_params: int = 0
    #: shape of one agent's action as stored by the learner (() for discrete)
    action_shape: tuple[int, ...] = ()
    action_dtype: torch.dtype = torch.float32
    discrete = False

    @abc.abstractmethod
    def dist(self, params: torch.Tensor, mask: torch.Tensor | None = None) -> Distribution:
        """The action distribution for the head's raw parameters (masked where actions are invalid)."""

    @abc.abstractmethod
    def mode(self, params: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The deterministic action: argmax, Gaussian mean or Beta mean."""

    @abc.abstractmethod
    def sample(self, params: torch.Tensor, mask: torch.Tensor | None, rng: np.random.Generator) -> torch.Tensor:
        """A sampled action, drawn with ``rng`` so that runs are reproducible."""

    def to_env(self, action: np.ndarray) -> Any:
        return action


class CategoricalHead(ActionHead):
    """Softmax policy over ``n`` actions; masked actions get probability zero."""

    action_dtype = torch.long
    discrete = True

    def __init__(self, n_actions: int) -> None:
        super().__init__()
        self.n_actions = n_actions
        self.n_params = n_actions

    def logits(self, params: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return params if mask is None else params.masked_fill(~mask, _NEG)

    def dist(self, params: torch.Tensor, mask: torch.Tensor | None = None) -> Distribution:
        return Categorical(logits=self.logits(params, mask))

    def mode(self, params: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.logits(params, mask).argmax(-1)

    def sample(self, params: torch.Tensor, mask: torch.Tensor | None, rng: np.random.Generator) -> torch.Tensor:
        # inverse-CDF sampling with the learner's numpy generator
        probs = torch.softmax(self.logits(params, mask).double(), -1).numpy()
        cdf = np.cumsum(probs, -1)
        u = rng.random(cdf.shape[:-1] + (1,)) * cdf[..., -1:]
        a = (cdf < u).sum(-1)
        a = np.minimum(a, self.n_actions - 1)
        return torch.as_tensor(a, dtype=torch.long)

    def to_env(self, action: np.ndarray) -> Any:
        return int(action)


class GaussianHead(ActionHead):
    """Diagonal Gaussian: the network outputs the mean and the log-std (offset by ``log_std_init``)."""

    low: torch.Tensor
    high: torch.Tensor

    def __init__(self, low: np.ndarray, high: np.ndarray, log_std_init: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("low", torch.as_tensor(low, dtype=torch.float32).reshape(-1))
        self.register_buffer("high", torch.as_tensor(high, dtype=torch.float32).reshape(-1))
        self.dim = int(self.low.numel())
        self.n_params = 2 * self.dim
        self.action_shape = (self.dim,)
        self.log_std_init = log_std_init

    def _mean_std(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = params[..., : self.dim], params[..., self.dim:]
        log_std = torch.clamp(log_std + self.log_std_init, -5.0, 2.0)
        return mean, log_std.exp()

    def dist(self, params: torch.Tensor, mask: torch.Tensor | None = None) -> Distribution:
        mean, std = self._mean_std(params)
        return Independent(Normal(mean, std), 1)

    def mode(self, params: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self._mean_std(params)[0]

    def sample(self, params: torch.Tensor, mask: torch.Tensor | None, rng: np.random.Generator) -> torch.Tensor:
        mean, std = self._mean_std(params)
        eps = torch.as_tensor(rng.standard_normal(mean.shape), dtype=mean.dtype)
        return mean + std * eps

    def to_env(self, action: np.ndarray) -> Any:
        return np.clip(np.asarray(action, dtype=np.float32), self.low.numpy(), self.high.numpy())


class BetaHead(ActionHead):
    """Beta policy on the action box (Chou et al. 2017): stored actions are in (0, 1)."""

    _EPS = 1e-6
    low: torch.Tensor
    high: torch.Tensor

    def __init__(self, low: np.ndarray, high: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("low", torch.as_tensor(low, dtype=torch.float32).reshape(-1))
        self.register_buffer("high", torch.as_tensor(high, dtype=torch.float32).reshape(-1))
        self.dim = int(self.low.numel())
        self.n_params = 2 * self.dim
        self.action_shape = (self.dim,)

    def _ab(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = nn.functional.softplus
        return 1.0 + f(params[..., : self.dim]), 1.0 + f(params[..., self.dim:])

    def dist(self, params: torch.Tensor, mask: torch.Tensor | None = None) -> Distribution:
        a, b = self._ab(params)
        return _ClampedBeta(Beta(a, b), self._EPS)

    def mode(self, params: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        a, b = self._ab(params)
        return a / (a + b)  # the mean: a smooth deterministic action

    def sample(self, params: torch.Tensor, mask: torch.Tensor | None, rng: np.random.Generator) -> torch.Tensor:
        a, b = self._ab(params)
        u = rng.beta(a.detach().double().numpy(), b.detach().double().numpy())
        return torch.as_tensor(np.clip(u, self._EPS, 1 - self._EPS), dtype=params.dtype)

    def to_env(self, action: np.ndarray) -> Any:
        lo, hi = self.low.numpy(), self.high.numpy()
        return (lo + (hi - lo) * np.asarray(action, dtype=np.float32)).astype(np.float32)


class _ClampedBeta(Independent):
    """Independent Beta over the action dimensions; log_prob clamps inputs into (eps, 1 - eps)."""

    def __init__(self, base: Beta, eps: float) -> None:
        super().__init__(base, 1)
        self._eps = eps

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return super().log_prob(value.clamp(self._eps, 1 - self._eps))


def make_head(space: spaces.Space[Any], continuous_dist: str = "gaussian", log_std_init: float = 0.0) -> ActionHead:
    """The head for an action space: Discrete -> categorical; Box -> Gaussian or Beta."""
    if isinstance(space, spaces.Discrete):
        return CategoricalHead(int(space.n))
    if isinstance(space, spaces.Box):
        low = np.asarray(space.low, dtype=np.float64).reshape(-1)
        high = np.asarray(space.high, dtype=np.float64).reshape(-1)
        if continuous_dist == "beta":
            if not (np.isfinite(low).all() and np.isfinite(high).all()):
                raise IncompatibleError("a Beta policy needs a bounded action box; use continuous_dist=gaussian")
            return BetaHead(low, high)
        if continuous_dist == "gaussian":
            return GaussianHead(low, high, log_std_init)
        raise ValueError(f"unknown continuous_dist {continuous_dist!r}")
    raise IncompatibleError(f"action space {space} is not supported (Discrete or Box only)")


__all__ = ["ActionHead", "BetaHead", "CategoricalHead", "GaussianHead", "make_head"]
