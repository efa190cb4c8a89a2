"""Video autoencoders: pixels ``(B, 3, T, H, W)`` in [-1, 1] <-> latents ``(B, C, T', H', W')``.

Interface :class:`VideoAutoencoder` (``encode``, ``decode``, ``latent_shape``,
``given_latent_frames``), two built-in implementations in the ``AUTOENCODERS`` registry (other
packages add theirs under the ``skyloom.autoencoders`` entry point; see :mod:`skyloom.registry`):

* :class:`IdentityAE` (``ae.kind=identity``): pixel space, used by the CPU preset ``vdit-tiny``.
* :class:`CausalVAE` (``ae.kind=vae``): a causal 3D convolutional VAE with ``temporal_factor``
  x ``spatial_factor`` x ``spatial_factor`` compression (4x8x8 like the video VAEs of
  Open-Sora / CogVideoX / Hunyuan: the first frame is encoded on its own, then every
  ``temporal_factor`` frames give one latent frame, so clips have ``1 + k * temporal_factor``
  frames and an image is a 1-frame video). Causal = a latent frame only sees past frames (time
  padding on the left, replicating the first frame), which is what lets image-to-video and
  extension condition on latents of the given frames alone. Trained with
  ``skyloom train CORPUS --out RUN --preset vae`` (L1 reconstruction + ``kl_weight`` x KL,
  Kingma & Welling 2013, arXiv 1312.6114).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from skyloom.model.config import AEConfig
from skyloom.registry import NoOptions, Registry

AUTOENCODERS: Registry = Registry("autoencoder", group="skyloom.autoencoders")


class VideoAutoencoder(nn.Module):
    """Interface of a video autoencoder.

    Built as ``cls(cfg: AEConfig, options)``: ``options`` is ``cfg.options`` checked against the
    class's ``config_class`` (a frozen dataclass, required; ``NoOptions`` when it takes none). An autoencoder with
    parameters has its weights loaded from the checkpoint's ``vae/`` component or ``ae.ckpt``.
    """

    config_class: type | None = None
    latent_channels: int
    spatial_factor: int = 1
    temporal_factor: int = 1

    def encode(self, video: torch.Tensor) -> torch.Tensor:  # (B, 3, T, H, W) -> (B, C, T', H', W')
        raise NotImplementedError

    def decode(self, latent: torch.Tensor) -> torch.Tensor:  # (B, C, T', H', W') -> (B, 3, T, H, W)
        raise NotImplementedError

    def check_frames(self, T: int, H: int, W: int) -> None:
        tf, sf = self.temporal_factor, self.spatial_factor
        if (T - 1) % tf or H % sf or W % sf:
            raise ValueError(f"video (T, H, W) = {(T, H, W)} does not fit the autoencoder: need T = 1 + k*{tf} "
                             f"and H, W divisible by {sf}")

    def latent_shape(self, T: int, H: int, W: int) -> tuple[int, int, int, int]:
        """Latent (C, T', H', W') of a (T, H, W) video."""
        self.check_frames(T, H, W)
        return (self.latent_channels, 1 + (T - 1) // self.temporal_factor, H // self.spatial_factor,
                W // self.spatial_factor)

    def given_latent_frames(self, k: int) -> int:
        """Latent frames fully determined by the first ``k`` pixel frames (causal encoders)."""
        return 0 if k <= 0 else 1 + (k - 1) // self.temporal_factor


@AUTOENCODERS.register("identity")
class IdentityAE(VideoAutoencoder):
    """Pixel space: the latent is the video itself (3 channels, no compression)."""

    config_class = NoOptions  # its settings are ae.* (AEConfig)

    def __init__(self, cfg: AEConfig | None = None, options: NoOptions | None = None) -> None:
        super().__init__()
        self.cfg = cfg or AEConfig()
        self.latent_channels = 3

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        return video

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        return latent


class CausalConv3d(nn.Module):
    """3D conv padded causally in time (replicating the first frame) and symmetrically in space."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: tuple[int, int, int] = (1, 1, 1)) -> None:
        super().__init__()
        self.k = k
        self.conv = nn.Conv3d(cin, cout, k, stride=stride, padding=(0, k // 2, k // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = x[:, :, :1].expand(-1, -1, self.k - 1, -1, -1)  # (B, C, k-1, H, W) copies of frame 0
        return self.conv(torch.cat([pad, x], dim=2))


class FrameNorm(nn.GroupNorm):
    """GroupNorm per frame: statistics over (C/G, H, W) only, so time stays causal."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, T, H, W = x.shape
        y = super().forward(x.transpose(1, 2).reshape(B * T, C, H, W))  # (B*T, C, H, W)
        return y.view(B, T, C, H, W).transpose(1, 2)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.n1, self.c1 = FrameNorm(min(8, cin), cin), CausalConv3d(cin, cout)
        self.n2, self.c2 = FrameNorm(min(8, cout), cout), CausalConv3d(cout, cout)
        self.skip = nn.Conv3d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c1(F.silu(self.n1(x)))
        return self.skip(x) + self.c2(F.silu(self.n2(h)))


class Upsample(nn.Module):
    """Nearest x2 in space (and causal x2 in time: frame 0 -> 1 frame, others -> 2), then conv."""

    def __init__(self, ch: int, temporal: bool) -> None:
        super().__init__()
        self.temporal = temporal
        self.conv = CausalConv3d(ch, ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.temporal:
            x = x.repeat_interleave(2, dim=2)[:, :, 1:]  # (B, C, 2T-1, H, W)
        B, C, T, H, W = x.shape
        x = F.interpolate(x.transpose(1, 2).reshape(B * T, C, H, W), scale_factor=2, mode="nearest")
        return self.conv(x.view(B, T, C, 2 * H, 2 * W).transpose(1, 2))


@AUTOENCODERS.register("vae")
class CausalVAE(VideoAutoencoder):
    """Causal 3D conv VAE with ``temporal_factor`` x ``spatial_factor``^2 compression."""

    config_class = NoOptions  # its settings are ae.* (AEConfig)

    def __init__(self, cfg: AEConfig, options: NoOptions | None = None) -> None:
        super().__init__()
        for name in ("spatial_factor", "temporal_factor"):
            v = getattr(cfg, name)
            if v < 1 or v & (v - 1):
                raise ValueError(f"ae.{name} must be a power of 2, got {v}")
        if cfg.temporal_factor > cfg.spatial_factor:
            raise ValueError("ae.temporal_factor must be <= ae.spatial_factor")
        self.cfg = cfg
        self.latent_channels, self.spatial_factor, self.temporal_factor = (cfg.latent_channels, cfg.spatial_factor,
                                                                           cfg.temporal_factor)
        levels, t_levels = int(math.log2(cfg.spatial_factor)), int(math.log2(cfg.temporal_factor))
        chs = [cfg.base_channels * min(2 ** i, 4) for i in range(levels + 1)]
        enc: list[nn.Module] = [CausalConv3d(3, chs[0])]
        for i in range(levels):
            st = 2 if i < t_levels else 1
            enc += [ResBlock(chs[i], chs[i + 1]), CausalConv3d(chs[i + 1], chs[i + 1], stride=(st, 2, 2))]
        enc += [ResBlock(chs[-1], chs[-1]), FrameNorm(min(8, chs[-1]), chs[-1]), nn.SiLU(),
                CausalConv3d(chs[-1], 2 * cfg.latent_channels)]
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [CausalConv3d(cfg.latent_channels, chs[-1]), ResBlock(chs[-1], chs[-1])]
        for i in reversed(range(levels)):
            dec += [Upsample(chs[i + 1], temporal=i < t_levels), ResBlock(chs[i + 1], chs[i])]
        dec += [FrameNorm(min(8, chs[0]), chs[0]), nn.SiLU(), CausalConv3d(chs[0], 3)]
        self.decoder = nn.Sequential(*dec)

    def moments(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance (B, C, T', H', W') each."""
        self.check_frames(*video.shape[2:])
        mean, logvar = self.encoder(video).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        return self.moments(video)[0] * self.cfg.scaling

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        return self.decoder(latent / self.cfg.scaling)

    def loss(self, video: torch.Tensor,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """L1 reconstruction + kl_weight * KL(q(z|x) || N(0, I)) on one batch."""
        mean, logvar = self.moments(video)
        noise = torch.randn(mean.shape, generator=generator).to(mean)
        z = mean + (0.5 * logvar).exp() * noise  # reparameterisation
        rec = self.decoder(z)  # (B, 3, T, H, W)
        l1 = (rec - video).abs().mean()
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).mean()
        return l1 + self.cfg.kl_weight * kl, {"l1": float(l1.detach()), "kl": float(kl.detach())}


def build_autoencoder(cfg: AEConfig) -> VideoAutoencoder:
    """The autoencoder named by ``cfg.kind`` (randomly initialised); weights are loaded by the caller.

    Raises:
        skyloom.registry.RegistryError: unknown ``ae.kind`` (with the closest names).
        skyloom.config.ConfigError: options that do not fit the autoencoder's ``config_class``.
    """
    return AUTOENCODERS.build(cfg.kind, cfg, options=cfg.options, where="ae.options")
