"""Submissions (export, folder check, mismatch policy), calibration rows, breakdown and board markers.

Uses the fake suite/metrics of :mod:`tests.eval.fakes` (colour_match ↑, jitter ↓, mean_distance ↓)
so that the direction of every check is known: the ground truth matches the prompt's colour and
moves smoothly, noise does neither.
"""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from skyloom.eval.harness.calibration import run_calibration
from skyloom.eval.harness.runner import EvalConfig, run_eval
from skyloom.eval.harness.submissions import (
    SubmissionError,
    check_folder,
    conform,
    export_suite,
    item_spec,
    parse_meta,
    run_submission,
)
from skyloom.eval.harness.suites import SuiteError, load_suite
from skyloom.eval.results.boards import board, normalise, order_flags
from skyloom.eval.results.store import ResultsStore
from skyloom.video import read_video, write_video
from tests.eval import fakes

CAL = """calibration:
  rows: [ground_truth, frozen, shuffled, noise]
  order: [ground_truth, noise]
  metric_order: {jitter: [frozen, ground_truth, noise]}
breakdown:
  weights: {colour_match: 1.0, jitter: 1.0}
"""


def captioned_corpus(root: Path) -> Path:
    """The fake reference corpus with captions naming each clip's colour (for prompt ground truth)."""
    from skyloom.corpus import Caption, Corpus

    fakes.make_reference_corpus(root, n=8)
    c = Corpus(root)
    names = list(fakes.COLOURS)
    c.add_captions({r.id: [Caption(captioner="test", kind="short", text=f"a {names[i % 4]} ball moves right")]
                    for i, r in enumerate(c.records())})
    return root


@pytest.fixture()
def setup(tmp_path):
    fakes.register_fake_extractor()
    ref = captioned_corpus(tmp_path / "ref")
    suite_path = fakes.write_suite(tmp_path / "fake.yaml", reference=ref)
    suite_path.write_text(suite_path.read_text().replace("generation: {num_frames: 8, batch_size: 3}",
                                                         "generation: {num_frames: 8, batch_size: 3, width: 32, "
                                                         "height: 32, fps: 8}") + CAL)
    cfg = EvalConfig(suite=str(suite_path), out=str(tmp_path / "out"), cache_dir=str(tmp_path / "cache"),
                     pipeline_loader=fakes.LOADER, n_boot=100, set_boot=10)
    return tmp_path, suite_path, cfg


def test_export_writes_items_hash_and_readme(setup):
    tmp, suite_path, _cfg = setup
    suite = load_suite(suite_path, metric_names=fakes.FAKE_METRICS.names())
    man = export_suite(suite, tmp / "kit", ground_truth=True)
    lines = [json.loads(x) for x in (tmp / "kit" / "items.jsonl").read_text().splitlines()]
    assert [x["item_id"] for x in lines] == [it["item_id"] for it in suite.items()]
    assert lines[0] == {"item_id": "red-s0", "task": "t2v", "prompt": "a red ball bounces", "seed": 0,
                        "category": "colour", "frames": 8, "fps": 8.0, "width": 32, "height": 32,
                        "cond_frames": 0, "cond_path": None}
    with open(tmp / "kit" / "items.csv") as f:  # the csv module reads the same rows back
        rows = list(csv.DictReader(f))
    assert [r["item_id"] for r in rows] == [x["item_id"] for x in lines] and rows[1]["seed"] == "1"
    assert man["content_hash"] == suite.content_hash()
    assert json.loads((tmp / "kit" / "manifest.json").read_text())["suite_version"] == suite.version_tag
    assert "--videos YOUR_FOLDER" in (tmp / "kit" / "README.md").read_text()
    # ground truth: the caption-matched reference clip (a red ball for the red prompt)
    gt = read_video(tmp / "kit" / "ground_truth" / "red-s0.mp4")
    assert gt.shape == (8, 32, 32, 3)
    assert fakes.ColourMatch().score(gt, "a red ball") > fakes.ColourMatch().score(gt, "a blue ball")


