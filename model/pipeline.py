"""``load_pipeline(ckpt) -> VideoPipeline``: what eval, the CLI and the dashboard demo call.

The pipeline glues the separate components read from a checkpoint folder (text encoder, DiT,
autoencoder, rectified-flow schedule, sampler) and exposes the contract of
docs/architecture.md::

    pipe = load_pipeline("runs/tiny")            # a run (-> latest checkpoint) or a checkpoint folder
    videos = pipe.generate(["a red ball bounces"], seeds=[0])             # uint8 (1, T, H, W, 3)
    videos = pipe.generate(prompts, seeds, cond_frames=first)             # image-to-video (B, 1, H, W, 3)
    videos = pipe.generate(prompts, seeds, cond_frames=prefix)            # extension (B, k, H, W, 3)

Same prompts + seeds -> same videos: each sample's noise comes from its own generator seeded
with its seed, and the network is deterministic in eval mode. Given frames come back exactly
as given (they are clamped in latent space during sampling and copied into the output).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from skyloom.config import from_dict
from skyloom.devices import torch_device
from skyloom.errors import InvalidInputError
from skyloom.model.autoencoder import VideoAutoencoder
from skyloom.model.checkpoint import (
    CheckpointError,
    component_configs,
    component_state,
    load_ae,
    load_weights,
    read_pipeline_info,
)
from skyloom.model.config import SamplerConfig, ScheduleConfig
from skyloom.model.data import crop_resize
from skyloom.model.sampler import FlowSampler
from skyloom.model.schedule import RectifiedFlow
from skyloom.rundir import resolve_checkpoint

logger = logging.getLogger(__name__)


class VideoPipeline:
    """Text (+ optional given frames) -> uint8 video, from one checkpoint."""

    def __init__(self, dit: torch.nn.Module, text_encoder: torch.nn.Module, ae: VideoAutoencoder,
                 sampler: FlowSampler, info: dict[str, Any], device: torch.device, batch_size: int = 8) -> None:
        self.dit, self.text_encoder, self.ae, self.sampler = dit, text_encoder, ae, sampler
        self.info, self.device, self.batch_size = info, device, batch_size
        self.fps: float = float(info["fps"])
        self.num_frames: int = int(info["num_frames"])
        self.height: int = int(info["height"])
        self.width: int = int(info["width"])
        self.name: str = f"{info.get('name', 'vdit')}@{info.get('step', 0)}"
        self.checkpoint: str = str(info.get("checkpoint", ""))

    def settings(self, steps: int | None = None, guidance: float | None = None) -> dict[str, Any]:
        """Sampler settings a ``generate`` call with these arguments uses (for metadata)."""
        return {"method": self.sampler.method, "steps": steps or self.sampler.steps,
                "guidance": self.sampler.guidance if guidance is None else guidance,
                "checkpoint": self.checkpoint, "model": self.name}

    @torch.no_grad()
    def generate(self, prompts: list[str], seeds: list[int], *, cond_frames: np.ndarray | None = None,
                 steps: int | None = None, guidance: float | None = None, num_frames: int | None = None,
                 method: str | None = None) -> np.ndarray:
        """Generate videos: uint8 (B, T, H, W, 3).

        Args:
            prompts: one caption per video.
            seeds: one seed per video (same seed + prompt -> same video).
            cond_frames: uint8 (B, k, H', W', 3) given first frames (k=1: image-to-video,
                k>1: extension); resized/cropped to the model's size when they differ.
            steps, guidance, method: sampler overrides (defaults stored with the checkpoint).
            num_frames: video length (default: the training length).
        """
        if len(prompts) != len(seeds):
            raise InvalidInputError(f"prompts ({len(prompts)}) and seeds ({len(seeds)}) must have the same length")
        T = int(num_frames or self.num_frames)
        C, Tl, Hl, Wl = self.ae.latent_shape(T, self.height, self.width)
        self.dit.grid((1, C, Tl, Hl, Wl))  # validates divisibility
        cond = None
        if cond_frames is not None:
            cond = np.asarray(cond_frames)
            if cond.ndim != 5 or cond.shape[0] != len(prompts) or cond.shape[-1] != 3 or cond.dtype != np.uint8:
                raise ValueError(f"cond_frames must be uint8 (B={len(prompts)}, k, H, W, 3), got {cond.dtype} "
                                 f"{cond.shape}")
            if not 1 <= cond.shape[1] < T:
                raise InvalidInputError(f"cond_frames: k={cond.shape[1]} given frames must be in [1, {T - 1}]")
            if cond.shape[2:4] != (self.height, self.width):
                cond = np.stack([crop_resize(c, self.height, self.width) for c in cond])
        out = []
        for s in range(0, len(prompts), self.batch_size):
            sl = slice(s, s + self.batch_size)
            out.append(self._generate(prompts[sl], seeds[sl], None if cond is None else cond[sl], T,
                                      (C, Tl, Hl, Wl), steps, guidance, method))
        return np.concatenate(out)

    def _generate(self, prompts, seeds, cond, T, lshape, steps, guidance, method) -> np.ndarray:
        B = len(prompts)
        noise = torch.stack([torch.randn(lshape, generator=torch.Generator().manual_seed(int(sd)))
                             for sd in seeds]).to(self.device)  # (B, C, T', H', W')
        text, mask = self.text_encoder.encode(list(prompts))  # (B, L, D), (B, L)
        null_text, null_mask = self.text_encoder.encode([""] * B)
        given = given_mask = None
        if cond is not None:
            k = cond.shape[1]
            full = np.zeros((B, T, self.height, self.width, 3), np.uint8)
            full[:, :k] = cond
            x = torch.as_tensor(full).to(self.device).permute(0, 4, 1, 2, 3).float() / 127.5 - 1  # (B, 3, T, H, W)
            given = self.ae.encode(x)  # causal: the first latent frames depend only on the given frames
            given_mask = torch.zeros(B, lshape[1], dtype=torch.bool, device=self.device)
            given_mask[:, :self.ae.given_latent_frames(k)] = True
        grid = self.dit.grid((B, *lshape))
        x0 = self.sampler.sample(self.dit, noise, text, mask, null_text, null_mask, given=given,
                                 given_mask=given_mask, steps=steps, guidance=guidance,
                                 num_tokens=grid[0] * grid[1] * grid[2], method=method)
        video = self.ae.decode(x0)  # (B, 3, T, H, W)
        frames = ((video.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 4, 1).cpu().numpy()
        if cond is not None:
            frames[:, :cond.shape[1]] = cond  # given frames are returned exactly as given
        return frames  # (B, T, H, W, 3)


def load_pipeline(ckpt_path: str | os.PathLike, device: str = "cpu", use_ema: bool = True,
                  batch_size: int = 8) -> VideoPipeline:
    """Build a :class:`VideoPipeline` from a checkpoint folder or a run directory (latest checkpoint).

    Args:
        use_ema: use the EMA weights when the checkpoint has them (the default, as in DiT).
    """
    from skyloom.model.dit import VideoDiT
    from skyloom.model.text import build_text_encoder

    folder = resolve_checkpoint(ckpt_path)
    info = read_pipeline_info(folder)
    if info.get("stage") == "vae":
        raise CheckpointError(f"{folder}: a VAE checkpoint (stage vae), not a video pipeline; pass it to a DiT run "
                              "with --set ae.ckpt=...")
    dit_cfg, text_cfg, ae_cfg = component_configs(folder)
    if dit_cfg is None or text_cfg is None:
        raise CheckpointError(f"{folder}: missing dit/ or text_encoder/ component")
    dev = torch_device(device)
    dit, text = VideoDiT(dit_cfg), build_text_encoder(text_cfg)
    dit_sd, text_sd = load_weights(folder, "dit"), load_weights(folder, "text_encoder")
    if dit_sd is None:
        raise CheckpointError(f"{folder}: dit/ has no model.safetensors")
    if use_ema and info.get("has_ema") and (folder / "ema").is_dir():
        ema = load_weights(folder, "ema") or {}
        dit_sd = component_state(ema, "dit") or dit_sd
        text_sd = component_state(ema, "text_encoder") or text_sd
    dit.load_state_dict(dit_sd)
    if text_sd is not None:
        text.load_state_dict(text_sd)
    ae = load_ae(ae_cfg, folder)
    info = {**info, "checkpoint": str(folder)}
    sampler_cfg = from_dict(SamplerConfig, info.get("sampler") or {})
    sampler = FlowSampler(RectifiedFlow(from_dict(ScheduleConfig, info.get("schedule") or {})), sampler_cfg.method,
                          sampler_cfg.steps, sampler_cfg.guidance)
    for m in (dit, text, ae):
        m.to(dev).eval().requires_grad_(False)
    return VideoPipeline(dit, text, ae, sampler, info, dev, batch_size)


def checkpoint_name(path: str | os.PathLike) -> str:
    p = resolve_checkpoint(path)
    return f"{Path(p).parent.parent.name}/{p.name}"


def frames_grid(videos: np.ndarray, every: int = 2, scale: int = 4, gap: int = 2) -> np.ndarray:
    """A contact sheet: one row per video, every ``every``-th frame, upscaled ``scale`` x (nearest).

    Args:
        videos: uint8 (B, T, H, W, 3). Returns uint8 (rows, cols, 3) with white gaps.
    """
    v = np.asarray(videos)[:, ::every]  # (B, T', H, W, 3)
    v = v.repeat(scale, axis=2).repeat(scale, axis=3)
    B, T, H, W, _ = v.shape
    out = np.full((B * (H + gap) - gap, T * (W + gap) - gap, 3), 255, np.uint8)
    for b in range(B):
        for t in range(T):
            out[b * (H + gap):b * (H + gap) + H, t * (W + gap):t * (W + gap) + W] = v[b, t]
    return out
