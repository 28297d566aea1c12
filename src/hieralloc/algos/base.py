"""The policy contract every algorithm, baseline, heuristic and oracle follows.

``evaluate`` (hieralloc.eval) drives a :class:`Policy` through a PettingZoo ``ParallelEnv``:

    policy.reset(env, seed)                      # once per episode, after env.reset()
    actions = policy.act(obs, state=env.state(), explore=False)

``act`` returns a dict agent -> action for the agents present in ``obs``. Recurrent policies keep
their hidden state internally between ``reset`` calls. A hierarchical policy is a composition of a
high-level decision, its period and a low-level executor (see docs/architecture.md), and is itself
a :class:`Policy`.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Policy(Protocol):
    def reset(self, env: Any, seed: int | None = None) -> None:
        """Start a new episode on ``env`` (already reset). Heuristics may read env structure here."""

    def act(
        self, observations: dict[str, Any], state: np.ndarray | None = None, explore: bool = False
    ) -> dict[str, Any]:
        """Choose one action per agent present in ``observations``."""
        ...
