"""The App. C.1 recovery experiment and the ``lqr`` verb (``hieralloc lqr recover`` / ``lqr plot``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from hieralloc.control.cli import add_cli
from hieralloc.control.recover import (
    RecoverConfig,
    format_table,
    load_results,
    markdown_summary,
    run_recovery,
)
from hieralloc.errors import ConfigError, DataError

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "docs" / "results" / "ohio-lqr" / "results.json"
DOC = REPO / "docs" / "methods" / "ohio-lqr.md"
SMALL = ["--R", "0", "0.2", "--Q11", "4.5", "--horizon", "3", "--samples", "6"]


def _parser() -> argparse.ArgumentParser:
    """The verb as the top-level CLI registers it: ``add_cli(sub, common)``."""
    p = argparse.ArgumentParser(prog="hieralloc")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--quiet", action="store_true")
    sub = p.add_subparsers(dest="verb", required=True)
    add_cli(sub, common)
    return p


def _run(*argv: str) -> int:
    args = _parser().parse_args(["lqr", *argv])
    return int(args.func(args))


def test_analytical_recovery_is_exact_for_every_paper_setting():
    """OHIO App. C.1: R in {0, 0.2}, Q11 in {3.5, ..., 5.5}: the next state is reproduced exactly
    (T = 1 and T = 5), and the goal itself is recovered exactly where it is identifiable (T = 5)."""
    res = run_recovery(RecoverConfig(samples=50, observed="both"))
    assert len(res["rows"]) == 2 * 2 * 5 * 2
    for r in res["rows"]:
        assert r["goal_err_identifiable_max"] < 1e-9
        assert r["next_state_err_max"] < 1e-9 and r["control_err_max"] < 1e-9
        if r["horizon"] == 5:
            assert r["rank"] == 2 and r["goal_err_max"] < 1e-9
        else:
            assert r["rank"] == 1 and r["goal_err_max"] > 0.1     # only the projection is identifiable


def test_recovery_is_deterministic_for_a_seed():
    cfg = RecoverConfig(method="cem", horizon=(3,), R=(0.2,), Q11=(4.0,), samples=8, seed=5)
    a, b = run_recovery(cfg), run_recovery(cfg)
    assert a == b
    c = run_recovery(RecoverConfig(method="cem", horizon=(3,), R=(0.2,), Q11=(4.0,), samples=8, seed=6))
    assert c["examples"] != a["examples"]


def test_cli_recover_writes_results_and_plot(tmp_path, capsys):
    out, png = tmp_path / "res" / "results.json", tmp_path / "fig" / "recovery.png"
    assert _run("recover", "--method", "all", "--observed", "both", *SMALL, "--gd-max-steps", "200",
                "--out", str(out), "--plot", str(png)) == 0
    text = capsys.readouterr().out
    assert "ident. goal err" in text and f"wrote {out}" in text and f"wrote {png}" in text
    res = load_results(out)
    assert len(res["rows"]) == 3 * 2 * 2        # methods x observed x R
    assert {r["method"] for r in res["rows"]} == {"analytical", "gd", "cem"}
    for r in res["rows"]:
        assert np.isfinite(r["goal_err_max"]) and np.isfinite(r["loss_max"])
        if r["method"] == "analytical":
            assert r["goal_err_max"] < 1e-9 and r["next_state_err_max"] < 1e-9
        if r["method"] == "gd":
            assert r["iterations_max"] <= 200
        if r["method"] == "cem":
            assert r["goal_err_max"] < 1e-3
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert [p.name for p in out.parent.iterdir()] == ["results.json"]
    assert [p.name for p in png.parent.iterdir()] == ["recovery.png"]
    # redraw from the file (analytical panels only; default path beside the results)
    assert _run("plot", str(out), "--method", "analytical") == 0
    assert (out.parent / "recovery.png").stat().st_size > 10_000


def test_cli_writes_the_same_file_for_the_same_command(tmp_path):
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    for p in paths:
        assert _run("recover", "--method", "cem", "--observed", "both", *SMALL, "--quiet", "--out", str(p)) == 0
    assert paths[0].read_bytes() == paths[1].read_bytes()


@pytest.mark.parametrize("argv,flag", [
    (["--samples", "0"], "--samples"),
    (["--horizon", "0"], "--horizon"),
    (["--R", "-0.2"], "--R"),
    (["--Q11", "nan"], "--Q11"),
    (["--dt", "0"], "--dt"),
    (["--gd-lr", "0"], "--gd-lr"),
    (["--cem-elite-frac", "0.001"], "--cem-elite-frac"),
    (["--out", "results.txt"], "--out"),
    (["--plot", "figure.pdf"], "--plot"),
])
def test_cli_bad_values_name_the_flag(argv, flag, tmp_path):
    with pytest.raises(ConfigError) as e:
        _run("recover", *argv)
    assert e.value.key == flag and "\n" not in str(e.value)
    assert not list(tmp_path.iterdir())


def test_bad_results_files(tmp_path):
    with pytest.raises(DataError, match="no such results file"):
        load_results(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="not a readable JSON"):
        load_results(bad)
    bad.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(DataError, match="'format'"):
        load_results(bad)
    res = run_recovery(RecoverConfig(samples=3, horizon=(1,), R=(0.0,), Q11=(4.0,)))
    from hieralloc.control.recover import plot_recovery

    with pytest.raises(DataError, match="no results for method"):
        plot_recovery(res, tmp_path / "x.png", methods=["gd"])


def test_table_lists_every_setting():
    res = run_recovery(RecoverConfig(samples=4, horizon=(2,)))
    lines = format_table(res).splitlines()
    assert len(lines) == 2 + 10
    assert "rank" in lines[0]


def test_committed_results_and_doc_agree_with_the_code():
    """docs/methods/ohio-lqr.md quotes docs/results/ohio-lqr/results.json verbatim, and the analytical
    rows of that file are what the code computes today."""
    committed = load_results(COMMITTED)
    doc = DOC.read_text()
    assert markdown_summary(committed) in doc
    for cov in ("previous-mean", "elite-mean", "diagonal"):
        ablation = load_results(COMMITTED.parent / f"cem-{cov}-no-reruns.json")
        assert ablation["config"]["cem"]["covariance"] == cov and ablation["config"]["cem"]["reruns"] == 0
        assert markdown_summary(ablation) in doc
    for r in committed["rows"]:       # what the page says about the numerical inverses
        if r["method"] != "analytical":
            assert r["goal_err_identifiable_max"] <= r["error_bound"]
        if r["method"] == "gd":
            assert r["loss_max"] < committed["config"]["gd"]["tol"]
        if r["method"] == "cem":
            assert r["loss_max"] < 1e-10 and r["goal_err_identifiable_max"] < 5e-5
    cfg_dict = dict(committed["config"])
    cfg_dict["method"] = "analytical"
    from hieralloc.config import from_dict

    fresh = run_recovery(from_dict(RecoverConfig, cfg_dict))
    old = [r for r in committed["rows"] if r["method"] == "analytical"]
    assert len(old) == len(fresh["rows"])
    for a, b in zip(old, fresh["rows"], strict=True):
        assert a.keys() == b.keys()
        for k in a:
            if isinstance(a[k], float):
                assert b[k] == pytest.approx(a[k], rel=1e-6, abs=1e-12), k
            elif isinstance(a[k], list):
                np.testing.assert_allclose(np.asarray(b[k], dtype=float), np.asarray(a[k], dtype=float),
                                           rtol=1e-9, atol=1e-12, err_msg=k)
            else:
                assert a[k] == b[k], k