def test_export_cond_frames_for_conditioned_items(tmp_path):
    from skyloom.eval.harness.suites import Suite

    suite = Suite(name="x", prompts=())
    cond = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    items = [{"item_id": "p-000", "prompt": "continue", "seed": 3, "category": "physics", "kind": "physics",
              "cond_frames": cond, "num_frames": 6, "height": 16, "width": 16, "fps": 10.0},
             {"item_id": "i-000", "prompt": "animate", "seed": 1, "category": "c", "kind": "prompt",
              "cond_frames": cond[:1]}]
    export_suite(suite, tmp_path / "kit", items=items)
    lines = [json.loads(x) for x in (tmp_path / "kit" / "items.jsonl").read_text().splitlines()]
    assert [x["task"] for x in lines] == ["physics", "i2v"]
    assert lines[0]["cond_frames"] == 2 and (lines[0]["width"], lines[0]["frames"], lines[0]["fps"]) == (16, 6, 10.0)
    import cv2

    png = cv2.cvtColor(cv2.imread(str(tmp_path / "kit" / "cond" / "p-000" / "frame-001.png")), cv2.COLOR_BGR2RGB)
    assert np.array_equal(png, cond[1])  # PNG is lossless
    assert read_video(tmp_path / "kit" / "cond" / "p-000.mp4").shape == (2, 16, 16, 3)


def test_conform_policies():
    v = np.zeros((10, 64, 48, 3), np.uint8)
    spec = {"frames": 8, "width": 32, "height": 32}
    out, problems, notes = conform(v, spec, "resize")
    assert out.shape == (8, 32, 32, 3) and not problems and len(notes) == 2
    out, problems, _ = conform(v, spec, "refuse")
    assert out is None and any("wrong size: 48x64" in p for p in problems) and any("frame count" in p for p in problems)
    out, problems, _ = conform(v[:5], spec, "resize")
    assert out is None and problems == ["too short: 5 frame(s), the item needs 8"]


def test_check_folder_lists_every_problem_by_item(tmp_path):
    specs = {i: {"frames": 8, "width": 32, "height": 32} for i in ("ok", "short", "big", "broken", "gone")}
    d = tmp_path / "sub"
    d.mkdir()
    write_video(d / "ok.mp4", np.zeros((8, 32, 32, 3), np.uint8), fps=8)
    write_video(d / "short.mp4", np.zeros((4, 32, 32, 3), np.uint8), fps=8)
    write_video(d / "big.mp4", np.zeros((9, 64, 64, 3), np.uint8), fps=8)
    (d / "broken.mp4").write_bytes(b"not a video")
    write_video(d / "stray.mp4", np.zeros((8, 32, 32, 3), np.uint8), fps=8)
    (d / "notes.txt").write_text("x")
    conformed = {}
    r = check_folder(d, specs, "resize", conformed)
    assert sorted(r.videos) == ["big", "ok"] and conformed["big"].shape == (8, 32, 32, 3)
    assert r.problems["gone"] == ["missing: no gone.mp4"]
    assert r.problems["short"][0].startswith("too short: 4")
    assert r.problems["broken"][0].startswith("unreadable")
    assert r.extra == ["stray.mp4", "notes.txt"]
    r2 = check_folder(d, specs, "refuse")
    assert sorted(r2.videos) == ["ok"] and "wrong size" in " ".join(r2.problems["big"])
    with pytest.raises(SubmissionError, match="not one of"):
        check_folder(d, specs, "stretch")
    with pytest.raises(SubmissionError, match="key=value"):
        parse_meta(["who"])


def _write_submission(folder: Path, suite, noise: float, size: int = 32) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for it in suite.items():
        v = fakes.ball_video(fakes.colour_of(it["prompt"]), it["seed"], T=8, H=size, W=size, noise=noise)
        write_video(folder / f"{it['item_id']}.mp4", v, fps=8)


