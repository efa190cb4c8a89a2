import numpy as np
import pytest
import torch

from skyloom.model.autoencoder import CausalVAE, IdentityAE
from skyloom.model.config import AEConfig, TextConfig
from skyloom.model.text import OpenCLIPTextEncoder, build_text_encoder


def test_identity_ae_round_trips_uint8_exactly():
    v = np.random.default_rng(0).integers(0, 256, (2, 4, 8, 8, 3), dtype=np.uint8)
    x = torch.as_tensor(v).permute(0, 4, 1, 2, 3).float() / 127.5 - 1
    ae = IdentityAE()
    back = ((ae.decode(ae.encode(x)) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 4, 1).numpy()
    assert np.array_equal(back, v)
    assert ae.latent_shape(7, 8, 8) == (3, 7, 8, 8)


def test_causal_vae_shapes_causality_and_gradients():
    torch.manual_seed(0)
    vae = CausalVAE(AEConfig(kind="vae", latent_channels=4, base_channels=8, spatial_factor=4, temporal_factor=2))
    x = torch.rand(2, 3, 9, 16, 16) * 2 - 1
    z = vae.encode(x)
    assert z.shape == (2, 4, 5, 4, 4) and vae.latent_shape(9, 16, 16) == (4, 5, 4, 4)
    assert vae.decode(z).shape == x.shape
    x2 = x.clone()
    x2[:, :, 3:] = 0  # change the future: latents of frames 0..2 must not move
    k = vae.given_latent_frames(3)
    assert k == 2
    assert torch.equal(vae.encode(x2)[:, :, :k], z[:, :, :k])
    assert not torch.allclose(vae.encode(x2)[:, :, k:], z[:, :, k:])
    with pytest.raises(ValueError, match="T = 1 \\+ k\\*2"):
        vae.encode(torch.zeros(1, 3, 8, 16, 16))
    loss, parts = vae.loss(x[:1], torch.Generator().manual_seed(0))
    loss.backward()
    assert parts["l1"] > 0 and all(p.grad is not None for p in vae.parameters())


def test_tiny_text_encoder_mask_and_padding():
    te = build_text_encoder(TextConfig(dim=32, depth=1, heads=2, max_length=16, vocab_size=1024))
    f, m = te.encode(["a red ball bounces", ""])
    assert f.shape == (2, 16, 32) and m.dtype == torch.bool
    assert m[0].sum() == 7 and m[1].sum() == 2  # SOT + 5 BPE tokens ("bounces" is two) + EOT; SOT + EOT
    f2, _ = te.encode(["a red ball bounces"])
    assert torch.allclose(f2[0, m[0]], f[0, m[0]], atol=1e-5)  # batch padding does not leak
    assert not torch.allclose(te.encode(["a blue ball bounces"])[0][0, :7], f[0, :7])


@pytest.mark.slow
def test_open_clip_text_tower_loads_weights_from_a_local_file(tmp_path):
    from safetensors.torch import save_file

    a = OpenCLIPTextEncoder(TextConfig(kind="open_clip", open_clip_model="ViT-B-32", pretrained="random-init"))
    import open_clip

    full = open_clip.create_model("ViT-B-32", pretrained=None)
    full.token_embedding.load_state_dict(a.token_embedding.state_dict())
    full.transformer.load_state_dict(a.transformer.state_dict())
    full.ln_final.load_state_dict(a.ln_final.state_dict())
    full.positional_embedding.data.copy_(a.positional_embedding.data)
    path = tmp_path / "clip.safetensors"
    save_file({k: v.contiguous() for k, v in full.state_dict().items()}, str(path))
    b = OpenCLIPTextEncoder(TextConfig(kind="open_clip", open_clip_model="ViT-B-32", pretrained=str(path)))
    fa, ma = a.encode(["a red ball"])
    fb, mb = b.encode(["a red ball"])
    assert fa.shape == (1, 77, 512) and torch.equal(ma, mb) and torch.allclose(fa, fb)
    # a pickle with code in it is refused, not executed
    evil = tmp_path / "evil.pt"
    evil.write_bytes(b"\x80\x04\x95\x1f\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94"
                     b"\x8c\x07touch x\x94\x85\x94R\x94.")
    with pytest.raises(ValueError, match="weights-only"):
        OpenCLIPTextEncoder(TextConfig(kind="open_clip", pretrained=str(evil)))
    with pytest.raises(ValueError, match="nothing is downloaded"):
        OpenCLIPTextEncoder(TextConfig(kind="open_clip", pretrained="no-such-tag-xyz"))
