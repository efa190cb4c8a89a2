"""CLIPSIM: per-frame CLIP image-text cosine (raw, and on torchmetrics CLIPScore's x100 scale)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from skyloom.config import ConfigError
from skyloom.eval.features.base import l2_normalise
from skyloom.eval.metrics.base import METRICS, MetricResult, _FrameFeatureMetric


@dataclass(frozen=True)
class CLIPSimConfig:
    """Settings of ``clipsim``."""

    scale: str = "raw"  # "raw": the cosine (Make-A-Video); "x100": torchmetrics CLIPScore's max(100 mean cos, 0)


@dataclass(frozen=True)
class CLIPSimX100Config:
    """Settings of ``clipsim_x100`` (``clipsim`` on torchmetrics CLIPScore's scale)."""

    scale: str = "x100"  # as clipsim's; "raw" makes it clipsim


@METRICS.register("clipsim")
class CLIPSim(_FrameFeatureMetric):
    """CLIPSIM: per-frame cosine(CLIP image, CLIP text), averaged over frames then videos.

    ``scale="raw"`` reports the cosine (Make-A-Video's 0.3049 on MSR-VTT). ``scale="x100"`` is
    torchmetrics' ``CLIPScore``: per video 100·mean_t cos (no floor), and the value is
    ``max(mean, 0)`` — the floor applies to the mean, not to each frame (videos of equal length, as
    in a suite; ``details.torchmetrics_clip_score`` weights by frames exactly as torchmetrics does).
    Both per-video figures are in ``details`` (``raw``, ``x100``); the model and weights are recorded.

    ``update(videos, prompts=[...])``.
    """

    name = "clipsim"
    version = "2"  # 2: open_clip's transform; x100 floors the mean
    inputs = ("videos", "item_ids", "prompts")
    config_class: type = CLIPSimConfig

    def __init__(self, config: CLIPSimConfig | CLIPSimX100Config | None = None, *, extractor: Any = "default",
                 extractor_kwargs: dict[str, Any] | None = None) -> None:
        config = config or self.config_class()
        if config.scale not in ("raw", "x100"):
            raise ConfigError(f"scale must be 'raw' or 'x100', got {config.scale!r}")
        self.scale = config.scale
        if self.scale == "x100":
            self.name = "clipsim_x100"
        super().__init__(config, extractor=extractor, extractor_kwargs=extractor_kwargs)

    def update(self, videos: Any, prompts: list[str] | None = None, item_ids: list[str] | None = None) -> None:
        if prompts is None:
            raise ValueError(f"{self.name} needs prompts: update(videos, prompts=[...])")
        super().update(videos, item_ids=item_ids, prompts=list(prompts))

    def score_video(self, video: np.ndarray, prompts: str = "") -> tuple[float, dict[str, float]]:
        img = l2_normalise(self.frame_features(video))  # (T, D)
        txt = l2_normalise(np.asarray(self.extractor.encode_text([prompts]), np.float64))[0]  # (D,)
        raw, x100 = clipsim_from_embeddings(img, txt)
        return (raw if self.scale == "raw" else x100), {"raw": raw, "x100": x100, "frames": float(len(img))}

    def aggregate(self, values: list[float]) -> float:
        mean = math.fsum(values) / len(values)
        return max(mean, 0.0) if self.scale == "x100" else mean

    def compute(self) -> MetricResult:
        r = super().compute()
        pairs = [(x, n) for x, n in zip(self._extra.get("x100", []), self._extra.get("frames", [])) if math.isfinite(x)]
        if pairs:  # torchmetrics: max(Σ score / n_samples, 0) over every (frame, prompt) pair
            r.details["torchmetrics_clip_score"] = max(0.0, math.fsum(x * n for x, n in pairs) /
                                                       math.fsum(n for _, n in pairs))
        return r

    def _details(self) -> dict[str, Any]:
        return {"scale": self.scale, "floor": "max(mean, 0) (torchmetrics CLIPScore)" if self.scale == "x100" else None}


def clipsim_from_embeddings(frames: np.ndarray, text: np.ndarray) -> tuple[float, float]:
    """(raw, x100) CLIPSIM of one video: mean_t cos(e_t, e_text) and 100·mean_t cos (unfloored; the
    ``clipsim_x100`` metric floors the mean over videos at 0, as torchmetrics' CLIPScore)."""
    cos = l2_normalise(frames) @ l2_normalise(text)  # (T,)
    return float(cos.mean()), float(100.0 * cos.mean())


@METRICS.register("clipsim_x100")
class CLIPSimX100(CLIPSim):
    """CLIPSIM on torchmetrics CLIPScore's scale: max(100·mean cos, 0)."""

    name = "clipsim_x100"
    config_class = CLIPSimX100Config

