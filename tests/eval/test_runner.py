"""Evaluation runner with a fake pipeline and fake metrics: generation, scoring, store, resume,
failure records, feature cache."""

from __future__ import annotations

import json
import multiprocessing as mp

import pytest

from skyloom.eval.harness.runner import EvalConfig, run_eval
from skyloom.eval.harness.suites import load_suite
from skyloom.eval.results.stats import leaderboard, paired_compare
from skyloom.eval.results.store import ResultsStore
from tests.eval import fakes


@pytest.fixture
def setup(tmp_path):
    fakes.register_fake_extractor()
    ref = fakes.make_reference_corpus(tmp_path / "ref")
    suite = fakes.write_suite(tmp_path / "fake.yaml", reference=ref)
    return tmp_path, suite


def _cfg(tmp_path, suite, ckpts, **kw):
    kw.setdefault("executor", "local")
    return EvalConfig(suite=str(suite), checkpoints=tuple(str(c) for c in ckpts), db=str(tmp_path / "results.sqlite"),
                      cache_dir=str(tmp_path / "cache"), pipeline_loader=fakes.LOADER, n_boot=200, set_boot=20, **kw)


def _run(cfg):
    return run_eval(cfg, metrics=fakes.FAKE_METRICS)


def test_two_checkpoints_end_to_end(setup):
    tmp, suite = setup
    good = fakes.make_checkpoint(tmp / "runs", "r1", 100, noise=0.0)
    bad = fakes.make_checkpoint(tmp / "runs", "r1", 0, noise=60.0)
    res = _run(_cfg(tmp, suite, [bad, good]))
    assert [e.status for e in res.evals] == ["complete", "complete"]
    assert [e.generated for e in res.evals] == [6, 6]
    store = ResultsStore(tmp / "results.sqlite")
    ev = {e["step"]: e for e in store.evals(suite="fake")}
    assert ev[100]["checkpoint_name"] == "r1/step-00000100" and ev[100]["run_name"] == "r1"
    assert ev[100]["suite_version"].startswith("1+") and ev[100]["config"]["suite"]["primary_metric"] == "colour_match"
    g = {s["metric"]: s for s in store.scores(eval_ids=[ev[100]["eval_id"]])}
    assert set(g) == {"colour_match", "jitter", "mean_distance"}
    cm = g["colour_match"]
    assert cm["n"] == 6 and cm["ci_low"] <= cm["value"] <= cm["ci_high"]
    assert g["jitter"]["higher_is_better"] is False and g["jitter"]["extractor"] == "fake-jitter"
    assert g["mean_distance"]["extractor"] == "fake-colour" and g["mean_distance"]["details"]["n_real"] == 6
    items = store.items(ev[100]["eval_id"], "colour_match")
    assert sorted(i["item_id"] for i in items) == ["blue-s0", "blue-s1", "green-s0", "green-s1", "red-s0", "red-s1"]
    assert items[0]["prompt"] == "a blue ball falls" and items[0]["category"] == "colour"
    # videos and results.json live under RUN/eval/<suite>/<eval_id>/
    eval_dir = tmp / "runs" / "r1" / "eval" / "fake" / ev[100]["eval_id"]
    assert (eval_dir / "videos" / "red-s0.mp4").exists() and (eval_dir / "config.yaml").exists()
    doc = json.loads((eval_dir / "results.json").read_text())
    assert doc["results"]["fake"]["colour_match,none"] == pytest.approx(g["colour_match"]["value"])
    # the noisy checkpoint is worse, significantly, on the paired per-item comparison
    rows = leaderboard(store, "fake", "jitter")
    assert [r["step"] for r in rows] == [100, 0] and [r["tie_group"] for r in rows] == [1, 2]
    c = paired_compare(store, ev[0]["eval_id"], ev[100]["eval_id"], "jitter")
    assert c.better == "b" and c.result.n == 6


