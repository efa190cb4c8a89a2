"""Conformance with the reference projects' own code, run once on fixed inputs.

The fixtures in ``tests/eval/fixtures/reference_*.json`` were produced by running VBench, DINO,
open_clip, torchmetrics, Lai et al.'s ``evaluate_WarpError.py`` and Physics-IQ's ``code/`` (their
commits and the exact calls are recorded in each file) on ``reference_inputs.npz`` and on the
same random-init feature models that skyloom builds here; no fetched code is in this repository.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest

from skyloom.eval.metrics import METRICS, clipsim_from_embeddings

FIX = Path(__file__).parent / "fixtures"


def _load(name: str) -> dict:
    return json.loads((FIX / name).read_text())


@pytest.fixture(scope="module")
def vb() -> dict:
    return _load("reference_vbench_clip.json")


@pytest.fixture(scope="module")
def videos() -> dict[str, np.ndarray]:
    with np.load(FIX / "reference_inputs.npz") as z:
        return {k: z[k] for k in z.files}


def test_fixture_inputs_are_the_recorded_ones(vb, videos):
    import hashlib

    assert {k: hashlib.sha256(v.tobytes()).hexdigest() for k, v in videos.items()} == vb["inputs"]["sha256"]
    assert len(vb["projects"]["Vchitect/VBench"]) == 40


def _equals_vbench(metric: str, extractor, videos, vb):
    """Score ``videos`` with ``metric`` and check every per-video value and the aggregate against
    VBench's stored output; returns the result."""
    m = METRICS.get(metric)(extractor=extractor)
    m.update(list(videos.values()), item_ids=list(videos))
    r = m.compute()
    ref = vb[metric]
    for k, v in ref["per_video"].items():
        assert r.per_item[k] == pytest.approx(v, abs=2e-6), k
    assert r.value == pytest.approx(ref["all"], abs=2e-6)
    return r


def test_subject_consistency_equals_vbench_with_dino(vb, videos):
    from skyloom.eval.features.base import get_extractor

    ex = get_extractor("dino", random_init=True, model_cfg=vb["models"]["dino"]["cfg"], seed=0)
    r = _equals_vbench("subject_consistency", ex, videos, vb)
    assert r.preprocessing["protocol"] == "vbench-dino"


def test_background_consistency_equals_vbench_clip_transform(vb, videos):
    from skyloom.eval.features.base import get_extractor

    ex = get_extractor("clip", random_init=True, model_cfg=vb["models"]["clip"]["cfg"], seed=0, preprocess="vbench")
    _equals_vbench("background_consistency", ex, videos, vb)


def test_vbench_aggregation_weights_frames():
    """VBench divides the sum of frame terms by their count: a 3-frame and a 9-frame video are
    not averaged as two equal items."""
    from skyloom.eval.functional import temporal

    class Feats:
        name, weights, preprocessing = "fixed", "none", {}

        def identity(self):
            return {"extractor": self.name, "weights": self.weights, "preprocessing": {}}

        def encode_frames(self, v):
            return np.asarray(v[:, 0, 0, :2], np.float64) + 1.0

    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 255, (t, 2, 2, 3), dtype=np.uint8) for t in (3, 9))
    m = METRICS.build("subject_consistency", extractor=Feats())
    m.update([a, b], item_ids=["a", "b"])
    ta, tb = (temporal.vbench_consistency_per_frame(Feats().encode_frames(v)) for v in (a, b))
    assert m.compute().value == pytest.approx((ta.sum() + tb.sum()) / (len(ta) + len(tb)), rel=1e-12)


def test_clip_preprocessing_equals_open_clip_transform(vb, videos):
    from skyloom.eval.features.base import get_extractor

    ex = get_extractor("clip", random_init=True, model_cfg=vb["models"]["clip"]["cfg"], seed=0)
    assert ex.preprocessing["protocol"] == "open_clip"
    for k, v in videos.items():
        px = ex._pixels(v).double()
        ref = vb["open_clip_preprocess"][k]
        assert list(px.shape) == ref["shape"]
        flat = px.reshape(-1).numpy()
        idx = np.linspace(0, flat.size - 1, 64).astype(int)
        np.testing.assert_allclose(flat[idx], ref["samples"], atol=1e-6)
        assert float(px.sum()) == pytest.approx(ref["sum"], rel=1e-6)
        np.testing.assert_allclose(ex.encode_frames(v), vb["open_clip_embeddings"][k], atol=2e-6)


def test_long_side_is_truncated_like_torchvision(videos):
    """A 48x64 frame becomes 224x298 (int(298.67)), not 224x299."""
    from skyloom.eval.features.clip import vbench_clip_pixels
    from skyloom.eval.features.dino import vbench_dino_pixels

    assert vbench_dino_pixels(videos["v48x64"][:1]).shape[-2:] == (224, 298)
    assert vbench_dino_pixels(videos["v48x85"][:1]).shape[-2:] == (224, 396)
    assert vbench_clip_pixels(videos["v48x85"][:1], 224).shape[-2:] == (224, 224)


