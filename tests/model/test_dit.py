import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from skyloom.model.config import DiTConfig
from skyloom.model.dit import DiTBlock, VideoDiT, apply_rope, dit_forward_flops, rope_angles


def _inputs(B=2, C=3, T=4, H=8, W=8, L=5, Dt=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, C, T, H, W, generator=g)
    t = torch.rand(B, T, generator=g)
    text = torch.randn(B, L, Dt, generator=g)
    mask = torch.ones(B, L, dtype=torch.bool)
    mask[-1, 3:] = False
    return x, t, text, mask


@pytest.mark.parametrize("attention", ["full", "factorised"])
@pytest.mark.parametrize("patch", [(1, 4, 4), (2, 2, 2)])
def test_shapes_and_patchify_roundtrip(attention, patch):
    m = VideoDiT(DiTConfig(dim=32, depth=2, heads=2, text_dim=32, patch=patch, attention=attention))
    x, t, text, mask = _inputs()
    assert m(x, t, text, mask).shape == x.shape
    assert torch.equal(m.unpatchify(m.patchify(x), tuple(x.shape)), x)
    with pytest.raises(ValueError, match="not divisible"):
        m(torch.randn(1, 3, 4, 6, 5), torch.rand(1, 4), text[:1], mask[:1])


@pytest.mark.parametrize("attention", ["full", "factorised"])
def test_adaln_zero_block_is_identity_at_init(attention):
    cfg = DiTConfig(dim=32, depth=1, heads=2, text_dim=32, attention=attention)
    blk = DiTBlock(cfg)
    x = torch.randn(2, 4 * 16, 32)
    c = torch.randn(2, 4, 32)
    text, mask = torch.randn(2, 5, 32), torch.ones(2, 5, dtype=torch.bool)
    ang = rope_angles((4, 4, 4), 16)
    assert torch.equal(blk(x, c, text, mask, ang, (4, 4, 4)), x)
    # Gates become non-zero after a perturbation: the identity was not trivially hard-wired.
    torch.nn.init.normal_(blk.ada[1].weight)
    assert not torch.allclose(blk(x, c, text, mask, ang, (4, 4, 4)), x)


def test_model_predicts_zero_at_init():
    m = VideoDiT(DiTConfig(dim=32, depth=2, heads=2, text_dim=32))
    x, t, text, mask = _inputs()
    assert torch.count_nonzero(m(x, t, text, mask)) == 0


def test_rope_depends_only_on_relative_position():
    hd = 24
    ang = rope_angles((6, 5, 5), hd).view(6, 5, 5, -1)
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, 1, 1, hd, generator=g), torch.randn(1, 1, 1, hd, generator=g)

    def score(p, r):
        return float((apply_rope(q, ang[p].view(1, -1)) * apply_rope(k, ang[r].view(1, -1))).sum())

    # same offset (1, 2, -1) at two absolute places -> same logit; a different offset -> different
    assert score((0, 0, 3), (1, 2, 2)) == pytest.approx(score((4, 2, 4), (5, 4, 3)), abs=1e-5)
    assert score((0, 0, 3), (1, 2, 2)) != pytest.approx(score((0, 0, 3), (2, 2, 2)), abs=1e-3)
    # rotation preserves the norm
    assert apply_rope(q, ang[3, 2, 1].view(1, -1)).norm() == pytest.approx(float(q.norm()), rel=1e-6)


def test_cross_attention_uses_text_and_respects_padding():
    m = VideoDiT(DiTConfig(dim=32, depth=1, heads=2, text_dim=32))
    for p in m.parameters():  # leave adaLN-Zero: give every weight a value
        torch.nn.init.normal_(p, std=0.2)
    x, t, text, mask = _inputs()
    base = m(x, t, text, mask)
    text2 = text.clone()
    text2[1, 3:] += 5.0  # only padded positions of sample 1 change
    assert torch.allclose(m(x, t, text2, mask), base, atol=1e-5)
    text2[0, 0] += 5.0
    assert not torch.allclose(m(x, t, text2, mask)[0], base[0], atol=1e-3)


@pytest.mark.parametrize("attention", ["full", "factorised"])
def test_flop_formula_matches_torch_flop_counter(attention):
    cfg = DiTConfig(dim=64, depth=2, heads=4, text_dim=32, attention=attention)
    m = VideoDiT(cfg)
    x, t, text, mask = _inputs(B=1, T=4, H=16, W=16, L=7)
    counter = FlopCounterMode(display=False)
    # the math backend runs attention as counted matmuls (fused CPU kernels are not counted)
    with counter, torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        m(x, t, text, mask.fill_(True))
    measured = counter.get_total_flops()
    assert dit_forward_flops(cfg, m.grid(tuple(x.shape)), 7) == pytest.approx(measured, rel=0.03)


def test_x0_prediction_returns_the_velocity_of_its_clean_estimate():
    cfg = DiTConfig(dim=32, depth=1, heads=2, text_dim=32, prediction="x0", t_min=0.05)
    m = VideoDiT(cfg)
    x, t, text, mask = _inputs()
    t[0, 0] = 0.0  # clamped to t_min
    # at init the clean estimate is 0, so v = x_t / max(t, t_min)
    expect = x / t.clamp_min(0.05)[:, None, :, None, None]
    assert torch.allclose(m(x, t, text, mask), expect)


def test_given_channel_marks_clean_frames():
    cfg = DiTConfig(dim=32, depth=1, heads=2, text_dim=32, patch=(2, 4, 4), given_channel=True)
    m = VideoDiT(cfg)
    torch.nn.init.normal_(m.out.weight, std=0.1)
    x, t, text, mask = _inputs()
    t0 = t.clone()
    t0[:, 0] = 0.0  # frame 0 given, frame 1 (same temporal patch) noisy: t of the patch is unchanged
    t1 = t.clone()
    t1[:, 0] = 1e-4
    assert not torch.allclose(m(x, t0, text, mask), m(x, t1, text, mask))
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        m(x[:1], t[:1], text[:1], mask[:1].fill_(True))
    assert dit_forward_flops(cfg, m.grid(tuple(x[:1].shape)), 5) == pytest.approx(counter.get_total_flops(), rel=0.03)
