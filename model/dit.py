"""Spacetime-patch diffusion transformer: a pure ``f(x_t, t, text) -> v``.

Architecture (one file, top to bottom):

* Patchify over space *and* time (Sora / Latte / Open-Sora): a latent video ``(B, C, T, H, W)``
  is cut into ``pt x ph x pw`` patches, each linearly embedded to a token.
* 3D rotary position embedding (RoFormer, Su et al. 2021, arXiv 2104.09864; 3D split of the
  head dimension over t/h/w as in Open-Sora 2 / CogVideoX): ``q`` and ``k`` are rotated by
  angles proportional to each token's (t, h, w) position, so attention logits depend only on
  relative offsets.
* adaLN-Zero conditioning on the diffusion time (DiT, Peebles & Xie 2023, arXiv 2212.09748,
  Sec. 3.2): each block regresses shift/scale/gate from the timestep embedding; the regressor is
  zero-initialised so every block starts as the identity. Time is *per latent frame*: frames
  given as conditioning carry t = 0 (Open-Sora 1.1's i2v/extension masks).
* Text by cross-attention (PixArt-alpha, arXiv 2310.00426) with a key padding mask.
* QK-norm (RMSNorm on queries and keys per head; ViT-22B, arXiv 2302.05442) for stable
  attention logits.
* Optional x-prediction (JiT, Li & He 2025, arXiv 2511.13720): the network outputs the clean
  latent and returns ``v = (x_t - x0) / t``; pixel-space models with patches wider than the
  model (vdit-tiny: 4x4x4x3 = 192 values per 128-d token) cannot output the noise part of ``v``.
* Optional "given frame" input channel (channel-wise concatenation of the conditioning mask, as
  in image-to-video models such as SVD, arXiv 2311.15127): the t = 0 frames are marked even
  inside a patch that also holds noisy frames.
* Optional fixed 3D sin-cos absolute position embedding added to the tokens (``abs_pos``).
* Optional frame-wise reference path for continuation (``ref_frame``): the last given frame is
  concatenated to every frame's input channels, as SVD (arXiv 2311.15127) concatenates its
  conditioning image to every frame, and (``ref_residual``) the clean-frame prediction is taken
  relative to it, so an untrained network continues the given frames frozen rather than grey.
* Full spacetime attention, or factorised spatial-then-temporal attention (Latte, arXiv
  2401.03048; ViViT "factorised self-attention", arXiv 2103.15691).
"""

from __future__ import annotations

import math
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from skyloom.config import ConfigError
from skyloom.model.config import DiTConfig