def test_submission_calibration_board_and_compare(setup):
    tmp, suite_path, cfg = setup
    suite = load_suite(suite_path, metric_names=fakes.FAKE_METRICS.names())
    _write_submission(tmp / "good", suite, noise=2.0, size=64)  # wrong size: resized by the default policy
    res, check = run_submission(cfg, tmp / "good", "good-model", {"who": "ada", "model": "m1"},
                                metrics=fakes.FAKE_METRICS)
    assert not check.problems and len(check.notes) == len(suite.items())
    ev = res.evals[0]
    assert ev.status == "complete" and ev.checkpoint == "submission:good-model"
    store = ResultsStore(res.db)
    row = store.get_eval(ev.eval_id)
    assert row["kind"] == "submission" and row["meta"]["who"] == "ada" and row["meta"]["mismatch"] == "resize"
    assert read_video(Path(cfg.out) / "fake" / ev.eval_id / "videos" / "red-s0.mp4").shape == (8, 32, 32, 3)
    doc = json.loads(Path(ev.results_path).read_text())
    assert doc["kind"] == "submission" and doc["meta"]["model"] == "m1" and doc["config"]["model"] == "m1"
    # refuse: every wrong-size video fails its item, listed by item; nothing to score is an error
    with pytest.raises(SubmissionError, match="none of the suite's 6 items"):
        run_submission(cfg, tmp / "good", "strict", mismatch="refuse", metrics=fakes.FAKE_METRICS)

    cal = run_calibration(cfg, metrics=fakes.FAKE_METRICS)
    assert sorted(e.checkpoint_name for e in cal.evals) == ["frozen", "ground_truth", "noise", "shuffled"]
    bd = board(store, "fake")
    kinds = {r["checkpoint_name"]: (r["kind"], r["rank"]) for r in bd["rows"]}
    assert kinds["good-model"] == ("submission", 1) and kinds["noise"] == ("calibration", None)
    values = {r["checkpoint_name"]: r["scores"] for r in bd["rows"]}
    assert values["ground_truth"]["colour_match"] > values["noise"]["colour_match"]
    assert values["frozen"]["jitter"] == 0.0 < values["ground_truth"]["jitter"] < values["noise"]["jitter"]
    assert bd["flagged"] == []  # every metric orders the calibration rows as declared
    b = {r["checkpoint_name"]: r["breakdown"] for r in bd["rows"]}
    assert b["ground_truth"]["total"] == pytest.approx(1.0) and b["noise"]["total"] == pytest.approx(0.0)
    assert 0.5 < b["good-model"]["total"] < 1.2 and set(b["good-model"]["categories"]) == {"colour"}
    # by hand: the submission's normalised colour_match
    cm = values["good-model"]["colour_match"]
    noise, truth = values["noise"]["colour_match"], values["ground_truth"]["colour_match"]
    want = (cm - noise) / (truth - noise)
    assert b["good-model"]["metrics"]["colour_match"] == pytest.approx(want)

    # the CLI shows the markers (installed executable)
    from tests.eval.test_submissions_cli import run_cli

    out = run_cli(["leaderboard", "--db", res.db, "--format", "markdown"])
    assert out.returncode == 0, out.stderr
    assert "good-model [submission]" in out.stdout and "noise [calibration]" in out.stdout
    assert "total = weighted mean" in out.stdout
    table = run_cli(["leaderboard", "--db", res.db])  # rich table (stdout): markers are text, not markup
    assert table.returncode == 0 and "noise [calibration]" in table.stdout and "good-model [submission]" in table.stdout
    cmp = run_cli(["compare", "calibration:noise", "good-model", "--db", res.db, "--format", "markdown"])
    assert cmp.returncode == 0, cmp.stderr
    assert "noise [calibration]" in cmp.stdout and "good-model [submission]" in cmp.stdout


