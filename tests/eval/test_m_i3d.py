"""I3D: piergiaj key layout, strict loading, random-init forward, short clips, TorchScript path."""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np
import pytest
import torch

from skyloom.eval.features.base import get_extractor
from skyloom.eval.features.i3d import (
    ClipTooShortError,
    InceptionI3d,
    i3d_preprocess,
    load_piergiaj_state_dict,
)

# Names and shapes as in piergiaj/pytorch-i3d pytorch_i3d.py (Unit3D: .conv3d/.bn; InceptionModule:
# b0, b1a, b1b, b2a, b2b, b3b; 'logits' Unit3D without batch norm, with bias).
PUBLISHED = {
    "Conv3d_1a_7x7.conv3d.weight": (64, 3, 7, 7, 7),
    "Conv3d_1a_7x7.bn.running_mean": (64,),
    "Conv3d_2b_1x1.conv3d.weight": (64, 64, 1, 1, 1),
    "Conv3d_2c_3x3.conv3d.weight": (192, 64, 3, 3, 3),
    "Mixed_3b.b0.conv3d.weight": (64, 192, 1, 1, 1),
    "Mixed_3b.b1b.conv3d.weight": (128, 96, 3, 3, 3),
    "Mixed_3b.b3b.conv3d.weight": (32, 192, 1, 1, 1),
    "Mixed_4b.b2b.conv3d.weight": (48, 16, 3, 3, 3),
    "Mixed_4f.b0.bn.weight": (256,),
    "Mixed_5c.b1b.conv3d.weight": (384, 192, 3, 3, 3),
    "Mixed_5c.b3b.bn.running_var": (128,),
    "logits.conv3d.weight": (400, 1024, 1, 1, 1),
    "logits.conv3d.bias": (400,),
}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return InceptionI3d(400).eval()


def test_state_dict_keys_follow_piergiaj_layout(model):
    sd = model.state_dict()
    for k, shape in PUBLISHED.items():
        assert tuple(sd[k].shape) == shape, k
    assert not any(k.startswith("logits.bn") for k in sd)
    assert not any(".b3a." in k for k in sd)  # the pool branch has no parameters
    blocks = {k.split(".")[0] for k in sd}
    assert blocks == {"Conv3d_1a_7x7", "Conv3d_2b_1x1", "Conv3d_2c_3x3", "logits"} | {
        f"Mixed_{b}" for b in ("3b", "3c", "4b", "4c", "4d", "4e", "4f", "5b", "5c")}
    assert all(k.split(".")[-2] in ("conv3d", "bn") for k in sd)


def test_strict_load_of_old_style_checkpoint(model, tmp_path):
    # The published file predates BatchNorm's num_batches_tracked; DataParallel saves add 'module.'.
    sd = OrderedDict((f"module.{k}", v.clone()) for k, v in model.state_dict().items()
                     if not k.endswith("num_batches_tracked"))
    path = tmp_path / "i3d_pretrained_400.pt"
    torch.save(sd, path)
    other = InceptionI3d(400)
    load_piergiaj_state_dict(other, path)
    for k, v in model.state_dict().items():
        assert torch.equal(other.state_dict()[k], v), k
    ex = get_extractor("i3d", weights=path)
    assert ex.weights == hashlib.sha256(path.read_bytes()).hexdigest()
    bad = tmp_path / "bad.pt"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="not a piergiaj-layout"):
        load_piergiaj_state_dict(InceptionI3d(400), bad)


def test_random_init_forward_16_frames():
    ex = get_extractor("i3d", random_init=True, seed=0)
    rng = np.random.default_rng(0)
    v = rng.integers(0, 256, (2, 16, 32, 40, 3), dtype=np.uint8)
    f = ex.encode_videos(v)
    assert f.shape == (2, 400) and np.all(np.isfinite(f))
    assert not np.allclose(f[0], f[1])
    assert ex.weights == "random-init" and ex.preprocessing["size"] == [224, 224]
    assert ex.preprocessing["range"] == [-1, 1]
    again = get_extractor("i3d", random_init=True, seed=0).model.state_dict()  # seeded init, no global RNG
    assert all(torch.equal(again[k], v) for k, v in ex.model.state_dict().items())


