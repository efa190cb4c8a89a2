"""Empty, missing and half-written inputs: every view still answers, with a warning or an empty table."""

from __future__ import annotations

import pytest

VIEWS = ("/", "/api/overview", "/api/leaderboard", "/api/training", "/api/corpus")


def _get_all(dash) -> dict[str, object]:
    from fastapi.testclient import TestClient

    from skyloom.dashboards import create_app

    out = {}
    with TestClient(create_app(dash), base_url="http://localhost") as c:
        for v in VIEWS:
            r = c.get(v)
            assert r.status_code == 200, (v, r.text)
            out[v] = r.json() if v != "/" else r.text
    return out


def test_missing_runs_folder_and_non_corpus(tmp_path):
    from skyloom.dashboards import Dashboard

    out = _get_all(Dashboard(tmp_path / "nope", corpora=[tmp_path]))
    ws = " ".join(out["/api/overview"]["warnings"])
    assert "does not exist" in ws and "not a skyloom corpus" in ws
    assert out["/api/leaderboard"]["suites"] == [] and "No results store" in out["/api/leaderboard"]["note"]
    assert out["/api/training"]["runs"] == []
    assert "no corpus.json" in out["/api/corpus"]["corpora"][0]["error"]


def test_half_written_run_and_empty_corpus(tmp_path):
    from skyloom.corpus import Corpus
    from skyloom.dashboards import Dashboard
    from skyloom.rundir import RunDir

    run = RunDir.create(tmp_path / "runs" / "r")
    (run.root / "checkpoints" / ".tmp-step-00000010-123").mkdir()  # interrupted checkpoint write
    (run.root / "checkpoints" / "step-00000020").mkdir()  # no COMPLETE marker
    run.metrics_path.write_text('{"step": 1, "kind": "train", "loss": 2.0}\n{"step": "x", "loss": 1}\n'
                                '{"step": 2, "kind": "train", "loss": NaN}\nnot json\n'
                                '{"step": 3, "loss": 1.5, "note": "hi"}\n{"step": 4, "lo')
    Corpus.create(tmp_path / "corpus")
    out = _get_all(Dashboard(tmp_path / "runs", corpora=[tmp_path / "corpus"]))
    (r,) = out["/api/training"]["runs"]
    assert r["checkpoints"] == [] and r["series"]["train"]["loss"] == [[1, 2.0], [3, 1.5]]
    (c,) = out["/api/corpus"]["corpora"]
    assert c["error"] is None and c["clips"] == [] and c["summary"]["clips"] == 0
    assert c["summary"]["duration_s"] == {"edges": [], "counts": []}


def test_corrupt_results_database_and_manifest_are_warnings(tmp_path):
    from skyloom.corpus import Corpus
    from skyloom.dashboards import Dashboard
    from skyloom.rundir import RunDir

    run = RunDir.create(tmp_path / "runs" / "r")
    (run.root / "results.sqlite").write_bytes(b"this is not a database" * 100)
    c = Corpus.create(tmp_path / "corpus")
    (c.manifest_dir / "part-000-bad.parquet").write_bytes(b"garbage")
    out = _get_all(Dashboard(tmp_path / "runs", corpora=[c.root]))
    assert any("cannot open results store" in w for w in out["/api/overview"]["warnings"])
    assert "unreadable Parquet" in out["/api/corpus"]["corpora"][0]["error"]


def test_running_eval_without_scores_is_noted_not_fatal(tmp_path):
    from fastapi.testclient import TestClient

    from skyloom.dashboards import Dashboard, create_app
    from skyloom.eval.results.store import ResultsStore
    from skyloom.rundir import RunDir

    run = RunDir.create(tmp_path / "runs" / "r")
    with ResultsStore(run.root / "results.sqlite") as s:
        s.begin_eval("done", suite="x", checkpoint="ck-a", status="complete")
        s.put_scores("done", [{"metric": "m", "value": 1.0, "higher_is_better": True}])
        s.begin_eval("busy", suite="x", checkpoint="ck-b")  # still running: items, no scores
        s.put_items("busy", [{"item_id": "i", "metric": "m", "value": 0.5, "video_path": "eval/x/busy/videos/i.mp4"}])
    with TestClient(create_app(Dashboard(tmp_path / "runs")), base_url="http://localhost") as cl:
        (t,) = cl.get("/api/leaderboard").json()["suites"]
        assert [r["eval_id"] for r in t["rows"]] == ["done"] and "1 checkpoint(s) not shown" in t["note"]
        cmp = cl.get("/api/compare", params={"suite": "x", "evals": "done,busy"}).json()
    cell = cmp["items"][0]["videos"]["busy"]
    assert cell["url"] is None and "missing" in cell["note"]


