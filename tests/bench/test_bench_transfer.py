"""Benchmark cells that start from another cell's trained run (``pretrained``) and algo entries
restricted to some envs (``envs``): OHIO Table 5's transfer row and Fig. 2/8's fine-tuning."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from hieralloc.bench.runner import plan_cells, run_bench
from hieralloc.bench.spec import spec_from_mapping, validate_spec
from hieralloc.errors import ConfigError
from hieralloc.runs import RunDir

TINY = {"env.synthetic_regions": 4, "env.episode_length": 3}
NET = {"algo.hidden": 8, "algo.batch_size": 8}


def _spec(**extra: object) -> dict[str, object]:
    base: dict[str, object] = {
        "envs": [{"name": "mobility", "label": "a", "overrides": {**TINY, "env.data_seed": 1}},
                 {"name": "mobility", "label": "b", "overrides": {**TINY, "env.synthetic_regions": 5}}],
        "algos": [
            {"name": "prop", "label": "PROP"},
            {"name": "ohio-bc", "label": "BC", "dataset": "d", "envs": ["a"],
             "overrides": {**NET, "train.steps": 3}},
            {"name": "sac", "label": "BC zero-shot", "envs": ["b"], "pretrained": {"algo": "BC", "env": "a"},
             "overrides": {**NET, "train.steps": 0}},
            {"name": "sac", "label": "BC fine-tuned", "envs": ["a"], "pretrained": {"algo": "BC"},
             "overrides": {**NET, "train.steps": 6, "algo.freeze_episodes": 1, "algo.updates_per_step": 0.5}},
        ],
        "datasets": {"d": {"behaviour": "prop", "episodes": 2, "seed": 3}},
        "seeds": 1,
        "budget": {"train.eval_episodes": 1},
        "reference": {"algo": "PROP", "numerator": "return", "bound": "return", "key": "score", "scale": 100},
    }
    base.update(extra)
    return base


def test_cells_follow_envs_and_round_trip() -> None:
    spec = spec_from_mapping(_spec())
    cells = [(c.env.label, c.algo.label) for c in spec.cells()]
    assert cells == [("a", "PROP"), ("a", "BC"), ("a", "BC fine-tuned"), ("b", "PROP"), ("b", "BC zero-shot")]
    assert spec_from_mapping(spec.to_dict()) == spec
    validate_spec(spec)
    zero = [c for c in spec.cells() if c.algo.label == "BC zero-shot"][0]
    src = spec.source_cell(zero)
    assert src is not None and (src.env.label, src.algo.label, src.seed) == ("a", "BC", 0)


@pytest.mark.parametrize(("algo", "key"), [
    ({"name": "sac", "envs": ["c"]}, "algos[1].envs"),
    ({"name": "sac", "envs": "a"}, "algos[1].envs"),
    ({"name": "sac", "pretrained": {"algo": "nope"}}, "algos[1].pretrained.algo"),
    ({"name": "sac", "pretrained": {"algo": "PROP", "env": "c"}}, "algos[1].pretrained.env"),
    ({"name": "sac", "pretrained": "PROP"}, "algos[1].pretrained"),
    ({"name": "sac", "pretrained": {"algo": "PROP", "colour": 1}}, "algos[1].pretrained.colour"),
    ({"name": "sac", "envs": ["b"], "pretrained": {"algo": "A", "env": "b"}}, "algos[1].pretrained"),
])
def test_bad_links_name_the_key(algo: dict[str, object], key: str) -> None:
    algos = [{"name": "prop", "label": "PROP"}, algo]
    if key == "algos[1].pretrained" and "env" in algo.get("pretrained", {}):  # type: ignore[operator]
        algos = [{"name": "prop", "label": "A", "envs": ["a"]}, algo]
    with pytest.raises(ConfigError) as e:
        spec_from_mapping(_spec(algos=algos, datasets=None, reference=None))
    assert e.value.key == key


def test_no_chains_of_pretraining() -> None:
    algos = [{"name": "prop", "label": "PROP"},
             {"name": "sac", "label": "S1", "pretrained": {"algo": "PROP"}},
             {"name": "sac", "label": "S2", "pretrained": {"algo": "S1"}}]
    with pytest.raises(ConfigError) as e:
        spec_from_mapping(_spec(algos=algos, datasets=None, reference=None))
    assert e.value.key == "algos[2].pretrained.algo"


def test_transfer_and_finetune_cells_run_after_their_sources(tmp_path: Path) -> None:
    out = run_bench(_spec(), out=tmp_path / "b", jobs=1, quiet=True)
    bc = out / "runs" / "a" / "BC" / "seed_0"
    zero = RunDir(out / "runs" / "b" / "BC zero-shot" / "seed_0")
    tuned = RunDir(out / "runs" / "a" / "BC fine-tuned" / "seed_0")
    for rd in (zero, tuned):
        assert rd.is_finished()
        assert rd.read_config()["algo_config"]["finetune_from"] == str(bc.resolve())
    assert zero.read_summary()["steps"] == 0  # evaluated on the 5-region graph, not trained
    assert math.isfinite(zero.read_summary()["final"]["return"])
    assert tuned.read_summary()["steps"] == 6
    results = json.loads((out / "results.json").read_text())
    assert set(results["mobility"]["b"]) == {"PROP", "BC zero-shot"}
    assert set(results["mobility"]["a"]) == {"PROP", "BC", "BC fine-tuned"}
    # nothing to do on a second run
    plans = plan_cells(spec_from_mapping(_spec()), out)
    assert all(p.status == "done" for p in plans)


def test_a_moved_results_folder_is_reused(tmp_path: Path) -> None:
    """Dataset and source paths are absolute in each run's config; a copied or moved bench folder
    still counts its finished cells as done (compared relative to the folder), and cells run
    there afterwards point at the new location."""
    import shutil

    first = run_bench(_spec(), out=tmp_path / "b", jobs=1, quiet=True)
    moved = tmp_path / "elsewhere" / "b"
    shutil.move(str(first), str(moved))
    plans = plan_cells(spec_from_mapping(_spec()), moved)
    assert {p.cell.algo.label: p.status for p in plans} == dict.fromkeys(
        ["PROP", "BC", "BC zero-shot", "BC fine-tuned"], "done")
    stamp = (moved / "runs" / "a" / "BC" / "seed_0" / "summary.json").stat().st_mtime_ns
    run_bench(_spec(seeds=[0, 1]), out=moved, jobs=1, quiet=True)
    assert (moved / "runs" / "a" / "BC" / "seed_0" / "summary.json").stat().st_mtime_ns == stamp
    new = RunDir(moved / "runs" / "b" / "BC zero-shot" / "seed_1").read_config()["algo_config"]
    assert new["finetune_from"] == str((moved / "runs" / "a" / "BC" / "seed_1").resolve())
    assert RunDir(moved / "runs" / "a" / "BC" / "seed_1").read_config()["algo_config"]["dataset"] == str(
        (moved / "datasets" / "a" / "d").resolve())
    # a changed setting is still a different config
    changed = _spec()
    changed["algos"][1]["overrides"]["train.steps"] = 4  # type: ignore[index]
    assert {p.cell.algo.label: p.status for p in plan_cells(spec_from_mapping(changed), moved)}["BC"] == "new"


def test_cells_redo_when_their_source_is_redone(tmp_path: Path) -> None:
    out = run_bench(_spec(), out=tmp_path / "b", jobs=1, quiet=True)
    changed = _spec()
    changed["algos"][1]["overrides"]["train.steps"] = 4  # type: ignore[index]
    plans = {p.cell.algo.label: p.status for p in plan_cells(spec_from_mapping(changed), out)}
    assert plans == {"PROP": "done", "BC": "new", "BC zero-shot": "new", "BC fine-tuned": "new"}


def test_an_architecture_mismatch_fails_the_dependants_with_the_key_to_change(tmp_path: Path) -> None:
    from hieralloc.bench.runner import BenchFailedError

    broken = _spec()
    broken["algos"][1]["overrides"]["algo.hidden"] = 16  # type: ignore[index]
    # the transfer cells keep width 8: loading the width-16 BC run fails in those cells only
    with pytest.raises(BenchFailedError) as e:
        run_bench(broken, out=tmp_path / "b", jobs=1, quiet=True)
    assert "2 of 5" in str(e.value)
    log = (tmp_path / "b" / "runs" / "b" / "BC zero-shot" / "seed_0" / "error.log").read_text()
    assert "algo.hidden" in log


def test_dependants_of_a_failed_cell_are_not_run(tmp_path: Path) -> None:
    from hieralloc.bench.runner import BenchFailedError

    algos = [{"name": "prop", "label": "PROP"},
             {"name": "sac", "label": "broken", "overrides": {**NET, "train.steps": 3,
                                                             "algo.finetune_from": str(tmp_path / "missing")}},
             {"name": "sac", "label": "after", "pretrained": {"algo": "broken"},
              "overrides": {**NET, "train.steps": 0}}]
    spec = _spec(algos=algos, datasets=None, reference=None, envs=[_spec()["envs"][0]])  # type: ignore[index]
    with pytest.raises(BenchFailedError) as e:
        run_bench(spec, out=tmp_path / "b", jobs=1, quiet=True)
    assert "2 of 3" in str(e.value)
    assert not (tmp_path / "b" / "runs" / "a" / "after" / "seed_0" / "config.yaml").exists()


def test_one_reference_per_env_family() -> None:
    envs = [{"name": "mobility", "label": "city", "overrides": TINY}, {"name": "supply-1w3s", "label": "chain"}]
    algos = [{"name": "prop", "label": "PROP", "envs": ["city"]}, {"name": "heur", "label": "HEUR", "envs": ["chain"]}]
    ref = {"algo": ["PROP", "HEUR"], "numerator": "return", "bound": "return", "scale": 100}
    spec = spec_from_mapping(_spec(envs=envs, algos=algos, datasets=None, reference=ref))
    validate_spec(spec)
    assert spec.reference is not None and spec.reference.labels == ("PROP", "HEUR")
    assert spec_from_mapping(spec.to_dict()) == spec
    algos[1]["envs"] = ["city", "chain"]
    with pytest.raises(ConfigError, match="both run on 'city'") as e:
        spec_from_mapping(_spec(envs=envs, algos=algos, datasets=None, reference=ref))
    assert e.value.key == "reference.algo"


def test_mixed_family_run_scores_each_env_against_its_own_reference(tmp_path: Path) -> None:
    envs = [{"name": "mobility", "label": "city", "overrides": TINY},
            {"name": "supply-1w3s", "label": "chain", "overrides": {"env.episode_length": 4}}]
    algos = [{"name": "prop", "label": "PROP", "envs": ["city"]}, {"name": "heur", "label": "HEUR", "envs": ["chain"]},
             {"name": "supply-mpc-oracle", "label": "Oracle", "envs": ["chain"]}]
    ref = {"algo": ["PROP", "Oracle"], "numerator": "return", "bound": "return", "key": "score", "scale": 100}
    out = run_bench(_spec(envs=envs, algos=algos, datasets=None, reference=ref), out=tmp_path / "b", jobs=1,
                    quiet=True)
    summary = json.loads((out / "bench.json").read_text())["summary"]
    chain = summary["chain"]
    assert summary["city"]["PROP"]["score"]["mean"] == pytest.approx(100.0)
    assert chain["Oracle"]["score"]["mean"] == pytest.approx(100.0)
    assert chain["HEUR"]["score"]["mean"] < 100.0 and set(chain) == {"HEUR", "Oracle"}
    md = (out / "results.md").read_text()
    city_table = md.split("## city")[1].split("## chain")[0]
    assert "PROP" in city_table and "HEUR" not in city_table  # entries not run on an env get no row


def test_only_runs_the_matching_entries_and_their_sources(tmp_path: Path) -> None:
    from hieralloc.errors import HierallocError

    out = run_bench(_spec(), out=tmp_path / "b", jobs=1, quiet=True, only=["BC zero*"])
    status = {(p.cell.env.label, p.cell.algo.label): p.status for p in plan_cells(spec_from_mapping(_spec()), out)}
    assert status == {("a", "PROP"): "new", ("a", "BC"): "done", ("a", "BC fine-tuned"): "new",
                      ("b", "PROP"): "new", ("b", "BC zero-shot"): "done"}
    results = json.loads((out / "results.json").read_text())
    assert set(results["mobility"]["b"]) == {"BC zero-shot"}  # the report covers what has finished
    with pytest.raises(HierallocError, match="matches no algorithm label"):
        run_bench(_spec(), out=tmp_path / "b", jobs=1, quiet=True, only=["SAC*"])
