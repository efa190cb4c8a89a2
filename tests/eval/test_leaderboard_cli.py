"""``skyloom eval``, ``skyloom leaderboard`` and ``skyloom compare`` through the CLI."""

from __future__ import annotations

import csv
import io
import json

import pytest
from typer.testing import CliRunner

from skyloom.cli import app
from skyloom.eval.harness.runner import EvalConfig, run_eval
from tests.eval import fakes

runner = CliRunner()

REAL_SUITE = """
format: skyloom-suite
name: cli
version: 1
primary_metric: temporal_flickering
seeds: [0, 1]
generation: {num_frames: 8}
prompts:
  - {id: red, text: "a red ball bounces"}
  - {id: blue, text: "a blue ball rolls"}
metrics:
  - {name: temporal_flickering, settings: {protocol: all}}
  - {name: warping_error}
  - {name: dynamic_degree}
"""


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lb")
    fakes.register_fake_extractor()
    ref = fakes.make_reference_corpus(tmp / "ref")
    suite = fakes.write_suite(tmp / "fake.yaml", reference=ref)
    cks = [fakes.make_checkpoint(tmp / "runs", "r1", 0, noise=60.0), fakes.make_checkpoint(tmp / "runs", "r1", 100),
           fakes.make_checkpoint(tmp / "runs", "r2", 100)]  # same videos as r1@100
    cfg = EvalConfig(suite=str(suite), checkpoints=tuple(map(str, cks)), cache_dir=str(tmp / "cache"),
                     pipeline_loader=fakes.LOADER, n_boot=200, set_boot=10, executor="local")
    res = run_eval(cfg, metrics=fakes.FAKE_METRICS)  # default store: the first checkpoint's RUN/results.sqlite
    return tmp, cks, res


def _ok(args):
    r = runner.invoke(app, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output


def test_leaderboard_formats(evaluated):
    tmp, cks, res = evaluated
    db = str(tmp / "runs" / "r1" / "results.sqlite")
    out = _ok(["leaderboard", "--db", db, "--suite", "fake", "--metric", "jitter", "--format", "json"])
    rows = json.loads(out)["fake"]["rows"]
    assert [r["checkpoint_name"] for r in rows][-1] == "r1/step-00000000"  # the noisy one is last
    # 6 items, 2 comparisons at 0.05/2: the smallest exact sign-flip p (2/64) cannot reach 0.025, so even the
    # noisy checkpoint is not called different: "too few items", never a winner from a test that cannot decide
    assert [r["tie_group"] for r in rows] == [1, 1, 1] and rows[2]["tie_verdict"] == "too few items"
    assert "Bonferroni over 2 comparison(s)" in json.loads(out)["fake"]["correction"]
    out = _ok(["leaderboard", "--db", db, "--format", "csv", "--metric", "jitter"])
    table = list(csv.DictReader(io.StringIO(out)))
    assert [t["rank"] for t in table] == ["1", "2", "3"] and table[0]["suite"] == "fake" and "colour_match" in table[0]
    md = _ok(["leaderboard", "--db", db, "--format", "markdown", "--metric", "jitter"])
    assert md.count("\n|") >= 4 and "| rank | tie_group |" in md
    assert "ranked by colour_match" in _ok(["leaderboard", "--db", db])
    # --runs merges the stores of every run under a folder
    assert len(json.loads(_ok(["leaderboard", "--runs", str(tmp / "runs"), "--format", "json"]))["fake"]["rows"]) == 3


def test_compare(evaluated):
    tmp, cks, res = evaluated
    db = str(tmp / "runs" / "r1" / "results.sqlite")
    rows = json.loads(_ok(["compare", str(cks[0]), "r1/step-00000100", "--db", db, "--format", "json"]))
    by = {r["metric"]: r for r in rows}
    assert set(by) == {"colour_match", "jitter", "mean_distance"}
    assert by["jitter"]["better"] == "b" and by["jitter"]["diff"] < 0 and by["jitter"]["p_value"] < 0.05
    assert by["mean_distance"]["p_value"] is None  # set-level: CI only
    one = json.loads(_ok(["compare", res.evals[0].eval_id, res.evals[1].eval_id, "--db", db, "--metric", "jitter",
                          "--format", "json"]))
    assert [r["metric"] for r in one] == ["jitter"]
    r = runner.invoke(app, ["compare", "nope", "r1/step-00000100", "--db", db])
    assert r.exit_code == 2 and "no evaluation matches 'nope'" in r.output
    r = runner.invoke(app, ["leaderboard", "--db", db, "--format", "xml"])
    assert r.exit_code == 2 and "not one of table, csv, json, markdown" in r.output


def test_eval_command_with_real_metrics(tmp_path):
    suite = tmp_path / "cli.yaml"
    suite.write_text(REAL_SUITE)
    ck = fakes.make_checkpoint(tmp_path / "runs", "r", 7)
    out = _ok(["eval", "--suite", str(suite), "--ckpt", str(ck), "--json",
               "--set", f"pipeline_loader={fakes.LOADER}", "--set", f"cache_dir={tmp_path / 'cache'}",
               "--set", "n_boot=100"])
    res = json.loads(out[out.index("{"):])
    e = res["evals"][0]
    assert e["status"] == "complete" and e["generated"] == 4
    assert 0.5 < e["scores"]["temporal_flickering"] <= 1.0 and e["scores"]["warping_error"] >= 0
    assert (tmp_path / "runs" / "r" / "results.sqlite").exists()
    lb = json.loads(_ok(["leaderboard", "--db", str(tmp_path / "runs" / "r" / "results.sqlite"), "--format", "json"]))
    assert lb["cli"]["rows"][0]["metric"] == "temporal_flickering"
    assert "dynamic_degree" in lb["cli"]["rows"][0]["scores"]
    table = _ok(["leaderboard", "--db", str(tmp_path / "runs" / "r" / "results.sqlite")])
    assert "dynamic" in table  # shown beside the temporal ranking (rich may fold the header)
    r = runner.invoke(app, ["eval", "--suite", str(suite)])
    assert r.exit_code == 2 and "--ckpt" in r.output
    suite.write_text(REAL_SUITE.replace("{name: warping_error}", "{name: warp_error}"))
    r = runner.invoke(app, ["eval", "--suite", str(suite), "--ckpt", str(ck)])
    assert r.exit_code != 0
    assert "unknown metric 'warp_error'" in str(r.exception or "") + r.output