@pytest.mark.parametrize("suffix", ["", "/"])
def test_runs_may_be_a_single_run(world, suffix):
    from skyloom.dashboards import Dashboard

    d = Dashboard(str(world["run-a"]) + suffix)
    assert [r["name"] for r in d.overview()["runs"]] == ["run-a"]
    assert d.leaderboard()["suites"][0]["suite"] == "smoke"


def test_compare_lists_videos_of_set_level_only_suites(tmp_path):
    """A suite scored only by set-level metrics (FVD) has no item rows; its videos still show."""
    from skyloom.dashboards import Dashboard
    from skyloom.eval.results.store import ResultsStore
    from skyloom.rundir import RunDir
    from skyloom.video import write_video
    from tests.conftest import moving_square_video

    run = RunDir.create(tmp_path / "runs" / "r")
    with ResultsStore(run.root / "results.sqlite") as s:
        s.begin_eval("e", suite="fvd-only", checkpoint=str(run.checkpoint_dir(0)), status="complete")
        s.put_scores("e", [{"metric": "fvd", "value": 12.0, "higher_is_better": False}])
    for i in range(2):
        write_video(run.eval_dir / "fvd-only" / "e" / "videos" / f"v{i}.mp4", moving_square_video(T=4), fps=8)
    cmp = Dashboard(tmp_path / "runs").compare(0, "fvd-only", ["e"])
    assert [it["item_id"] for it in cmp["items"]] == ["v0", "v1"]
    assert cmp["items"][1]["videos"]["e"]["url"] == "files/0/r/eval/fvd-only/e/videos/v1.mp4"


def test_training_rereads_metrics_that_grew(tmp_path):
    from skyloom.dashboards import Dashboard
    from skyloom.rundir import RunDir

    run = RunDir.create(tmp_path / "runs" / "r")
    run.log_metrics(0, loss=1.0)
    d = Dashboard(tmp_path / "runs")
    assert d.training()["runs"][0]["series"]["train"]["loss"] == [[0, 1.0]]
    assert d.training()["runs"][0]["series"]["train"]["loss"] == [[0, 1.0]]  # from the cache, unchanged
    run.log_metrics(1, loss=0.5)
    assert d.training()["runs"][0]["series"]["train"]["loss"] == [[0, 1.0], [1, 0.5]]


def test_long_and_resumed_series(tmp_path):
    """A resumed run repeats steps (the last value wins); long series are thinned to MAX_POINTS."""
    import json

    from skyloom.dashboards.data import MAX_POINTS, run_series
    from skyloom.rundir import RunDir

    run = RunDir.create(tmp_path / "r")
    lines = [{"step": s, "kind": "train", "loss": float(s)} for s in range(5000)]
    lines += [{"step": s, "kind": "train", "loss": -1.0} for s in range(4000, 4100)]  # resumed from 4000
    lines += [{"step": 7, "kind": "train", "loss": True, "flag": False}]  # booleans are not values
    run.metrics_path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    loss = run_series(run)["train"]["loss"]
    assert len(loss) == MAX_POINTS and loss[0] == [0, 0.0] and loss[-1] == [4999, 4999.0]
    steps = [p[0] for p in loss]
    assert steps == sorted(set(steps))
    assert all(v == -1.0 for s, v in loss if 4000 <= s < 4100)
    assert all(v == float(s) for s, v in loss if not 4000 <= s < 4100)
    assert "flag" not in run_series(run)["train"]


def test_failures_and_quarantine_are_listed(tmp_path):
    from skyloom.corpus import Corpus
    from skyloom.dashboards import Dashboard
    from skyloom.eval.results.store import ResultsStore
    from skyloom.rundir import RunDir

    run = RunDir.create(tmp_path / "runs" / "r")
    with ResultsStore(run.root / "results.sqlite") as s:
        s.begin_eval("e", suite="x", checkpoint="ck", status="partial")
        s.put_scores("e", [{"metric": "m", "value": 1.0, "higher_is_better": True}])
        s.add_failure("e", "p3", "decode", "moov atom not found")
    c = Corpus.create(tmp_path / "corpus")
    c.quarantine("ingest", "http://x/y.mp4", "license CC-BY-NC-4.0 not allowed")
    d = Dashboard(tmp_path / "runs", corpora=[c.root])
    (t,) = d.leaderboard()["suites"]
    assert t["rows"][0]["failures"] == 1 and t["rows"][0]["status"] == "partial"
    assert t["failures"]["e"][0] | {"created_at": None} == {"item_id": "p3", "stage": "decode",
                                                             "reason": "moov atom not found", "created_at": None}
    (corp,) = d.corpus()["corpora"]
    assert corp["quarantined"] == 1 and corp["quarantine"][0]["reason"] == "license CC-BY-NC-4.0 not allowed"
