"""``check_env``: PettingZoo API tests plus invariants, for any registered environment.

``check_env(name)`` returns a list of ``(check name, passed, detail)`` rows:

* ``construct``: the environment builds from its registered default config.
* ``pettingzoo.parallel_api_test``, ``pettingzoo.parallel_seed_test``,
  ``pettingzoo.api_test(parallel_to_aec)``: PettingZoo's own test utilities.
* generic invariants, for every family: ``rewards finite``, ``observations/state in spaces``,
  ``determinism under seed`` (two instances, same seed and actions -> identical trajectories and
  episode metrics).
* family invariants: functions an environment family registers with :func:`register_invariant`
  (e.g. ``coverage``: served <= demand, served <= capacity, positions in bounds, metrics consistent
  with the per-step infos, served equals a reference computation).

The CLI's ``hieralloc check-env ENV`` prints these rows as a table.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from hieralloc.registry import get_env

CheckRow = tuple[str, bool, str]
#: an invariant receives a zero-argument environment factory and returns (passed, detail)
Invariant = Callable[[Callable[[], Any]], tuple[bool, str]]

FAMILY_INVARIANTS: dict[str, dict[str, Invariant]] = {}


def register_invariant(family: str, name: str, fn: Invariant) -> Invariant:
    """Declare an invariant that :func:`check_env` runs for every environment of ``family``."""
    FAMILY_INVARIANTS.setdefault(family, {})[name] = fn
    return fn


def sample_actions(env: Any, infos: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """One random action per live agent, respecting ``infos[agent]['action_mask']`` when present."""
    out = {}
    for agent in env.agents:
        space = env.action_space(agent)
        mask = infos.get(agent, {}).get("action_mask") if isinstance(infos.get(agent), dict) else None
        if mask is not None and hasattr(space, "n"):
            valid = np.flatnonzero(np.asarray(mask))
            out[agent] = int(rng.choice(valid)) if len(valid) else int(rng.integers(space.n))
        elif hasattr(space, "n"):
            out[agent] = int(rng.integers(space.n))
        else:
            space.seed(int(rng.integers(2**31)))
            out[agent] = space.sample()
    return out


def rollout(env: Any, seed: int, max_steps: int = 10_000, action_seed: int | None = None
            ) -> list[tuple[Any, ...]]:
    """Reset with ``seed`` and play random actions to the end; returns the list of
    ``(obs, rewards, terminations, truncations, infos)`` with the reset as the first entry."""
    rng = np.random.default_rng(seed if action_seed is None else action_seed)
    obs, infos = env.reset(seed=seed)
    out: list[tuple[Any, ...]] = [(obs, {}, {}, {}, infos)]
    for _ in range(max_steps):
        if not env.agents:
            break
        obs, rew, term, trunc, infos = env.step(sample_actions(env, infos, rng))
        out.append((obs, rew, term, trunc, infos))
    return out


def single_agent_episodes(make: Callable[[], Any], seeds: tuple[int, ...] = (0, 1)
                          ) -> list[tuple[Any, list[dict[str, Any]], list[float]]]:
    """For a one-agent env, per seed: (the env after a random-action episode, [reset info, step
    infos...], the step rewards). What the network families' invariants replay."""
    out = []
    for seed in seeds:
        env = make()
        steps = rollout(env, seed)
        infos = [next(iter(s[4].values())) for s in steps]
        rewards = [float(next(iter(s[1].values()))) for s in steps[1:]]
        out.append((env, infos, rewards))
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        if not isinstance(b, (list, tuple)) or len(a) != len(b):
            return False
        return all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    return bool(a == b)


# ---------------------------------------------------------------------------------------------
# generic invariants


def _rewards_finite(make: Callable[[], Any]) -> tuple[bool, str]:
    env = make()
    n = 0
    for ep in range(2):
        for _, rew, *_ in rollout(env, seed=ep)[1:]:
            for agent, r in rew.items():
                n += 1
                if not np.isfinite(r):
                    return False, f"reward of {agent} is {r}"
    return True, f"{n} rewards finite"


