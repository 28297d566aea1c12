r"""LPMARL's pictures of a trained run: ``hieralloc plot RUN_DIR`` (LPMARL Fig. 2, Fig. 3 and Fig. 8).

:func:`plot_run` rebuilds a run of the LPMARL learner (``lpmarl``, ``dec-lpmarl``, ``lpmarl-nolp``,
``lpmarl-lpdist``, ``lpmarl-greedy``) exactly as ``hieralloc eval`` does (the run's resolved config,
its training env, :meth:`AlgoSpec.build`, the newest checkpoint), plays evaluation episode ``K``
greedily with the run's evaluation policy (``learner.policy``) on the evaluation env, with the seed
``hieralloc eval`` gives episode ``K`` (:func:`hieralloc.eval.episode_seed` of the run's seed plus
:data:`hieralloc.train.EVAL_SEED_OFFSET`), records the assignment in force at every step, and draws:

* ``lpmarl_costs_ep<K>_t<T>.png``: LPMARL Fig. 2 for the state at step ``T`` of that episode, the
  centralised high level's scores ``C_theta(s)`` (a), the agent-task distances ``D`` (b) and the
  LP's solution ``Z*`` (c, with the LP-distance solution ``Z*(-D)`` marked for comparison, as the
  paper's panel c shows both);
* ``lpmarl_assignment_ep<K>.png``: LPMARL Fig. 3 (navigation) / Fig. 8 (combat): the task of every
  agent at every step, and the agents' trajectories coloured by their final landmark (navigation)
  or the living allies and enemies over time (combat; the high level re-decides at each death);
* ``lpmarl_assignment_ep<K>.json``: the numbers of both pictures.

:func:`plot_cost_matrices` and :func:`plot_assignment_timeline` draw from plain arrays, so they work
for any snapshot (``LPMARLLearner.cost_snapshot``) or recorded episode.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hieralloc.errors import CheckpointError, HierallocError, IncompatibleError

#: algorithms whose run directories these pictures are drawn for (the LPMARL learner's variants)
LPMARL_ALGOS: tuple[str, ...] = ("lpmarl", "dec-lpmarl", "lpmarl-nolp", "lpmarl-lpdist", "lpmarl-greedy")
#: high-level rules whose scores are learned (``C_theta(s)``); the others score ``-D``
_LEARNED = ("lp", "nolp")
#: panel (c) title per high-level rule
_DECISION_TITLE = {
    "lp": "(c) Z*: the LP's solution on C_theta(s)",
    "nolp": "(c) tasks: per-agent argmax of C_theta(s) (No-LP)",
    "lpdist": "(c) Z*: the LP's solution on -D (LP-distance)",
    "greedy": "(c) tasks: nearest task (greedy, no LP)",
}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(plt: Any, fig: Any, path: str | Path) -> Path:
    """Write ``fig`` as PNG atomically (temporary file + rename) and close it."""
    from hieralloc.runs import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    p = Path(path)
    atomic_write_bytes(p, buf.getvalue())
    return p


def _task_colors(m: int) -> np.ndarray:
    """(M, 4) RGBA: one qualitative colour per task (``tab10``, ``tab20`` beyond 10, then cycled)."""
    plt = _plt()
    cmap = plt.get_cmap("tab10" if m <= 10 else "tab20")
    n = 10 if m <= 10 else 20
    return np.array([cmap(j % n) for j in range(m)])


def _annotate(ax: Any, values: np.ndarray, shown: np.ndarray, fmt: str, vmin: float, vmax: float,
              reverse: bool = False) -> None:
    """Write each shown cell's value: black on the bright half of viridis, white on the dark half
    (``reverse``: the colour map is reversed, small values bright)."""
    span = vmax - vmin if vmax > vmin else 1.0
    n, m = values.shape
    size = 8 if n * m <= 60 else 6
    for i in range(n):
        for j in range(m):
            if shown[i, j]:
                frac = (values[i, j] - vmin) / span
                bright = (1.0 - frac if reverse else frac) > 0.55
                ax.text(j, i, format(values[i, j], fmt), ha="center", va="center", fontsize=size,
                        color="black" if bright else "white")


def _value_format(lo: float, hi: float) -> str:
    """Enough decimals to tell the shown values apart (2 to 4)."""
    span = hi - lo
    digits = 2 if span <= 0 else int(np.clip(np.ceil(-np.log10(span)) + 1, 2, 4))
    return f".{digits}f"


# ---------------------------------------------------------------------------------------------
# LPMARL Fig. 2


def plot_cost_matrices(snapshot: dict[str, Any], path: str | Path, title: str = "", *, high_level: str = "lp",
                       task_prefix: str = "L") -> Path:
    """LPMARL Fig. 2: for one state, the high level's scores (a), the distances ``D`` (b) and its decision (c).

    ``snapshot`` holds ``costs``, ``distances`` and ``assignment`` ``(N, M)`` and ``capacity`` ``(M,)``
    (:meth:`LPMARLLearner.cost_snapshot`), optionally ``agent_alive`` ``(N,)`` / ``task_alive`` ``(M,)``
    (dead units' pairs are drawn grey), ``assignment_distance`` ``(N, M)`` (the LP's solution on
    ``-D``, marked with circles in panel c, as the paper's Fig. 2c shows both) and ``tasks_in_force``
    ``(N,)`` (the assignment the acting policy had at that state: Dec-LPMARL's local choice, or an
    earlier decision when ``tau > 1``; crosses in panel c where it differs from ``tasks``). ``high_level`` names
    the rule (lp, nolp, lpdist, greedy): for lpdist / greedy the scores are ``-D``, not learned costs,
    and panel a says so. Columns are labelled ``<task_prefix><j> (k=<capacity>)``. Returns the PNG path.
    """
    plt = _plt()
    C = np.asarray(snapshot["costs"], dtype=np.float64)
    D = np.asarray(snapshot["distances"], dtype=np.float64)
    Z = np.asarray(snapshot["assignment"], dtype=np.float64)
    cap = np.asarray(snapshot["capacity"]).astype(np.int64)
    n, m = C.shape
    if D.shape != (n, m) or Z.shape != (n, m) or cap.shape != (m,):
        raise ValueError(f"snapshot shapes disagree: costs {C.shape}, distances {D.shape}, assignment {Z.shape}, "
                         f"capacity {cap.shape}")
    a_alive = np.asarray(snapshot.get("agent_alive", np.ones(n, dtype=bool)), dtype=bool)
    t_alive = np.asarray(snapshot.get("task_alive", np.ones(m, dtype=bool)), dtype=bool)
    allowed = a_alive[:, None] & t_alive[None, :]
    rows = [f"A{i}" if a_alive[i] else f"A{i} (dead)" for i in range(n)]
    cols = [f"{task_prefix}{j} (k={cap[j]})" if t_alive[j] else f"{task_prefix}{j} (dead)" for j in range(m)]
    learned = high_level in _LEARNED
    cost_title = ("(a) learned costs C_theta(s) (maximised)" if learned else
                  f"(a) -D: {high_level} has no learned cost (maximised)")
    z_title = _DECISION_TITLE.get(high_level, "(c) the high level's assignment")
    zd = snapshot.get("assignment_distance")
    if zd is not None and high_level != "lpdist":
        z_title += "\n(o: the LP's solution on -D)"

    w = max(3.4, 0.75 * m + 1.9)
    h = max(3.0, 0.42 * n + 1.9)
    fig, axes = plt.subplots(1, 3, figsize=(3 * w, h), squeeze=False, sharey=True)
    ax_c, ax_d, ax_z = axes[0]
    grey = "0.85"
    for ax, vals, cm, ttl in ((ax_c, C, "viridis", cost_title),
                              (ax_d, D, "viridis_r", "(b) distances D (reversed colours: near = bright)")):
        shown = np.where(allowed, vals, np.nan)
        finite = shown[np.isfinite(shown)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        fmt = _value_format(lo, hi)
        im = ax.imshow(shown, cmap=plt.get_cmap(cm).with_extremes(bad=grey), vmin=lo, vmax=hi,
                       interpolation="nearest", aspect="auto")
        if n * m <= 150:  # the values written in the cells (too small to read beyond that)
            _annotate(ax, vals, allowed, fmt, lo, hi, reverse=cm.endswith("_r"))
        ax.set_title(ttl, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    zshow = np.where(allowed, Z, np.nan)
    ax_z.imshow(zshow, cmap=plt.get_cmap("Blues").with_extremes(bad=grey), vmin=0.0, vmax=1.25,
                interpolation="nearest", aspect="auto")
    for i in range(n):
        for j in range(m):
            if allowed[i, j]:
                ax_z.text(j, i, f"{int(round(Z[i, j]))}", ha="center", va="center", fontsize=9,
                          color="white" if Z[i, j] > 0.5 else "0.35")
    if zd is not None and high_level != "lpdist":
        ii, jj = np.nonzero(np.asarray(zd) > 0.5)
        ax_z.scatter(jj, ii, s=420, facecolors="none", edgecolors="C3", linewidths=1.6)
    force = snapshot.get("tasks_in_force")
    tasks = snapshot.get("tasks")
    if force is not None and tasks is not None and not np.array_equal(np.asarray(force), np.asarray(tasks)):
        f = np.asarray(force, dtype=np.int64)
        ii = np.flatnonzero(f >= 0)
        ax_z.scatter(f[ii], ii, s=150, marker="x", color="C1", linewidths=2.0)
        z_title += "\n(x: the assignment the evaluation policy had in force)"
    used = Z.sum(0)
    ax_z.set_title(z_title, fontsize=9)
    for ax in (ax_c, ax_d, ax_z):
        ax.set_xticks(range(m))
        ax.set_xticklabels(cols, rotation=30 if m > 3 else 0, ha="right" if m > 3 else "center", fontsize=8)
        ax.set_yticks(range(n))
        ax.set_yticklabels(rows, fontsize=8)
        ax.set_xlabel("tasks" if task_prefix != "L" else "landmarks", fontsize=8)
    ax_c.set_ylabel("agents", fontsize=8)
    ax_z.set_xlabel("used / capacity: " + ", ".join(f"{int(used[j])}/{cap[j]}" for j in range(m)), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(plt, fig, path)



# ---------------------------------------------------------------------------------------------
# LPMARL Fig. 3 / Fig. 8


@dataclass
class EpisodeRecord:
    """One greedy episode of an LPMARL policy, step by step (what Fig. 3 / Fig. 8 draw).

    Step ``t`` (``0 .. L-1``) acts on state ``t`` and leads to state ``t + 1``; ``tasks[t]`` is the
    assignment in force during step ``t`` (``-1``: dead agent), ``capacity[t]`` the capacities the
    high level saw at state ``t``; the per-state arrays have ``L + 1`` rows (state 0 is the reset).
    """

    family: str                  # navigation | combat
    tasks: np.ndarray            # (L, N) int
    capacity: np.ndarray         # (L, M) int
    agent_alive: np.ndarray      # (L + 1, N) bool
    task_alive: np.ndarray       # (L + 1, M) bool
    agent_positions: np.ndarray  # (L + 1, N, 2)
    task_positions: np.ndarray   # (L + 1, M, 2)
    decision_steps: list[int]    # steps at which the high level decided
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def length(self) -> int:
        return int(self.tasks.shape[0])

    def event_steps(self) -> list[int]:
        """States ``t`` (``1 .. L``) where some unit had died during the step before (combat's re-decisions)."""
        a = self.agent_alive.sum(1)
        e = self.task_alive.sum(1)
        return [t for t in range(1, self.length + 1) if a[t] != a[t - 1] or e[t] != e[t - 1]]


def plot_assignment_timeline(record: EpisodeRecord, path: str | Path, title: str = "", *,
                             mark_step: int | None = None, task_prefix: str | None = None) -> Path:
    """LPMARL Fig. 3 (navigation) / Fig. 8 (combat): an episode's agent-task assignment over time.

    Left / top: agents x steps, each cell coloured by the task in force during that step (grey: dead
    agent); step ``t`` spans ``[t, t + 1)`` on the time axis. Navigation, right: the agents'
    trajectories (o: start, triangle: end) coloured by their final landmark, the landmarks as squares
    in their colour with their capacities (the paper's "agent-landmark with the same color").
    Combat, bottom: living allies and enemies over time, with vertical lines where a unit died (the
    high level re-decides there, App. F.2), also drawn across the assignment chart. ``mark_step``
    draws a dashed line at that state (the Fig. 2 snapshot). Returns the PNG path.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    plt = _plt()
    tasks = np.asarray(record.tasks, dtype=np.int64)
    L, n = tasks.shape
    m = record.task_alive.shape[1]
    prefix = task_prefix or ("L" if record.family == "navigation" else "E")
    colors = _task_colors(m)
    img = np.full((n, L, 4), 0.82)
    img[..., 3] = 1.0
    for t in range(L):
        for i in range(n):
            if tasks[t, i] >= 0:
                img[i, t] = colors[tasks[t, i]]
    events = record.event_steps()
    if record.family == "navigation":
        fig, (ax_t, ax_p) = plt.subplots(1, 2, figsize=(13.0, max(4.2, 0.32 * n + 2.4)),
                                         gridspec_kw={"width_ratios": [1.5, 1.0]})
    else:
        fig, (ax_t, ax_p) = plt.subplots(2, 1, figsize=(11.0, max(5.0, 0.3 * n + 4.0)), sharex=True,
                                         gridspec_kw={"height_ratios": [max(1.0, n / 4), 1.0]})
    ax_t.imshow(img, extent=(0, L, n, 0), aspect="auto", interpolation="nearest")
    ax_t.set_yticks(np.arange(n) + 0.5)
    ax_t.set_yticklabels([f"A{i}" for i in range(n)], fontsize=8)
    ax_t.set_ylabel("agents", fontsize=9)
    ax_t.set_xlabel("time step t (step t spans [t, t+1))", fontsize=9)
    ax_t.set_title("assigned task per agent and step (grey: dead)", fontsize=9)
    cap0 = record.capacity[0] if L else np.zeros(m, dtype=np.int64)
    nav = record.family == "navigation"  # fixed capacities: in the legend (combat's change at every death)
    handles: list[Any] = [Patch(color=colors[j], label=f"{prefix}{j} (k={int(cap0[j])})" if nav else f"{prefix}{j}")
                          for j in range(m)]
    if (tasks < 0).any():
        handles.append(Patch(color="0.82", label="dead"))
    for t in events:
        for ax in (ax_t, ax_p):
            ax.axvline(t, color="k", lw=0.9, alpha=0.55)
    if mark_step is not None:
        ax_t.axvline(mark_step, color="C3", lw=1.4, ls="--", label=f"Fig. 2 state (t={mark_step})")
        handles.append(Line2D([0], [0], color="C3", lw=1.4, ls="--", label=f"Fig. 2 state (t={mark_step})"))
    ax_t.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)

    if record.family == "navigation":
        pos = np.asarray(record.agent_positions, dtype=np.float64)
        lm = np.asarray(record.task_positions, dtype=np.float64)[0]  # landmarks do not move
        final = tasks[-1] if L else np.full(n, -1)
        for i in range(n):
            c = colors[final[i]] if final[i] >= 0 else (0.5, 0.5, 0.5, 1.0)
            ax_p.plot(pos[:, i, 0], pos[:, i, 1], "-", color=c, lw=1.2, alpha=0.85)
            ax_p.plot(pos[0, i, 0], pos[0, i, 1], "o", mfc="none", mec=c, ms=6)
            ax_p.plot(pos[-1, i, 0], pos[-1, i, 1], "^", color=c, ms=7, mec="k", mew=0.5)
            ax_p.annotate(f"A{i}", pos[-1, i], textcoords="offset points", xytext=(4, -9), fontsize=7)
        for j in range(m):
            ax_p.plot(lm[j, 0], lm[j, 1], "s", color=colors[j], ms=15, mec="k", mew=1.0)
            ax_p.text(lm[j, 0], lm[j, 1], str(int(cap0[j])), ha="center", va="center", fontsize=8,
                      weight="bold", color="white")
        ax_p.set_aspect("equal", adjustable="datalim")
        ax_p.set_title("trajectories (o start, triangle end) coloured by the final landmark;\n"
                       "squares: the landmarks, each with its capacity k", fontsize=9)
        ax_p.set_xlabel("x", fontsize=9)
        ax_p.set_ylabel("y", fontsize=9)
    else:
        ts = np.arange(L + 1)
        ax_p.step(ts, record.agent_alive.sum(1), where="post", color="C0", lw=1.8, label="allies alive")
        ax_p.step(ts, record.task_alive.sum(1), where="post", color="C3", lw=1.8, label="enemies alive")
        top = int(max(n, m))
        ax_p.set_ylim(-0.3, top + 0.5)
        ax_p.set_yticks(range(top + 1))
        ax_p.set_xlim(0, max(L, 1))
        ax_p.set_xlabel("time step t (vertical lines: a unit died, the high level re-decides)", fontsize=9)
        ax_p.set_ylabel("units alive", fontsize=9)
        ax_p.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        ax_t.set_xlabel("")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(plt, fig, path)


# ---------------------------------------------------------------------------------------------
# a trained run


@dataclass
class RunLearner:
    """An LPMARL run's learner at its newest checkpoint, and the env its evaluation runs on."""

    learner: Any
    eval_env: Any
    algo: str
    env: str
    seed: int
    eval_seed: int
    step: int


def load_run_learner(run_dir: Path) -> RunLearner:
    """Rebuild an LPMARL-family run's learner (as ``hieralloc eval`` does) and load its newest checkpoint.

    Raises a one-line :class:`~hieralloc.errors.HierallocError` for a run of another algorithm and for
    a run without a checkpoint.
    """
    import torch

    from hieralloc.runs import RunDir, config_hash
    from hieralloc.train import EVAL_SEED_OFFSET, load_run, make_envs

    run_dir = Path(run_dir)
    tree = RunDir(run_dir).read_config()  # CheckpointError when this is not a run directory
    algo = str(tree["algo"])
    if algo not in LPMARL_ALGOS:
        raise IncompatibleError(f"'{run_dir}' is a run of {algo}: LPMARL's pictures (Fig. 2, 3, 8) are drawn for "
                                f"{' / '.join(LPMARL_ALGOS)} runs")
    resolved, rd = load_run(run_dir)
    if not rd.checkpoints():
        raise CheckpointError(f"run '{run_dir}' has no checkpoint (checkpoints/ckpt_*.pt): train it first "
                              "('hieralloc train ... --out RUN_DIR', or add --resume for an interrupted run)")
    torch.set_num_threads(resolved.train_cfg.threads)
    torch.manual_seed(resolved.seed)
    train_env, eval_env = make_envs(resolved)
    learner: Any = resolved.algo_spec.build(train_env, resolved.algo_cfg, resolved.seed)
    ckpt = rd.latest_checkpoint(config_hash(resolved.tree))
    if ckpt is None:  # pragma: no cover - checked above; a race with a deleting process
        raise CheckpointError(f"run '{run_dir}' has no checkpoint: train it first")
    learner.load_state_dict(ckpt["payload"]["learner"])
    return RunLearner(learner, eval_env, algo, str(tree["env"]), resolved.seed, resolved.seed + EVAL_SEED_OFFSET,
                      int(ckpt["step"]))


def _distance_lp(learner: Any, snap: dict[str, Any]) -> np.ndarray:
    """``Z*`` of the LP of Eq. (4)-(7) on ``-D`` (LP-distance, App. F.1.3) for the snapshot's state."""
    import torch

    from hieralloc.lpmarl.assign import lp_assign

    method: Any = learner.cfg.lp_method
    with torch.no_grad():
        z = lp_assign(-torch.from_numpy(np.asarray(snap["distances"], dtype=np.float64))[None],
                      np.asarray(snap["capacity"])[None], agent_mask=np.asarray(snap["agent_alive"])[None],
                      task_mask=np.asarray(snap["task_alive"])[None], method=method)
    return np.asarray(z[0].numpy(), dtype=np.float64)


def play_episode(learner: Any, env: Any, seed: int, episode: int = 0, snapshot_step: int | None = None
                 ) -> tuple[EpisodeRecord, dict[str, Any] | None]:
    """Play greedy evaluation episode ``episode`` of ``learner.policy`` on ``env`` through
    :func:`hieralloc.eval.evaluate` (evaluation seed ``seed``, so the episode ``hieralloc eval`` plays)
    and record it; at state ``snapshot_step`` also take the centralised high level's
    :meth:`~LPMARLLearner.cost_snapshot` (Fig. 2; for Dec-LPMARL the LP whose assignments its local
    policy imitates), with the alive masks and the LP-distance solution added."""
    from hieralloc.algos.lpmarl.graph import family_of
    from hieralloc.eval import evaluate

    base = getattr(env, "unwrapped", env)
    fam = family_of(base, learner.cfg.task_reward_dense, learner.algo_name)
    policy = learner.policy
    tau = int(learner.cfg.tau)
    tasks: list[np.ndarray] = []
    caps: list[np.ndarray] = []
    a_alive: list[np.ndarray] = []
    t_alive: list[np.ndarray] = []
    a_pos: list[np.ndarray] = []
    t_pos: list[np.ndarray] = []
    decisions: list[int] = []
    snap: dict[str, Any] | None = None

    def observe(t: int, _env: Any) -> None:  # state t, before the policy acts on it (t = L: the end)
        nonlocal snap
        if t > 0:  # what the policy did at state t - 1
            z = policy.assignment
            tasks.append(np.asarray(z, dtype=np.int64).copy() if z is not None else np.full(len(a_alive[0]), -1))
            if (int(policy.clock) - 1) % tau == 0:  # the high level's clock (reset at events) was due
                decisions.append(t - 1)
            if snap is not None and t - 1 == snapshot_step:
                snap["tasks_in_force"] = tasks[-1].copy()
        g = fam.graph(base)
        a_alive.append(g.agent_alive.copy())
        t_alive.append(g.task_alive.copy())
        caps.append(g.capacity.copy())
        if fam.name == "navigation":
            a_pos.append(base.agent_positions())
            t_pos.append(base.landmark_positions())
        else:
            a_pos.append(base.ally_positions())
            t_pos.append(base.enemy_positions())
        if t == snapshot_step and env.agents:
            snap = dict(learner.cost_snapshot(base))
            snap["agent_alive"] = g.agent_alive.copy()
            snap["task_alive"] = g.task_alive.copy()
            snap["assignment_distance"] = _distance_lp(learner, snap)

    (metrics,) = evaluate(policy, env, 1, seed, first=episode, observe=observe)
    n, m = len(a_alive[0]), len(t_alive[0])
    record = EpisodeRecord(fam.name, np.stack(tasks) if tasks else np.zeros((0, n), dtype=np.int64),
                           np.stack(caps[:-1]) if len(caps) > 1 else np.zeros((0, m), dtype=np.int64),
                           np.stack(a_alive), np.stack(t_alive), np.stack(a_pos), np.stack(t_pos), decisions,
                           {str(k): float(v) for k, v in metrics.items()})
    return record, snap


def _outcome(record: EpisodeRecord) -> str:
    """``, won`` / ``, lost`` / ... for a title (navigation's win is the success condition, Sec. 5.1)."""
    m = record.metrics
    if record.family == "navigation":
        return "" if "win" not in m else (", success" if m["win"] > 0.5 else ", no success")
    for key in ("win", "loss", "draw", "timeout"):
        if m.get(key, 0.0) > 0.5:
            return {"win": ", won", "loss": ", lost", "draw": ", draw", "timeout": ", time out"}[key]
    return ""


def plot_run(run_dir: Path, out: Path | None = None, episode: int = 0, step: int = 0) -> list[Path]:
    """Draw LPMARL Fig. 2 (state ``step`` of evaluation episode ``episode``) and Fig. 3 / Fig. 8 (that
    episode's assignment over time) for a trained LPMARL-family run into ``out`` (default
    ``RUN_DIR/plots``), with the numbers in ``lpmarl_assignment_ep<K>.json``; returns the two PNG paths
    and the JSON path."""
    from hieralloc.eval import episode_seed
    from hieralloc.runs import atomic_write_json

    run_dir = Path(run_dir)
    if episode < 0:
        raise HierallocError(f"--episode {episode} is negative: evaluation episodes are numbered 0, 1, 2, ...")
    if step < 0:
        raise HierallocError(f"--step {step} is negative: an episode's states are numbered 0, 1, 2, ...")
    rl = load_run_learner(run_dir)
    lr = rl.learner
    seed = episode_seed(rl.eval_seed, episode)
    record, snap = play_episode(lr, rl.eval_env, rl.eval_seed, episode, snapshot_step=step)
    if snap is None:
        raise HierallocError(f"--step {step} is beyond evaluation episode {episode} of '{run_dir}': it lasts "
                             f"{record.length} steps (--step 0..{record.length - 1})")
    out_dir = Path(out) if out is not None else run_dir / "plots"
    high = str(lr.cfg.high_level)
    prefix = "L" if record.family == "navigation" else "E"
    win = record.metrics.get("win")
    outcome = _outcome(record)
    where = f"{rl.algo} on {rl.env} (checkpoint step {rl.step}), evaluation episode {episode}"
    scorer = "the centralised LP (Dec-LPMARL's teacher)" if lr.cfg.decentralised else f"high level '{high}'"
    costs_png = plot_cost_matrices(
        snap, out_dir / f"lpmarl_costs_ep{episode}_t{step}.png",
        f"LPMARL Fig. 2: {where}, state t={step}; {scorer}", high_level=high, task_prefix=prefix)
    fig_name = "Fig. 3" if record.family == "navigation" else "Fig. 8"
    timeline_png = plot_assignment_timeline(
        record, out_dir / f"lpmarl_assignment_ep{episode}.png",
        f"LPMARL {fig_name}: {where}, {record.length} steps{outcome}", mark_step=step, task_prefix=prefix)
    json_path = out_dir / f"lpmarl_assignment_ep{episode}.json"
    atomic_write_json(json_path, {
        "figures": {"costs": costs_png.name, "assignment": timeline_png.name,
                    "paper": f"LPMARL Fig. 2 (costs) and {fig_name} (assignment over time)"},
        "run_dir": str(run_dir), "algo": rl.algo, "env": rl.env, "family": record.family,
        "checkpoint_step": rl.step, "high_level": high, "decentralised": bool(lr.cfg.decentralised),
        # the policy that played the episode: Dec-LPMARL's local high level, or the centralised one
        "policy_decentralised": bool(getattr(lr.policy, "decentralised", False)),
        "tau": int(lr.cfg.tau), "episode": int(episode), "eval_seed": rl.eval_seed, "episode_seed": seed,
        "step": int(step), "length": record.length, "win": win, "metrics": record.metrics,
        "costs_are": "C_theta(s)" if high in _LEARNED else "-D",
        "snapshot": {k: np.asarray(v) for k, v in snap.items()},
        "timeline": {
            "tasks": record.tasks, "capacity": record.capacity, "agent_alive": record.agent_alive,
            "task_alive": record.task_alive, "decision_steps": record.decision_steps,
            "event_steps": record.event_steps(), "agent_positions": record.agent_positions,
            "task_positions": record.task_positions,
        },
    })
    return [costs_png, timeline_png, json_path]


__all__ = ["LPMARL_ALGOS", "EpisodeRecord", "RunLearner", "load_run_learner", "play_episode",
           "plot_assignment_timeline", "plot_cost_matrices", "plot_run"]
