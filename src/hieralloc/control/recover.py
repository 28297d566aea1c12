"""The goal-recovery experiment of OHIO App. C.1 on the double integrator, and its Fig. 5 analogue.

For every LQR setting (``R`` in {0, 0.2}, ``Q11`` in {3.5, ..., 5.5}, ``Q22 = 1``, for each horizon
``T``) the same sampled states and goals are driven through the controller, the goals are
recovered from the observations (the next state, or the controls) by the chosen inverse, and the
recovery errors are recorded. ``hieralloc lqr recover`` (control/cli.py) runs it; docs/methods/ohio-lqr.md
quotes the committed results.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hieralloc.config import Config, param
from hieralloc.control.lqr import (
    METHODS,
    OBSERVED,
    CEMInverseConfig,
    GDInverseConfig,
    GoalLQR,
    double_integrator,
    recover_goals,
)
from hieralloc.errors import ConfigError, DataError

RESULTS_FORMAT = "hieralloc-ohio-lqr-recover"
RESULTS_VERSION = 1

PAPER_R: tuple[float, ...] = (0.0, 0.2)                      # OHIO App. C.1
PAPER_Q11: tuple[float, ...] = (3.5, 4.0, 4.5, 5.0, 5.5)     # OHIO App. C.1 (Q22 = 1, Q12 = Q21 = 0)


@dataclass
class RecoverConfig(Config):
    """Settings of the App. C.1 recovery experiment (every field is a ``hieralloc lqr recover`` option)."""

    method: str = param("analytical", "inverse: analytical (Eq. 23/26), gd (Adam), cem, or all three",
                        choices=(*METHODS, "all"))
    observed: str = param("next_state", "what the data hold: the next state (Alg. 2), the controls (Alg. 3), "
                          "or both", choices=(*OBSERVED, "both"))
    horizon: tuple[int, ...] = param((1, 5), "LQR horizons T (low-level steps per goal) to test")
    R: tuple[float, ...] = param(PAPER_R, "control costs R to test (>= 0)")
    Q11: tuple[float, ...] = param(PAPER_Q11, "position costs Q11 to test (>= 0)")
    Q22: float = param(1.0, "velocity cost Q22", low=0.0)
    dt: float = param(0.5, "time step of the double integrator", low=0.0, low_open=True)
    samples: int = param(200, "transitions per setting (the same states and goals for every setting)", low=1)
    seed: int = param(0, "seed of the sampled states and goals (and of CEM)")
    state_range: float = param(1.0, "states are uniform in [-state_range, state_range]^2", low=0.0, low_open=True)
    goal_range: float = param(1.0, "goals are uniform in [-goal_range, goal_range]^2", low=0.0, low_open=True)
    examples: int = param(4, "transitions whose recovered goals are stored for the plot", low=0)
    gd: GDInverseConfig = field(default_factory=GDInverseConfig)
    cem: CEMInverseConfig = field(default_factory=CEMInverseConfig)

    def validate(self) -> None:
        super().validate()
        for key, values, integer in (("horizon", self.horizon, True), ("R", self.R, False),
                                     ("Q11", self.Q11, False)):
            if len(values) == 0:
                raise ConfigError(key, "needs at least one value")
            for v in values:
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise ConfigError(key, f"values must be finite numbers, got {v!r}")
                if integer and (int(v) != v or v < 1):
                    raise ConfigError(key, f"values must be integers >= 1 (low-level steps per goal), got {v!r}")
                if not integer and v < 0:
                    raise ConfigError(key, f"values must be >= 0 (costs), got {v!r}")

    @property
    def methods(self) -> tuple[str, ...]:
        return METHODS if self.method == "all" else (self.method,)

    @property
    def observations(self) -> tuple[str, ...]:
        return OBSERVED if self.observed == "both" else (self.observed,)


def error_bound(ctrl: GoalLQR, observed: str, tol: float) -> float:
    """Largest identifiable goal error a loss below ``tol`` allows: ``sqrt(k tol) / sigma_min(G)``.

    The loss is a mean over ``k`` observed entries (``n`` for a next state, ``T m`` for controls), so
    ``||G (u_hat - u)|| <= sqrt(k tol)`` and the error in the identifiable directions is at most that
    over the smallest non-zero singular value of the goal-to-observation map ``G``.
    """
    G = ctrl.observation_map(observed)[0]
    sv = np.linalg.svd(G, compute_uv=False)
    sv = sv[sv > 1e-10 * sv[0]]
    k = ctrl.n if observed == "next_state" else ctrl.horizon * ctrl.m
    return float(math.sqrt(k * tol) / sv[-1])


def _null_directions(ctrl: GoalLQR, observed: str) -> np.ndarray:
    """Orthonormal rows spanning the goal directions the observation cannot see (``(n - rank, n)``)."""
    G, _, rank = ctrl.observation_map(observed)
    V = np.linalg.svd(G)[2][rank:]
    lead = V[np.arange(V.shape[0]), np.argmax(np.abs(V) > 1e-12, axis=1)] if V.size else np.ones(0)
    return np.asarray(V * np.where(lead < 0, -1.0, 1.0)[:, None])      # sign fixed: first non-zero entry > 0


def sample_transitions(cfg: RecoverConfig) -> tuple[np.ndarray, np.ndarray]:
    """The states and goals of the experiment (shared by every setting): uniform boxes, fixed seed."""
    rng = np.random.default_rng(cfg.seed)
    states = rng.uniform(-cfg.state_range, cfg.state_range, size=(cfg.samples, 2))
    goals = rng.uniform(-cfg.goal_range, cfg.goal_range, size=(cfg.samples, 2))
    return states, goals


def run_recovery(cfg: RecoverConfig, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the experiment; returns the JSON-ready results (deterministic for a given config)."""
    from hieralloc import __version__

    A, B = double_integrator(cfg.dt)
    states, goals = sample_transitions(cfg)
    k = min(cfg.examples, cfg.samples)
    rows: list[dict[str, Any]] = []
    for T in cfg.horizon:
        for R in cfg.R:
            for q11 in cfg.Q11:
                ctrl = GoalLQR(A, B, np.diag([q11, cfg.Q22]), R, int(T))
                xs, acts = ctrl.rollout(states, goals)
                s_T = xs[:, -1, :]
                for observed in cfg.observations:
                    data = (states, s_T) if observed == "next_state" else (xs[:, :-1, :], acts)
                    proj = ctrl.identifiable_projector(observed)
                    for method in cfg.methods:
                        if progress is not None:
                            progress(f"{method:<10} {observed:<10} T={T} R={R:g} Q11={q11:g}")
                        res = recover_goals(ctrl, *data, method=method, observed=observed,
                                            gd=cfg.gd, cem=cfg.cem, seed=cfg.seed)
                        err = res.goal - goals
                        xs_hat, acts_hat = ctrl.rollout(states, res.goal)
                        tol = {"analytical": 0.0, "gd": cfg.gd.tol, "cem": cfg.cem.rerun_above}[method]
                        rows.append({
                            "method": method, "observed": observed, "horizon": int(T), "R": float(R),
                            "Q11": float(q11), "Q22": float(cfg.Q22),
                            "rank": ctrl.identifiable_rank(observed),
                            "goal_err_max": float(np.abs(err).max()),
                            "goal_err_identifiable_max": float(np.abs(err @ proj.T).max()),
                            "next_state_err_max": float(np.abs(xs_hat[:, -1, :] - s_T).max()),
                            "control_err_max": float(np.abs(acts_hat - acts).max()),
                            "loss_max": float(res.loss.max()),
                            "iterations_mean": float(res.iterations.mean()),
                            "iterations_max": int(res.iterations.max()),
                            "evaluations_per_transition": res.evaluations / cfg.samples,
                            "error_bound": error_bound(ctrl, observed, tol),
                            "unidentifiable_directions": _null_directions(ctrl, observed).tolist(),
                            "example_next_states": s_T[:k].tolist(),
                            "example_goals": res.goal[:k].tolist(),
                        })
    return {
        "format": RESULTS_FORMAT, "version": RESULTS_VERSION,
        "experiment": "OHIO App. C.1: goal recovery on the double integrator",
        "hieralloc_version": __version__,
        "config": cfg.to_dict(),
        "system": {"A": A.tolist(), "B": B.tolist()},
        "examples": {"states": states[:k].tolist(), "goals": goals[:k].tolist()},
        "rows": rows,
    }


