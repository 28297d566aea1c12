"""``hieralloc plot RUN_DIR``: HGRL Fig. 5 / Fig. 6 of a trained hgrl run (real CLI, real run directories)."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli

PNG = b"\x89PNG\r\n\x1a\n"
#: a tiny hgrl run on the 12 x 12 grid: 1 exploration episode + GDI-Net fit, then one training episode
HGRL = ["hgrl", "algo.batch_size=2", "algo.hidden=8", "algo.features.gdinet.d=8", "algo.features.gdinet.hidden=8"]
RUNS = {
    "gdinet": [*HGRL, "train.steps=16", "algo.features.explore_episodes=1", "algo.features.initial_steps=5"],
    "truth": [*HGRL, "train.steps=8", "algo.features.source=truth"],
    # no exploration and no closed-loop refit: GDI-Net is never fitted
    "unfitted": [*HGRL, "train.steps=8", "algo.features.explore_episodes=0", "algo.features.refit_every=0"],
    "random": ["random"],
}


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The real CLI entry point in this process (``hieralloc.cli.main``): exit status, stdout, stderr."""
    from hieralloc.cli import main

    capsys.readouterr()
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def _one_error_line(rc: int, err: str) -> str:
    assert rc != 0
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error:"), lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real run directories written by 'hieralloc train': the GDI-Net run by the CLI in a subprocess,
    the others (for the error cases) by the same CLI in this process, meanwhile."""
    from hieralloc.cli import main

    root = tmp_path_factory.mktemp("runs")

    def train_args(name: str) -> list[str]:
        algo, *over = RUNS[name]
        return ["train", "coverage-small", algo, *over, "train.eval_episodes=1", "--quiet", "--out", str(root / name)]

    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(run_cli, *train_args("gdinet"))
        for name in RUNS:
            if name != "gdinet":
                assert main(train_args(name)) == 0, name
        r = job.result()
    assert r.returncode == 0, r.stderr
    out = {name: root / name for name in RUNS}
    # a run whose process died before its first checkpoint: the directory without checkpoints/
    out["no_ckpt"] = root / "no_ckpt"
    shutil.copytree(out["gdinet"], out["no_ckpt"])
    shutil.rmtree(out["no_ckpt"] / "checkpoints")
    return out


def test_plot_run_writes_fig5_and_fig6_of_the_most_observed_frame(runs: dict[str, Path]) -> None:
    from hieralloc.algos.hgrl.run_plots import load_run_features, most_observed_frame

    run = runs["gdinet"]
    rf = load_run_features(run)
    f = rf.features
    assert rf.algo == "hgrl" and rf.env == "coverage-small" and rf.step == 16
    assert f.fits >= 1 and len(f.observations) > 0
    counts = f.observations.mask.sum(axis=(1, 2))
    k = most_observed_frame(f)
    assert counts[k] == counts.max() > 0
    est = rf.estimator.predict([k])[0]
    assert est.shape == (12, 12) and np.isfinite(est).all()

    r = run_cli("plot", str(run))  # the installed command end to end
    assert r.returncode == 0, r.stderr
    paths = [Path(p) for p in r.stdout.split()]
    assert [p.name for p in paths] == [f"gdinet_multiscale_frame{k}.png", f"gdinet_gradients_frame{k}.png"]
    for p in paths:
        assert p.parent == run / "plots"
        data = p.read_bytes()
        assert data[:8] == PNG and len(data) > 10_000


def test_plot_run_frame_and_out_options(runs: dict[str, Path], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    figs = tmp_path / "figs"
    rc, out, err = _cli(capsys, "plot", str(runs["gdinet"]), "--frame", "3", "--out", str(figs))
    assert rc == 0, err
    names = ["gdinet_multiscale_frame3.png", "gdinet_gradients_frame3.png"]
    assert out.split() == [str(figs / n) for n in names]
    assert sorted(p.name for p in figs.iterdir()) == sorted(names)
    for p in figs.iterdir():
        assert p.read_bytes()[:8] == PNG


@pytest.mark.parametrize(
    ("run", "extra", "needle"),
    [
        ("random", [], "plots of runs are drawn for hgrl runs"),
        ("truth", [], "algo_config.features.source"),
        ("no_ckpt", [], "train it first"),
        ("unfitted", [], "was not fitted"),
        ("gdinet", ["--frame", "28"], "--frame 28 is out of range"),
        (None, [], "neither a benchmark's results.json"),
    ],
)
def test_plot_run_errors_are_one_line(runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      run: str | None, extra: list[str], needle: str) -> None:
    path = runs[run] if run is not None else tmp_path / "nowhere"
    rc, _, err = _cli(capsys, "plot", str(path), *extra)
    line = _one_error_line(rc, err)
    assert needle in line, line
    if run == "random":
        assert "results.json" in line
    if run == "truth":
        assert "'truth'" in line and "gdinet" in line
    if run != "gdinet":  # (the gdinet run holds the figures of the other tests)
        assert not (path / "plots").exists()


def test_bad_frame_options_are_one_line(runs: dict[str, Path], tmp_path: Path) -> None:
    r = run_cli("plot", str(runs["gdinet"]), "--frame", "-1")  # refused by the parser (a subprocess: it exits)
    assert "Traceback" not in r.stderr
    assert r.returncode == 2 and "--frame must be >= 0" in _one_error_line(r.returncode, r.stderr)
    (tmp_path / "results.json").write_text(json.dumps({}))
    r = run_cli("plot", str(tmp_path), "--frame", "0")
    line = _one_error_line(r.returncode, r.stderr)
    assert "--frame" in line and "run directory" in line
