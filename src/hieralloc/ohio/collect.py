"""``hieralloc collect``: run a fixed behaviour policy on an OHIO environment and write an offline
dataset (:class:`~hieralloc.ohio.dataset.OfflineDataset`).

The environment and the behaviour policy are resolved exactly as ``hieralloc train`` resolves an
environment and an algorithm (:func:`hieralloc.train.resolve_run`: names, scenarios, ``env.*`` /
``algo.*`` overrides, compatibility checks). Episode ``k`` is reset with
``hieralloc.eval.episode_seed(seed, k)``, as training and evaluation episodes are, and the policy
is driven through the same protocol as :func:`hieralloc.eval.evaluate`. Each step records the
state before and after it as graph data (the family's :meth:`Formulation.observe`), the raw flows
the low level executed (:meth:`Formulation.low_level`), the reward and the episode end. What the
behaviour policy chose is never stored: OHIO recovers it from the flows (Sec. 4, App. B.3.5).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from hieralloc.errors import ConfigError, IncompatibleError
from hieralloc.eval import episode_seed, mean_metrics
from hieralloc.eval.evaluate import ProgressFn
from hieralloc.ohio.dataset import FORMAT, VERSION, OfflineDataset, check_writable
from hieralloc.ohio.formulation import Formulation, GraphState, get_formulation
from hieralloc.train import ResolvedRun, resolve_run

#: default parent folder of collected datasets (relative to the current directory; git-ignored)
DATASETS_ROOT = Path("datasets")

#: config sections ``collect`` accepts in overrides (``algo`` is the behaviour policy's config)
SECTIONS = ("env", "algo")


def default_out(env: str, behaviour: str, episodes: int, seed: int, root: Path = DATASETS_ROOT) -> Path:
    """``datasets/<env>-<behaviour>-<episodes>ep-s<seed>``."""
    return Path(root) / f"{env}-{behaviour}-{episodes}ep-s{seed}"


def _state(env: Any) -> np.ndarray | None:
    try:
        return env.state()
    except (NotImplementedError, AttributeError):
        return None


def _step_info(infos: dict[str, Any]) -> Any:
    """The info a formulation's ``low_level`` reads: the agent's info for a single-agent env
    (every OHIO env has one agent, the high-level operator), otherwise the dict of all agents'."""
    if len(infos) == 1:
        return next(iter(infos.values()))
    return infos


def fixed_behaviours(env: str) -> list[str]:
    """Registered algorithms that can collect data on ``env``: fixed (non-learning) and compatible."""
    from hieralloc import registry

    spec = registry.get_env(env)
    out = []
    for algo in sorted(registry.ALGOS.values(), key=lambda a: a.name):
        if algo.caps.learns:
            continue
        try:
            registry.check_compatible(spec, algo)
        except IncompatibleError:
            continue
        out.append(algo.name)
    return out


@dataclass(frozen=True)
class CollectPlan:
    """A checked collection: resolved configs, the formulation and the output directory."""

    resolved: ResolvedRun
    formulation: Formulation
    episodes: int
    seed: int
    out: Path
    force: bool


def plan_collect(
    env: str,
    behaviour: str,
    episodes: int,
    seed: int = 0,
    overrides: Sequence[str] = (),
    out: Path | str | None = None,
    force: bool = False,
) -> CollectPlan:
    """Resolve and check everything :func:`collect` needs, without running anything: names,
    scenario, overrides (``env.*``, ``algo.*``), compatibility, that ``behaviour`` does not learn,
    that the family has an OHIO formulation, and that the output directory may be written."""
    if isinstance(episodes, bool) or not isinstance(episodes, (int, np.integer)) or episodes < 1:
        raise ConfigError("--episodes", f"must be an integer >= 1, got {episodes!r}", "command line")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError("--seed", f"must be an integer >= 0, got {seed!r}", "command line")
    for text in overrides:
        section = text.split("=", 1)[0].strip().split(".")[0]
        if "=" in text and section not in SECTIONS:
            raise ConfigError(text.split("=", 1)[0].strip(),
                              f"collect takes sections {' and '.join(SECTIONS)} only (env.KEY=VALUE for the "
                              "environment, algo.KEY=VALUE for the behaviour policy)", f"command line '{text}'")

    resolved = resolve_run(env, behaviour, overrides, seed=int(seed))  # names, scenarios, overrides, compatibility
    env_spec, algo_spec = resolved.env_spec, resolved.algo_spec
    if algo_spec.caps.learns:
        fixed = fixed_behaviours(env)
        raise IncompatibleError(
            f"'{algo_spec.name}' is a learning algorithm; a behaviour policy must be a fixed policy (heuristic, "
            f"controller or oracle). Fixed policies for {env_spec.name}: {', '.join(fixed) or 'none'}")
    formulation = get_formulation(env_spec.family)
    path = Path(out) if out is not None else default_out(env_spec.name, algo_spec.name, int(episodes), int(seed))
    check_writable(path, force)
    return CollectPlan(resolved, formulation, int(episodes), int(seed), path, bool(force))


