"""DINO ViT-B/16 frame extractor (VBench's subject-consistency features), built with timm.

VBench computes subject consistency on DINO ViT-B/16 (Caron et al. 2021) CLS features with its
``dino_transform(224)``: frames as float32 in [0, 255] (VBench's ``torch.Tensor(frames)``),
torchvision ``Resize(224, antialias=False)`` (bilinear, shorter side to 224, the long side
*truncated* ``int(224·long/short)``), ``/255``, ImageNet mean/std; no crop. The network is DINO's
own forward: the stride-16 patch conv drops the remainder, and the position embedding is
resized as DINO's ``interpolate_pos_encoding`` does it (bicubic with
``scale_factor=((h/16 + 0.1)/√N, (w/16 + 0.1)/√N)``, not to a target size as timm does).
timm's ``VisionTransformer`` uses the same parameter names as the official DINO checkpoint
(``dino_vitbase16_pretrain.pth``: ``cls_token``, ``pos_embed``, ``blocks.0.attn.qkv.weight``,
``norm.weight``, ...), so it loads strictly from a local file.
Never downloads: without ``weights`` the constructor fails unless ``random_init=True`` (tests).

Example:
    >>> ex = DinoExtractor(DinoConfig(random_init=True, model_cfg=TINY_DINO))   # doctest: +SKIP
    >>> ex.encode_frames(np.zeros((2, 48, 64, 3), np.uint8)).shape  # doctest: +SKIP
    (2, 32)
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from skyloom.errors import InputNotFoundError, InvalidInputError
from skyloom.eval.features.base import EXTRACTORS, RANDOM_INIT, FrameTextExtractor, weights_hash

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VIT_B_16 = {"patch_size": 16, "embed_dim": 768, "depth": 12, "num_heads": 12}
TINY_DINO = {"patch_size": 16, "embed_dim": 32, "depth": 1, "num_heads": 2}  # tests only


@dataclass(frozen=True)
class DinoConfig:
    """Options of the ``dino`` extractor."""

    weights: str | os.PathLike | None = None  # local DINO checkpoint (teacher/student/model wrappers unwrapped)
    random_init: bool = False  # seeded random weights when no file is given (tests; labelled "random-init")
    model_cfg: dict[str, Any] | None = None  # ViT size (default ViT-B/16)
    seed: int = 0  # seed of the random init
    size: int = 224  # shorter-side resize
    device: str = "cpu"
    batch_size: int = 32


@EXTRACTORS.register("dino")
class DinoExtractor(FrameTextExtractor):
    """DINO ViT-B/16 CLS features of frames, no text encoder (options: :class:`DinoConfig`)."""

    config_class = DinoConfig

    def __init__(self, config: DinoConfig | None = None) -> None:
        from timm.models.vision_transformer import VisionTransformer

        c = config or DinoConfig()
        weights, random_init, model_cfg, seed, size = c.weights, c.random_init, c.model_cfg, c.seed, c.size
        device, batch_size = c.device, c.batch_size

        cfg = dict(model_cfg or VIT_B_16)
        self.device, self.batch_size, self.size = torch.device(device), int(batch_size), int(size)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.model = VisionTransformer(img_size=224, num_classes=0, global_pool="token",
                                           dynamic_img_size=True, **cfg)
        if weights is None:
            if not random_init:
                raise InputNotFoundError("DINO: no weights given; pass weights=PATH (e.g. dino_vitbase16_pretrain.pth;"
                                         " skyloom never downloads) or random_init=True for tests")
            self.weights = RANDOM_INIT
        else:
            p = Path(weights).expanduser()
            if not p.is_file():
                raise InputNotFoundError(f"DINO weights {p} not found (skyloom never downloads weights)")
            self._load(p)
            self.weights = weights_hash(p)
        self.model.eval().to(self.device)
        self.dim = int(cfg["embed_dim"])
        self.name = "dino-vit-b16" if model_cfg is None else "dino-vit-custom"
        self.preprocessing = {"protocol": "vbench-dino", "size": self.size, "crop": None,
                              "resize": "torchvision Resize bilinear antialias=False on [0,255] floats, "
                                        "long side truncated",
                              "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "feature": "CLS, L2-normalised",
                              "pos_embed": "DINO interpolate_pos_encoding, scale_factor=(n+0.1)/sqrt(N)"}
        if model_cfg is not None:
            self.preprocessing["model_cfg"] = cfg

    def _load(self, path: Path) -> None:
        sd = torch.load(path, map_location="cpu", weights_only=True)
        for key in ("teacher", "student", "model", "state_dict"):
            if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
                sd = sd[key]
                break
        sd = {k.removeprefix("module.").removeprefix("backbone."): v for k, v in sd.items()}
        sd = {k: v for k, v in sd.items() if not k.startswith("head.")}  # DINO heads are not the backbone
        missing, unexpected = self.model.load_state_dict(sd, strict=False)
        if missing or unexpected:
            raise InvalidInputError(f"{path}: not a DINO ViT state dict of this size; missing {missing[:5]}, "
                                    f"unexpected {unexpected[:5]}")

    def _pos_embed(self, h: int, w: int) -> torch.Tensor:
        """DINO's ``interpolate_pos_encoding`` for an (h, w)-pixel input: (1, 1 + h0·w0, D)."""
        pos = self.model.pos_embed  # (1, 1 + N, D)
        if pos is None:
            raise RuntimeError("DINO ViT without a position embedding")
        n = pos.shape[1] - 1
        ps = self.model.patch_embed.patch_size[0]
        h0, w0 = h // ps, w // ps
        if h0 * w0 == n and h == w:  # DINO's test: same patch count and a square input
            return pos
        side, dim = int(math.sqrt(n)), pos.shape[-1]
        grid = pos[:, 1:].reshape(1, side, side, dim).permute(0, 3, 1, 2)  # (1, D, √N, √N)
        grid = F.interpolate(grid, scale_factor=((h0 + 0.1) / math.sqrt(n), (w0 + 0.1) / math.sqrt(n)),
                             mode="bicubic")  # DINO adds 0.1 against float error (dino issue #8)
        if grid.shape[-2:] != (h0, w0):
            raise RuntimeError(f"DINO position embedding resized to {tuple(grid.shape[-2:])}, expected {(h0, w0)}")
        return torch.cat([pos[:, :1], grid.permute(0, 2, 3, 1).reshape(1, -1, dim)], dim=1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """DINO ``VisionTransformer.forward`` on normalised pixels (B, 3, H, W) -> CLS (B, D)."""
        m = self.model
        b, _, h, w = x.shape
        tok = m.patch_embed.proj(x).flatten(2).transpose(1, 2)  # (B, N, D); the conv drops the remainder
        if m.cls_token is None:
            raise RuntimeError("DINO ViT without a CLS token")
        tok = torch.cat([m.cls_token.expand(b, -1, -1), tok], dim=1) + self._pos_embed(h, w)
        for blk in m.blocks:
            tok = blk(tok)
        return m.norm(tok)[:, 0]  # (B, D)

    def encode_frames(self, frames: np.ndarray) -> np.ndarray:
        # vbench_dino_pixels: (B, 3, H', W'); forward_features: (B, D), the CLS token
        return self._encode_frame_batches(frames, lambda b: self.forward_features(
            vbench_dino_pixels(b, self.size).to(self.device)))


def vbench_dino_pixels(frames: np.ndarray, size: int = 224) -> torch.Tensor:
    """VBench's ``dino_transform(size)`` on uint8 (N, H, W, 3) frames -> (N, 3, H', W') normalised."""
    from torchvision.transforms import functional as TF

    x = torch.from_numpy(np.ascontiguousarray(frames)).float().permute(0, 3, 1, 2)  # (N, 3, H, W) in [0, 255]
    x = TF.resize(x, size, antialias=False).div(255.0)  # bilinear, shorter side to size, long side truncated
    return TF.normalize(x, list(IMAGENET_MEAN), list(IMAGENET_STD))
