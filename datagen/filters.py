"""Quality filters for ingested clips: duration, resolution, blank/static frames, motion, aspect.

Scores are computed on the frames kept for the clip (sampled at the target fps), downscaled to
``flow_width`` pixels wide and converted to grey:

* ``motion``: mean dense optical-flow magnitude between consecutive kept frames (OpenCV DIS,
  ultrafast preset, or Farneback), in frame widths per second, so the score does not depend on the
  analysis size or the frame rate: a pan across the whole frame in one second scores 1.0.
* ``frame_diff``: mean absolute grey difference between consecutive kept frames, in [0, 1].
* ``contrast``: mean per-frame standard deviation of grey, in [0, 1] (a blank frame is ~0).
* ``brightness``: mean grey level, in [0, 1].

The optical-flow motion score is the one Open-Sora filters on; the others catch what flow misses
(a black or single-colour clip has zero flow *and* zero contrast: it is reported as ``blank``).

Example:
    >>> import numpy as np
    >>> still = np.full((4, 32, 32, 3), 128, np.uint8)
    >>> q = clip_quality(FrameStats(FilterConfig(), fps=8.0).update_all(still))
    >>> decide(q, duration_s=0.5, cfg=FilterConfig(min_duration_s=0.0))
    'blank'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from skyloom.datagen.sources import SourceRejected
from skyloom.optical_flow import FLOW_METHODS, dense_flow


@dataclass(frozen=True)
class FilterConfig:
    """Thresholds of the clip and source filters (0 disables a bound where noted).

    Attributes:
        min_duration_s / max_duration_s: clip length bounds (max 0 = none).
        min_width / min_height: smallest source resolution accepted.
        max_pixels: largest frame accepted (width x height), checked on the header before any frame
            is decoded and on every decoded frame (a stream may change size): a "pixel bomb" (a
            few KB claiming 16000x16000) is rejected at once instead of decoded.
        max_decode_pixels: decode budget of one source (width x height x frames; default ten
            minutes of 1080p30), checked on the header's frame count and while decoding.
        blank_contrast: clips whose mean grey std is below this (in [0, 1]) are ``blank``.
        static_diff: clips whose mean frame difference is below this (in [0, 1]) and whose motion is
            below ``static_motion`` are ``static``.
        static_motion: motion (frame widths / s) below which a clip can be ``static``.
        min_motion / max_motion: optional motion bounds (0 = off): ``low motion`` / ``too much motion``.
        flow: dense optical-flow method, ``dis`` (fast) or ``farneback``.
        flow_width: frames are downscaled to this width for the scores.
        buckets: optional aspect-ratio buckets (``"16:9"``, ``"1:1"``, ...); a clip is centre-cropped
            to the nearest bucket, or rejected if none is within ``bucket_tolerance`` (relative).
    """

    min_duration_s: float = 1.0
    max_duration_s: float = 0.0
    min_width: int = 64
    min_height: int = 64
    max_pixels: int = 4096 * 4096
    max_decode_pixels: int = 1920 * 1080 * 30 * 600
    blank_contrast: float = 0.02
    static_diff: float = 0.002
    static_motion: float = 0.002
    min_motion: float = 0.0
    max_motion: float = 0.0
    flow: Literal["dis", "farneback"] = "dis"
    flow_width: int = 128
    buckets: tuple[str, ...] = ()
    bucket_tolerance: float = 0.15


def check_source(width: int, height: int, cfg: FilterConfig, num_frames: int = 0) -> None:
    """Source-level gate on the header: reject sources below the minimum resolution, frames above
    ``max_pixels`` and a claimed length above the decode budget ``max_decode_pixels``."""
    if width < cfg.min_width or height < cfg.min_height:
        raise SourceRejected("resolution too small",
                             f"{width}x{height} is below filters.min_width x min_height = "
                             f"{cfg.min_width}x{cfg.min_height}")
    check_frame_budget(width, height, cfg)
    if cfg.max_decode_pixels and width * height * num_frames > cfg.max_decode_pixels:
        raise SourceRejected("decode budget exceeded",
                             f"{width}x{height} x {num_frames} frames = {width * height * num_frames} pixels > "
                             f"filters.max_decode_pixels={cfg.max_decode_pixels}")


def check_frame_budget(width: int, height: int, cfg: FilterConfig, decoded_pixels: int = 0) -> None:
    """Reject a frame larger than ``max_pixels`` or a decode past ``max_decode_pixels`` (pixels so far)."""
    if cfg.max_pixels and width * height > cfg.max_pixels:
        raise SourceRejected("resolution too large",
                             f"{width}x{height} = {width * height} pixels per frame > "
                             f"filters.max_pixels={cfg.max_pixels}")
    if cfg.max_decode_pixels and decoded_pixels > cfg.max_decode_pixels:
        raise SourceRejected("decode budget exceeded",
                             f"decoded {decoded_pixels} pixels > filters.max_decode_pixels={cfg.max_decode_pixels}")


def parse_bucket(text: str) -> float:
    """``"16:9"`` -> 16/9 (width over height)."""
    try:
        w, h = (float(x) for x in text.split(":"))
        if w <= 0 or h <= 0:
            raise ValueError
    except ValueError:
        raise ValueError(f"filters.buckets: {text!r} is not an aspect ratio like '16:9'") from None
    return w / h


def choose_bucket(width: int, height: int, cfg: FilterConfig) -> tuple[str, float] | None:
    """Nearest aspect bucket ``(name, ratio)`` within tolerance; None if buckets are off.

    Raises:
        SourceRejected: ``aspect ratio not in buckets`` when buckets are set and none fits.
    """
    if not cfg.buckets:
        return None
    ar = width / height
    name, ratio = min(((b, parse_bucket(b)) for b in cfg.buckets), key=lambda t: abs(np.log(t[1] / ar)))
    if abs(ratio - ar) / ar > cfg.bucket_tolerance:
        raise SourceRejected("aspect ratio not in buckets",
                             f"{width}x{height} (aspect {ar:.3f}) is not within {cfg.bucket_tolerance:.0%} of "
                             f"any of filters.buckets: {', '.join(cfg.buckets)}")
    return name, ratio


def flow_magnitude(prev: np.ndarray, cur: np.ndarray, method: str = "dis", _cache: dict | None = None) -> float:
    """Mean dense optical-flow magnitude in pixels between two grey uint8 frames ``(h, w)``."""
    if method not in FLOW_METHODS:
        raise ValueError(f"filters.flow: {method!r} is not one of {', '.join(map(repr, FLOW_METHODS))}")
    flow = dense_flow(prev, cur, method, preset="ultrafast", cache=_cache)  # (h, w, 2); fast for curation
    return float(np.sqrt((flow.astype(np.float64) ** 2).sum(-1)).mean())


class FrameStats:
    """Per-frame statistics of the kept frames of one clip, accumulated in order.

    Args:
        cfg: filter settings (flow method and analysis width).
        fps: rate of the kept frames (for motion per second).
    """

    def __init__(self, cfg: FilterConfig, fps: float) -> None:
        self.cfg = cfg
        self.fps = fps
        self.brightness: list[float] = []
        self.contrast: list[float] = []
        self.diff: list[float] = []
        self.motion: list[float] = []
        self._prev: np.ndarray | None = None
        self._cache: dict = {}

    def update(self, frame_rgb: np.ndarray) -> None:
        """Add one kept frame, uint8 ``(H, W, 3)`` RGB."""
        import cv2

        h, w = frame_rgb.shape[:2]
        fw = min(self.cfg.flow_width, w)
        fh = max(8, round(h * fw / w))
        small = cv2.resize(frame_rgb, (fw, fh), interpolation=cv2.INTER_AREA) if (fw, fh) != (w, h) else frame_rgb
        grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)  # (fh, fw)
        g = grey.astype(np.float32)
        self.brightness.append(float(g.mean()) / 255.0)
        self.contrast.append(float(g.std()) / 255.0)
        if self._prev is not None:
            self.diff.append(float(np.abs(g - self._prev.astype(np.float32)).mean()) / 255.0)
            px = flow_magnitude(self._prev, grey, self.cfg.flow, self._cache)
            self.motion.append(px / fw * self.fps)  # frame widths per second
        self._prev = grey

    def update_all(self, frames: np.ndarray) -> FrameStats:
        for f in frames:
            self.update(f)
        return self


def clip_quality(stats: FrameStats) -> dict[str, float]:
    """Scores of one clip (see the module docstring), for ``ClipRecord.quality``."""
    def mean(v: list[float]) -> float:
        return float(np.mean(v)) if v else 0.0

    return {"motion": mean(stats.motion), "frame_diff": mean(stats.diff),
            "contrast": mean(stats.contrast), "brightness": mean(stats.brightness)}


def decide(quality: dict[str, float], duration_s: float, cfg: FilterConfig) -> str | None:
    """The reason a clip is rejected (``too short``, ``blank``, ``static``, ...), or None to keep it."""
    if duration_s + 1e-6 < cfg.min_duration_s:
        return "too short"
    if cfg.max_duration_s and duration_s > cfg.max_duration_s + 1e-6:
        return "too long"
    if quality["contrast"] < cfg.blank_contrast:
        return "blank"
    if quality["frame_diff"] < cfg.static_diff and quality["motion"] < cfg.static_motion:
        return "static"
    if cfg.min_motion and quality["motion"] < cfg.min_motion:
        return "low motion"
    if cfg.max_motion and quality["motion"] > cfg.max_motion:
        return "too much motion"
    return None
