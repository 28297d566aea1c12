"""``hieralloc collect`` (hieralloc.ohio.collect) on the mobility environment's synthetic city: a real
dataset on disk, its provenance, seeding shared with evaluation, determinism, exact recovery of the
behaviour's goals by OHIO's inverse, the fingerprint check against other graphs, and the CLI."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hieralloc.cli import main
from hieralloc.errors import ConfigError, DataError, IncompatibleError, UnknownNameError
from hieralloc.eval import episode_seed, evaluate
from hieralloc.ohio import get_formulation
from hieralloc.ohio.collect import collect, default_out, fixed_behaviours
from hieralloc.ohio.dataset import DATA_FILE, META_FILE, OfflineDataset
from hieralloc.runs import git_commit
from hieralloc.train import resolve_run

SCENARIO = "mobility-synthetic"
#: a small synthetic city keeps every test fast (the LP sizes grow with N (N - 1))
SMALL = ("env.synthetic_regions=6", "env.episode_length=8")
EPISODES = 2


def _make_env(overrides: tuple[str, ...] = SMALL, behaviour: str = "prop", scenario: str = SCENARIO
              ) -> tuple[Any, Any]:
    resolved = resolve_run(scenario, behaviour, overrides)
    env = resolved.env_spec.make(resolved.env_cfg)
    return resolved, env


@pytest.fixture(scope="module")
def prop_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("collect") / "prop"
    return collect(SCENARIO, "prop", EPISODES, seed=3, overrides=SMALL, out=out)


# ------------------------------------------------------------------------------------ the dataset


def test_collect_writes_a_complete_dataset(prop_dataset: Path) -> None:
    assert sorted(p.name for p in prop_dataset.iterdir()) == [DATA_FILE, META_FILE]
    ds = OfflineDataset.load(prop_dataset)
    resolved, env = _make_env()
    formulation = get_formulation("mobility")
    layout = formulation.layout(env)
    meta = ds.meta
    assert (meta["env"], meta["scenario"], meta["family"]) == ("mobility", SCENARIO, "mobility")
    assert meta["env_config"] == resolved.tree["env_config"]  # the full resolved config, overrides included
    assert meta["env_config"]["synthetic_regions"] == 6 and meta["env_config"]["episode_length"] == 8
    assert (meta["behaviour"], meta["behaviour_config"]) == ("prop", resolved.tree["algo_config"])
    assert (meta["episodes"], meta["seed"], meta["transitions"]) == (EPISODES, 3, EPISODES * 8)
    assert meta["fingerprint"] == layout.fingerprint
    assert (meta["goal_dim"], meta["flow_dim"]) == (6, 6 * 5)
    assert meta["git_commit"] == git_commit() and meta["versions"]["git_commit"] == meta["git_commit"]
    assert meta["hieralloc_version"] == meta["versions"]["hieralloc"]
    assert datetime.fromisoformat(meta["created"]).tzinfo is not None
    ds.check_layout(layout, env_name=SCENARIO)
    np.testing.assert_array_equal(ds.edge_index, layout.edge_index)
    np.testing.assert_array_equal(ds.flow_edges, layout.flow_edges)
    assert ds.producers.shape == (0,)
    # structure: 8 steps per episode, truncated (never terminated) at the time limit
    np.testing.assert_array_equal(ds.episode, np.repeat(np.arange(EPISODES), 8))
    np.testing.assert_array_equal(ds.step, np.tile(np.arange(8), EPISODES))
    np.testing.assert_array_equal(ds.done, ds.step == 7)
    assert not ds.terminated.any()
    # within an episode, row t's next state is row t+1's state
    same = ds.episode[1:] == ds.episode[:-1]
    for name in ("x", "edge_attr", "aux"):
        np.testing.assert_array_equal(getattr(ds, "next_" + name)[:-1][same], getattr(ds, name)[1:][same])
    # flows are vehicle counts on the flow edges; aux holds the idle vehicles they leave from
    assert (ds.flows >= 0).all() and np.array_equal(ds.flows, np.rint(ds.flows))
    assert ds.flows.sum() > 0  # prop rebalances
    out_of = np.zeros((len(ds), 6))
    np.add.at(out_of.T, ds.flow_edges[0], ds.flows.T)
    assert (out_of <= ds.aux[:, :6] + 1e-9).all()


def test_episodes_are_seeded_like_evaluation(prop_dataset: Path) -> None:
    """Episode k of a dataset is the episode evaluate(seed) runs as its k-th: same reset seed, same returns."""
    ds = OfflineDataset.load(prop_dataset)
    resolved, env = _make_env()
    formulation = get_formulation("mobility")
    policy = resolved.algo_spec.build(env, resolved.algo_cfg, 3)
    episodes = evaluate(policy, env, EPISODES, seed=3)
    np.testing.assert_allclose(ds.episode_returns(), [ep["reward_sum"] for ep in episodes], rtol=0, atol=1e-9)
    assert ds.meta["episode_metrics"]["return"] == pytest.approx(np.mean([ep["return"] for ep in episodes]))
    for k in range(EPISODES):
        env.reset(seed=episode_seed(3, k))
        first = formulation.observe(env)
        row = int(np.flatnonzero(ds.episode == k)[0])
        np.testing.assert_array_equal(ds.x[row], first.x)
        np.testing.assert_array_equal(ds.aux[row], first.aux)


def test_same_seed_same_arrays_other_seed_other_arrays(prop_dataset: Path, tmp_path: Path) -> None:
    a = OfflineDataset.load(prop_dataset)
    b = OfflineDataset.load(collect(SCENARIO, "prop", EPISODES, seed=3, overrides=SMALL, out=tmp_path / "again"))
    for name, arr in a.arrays().items():
        np.testing.assert_array_equal(arr, getattr(b, name), err_msg=name)
    assert a.meta["fingerprint"] == b.meta["fingerprint"]
    c = OfflineDataset.load(collect(SCENARIO, "prop", EPISODES, seed=4, overrides=SMALL, out=tmp_path / "other"))
    assert not np.array_equal(a.reward, c.reward)


def _replay(env: Any, actions: np.ndarray, ds: OfflineDataset, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Reset episode k as it was collected and execute ``actions`` (one per row of the episode)."""
    formulation = get_formulation(ds.meta["family"])
    env.reset(seed=episode_seed(int(ds.meta["seed"]), k))
    flows, rewards = [], []
    for a in actions[ds.episode == k]:
        _obs, rew, _term, _trunc, infos = env.step({agent: a.astype(np.float32) for agent in env.agents})
        (info,) = infos.values()
        flows.append(formulation.low_level(env, info))
        rewards.append(sum(rew.values()))
    return np.array(flows), np.array(rewards)