# -- 3D RoPE ---------------------------------------------------------------------------------
def rope_dims(head_dim: int) -> tuple[int, int, int]:
    """Split an (even) head dimension into even parts for the (t, h, w) axes."""
    if head_dim % 2 or head_dim < 6:
        raise ConfigError(f"head_dim must be even and >= 6 for 3D RoPE, got {head_dim}")
    hw = 2 * (head_dim // 6)
    return head_dim - 2 * hw, hw, hw


def rope_angles(grid: tuple[int, int, int], head_dim: int, theta: float = 10000.0,
                device: torch.device | None = None) -> torch.Tensor:
    """Rotation angles for every token of a (T, H, W) grid, flattened t-major: (N, head_dim/2)."""
    parts = []
    axes = torch.meshgrid(*[torch.arange(n, device=device, dtype=torch.float32) for n in grid], indexing="ij")
    for pos, d in zip(axes, rope_dims(head_dim)):
        freqs = theta ** (-torch.arange(0, d, 2, device=device, dtype=torch.float32) / d)  # (d/2,)
        parts.append(pos.reshape(-1, 1) * freqs)  # (N, d/2)
    return torch.cat(parts, dim=-1)  # (N, head_dim/2)


def apply_rope(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate consecutive pairs of ``x`` (B, heads, N, hd) by ``angles`` (N, hd/2)."""
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)  # (N, hd/2)
    x1, x2 = x[..., 0::2], x[..., 1::2]  # (B, h, N, hd/2)
    out = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)  # (B, h, N, hd/2, 2)
    return out.flatten(-2)  # (B, h, N, hd)


def sincos_3d(grid: tuple[int, int, int], dim: int, device: torch.device | None = None) -> torch.Tensor:
    """Fixed 3D sin-cos absolute position embedding of a (T, H, W) token grid: (N, dim), t-major.

    The width is split over (t, h, w) like the RoPE head dimension (:func:`rope_dims`); each part
    is the 1D embedding ``[sin(p w_i), cos(p w_i)]`` with ``w_i = 10000^(-2i/d)`` (Transformer,
    Vaswani et al. 2017; 3D split as in Latte, arXiv 2401.03048, and Open-Sora).
    """
    parts = []
    axes = torch.meshgrid(*[torch.arange(n, device=device, dtype=torch.float32) for n in grid], indexing="ij")
    for pos, d in zip(axes, rope_dims(dim)):
        freqs = 10000.0 ** (-torch.arange(0, d, 2, device=device, dtype=torch.float32) / d)  # (d/2,)
        ang = pos.reshape(-1, 1) * freqs  # (N, d/2)
        parts += [ang.sin(), ang.cos()]
    return torch.cat(parts, dim=-1)  # (N, dim)


# -- building blocks -------------------------------------------------------------------------
def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of t in [0, 1] (scaled by 1000 as in DiT): (...,) -> (..., dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = (t.float() * 1000.0)[..., None] * freqs  # (..., half)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # (..., dim)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x (B, T, S, D); shift/scale (B, T, D) per latent frame."""
    return x * (1 + scale[:, :, None]) + shift[:, :, None]


class Attention(nn.Module):
    """Multi-head self-attention with QK-norm and RoPE; ``groups`` reshapes for factorisation."""

    def __init__(self, dim: int, heads: int, qk_norm: bool) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.q_norm = nn.RMSNorm(self.head_dim, eps=1e-6) if qk_norm else nn.Identity()
        self.k_norm = nn.RMSNorm(self.head_dim, eps=1e-6) if qk_norm else nn.Identity()

    def forward(self, x: torch.Tensor, angles: torch.Tensor, mode: str, grid: tuple[int, int, int]) -> torch.Tensor:
        B, N, D = x.shape
        T, S = grid[0], grid[1] * grid[2]
        q, k, v = self.qkv(x).view(B, N, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)  # 3 x (B, h, N, hd)
        q, k = apply_rope(self.q_norm(q), angles), apply_rope(self.k_norm(k), angles)
        if mode == "spatial":  # attend within each frame: (B*T, h, S, hd)
            q, k, v = (z.view(B, self.heads, T, S, self.head_dim).transpose(1, 2).reshape(B * T, self.heads, S, -1)
                       for z in (q, k, v))
        elif mode == "temporal":  # attend along time at each location: (B*S, h, T, hd)
            q, k, v = (z.view(B, self.heads, T, S, self.head_dim).permute(0, 3, 1, 2, 4)
                       .reshape(B * S, self.heads, T, -1) for z in (q, k, v))
        o = F.scaled_dot_product_attention(q, k, v)
        if mode == "spatial":
            o = o.view(B, T, self.heads, S, self.head_dim).transpose(1, 2)  # (B, h, T, S, hd)
        elif mode == "temporal":
            o = o.view(B, S, self.heads, T, self.head_dim).permute(0, 2, 3, 1, 4)  # (B, h, T, S, hd)
        o = o.reshape(B, self.heads, N, self.head_dim).transpose(1, 2).reshape(B, N, D)  # (B, N, D)
        return self.proj(o)


class CrossAttention(nn.Module):
    """Video tokens attend to text tokens (key padding mask); QK-norm, no RoPE."""

    def __init__(self, dim: int, text_dim: int, heads: int, qk_norm: bool) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(text_dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.q_norm = nn.RMSNorm(self.head_dim, eps=1e-6) if qk_norm else nn.Identity()
        self.k_norm = nn.RMSNorm(self.head_dim, eps=1e-6) if qk_norm else nn.Identity()

    def forward(self, x: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        L = text.shape[1]
        q = self.q_norm(self.q(x).view(B, N, self.heads, self.head_dim).transpose(1, 2))  # (B, h, N, hd)
        k, v = self.kv(text).view(B, L, 2, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)  # 2 x (B, h, L, hd)
        o = F.scaled_dot_product_attention(q, self.k_norm(k), v, attn_mask=text_mask[:, None, None, :])  # (B, h, N, hd)
        return self.proj(o.transpose(1, 2).reshape(B, N, D))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class DiTBlock(nn.Module):
    """adaLN-Zero block: [spatial(+temporal) | full] self-attention, cross-attention, MLP."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        D = cfg.dim
        self.factorised = cfg.attention == "factorised"
        self.norm1 = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(D, cfg.heads, cfg.qk_norm)
        if self.factorised:
            self.norm_t = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
            self.attn_t = Attention(D, cfg.heads, cfg.qk_norm)
        self.norm_x = nn.LayerNorm(D, eps=1e-6)
        self.cross = CrossAttention(D, cfg.text_dim, cfg.heads, cfg.qk_norm)
        self.norm2 = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(D, int(D * cfg.mlp_ratio))
        n_mod = 9 if self.factorised else 6
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(D, n_mod * D))
        # adaLN-Zero: every gate starts at 0, so the block is the identity at init (DiT Sec. 3.2).
        ada_linear = cast(nn.Linear, self.ada[1])
        nn.init.zeros_(ada_linear.weight)
        nn.init.zeros_(ada_linear.bias)
        # Cross-attention is not gated; zero its output projection so it also starts silent.
        nn.init.zeros_(self.cross.proj.weight)
        nn.init.zeros_(self.cross.proj.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor,
                angles: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        B, N, D = x.shape
        T, S = grid[0], grid[1] * grid[2]
        mods = self.ada(c).chunk(9 if self.factorised else 6, dim=-1)  # each (B, T, D)
        x4 = x.view(B, T, S, D)
        h = modulate(self.norm1(x4), mods[0], mods[1]).view(B, N, D)
        x4 = x4 + mods[2][:, :, None] * self.attn(h, angles, "spatial" if self.factorised else "full",
                                                  grid).view(B, T, S, D)
        i = 3
        if self.factorised:
            h = modulate(self.norm_t(x4), mods[3], mods[4]).view(B, N, D)
            x4 = x4 + mods[5][:, :, None] * self.attn_t(h, angles, "temporal", grid).view(B, T, S, D)
            i = 6
        x = x4.view(B, N, D)
        x = x + self.cross(self.norm_x(x), text, text_mask)
        x4 = x.view(B, T, S, D)
        h = modulate(self.norm2(x4), mods[i], mods[i + 1])
        x4 = x4 + mods[i + 2][:, :, None] * self.mlp(h)
        return x4.view(B, N, D)


def input_channels(cfg: DiTConfig) -> int:
    """Channels per input voxel: the latent, the given-frame flag, the reference frame."""
    return cfg.in_channels * (1 + int(cfg.ref_frame)) + int(cfg.given_channel)


def reference_frame(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The last given frame of each sample: x (B, C, T, H, W), t (B, T) -> (B, C, 1, H, W).

    A frame is given where its time is 0 (it is clean); a sample with no given frame gets zeros.
    Only given frames are read, so the result does not depend on the noisy frames.
    """
    B, T = t.shape
    given = t <= 0  # (B, T)
    idx = torch.where(given, torch.arange(T, device=t.device), -1).amax(dim=1)  # (B,) last given, -1: none
    ref = x[torch.arange(B, device=x.device), :, idx.clamp_min(0)]  # (B, C, H, W)
    return (ref * (idx >= 0).to(x.dtype)[:, None, None, None])[:, :, None]  # (B, C, 1, H, W)


class VideoDiT(nn.Module):
    """The network ``v = f(x_t, t, text)`` of a rectified-flow video model.

    Args:
        cfg: :class:`skyloom.model.config.DiTConfig`.

    Shapes:
        x: (B, C, T, H, W) noisy latent; t: (B, T) per-frame time in [0, 1] (0 = clean/given);
        text: (B, L, text_dim) token features; text_mask: (B, L) bool (True = real token).
        Returns the velocity (B, C, T, H, W). T, H, W must be divisible by the patch size.
    """

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        if cfg.dim % cfg.heads:
            raise ConfigError(f"dit.dim ({cfg.dim}) must be divisible by dit.heads ({cfg.heads})")
        self.cfg = cfg
        pt, ph, pw = cfg.patch
        D = cfg.dim
        if cfg.ref_residual and not (cfg.ref_frame and cfg.prediction == "x0"):
            raise ConfigError("dit.ref_residual needs dit.ref_frame: true and dit.prediction: x0")
        self.patch_embed = nn.Linear(input_channels(cfg) * pt * ph * pw, D)
        self.t_embed = nn.Sequential(nn.Linear(256, D), nn.SiLU(), nn.Linear(D, D))
        self.blocks = nn.ModuleList(DiTBlock(cfg) for _ in range(cfg.depth))
        self.norm_out = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.ada_out = nn.Sequential(nn.SiLU(), nn.Linear(D, 2 * D))
        self.out = nn.Linear(D, cfg.in_channels * pt * ph * pw)
        # Zero-init the final modulation and projection (DiT): the model predicts v = 0 at init.
        for lin in (cast(nn.Linear, self.ada_out[1]), self.out):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def grid(self, shape: tuple[int, ...]) -> tuple[int, int, int]:
        """Token grid (T', H', W') of a latent of shape (B, C, T, H, W); checks divisibility."""
        _, _, T, H, W = shape
        pt, ph, pw = self.cfg.patch
        if T % pt or H % ph or W % pw:
            raise ConfigError(f"latent (T, H, W) = {(T, H, W)} not divisible by dit.patch {self.cfg.patch}")
        return T // pt, H // ph, W // pw

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        B, C, T, H, W = x.shape
        pt, ph, pw = self.cfg.patch
        x = x.view(B, C, T // pt, pt, H // ph, ph, W // pw, pw)
        x = x.permute(0, 2, 4, 6, 3, 5, 7, 1)  # (B, T', H', W', pt, ph, pw, C)
        return x.reshape(B, (T // pt) * (H // ph) * (W // pw), pt * ph * pw * C)  # (B, N, P)

    def unpatchify(self, x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        B, C, T, H, W = shape
        pt, ph, pw = self.cfg.patch
        x = x.view(B, T // pt, H // ph, W // pw, pt, ph, pw, C)
        x = x.permute(0, 7, 1, 4, 2, 5, 3, 6)  # (B, C, T', pt, H', ph, W', pw)
        return x.reshape(B, C, T, H, W)

    def forward(self, x: torch.Tensor, t: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        shape = tuple(x.shape)
        grid = self.grid(shape)
        B, T = shape[0], shape[2]
        if t.shape != (B, T):
            raise ValueError(f"t must have shape (B, T) = {(B, T)}, got {tuple(t.shape)}")
        pt = self.cfg.patch[0]
        t_tok = t.view(B, grid[0], pt).amax(dim=-1)  # (B, T') a patch is clean only if all its frames are
        c = self.t_embed(timestep_embedding(t_tok, 256).to(x.dtype))  # (B, T', D)
        angles = rope_angles(grid, self.cfg.dim // self.cfg.heads, self.cfg.rope_theta, x.device)  # (N, hd/2)
        inp = x
        if self.cfg.given_channel:  # 1 on given (clean, t = 0) frames
            given = (t <= 0).to(x.dtype)[:, None, :, None, None].expand(B, 1, T, shape[3], shape[4])
            inp = torch.cat([x, given], dim=1)  # (B, C+1, T, H, W)
        ref = None
        if self.cfg.ref_frame:
            ref = reference_frame(x, t)  # (B, C, 1, H, W), 0 where no frame is given
            inp = torch.cat([inp, ref.expand(-1, -1, T, -1, -1)], dim=1)  # (B, C+1+C, T, H, W)
        h = self.patch_embed(self.patchify(inp))  # (B, N, D)
        if self.cfg.abs_pos:  # fixed, so checkpoints stay weight-compatible with abs_pos: false
            h = h + sincos_3d(grid, self.cfg.dim, x.device).to(h.dtype)  # (N, D) broadcast over B
        text_mask = text_mask.bool()
        for blk in self.blocks:
            if self.cfg.grad_checkpointing and self.training:
                h = checkpoint(blk, h, c, text, text_mask, angles, grid, use_reentrant=False)
            else:
                h = blk(h, c, text, text_mask, angles, grid)
        shift, scale = self.ada_out(c).chunk(2, dim=-1)  # (B, T', D) each
        S = grid[1] * grid[2]
        h = modulate(self.norm_out(h).view(B, grid[0], S, -1), shift, scale).view(B, -1, self.cfg.dim)
        out = self.unpatchify(self.out(h), shape)  # (B, C, T, H, W)
        if ref is not None and self.cfg.ref_residual:  # x0 = reference frame + learned change
            out = out + ref
        if self.cfg.prediction == "x0":  # x-prediction, returned as a velocity (the schedule's target)
            tt = t[:, None, :, None, None].to(out.dtype).clamp_min(self.cfg.t_min)  # (B, 1, T, 1, 1)
            out = (x - out) / tt
        return out


def dit_forward_flops(cfg: DiTConfig, grid: tuple[int, int, int], text_len: int) -> float:
    """Matmul FLOPs of one forward pass for one sample (2 per multiply-add; MFU convention).

    Counts the linear layers, the attention products (QK^T and AV) and cross-attention; ignores
    norms, activations and RoPE (a few percent at these widths). Training ~ 3x forward.
    """
    T, H, W = grid
    N, S, D, L = T * H * W, H * W, cfg.dim, text_len
    P = cfg.in_channels * math.prod(cfg.patch)
    P_in = input_channels(cfg) * math.prod(cfg.patch)
    hidden = int(D * cfg.mlp_ratio)
    ctx = N if cfg.attention == "full" else S
    per_block = (2 * N * D * 3 * D + 2 * N * D * D + 4 * N * ctx * D  # self-attention
                 + 2 * N * D * D + 2 * L * cfg.text_dim * 2 * D + 4 * N * L * D + 2 * N * D * D  # cross
                 + 4 * N * D * hidden  # MLP
                 + 2 * T * D * (9 if cfg.attention == "factorised" else 6) * D)  # adaLN
    if cfg.attention == "factorised":
        per_block += 2 * N * D * 3 * D + 2 * N * D * D + 4 * N * T * D
    return float(cfg.depth * per_block + 2 * N * (P + P_in) * D + 2 * T * D * 2 * D + 2 * T * (256 * D + D * D))
