"""The one training entry point: resolve a config, run an algorithm on an environment, record it.

``run_training`` is what ``hieralloc train`` and every benchmark cell call. It

1. resolves the config tree ``{env, algo, seed, env_config, algo_config, train}`` from dataclass
   defaults, an optional YAML file and dotted ``key=value`` overrides (``env.n_agents=5``);
2. creates (or, with ``resume``, reopens) the run directory (see :mod:`hieralloc.runs`);
3. for a learner, alternates training iterations with periodic evaluation and checkpoints; for a
   fixed policy (heuristic, oracle) it only evaluates;
4. writes ``summary.json`` with the final evaluation.

Checkpoints are taken at episode boundaries and hold the learner's state dict (networks,
optimiser, replay buffer, RNG states, counters) plus the size of ``metrics.jsonl`` at that moment,
so ``--resume`` after a kill truncates the log back to the checkpoint and continues to exactly the
numbers an unbroken run reaches with the same seed.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hieralloc.config import Config, flatten_keys, from_dict, load_yaml, merge_sources, param, to_dict
from hieralloc.errors import CheckpointError, ConfigError, HierallocError
from hieralloc.progress import fmt_metrics, progress_bar
from hieralloc.registry import AlgoSpec, EnvSpec, check_compatible, get_algo, get_env
from hieralloc.runs import RunDir, config_hash

#: evaluation episodes use seeds derived from ``seed + EVAL_SEED_OFFSET`` so they never coincide
#: with training episodes of the same run
EVAL_SEED_OFFSET = 1_000_000

SECTIONS = ("env", "algo", "train")


@dataclass
class TrainConfig(Config):
    """How long to train, how often to evaluate and checkpoint."""

    steps: int = param(0, "environment steps of training; offline learners (ohio-bc/iql/cql/calql) count gradient "
                       "steps on their dataset (ignored by algorithms that do not learn)", low=0)
    eval_episodes: int = param(10, "episodes of each evaluation", low=1)
    eval_every: int = param(0, "environment steps between evaluations (0: only the final one)", low=0)
    checkpoint_every: int = param(0, "environment steps between checkpoints (0: none)", low=0)
    experiment: str = param("", "experiment name: runs go to runs/<experiment>/ (default: the env name)")
    threads: int = param(1, "torch CPU threads (1 keeps runs reproducible and parallel cells fast)", low=1)


@dataclass
class ResolvedRun:
    env_spec: EnvSpec
    algo_spec: AlgoSpec
    env_cfg: Any
    algo_cfg: Any
    train_cfg: TrainConfig
    seed: int
    tree: dict[str, Any]

    @property
    def run_hash(self) -> str:
        return config_hash(self.tree)


def resolve_run(
    env: str,
    algo: str,
    overrides: Sequence[str] = (),
    config_file: Path | None = None,
    seed: int = 0,
) -> ResolvedRun:
    """Resolve names, YAML and overrides into validated config dataclasses (no side effects)."""
    env_spec = get_env(env)
    algo_spec = get_algo(algo)
    check_compatible(env_spec, algo_spec)
    file_tree = load_yaml(config_file) if config_file is not None else None
    label = str(config_file) if config_file is not None else None
    tree, sources = merge_sources(file_tree, label, overrides)
    for key in tree:
        if key not in SECTIONS:
            raise ConfigError(key, f"unknown section; valid sections: {', '.join(SECTIONS)} "
                                   f"(write e.g. env.n_agents=5)", sources.get(key) or _src_under(sources, key))
        if not isinstance(tree[key], Mapping):
            raise ConfigError(key, "must be a section (a mapping of keys), not a value",
                              sources.get(key) or _src_under(sources, key))
    env_tree = {**env_spec.defaults, **tree.get("env", {})}
    env_cfg: Any = from_dict(env_spec.config_cls, env_tree, sources, prefix="env.")
    algo_cfg: Any = from_dict(algo_spec.config_cls, tree.get("algo", {}), sources, prefix="algo.")
    train_cfg = from_dict(TrainConfig, tree.get("train", {}), sources, prefix="train.")
    if not algo_spec.caps.learns and train_cfg.steps > 0:
        train_cfg = dataclasses.replace(train_cfg, steps=0)
    resolved_tree = {
        "env": env_spec.name,
        "algo": algo_spec.name,
        "seed": int(seed),
        "env_config": to_dict(env_cfg),
        "algo_config": to_dict(algo_cfg),
        "train": to_dict(train_cfg),
    }
    return ResolvedRun(env_spec, algo_spec, env_cfg, algo_cfg, train_cfg, int(seed), resolved_tree)


def _src_under(sources: Mapping[str, str], key: str) -> str:
    for k, v in sources.items():
        if k.startswith(key + "."):
            return v
    return "config"


def _diff_keys(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    fa = dict(zip(flatten_keys(a), [_get(a, k) for k in flatten_keys(a)], strict=True))
    fb = dict(zip(flatten_keys(b), [_get(b, k) for k in flatten_keys(b)], strict=True))
    return sorted(k for k in set(fa) | set(fb) if fa.get(k) != fb.get(k))


def _get(tree: Mapping[str, Any], dotted: str) -> Any:
    node: Any = tree
    for p in dotted.split("."):
        node = node[p]
    return node


def default_run_dir(resolved: ResolvedRun, runs_root: Path) -> Path:
    exp = resolved.train_cfg.experiment or resolved.env_spec.name
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
    return Path(runs_root) / exp / f"{resolved.algo_spec.name}-seed{resolved.seed}-{stamp}"


def find_resumable(resolved: ResolvedRun, runs_root: Path) -> Path | None:
    """The newest unfinished run under runs/<experiment>/ with the same config."""
    exp = resolved.train_cfg.experiment or resolved.env_spec.name
    root = Path(runs_root) / exp
    if not root.is_dir():
        return None
    candidates = sorted((p for p in root.iterdir() if (p / "config.yaml").is_file()), reverse=True)
    for p in candidates:
        rd = RunDir(p)
        try:
            if config_hash(rd.read_config()) == resolved.run_hash:
                return p
        except CheckpointError:
            continue
    return None


def make_envs(resolved: ResolvedRun) -> tuple[Any, Any]:
    """The training env and the evaluation env (its time split set to 'eval' when it has one)."""
    train_env = resolved.env_spec.make(resolved.env_cfg)
    eval_cfg = resolved.env_cfg
    if hasattr(eval_cfg, "split"):
        eval_cfg = dataclasses.replace(eval_cfg, split="eval")
    eval_env = resolved.env_spec.make(eval_cfg)
    return train_env, eval_env


def run_training(
    env: str,
    algo: str,
    *,
    overrides: Sequence[str] = (),
    config_file: Path | None = None,
    seed: int = 0,
    out: Path | None = None,
    resume: bool = False,
    quiet: bool = True,
    runs_root: Path = Path("runs"),
) -> Path:
    """Train (or just evaluate) ``algo`` on ``env`` and return the run directory."""
    import torch

    from hieralloc.eval import evaluate, mean_metrics

    resolved = resolve_run(env, algo, overrides, config_file, seed)
    if out is not None:
        run_path = Path(out)
    elif resume:
        found = find_resumable(resolved, runs_root)
        if found is None:
            raise CheckpointError(
                f"--resume found no run of {resolved.algo_spec.name} on {resolved.env_spec.name} with this "
                f"config and seed under {runs_root}; pass --out RUN_DIR or start without --resume")
        run_path = found
    else:
        run_path = default_run_dir(resolved, runs_root)
    rd = RunDir(run_path)

    if resume:
        if not rd.exists():
            raise CheckpointError(f"--resume: '{run_path}' is not a run directory; start without --resume")
        saved = rd.read_config()
        if config_hash(saved) != resolved.run_hash:
            diff = _diff_keys(saved, resolved.tree)
            raise ConfigError(diff[0] if diff else "<config>",
                              f"differs from the run being resumed ({', '.join(diff[:6])}); resume with the "
                              "same arguments or start a new run", "command line")
        if rd.is_finished():
            return run_path
    else:
        if rd.exists() or (run_path.exists() and any(run_path.iterdir())):
            raise HierallocError(f"run directory '{run_path}' already exists and is not empty; "
                                 "pass --resume to continue it or choose another --out")
        existed = run_path.exists()
        rd.create(resolved.tree, resolved.seed)

    torch.set_num_threads(resolved.train_cfg.threads)
    torch.manual_seed(resolved.seed)
    try:
        train_env, eval_env = make_envs(resolved)
        obj = resolved.algo_spec.build(train_env, resolved.algo_cfg, resolved.seed)
    except HierallocError:
        if not resume:  # nothing ran: leave no half-written run directory behind
            shutil.rmtree(run_path, ignore_errors=True)
            if existed:
                run_path.mkdir(parents=True, exist_ok=True)
        raise
    tc = resolved.train_cfg
    eval_seed = resolved.seed + EVAL_SEED_OFFSET
    t_start = time.perf_counter()
    train_time = 0.0

    def run_eval(policy: Any, step: int, bar_text: str = "") -> tuple[dict[str, float], list[dict[str, float]]]:
        episodes = evaluate(policy, eval_env, tc.eval_episodes, eval_seed)
        means = mean_metrics(episodes)
        rd.log({"step": step, "phase": "eval", **means})
        return means, episodes

    if resolved.algo_spec.caps.learns:
        learner = obj
        if resume:
            ckpt = rd.latest_checkpoint(resolved.run_hash)
            if ckpt is not None:
                payload = ckpt["payload"]
                learner.load_state_dict(payload["learner"])
                torch.set_rng_state(payload["torch_rng"])
                rd.truncate_metrics(int(payload["metrics_size"]))
                train_time = float(payload.get("train_time_s", 0.0))
            else:
                rd.truncate_metrics(0)
        last_eval = learner.env_steps // tc.eval_every if tc.eval_every else 0
        last_ckpt = learner.env_steps // tc.checkpoint_every if tc.checkpoint_every else 0
        with progress_bar(tc.steps, f"{resolved.algo_spec.name} on {resolved.env_spec.name}", quiet) as bar:
            bar.update(completed=learner.env_steps)
            latest = ""
            while learner.env_steps < tc.steps:
                t0 = time.perf_counter()
                train_metrics = learner.train_iteration()
                train_time += time.perf_counter() - t0
                rd.log({"step": learner.env_steps, "phase": "train", **train_metrics})
                if tc.eval_every and learner.env_steps // tc.eval_every > last_eval:
                    last_eval = learner.env_steps // tc.eval_every
                    means, _ = run_eval(learner.policy, learner.env_steps)
                    latest = fmt_metrics(means)
                if tc.checkpoint_every and learner.env_steps // tc.checkpoint_every > last_ckpt:
                    last_ckpt = learner.env_steps // tc.checkpoint_every
                    rd.save_checkpoint(learner.env_steps, {
                        "learner": learner.state_dict(),
                        "torch_rng": torch.get_rng_state(),
                        "metrics_size": rd.metrics_size(),
                        "train_time_s": train_time,
                    }, resolved.run_hash)
                bar.update(completed=min(learner.env_steps, tc.steps),
                           metric=latest or fmt_metrics(train_metrics))
        policy = learner.policy
        steps_done = learner.env_steps
        # the final model, for 'hieralloc eval' (same name as a periodic one at this step: same state)
        rd.save_checkpoint(steps_done, {
            "learner": learner.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "metrics_size": rd.metrics_size(),
            "train_time_s": train_time,
        }, resolved.run_hash)
    else:
        if resume:
            rd.truncate_metrics(0)
        policy = obj
        steps_done = 0

    with progress_bar(1, "final evaluation", quiet) as bar:
        final, episodes = run_eval(policy, steps_done)
        bar.update(completed=1, metric=fmt_metrics(final))
    # training time (minutes, HGRL Table 1's "Training Time") with the final evaluation's episodes,
    # so benchmark reports aggregate it over seeds like any other metric
    final["train_min"] = train_time / 60.0
    for ep in episodes:
        ep["train_min"] = train_time / 60.0
    rd.write_summary({
        "env": resolved.env_spec.name,
        "algo": resolved.algo_spec.name,
        "seed": resolved.seed,
        "steps": steps_done,
        "config_hash": resolved.run_hash,
        "train_time_s": train_time,
        "wall_time_s": time.perf_counter() - t_start,
        "final": final,
        "episodes": episodes,
    })
    return run_path


def load_run(run_dir: Path) -> tuple[ResolvedRun, RunDir]:
    """Rebuild the resolved config of an existing run directory, to load the run's own checkpoints.

    The algo config's ``finetune_from`` (the run it started from) is cleared: the run's checkpoints
    hold everything the learner has, so the source need not exist any more (a moved or copied
    results folder). ``resolved.tree`` is the config as written, so checkpoints still match it."""
    rd = RunDir(run_dir)
    tree = rd.read_config()
    src = str(rd.config_path)
    env_spec = get_env(str(tree["env"]))
    algo_spec = get_algo(str(tree["algo"]))
    try:
        env_cfg: Any = from_dict(env_spec.config_cls, tree.get("env_config", {}), src, prefix="env_config.")
        algo_cfg: Any = from_dict(algo_spec.config_cls, tree.get("algo_config", {}), src, prefix="algo_config.")
        train_cfg = from_dict(TrainConfig, tree.get("train", {}), src, prefix="train.")
        seed = int(tree.get("seed", 0))
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"'{src}' is damaged ({e}); it is not a config hieralloc wrote") from None
    if getattr(algo_cfg, "finetune_from", ""):
        algo_cfg = dataclasses.replace(algo_cfg, finetune_from="")
    resolved = ResolvedRun(env_spec, algo_spec, env_cfg, algo_cfg, train_cfg, seed, tree)
    return resolved, rd


def evaluate_run(run_dir: Path, episodes: int = 10, seed: int | None = None, quiet: bool = True
                 ) -> dict[str, Any]:
    """Evaluate a run's policy again (a learner's last checkpoint) and write eval-*.json into the run."""
    import torch

    from hieralloc.eval import evaluate, mean_metrics
    from hieralloc.runs import atomic_write_json

    resolved, rd = load_run(run_dir)
    torch.set_num_threads(resolved.train_cfg.threads)
    torch.manual_seed(resolved.seed)
    train_env, eval_env = make_envs(resolved)
    obj = resolved.algo_spec.build(train_env, resolved.algo_cfg, resolved.seed)
    if resolved.algo_spec.caps.learns:
        ckpt = rd.latest_checkpoint(config_hash(resolved.tree))
        if ckpt is None:
            raise CheckpointError(f"run '{run_dir}' has no checkpoint to evaluate; finish it first "
                                  "('hieralloc train ... --resume --out RUN_DIR')")
        obj.load_state_dict(ckpt["payload"]["learner"])
        policy = obj.policy
    else:
        policy = obj
    eval_seed = resolved.seed + EVAL_SEED_OFFSET if seed is None else int(seed)
    with progress_bar(episodes, "evaluating", quiet) as bar:
        eps = evaluate(policy, eval_env, episodes, eval_seed, progress=lambda i, n, m: bar.update(completed=i))
    means = mean_metrics(eps)
    path = rd.path / f"eval-{episodes}ep-seed{eval_seed}.json"
    atomic_write_json(path, {"episodes": eps, "mean": means, "seed": eval_seed})
    return {"episodes": eps, "mean": means, "path": path}
