"""Temporal metrics: formulas against hand-computed numpy, and probe directions
(static, frame-shuffled, noise-corrupted videos)."""

from __future__ import annotations

import numpy as np
import pytest

from skyloom.eval.features.base import get_extractor
from skyloom.eval.functional import temporal
from skyloom.eval.metrics import METRICS
from tests.conftest import moving_square_video


def _textured(T: int = 10, H: int = 40, W: int = 40, speed: int = 1, seed: int = 0) -> np.ndarray:
    """A smooth random texture translating right by ``speed`` px per frame (flow is well defined)."""
    import cv2

    rng = np.random.default_rng(seed)
    big = cv2.GaussianBlur(rng.integers(0, 256, (H, W + T * speed, 3)).astype(np.uint8), (7, 7), 0)
    big = cv2.normalize(big, None, 0, 255, cv2.NORM_MINMAX)
    return np.stack([big[:, W + (T - t) * speed - W: W + (T - t) * speed][:, :W] for t in range(T)])


def test_vbench_consistency_matches_hand_loop():
    f = np.random.default_rng(0).normal(size=(6, 5))
    n = f / np.linalg.norm(f, axis=1, keepdims=True)
    hand = np.mean([0.5 * (max(0.0, n[t - 1] @ n[t]) + max(0.0, n[0] @ n[t])) for t in range(1, 6)])
    assert temporal.vbench_consistency(f) == pytest.approx(hand, rel=1e-12)
    assert temporal.clip_temp(f) == pytest.approx(np.mean([n[t] @ n[t + 1] for t in range(5)]), rel=1e-12)
    assert temporal.vbench_consistency(np.tile(f[:1], (4, 1))) == pytest.approx(1.0)


def test_flickering_formula_and_probes():
    v = moving_square_video(8, 16, 16)
    hand = (255 - np.mean([np.abs(v[t].astype(float) - v[t + 1]).mean() for t in range(7)])) / 255
    assert temporal.temporal_flickering(v) == pytest.approx(hand, rel=1e-12)
    static = np.repeat(v[:1], 8, axis=0)
    assert temporal.temporal_flickering(static) == 1.0
    rng = np.random.default_rng(0)
    noisy = np.clip(static + rng.normal(0, 20, static.shape), 0, 255).astype(np.uint8)
    assert temporal.temporal_flickering(noisy) < temporal.temporal_flickering(static)
    with pytest.raises(ValueError, match="uint8"):
        temporal.temporal_flickering(v.astype(np.float32))


def test_occlusion_mask_formula():
    h, w = 6, 8
    zero = np.zeros((h, w, 2), np.float32)
    assert not temporal.occlusion_mask(zero, zero).any()
    fw = np.zeros((h, w, 2), np.float32)
    fw[..., 0] = 2.0
    bw = -fw  # consistent: back flow undoes the forward flow
    assert not temporal.occlusion_mask(fw, bw).any()
    # inconsistent: |F + B_w|² = 16 > 0.01 (4 + 4) + 0.5 -> occluded everywhere
    assert temporal.occlusion_mask(fw, fw).all()
    edge = np.zeros((h, w, 2), np.float32)
    edge[:, 4:, 0] = 1.0  # motion boundary between columns 3 and 4
    m = temporal.occlusion_mask(edge, -edge)
    assert m[:, 3].all() and not m[:, 0].any()


def test_warping_error_probes():
    v = _textured()
    static = np.repeat(v[:1], 10, axis=0)
    assert temporal.warping_error(static) == pytest.approx(0.0, abs=1e-8)
    base = temporal.warping_error(v)
    shuffled = v[np.random.default_rng(0).permutation(10)]
    noisy = np.clip(v + np.random.default_rng(1).normal(0, 25, v.shape), 0, 255).astype(np.uint8)
    assert temporal.warping_error(shuffled) > 2 * base
    assert temporal.warping_error(noisy) > 2 * base
    assert temporal.warping_error(v, "farneback") < temporal.warping_error(noisy, "farneback")
    with pytest.raises(ValueError, match="unknown flow"):
        temporal.warping_error(v, "raft")


def test_consistency_metrics_on_probes():
    ex = get_extractor("pixels")
    vids = np.stack([moving_square_video(12, 32, 32, seed=s) for s in range(3)])
    rng = np.random.default_rng(0)
    shuffled = np.stack([v[rng.permutation(12)] for v in vids])
    noisy = np.clip(vids + rng.normal(0, 60, vids.shape), 0, 255).astype(np.uint8)
    for name in ("subject_consistency", "background_consistency", "clip_temp"):
        scores = {}
        for label, batch in (("orig", vids), ("shuffled", shuffled), ("noisy", noisy)):
            m = METRICS.build(name, extractor=ex)
            m.update(batch)
            scores[label] = m.compute().value
        assert scores["orig"] > scores["shuffled"] and scores["orig"] > scores["noisy"], (name, scores)
    m = METRICS.build("warping_error", options={"flow": "farneback"})
    m.update(vids[:1], item_ids=["a"])
    r = m.compute()
    assert r.extractor == "opencv-farneback-flow" and not r.higher_is_better