#: (scenario, overrides) per OHIO family, small enough for fast tests
FAMILIES = {"mobility": (SCENARIO, SMALL), "supply": ("supply-1w3s", ("env.episode_length=10",))}
#: the supply family's fixed policies (test_supply_behaviours_are_all_covered keeps this list complete)
SUPPLY_BEHAVIOURS = ("heur", "mpc", "supply-mpc-oracle")
CASES = [("mobility", b) for b in fixed_behaviours(SCENARIO)] + [("supply", b) for b in SUPPLY_BEHAVIOURS]


def _register(family: str) -> None:
    """Make sure the family is registered. The supply package is imported here, at run time, rather than
    at collection, so that other test modules' registry parametrisations are unchanged; once
    hieralloc.envs imports it this is a no-op."""
    if family == "supply":
        import hieralloc.envs.supply  # noqa: F401


def test_supply_behaviours_are_all_covered() -> None:
    _register("supply")
    assert sorted(fixed_behaviours(FAMILIES["supply"][0])) == sorted(SUPPLY_BEHAVIOURS)


@pytest.mark.parametrize("family, behaviour", CASES)
def test_inverted_goals_reproduce_the_flows_exactly(family: str, behaviour: str, tmp_path: Path) -> None:
    """OHIO exact recovery (App. B.3.5, B.4.5): executing goals(formulation)[t] from the state of row t
    gives flows[t]; replaying a whole episode's inverted goals reproduces its flows and rewards, for every
    fixed behaviour policy of every OHIO family."""
    _register(family)
    scenario, overrides = FAMILIES[family]
    ds = OfflineDataset.load(collect(scenario, behaviour, 1, seed=5, overrides=overrides, out=tmp_path / "d"))
    formulation = get_formulation(family)
    assert ds.meta["family"] == family
    goals = ds.goals(formulation)
    assert goals.shape == (len(ds), ds.goal_dim) and np.isfinite(goals).all()
    resolved, env = _make_env(overrides, behaviour, scenario)
    flows, rewards = _replay(env, goals, ds, 0)
    np.testing.assert_array_equal(flows, ds.flows)
    np.testing.assert_array_equal(rewards, ds.reward)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_flow_actions_reproduce_the_flows_in_flow_mode(family: str, tmp_path: Path) -> None:
    """The end-to-end baselines' actions (action_mode='flow') execute the recorded flows."""
    _register(family)
    scenario, overrides = FAMILIES[family]
    behaviour = fixed_behaviours(scenario)[0]
    ds = OfflineDataset.load(collect(scenario, behaviour, 1, seed=6, overrides=overrides, out=tmp_path / "d"))
    actions = ds.flow_actions(get_formulation(family))
    assert actions.shape == (len(ds), ds.flow_dim)
    assert ((actions >= 0) & (actions <= 1 + 1e-12)).all()
    _resolved, env = _make_env((*overrides, "env.action_mode=flow"), behaviour, scenario)
    flows, rewards = _replay(env, actions, ds, 0)
    np.testing.assert_allclose(flows, ds.flows, atol=1e-9)
    np.testing.assert_allclose(rewards, ds.reward, atol=1e-9)


