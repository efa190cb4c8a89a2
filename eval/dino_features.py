"""DINO ViT-B/16 frame extractor (VBench's subject-consistency features), built with timm.

VBench computes subject consistency on DINO ViT-B/16 (Caron et al. 2021) CLS features: frames
/255, shorter side resized to 224 (no crop, no antialias), ImageNet mean/std, L2-normalised CLS
token. timm's ``VisionTransformer`` uses the same parameter names as the official DINO
checkpoint (``dino_vitbase16_pretrain.pth``: ``cls_token``, ``pos_embed``,
``blocks.0.attn.qkv.weight``, ``norm.weight``, ...), so it loads strictly from a local file.
Never downloads: without ``weights`` the constructor fails unless ``random_init=True`` (tests).

Example:
    >>> ex = DinoExtractor(random_init=True, model_cfg=TINY_DINO)   # doctest: +SKIP
    >>> ex.encode_frames(np.zeros((2, 48, 64, 3), np.uint8)).shape  # doctest: +SKIP
    (2, 32)
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from skyloom.eval.features import EXTRACTORS, RANDOM_INIT, FrameTextExtractor, weights_hash

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VIT_B_16 = {"patch_size": 16, "embed_dim": 768, "depth": 12, "num_heads": 12}
TINY_DINO = {"patch_size": 16, "embed_dim": 32, "depth": 1, "num_heads": 2}  # tests only


@EXTRACTORS.register("dino")
class DinoExtractor(FrameTextExtractor):
    """DINO ViT-B/16 CLS features of frames (no text encoder).

    Args:
        weights: local DINO checkpoint (state dict; ``teacher``/``student``/``model`` wrappers and
            ``module.``/``backbone.`` prefixes are unwrapped).
        random_init: seeded random weights when no file is given (tests; labelled "random-init").
        model_cfg: ViT size (default ViT-B/16).
        size: shorter-side resize (224).
    """

    def __init__(self, weights: str | os.PathLike | None = None, random_init: bool = False,
                 model_cfg: dict[str, Any] | None = None, seed: int = 0, size: int = 224,
                 device: str = "cpu", batch_size: int = 32) -> None:
        from timm.models.vision_transformer import VisionTransformer

        cfg = dict(model_cfg or VIT_B_16)
        self.device, self.batch_size, self.size = torch.device(device), int(batch_size), int(size)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.model = VisionTransformer(img_size=224, num_classes=0, global_pool="token",
                                           dynamic_img_size=True, **cfg)
        if weights is None:
            if not random_init:
                raise FileNotFoundError("DINO: no weights given; pass weights=PATH (e.g. dino_vitbase16_pretrain.pth;"
                                        " skyloom never downloads) or random_init=True for tests")
            self.weights = RANDOM_INIT
        else:
            p = Path(weights).expanduser()
            if not p.is_file():
                raise FileNotFoundError(f"DINO weights {p} not found (skyloom never downloads weights)")
            self._load(p)
            self.weights = weights_hash(p)
        self.model.eval().to(self.device)
        self.dim = int(cfg["embed_dim"])
        self.name = "dino-vit-b16" if model_cfg is None else "dino-vit-custom"
        self.preprocessing = {"resize": "shorter side, bilinear, no antialias", "size": self.size, "crop": None,
                              "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "feature": "CLS, L2-normalised"}
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
            raise ValueError(f"{path}: not a DINO ViT state dict of this size; missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]}")

    def encode_frames(self, frames: np.ndarray) -> np.ndarray:
        f = np.asarray(frames)
        if f.ndim != 4 or f.shape[-1] != 3 or f.dtype != np.uint8:
            raise ValueError(f"frames: expected uint8 (N, H, W, 3), got {f.dtype} {f.shape}")
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        out = []
        with torch.inference_mode():
            for i in range(0, len(f), self.batch_size):
                x = torch.from_numpy(np.ascontiguousarray(f[i:i + self.batch_size])).permute(0, 3, 1, 2).float() / 255
                h, w = x.shape[2:]
                s = self.size / min(h, w)
                x = F.interpolate(x, size=(max(16, round(h * s)), max(16, round(w * s))), mode="bilinear",
                                  align_corners=False, antialias=False)  # (B, 3, H', W')
                ps = self.model.patch_embed.patch_size[0]
                x = x[:, :, : x.shape[2] // ps * ps, : x.shape[3] // ps * ps]  # DINO's stride-16 conv drops the rest
                e = self.model((x - mean) / std)  # (B, D) CLS token
                out.append(F.normalize(e.float(), dim=-1).double().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim))
