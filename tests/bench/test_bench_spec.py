"""Benchmark spec parsing and validation: every mistake is one clear line naming key and file."""

from __future__ import annotations

from pathlib import Path

import pytest

from hieralloc.bench.spec import load_spec, spec_from_mapping, validate_spec
from hieralloc.errors import ConfigError, IncompatibleError, UnknownNameError

BASE = {"envs": ["bt-env"], "algos": ["bt-const", "bt-oracle"], "seeds": 2}


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "spec.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_parse_full_spec(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        """
description: a test
envs:
  - bt-env
  - {name: bt-env, label: long, overrides: {env.horizon: 6}}
algos:
  - bt-const
  - {name: bt-const, label: const2, overrides: ["algo.action=2"]}
seeds: [3, 5]
budget: {train.eval_episodes: 2, env.n_agents: 3}
metrics: [served, {key: decision_ms, direction: lower, label: ms}]
reference: {algo: const2, numerator: served, bound: served}
relative_scores: [{key: rel, higher: served, lower: decision_ms}]
plots: [bars]
stats: {reps: 500}
""",
    )
    spec = load_spec(p)
    assert spec.name == "spec" and spec.experiment == "spec" and spec.source == str(p)
    assert [e.label for e in spec.envs] == ["bt-env", "long"]
    assert spec.envs[1].overrides == ("env.horizon=6",)
    assert spec.seeds == (3, 5)
    assert spec.budget == ("train.eval_episodes=2", "env.n_agents=3")
    assert [m.key for m in spec.report_metrics()] == ["served", "decision_ms", "frac_oracle_bound"]
    assert spec.metrics[1].direction == "lower" and spec.metrics[1].title == "ms"
    assert spec.stats.reps == 500 and spec.plots == ("bars",)
    assert spec.relative_scores[0].higher == "served" and spec.relative_scores[0].title == "rel"
    cells = spec.cells()
    assert len(cells) == 2 * 2 * 2
    c = cells[-1]
    assert c.overrides == ("train.eval_episodes=2", "env.n_agents=3", "env.horizon=6", "algo.action=2")
    assert c.rel_dir() == Path("runs/long/const2/seed_5")
    again = spec_from_mapping(spec.to_dict(), source=str(p))
    assert again == spec


def test_seed_count_and_defaults() -> None:
    spec = spec_from_mapping({"envs": ["e"], "algos": ["a"]})
    assert spec.seeds == (0, 1, 2) and spec.name == "bench" and spec.reference is None
    assert spec_from_mapping({**BASE, "seeds": 4}).seeds == (0, 1, 2, 3)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("envs: [a]\nalgos: [b]\nsedes: 3\n", "sedes"),
        ("envs: [a]\nalgos: [b]\nseeds: three\n", "seeds"),
        ("envs: [a]\nalgos: [b]\nseeds: [0, -1]\n", "seeds[1]"),
        ("envs: a\nalgos: [b]\n", "envs"),
        ("algos: [b]\n", "envs"),
        ("envs: [a]\nalgos: [{label: x}]\n", "algos[0].name"),
        ("envs: [a]\nalgos: [{name: b, overides: {}}]\n", "algos[0].overides"),
        ("envs: [a]\nalgos: [b, b]\n", "algos[1]"),
        ("envs: [a]\nalgos: [b]\nmetrics: [{key: x, direction: up}]\n", "metrics[0].direction"),
        ("envs: [a]\nalgos: [b]\nreference: {algo: oracle, numerator: x, bound: y}\n", "reference.algo"),
        ("envs: [a]\nalgos: [b]\nreference: {algo: b, numerator: x}\n", "reference.bound"),
        ("envs: [a]\nalgos: [b]\nplots: [pie]\n", "plots[0]"),
        ("envs: [a]\nalgos: [b]\nrelative_scores: [{key: s, higher: AC}]\n", "relative_scores[0].lower"),
        ("envs: [a]\nalgos: [b]\nstats: {reps: 5}\n", "stats.reps"),
        ("envs: [a]\nalgos: [b]\nbudget: [train.steps]\n", "train.steps"),
        ("envs: [a]\nalgos: [b]\nbudget: 7\n", "budget"),
        ("envs: [a\n", "<file>"),
        ("- a\n", "<file>"),
    ],
)
def test_invalid_specs_name_key_and_file(tmp_path: Path, text: str, key: str) -> None:
    p = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_spec(p)
    msg = str(err.value)
    assert err.value.key == key, msg
    assert str(p) in msg
    assert "\n" not in msg


def test_missing_file_and_unknown_preset(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_spec(tmp_path / "nope.yaml")
    with pytest.raises(UnknownNameError, match="benchmark preset 'no-such-preset'"):
        load_spec("no-such-preset")


@pytest.mark.usefixtures("bt_registry")
def test_unknown_names_and_incompatible_pairs() -> None:
    validate_spec(spec_from_mapping(BASE))
    with pytest.raises(UnknownNameError, match="unknown algorithm 'bt-nope'"):
        validate_spec(spec_from_mapping({**BASE, "algos": ["bt-const", "bt-nope"]}))
    with pytest.raises(UnknownNameError, match="unknown environment 'nowhere'"):
        validate_spec(spec_from_mapping({**BASE, "envs": ["nowhere"]}))
    with pytest.raises(IncompatibleError, match="bt-continuous"):
        validate_spec(spec_from_mapping({**BASE, "algos": ["bt-continuous"]}))


def _presets() -> list[str]:
    from hieralloc import registry

    try:
        registry.load_builtins()
    except ImportError:
        pass
    import hieralloc.bench.presets  # noqa: F401

    return sorted(registry.PRESETS)


@pytest.mark.parametrize("name", _presets())
def test_presets_parse_and_validate(name: str) -> None:
    from hieralloc.registry import PRESETS
    from hieralloc.train import resolve_run

    spec = load_spec(name)
    assert spec.name == name and spec.description == PRESETS[name].description
    validate_spec(spec)
    for cell in spec.cells():  # every override resolves against the real configs
        resolve_run(cell.env.name, cell.algo.name, cell.overrides, seed=cell.seed)


def test_named_budgets_apply_last_and_per_entry(tmp_path: Path) -> None:
    path = tmp_path / "b.yaml"
    path.write_text(
        "x-common: &c {algo.lr: 0.001}\n"
        "envs: [{name: coverage-small, overrides: {train.steps: 100}, budgets: {paper: {env.n_agents: 2}}}]\n"
        "algos:\n"
        "  - {name: vdn, overrides: *c, budgets: {paper: {algo.lr: 0.0001}}}\n"
        "  - {name: hgrl, overrides: {<<: *c, algo.levels: 1}}\n"
        "  - random\n"
        "seeds: 1\n"
        "budget: {train.eval_episodes: 2}\n"
        "budgets: {paper: {train.steps: 500000}}\n")
    spec = load_spec(path)
    assert spec.cells()[0].overrides == ("train.eval_episodes=2", "train.steps=100", "algo.lr=0.001")
    paper = spec.with_budget("paper")
    vdn, hgrl, rand = paper.cells()
    assert vdn.overrides == ("train.eval_episodes=2", "train.steps=100", "algo.lr=0.001", "train.steps=500000",
                             "env.n_agents=2", "algo.lr=0.0001")
    assert hgrl.overrides[-2:] == ("train.steps=500000", "env.n_agents=2")
    assert "algo.levels=1" in hgrl.overrides and not any(o.startswith("algo.") for o in rand.overrides)
    assert spec.with_budget(None) is spec
    with pytest.raises(ConfigError, match="unknown budget 'gpu'.*paper"):
        spec.with_budget("gpu")
    # the written spec records the budget and reads back to the same cells
    again = spec_from_mapping(paper.to_dict())
    assert again.budget_name == "paper" and again.cells() == paper.cells()


def test_bench_cli_rejects_unknown_budget(cli) -> None:
    r = cli("bench", "hgrl-table1", "--budget", "gpu", "--quiet")
    assert r.returncode == 2 and "unknown budget 'gpu'" in r.stderr and "paper" in r.stderr
