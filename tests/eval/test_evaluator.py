"""In-domain evaluator: trains on a captioned corpus in well under a minute, ranks true captions
above wrong-colour / wrong-motion captions on held-out clips, and plugs into metrics and suites."""

from __future__ import annotations

import json

import numpy as np
import pytest

from skyloom.eval.features.indomain import (
    EvaluatorConfig,
    corrupt_colour,
    corrupt_motion,
    load_evaluator,
    train_evaluator,
)
from tests.eval import fakes


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evaluator")
    corpus = fakes.make_motion_corpus(tmp / "corpus", per_combo=6, seed=0, split="train")
    fakes.make_motion_corpus(corpus, per_combo=2, seed=1, split="val")  # held-out clips, other seeds
    res = train_evaluator(str(corpus), str(tmp / "ev"), EvaluatorConfig(steps=250, batch_size=24))
    return tmp, corpus, res


@pytest.mark.slow
def test_heldout_caption_ranking(trained):
    tmp, _, res = trained
    rep = res["heldout"]
    assert res["train_clips"] == 72 and res["heldout_clips"] == 24
    assert rep["n_colour"] == 24 and rep["n_motion"] == 24
    # CLIPSIM prefers the true caption over the same caption with a wrong colour / motion
    assert rep["accuracy_colour"] >= 0.8, rep
    assert rep["accuracy_motion"] >= 0.7, rep
    assert rep["mean_margin_colour"] > 0 and rep["mean_margin_motion"] > 0
    assert np.isfinite(res["final_loss"])  # hard negatives of other clips are masked without -inf
    assert res["config"]["motion_input"] and res["config"]["hard_negatives"]  # the defaults
    assert json.loads((tmp / "ev" / "heldout.json").read_text())["accuracy_any"] == rep["accuracy_any"]


@pytest.mark.slow
def test_extractor_contract_and_labels(trained):
    tmp, _, res = trained
    from skyloom.eval.features.base import get_extractor
    from skyloom.eval.metrics import METRICS
    from skyloom.fsutil import sha256_file

    ex = load_evaluator(tmp / "ev")
    assert ex.name == f"indomain:{(tmp / 'ev').resolve()}"
    assert get_extractor(ex.name).weights == ex.weights  # the name resolves (reading the folder again)
    assert ex.weights == sha256_file(tmp / "ev" / "model.safetensors") and ex.weights != "random-init"
    v = fakes.motion_video(fakes.COLOURS["red"], "bounce", seed=5)
    f = ex.encode_frames(v)
    assert f.shape == (16, ex.dim) and np.allclose(np.linalg.norm(f, axis=1), 1)
    assert not np.allclose(ex.encode_frames(v[::-1])[::-1], f)  # frame embeddings see their clip (motion)
    assert ex.encode_videos(np.stack([v, v])).shape == (2, ex.dim)
    t = ex.encode_text(["a red ball bounces up and down", "a blue ball rolls to the right"])
    assert t.shape == (2, ex.dim) and np.allclose(np.linalg.norm(t, axis=1), 1)
    # the clipsim metric with this extractor computes exactly what the model was trained on
    m = METRICS.build("clipsim", extractor=ex)
    m.update(v[None], prompts=["a red ball bounces up and down"], item_ids=["x"])
    r = m.compute()
    # float32 model, float64 metric
    assert r.value == pytest.approx(ex.clipsim(v, "a red ball bounces up and down"), abs=1e-6)
    assert r.extractor == ex.name and r.weights == ex.weights


@pytest.mark.slow
def test_suite_numbers_are_labelled_with_the_evaluator(trained, tmp_path):
    tmp, _, _ = trained
    from skyloom.eval.harness.runner import EvalConfig, run_eval
    from skyloom.eval.results.store import ResultsStore

    suite = tmp_path / "s.yaml"
    suite.write_text("""
format: skyloom-suite
name: indomain
prompts:
  - {id: red, text: "a red ball rolls to the right"}
  - {id: blue, text: "a blue ball rolls to the right"}
extractors: {text_video: "indomain:EV"}
metrics:
  - {name: clipsim, extractor: text_video}
""".replace("EV", str(tmp / "ev")))
    ck = fakes.make_checkpoint(tmp_path / "runs", "r", 1)
    run_eval(EvalConfig(suite=str(suite), checkpoints=(str(ck),), cache_dir=str(tmp_path / "cache"),
                        pipeline_loader=fakes.LOADER, n_boot=100))
    s = ResultsStore(tmp_path / "runs" / "r" / "results.sqlite").scores()[0]
    assert s["metric"] == "clipsim" and s["extractor"] == f"indomain:{(tmp / 'ev').resolve()}"
    assert len(s["weights"]) == 64 and s["details"]["preprocessing"]["corpus"]


def test_caption_corruptions():
    assert corrupt_motion("a red ball bounces up and down") == "a red ball rolls up and down"
    assert corrupt_motion("a blue ball rolls to the right") == "a blue ball bounces to the right"
    assert corrupt_motion("a ball") is None
    bad = corrupt_colour("a red ball and a blue cube", seed=0)
    assert "red" not in bad and "blue" not in bad and bad.endswith("cube")
    assert corrupt_colour("a ball") is None


def test_bad_inputs(tmp_path):
    from skyloom.corpus import Corpus

    Corpus.create(tmp_path / "empty")
    with pytest.raises(ValueError, match="0 captioned clip"):
        train_evaluator(str(tmp_path / "empty"), str(tmp_path / "out"))
    with pytest.raises(FileNotFoundError, match="not an in-domain evaluator folder"):
        load_evaluator(tmp_path)


@pytest.mark.slow
def test_train_evaluator_cli(trained, tmp_path):
    from typer.testing import CliRunner

    from skyloom.cli import app

    _, corpus, _ = trained
    r = CliRunner().invoke(app, ["eval", "train-evaluator", str(corpus), "--out", str(tmp_path / "ev"),
                                 "--set", "steps=3", "--set", "batch_size=8"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "indomain:" in r.output and (tmp_path / "ev" / "model.safetensors").exists()
    assert (tmp_path / "ev" / "evaluator.yaml").exists()


@pytest.mark.slow
def test_score_cli_uses_the_evaluator_without_loading_it_first(trained, tmp_path):
    """`skyloom eval score --extractor indomain:PATH` in a fresh process: the name alone loads it."""
    import subprocess
    import sys

    from skyloom.video import write_video
    from tests.conftest import moving_square_video

    tmp, _, res = trained
    videos = tmp_path / "videos"
    write_video(videos / "a.mp4", moving_square_video(T=8, colour=(220, 30, 30)), fps=8)
    write_video(videos / "b.mp4", moving_square_video(T=8, colour=(30, 30, 220)), fps=8)
    (tmp_path / "prompts.json").write_text(json.dumps({"a": "a red ball rolls", "b": "a blue ball rolls"}))
    ev = tmp / "ev"
    out = subprocess.run([sys.executable, "-m", "skyloom.cli", "eval", "score", "--metric", "clipsim",
                          "--videos", str(videos), "--prompts", str(tmp_path / "prompts.json"),
                          "--extractor", f"indomain:{ev}", "--json"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    result = json.loads(out.stdout[out.stdout.index("{"):])
    assert result["n"] == 2 and result["extractor"] == f"indomain:{ev.resolve()}"
    from skyloom.eval.features.base import get_extractor

    with pytest.raises(ValueError, match="takes no options"):
        get_extractor(f"indomain:{ev}", weights="x")
