"""Behaviour policies of the supply chain (OHIO App. B.4.3): S-type order-up-to with its grid search,
MPC with noisy unbiased forecasts, MPC-Oracle (the normalising reference), and the CLI path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import hieralloc.envs.supply  # noqa: F401  (registers the supply family)
from hieralloc import cli
from hieralloc.envs.supply import SupplyChainEnv, SupplyCore, expected_demand
from hieralloc.envs.supply.policies import (
    ORACLE_NAME,
    SEARCH_EPISODES,
    SEARCH_SEED,
    TUNED_LEVELS,
    HeurConfig,
    HeurPolicy,
    MPCConfig,
    MPCPolicy,
    levels_for,
    order_up_to,
    search_levels,
)
from hieralloc.envs.supply.search import main as search_main
from hieralloc.errors import ConfigError, IncompatibleError
from hieralloc.eval import episode_seed, evaluate
from hieralloc.registry import check_compatible, get_algo, get_env

ALGOS = ("heur", "mpc", ORACLE_NAME)


def _env(name: str = "supply-1w3s", **kw) -> SupplyChainEnv:
    spec = get_env(name)
    return spec.make(spec.default_config(**kw))


def _run(algo: str, env: SupplyChainEnv, episodes: int = 3, seed: int = 0, **cfg) -> list[dict[str, float]]:
    spec = get_algo(algo)
    return evaluate(spec.build(env, spec.config_cls(**cfg), seed), env, episodes=episodes, seed=seed)


def test_registration_and_compatibility() -> None:
    for name in ALGOS:
        spec = get_algo(name)
        assert spec.caps.families == ("supply",) and spec.caps.continuous and not spec.caps.learns
        assert spec.caps.full_information == (name == ORACLE_NAME)
        check_compatible(get_env("supply-1w10s"), spec)
        with pytest.raises(IncompatibleError):
            check_compatible(get_env("coverage-toy"), spec)
    with pytest.raises(IncompatibleError, match="supply-chain environment"):
        HeurPolicy().reset(get_env("coverage-toy").make(get_env("coverage-toy").default_config()))


def test_oracle_bounds_heur_and_mpc() -> None:
    """The oracle's first plan is an upper bound of every policy's return in the episode; its own return
    reaches it (the LP's optimum is integral here); MPC beats the heuristic on average."""
    env = _env()
    out = {name: _run(name, env) for name in ALGOS}
    ret = {name: np.array([e["return"] for e in eps]) for name, eps in out.items()}
    bound = np.array([e["policy/oracle_bound"] for e in out[ORACLE_NAME]])
    assert (ret[ORACLE_NAME] <= bound + 1e-6).all() and np.allclose(ret[ORACLE_NAME], bound)
    for name in ("heur", "mpc"):
        assert (ret[name] <= bound + 1e-6).all() and ret[name].mean() < ret[ORACLE_NAME].mean()
    assert ret["mpc"].mean() > ret["heur"].mean()
    for eps in out.values():  # same seeds, same realised demand
        assert [e["demand"] for e in eps] == [e["demand"] for e in out["heur"]]
        assert all(e["overflow"] == 0 and e["violation"] == 0 for e in eps)


def test_policies_on_1w10s_and_in_flow_mode() -> None:
    goal = {name: [e["return"] for e in _run(name, _env("supply-1w10s"), episodes=1)] for name in ALGOS}
    assert goal[ORACLE_NAME][0] >= max(goal["heur"][0], goal["mpc"][0])
    flow_env = _env("supply-1w10s", action_mode="flow")
    for name in ("heur", ORACLE_NAME):  # feasible flows: the end-to-end action executes them exactly
        assert [e["return"] for e in _run(name, flow_env, episodes=1)] == goal[name]


def test_heur_in_the_env_equals_the_batched_search(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = get_env("supply-1w3s").default_config()
    res = search_levels(cfg, store_levels=[6, 11], warehouse_levels=[30, 50], episodes=3, seed=7)
    assert res.mean_return.shape == (2, 2) and res.best == (11, 50)
    monkeypatch.setattr("hieralloc.envs.supply.policies.CHUNK_EPISODES", 4)   # one pair per batched core
    chunked = search_levels(cfg, store_levels=[6, 11], warehouse_levels=[30, 50], episodes=3, seed=7)
    assert np.array_equal(chunked.mean_return, res.mean_return)
    assert res.best_return == res.mean_return.max()
    eps = evaluate(HeurPolicy(HeurConfig(levels=(6, 30))), SupplyChainEnv(cfg), episodes=3, seed=7)
    assert np.mean([e["return"] for e in eps]) == pytest.approx(res.mean_return[0, 0], rel=1e-12)


def test_tuned_levels_are_the_grid_search_optimum() -> None:
    cfg = get_env("supply-1w3s").default_config()
    res = search_levels(cfg)
    assert res.episodes == SEARCH_EPISODES and res.seed == SEARCH_SEED
    assert res.mean_return.shape == (16, 51)   # store 0..15 x warehouse 0..50
    assert res.best == TUNED_LEVELS["supply-1w3s"] == levels_for(cfg)
    assert levels_for(get_env("supply-1w10s-cap").default_config()) == TUNED_LEVELS["supply-1w10s-cap"]


def test_order_up_to_rule() -> None:
    cfg = get_env("supply-1w3s").default_config(initial_inventory=[12, 3, 15, 0])
    core = SupplyCore(cfg, 1)
    core.reset(demand=np.full((30, 3), 4))
    ship, prod = order_up_to(core, 10, 40)
    # positions: 3-4 = -1, 15-4 = 11, 0-4 = -4 -> orders 11, 0, 14 (sum 25 > 12 in stock): split 12 by 11:14
    assert ship.tolist() == [[5, 0, 7]] and ship.sum() == 12
    assert prod.tolist() == [[25]]   # warehouse position 0 -> 40, capped by c_p = 25
    core.execute(ship, prod)          # feasible for Eq. (33): strict execution accepts it


def test_mpc_forecasts_are_unbiased_and_non_negative() -> None:
    env = _env()
    env.reset(seed=3)
    pol = MPCPolicy(MPCConfig(noise=0.5), seed=0)
    pol.reset(env, 0)
    draws = np.stack([pol.demand_forecast(30) for _ in range(3000)])
    real = env.episode_demand().astype(float)
    assert (draws >= 0).all() and np.array_equal(draws[:, 0], np.broadcast_to(real[0], draws[:, 0].shape))
    a = min(np.sqrt(3) * 0.5, 1.0)                      # e ~ U(-a, a): sd of d (1 + e) is d a / sqrt(3)
    se = real * a / np.sqrt(3) / np.sqrt(3000)
    assert (np.abs(draws.mean(axis=0) - real) <= 5 * se + 1e-12).all()
    assert draws[:, 1:].std(axis=0).max() > 0
    mean = MPCPolicy(MPCConfig(forecast="mean"), seed=0)
    mean.reset(env, 0)
    assert np.array_equal(mean.demand_forecast(5)[1:], expected_demand(env.config)[1:5])
    # Fig. 2b's biased forecast: the expectation scaled by 1 + bias; the current step stays exact
    biased = MPCPolicy(MPCConfig(forecast="mean", bias=0.3), seed=0)
    biased.reset(env, 0)
    fc = biased.demand_forecast(5)
    assert np.allclose(fc[1:], 1.3 * expected_demand(env.config)[1:5]) and np.array_equal(fc[0], real[0])
    # seeded: the same seed gives the same forecasts and the same episode
    a, b = _run("mpc", env, episodes=1, seed=4), _run("mpc", env, episodes=1, seed=4)
    assert a[0]["return"] == b[0]["return"]


def test_bad_policy_configs() -> None:
    for bad in ([1], [1, 2, 3], [-1, 5], [1.5, 2]):
        with pytest.raises(ConfigError, match="levels"):
            HeurConfig(levels=tuple(bad))
    with pytest.raises(ConfigError, match="forecast"):
        MPCConfig(forecast="perfect")
    with pytest.raises(ConfigError, match="bias"):
        MPCConfig(bias=-1.0)
    with pytest.raises(ConfigError, match="episodes"):
        search_levels(get_env("supply-1w3s").default_config(), episodes=0)


def test_search_command(capsys: pytest.CaptureFixture[str]) -> None:
    code = search_main(["supply-1w3s", "--episodes", "2", "--top", "2", "--set", "storage_capacity=[20,4,4,4]"])
    out = capsys.readouterr().out
    assert code == 0 and "grid store 0..4 x warehouse 0..20 (105 pairs)" in out and "best levels: store" in out
    assert search_main(["coverage-toy"]) == 2
    assert "needs a supply environment" in capsys.readouterr().err
    assert search_main(["supply-1w3s", "--set", "demand_max=[1,2]"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: config key 'demand_var'") and err.count("\n") == 1


def test_cli_train_and_eval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "heur"
    assert cli.main(["train", "supply-1w3s", "heur", "train.eval_episodes=2", "--seed", "1", "--out", str(out),
                     "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["algo"] == "heur" and len(summary["episodes"]) == 2
    assert {"return", "sales", "fill_rate", "storage_cost", "backorders", "violation"} <= set(summary["final"])
    assert cli.main(["eval", str(out), "--episodes", "2", "--quiet"]) == 0
    again = json.loads(next(out.glob("eval-2ep-*.json")).read_text())
    assert [e["return"] for e in again["episodes"]] == [e["return"] for e in summary["episodes"]]
    # the evaluation seeds are episode_seed(seed + 1,000,000, i): the heuristic reproduces them
    env = _env()
    direct = evaluate(HeurPolicy(), env, episodes=2, seed=1 + 1_000_000)
    assert [e["return"] for e in direct] == [e["return"] for e in summary["episodes"]]
    assert episode_seed(1, 0) != episode_seed(1 + 1_000_000, 0)


def test_baselines_table_command(capsys: pytest.CaptureFixture[str]) -> None:
    from hieralloc.envs.supply.baselines import main as baselines_main

    assert baselines_main(["supply-1w3s", "--episodes", "1", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.startswith("| supply-1w3s")]
    assert len(lines) == 3 and lines[-1].split("|")[4].strip() == "100.0"   # the oracle scores 100
    assert baselines_main(["coverage-toy"]) == 2 and "needs a supply" not in capsys.readouterr().out