def test_rerun_is_a_no_op_and_reuses_features(setup):
    tmp, suite = setup
    ck = fakes.make_checkpoint(tmp / "runs", "r1", 5)
    fakes.CountingColourExtractor.encoded = 0
    first = _run(_cfg(tmp, suite, [ck]))
    assert fakes.CountingColourExtractor.encoded == 6 + 6  # reference + generated
    store = ResultsStore(tmp / "results.sqlite")
    before = store.scores()
    second = _run(_cfg(tmp, suite, [ck]))
    assert second.evals[0].eval_id == first.evals[0].eval_id and second.evals[0].generated == 0
    assert fakes.CountingColourExtractor.encoded == 12  # nothing encoded again
    assert len(fakes.generated_items(ck)) == 6
    assert [(s["metric"], s["value"]) for s in store.scores()] == [(s["metric"], s["value"]) for s in before]
    assert len(store.items(first.evals[0].eval_id)) == 12


def test_second_checkpoint_reuses_reference_features(setup):
    tmp, suite = setup
    a = fakes.make_checkpoint(tmp / "runs", "r1", 1)
    b = fakes.make_checkpoint(tmp / "runs", "r1", 2, noise=20.0)
    fakes.CountingColourExtractor.encoded = 0
    _run(_cfg(tmp, suite, [a]))
    cold = fakes.CountingColourExtractor.encoded
    _run(_cfg(tmp, suite, [b]))
    assert cold == 12 and fakes.CountingColourExtractor.encoded - cold == 6  # only b's own videos


def test_unusable_reference_clip_is_skipped(setup):
    tmp, suite = setup
    from skyloom.corpus import ClipRecord, Corpus
    from skyloom.fsutil import sha256_file
    from skyloom.video import write_video

    c = Corpus(tmp / "ref")  # add a 3-frame clip: too short for the metric's 8-frame protocol
    p = write_video(c.clip_path("short"), fakes.ball_video((220, 40, 40), 3, T=3), fps=8)
    c.append([ClipRecord(id="short", path="clips/short.mp4", source_kind="licensed", duration_s=0.4, fps=8.0,
                         width=32, height=32, num_frames=3, license_id="CC-BY-4.0", source_url="https://x",
                         author="a", attribution="a", sha256=sha256_file(p))])
    res = _run(_cfg(tmp, suite, [fakes.make_checkpoint(tmp / "runs", "r1", 1)]))
    assert res.evals[0].status == "complete" and res.cache_stats["reference_skipped"] == 1
    s = ResultsStore(tmp / "results.sqlite").scores(metric="mean_distance")[0]
    assert s["details"]["n_real"] == 6


def _killed_run(cfg_json: str) -> None:
    cfg = EvalConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(cfg_json).items()})
    run_eval(cfg, metrics=fakes.FAKE_METRICS)


def test_resume_after_kill(setup):
    tmp, suite = setup
    ck = fakes.make_checkpoint(tmp / "runs", "r1", 3, kill_after=1)  # SIGKILL on the 2nd generate call
    cfg = _cfg(tmp, suite, [ck])
    from skyloom.config import to_dict

    p = mp.get_context("fork").Process(target=_killed_run, args=(json.dumps(to_dict(cfg)),))
    p.start()
    p.join(120)
    assert p.exitcode == -9
    assert len(fakes.generated_items(ck)) == 3  # one batch of 3 made it to disk
    (ck / "fake.json").write_text(json.dumps({}))
    res = _run(cfg)
    assert res.evals[0].status == "complete" and res.evals[0].generated == 3
    made = fakes.generated_items(ck)
    assert len(made) == 6 and len(set(made)) == 6  # nothing generated twice
    store = ResultsStore(tmp / "results.sqlite")
    assert len(store.evals()) == 1 and len(store.items(res.evals[0].eval_id, "colour_match")) == 6