TABLE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("method", "method", "s"), ("observed", "observed", "s"), ("horizon", "T", "d"), ("R", "R", "g"),
    ("Q11", "Q11", "g"), ("rank", "rank", "d"), ("goal_err_max", "goal err", ".1e"),
    ("goal_err_identifiable_max", "ident. goal err", ".1e"), ("next_state_err_max", "next-state err", ".1e"),
    ("control_err_max", "control err", ".1e"), ("loss_max", "max loss", ".1e"),
    ("iterations_mean", "iters", ".0f"),
)


def format_table(results: dict[str, Any]) -> str:
    """Plain-text table of the recovery errors (one line per setting)."""
    head = [c[1] for c in TABLE_COLUMNS]
    body = [[format(r[key], fmt) for key, _, fmt in TABLE_COLUMNS] for r in results["rows"]]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) for c, w in zip(b, widths, strict=True)) for b in body]
    return "\n".join(lines)


def markdown_summary(results: dict[str, Any]) -> str:
    """Markdown table: the worst case over Q11 per (method, observed, T, R) (docs/methods/ohio-lqr.md)."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in results["rows"]:
        groups.setdefault((r["method"], r["observed"], r["horizon"], r["R"]), []).append(r)
    lines = ["| method | observed | T | R | rank | goal err (max) | identifiable goal err (max) | next-state err (max) "
             "| control err (max) | loss (max) | iterations (mean) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for (method, observed, T, R), rs in groups.items():
        def worst(key: str, rs: list[dict[str, Any]] = rs) -> str:
            return f"{max(r[key] for r in rs):.1e}"
        iters = sum(r["iterations_mean"] for r in rs) / len(rs)
        lines.append(f"| {method} | {observed.replace('_', ' ')} | {T} | {R:g} | {min(r['rank'] for r in rs)} | "
                     f"{worst('goal_err_max')} | {worst('goal_err_identifiable_max')} | "
                     f"{worst('next_state_err_max')} | {worst('control_err_max')} | {worst('loss_max')} | "
                     f"{iters:.0f} |")
    return "\n".join(lines)


def load_results(path: Path) -> dict[str, Any]:
    """Read a results file written by :func:`run_recovery` (via the CLI), checking its format."""
    import json

    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: no such results file; write one with 'hieralloc lqr recover --out {path}'") from None
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: not a readable JSON file ({e}); rerun 'hieralloc lqr recover --out {path}'") from None
    if not isinstance(data, dict) or data.get("format") != RESULTS_FORMAT:
        raise DataError(f"{path}: field 'format' is not {RESULTS_FORMAT!r}; pass a file written by "
                        "'hieralloc lqr recover --out'")
    if data.get("version") != RESULTS_VERSION:
        raise DataError(f"{path}: field 'version' is {data.get('version')!r}, this hieralloc reads "
                        f"{RESULTS_VERSION}; rerun 'hieralloc lqr recover'")
    return data


def plot_recovery(results: dict[str, Any], path: Path, methods: Sequence[str] | None = None) -> Path:
    """Fig. 5 analogue: recovered goals per LQR setting, one panel per (method, observed, T) and R.

    Each panel is the goal space (position, velocity): start states (grey circles) joined to the true
    goals (black stars), and the goals recovered under each Q11 (crosses, coloured by Q11). Where the
    goal is identifiable the crosses sit on the stars; with ``T = 1`` each cross lies on a line (drawn
    thin, same colour) of goals that all produce the observation, and that line passes through the
    true goal. ``methods`` restricts the panels to those inverses.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows: Sequence[dict[str, Any]] = [r for r in results["rows"] if methods is None or r["method"] in methods]
    if not rows:
        raise DataError(f"no results for method(s) {', '.join(methods or [])}; the file holds "
                        f"{', '.join(sorted({r['method'] for r in results['rows']}))}")
    states = np.asarray(results["examples"]["states"], dtype=float).reshape(-1, 2)
    goals = np.asarray(results["examples"]["goals"], dtype=float).reshape(-1, 2)
    groups = list(dict.fromkeys((r["method"], r["observed"], r["horizon"]) for r in rows))
    rs = sorted({r["R"] for r in rows})
    q11s = sorted({r["Q11"] for r in rows})
    cmap = plt.get_cmap("viridis")
    fig, axes = plt.subplots(len(groups), len(rs), figsize=(4.2 * len(rs), 3.6 * len(groups)), squeeze=False)
    for gi, (method, observed, T) in enumerate(groups):
        for ri, R in enumerate(rs):
            ax = axes[gi][ri]
            for s, u in zip(states, goals, strict=True):
                ax.plot([s[0], u[0]], [s[1], u[1]], color="0.8", lw=0.8, zorder=1)
            ax.scatter(states[:, 0], states[:, 1], s=18, facecolors="none", edgecolors="0.5", label="state s",
                       zorder=2)
            ax.scatter(goals[:, 0], goals[:, 1], marker="*", s=120, color="k", label="true goal", zorder=3)
            for r in rows:
                if (r["method"], r["observed"], r["horizon"], r["R"]) != (method, observed, T, R):
                    continue
                rec = np.asarray(r["example_goals"], dtype=float).reshape(-1, 2)
                c = cmap(q11s.index(r["Q11"]) / max(len(q11s) - 1, 1))
                ax.scatter(rec[:, 0], rec[:, 1], marker="x", s=40, color=c, label=f"Q11={r['Q11']:g}", zorder=4)
                for v in np.asarray(r.get("unidentifiable_directions", []), dtype=float).reshape(-1, 2):
                    span = 3.0 * max(float(np.abs(goals).max(initial=1.0)), 1.0)
                    for g in rec:
                        ax.plot([g[0] - span * v[0], g[0] + span * v[0]], [g[1] - span * v[1], g[1] + span * v[1]],
                                color=c, lw=0.5, alpha=0.5, zorder=1)
            lim = 1.15 * max(float(np.abs(np.concatenate([states, goals])).max(initial=1.0)), 1e-9)
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
            ax.set_title(f"{method}, {observed.replace('_', ' ')}, T={T}, R={R:g}", fontsize=9)
            ax.set_xlabel("position")
            ax.set_ylabel("velocity")
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="best")
    fig.suptitle("Goals recovered by the inverse for different LQR settings (OHIO App. C.1, Fig. 5)", fontsize=10)
    fig.tight_layout(rect=(0.0, 0.0, 1.0, 1.0 - 0.4 / fig.get_figheight()))   # room for the title
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    try:
        fig.savefig(tmp, dpi=80)
        tmp.replace(path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path