def collect(
    env: str,
    behaviour: str,
    episodes: int,
    seed: int = 0,
    overrides: Sequence[str] = (),
    out: Path | str | None = None,
    progress: ProgressFn | None = None,
    force: bool = False,
) -> Path:
    """Collect ``episodes`` episodes of the fixed policy ``behaviour`` on ``env`` (an environment or
    scenario name) and write them as an offline dataset; returns the dataset directory.

    ``overrides`` are ``env.key=value`` / ``algo.key=value`` strings as ``hieralloc train`` takes
    (``algo`` is the behaviour's config). ``out`` defaults to
    ``datasets/<env>-<behaviour>-<episodes>ep-s<seed>``; an existing dataset there is refused
    unless ``force``. ``progress(done, total, metrics)`` is called after each episode.
    """
    return run_collect(plan_collect(env, behaviour, episodes, seed, overrides, out, force), progress)


def run_collect(plan: CollectPlan, progress: ProgressFn | None = None) -> Path:
    """Run a :func:`plan_collect` plan: the episodes, then the atomic write of the dataset."""
    from hieralloc import registry
    from hieralloc.runs import versions

    resolved, formulation, episodes, seed = plan.resolved, plan.formulation, plan.episodes, plan.seed
    env_spec, algo_spec = resolved.env_spec, resolved.algo_spec
    environment = env_spec.make(resolved.env_cfg)
    policy = algo_spec.build(environment, resolved.algo_cfg, seed)
    layout = formulation.layout(environment)

    rows: dict[str, list[Any]] = {k: [] for k in ("x", "edge_attr", "aux", "next_x", "next_edge_attr", "next_aux",
                                                  "flows", "reward", "terminated", "done", "episode", "step")}
    ep_metrics: list[dict[str, float]] = []
    base = getattr(environment, "unwrapped", environment)
    t_start = time.perf_counter()
    for k in range(episodes):
        s = episode_seed(seed, k)
        obs, _infos = environment.reset(seed=s)
        policy.reset(environment, s)
        first = formulation.observe(environment)
        state = GraphState(np.array(first.x), np.array(first.edge_attr), np.array(first.aux))
        total, t = 0.0, 0
        while environment.agents:
            actions = policy.act(obs, state=_state(environment), explore=False)
            obs, rewards, terms, truncs, infos = environment.step(actions)
            flows = np.array(formulation.low_level(environment, _step_info(infos)), dtype=np.float64)  # a copy
            nxt = formulation.observe(environment)
            reward = float(sum(float(r) for r in rewards.values()))
            terminated = any(bool(v) for v in terms.values())
            done = terminated or any(bool(v) for v in truncs.values()) or not environment.agents
            nxt = GraphState(np.array(nxt.x), np.array(nxt.edge_attr), np.array(nxt.aux))  # copies: never env buffers
            for name, value in (("x", state.x), ("edge_attr", state.edge_attr), ("aux", state.aux),
                                ("next_x", nxt.x), ("next_edge_attr", nxt.edge_attr), ("next_aux", nxt.aux),
                                ("flows", flows), ("reward", reward), ("terminated", terminated),
                                ("done", done), ("episode", k), ("step", t)):
                rows[name].append(value)
            state = nxt
            total += reward
            t += 1
            if done:
                break
        metrics: dict[str, float] = {}
        env_metrics = getattr(base, "episode_metrics", None)
        if callable(env_metrics):
            metrics.update({str(key): float(v) for key, v in env_metrics().items()
                            if isinstance(v, (int, float, np.integer, np.floating))})
        metrics["reward_sum"] = total
        metrics.setdefault("return", total)
        metrics["length"] = float(t)
        ep_metrics.append(metrics)
        if progress is not None:
            progress(k + 1, episodes, metrics)

    vers = versions()
    scenario = env_spec.name if env_spec.name in registry.SCENARIOS else ""
    meta: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "env": registry.SCENARIOS[scenario].env if scenario else env_spec.name,
        "scenario": scenario,
        "family": env_spec.family,
        "env_config": resolved.tree["env_config"],
        "behaviour": algo_spec.name,
        "behaviour_config": resolved.tree["algo_config"],
        "episodes": episodes,
        "seed": seed,
        "transitions": len(rows["reward"]),
        "fingerprint": layout.fingerprint,
        "goal_dim": int(formulation.goal_dim(layout)),
        "flow_dim": int(formulation.flow_dim(layout)),
        "hieralloc_version": str(vers["hieralloc"]),
        "git_commit": vers["git_commit"],
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        # extras (not required by the format): every version, the behaviour's mean episode metrics
        "versions": vers,
        "episode_metrics": mean_metrics(ep_metrics),
        "collect_seconds": time.perf_counter() - t_start,
    }
    arrays: dict[str, Any] = {name: np.stack([np.asarray(v) for v in values]) for name, values in rows.items()}
    ds = OfflineDataset(**arrays, edge_index=np.asarray(layout.edge_index), flow_edges=np.asarray(layout.flow_edges),
                        producers=np.asarray(layout.producers), meta=meta)
    return ds.save(plan.out, overwrite=plan.force)


__all__ = ["DATASETS_ROOT", "CollectPlan", "collect", "default_out", "fixed_behaviours", "plan_collect", "run_collect"]