def test_dino_extractor_loads_official_layout(tmp_path):
    import torch

    from skyloom.eval.features.dino import TINY_DINO

    ex = get_extractor("dino", random_init=True, model_cfg=TINY_DINO)
    keys = list(ex.model.state_dict())
    for k in ("cls_token", "pos_embed", "patch_embed.proj.weight", "blocks.0.attn.qkv.weight",
              "blocks.0.mlp.fc2.bias", "norm.weight"):  # names of the official DINO checkpoint
        assert k in keys
    v = np.random.default_rng(0).integers(0, 256, (3, 40, 70, 3), dtype=np.uint8)
    e = ex.encode_frames(v)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-6)
    path = tmp_path / "dino.pth"  # DINO's training checkpoints wrap the backbone like this
    torch.save({"teacher": {f"backbone.{k}": t for k, t in ex.model.state_dict().items()}}, path)
    loaded = get_extractor("dino", weights=path, model_cfg=TINY_DINO)
    np.testing.assert_allclose(loaded.encode_frames(v), e, atol=1e-7)
    assert ex.weights == "random-init" and len(loaded.weights) == 64
    m = METRICS.build("subject_consistency", extractor=loaded)
    m.update(np.stack([moving_square_video(6, 32, 32)]))
    assert m.compute().extractor == "dino-vit-custom"
    with pytest.raises(FileNotFoundError, match="never downloads"):
        get_extractor("dino")


def test_dynamic_degree_and_static_only_flickering():
    moving = _textured(T=16, H=48, W=48, speed=3)
    static = np.repeat(moving[:1], 16, axis=0)
    grey = np.full((16, 48, 48, 3), 128, np.uint8)
    assert temporal.dynamic_degree(moving)[0] and not temporal.dynamic_degree(static)[0]
    assert temporal.vbench_is_static(static) and temporal.vbench_is_static(grey)
    assert not temporal.vbench_is_static(moving)
    dd = METRICS.build("dynamic_degree")
    dd.update([moving, static, grey], item_ids=["moving", "static", "grey"])
    r = dd.compute()
    assert r.per_item == {"moving": 1.0, "static": 0.0, "grey": 0.0} and r.value == pytest.approx(1 / 3)
    assert r.preprocessing["protocol"] == "vbench-opencv-dis" and r.details["motion_px"] > 0
    fl = METRICS.build("temporal_flickering")
    fl.update([moving, grey], item_ids=["moving", "grey"])
    r = fl.compute()  # VBench scores flickering on static videos only: the moving one is not scored
    assert np.isnan(r.per_item["moving"]) and r.per_item["grey"] == 1.0 and r.n == 1
    assert r.details["protocol"] == "vbench-static" and r.details["skipped_non_finite"] == 1
    every = METRICS.build("temporal_flickering", options={"protocol": "all"})
    every.update([moving, grey], item_ids=["moving", "grey"])
    assert every.compute().per_item["moving"] < 1.0


def test_dynamic_degree_follows_vbench_frame_rate_subsampling():
    """VBench keeps every max(1, round(fps/8))-th frame before flow (``DynamicDegree.get_frames``): a clip
    moving 1 px per frame at 30 fps (4 px per kept pair) is dynamic, as carphone (30 fps) is in VBench;
    the same frames at 8 fps are not (1 px < 6*64/256)."""
    assert [temporal.vbench_frame_interval(f) for f in (None, 8, 12, 20, 24, 25, 30, 60)] == [1, 1, 2, 2, 3, 3, 4, 8]
    slow = _textured(T=32, H=64, W=64, speed=1)
    assert not temporal.dynamic_degree(slow, fps=8)[0] and not temporal.dynamic_degree(slow)[0]
    moving, mags = temporal.dynamic_degree(slow, fps=30)
    assert moving and len(mags) == 7  # 8 kept frames (0, 4, ..., 28)
    dd = METRICS.build("dynamic_degree", options={"fps": 30})
    dd.update([slow])
    assert dd.compute().value == 1.0 and dd.identity()["preprocessing"]["frames"].startswith("every 4-th")


@pytest.mark.parametrize("name", ["flicker_256x320", "flicker_480x640"])
def test_flickering_equals_vbench_cal_score_on_large_mp4s(name):
    """VBench's own ``temporal_flickering.cal_score`` (Vchitect/VBench 45e79ec, OpenCV decode; stored by
    fixtures/make_vbench_flickering.py) on >= 256 px mp4 files equals skyloom's on the same files decoded by
    skyloom (PyAV): decoding and the MAE agree to float32 accumulation."""
    import json
    from pathlib import Path

    from skyloom.video import read_video

    fix = Path(__file__).parent / "fixtures"
    ref = json.loads((fix / "reference_vbench_flickering.json").read_text())
    assert ref["commit"] == "45e79ec14e69a2187202c675d2dbce1a71843d53"
    v = read_video(fix / f"{name}.mp4")
    assert min(v.shape[1:3]) >= 256
    want = ref["results"][name]["cal_score"]
    assert temporal.temporal_flickering(v) == pytest.approx(want, abs=1e-8)
    m = METRICS.build("temporal_flickering", options={"protocol": "all"})
    m.update([v])
    assert m.compute().value == pytest.approx(want, abs=1e-8)


def test_a_suite_passes_its_frame_rate_to_dynamic_degree(tmp_path):
    from skyloom.eval.features.cache import FeatureCache
    from skyloom.eval.harness.scoring import Scorer
    from skyloom.eval.harness.suites import load_suite

    (tmp_path / "s.yaml").write_text("format: skyloom-suite\nname: s\nversion: 1\ngeneration: {fps: 30}\n"
                                     "prompts:\n  - {id: a, text: a ball}\nmetrics:\n  - {name: dynamic_degree}\n"
                                     "  - {name: dynamic_degree, id: dd8, settings: {fps: 8}}\n")
    suite = load_suite(tmp_path / "s.yaml")
    scorer = Scorer(suite, METRICS, FeatureCache(tmp_path / "cache"))
    auto, given = (scorer.make_metric(m) for m in suite.metrics)
    assert auto.fps == 30.0 and given.fps == 8.0  # the suite's rate unless the settings name one
