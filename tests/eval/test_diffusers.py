"""``skyloom eval --ckpt diffusers:PATH`` with a tiny randomly initialised WanPipeline made offline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("diffusers")

from skyloom.eval.harness.diffusers_adapter import (
    DiffusersVideoPipeline,
    load_diffusers_pipeline,
)
from skyloom.eval.results.store import ResultsStore
from skyloom.video import read_video
from tests.eval.test_submissions_cli import run_cli

SUITE = """
format: skyloom-suite
name: dif
version: 1
primary_metric: temporal_flickering
seeds: [0, 1]
generation: {num_frames: 8, width: 32, height: 32, fps: 8, steps: 2, guidance: 1.0}
prompts:
  - {id: red, text: "a red ball bounces on a light grey floor", category: colour}
metrics:
  - {name: temporal_flickering, settings: {protocol: all}}  # the variant that scores moving videos too
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("dif") / "tiny-wan"
    r = run_cli(["eval", "tiny-diffusers", str(out)])  # what docs/eval.md runs
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "model_index.json").read_text())["_class_name"] == "WanPipeline"
    assert (out / "tokenizer" / "tokenizer.json").is_file()
    return out


@pytest.mark.slow
def test_eval_diffusers_pipeline_cli(tiny, tmp_path, monkeypatch):
    suite = tmp_path / "dif.yaml"
    suite.write_text(SUITE)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # any download attempt would fail loudly
    db = tmp_path / "res.sqlite"
    args = ["eval", "--suite", str(suite), "--ckpt", f"diffusers:{tiny}", "--device", "cpu", "--db", str(db),
            "--out", str(tmp_path / "out"), "--json"]
    r = run_cli(args)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    ev = res["evals"][0]
    assert ev["status"] == "complete" and ev["generated"] == 2 and ev["checkpoint"] == f"diffusers:{tiny}"
    videos = sorted((tmp_path / "out" / "dif" / ev["eval_id"] / "videos").glob("*.mp4"))
    assert [v.name for v in videos] == ["red-s0.mp4", "red-s1.mp4"]
    a, b = (read_video(v) for v in videos)
    assert a.shape == (8, 32, 32, 3) and not np.array_equal(a, b)  # the suite's size; seeds differ
    store = ResultsStore(db)
    assert store.get_eval(ev["eval_id"])["kind"] == "model"
    doc = json.loads(Path(ev["results_path"]).read_text())
    assert doc["config"]["model"] == "diffusers" and doc["results"]["dif"]["temporal_flickering,none"] > 0
    # a second run resumes: nothing generated again
    r2 = run_cli(args)
    assert r2.returncode == 0 and json.loads(r2.stdout)["evals"][0]["generated"] == 0


@pytest.mark.slow
def test_seeded_and_local_only(tiny, tmp_path):
    pipe = load_diffusers_pipeline(tiny)
    kw = {"steps": 2, "num_frames": 8, "width": 24, "height": 24}
    v = pipe.generate(["a red ball", "a red ball"], [3, 4], **kw)
    assert v.shape == (2, 8, 24, 24, 3) and v.dtype == np.uint8
    assert pipe.last_settings["generated"] == [9, 32, 32]  # rounded up to what Wan makes, then trimmed/resized
    assert np.array_equal(pipe.generate(["a red ball"], [3], **kw)[0], v[0])  # same prompt + seed -> same video
    with pytest.raises(ValueError, match="text-to-video pipeline"):
        pipe.generate(["x"], [0], cond_frames=np.zeros((1, 2, 32, 32, 3), np.uint8), **kw)
    broken = tmp_path / "broken"
    import shutil

    shutil.copytree(tiny, broken)
    shutil.rmtree(broken / "transformer")
    with pytest.raises(Exception) as e:  # a missing component is an error, never a download
        load_diffusers_pipeline(broken)
    msg = str(e.value).lower()
    assert "transformer" in msg or "no file" in msg or "not found" in msg
    with pytest.raises(FileNotFoundError, match="model_index.json"):
        load_diffusers_pipeline(tmp_path)


class _I2V:
    """A stand-in image-to-video pipeline: records its call, returns frames in [0, 1]."""

    vae_scale_factor_temporal, vae_scale_factor_spatial = 4, 8

    def __init__(self):
        self.calls = []

    def __call__(self, prompt=None, image=None, num_frames=16, height=32, width=32, num_inference_steps=50,
                 guidance_scale=5.0, generator=None, output_type="np"):
        self.calls.append({"image": np.asarray(image), "num_frames": num_frames, "height": height, "width": width})

        out = type("Out", (), {})()
        out.frames = [np.full((num_frames, height, width, 3), 0.5, np.float32)]
        return out


def test_image_to_video_gets_the_first_given_frame():
    stub = _I2V()
    p = DiffusersVideoPipeline(stub, Path("."), "cpu")
    cond = np.random.default_rng(0).integers(0, 256, (1, 3, 16, 16, 3), dtype=np.uint8)
    v = p.generate(["continue"], [0], cond_frames=cond, num_frames=6, width=16, height=16)
    call = stub.calls[0]
    assert (call["num_frames"], call["height"], call["width"]) == (9, 16, 16)
    assert np.array_equal(call["image"], cond[0, 0])
    assert v.shape == (1, 6, 16, 16, 3) and np.array_equal(v[0, :3], cond[0]) and (v[0, 3:] == 128).all()