def test_clipsim_x100_equals_torchmetrics_clipscore(vb):
    fx = vb["clip_score_fixed_embeddings"]
    x100 = []
    for frames, text, ref in zip(fx["videos"], fx["texts"], fx["per_video"]):
        _, x = clipsim_from_embeddings(np.asarray(frames), np.asarray(text))
        assert max(x, 0.0) == pytest.approx(ref["clip_score"], rel=1e-5)
        assert x * len(frames) == pytest.approx(ref["score_sum"], rel=1e-5)
        x100.append(x)
        per_frame_floor = np.mean(np.maximum(100 * (np.asarray(frames) / np.linalg.norm(frames, axis=1, keepdims=True))
                                             @ (np.asarray(text) / np.linalg.norm(text)), 0))
        if ref["clip_score"] < 20:  # the old per-frame floor is not torchmetrics' number
            assert abs(per_frame_floor - ref["clip_score"]) > 1
    m = METRICS.build("clipsim_x100", extractor=_FixedCLIP(fx))
    m.update([np.full((6, 1, 1, 3), i, np.uint8) for i in range(3)], prompts=["0", "1", "2"], item_ids=["a", "b", "c"])
    r = m.compute()
    assert r.value == pytest.approx(fx["all_videos"], rel=1e-5)
    assert r.details["torchmetrics_clip_score"] == pytest.approx(fx["all_videos"], rel=1e-5)


def test_clipsim_x100_floors_the_mean_with_random_init_clip(vb, videos):
    from skyloom.eval.features.base import get_extractor

    ex = get_extractor("clip", random_init=True, model_cfg=vb["models"]["clip"]["cfg"], seed=0)
    m = METRICS.build("clipsim_x100", extractor=ex)
    prompts = vb["inputs"]["prompts"]
    m.update(list(videos.values()), prompts=[prompts[k] for k in videos], item_ids=list(videos))
    r = m.compute()
    for k, ref in vb["clip_score"]["per_video"].items():
        assert r.per_item[k] * ref["n"] == pytest.approx(ref["score_sum"], rel=1e-4)
    assert r.value == vb["clip_score"]["all_videos"] == 0.0


class _FixedCLIP:
    """Serves the fixture's fixed embeddings: video i's frames, prompt str(i)."""

    name, weights, preprocessing = "fixed", "none", {}

    def __init__(self, fx: dict) -> None:
        self.fx = fx

    def identity(self):
        return {"extractor": self.name, "weights": self.weights, "preprocessing": {}}

    def encode_frames(self, v):
        return np.asarray(self.fx["videos"][int(v[0, 0, 0, 0])], np.float64)

    def encode_text(self, texts):
        return np.asarray([self.fx["texts"][int(t)] for t in texts], np.float64)


def test_warping_error_equals_lai_evaluate_warp_error():
    from skyloom.eval.functional import temporal

    ref = _load("reference_lai_warp.json")
    with np.load(FIX / "reference_lai_inputs.npz") as z:
        for k, want in ref["warping_error"].items():
            frames, flows = z[f"frames_{k}"], z[f"flows_{k}"]  # flows (T-1, 2, H, W, 2): fw, bw
            got = temporal.warping_error(frames, protocol="lai2018", flows=[(f[0], f[1]) for f in flows])
            assert got == pytest.approx(want, rel=1e-5), k
            if k == "occluded40x40":  # a fully occluded pair counts 0 and still divides by T-1
                per = temporal.warping_error_per_pair(frames, protocol="lai2018", flows=[(f[0], f[1]) for f in flows])
                assert per[1] == 0.0
                assert np.isnan(temporal.warping_error_per_pair(frames, protocol="rgb-sum",
                                                                flows=[(f[0], f[1]) for f in flows])[1])


def test_warping_error_rgb_sum_variant_is_named_and_about_three_times_lai():
    from skyloom.eval.functional import temporal

    with np.load(FIX / "reference_lai_inputs.npz") as z:
        frames, flows = z["frames_v48x64"], [(f[0], f[1]) for f in z["flows_v48x64"]]
    lai = temporal.warping_error(frames, protocol="lai2018", flows=flows)
    rgb = temporal.warping_error(frames, protocol="rgb-sum", flows=flows)
    assert 2.5 < rgb / lai < 3.5
    m = METRICS.build("warping_error", options={"protocol": "rgb-sum"})
    assert m.identity()["preprocessing"]["protocol"] == "rgb-sum"
    with pytest.raises(ValueError, match="lai2018"):
        METRICS.build("warping_error", options={"protocol": "lai"})


