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

import contextlib
from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

import numpy as np

from hieralloc.errors import CheckpointError


@runtime_checkable
class Policy(Protocol):
    def reset(self, env: Any, seed: int | None = None) -> None:
        """Start a new episode on ``env`` (already reset). Heuristics may read env structure here."""

    def act(
        self, observations: dict[str, Any], state: np.ndarray | None = None, explore: bool = False
    ) -> dict[str, Any]:
        """Choose one action per agent present in ``observations``."""
        ...


# --- what every learner's checkpoint holds besides its networks ------------------------------------
PROGRESS = ("env_steps", "episodes", "updates")


def progress_state(learner: Any, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """The learner's numpy generator state (``rng``) and its counters (``env_steps``, ``episodes``,
    ``updates`` and ``extra``) as plain Python, for a ``weights_only`` checkpoint."""
    return {"rng": learner.rng.bit_generator.state, **{k: getattr(learner, k) for k in PROGRESS + extra}}


def load_progress(learner: Any, state: dict[str, Any], extra: tuple[str, ...] = ()) -> None:
    """Inverse of :func:`progress_state` (each counter keeps its type: int, or bool for flags)."""
    learner.rng.bit_generator.state = state["rng"]
    for k in PROGRESS + extra:
        setattr(learner, k, type(getattr(learner, k))(state[k]))


@contextlib.contextmanager
def checkpoint_for(algo_name: str) -> Iterator[None]:
    """Turn what a mismatched checkpoint raises while it is loaded (missing key, wrong shape or value)
    into one :class:`CheckpointError` naming the learner and the fix."""
    try:
        yield
    except (KeyError, RuntimeError, ValueError, TypeError) as e:
        raise CheckpointError(f"checkpoint does not match this {algo_name} learner "
                              f"({str(e).splitlines()[0]}); resume with the config it was written with") from None
