"""Boards that cannot mislead (issue 24), through the installed executable: partial entries do not
outrank complete ones, a metric that fails everywhere fails the command, frame-rate mismatches are
reported, suite versions are named and pickable, and small samples get no winner."""

from __future__ import annotations

import json

import numpy as np

from skyloom.eval.results.store import ResultsStore
from skyloom.video import write_video
from tests.eval.test_submissions_cli import run_cli

SUITE = """
format: skyloom-suite
name: boards
version: 1
primary_metric: temporal_flickering
seeds: [0, 1]
generation: {num_frames: 8, width: 32, height: 32, fps: 8}
prompts:
  - {id: red, text: "a red ball bounces"}
  - {id: blue, text: "a blue ball rolls"}
  - {id: green, text: "a green ball falls"}
metrics:
  - {name: temporal_flickering, settings: {protocol: all}}
"""
ITEMS = ["red-s0", "red-s1", "blue-s0", "blue-s1", "green-s0", "green-s1"]


def _video(rng, noise: float, frames: int = 8) -> np.ndarray:
    base = rng.integers(60, 200, (1, 32, 32, 3)).astype(np.float64)
    v = np.repeat(base, frames, axis=0) + rng.normal(0, noise, (frames, 32, 32, 3))
    return np.clip(v, 0, 255).astype(np.uint8)


