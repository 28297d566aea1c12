"""The benchmark runner end to end: cells, report files, marl-eval layout, skipping, failures."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from hieralloc.bench.report import plot_results
from hieralloc.bench.runner import BenchFailedError, run_bench
from hieralloc.errors import ConfigError, HierallocError, UnknownNameError

SPEC: dict[str, Any] = {
    "name": "tiny",
    "envs": ["bt-env"],
    "algos": [
        "bt-const",
        {"name": "bt-learner", "overrides": {"train.steps": 16, "train.eval_every": 8}},
        "bt-oracle",
    ],
    "seeds": 2,
    "budget": {"train.eval_episodes": 3},
    "metrics": ["served", {"key": "decision_ms", "direction": "lower"}],
    "reference": {"algo": "bt-oracle", "numerator": "served", "bound": "policy/bound"},
    "relative_scores": [{"key": "rel", "higher": "served", "lower": "length"}],
    "stats": {"reps": 200},
}


def check_marl_eval_layout(results: dict[str, Any]) -> None:
    """env -> task -> algo -> seed -> {step_<k>: {step_count, metric: [..]}, absolute_metrics: {..}}."""
    assert isinstance(results, dict) and results
    for tasks in results.values():
        for algos in tasks.values():
            for runs in algos.values():
                for seed_key, run in runs.items():
                    assert seed_key.startswith("seed_")
                    assert "absolute_metrics" in run
                    steps = [k for k in run if k != "absolute_metrics"]
                    assert steps == [f"step_{i}" for i in range(len(steps))] and steps
                    counts = [run[k]["step_count"] for k in steps]
                    assert counts == sorted(counts) and all(isinstance(c, int) for c in counts)
                    for k in steps:
                        for m, vals in run[k].items():
                            if m != "step_count":
                                assert isinstance(vals, list) and vals
                    for vals in run["absolute_metrics"].values():
                        assert isinstance(vals, list) and all(isinstance(v, float) for v in vals)


def _mtimes(out: Path) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in sorted(out.glob("runs/*/*/*/summary.json"))}


@pytest.mark.usefixtures("bt_registry")
def test_run_bench_end_to_end_and_skip_finished(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "res"
    assert run_bench(SPEC, out=out, jobs=1, quiet=True) == out
    for name in ("results.json", "results.md", "bench.json", "spec.yaml", "bars_bt-env.png", "curves_bt-env.png"):
        assert (out / name).is_file(), name
    results = json.loads((out / "results.json").read_text())
    check_marl_eval_layout(results)
    algos = results["benchtest"]["bt-env"]
    assert set(algos) == {"bt-const", "bt-learner", "bt-oracle"}
    learner = algos["bt-learner"]["seed_1"]
    assert [learner[f"step_{i}"]["step_count"] for i in range(2)] == [8, 16]
    assert learner["step_0"]["served"] == [8.0]  # intermediate point: the mean
    assert learner["step_1"]["served"] == [16.0] * 3  # final point: per episode
    const = algos["bt-const"]["seed_0"]["absolute_metrics"]
    assert const["served"] == [8.0] * 3 and const["frac_oracle_bound"] == [0.5] * 3
    assert algos["bt-oracle"]["seed_0"]["absolute_metrics"]["policy/bound"] == [16.0] * 3
    assert list(algos["bt-oracle"]["seed_0"]) == ["step_0", "absolute_metrics"]

    md = (out / "results.md").read_text()
    assert "| bt-const | 8 [8, 8] |" in md and "| bt-oracle † |" in md
    assert "fraction of oracle bound" in md and "0.5 [0.5, 0.5]" in md
    meta = json.loads((out / "bench.json").read_text())
    summ = meta["summary"]["bt-env"]["bt-learner"]["frac_oracle_bound"]
    assert summ["mean"] == 1.0 and summ["n_seeds"] == 2 and summ["n_values"] == 6
    # served: const 8, learner 16; length equal -> min-max 0: 0.5 * (0, 1) - 0.5 * (0, 0)
    assert meta["relative_scores"]["bt-env"]["rel"] == {"bt-const": 0.0, "bt-learner": 0.5}
    assert "| bt-learner | 0.5 |" in md

    before = _mtimes(out)
    assert len(before) == 6
    run_bench(SPEC, out=out, jobs=1, quiet=False)  # nothing to do: every cell is finished
    assert _mtimes(out) == before
    shown = capsys.readouterr()
    assert "bt-const" in shown.out and "results.md" in shown.out

    # a cell killed before it finished is run again; the others are not
    (out / "runs/bt-env/bt-const/seed_1/summary.json").unlink()
    run_bench({**SPEC, "seeds": 3}, out=out, jobs=1, quiet=True)
    after = _mtimes(out)
    assert len(after) == 9
    changed = {k for k in after if before.get(k) != after[k]}
    assert changed == {"runs/bt-env/bt-const/seed_1/summary.json"} | {
        f"runs/bt-env/{a}/seed_2/summary.json" for a in ("bt-const", "bt-learner", "bt-oracle")
    }

    # another budget is another config: cells are re-run and the old ones moved aside
    one = {**SPEC, "algos": ["bt-const"], "seeds": 1, "budget": {"train.eval_episodes": 2}, "reference": None}
    run_bench(one, out=out, jobs=1, quiet=True)
    assert (out / "runs/bt-env/bt-const/seed_0.stale-1/summary.json").is_file()
    res = json.loads((out / "results.json").read_text())
    assert res["benchtest"]["bt-env"]["bt-const"]["seed_0"]["absolute_metrics"]["served"] == [8.0, 8.0]

    # plots again from results.json alone (the CLI's 'hieralloc plot')
    pngs = plot_results(out, tmp_path / "plots")
    assert [p.name for p in pngs] == ["bars_bt-env.png"] and pngs[0].stat().st_size > 1000
    (out / "bench.json").unlink()
    assert plot_results(out / "results.json", tmp_path / "plots2")


@pytest.mark.usefixtures("bt_registry")
def test_failed_cell_reports_one_line_and_others_finish(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "res"
    spec = {**SPEC, "algos": ["bt-const", "bt-fail"], "reference": None}
    with pytest.raises(BenchFailedError) as err:
        run_bench(spec, out=out, jobs=1, quiet=True)
    assert err.value.exit_code != 0
    log = out / "runs/bt-env/bt-fail/seed_1/error.log"
    assert "boom on seed 1" in log.read_text()
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("failed:")]
    assert lines == [f"failed: bt-fail on bt-env seed 1: RuntimeError: boom on seed 1 (log: {log})"]
    assert (out / "runs/bt-env/bt-fail/seed_0/summary.json").is_file()
    assert "bt-fail on bt-env seed 1" in (out / "results.md").read_text()  # listed as missing
    assert "seed_1" not in json.loads((out / "results.json").read_text())["benchtest"]["bt-env"]["bt-fail"]


@pytest.mark.usefixtures("bt_registry")
def test_errors_before_anything_runs(tmp_path: Path) -> None:
    out = tmp_path / "res"
    with pytest.raises(UnknownNameError):
        run_bench({**SPEC, "algos": ["bt-const", "nope"], "reference": None}, out=out, jobs=1, quiet=True)
    with pytest.raises(ConfigError, match="train.nosuch"):
        run_bench({**SPEC, "budget": {"train.nosuch": 1}}, out=out, jobs=1, quiet=True)
    assert not out.exists()
    with pytest.raises(HierallocError, match="marl-eval"):
        bad = tmp_path / "results.json"
        bad.write_text('{"a": {"b": {"c": {"seed_0": {}}}}}')
        plot_results(bad)


def test_parallel_run_on_coverage_env(tmp_path: Path) -> None:
    """Two heuristics x two seeds on the real coverage env, in two worker processes."""
    from hieralloc import registry

    registry.load_builtins()
    out = tmp_path / "cov"
    spec = {
        "name": "cov-tiny",
        "envs": ["coverage-small"],
        "algos": ["random", "greedy-local"],
        "seeds": 2,
        "budget": {"train.eval_episodes": 2},
        "plots": ["bars"],
        "stats": {"reps": 200},
    }
    run_bench(spec, out=out, jobs=2, quiet=True)
    results = json.loads((out / "results.json").read_text())
    check_marl_eval_layout(results)
    runs = results["coverage"]["coverage-small"]
    assert set(runs) == {"random", "greedy-local"} and set(runs["greedy-local"]) == {"seed_0", "seed_1"}
    ret = runs["greedy-local"]["seed_0"]["absolute_metrics"]["return"]
    assert len(ret) == 2 and all(math.isfinite(v) for v in ret)
    assert (out / "bars_coverage-small.png").is_file()


def test_curve_summary_follows_epymarl_definitions() -> None:
    from hieralloc.bench.report import curve_summary

    def run(vals: list[float]) -> dict:
        out = {f"step_{k}": {"step_count": 100 * (k + 1), "return": [v, v]} for k, v in enumerate(vals)}
        out["absolute_metrics"] = {"return": [vals[-1]]}
        return out

    results = {"fam": {"task": {"algo": {"seed_0": run([1.0, 3.0, 2.0]), "seed_1": run([1.0, 5.0, 2.0])}}}}
    cs = curve_summary(results, "task", "algo", "return", 0.95, 500, 0)
    assert cs is not None
    assert cs["max"] == 4.0 and cs["max_step"] == 200.0 and 3.0 <= cs["max_lo"] <= cs["max_hi"] <= 5.0
    assert abs(cs["avg"] - (2.0 + 8.0 / 3.0) / 2) < 1e-12
    # a single evaluation point is not a curve
    one = {"fam": {"task": {"algo": {"seed_0": run([1.0])}}}}
    assert curve_summary(one, "task", "algo", "return", 0.95, 100, 0) is None