def test_mobility_goals_are_distributions(prop_dataset: Path) -> None:
    """Mobility goals (App. B.3.2) are desired idle distributions: q^ = q + inflow - outflow, normalised."""
    ds = OfflineDataset.load(prop_dataset)
    goals = ds.goals(get_formulation("mobility"))
    np.testing.assert_allclose(goals.sum(axis=1), 1.0, atol=1e-12)
    net = np.zeros((len(ds), 6))
    np.add.at(net.T, ds.flow_edges[1], ds.flows.T)
    np.add.at(net.T, ds.flow_edges[0], -ds.flows.T)
    idle = ds.aux[:, :6]
    np.testing.assert_allclose(goals * idle.sum(axis=1, keepdims=True), idle + net, atol=1e-9)


def test_dataset_from_another_graph_is_rejected(prop_dataset: Path) -> None:
    ds = OfflineDataset.load(prop_dataset)
    formulation = get_formulation("mobility")
    for other in (("env.synthetic_regions=7", "env.episode_length=8"),
                  (*SMALL, "env.data_seed=1")):  # same size, another city
        _resolved, env = _make_env(other)
        layout = formulation.layout(env)
        with pytest.raises(DataError) as info:
            ds.check_layout(layout, env_name="the other city")
        msg = str(info.value)
        assert f"collected on {SCENARIO}: fingerprint {ds.meta['fingerprint']}" in msg
        assert f"this environment is the other city: fingerprint {layout.fingerprint}" in msg


# ------------------------------------------------------------------------------------ refusals


def test_a_learner_is_not_a_behaviour_policy(tmp_path: Path) -> None:
    with pytest.raises(IncompatibleError) as info:
        collect(SCENARIO, "ippo", 1, out=tmp_path / "d")
    msg = str(info.value)
    assert "'ippo' is a learning algorithm" in msg
    assert "no-rebalancing" in msg and "prop" in msg
    assert not (tmp_path / "d").exists()


def test_refusals_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(IncompatibleError, match="has no OHIO formulation"):
        collect("coverage-small", "stay", 1, out=tmp_path / "d")
    with pytest.raises(IncompatibleError, match="written for mobility environments"):
        collect("coverage-small", "prop", 1, out=tmp_path / "d")
    with pytest.raises(UnknownNameError, match="unknown algorithm 'nope'"):
        collect(SCENARIO, "nope", 1, out=tmp_path / "d")
    with pytest.raises(ConfigError, match=r"config key 'train.steps'.*collect takes sections env and algo only"):
        collect(SCENARIO, "prop", 1, overrides=["train.steps=5"], out=tmp_path / "d")
    with pytest.raises(ConfigError, match=r"config key 'algo.horizn'.*unknown key"):
        collect(SCENARIO, "prop", 1, overrides=["algo.horizn=3"], out=tmp_path / "d")
    with pytest.raises(ConfigError, match=r"'--episodes'.*must be an integer >= 1, got 0"):
        collect(SCENARIO, "prop", 0, out=tmp_path / "d")
    with pytest.raises(ConfigError, match=r"'--seed'.*must be an integer >= 0, got -1"):
        collect(SCENARIO, "prop", 1, seed=-1, out=tmp_path / "d")
    assert list(tmp_path.iterdir()) == []


