"""Offline datasets in benchmark specs (OHIO presets): parsing, validation, collection before the
cells, reuse while the settings match, and the percent-of-oracle reference scale."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hieralloc.bench.runner import dataset_current, dataset_jobs, plan_cells, run_bench
from hieralloc.bench.spec import spec_from_mapping, validate_spec
from hieralloc.errors import ConfigError, IncompatibleError
from hieralloc.ohio.dataset import OfflineDataset

ENV = {"name": "mobility", "label": "tiny", "overrides": {"env.synthetic_regions": 4, "env.episode_length": 3}}


def _spec(**extra: object) -> dict[str, object]:
    base: dict[str, object] = {
        "envs": [ENV],
        "algos": ["prop", {"name": "ohio-bc", "label": "BC on prop", "dataset": "prop-data",
                           "overrides": {"train.steps": 4, "algo.batch_size": 8}}],
        "datasets": {"prop-data": {"behaviour": "prop", "episodes": 2, "seed": 7}},
        "seeds": 1,
        "budget": {"train.eval_episodes": 1},
        "reference": {"algo": "prop", "numerator": "return", "bound": "return", "key": "score",
                      "label": "score", "scale": 100},
    }
    base.update(extra)
    return base


def test_parse_and_round_trip() -> None:
    spec = spec_from_mapping(_spec())
    d = spec.datasets["prop-data"]
    assert (d.behaviour, d.episodes, d.seed, d.overrides) == ("prop", 2, 7, ())
    assert spec.algos[1].dataset == "prop-data" and spec.algos[0].dataset == ""
    assert spec.reference is not None and spec.reference.scale == 100.0
    again = spec_from_mapping(spec.to_dict())
    assert again == spec
    validate_spec(spec)


@pytest.mark.parametrize(("change", "key"), [
    ({"datasets": {"d": {"episodes": 2}}}, "datasets.d.behaviour"),
    ({"datasets": {"d": {"behaviour": "prop", "episodes": 0}}}, "datasets.d.episodes"),
    ({"datasets": {"d": {"behaviour": "prop", "episodes": 2, "seed": -1}}}, "datasets.d.seed"),
    ({"datasets": {"d": {"behaviour": "prop", "episodes": 2, "overrides": {"env.beta": 1}}}}, "datasets.d.overrides"),
    ({"datasets": {"d": {"behaviour": "prop", "episodes": 2, "colour": 1}}}, "datasets.d.colour"),
    ({"datasets": ["prop"]}, "datasets"),
    ({"algos": ["prop", {"name": "ohio-bc", "dataset": "nope"}]}, "algos[1].dataset"),
    ({"reference": {"algo": "prop", "numerator": "return", "bound": "return", "scale": 0}}, "reference.scale"),
])
def test_bad_dataset_specs_name_the_key(change: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as e:
        spec_from_mapping(_spec(**change))
    assert e.value.key == key


def test_behaviour_must_suit_the_env() -> None:
    spec = spec_from_mapping(_spec(datasets={"prop-data": {"behaviour": "heur", "episodes": 2}}))
    with pytest.raises(IncompatibleError):
        validate_spec(spec)


def test_dataset_jobs_carry_env_overrides_and_cells_point_at_them(tmp_path: Path) -> None:
    spec = spec_from_mapping(_spec())
    jobs = dataset_jobs(spec, tmp_path)
    assert len(jobs) == 1
    job = jobs[0]
    assert job.out == str(tmp_path / "datasets" / "tiny" / "prop-data")
    assert set(job.overrides) == {'env.synthetic_regions=4', 'env.episode_length=3'}
    assert not dataset_current(job)
    plans = plan_cells(spec, tmp_path)
    bc = [p for p in plans if p.cell.algo.label == "BC on prop"][0]
    assert f"algo.dataset={json.dumps(str(Path(job.out).resolve()))}" in bc.cell.overrides


def test_run_bench_collects_once_and_reuses(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    run_bench(_spec(), out=out, jobs=1, quiet=True)
    path = out / "datasets" / "tiny" / "prop-data"
    ds = OfflineDataset.load(path)
    assert len(ds) == 2 * 3 and ds.meta["behaviour"] == "prop" and ds.meta["seed"] == 7
    stamp = (path / "data.npz").stat().st_mtime_ns
    assert dataset_current(dataset_jobs(spec_from_mapping(_spec()), out)[0])
    results = json.loads((out / "results.json").read_text())
    assert "tiny" in json.dumps(results)
    md = (out / "results.md").read_text()
    assert "score" in md
    # a changed setting of the env entry makes the dataset outdated; same settings reuse it
    run_bench(_spec(seeds=[0, 1]), out=out, jobs=1, quiet=True)
    assert (path / "data.npz").stat().st_mtime_ns == stamp
    changed = _spec(envs=[{**ENV, "overrides": {**ENV["overrides"], "env.beta": 0.25}}])  # type: ignore[dict-item]
    assert not dataset_current(dataset_jobs(spec_from_mapping(changed), out)[0])


def test_reference_scale_gives_percent(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    spec = _spec(algos=["prop", "no-rebalancing"], datasets=None)
    run_bench(spec, out=out, jobs=1, quiet=True)
    bench = json.loads((out / "bench.json").read_text())
    score = bench["summary"]["tiny"]["prop"]["score"]["mean"]
    assert np.isclose(score, 100.0)