def test_wrong_order_is_flagged():
    flags = order_flags({"ground_truth": {"m": 0.2, "up": 0.9}, "noise": {"m": 0.5, "up": 0.1}},
                        {"m": True, "up": True}, {"order": ["ground_truth", "noise"]})
    assert flags["m"]["flagged"] and "noise (0.5) scores better than ground_truth (0.2)" in flags["m"]["violations"][0]
    assert not flags["up"]["flagged"]
    cis = {"ground_truth": {"m": (0.1, 0.3)}, "noise": {"m": (0.25, 0.6)}}
    flags = order_flags({"ground_truth": {"m": 0.2}, "noise": {"m": 0.5}}, {"m": True},
                        {"order": ["ground_truth", "noise"]}, cis)
    assert flags["m"]["flagged"] and flags["m"]["violations"][0].endswith("within the CIs")
    # lower-is-better metrics are checked in their own direction
    flags = order_flags({"ground_truth": {"fvd": 10.0}, "noise": {"fvd": 300.0}}, {"fvd": False},
                        {"order": ["ground_truth", "noise"]})
    assert not flags["fvd"]["flagged"]
    assert normalise(10.0, low=300.0, high=10.0) == 1.0 and normalise(1.0, 1.0, 1.0) is None


def test_suite_validates_calibration_and_breakdown(tmp_path):
    base = fakes.write_suite(tmp_path / "s.yaml").read_text()
    for extra, msg in [("calibration: {rows: [truth]}\n", "unknown row 'truth'"),
                       ("breakdown: {weights: {nope: 1}}\n", "'nope' is not one of the suite's metrics"),
                       ("breakdown: {weights: {jitter: 1}}\n", "not in calibration.rows"),
                       ("calibration: {rows: [noise], metric_order: {x: [noise]}}\n", "metric_order: 'x'")]:
        p = tmp_path / "bad.yaml"
        p.write_text(base + extra)
        with pytest.raises(SuiteError, match=msg):
            load_suite(p, metric_names=fakes.FAKE_METRICS.names())
    # suites that do not use the new sections keep their content hash (stored ids stay valid)
    plain = load_suite(tmp_path / "s.yaml", metric_names=fakes.FAKE_METRICS.names())
    import hashlib

    from skyloom.config import to_dict

    legacy = to_dict(plain)
    for k in ("calibration", "breakdown"):
        legacy.pop(k)
    for k in ("width", "height"):
        legacy["generation"].pop(k)
    for k in ("min_moving_cells", "max_draws"):  # probe admission: meaningless without physics scenes
        legacy["physics"].pop(k)
    assert plain.content_hash() == hashlib.sha256(json.dumps(legacy, sort_keys=True).encode()).hexdigest()


def test_schema1_store_is_migrated_and_readable(tmp_path):
    db = tmp_path / "old.sqlite"
    con = sqlite3.connect(db)  # the schema-1 DDL, as skyloom 0.x wrote it
    con.executescript("""
    CREATE TABLE evals (eval_id VARCHAR(128) PRIMARY KEY, suite VARCHAR(128) NOT NULL, suite_version VARCHAR(64),
      checkpoint TEXT, checkpoint_name VARCHAR(256), run_name VARCHAR(256), step INTEGER, created_at VARCHAR(40),
      git_hash VARCHAR(64), config_json TEXT, status VARCHAR(16));
    CREATE TABLE scores (eval_id VARCHAR(128), metric VARCHAR(128), value FLOAT, stderr FLOAT, ci_low FLOAT,
      ci_high FLOAT, n INTEGER, higher_is_better BOOLEAN, metric_version VARCHAR(64), extractor VARCHAR(256),
      weights VARCHAR(256), details_json TEXT, PRIMARY KEY (eval_id, metric));
    CREATE TABLE skyloom_meta (key VARCHAR(64) PRIMARY KEY, value TEXT);
    INSERT INTO skyloom_meta VALUES ('schema_version', '1');
    INSERT INTO evals VALUES ('e1', 'smoke', '1+abc', '/r/ck', 'r/ck', 'r', 5, '2026-01-01', NULL, '{}', 'complete');
    INSERT INTO scores VALUES ('e1', 'clipsim', 0.3, NULL, NULL, NULL, 4, 1, '1', NULL, NULL, NULL);
    """)
    con.commit()
    con.close()
    store = ResultsStore(db)
    e = store.get_eval("e1")
    assert e["kind"] == "model" and e["meta"] == {}
    rows = board(store, "smoke")["rows"]
    assert rows[0]["rank"] == 1 and rows[0]["kind"] == "model"
    store.begin_eval("e2", suite="smoke", suite_version="1+abc", checkpoint="submission:x", kind="submission",
                     meta={"who": "b"}, status="complete")
    assert store.get_eval("e2")["meta"] == {"who": "b"}
    store.close()
    con = sqlite3.connect(db)
    assert con.execute("select value from skyloom_meta where key='schema_version'").fetchone()[0] == "2"
    con.close()


