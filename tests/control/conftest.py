"""Shared pieces of the LQR tests: one thread for torch (two shared cores), the App. C.1 system."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hieralloc.control import double_integrator


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def system() -> tuple[np.ndarray, np.ndarray]:
    return double_integrator(0.5)


@pytest.fixture(scope="session")
def transitions() -> tuple[np.ndarray, np.ndarray]:
    """Fixed states and goals in [-1, 1]^2 (as the experiment samples them)."""
    rng = np.random.default_rng(7)
    return rng.uniform(-1, 1, (64, 2)), rng.uniform(-1, 1, (64, 2))
