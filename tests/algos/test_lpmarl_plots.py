"""``hieralloc plot RUN_DIR`` for LPMARL runs: Fig. 2 (costs, distances, LP solution of one state) and
Fig. 3 / Fig. 8 (an evaluation episode's assignment over time), from real run directories written by the
real CLI, plus the dispatch by algorithm and its one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import run_cli

PNG = b"\x89PNG\r\n\x1a\n"
#: tiny networks; batch_size 1 so the one training episode is followed by an update
TINY = ["algo.batch_size=1", "algo.gnn_units=[8,8]", "algo.cost_units=[8]", "algo.critic_units=[8]",
        "algo.policy_units=[8]"]
RUNS: dict[str, list[str]] = {
    # one training episode each (train.steps=1 stops after the first episode), then the final evaluation
    "nav": ["navigation-3x5", "lpmarl", *TINY, "train.steps=1", "train.eval_episodes=1"],
    "combat": ["combat-3v3", "dec-lpmarl", *TINY, "train.steps=1", "train.eval_episodes=2"],
    "greedy": ["navigation-3x5", "lpmarl-greedy", *TINY, "train.steps=1", "train.eval_episodes=1"],
    # for the dispatch's refusals: an hgrl run and a run of an algorithm without run plots
    "hgrl": ["coverage-small", "hgrl", "algo.batch_size=2", "algo.hidden=8", "train.steps=8",
             "algo.features.source=truth", "train.eval_episodes=1"],
    "random": ["coverage-toy", "random", "train.eval_episodes=1"],
}


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The real CLI entry point in this process (``hieralloc.cli.main``): exit status, stdout, stderr
    (argparse's refusals exit through SystemExit, whose code is returned)."""
    from hieralloc.cli import main

    capsys.readouterr()
    try:
        rc = main(list(args))
    except SystemExit as e:
        rc = int(e.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err


def _one_error_line(rc: int, err: str) -> str:
    assert rc != 0
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error:"), lines[0]
    assert "Traceback" not in err
    return lines[0]


def _valid_png(p: Path) -> None:
    data = p.read_bytes()
    assert data[:8] == PNG and len(data) > 10_000, (p, len(data))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real run directories written by 'hieralloc train' (the CLI's entry point, in this process)."""
    from hieralloc.cli import main

    root = tmp_path_factory.mktemp("lpmarl_runs")
    out: dict[str, Path] = {}
    for name, (env, algo, *over) in RUNS.items():
        out[name] = root / name
        assert main(["train", env, algo, *over, "--seed", "1", "--quiet", "--out", str(out[name])]) == 0, name
    # a run whose process died before its first checkpoint: the directory without checkpoints/
    out["no_ckpt"] = root / "no_ckpt"
    shutil.copytree(out["nav"], out["no_ckpt"])
    shutil.rmtree(out["no_ckpt"] / "checkpoints")
    return out


def _check_capacities(assignment: np.ndarray, capacity: np.ndarray, agent_alive: np.ndarray) -> None:
    """A 0/1 assignment of Eq. (5)-(7): one task per living agent, none for a dead one, within the capacities."""
    assert set(np.unique(assignment)) <= {0.0, 1.0}
    assert np.array_equal(assignment.sum(1), agent_alive.astype(float))
    assert (assignment.sum(0) <= capacity).all(), (assignment, capacity)


def test_algorithms_are_the_learner_variants() -> None:
    from hieralloc.algos.lpmarl import VARIANTS
    from hieralloc.algos.lpmarl.plots import LPMARL_ALGOS

    assert set(LPMARL_ALGOS) == set(VARIANTS)


def test_navigation_run_fig2_and_fig3_through_the_installed_command(runs: dict[str, Path]) -> None:
    run = runs["nav"]
    r = run_cli("plot", str(run))  # the installed command end to end (defaults: episode 0, step 0)
    assert r.returncode == 0, r.stderr
    paths = [Path(p) for p in r.stdout.split()]
    names = ["lpmarl_costs_ep0_t0.png", "lpmarl_assignment_ep0.png", "lpmarl_assignment_ep0.json"]
    assert [p.name for p in paths] == names
    assert all(p.parent == run / "plots" for p in paths)
    for p in paths[:2]:
        _valid_png(p)
    d = json.loads(paths[2].read_text())
    assert (d["algo"], d["env"], d["family"], d["high_level"]) == ("lpmarl", "navigation-3x5", "navigation", "lp")
    assert (d["episode"], d["step"], d["costs_are"]) == (0, 0, "C_theta(s)")
    snap = {k: np.asarray(v) for k, v in d["snapshot"].items()}
    for k in ("costs", "distances", "assignment", "assignment_distance"):
        assert snap[k].shape == (5, 3), k
    assert snap["capacity"].shape == (3,) and snap["capacity"].sum() == 5
    _check_capacities(snap["assignment"], snap["capacity"], snap["agent_alive"])
    _check_capacities(snap["assignment_distance"], snap["capacity"], snap["agent_alive"])
    assert np.array_equal(snap["assignment"].argmax(1), snap["tasks"])
    assert np.isfinite(snap["costs"]).all()
    # the episode is evaluation episode 0 of the run: the same one 'hieralloc train' evaluated last
    summary = json.loads((run / "summary.json").read_text())
    ep0 = summary["episodes"][0]
    assert d["length"] == ep0["length"] and d["metrics"]["return"] == pytest.approx(ep0["return"], abs=1e-9)
    assert d["win"] == ep0["win"] and d["checkpoint_step"] == summary["steps"]
    tl = {k: np.asarray(v) for k, v in d["timeline"].items()}
    L = d["length"]
    assert tl["tasks"].shape == (L, 5) and tl["capacity"].shape == (L, 3)
    assert tl["agent_positions"].shape == (L + 1, 5, 2) and tl["task_positions"].shape == (L + 1, 3, 2)
    assert np.array_equal(snap["tasks_in_force"], tl["tasks"][0])
    # every step's assignment (the LP's, tau = 1: one decision per step) within that step's capacities
    assert d["tau"] == 1 and tl["decision_steps"].tolist() == list(range(L))
    for t in range(L):
        z = np.zeros((5, 3))
        z[np.arange(5), tl["tasks"][t]] = 1.0
        _check_capacities(z, tl["capacity"][t], tl["agent_alive"][t])


def test_combat_dec_lpmarl_episode_and_step_options(runs: dict[str, Path], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    run, figs = runs["combat"], tmp_path / "figs"
    rc, out, err = _cli(capsys, "plot", str(run), "--episode", "1", "--step", "2", "--out", str(figs))
    assert rc == 0, err
    names = ["lpmarl_costs_ep1_t2.png", "lpmarl_assignment_ep1.png", "lpmarl_assignment_ep1.json"]
    assert out.split() == [str(figs / n) for n in names]
    assert sorted(p.name for p in figs.iterdir()) == sorted(names)
    for n in names[:2]:
        _valid_png(figs / n)
    d = json.loads((figs / names[2]).read_text())
    assert (d["family"], d["decentralised"], d["policy_decentralised"], d["episode"], d["step"]) == \
        ("combat", True, True, 1, 2)
    snap = {k: np.asarray(v) for k, v in d["snapshot"].items()}
    for k in ("costs", "distances", "assignment", "assignment_distance"):
        assert snap[k].shape == (3, 3), k
    # panel c is the centralised LP (Dec-LPMARL's teacher): within the capacities of that state
    _check_capacities(snap["assignment"], snap["capacity"], snap["agent_alive"])
    _check_capacities(snap["assignment_distance"], snap["capacity"], snap["agent_alive"])
    summary = json.loads((run / "summary.json").read_text())
    ep1 = summary["episodes"][1]
    assert d["length"] == ep1["length"] and d["metrics"]["return"] == pytest.approx(ep1["return"], abs=1e-9)
    assert d["win"] == ep1["win"]
    tl = {k: np.asarray(v) for k, v in d["timeline"].items()}
    L = d["length"]
    assert tl["tasks"].shape == (L, 3) and tl["agent_alive"].shape == (L + 1, 3)
    assert tl["task_alive"].shape == (L + 1, 3)
    # dead agents have no task, living ones a living enemy
    assert np.array_equal(tl["tasks"] >= 0, tl["agent_alive"][:L])
    t_idx, i_idx = np.nonzero(tl["tasks"] >= 0)
    assert tl["task_alive"][t_idx, tl["tasks"][t_idx, i_idx]].all()
    alive = tl["agent_alive"].sum(1) + tl["task_alive"].sum(1)
    assert tl["event_steps"].tolist() == [t for t in range(1, L + 1) if alive[t] != alive[t - 1]]
    assert d["win"] in (0.0, 1.0)


def test_greedy_run_draws_minus_d_and_its_capacity_violations(runs: dict[str, Path], tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _cli(capsys, "plot", str(runs["greedy"]), "--step", "49", "--out", str(tmp_path))
    assert rc == 0, err
    d = json.loads((tmp_path / "lpmarl_assignment_ep0.json").read_text())
    assert (d["high_level"], d["costs_are"], d["step"]) == ("greedy", "-D", 49)
    snap = {k: np.asarray(v) for k, v in d["snapshot"].items()}
    assert np.allclose(snap["costs"], -snap["distances"], atol=1e-5)  # navigation: features are positions
    assert np.array_equal(snap["tasks"], snap["distances"].argmin(1))  # the nearest landmark, capacities ignored
    _check_capacities(snap["assignment_distance"], snap["capacity"], snap["agent_alive"])
    _valid_png(tmp_path / "lpmarl_costs_ep0_t49.png")


@pytest.mark.parametrize(
    ("run", "extra", "needle"),
    [
        ("no_ckpt", [], "train it first"),
        ("nav", ["--step", "500"], "--step 500 is beyond evaluation episode 0"),
        ("nav", ["--episode", "-1"], "--episode must be >= 0"),
        ("nav", ["--step", "-2"], "--step must be >= 0"),
        ("nav", ["--frame", "0"], "--frame picks a data-set frame of an hgrl run"),
        ("hgrl", ["--step", "1"], "--episode / --step pick the evaluation episode"),
        ("hgrl", ["--episode", "0"], "whose GDI-Net figures take --frame"),
        ("random", [], "plots of runs are drawn for hgrl runs"),
    ],
)
def test_errors_are_one_line(runs: dict[str, Path], capsys: pytest.CaptureFixture[str], run: str,
                             extra: list[str], needle: str) -> None:
    path = runs[run]
    rc, _, err = _cli(capsys, "plot", str(path), *extra)
    line = _one_error_line(rc, err)
    assert needle in line, line
    if run == "random":
        assert "lpmarl / dec-lpmarl / lpmarl-nolp / lpmarl-lpdist / lpmarl-greedy" in line and "results.json" in line
    if run == "nav" and "--step" in extra:
        assert "lasts 50 steps (--step 0..49)" in line or "must be >= 0" in line
    if run in ("no_ckpt", "hgrl", "random"):
        assert not (path / "plots").exists()


def test_benchmark_results_refuse_episode_and_step(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "results.json").write_text(json.dumps({}))
    for opt in ("--episode", "--step"):
        rc, _, err = _cli(capsys, "plot", str(tmp_path), opt, "0")
        line = _one_error_line(rc, err)
        assert "--episode / --step" in line and "benchmark's results" in line


def test_python_api_errors(runs: dict[str, Path], tmp_path: Path) -> None:
    from hieralloc.algos.lpmarl.plots import load_run_learner, plot_run
    from hieralloc.errors import CheckpointError, HierallocError, IncompatibleError

    with pytest.raises(HierallocError, match="--episode -1 is negative"):
        plot_run(runs["nav"], tmp_path, episode=-1)
    with pytest.raises(HierallocError, match="--step -1 is negative"):
        plot_run(runs["nav"], tmp_path, step=-1)
    with pytest.raises(IncompatibleError, match="is a run of hgrl"):
        load_run_learner(runs["hgrl"])
    with pytest.raises(CheckpointError, match="not a run directory"):
        load_run_learner(tmp_path / "nowhere")
    assert not any(tmp_path.iterdir())


def test_drawing_functions_on_a_fresh_learner(tmp_path: Path) -> None:
    """plot_cost_matrices / plot_assignment_timeline from plain arrays: a snapshot and an episode of an
    untrained learner (any N, M of the family: here the transfer size of Fig. 3, N=10, M=4)."""
    from hieralloc import registry
    from hieralloc.algos.lpmarl.plots import play_episode, plot_assignment_timeline, plot_cost_matrices
    from hieralloc.config import from_dict

    registry.load_builtins()
    env_spec, algo = registry.get_env("navigation"), registry.get_algo("lpmarl")
    env = env_spec.make(env_spec.default_config(n_agents=10, n_landmarks=4, episode_length=6))
    cfg: Any = from_dict(algo.config_cls, {"gnn_units": [8, 8], "cost_units": [8], "policy_units": [8],
                                           "critic_units": [8]})
    learner = algo.build(env, cfg, 0)
    record, snap = play_episode(learner, env, seed=5, snapshot_step=3)
    assert snap is not None and record.length == 6 and record.tasks.shape == (6, 10)
    _check_capacities(snap["assignment"], snap["capacity"], snap["agent_alive"])
    p1 = plot_cost_matrices(snap, tmp_path / "a" / "costs.png", "fresh", high_level="lp")
    p2 = plot_assignment_timeline(record, tmp_path / "a" / "timeline.png", "fresh", mark_step=3)
    for p in (p1, p2):
        _valid_png(p)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["costs.png", "timeline.png"]  # no temp files
    _, none = play_episode(learner, env, seed=5, snapshot_step=6)  # beyond the episode: no snapshot
    assert none is None