def test_checkpoint_and_submission_share_a_board(setup):
    tmp, suite_path, cfg = setup
    ck = fakes.make_checkpoint(tmp / "runs", "r", 10, noise=30.0)
    res = run_eval(EvalConfig(**{**cfg.__dict__, "checkpoints": (str(ck),), "db": str(tmp / "out" / "results.sqlite")}),
                   metrics=fakes.FAKE_METRICS)
    suite = load_suite(suite_path, metric_names=fakes.FAKE_METRICS.names())
    _write_submission(tmp / "sub", suite, noise=2.0)
    shutil.copy(tmp / "sub" / "red-s0.mp4", tmp / "sub" / "extra-item.mp4")
    (tmp / "sub" / "blue-s1.mp4").unlink()
    sub, check = run_submission(cfg, tmp / "sub", "clean", metrics=fakes.FAKE_METRICS)
    assert check.problems == {"blue-s1": ["missing: no blue-s1.mp4"]} and check.extra == ["extra-item.mp4"]
    assert sub.evals[0].status == "partial"
    store = ResultsStore(res.db)
    assert [f["item_id"] for f in store.failures(sub.evals[0].eval_id)] == ["blue-s1"]
    rows = board(store, "fake", "jitter")["rows"]
    # the submission misses an item: better on the items it has, but partial, so listed unranked after the model
    assert [(r["checkpoint_name"], r["kind"]) for r in rows] == [("r/step-00000010", "model"), ("clean", "submission")]
    assert rows[0]["rank"] == 1 and rows[1]["rank"] is None and rows[1]["partial"]
    assert rows[1]["coverage"] == f"{rows[1]['n'] - 1}/{rows[1]['n']}"
    assert item_spec(suite, suite.items()[0])["width"] == 32


def test_dashboard_and_report_carry_markers_and_breakdown(setup):
    """The dashboard's leaderboard payload and the static report mark submissions and calibration rows."""
    from fastapi.testclient import TestClient

    from skyloom.dashboards import Dashboard, create_app
    from skyloom.dashboards.report import build_report
    from tests.dashboards.test_report import embedded

    tmp, suite_path, cfg = setup
    suite = load_suite(suite_path, metric_names=fakes.FAKE_METRICS.names())
    _write_submission(tmp / "good", suite, noise=2.0)
    run_submission(cfg, tmp / "good", "good-model", {"who": "ada"}, metrics=fakes.FAKE_METRICS)
    run_calibration(cfg, ["ground_truth", "noise"], metrics=fakes.FAKE_METRICS)
    dash = Dashboard(tmp / "out")  # OUT/results.sqlite: the folder's store
    with TestClient(create_app(dash), base_url="http://localhost") as c:
        lb = c.get("/api/leaderboard").json()
    table = next(t for t in lb["suites"] if t["suite"] == "fake")
    rows = {r["checkpoint_name"]: r for r in table["rows"]}
    assert rows["good-model"]["kind"] == "submission" and rows["good-model"]["meta"]["who"] == "ada"
    assert rows["noise"]["kind"] == "calibration" and rows["noise"]["rank"] is None
    assert rows["ground_truth"]["breakdown"]["total"] == pytest.approx(1.0)
    assert table["categories"] == ["colour"] and table["breakdown"]["weights"] == {"colour_match": 1.0, "jitter": 1.0}
    assert table["flagged"] == [] and set(table["flags"]) >= {"colour_match", "jitter"}
    info = build_report(dash, tmp / "report.html")
    data = embedded(info.path.read_text())
    rep = next(t for t in data["leaderboard"]["suites"] if t["suite"] == "fake")
    assert {r["kind"] for r in rep["rows"]} == {"submission", "calibration"}
    assert "kindBadge" in info.path.read_text()  # the page renders the marker
