"""The captioning job: routing, Ray actor pool, resume without duplicates, per-clip failures, CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from skyloom.captioning.config import CaptionConfig
from skyloom.captioning.runner import run
from skyloom.corpus import Corpus


def _caps(corpus: Corpus) -> dict[str, list[tuple[str, str]]]:
    return {r.id: sorted((c.captioner, c.kind) for c in r.captions) for r in corpus.records()}


def test_auto_captions_both_halves_and_resumes(mixed_corpus):
    cfg = CaptionConfig(corpus=str(mixed_corpus.root), executor="local", batch_size=3)
    res = run(cfg)
    assert res.captioned == {"scene-graph": 4, "heuristic": 2} and not res.failures
    caps = _caps(mixed_corpus)
    assert caps["syn-0"] == [("scene-graph", "dense"), ("scene-graph", "short")]
    assert caps["lic-0"] == [("heuristic", "heuristic")]
    rec = mixed_corpus.get("syn-1")
    c = rec.captions[0]
    assert c.template_version == "sg-1" and c.model_id == "scene-graph" and c.seconds > 0 and c.created_at
    lic = mixed_corpus.get("lic-1").captions[0]
    assert lic.text.startswith("Heuristic description, no vision-language model")
    parts = len(mixed_corpus.part_files())
    again = run(cfg)  # resume: nothing left to do, nothing duplicated
    assert again.captioned == {} and again.skipped == {"scene-graph": 4, "heuristic": 2}
    assert len(mixed_corpus.part_files()) == parts and _caps(mixed_corpus) == caps
    assert (mixed_corpus.root / "caption_runs").is_dir()


def test_ray_actor_pool_and_unreadable_clip(mixed_corpus, ray_local):
    mixed_corpus.clip_path("lic-1").write_bytes(b"not a video")  # unreadable clip
    (mixed_corpus.gt_path("syn-3")).write_text("{ broken json")  # unreadable ground truth
    cfg = CaptionConfig(corpus=str(mixed_corpus.root), executor="ray", num_actors=2, batch_size=2)
    res = run(cfg)
    assert res.captioned == {"scene-graph": 3, "heuristic": 1}
    assert res.failed == {"scene-graph": 1, "heuristic": 1}
    q = {r["item"]: r for r in mixed_corpus.quarantined("caption")}
    assert set(q) == {"lic-1", "syn-3"} and "unreadable input" in q["lic-1"]["reason"]
    assert q["syn-3"]["captioner"] == "scene-graph"
    # A rerun retries only the failed clips.
    res2 = run(cfg)
    assert res2.captioned == {} and res2.failed == {"scene-graph": 1, "heuristic": 1}


def test_quarantine_entry_is_cleared_when_the_clip_is_captioned_later(mixed_corpus):
    """One entry per clip while it keeps failing (attempts counted); gone once it is captioned."""
    gt = mixed_corpus.gt_path("syn-3")
    good = gt.read_text()
    gt.write_text("{ broken json")
    cfg = CaptionConfig(corpus=str(mixed_corpus.root), executor="local", batch_size=3)
    for attempt in (1, 2):
        run(cfg)
        q = [r for r in mixed_corpus.quarantined("caption") if r["item"] == "syn-3"]
        assert len(q) == 1 and q[0]["attempts"] == attempt
    gt.write_text(good)
    res = run(cfg)
    assert res.captioned == {"scene-graph": 1} and not res.failures
    assert mixed_corpus.quarantined("caption") == []
    assert [c.captioner for c in mixed_corpus.get("syn-3").captions] == ["scene-graph", "scene-graph"]


def test_explicit_captioner_and_errors(mixed_corpus):
    res = run(CaptionConfig(corpus=str(mixed_corpus.root), captioner="scene-graph", executor="local"))
    assert res.captioned == {"scene-graph": 4} and res.failed == {"scene-graph": 2}
    assert all("no ground truth" in f["reason"] for f in res.failures)
    from skyloom.registry import RegistryError

    with pytest.raises(RegistryError, match="scene-graph"):
        run(CaptionConfig(corpus=str(mixed_corpus.root), captioner="scene-grahp", executor="local"))
    with pytest.raises(ValueError, match="corpus"):
        run(CaptionConfig())


def test_cli_caption_verify_stats_upsample(mixed_corpus):
    from skyloom.cli import app

    cli = CliRunner()
    root = str(mixed_corpus.root)
    r = cli.invoke(app, ["caption", root, "--captioner", "auto", "--set", "executor=local"])
    assert r.exit_code == 0, r.output
    r = cli.invoke(app, ["caption", "verify", root, "--out", f"{root}/v.json"])
    assert r.exit_code == 0, r.output
    rep = json.loads((mixed_corpus.root / "v.json").read_text())
    assert rep["groups"]["scene-graph/dense"]["precision"] == 1.0
    assert rep["groups"]["scene-graph/dense"]["recall"] == 1.0
    assert rep["groups"]["scene-graph/dense"]["n"] == 4
    r = cli.invoke(app, ["caption", "stats", root, "--json"])
    assert r.exit_code == 0, r.output
    st = json.loads(r.stdout)
    assert st["coverage"] == 1.0 and st["groups"]["scene-graph/dense"]["captions"] == 4
    assert st["groups"]["scene-graph/dense"]["words_mean"] > st["groups"]["scene-graph/short"]["words_mean"]
    r = cli.invoke(app, ["caption", "upsample", "a red ball bouncing", "--seed", "1"])
    assert r.exit_code == 0 and "red" in r.stdout


def test_crash_midway_then_resume_without_duplicates(tmp_path, monkeypatch):
    from skyloom.captioning import runner
    from tests.captioning.conftest import make_mixed_corpus

    corpus = make_mixed_corpus(tmp_path / "c", n_syn=6, n_lic=0)

    calls = {"n": 0}
    real = runner.CaptionWorker.run_batch

    def crashing(self, clips):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # the job dies after its first batch
        return real(self, clips)

    monkeypatch.setattr(runner.CaptionWorker, "run_batch", crashing)
    cfg = CaptionConfig(corpus=str(corpus.root), executor="local", batch_size=2, write_every=4)
    with pytest.raises(KeyboardInterrupt):
        run(cfg)
    done = [r.id for r in corpus.records() if r.captions]
    assert len(done) == 2  # the first batch was kept (flushed on the way out)
    monkeypatch.setattr(runner.CaptionWorker, "run_batch", real)
    res = run(cfg)
    assert res.captioned == {"scene-graph": 4} and res.skipped == {"scene-graph": 2}
    for r in corpus.records():
        assert sorted(c.kind for c in r.captions) == ["dense", "short"]
