"""Per-episode random generators of the batched environment cores (mobility, supply chain)."""

from __future__ import annotations

from typing import Any

import numpy as np

from hieralloc.errors import ConfigError


def batch_rngs(seed: Any, batch_size: int) -> list[np.random.Generator]:
    """One generator per episode of a batch of ``batch_size`` from a ``reset`` seed.

    ``seed``: a list of one int per episode (``default_rng(s)`` each), or an int (batch of one:
    ``default_rng(seed)``, so a batch of one equals the PettingZoo env; larger batches:
    ``default_rng([seed, b])``).
    """
    if isinstance(seed, (list, tuple, np.ndarray)):
        if len(seed) != batch_size:
            raise ConfigError("seed", f"needs {batch_size} seeds (one per episode), got {len(seed)}")
        return [np.random.default_rng(int(s)) for s in seed]
    if batch_size == 1:
        return [np.random.default_rng(int(seed))]
    return [np.random.default_rng([int(seed), b]) for b in range(batch_size)]


__all__ = ["batch_rngs"]
