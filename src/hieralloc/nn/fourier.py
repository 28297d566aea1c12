"""Random Fourier features with trainable frequencies and sine-activated MLPs (SIREN).

Building blocks of HGRL's GDI-Net (App. B.1-B.2), usable for any coordinate network:

* :class:`FourierFeatures`: ``phi(v) = [sin(2 pi B_1 v_1), cos(2 pi B_1 v_1), ..., sin(2 pi B_k v_k),
  cos(2 pi B_k v_k)]`` with one frequency vector ``B_j in R^d`` per input coordinate (HGRL Eq. (17)
  for k = 1, Eq. (19) for k = 2). ``B`` is an ``nn.Parameter`` (trainable, as App. B.1 states),
  initialised ``B ~ N(0, sigma^2)`` as in Tancik et al. (2020), "Fourier Features Let Networks Learn
  High Frequency Functions in Low Dimensional Domains".
* :class:`SineLayer` / :func:`sine_mlp`: ``sin(omega_0 (W x + b))`` layers (HGRL Eq. (18), (20),
  sigma = sin) with the initialisation of Sitzmann et al. (2020), "Implicit Neural Representations
  with Periodic Activation Functions" (SIREN), Sec. 3.2 and supplement 1.5:
  ``W ~ U(-sqrt(6 / n_in) / omega_0, sqrt(6 / n_in) / omega_0)`` for hidden layers, which keeps
  pre-activations ~ N(0, 1) and activations arcsine-distributed at any depth; the optional *first*
  layer of a SIREN uses ``W ~ U(-1 / n_in, 1 / n_in)``. ``sin(omega_0 (W x + b))`` spans the same
  functions as the plain ``sin(W' x + b')`` of Eq. (18); omega_0 only rescales the parametrisation
  (and hence the effective learning rate), as in SIREN.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class FourierFeatures(nn.Module):
    """Per-coordinate random Fourier features with trainable frequencies (HGRL Eq. (17), (19)).

    Args:
        in_dims: number k of input coordinates (1 for time, 2 for (x, y)).
        d: number of frequencies per coordinate (HGRL App. C: 2048); the output has ``2 k d``
            features.
        sigma: standard deviation of the initial frequencies, in cycles per unit of the (normalised)
            input coordinate.
        trainable: whether ``B`` receives gradients (HGRL App. B.1: "trainable frequency matrix").
        generator: optional RNG for the initial draw (reproducible construction).
    """

    def __init__(self, in_dims: int, d: int, sigma: float, trainable: bool = True,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if in_dims < 1 or d < 1:
            raise ValueError(f"in_dims and d must be positive, got {in_dims}, {d}")
        self.in_dims = int(in_dims)
        self.d = int(d)
        freqs = torch.randn(self.in_dims, self.d, generator=generator) * float(sigma)
        self.B = nn.Parameter(freqs, requires_grad=trainable)

    @property
    def out_dim(self) -> int:
        return 2 * self.in_dims * self.d

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        """``v``: (..., k) coordinates -> (..., 2 k d) features, blocks [sin, cos] per coordinate."""
        if v.shape[-1] != self.in_dims:
            raise ValueError(f"expected {self.in_dims} coordinates in the last axis, got {v.shape[-1]}")
        proj = 2.0 * math.pi * v.unsqueeze(-1) * self.B  # (..., k, d): 2 pi B_j v_j
        feats = torch.stack([torch.sin(proj), torch.cos(proj)], dim=-2)  # (..., k, 2, d)
        return feats.flatten(-3)  # [sin(2pi B_1 v_1), cos(2pi B_1 v_1), sin(2pi B_2 v_2), ...]


class SineLayer(nn.Module):
    """``sin(omega_0 (W x + b))`` with SIREN initialisation (Sitzmann et al. 2020, Sec. 3.2)."""

    def __init__(self, in_dim: int, out_dim: int, omega_0: float = 30.0, is_first: bool = False,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.omega_0 = float(omega_0)
        self.is_first = is_first
        self.linear = nn.Linear(in_dim, out_dim)
        with torch.no_grad():
            bound = 1.0 / in_dim if is_first else math.sqrt(6.0 / in_dim) / self.omega_0
            self.linear.weight.uniform_(-bound, bound, generator=generator)
            # SIREN keeps PyTorch's default bias range U(-1/sqrt(n), 1/sqrt(n)); scaled by 1/omega_0 so
            # the phase offsets omega_0 b stay in the same range whatever omega_0 is.
            bb = 1.0 / math.sqrt(in_dim) / (1.0 if is_first else self.omega_0)
            self.linear.bias.uniform_(-bb, bb, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.omega_0 * self.linear(x))


def sine_mlp(in_dim: int, hidden: int, n_hidden: int, out_dim: int | None = None, omega_0: float = 30.0,
             first_is_siren_first: bool = False, generator: torch.Generator | None = None) -> nn.Sequential:
    """``n_hidden`` sine layers of width ``hidden`` (HGRL Eq. (18)/(20)), then an optional linear head.

    ``out_dim=None`` ends with the last sine layer (an embedding z, as z_t and z_s of Eq. (18), (20));
    otherwise a linear output layer follows (initialised like a SIREN's last layer, the hidden bound).
    ``first_is_siren_first`` gives the first layer SIREN's first-layer init (use it when the input is
    raw coordinates; after Fourier features the hidden init is the right one, see GDI-Net docs).
    """
    if n_hidden < 1:
        raise ValueError(f"n_hidden must be >= 1, got {n_hidden}")
    layers: list[nn.Module] = []
    last = in_dim
    for i in range(n_hidden):
        layers.append(SineLayer(last, hidden, omega_0, is_first=first_is_siren_first and i == 0,
                                generator=generator))
        last = hidden
    if out_dim is not None:
        head = nn.Linear(last, out_dim)
        with torch.no_grad():
            bound = math.sqrt(6.0 / last) / omega_0
            head.weight.uniform_(-bound, bound, generator=generator)
            head.bias.zero_()
        layers.append(head)
    return nn.Sequential(*layers)


__all__ = ["FourierFeatures", "SineLayer", "sine_mlp"]
