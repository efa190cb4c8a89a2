"""CLIPSIM: the formula against a hand computation, scaling/flooring, open_clip extractor (random
init of a shrunk ViT-B-32-family model) and the colour-swap probe with a hand-built extractor."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from skyloom.eval.features.base import FrameTextExtractor, get_extractor, l2_normalise
from skyloom.eval.features.clip import TINY_VIT_B_32
from skyloom.eval.metrics import METRICS, CLIPSim, clipsim_from_embeddings
from tests.conftest import moving_square_video


class ColourExtractor(FrameTextExtractor):
    """Hand-built CLIP-like extractor: a frame is its mean RGB, a text the RGB of its colour word."""

    name, weights, dim = "colour-words", "none", 3
    preprocessing: ClassVar[dict] = {"frame": "mean RGB"}
    WORDS: ClassVar[dict] = {"red": (1.0, 0.0, 0.0), "green": (0.0, 1.0, 0.0), "blue": (0.0, 0.0, 1.0)}

    def encode_frames(self, frames):
        return l2_normalise(np.asarray(frames, np.float64).mean(axis=(1, 2)) + 1e-3)

    def encode_text(self, texts):
        return l2_normalise(np.array([next(v for k, v in self.WORDS.items() if k in t) for t in texts]))


def test_formula_matches_hand_computation_and_floor():
    frames = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.2]])
    text = np.array([1.0, 0.0])
    raw, x100 = clipsim_from_embeddings(frames, text)
    cos = [1.0, 0.0, -1.0 / np.sqrt(1.04)]
    assert raw == pytest.approx(np.mean(cos))
    assert x100 == pytest.approx(100 * np.mean(cos))  # per video: no floor (torchmetrics floors the mean)
    m = METRICS.build("clipsim_x100", extractor=ColourExtractor())
    assert m.aggregate([-3.0, 1.0]) == 0.0 and m.aggregate([3.0, -1.0]) == pytest.approx(1.0)


def test_colour_swap_lowers_clipsim():
    red = moving_square_video(8, 24, 24, colour=(250, 10, 10))
    red[..., :] = np.maximum(red, [[[[200, 0, 0]]]]) * (red.sum(-1, keepdims=True) > 0)
    swapped = red[..., ::-1].copy()  # red -> blue
    m = CLIPSim(extractor=ColourExtractor())
    m.update(np.stack([red, swapped]), prompts=["a red ball", "a red ball"], item_ids=["orig", "swap"])
    r = m.compute()
    assert r.per_item["orig"] > r.per_item["swap"] + 0.1
    assert r.extractor == "colour-words" and r.details["scale"] == "raw"
    assert 0.0 <= r.details["x100"] <= 100.0
    m100 = METRICS.build("clipsim_x100", extractor=ColourExtractor())
    m100.update(np.stack([red]), prompts=["red"])
    assert m100.compute().value == pytest.approx(100 * m.compute().per_item["orig"], rel=1e-9)
    with pytest.raises(ValueError, match="needs prompts"):
        m.update(np.stack([red]))


@pytest.fixture(scope="module")
def tiny_clip():
    return get_extractor("clip", random_init=True, model_cfg=TINY_VIT_B_32, seed=0)


def test_open_clip_random_init_extractor(tiny_clip):
    v = np.random.default_rng(0).integers(0, 256, (5, 40, 56, 3), dtype=np.uint8)
    f = tiny_clip.encode_frames(v)
    t = tiny_clip.encode_text(["a red ball falls", "a blue cube"])
    assert f.shape == (5, 32) and t.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, atol=1e-6)
    assert tiny_clip.weights == "random-init" and tiny_clip.name == "open_clip:custom"
    assert tiny_clip.preprocessing["size"] == [64, 64]
    m = CLIPSim(extractor=tiny_clip)
    vid = moving_square_video(6, 32, 32)
    m.update(vid[None], prompts=["a red square"], item_ids=["a"])
    r = m.compute()
    hand = float(np.mean(tiny_clip.encode_frames(vid) @ tiny_clip.encode_text(["a red square"])[0]))
    assert r.value == pytest.approx(hand, abs=1e-6)  # fp32 model, float64 formula
    assert r.weights == "random-init" and r.n == 1


def test_open_clip_never_downloads(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloads"):
        get_extractor("clip", pretrained="openai", cache_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="not found"):
        get_extractor("clip", pretrained=str(tmp_path / "missing.pt"))
    with pytest.raises(FileNotFoundError, match="no weights"):
        get_extractor("clip")


def test_open_clip_loads_local_checkpoint(tiny_clip, tmp_path):
    import open_clip
    import torch

    cfg_name = "skyloom-tiny-test"
    open_clip.factory._MODEL_CONFIGS[cfg_name] = dict(TINY_VIT_B_32)  # register the shrunk config
    try:
        path = tmp_path / "tiny.pt"
        torch.save(tiny_clip.model.state_dict(), path)
        ex = get_extractor("clip", model_name=cfg_name, pretrained=str(path))
        v = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
        np.testing.assert_allclose(ex.encode_frames(v), tiny_clip.encode_frames(v), atol=1e-6)
        assert len(ex.weights) == 64 and ex.name == f"open_clip:{cfg_name}"
    finally:
        open_clip.factory._MODEL_CONFIGS.pop(cfg_name, None)


def test_openai_weights_given_as_a_file_run_with_quick_gelu(tiny_clip, tmp_path, monkeypatch):
    """OpenAI's CLIP was trained with QuickGELU: a weights *file* recognised as OpenAI's gets it (open_clip
    applies it for the ``openai`` tag only); other files keep GELU; ``quick_gelu=`` overrides."""
    import open_clip
    import torch

    from skyloom.eval.features import clip as clip_mod
    from skyloom.eval.features.clip import needs_quick_gelu

    plain = tmp_path / "state.pt"
    torch.save(tiny_clip.model.state_dict(), plain)
    assert needs_quick_gelu("ViT-B-32", plain)[0] is False
    jit = tmp_path / "ViT-B-32.pt"  # OpenAI released TorchScript archives
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), jit)
    assert needs_quick_gelu("ViT-B-32", jit) == (True, "TorchScript archive: OpenAI's release format")
    hub = tmp_path / "models--timm--vit_base_patch32_clip_224.openai" / "snapshots" / "x" / "open_clip_model.pt"
    hub.parent.mkdir(parents=True)
    hub.write_bytes(plain.read_bytes())
    assert needs_quick_gelu("ViT-B-32", hub)[0] is True
    openai_sha = "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af"  # in open_clip's OpenAI URL
    monkeypatch.setattr(clip_mod, "weights_hash", lambda p: openai_sha)
    assert needs_quick_gelu("ViT-B-32", plain) == (True, "sha256 of OpenAI's ViT-B-32/openai release")
    assert needs_quick_gelu("ViT-B-32-quickgelu", plain)[0] is True
    # the extractor passes the decision to open_clip and records it
    cfg_name = "skyloom-tiny-quick"
    open_clip.factory._MODEL_CONFIGS[cfg_name] = dict(TINY_VIT_B_32)
    try:
        monkeypatch.setattr(clip_mod, "needs_quick_gelu", lambda name, p: (True, "sha256 of OpenAI's release"))
        ex = get_extractor("clip", model_name=cfg_name, pretrained=str(plain))
        acts = {type(m).__name__ for m in ex.model.modules()}
        assert "QuickGELU" in acts and ex.preprocessing["activation"].startswith("QuickGELU")
        ex = get_extractor("clip", model_name=cfg_name, pretrained=str(plain), quick_gelu=False)
        assert "QuickGELU" not in {type(m).__name__ for m in ex.model.modules()}
        assert ex.preprocessing["activation"] == "GELU (quick_gelu option)"
    finally:
        open_clip.factory._MODEL_CONFIGS.pop(cfg_name, None)