def test_existing_dataset_needs_force(prop_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "d"
    collect(SCENARIO, "no-rebalancing", 1, overrides=SMALL, out=out)
    with pytest.raises(DataError, match="already exists; pass --force"):
        collect(SCENARIO, "prop", 1, overrides=SMALL, out=out)
    assert OfflineDataset.load(out).meta["behaviour"] == "no-rebalancing"
    collect(SCENARIO, "prop", 1, overrides=SMALL, out=out, force=True)
    assert OfflineDataset.load(out).meta["behaviour"] == "prop"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


# ------------------------------------------------------------------------------------ CLI


def test_cli_collect_default_path_summary_and_force(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["collect", SCENARIO, "prop", "--episodes", "2", "--seed", "1", "--quiet",
            "--set", *SMALL, "algo.horizon=3"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    path = default_out(SCENARIO, "prop", 2, 1)
    assert path == Path("datasets/mobility-synthetic-prop-2ep-s1")
    assert f"dataset: {path}" in out
    ds = OfflineDataset.load(tmp_path / path)
    s = ds.summary()
    assert f"2 episodes, {2 * 8} transitions of prop on {SCENARIO}; return per episode" in out
    assert f"mean {s['mean_return']:.6g}" in out
    assert ds.meta["behaviour_config"] == {"horizon": 3}
    meta = json.loads((tmp_path / path / META_FILE).read_text())
    assert meta["env_config"]["synthetic_regions"] == 6

    assert main(argv) == 2  # refuses to overwrite
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: dataset directory") and "--force" in err
    assert main([*argv, "--force"]) == 0


def _run(argv: list[str]) -> int:
    """The CLI's exit status (argparse's own errors exit through SystemExit)."""
    try:
        return main(argv)
    except SystemExit as e:
        return int(e.code or 0)


def test_cli_errors_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    for argv, fragment in (
        (["collect", SCENARIO, "ippo", "--episodes", "1"], "is a learning algorithm"),
        (["collect", SCENARIO, "prop", "--episodes", "1", "--set", "env.synthetic_regions=1"],
         "config key 'env.synthetic_regions'"),
        (["collect", SCENARIO, "prop", "--episodes", "1", "--set", "train.steps=3"], "config key 'train.steps'"),
        (["collect", "coverage-small", "stay", "--episodes", "1"], "has no OHIO formulation"),
        (["collect", SCENARIO, "prop", "--episodes", "0"], "--episodes must be >= 1"),
        (["collect", SCENARIO, "prop"], "the following arguments are required: --episodes"),
    ):
        assert _run(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error:") and fragment in err, (argv, err)
    assert not Path("datasets").exists()


@pytest.mark.realdata
def test_real_cities_datasets_are_not_interchangeable(data_root: Path, tmp_path: Path) -> None:
    """A dataset collected on NYC Brooklyn (real scenario file) is refused on Shenzhen downtown-west and on
    the synthetic city before any training, with both names in the message (issue #5, 'Bad input')."""
    real = (f"env.data_dir={data_root}",)
    nyc = OfflineDataset.load(collect("mobility-nyc-brooklyn", "prop", 1, overrides=real, out=tmp_path / "nyc"))
    assert nyc.meta["env_config"]["city"] == "nyc_brooklyn" and nyc.n_nodes == 14
    formulation = get_formulation("mobility")
    _resolved, nyc_env = _make_env(real, "prop", "mobility-nyc-brooklyn")
    nyc.check_layout(formulation.layout(nyc_env), env_name="mobility-nyc-brooklyn")
    for scenario, overrides in (("mobility-shenzhen-dtw", real), (SCENARIO, ())):
        _resolved, env = _make_env(overrides, "prop", scenario)
        with pytest.raises(DataError, match=f"collected on mobility-nyc-brooklyn: .*this environment is {scenario}"):
            nyc.check_layout(formulation.layout(env), env_name=scenario)
