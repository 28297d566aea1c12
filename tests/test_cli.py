"""Smoke runs of the real CLI (subprocesses, tiny budgets) and bad input for every verb."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from hieralloc import registry

registry.load_builtins()


def _one_error_line(r) -> str:
    assert r.returncode != 0, r.stdout
    assert "Traceback" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error:"), lines[0]
    return lines[0]


def test_list_shows_every_registry_entry(cli) -> None:
    r = cli("list")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    for kind, table in (("env", registry.ENVS), ("scenario", registry.SCENARIOS),
                        ("algo", registry.ALGOS), ("preset", registry.PRESETS)):
        for name in table:
            assert any(ln.split()[:2] == [kind, name] for ln in lines), (kind, name)
    assert any("learns" in ln for ln in lines if ln.startswith("algo      iql"))


def test_version_and_module_entry(cli) -> None:
    r = cli("--version")
    assert r.returncode == 0 and r.stdout.startswith("hieralloc ")


@pytest.mark.parametrize("algo", sorted(a for a, s in registry.ALGOS.items() if not s.caps.learns
                                         and (s.caps.families is None or "coverage" in s.caps.families)))
def test_train_fixed_policy_smoke_and_eval(cli, tmp_path: Path, algo: str) -> None:
    out = tmp_path / algo
    r = cli("train", "coverage-toy", algo, "env.n_agents=3", "train.eval_episodes=2", "--seed", "1",
            "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["algo"] == algo and len(summary["episodes"]) == 2
    assert {"AC", "ATD", "return"} <= set(summary["final"])
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["env_config"]["n_agents"] == 3 and cfg["seed"] == 1
    assert json.loads((out / "versions.json").read_text())["torch"]
    r = cli("eval", str(out), "--episodes", "2", "--quiet")
    assert r.returncode == 0, r.stderr
    again = json.loads(next(out.glob("eval-2ep-*.json")).read_text())
    # same evaluation seed and episodes: the same numbers as the run's final evaluation
    assert [e["AC"] for e in again["episodes"]] == [e["AC"] for e in summary["episodes"]]


def test_train_learner_smoke_then_eval(cli, tmp_path: Path) -> None:
    out = tmp_path / "iql"
    r = cli("train", "coverage-toy", "iql", "env.n_agents=2", "train.steps=80", "train.eval_every=40",
            "train.eval_episodes=1", "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if x["phase"] == "eval"] == [40, 80, 80]
    assert list((out / "checkpoints").glob("ckpt_*.pt"))
    r = cli("eval", str(out), "--episodes", "1", "--quiet")
    assert r.returncode == 0, r.stderr


def test_same_seed_same_numbers(cli, tmp_path: Path) -> None:
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        r = cli("train", "coverage-toy", "iql", "env.n_agents=2", "train.steps=60", "train.eval_episodes=1",
                "--seed", "9", "--out", str(out), "--quiet")
        assert r.returncode == 0, r.stderr
        outs.append(json.loads((out / "summary.json").read_text())["final"])
    from hieralloc.eval import TIMING_KEYS

    assert [{k: v for k, v in o.items() if k not in TIMING_KEYS} for o in outs][0] == \
        {k: v for k, v in outs[1].items() if k not in TIMING_KEYS}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["train", "nowhere", "random"], "unknown environment 'nowhere'"),
        (["train", "coverage-toy", "nothing"], "unknown algorithm 'nothing'"),
        (["train", "coverage-toy", "random", "env.n_agents=-1"], "env.n_agents"),
        (["train", "coverage-toy", "random", "env.nagents=3"], "valid keys here"),
        (["train", "coverage-toy", "random", "env.n_agents=abc"], "must be an integer"),
        (["train", "coverage-toy", "random", "bogus.x=1"], "unknown section"),
        (["train", "coverage-toy", "random", "noequals"], "key=value"),
        (["train", "coverage-toy", "iql", "algo.lr=.nan"], "algo.lr"),
        (["train", "coverage-toy", "iql", "algo.gamma=2"], "algo.gamma"),
        (["train", "coverage-toy", "random", "--config", "/nonexistent/x.yaml"], "does not exist"),
        (["eval", "/nonexistent/run"], "not a run directory"),
        (["bench", "no-such-preset"], "unknown benchmark preset"),
        (["plot", "/nonexistent/results.json"], "results"),
        (["check-env", "nowhere"], "unknown environment 'nowhere'"),
        (["data", "verify", "atlantis"], "unknown dataset 'atlantis'"),
        (["eval", "x", "--episodes", "0"], "--episodes"),
        (["bench", "coverage-demo", "--jobs", "0"], "--jobs"),
        (["frobnicate"], "invalid choice"),
        (["train", "mpe-simple-spread-continuous", "vdn"], "algorithm needs discrete ones"),
        (["train", "lbf", "eads"], "written for coverage environments"),
    ],
)
def test_bad_input_gives_one_clear_line(cli, args: list[str], needle: str) -> None:
    line = _one_error_line(cli(*args))
    assert needle in line, line


def test_bad_config_file_names_file(cli, tmp_path: Path) -> None:
    f = tmp_path / "run.yaml"
    f.write_text("env:\n  window: 4\n")
    line = _one_error_line(cli("train", "coverage-toy", "random", "--config", str(f)))
    assert "env.window" in line and "run.yaml" in line
    f.write_text("env: [1, 2\n")
    line = _one_error_line(cli("train", "coverage-toy", "random", "--config", str(f)))
    assert "run.yaml" in line and "YAML" in line


def test_corrupt_checkpoint_on_eval(cli, tmp_path: Path) -> None:
    out = tmp_path / "iql"
    r = cli("train", "coverage-toy", "iql", "env.n_agents=2", "train.steps=40", "train.eval_episodes=1",
            "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    for p in (out / "checkpoints").glob("ckpt_*.pt"):
        p.write_bytes(b"not a checkpoint")
    line = _one_error_line(cli("eval", str(out), "--quiet"))
    assert "corrupt or not a hieralloc checkpoint" in line


@pytest.mark.parametrize("env", sorted(registry.ENVS) + sorted(registry.SCENARIOS))
def test_check_env_cli(cli, env: str) -> None:
    r = cli("check-env", env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert ", 0 failed" in r.stdout