def _in_spaces(make: Callable[[], Any]) -> tuple[bool, str]:
    env = make()
    n = 0
    for step in rollout(env, seed=3):
        for agent, o in step[0].items():
            n += 1
            if not env.observation_space(agent).contains(o):
                return False, f"observation of {agent} is outside its space"
        space = getattr(env, "state_space", None)
        if space is not None and env.agents and not space.contains(env.state()):
            return False, "state() is outside state_space"
    return True, f"{n} observations in their spaces"


def _deterministic(make: Callable[[], Any]) -> tuple[bool, str]:
    e1, e2 = make(), make()
    for seed in (7, 8):
        r1, r2 = rollout(e1, seed), rollout(e2, seed)
        if len(r1) != len(r2):
            return False, f"seed {seed}: episode lengths differ ({len(r1)} vs {len(r2)})"
        for k, (a, b) in enumerate(zip(r1, r2, strict=True)):
            if not _same(a, b):
                return False, f"seed {seed}: step {k} differs between two instances"
        if hasattr(e1, "episode_metrics") and not _same(e1.episode_metrics(), e2.episode_metrics()):
            return False, f"seed {seed}: episode_metrics differ"
    r3 = rollout(e1, 7)
    r4 = rollout(make(), 7)
    if not _same(r3, r4):
        return False, "re-seeding an used instance does not reproduce a fresh one"
    return True, "same seed -> identical trajectories, infos and metrics"


GENERIC_INVARIANTS: dict[str, Invariant] = {
    "rewards finite": _rewards_finite,
    "observations/state in spaces": _in_spaces,
    "determinism under seed": _deterministic,
}


# ---------------------------------------------------------------------------------------------


def _run(name: str, fn: Callable[[], tuple[bool, str]]) -> CheckRow:
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            passed, detail = fn()
        notes = sorted({str(w.message).split("\n")[0][:80] for w in caught})
        if notes:
            detail = f"{detail}; warnings: {'; '.join(notes)}"
        return name, bool(passed), detail
    except Exception as e:  # a failing check is a row, not a crash
        msg = str(e).split("\n")[0][:200]
        return name, False, f"{type(e).__name__}: {msg}"


def check_env(name: str, num_cycles: int = 200, **overrides: Any) -> list[CheckRow]:
    """Run the API tests and invariants for the registered environment or scenario ``name``.

    ``overrides`` change config fields (e.g. ``n_agents=2``). Unknown names raise
    :class:`~hieralloc.errors.UnknownNameError`; every other failure is reported as a row.
    """
    from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test
    from pettingzoo.utils.conversions import parallel_to_aec

    spec = get_env(name)
    rows: list[CheckRow] = []
    holder: dict[str, Any] = {}

    def construct() -> tuple[bool, str]:
        holder["config"] = spec.default_config(**overrides)
        env = spec.make(holder["config"])
        return True, f"{type(env).__name__} with {len(env.possible_agents)} agents"

    rows.append(_run("construct", construct))
    if not rows[-1][1]:
        return rows

    def make() -> Any:
        return spec.make(holder["config"])

    def api() -> tuple[bool, str]:
        parallel_api_test(make(), num_cycles=num_cycles)
        return True, "passed"

    def seed() -> tuple[bool, str]:
        parallel_seed_test(make, num_cycles=num_cycles)
        return True, "passed"

    def aec() -> tuple[bool, str]:
        api_test(parallel_to_aec(make()), num_cycles=num_cycles)
        return True, "passed"

    rows.append(_run("pettingzoo.parallel_api_test", api))
    rows.append(_run("pettingzoo.parallel_seed_test", seed))
    rows.append(_run("pettingzoo.api_test(parallel_to_aec)", aec))
    for inv_name, inv in GENERIC_INVARIANTS.items():
        rows.append(_run(inv_name, lambda inv=inv: inv(make)))  # type: ignore[misc]
    for inv_name, inv in FAMILY_INVARIANTS.get(spec.family, {}).items():
        rows.append(_run(f"{spec.family}: {inv_name}", lambda inv=inv: inv(make)))  # type: ignore[misc]
    return rows


__all__ = ["FAMILY_INVARIANTS", "GENERIC_INVARIANTS", "check_env", "register_invariant", "rollout",
           "sample_actions", "single_agent_episodes"]