def _folder(path, items, noise_of, fps=8, frames=8):
    path.mkdir()
    rng = np.random.default_rng(0)
    for iid in items:
        write_video(path / f"{iid}.mp4", _video(rng, noise_of(iid), frames * fps // 8), fps=fps)
    return path


def test_a_folder_without_its_worst_items_does_not_outrank_the_complete_one(tmp_path):
    suite = tmp_path / "boards.yaml"
    suite.write_text(SUITE)
    worst = {"green-s0", "green-s1"}  # noisy videos: the lowest temporal_flickering

    def noise(iid):
        return 40.0 if iid in worst else 2.0

    full = _folder(tmp_path / "full", ITEMS, noise)
    cherry = _folder(tmp_path / "cherry", [i for i in ITEMS if i not in worst], noise)
    db = tmp_path / "r.sqlite"
    for name, folder in (("full", full), ("cherry", cherry)):
        r = run_cli(["eval", "--suite", str(suite), "--videos", str(folder), "--name", name, "--db", str(db),
                     "--out", str(tmp_path / "out")])
        assert r.returncode == 0, r.stderr
    r = run_cli(["leaderboard", "--db", str(db), "--format", "json"])
    assert r.returncode == 0, r.stderr
    rows = {x["checkpoint_name"]: x for x in json.loads(r.stdout)["boards"]["rows"]}
    assert rows["cherry"]["value"] > rows["full"]["value"]  # leaving out the worst items lifts the mean...
    assert rows["full"]["rank"] == 1 and rows["cherry"]["rank"] is None  # ...but not the entry: unranked
    assert rows["cherry"]["partial"] and rows["cherry"]["coverage"] == "4/6" and rows["cherry"]["n"] == 6
    assert [x["checkpoint_name"] for x in json.loads(r.stdout)["boards"]["rows"]] == ["full", "cherry"]
    table = run_cli(["leaderboard", "--db", str(db)])
    assert table.returncode == 0 and "unranked" in table.stdout and "4/6" in table.stdout
    assert "partial entry listed unranked" in table.stdout
    # the missing items are failures with their reason, counted in n
    store = ResultsStore(db)
    eid = rows["cherry"]["eval_id"]
    assert {f["item_id"] for f in store.failures(eid)} == worst
    details = store.scores(eval_ids=[eid])[0]["details"]
    assert details["n_failed"] == 2 and "missing" in details["failed_items"]["green-s0"]


def test_a_broken_extractor_fails_the_command_with_its_reason(tmp_path):
    sub = _folder(tmp_path / "sub", [], lambda i: 2.0)
    rng = np.random.default_rng(1)
    items = [f"{p}-s{s}" for p in ("red-ball-bounce", "blue-ball-roll", "green-ball-drop", "yellow-ball-thrown")
             for s in (0, 1)]
    for iid in items:
        write_video(sub / f"{iid}.mp4", _video(rng, 3.0), fps=8)
    r = run_cli(["eval", "--suite", "smoke", "--videos", str(sub), "--name", "typo", "--db", str(tmp_path / "r.sqlite"),
                 "--out", str(tmp_path / "out"), "--set", "suite.extractors.text_video=indomain:typo"])
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr
    assert "metric:clipsim" in r.stderr and "typo" in r.stderr  # the metric and the reason


def test_frame_rate_mismatch_is_reported_and_the_policy_applied(tmp_path):
    suite = tmp_path / "boards.yaml"
    suite.write_text(SUITE)
    fast = _folder(tmp_path / "fast", ITEMS, lambda i: 2.0, fps=24)  # 24 frames at 24 fps: 1 s, like 8 at 8 fps
    db = tmp_path / "r.sqlite"
    r = run_cli(["eval", "--suite", str(suite), "--videos", str(fast), "--name", "fast", "--db", str(db),
                 "--out", str(tmp_path / "out")])
    assert r.returncode == 0, r.stderr
    assert "match the suite" not in r.stdout
    assert r.stdout.count("resampled from 24 to 8 fps") == len(ITEMS)  # per item
    meta = ResultsStore(db).evals()[0]["meta"]
    assert "resampled from 24 to 8 fps" in meta["conformed"]["red-s0"][0] and "frame rate" in meta["mismatch_protocol"]
    r = run_cli(["eval", "--suite", str(suite), "--videos", str(fast), "--name", "fast-refused", "--db", str(db),
                 "--out", str(tmp_path / "out"), "--mismatch", "refuse"])
    assert r.returncode == 2 and "wrong frame rate: 24 fps, expected 8" in r.stderr


def _entry(store, eid, version, values, name):
    store.begin_eval(eid, suite="vs", suite_version=version, checkpoint=name, checkpoint_name=name, status="complete",
                     config={"suite": {"primary_metric": "m"}})
    store.put_scores(eid, [{"metric": "m", "value": float(np.mean(values)), "n": len(values),
                            "higher_is_better": True}])
    store.put_items(eid, [{"item_id": f"i{k}", "metric": "m", "value": float(v), "seed": 0}
                          for k, v in enumerate(values)])


def test_suite_versions_are_named_listed_and_picked(tmp_path):
    db = tmp_path / "r.sqlite"
    store = ResultsStore(db)
    for k in range(3):
        _entry(store, f"old{k}", "1+aaaa", [0.1 * k, 0.2, 0.3], f"ck{k}")
    _entry(store, "new0", "1+bbbb", [0.5, 0.6], "ck0")
    _entry(store, "new1", "1+bbbb", [0.4, 0.5], "ck1")
    r = run_cli(["leaderboard", "--db", str(db)])
    assert r.returncode == 0, r.stderr
    assert "version 1+bbbb" in r.stdout and "other versions: 1+aaaa (3 entries)" in r.stdout
    r = run_cli(["leaderboard", "--db", str(db), "--suite-version", "1+aaaa", "--format", "json"])
    assert r.returncode == 0 and len(json.loads(r.stdout)["vs"]["rows"]) == 3
    assert {v["version"]: v["entries"] for v in json.loads(r.stdout)["vs"]["versions"]} == {"1+aaaa": 3, "1+bbbb": 2}
    r = run_cli(["leaderboard", "--db", str(db), "--suite-version", "9+zzzz"])
    assert r.returncode == 2 and "1+aaaa (3 entries)" in r.stderr and "Traceback" not in r.stderr
    # compare names the version of both sides; two items all one way: too few items, no winner
    r = run_cli(["compare", "new1", "new0", "--db", str(db)])
    assert r.returncode == 0, r.stderr
    assert "v1+bbbb" in r.stdout and "too few items" in r.stdout and "better" not in r.stdout
    assert "other versions of vs: v1+aaaa (3 entries)" in r.stdout


def test_naming_the_reference_corpus_does_not_fork_the_suite_version(tmp_path):
    from skyloom.eval.harness.suites import load_suite

    plain = load_suite("smoke")
    calibrating = load_suite("smoke", ["reference.corpus=" + str(tmp_path / "corpus")])
    assert calibrating.reference.corpus and plain.version_tag == calibrating.version_tag
    assert load_suite("smoke", ["reference.max_clips=8"]).version_tag != plain.version_tag  # what is measured forks


def test_a_total_above_the_ground_truth_is_flagged():
    from skyloom.eval.results.boards import total_flags

    rows = [{"kind": "calibration", "checkpoint_name": n, "breakdown": {"total": t}}
            for n, t in (("ground_truth", 1.0), ("frozen", 1.029), ("noise", 0.0))]
    rows.append({"kind": "model", "checkpoint_name": "m", "breakdown": {"total": 2.0}})  # a model may beat it
    assert total_flags(rows) == ["frozen (1.029) totals above ground_truth (1)"]