def test_failures_are_recorded_and_nothing_else_is_lost(setup):
    tmp, _ = setup
    suite = fakes.write_suite(tmp / "fake2.yaml", reference=tmp / "ref", extra_prompts=(
        '  - {id: purple, text: "a purple ball", category: odd}\n'
        '  - {id: nanball, text: "a nan ball", category: odd}\n'))
    ok = fakes.make_checkpoint(tmp / "runs", "r1", 1, fail_words=["purple"])
    broken = fakes.make_checkpoint(tmp / "runs", "r1", 2, broken=True)
    missing = tmp / "runs" / "nope" / "checkpoints" / "step-00000009"
    res = _run(_cfg(tmp, suite, [ok, broken, missing]))
    by = {e.checkpoint_name.split("/")[-1]: e for e in res.evals}
    store = ResultsStore(tmp / "results.sqlite")
    assert by["step-00000002"].status == "failed" and by["step-00000009"].status == "failed"
    f2 = store.failures(by["step-00000002"].eval_id)
    assert f2[0]["stage"] == "load" and "weights are corrupt" in f2[0]["reason"]
    assert "no such checkpoint" in store.failures(by["step-00000009"].eval_id)[0]["reason"]
    ok_id = by["step-00000001"].eval_id
    assert by["step-00000001"].status == "partial"
    stages = {(f["item_id"], f["stage"]) for f in store.failures(ok_id)}
    assert stages == {("purple-s0", "generate"), ("purple-s1", "generate"),
                      ("nanball-s0", "score:colour_match"), ("nanball-s1", "score:colour_match")}
    assert len(store.items(ok_id, "colour_match")) == 6 and len(store.items(ok_id, "jitter")) == 8
    # a video that no longer decodes: a decode failure on rescoring; stored values stay
    video = tmp / "runs" / "r1" / "eval" / "fake" / ok_id / "videos" / "red-s0.mp4"
    video.write_bytes(b"not an mp4")
    store.put_items(ok_id, [])
    with store.engine.begin() as c:  # forget red-s0's jitter value so it must be rescored
        c.exec_driver_sql(f"DELETE FROM items WHERE eval_id='{ok_id}' AND item_id='red-s0' AND metric='jitter'")
    _run(_cfg(tmp, suite, [ok]))
    assert ("red-s0", "decode") in {(f["item_id"], f["stage"]) for f in store.failures(ok_id)}
    assert len(store.items(ok_id, "colour_match")) == 6 and len(store.items(ok_id, "jitter")) == 7


def test_bad_suite_fails_before_generating(setup, tmp_path):
    tmp, suite = setup
    bad = tmp / "bad.yaml"
    bad.write_text(suite.read_text().replace("{name: jitter}", "{name: jiter}"))
    ck = fakes.make_checkpoint(tmp / "runs", "r1", 1)
    from skyloom.eval.harness.suites import SuiteError

    with pytest.raises(SuiteError, match=r"unknown metric 'jiter'. Did you mean 'jitter'\?"
                                         r".*Valid metrics: colour_match, jitter, mean_distance"):
        _run(_cfg(tmp, bad, [ck]))
    assert not (ck / "calls.jsonl").exists()
    with pytest.raises(ValueError, match="no checkpoints"):
        _run(_cfg(tmp, suite, []))


@pytest.mark.slow
def test_ray_executor_matches_local(setup, ray_local):
    tmp, suite = setup
    a = fakes.make_checkpoint(tmp / "runs", "r1", 1)
    b = fakes.make_checkpoint(tmp / "runs", "r1", 2, noise=30.0)
    res = _run(_cfg(tmp, suite, [a, b], executor="ray"))
    assert [e.status for e in res.evals] == ["complete", "complete"]
    import os

    pids = {c["pid"] for ck in (a, b) for c in fakes.read_jsonl(ck / "calls.jsonl")}
    assert os.getpid() not in pids and len(pids) == 2  # one actor per checkpoint
    (tmp / "local").mkdir()
    local = _run(_cfg(tmp / "local", suite, [a, b]))  # fresh store and cache; videos already on disk
    assert [e.scores for e in res.evals] == [e.scores for e in local.evals]


def test_suite_loads_with_fake_metrics(setup):
    _, suite = setup
    s = load_suite(suite, metric_names=fakes.FAKE_METRICS.names())
    assert [i["item_id"] for i in s.items()][:2] == ["red-s0", "red-s1"]
