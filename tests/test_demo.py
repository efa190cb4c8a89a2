"""``skyloom demo`` end to end on configs/demo-tiny.yaml: every stage's artifacts exist and agree.

This is the README's promise in miniature: render + ingest (one licensed clip in, one without a
license rejected with its reason) + captions + training (step-0 and final checkpoints) + both
suites in the results store + leaderboard/compare + the static report. Then a rerun resumes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from skyloom.config import packaged_configs


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    """The tiny demo run as a newcomer runs the quick start: from a folder, with relative paths throughout."""
    out = tmp_path_factory.mktemp("demo") / "out"
    cmd = [sys.executable, "-m", "skyloom.cli", "demo", "--config", str(packaged_configs() / "demo-tiny.yaml"),
           "--out", out.name]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, cwd=out.parent)
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
    assert {"smoke", "colour-motion", "colour-motion-paraphrase", "physics"} <= suites
    scores = store.scores(suite="smoke")
    metrics = {s["metric"] for s in scores}
    assert {"clipsim", "warping_error"} <= metrics
    # the report is one self-contained file
    html = (out / "report.html").read_text()
    assert "<video" in html and "data:video/mp4;base64," in html
    state = json.loads((out / "demo-state.json").read_text())
    assert set(state["done"]) >= {"render", "ingest", "caption", "train", "eval-smoke", "eval-criterion",
                                  "eval-paraphrase", "eval-physics", "report"}
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


@pytest.mark.slow
def test_moved_demo_folder_keeps_every_video(demo_out, tmp_path, monkeypatch):
    """The quick start's folder, made with relative paths, moved elsewhere (the original gone): the report embeds
    every video, the dashboard serves every video, and the corpus validates (issue 27)."""
    from fastapi.testclient import TestClient

    from skyloom.dashboards import Dashboard
    from skyloom.dashboards.app import create_app
    from skyloom.dashboards.report import build_report

    out, _ = demo_out
    moved_root = tmp_path / "elsewhere"
    shutil.copytree(out.parent, moved_root, symlinks=True)
    hidden = out.parent.with_name(out.parent.name + "-gone")
    out.parent.rename(hidden)  # a move: nothing is left at the old place for stored absolute paths to reach
    try:
        monkeypatch.chdir(moved_root)
        rel = Path(out.name)
        videos = sorted((rel / "runs").rglob("videos/*.mp4"))
        assert videos, "the demo wrote no evaluation videos"
        # the results stores hold no absolute path, so nothing reaches back to the old place
        from skyloom.eval.results.store import ResultsStore

        for db in (rel / "runs").rglob("results.sqlite"):
            with ResultsStore(db) as st:
                stored = [r["video_path"] for e in st.evals() for r in st.items(e["eval_id"]) if r["video_path"]]
            assert stored and not [p for p in stored if Path(p).is_absolute()], db
        dash = Dashboard([rel / "runs"], corpora=[rel / "corpus"])
        try:
            info = build_report(dash, rel / "moved-report.html", max_video_mb=500, max_paired_evals=0)
            assert info.videos_missing == 0 and info.videos_omitted == 0, info
            assert info.videos_embedded >= len(videos)  # every evaluation video (and the corpus clips)
            with TestClient(create_app(dash), base_url="http://localhost") as client:
                served = 0
                for table in client.get("/api/leaderboard").json()["suites"]:
                    ids = [r["eval_id"] for r in table["rows"]]
                    cmp = client.get("/api/compare", params={"source": table["source_id"], "suite": table["suite"],
                                                             "evals": ",".join(ids)}).json()
                    cells = [c for it in cmp["items"] for c in it["videos"].values()]
                    assert cells and all(c["url"] for c in cells), [c.get("note") for c in cells if not c["url"]]
                    for c in cells:
                        assert client.get("/" + c["url"]).status_code == 200
                        served += 1
                assert served >= len(videos)
        finally:
            dash.close()
        # The report command itself, with relative paths in the new place: every video embedded, none missing.
        r = subprocess.run([sys.executable, "-m", "skyloom.cli", "report", "--runs", str(rel / "runs"), "--corpus",
                            str(rel / "corpus"), "--out", str(rel / "report-cli.html"), "--max-video-mb", "500",
                            "--max-paired", "0"],
                           capture_output=True, text=True, timeout=1200)
        assert r.returncode == 0, r.stderr[-2000:]
        assert "missing" not in r.stderr and "left out" not in r.stderr, r.stderr[-2000:]
        v = subprocess.run([sys.executable, "-m", "skyloom.cli", "corpus", "validate", str(rel / "corpus")],
                           capture_output=True, text=True, timeout=600)
        problems = [ln for ln in v.stdout.splitlines() if ln.strip()]
        # ISSUE 25 (owned there, not here): skyloom/corpus.py records a WebDataset export's folder relative to the
        # working directory of the export ("missing export: demo-output/corpus/demo-output/corpus/shards").
        # Until that fix lands, those lines alone are tolerated; every other problem fails the test. When issue 25
        # is merged, replace this with `assert v.returncode == 0`.
        assert v.returncode == 0 or all(ln.startswith("missing export:") for ln in problems), problems
    finally:
        hidden.rename(out.parent)
