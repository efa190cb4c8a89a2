"""``skyloom demo`` end to end on configs/demo-tiny.yaml: every stage's artifacts exist and agree.

This is the README's promise in miniature: render + ingest (one licensed clip in, one without a
license rejected with its reason) + captions + training (step-0 and final checkpoints) + both
suites in the results store + leaderboard/compare + the static report. Then a rerun resumes.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from skyloom.config import packaged_configs


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    cmd = [sys.executable, "-m", "skyloom.cli", "demo", "--config", str(packaged_configs() / "demo-tiny.yaml"),
           "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return out, proc.stdout + proc.stderr


@pytest.mark.slow
def test_demo_artifacts(demo_out):
    from skyloom.corpus import Corpus
    from skyloom.eval.results.store import ResultsStore
    from skyloom.rundir import RunDir

    out, log = demo_out
    corpus = Corpus(out / "corpus")
    recs = corpus.records()
    kinds = {r.source_kind for r in recs}
    assert kinds == {"synthetic", "licensed"}
    assert len([r for r in recs if r.source_kind == "synthetic"]) == 12
    # every clip has a license and provenance; licensed ones are the CC-BY Big Buck Bunny
    assert all(r.license_id and r.source_url and r.sha256 for r in recs)
    assert {r.license_id for r in recs if r.source_kind == "licensed"} == {"CC-BY-3.0"}
    assert all("Blender" in (r.author + r.attribution) for r in recs if r.source_kind == "licensed")
    # the unlicensed source was rejected, with its reason
    rejected = corpus.quarantined("ingest")
    assert any("bikes" in q["item"] and q["reason"] == "missing license" for q in rejected)
    assert "missing license" in log
    # captions everywhere: scene-graph for synthetic, the labelled heuristic for real footage
    assert all(r.captions for r in recs)
    assert all(r.caption(captioner="scene-graph") for r in recs if r.source_kind == "synthetic")
    # a run with the step-0 and the final checkpoint
    run = RunDir(out / "runs" / "vdit-tiny")
    steps = [s for s, _ in run.checkpoints()]
    assert steps[0] == 0 and steps[-1] == 4
    for _, ck in run.checkpoints():
        assert (ck / "dit" / "config.json").exists() and (ck / "dit" / "model.safetensors").exists()
    assert [m["step"] for m in run.metrics("train")]
    # both suites stored for the checkpoints, with scores
    store = ResultsStore(run.results_db_url)
    evals = store.evals()
    suites = {e["suite"] for e in evals if e["status"] == "complete"}
    assert {"smoke", "colour-motion", "physics"} <= suites
    scores = store.scores(suite="smoke")
    metrics = {s["metric"] for s in scores}
    assert {"clipsim", "warping_error"} <= metrics
    # the report is one self-contained file
    html = (out / "report.html").read_text()
    assert "<video" in html and "data:video/mp4;base64," in html
    state = json.loads((out / "demo-state.json").read_text())
    assert set(state["done"]) >= {"render", "ingest", "caption", "train", "eval-smoke", "eval-criterion",
                                  "eval-physics", "report"}
    assert "skyloom dashboard --runs" in log
    # the external entry (exported ground truth, resubmitted) and the calibration rows, on the boards
    ext = ResultsStore(out / "runs" / "results.sqlite")
    kinds = {(e["suite"], e["kind"], e["checkpoint_name"]) for e in ext.evals()
             if e["status"] in ("complete", "partial")}
    assert ("physics", "submission", "ground-truth-export") in kinds
    assert {("smoke", "calibration", r) for r in ("ground_truth", "frozen", "shuffled", "noise")} <= kinds
    assert {("physics", "calibration", r) for r in ("ground_truth", "perturbed", "noise")} <= kinds
    from skyloom.eval.results.boards import board

    merged = ResultsStore.merged([out / "runs" / "results.sqlite", run.root / "results.sqlite"])
    phys = {r["checkpoint_name"]: r for r in board(merged, "physics")["rows"]}
    sub, gt = phys["ground-truth-export"], phys["ground_truth"]
    assert sub["kind"] == "submission" and sub["rank"] is not None and gt["rank"] is None
    assert sub["scores"]["physics_iq"] == pytest.approx(gt["scores"]["physics_iq"], abs=1.0)  # same clips back
    assert "[calibration]" in html or "calibration" in html


@pytest.mark.slow
def test_demo_rerun_resumes(demo_out):
    out, _ = demo_out
    cmd = [sys.executable, "-m", "skyloom.cli", "demo", "--config", str(packaged_configs() / "demo-tiny.yaml"),
           "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    from skyloom.demo import load_demo_config

    n_stages = len(load_demo_config(packaged_configs() / "demo-tiny.yaml").stages)
    assert proc.stdout.count("skipped (done)") + proc.stderr.count("skipped (done)") == n_stages