def i3d_reference_state_dict() -> dict:
    """Random-init piergiaj-layout I3D weights with realistic BatchNorm statistics (small running
    variances, where the eps matters), shared with the reference run of VideoGPT's I3D."""
    import torch

    from skyloom.eval.features.base import get_extractor

    sd = get_extractor("i3d", random_init=True, seed=0).model.state_dict()
    g = torch.Generator().manual_seed(1)
    for k in [k for k in sd if k.endswith("bn.running_var")]:
        var = 10 ** (torch.rand(sd[k].shape, generator=g) * 2 - 3)  # 1e-3 .. 1e-1
        pre = k.removesuffix("running_var")
        sd[k] = var
        sd[pre + "running_mean"] = torch.randn(var.shape, generator=g) * 0.01
        sd[pre + "weight"] = var.sqrt() * (1 + 0.1 * torch.randn(var.shape, generator=g))  # keeps activations O(1)
        sd[pre + "bias"] = 0.1 * torch.randn(var.shape, generator=g)
    return sd


def i3d_reference_input():
    """(1, 3, 16, 224, 224) float32 in [-1, 1], fixed by a seeded torch generator."""
    import torch

    return torch.rand((1, 3, 16, 224, 224), generator=torch.Generator().manual_seed(2)) * 2 - 1


@pytest.mark.slow
def test_i3d_videogpt_protocol_equals_videogpt_i3d():
    import torch

    from skyloom.eval.features.i3d import BN_EPS, InceptionI3d

    ref = _load("reference_videogpt_i3d.json")
    assert ref["bn_eps"] == [BN_EPS["videogpt"]]
    sd, x = i3d_reference_state_dict(), i3d_reference_input()
    out = {}
    for protocol, eps in BN_EPS.items():
        m = InceptionI3d(400, bn_eps=eps).eval()
        m.load_state_dict(sd)
        with torch.inference_mode():
            out[protocol] = m(x).mean(dim=2)[0].double().numpy()
    want = np.asarray(ref["logits"])
    scale = np.abs(want).max()
    assert np.abs(out["videogpt"] - want).max() < 1e-4 * scale
    assert np.abs(out["tf-hub"] - want).max() > 100 * np.abs(out["videogpt"] - want).max()  # eps matters


def test_physics_iq_protocol_equals_physics_iq_code():
    from skyloom.eval.functional import physics_iq

    ref = _load("reference_physics_iq.json")
    with np.load(FIX / "reference_physics_iq_inputs.npz") as z:
        data = {k: z[k] for k in z.files}
    views = ["perspective-left", "perspective-center", "perspective-right"]
    rows = {r["scenario"]: r for r in ref["csv"]}
    scenarios = []
    for scen in ("drop", "throw"):
        vs = []
        for v in views:
            take1, take2, gen = (data[f"{scen}|{v}|{k}"] for k in ("take1", "take2", "gen"))
            m = physics_iq.piq_masks(take1)
            assert [int(np.sum(x > 127)) * 3 for x in m] == ref["mask_pixels_take1"][f"{scen}|{v}"]
            out = physics_iq.piq_view(gen, take1, take2)
            row = {k: (ast.literal_eval(x) if isinstance(x, str) and x.startswith("[") else x)
                   for k, x in rows[f"{scen}.mp4"].items()}  # list columns are stored as CSV strings
            np.testing.assert_allclose(out["mse"], row[f"v1_mse_{v}"], rtol=1e-6, atol=1e-9)
            np.testing.assert_allclose(out["spatiotemporal_iou"], row[f"spatiotemporal_iou_v1_{v}"], atol=1e-12)
            np.testing.assert_allclose(out["variance_mse"], row[f"variance_mse_{v}"], rtol=1e-6, atol=1e-9)
            assert out["spatial_iou"] == pytest.approx(row[f"spatial_iou_v1_{v}"], abs=1e-12)
            assert out["weighted_spatial_iou"] == pytest.approx(row[f"weighted_spatial_iou_v1_{v}"], abs=1e-12)
            assert out["variance_spatial_iou"] == pytest.approx(row[f"variance_spatial_{v}"], abs=1e-12)
            assert out["variance_weighted_spatial_iou"] == pytest.approx(row[f"variance_weighted_spatial_{v}"],
                                                                         abs=1e-12)
            vs.append(out)
        scenarios.append(vs)
    res = physics_iq.piq_score(scenarios)
    assert res["score"] == pytest.approx(ref["score"], abs=1e-9)
    var = sum(res[f"variance_{k}"] for k in ("spatiotemporal_iou", "spatial_iou", "weighted_spatial_iou")) \
        - res["variance_mse"]
    assert round(var, 4) == pytest.approx(ref["physical_variance_all_metrics"], abs=1e-9)
