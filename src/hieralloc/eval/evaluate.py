"""The one evaluation path: run a policy for a number of seeded episodes and collect metrics.

Tests, the CLI (``hieralloc eval``), training-time evaluation and benchmarks all call
:func:`evaluate`, so every number in a table is measured the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

#: wall-clock metrics: they measure the machine, not the policy, and differ between identical runs
#: wall-clock measurements (differ between identical runs; excluded from reproducibility checks).
#: ``train_min`` is added to a training run's final evaluation by :func:`hieralloc.train.run_training`.
TIMING_KEYS = ("decision_ms", "plan_ms", "train_min")

#: called after each episode with (episodes done, episodes total, that episode's metrics)
ProgressFn = Callable[[int, int, dict[str, float]], None]
#: ``observe(t, env)``: called at every state ``t`` of an episode, before the policy acts on it
#: (``t = 0 .. L - 1``) and once more at the final state (``t = L``)
ObserveFn = Callable[[int, Any], None]


def episode_seed(seed: int, i: int) -> int:
    """Seed of evaluation episode ``i`` under evaluation seed ``seed``.

    Derived with ``np.random.SeedSequence([seed, i])`` so episodes are independent streams,
    and the same ``(seed, i)`` gives the same episode for every policy (paired comparisons,
    fractions of an oracle's bound). The value lies in ``[0, 2**32)``.
    """
    if seed < 0 or i < 0:
        raise ValueError(f"episode_seed needs non-negative seed and index, got seed={seed}, i={i}")
    return int(np.random.SeedSequence([int(seed), int(i)]).generate_state(1, dtype=np.uint32)[0])


def _as_float(v: Any) -> float | None:
    if isinstance(v, (bool, np.bool_)):
        return float(v)
    if isinstance(v, (int, float, np.integer, np.floating)):
        return float(v)
    if isinstance(v, np.ndarray) and v.size == 1:
        return float(v.reshape(()))
    item = getattr(v, "item", None)  # torch scalars
    if callable(item):
        try:
            return float(item())
        except (TypeError, ValueError, RuntimeError):
            return None
    return None


def _numeric(d: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in d.items():
        f = _as_float(v)
        if f is not None:
            out[prefix + str(k)] = f
    return out


def _state(env: Any) -> np.ndarray | None:
    try:
        return env.state()
    except (NotImplementedError, AttributeError):
        return None


def evaluate(
    policy: Any,
    env: Any,
    episodes: int,
    seed: int,
    progress: ProgressFn | None = None,
    *,
    first: int = 0,
    observe: ObserveFn | None = None,
) -> list[dict[str, float]]:
    """Run ``episodes`` greedy episodes of ``policy`` on the PettingZoo ``ParallelEnv`` ``env``.

    Episode ``i`` (``first, first + 1, ...``) is reset with ``episode_seed(seed, i)``; the policy is
    then reset with the same seed and queried with ``policy.act(obs, state=env.state(), explore=False)``
    until no agents remain. ``observe`` (optional) sees every state on the way (:data:`ObserveFn`),
    e.g. to record an episode for a picture. Returns one dict per episode holding:

    * every numeric entry of ``env.unwrapped.episode_metrics()`` when the env defines it
      (the paper metrics, e.g. AC, ATD, Score);
    * ``reward_sum``: the sum of rewards over agents and steps; ``return``: the env's own episode
      return when ``episode_metrics()`` defines one (e.g. the team return of HGRL Eq. (1), which
      a team reward repeats for every agent), otherwise ``reward_sum``; ``length``: the steps;
    * ``decision_ms``: mean wall-clock milliseconds per ``policy.act`` call (planning time per
      decision); ``plan_ms``: wall-clock milliseconds of ``policy.reset`` (where planning policies
      such as the oracle solve the episode);
    * every numeric entry of ``policy.episode_metrics()`` when the policy defines it, prefixed
      ``policy/`` (the oracle reports ``policy/<bound key>`` this way).
    """
    if episodes < 0:
        raise ValueError(f"episodes must be >= 0, got {episodes}")
    base = getattr(env, "unwrapped", env)
    results: list[dict[str, float]] = []
    for i in range(first, first + episodes):
        s = episode_seed(seed, i)
        obs, _infos = env.reset(seed=s)
        t0 = time.perf_counter()
        policy.reset(env, s)
        plan_ms = (time.perf_counter() - t0) * 1e3
        total = 0.0
        length = 0
        act_s = 0.0
        while env.agents:
            if observe is not None:
                observe(length, env)
            state = _state(env)
            t0 = time.perf_counter()
            actions = policy.act(obs, state=state, explore=False)
            act_s += time.perf_counter() - t0
            obs, rewards, _terms, _truncs, _infos = env.step(actions)
            total += float(sum(float(r) for r in rewards.values()))
            length += 1
        if observe is not None:
            observe(length, env)
        metrics: dict[str, float] = {}
        env_metrics = getattr(base, "episode_metrics", None)
        if callable(env_metrics):
            metrics.update(_numeric(env_metrics()))
        metrics["reward_sum"] = total
        metrics.setdefault("return", total)
        metrics["length"] = float(length)
        metrics["decision_ms"] = act_s * 1e3 / length if length else 0.0
        metrics["plan_ms"] = plan_ms
        pol_metrics = getattr(policy, "episode_metrics", None)
        if callable(pol_metrics):
            extra = pol_metrics()
            if extra:
                metrics.update(_numeric(extra, prefix="policy/"))
        results.append(metrics)
        if progress is not None:
            progress(i + 1 - first, episodes, metrics)
    return results


def mean_metrics(episodes: list[dict[str, float]]) -> dict[str, float]:
    """Mean of each metric over the episodes that report it (keys in first-seen order)."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for ep in episodes:
        for k, v in ep.items():
            sums[k] = sums.get(k, 0.0) + float(v)
            counts[k] = counts.get(k, 0) + 1
    return {k: sums[k] / counts[k] for k in sums}