def test_preprocess_range_and_size():
    v = np.zeros((1, 9, 10, 12, 3), np.uint8)
    v[..., 0] = 255
    x = i3d_preprocess(v)
    assert tuple(x.shape) == (1, 3, 9, 224, 224)
    assert float(x[:, 0].min()) == pytest.approx(1.0, abs=1e-5) and float(x[:, 1].max()) == -1.0


def test_too_short_clip_is_a_clear_error():
    ex = get_extractor("i3d", random_init=True)
    with pytest.raises(ClipTooShortError, match="at least 9 frames"):
        ex.encode_videos(np.zeros((1, 8, 32, 32, 3), np.uint8))


def test_missing_weights_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SKYLOOM_I3D_WEIGHTS", str(tmp_path / "nope.pt"))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="never downloads"):
        get_extractor("i3d")
    with pytest.raises(FileNotFoundError, match="nope2.pt"):
        get_extractor("i3d", weights=tmp_path / "nope2.pt")


class _TinyDetector(torch.nn.Module):
    """Stands in for StyleGAN-V's detector: same call signature, (B, 400) output."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(3, 400)

    def forward(self, x: torch.Tensor, rescale: bool = True, resize: bool = True,
                return_features: bool = False) -> torch.Tensor:
        if rescale:  # the real detector rescales [0, 255] itself; we pass [-1, 1] and rescale=False
            x = x / 127.5 - 1
        return self.proj(x.mean(dim=(2, 3, 4)))


def test_torchscript_round_trip(tmp_path):
    torch.manual_seed(0)
    mod = _TinyDetector().eval()
    path = tmp_path / "i3d_torchscript.pt"
    torch.jit.script(mod).save(str(path))
    v = np.random.default_rng(1).integers(0, 256, (3, 10, 24, 24, 3), dtype=np.uint8)
    with torch.no_grad():
        expected = mod(i3d_preprocess(v), rescale=False).double().numpy()
    for ex in (get_extractor("i3d-torchscript", weights=path), get_extractor("i3d", weights=path)):
        np.testing.assert_allclose(ex.encode_videos(v), expected, rtol=1e-6, atol=1e-7)
        assert ex.name == "i3d-k400-torchscript"
        assert ex.weights == hashlib.sha256(path.read_bytes()).hexdigest()
        assert ex.preprocessing["detector_kwargs"]["rescale"] is False


def test_i3d_geometry_on_non_square_clips_against_videogpt():
    """``resize="videogpt-crop"`` equals VideoGPT's own FVD preprocessing (stored from wilson1yan/VideoGPT, made by
    fixtures/make_videogpt_i3d_preprocess.py) on QCIF 176x144 (carphone's size), a portrait clip and 480x360
    (downscaled); the default ``stretch`` (the TF reference's geometry) differs from it on every one."""
    import json
    from pathlib import Path

    from tests.eval.fixtures.make_videogpt_i3d_preprocess import STEP, clips, summary

    ref = json.loads((Path(__file__).parent / "fixtures" / "reference_videogpt_preprocess.json").read_text())
    assert ref["commit"] == "733d2b1541e166d7f29df514c7d196c768011dd2" and ref["grid_step"] == STEP
    for name, v in clips().items():
        want = ref["results"][name]
        got = summary(i3d_preprocess(v[None], resize="videogpt-crop"))
        assert got["shape"] == want["shape"] == [1, 3, 2, 224, 224]
        np.testing.assert_allclose(got["grid"], want["grid"], atol=2e-6)  # they scale to [0, 1] first: float32 order
        assert got["sum"] == pytest.approx(want["sum"], abs=1e-2) and got["sum_sq"] == pytest.approx(want["sum_sq"])
        stretched = summary(i3d_preprocess(v[None]))
        assert np.max(np.abs(np.subtract(stretched["grid"], want["grid"]))) > 0.05
    square = clips()["qcif"][:, :144, :144]
    np.testing.assert_array_equal(i3d_preprocess(square[None]), i3d_preprocess(square[None], resize="videogpt-crop"))
    ex = get_extractor("i3d", random_init=True, resize="videogpt-crop")
    assert ex.preprocessing["geometry"].startswith("short side to 224")
    default = get_extractor("i3d", random_init=True)
    assert default.preprocessing["geometry"].startswith("stretch to 224x224 (TF reference")
    with pytest.raises(ValueError, match="videogpt-crop"):
        get_extractor("i3d", random_init=True, resize="crop")
