"""A cheap, honest fallback captioner for clips without ground truth when no VLM is configured.

It looks only at pixel statistics: dominant colour names (HSV bins), brightness, the amount and
direction of motion from dense optical flow (OpenCV Farneback) and the shot length. Its captions
say so ("Heuristic description, no vision-language model: ...") and are written with kind
``"heuristic"`` so that nobody mistakes them for a VLM's.
"""

from __future__ import annotations

import itertools

import numpy as np

from skyloom.captioning.base import CAPTIONERS, Captioner, ClipInput
from skyloom.captioning.config import CaptionConfig
from skyloom.colours import HUE_RANGES
from skyloom.optical_flow import dense_flow
from skyloom.registry import NoOptions


def colour_names(frames: np.ndarray, top: int = 2) -> list[str]:
    """Dominant colour names of uint8 RGB frames ``(T, H, W, 3)`` by pixel share.

    A saturated pixel is named by its hue (:data:`skyloom.colours.HUE_RANGES`, the one vocabulary's
    ranges), the others grey, black or white by value and saturation.
    """
    import cv2

    hsv = cv2.cvtColor(frames.reshape(-1, frames.shape[-2], 3), cv2.COLOR_RGB2HSV).reshape(-1, 3)  # (N, 3)
    h, s, v = hsv[:, 0].astype(int), hsv[:, 1].astype(int), hsv[:, 2].astype(int)
    names = np.empty(len(h), dtype=object)
    names[:] = "grey"
    chroma = (s >= 60) & (v >= 50)
    for name, ranges in HUE_RANGES.items():
        for lo, hi in ranges:
            names[chroma & (h >= lo) & (h < hi)] = name
    names[~chroma & (v < 50)] = "black"
    names[~chroma & (v >= 200) & (s < 30)] = "white"
    vals, counts = np.unique(names, return_counts=True)
    order = np.argsort(-counts)
    return [str(vals[i]) for i in order[:top] if counts[i] / len(names) >= 0.08]


def flow_stats(frames: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean flow magnitude (fraction of frame width per frame) and mean flow vector (dx, dy) in pixels."""
    mags, vecs = [], []
    for a, b in itertools.pairwise(frames):
        flow = dense_flow(a, b, "farneback")  # (H, W, 2)
        mags.append(float(np.linalg.norm(flow, axis=-1).mean()))
        vecs.append(flow.reshape(-1, 2).mean(0))
    if not mags:
        return 0.0, np.zeros(2)
    return float(np.mean(mags)) / frames.shape[2], np.mean(vecs, axis=0)


@CAPTIONERS.register("heuristic")
class HeuristicCaptioner(Captioner):
    """Colour, brightness, optical-flow motion and shot length, labelled as a heuristic."""

    name = "heuristic"
    needs = "frames"
    kinds = ("heuristic",)
    config_class = NoOptions  # its settings are the job's heuristic section

    def __init__(self, cfg: CaptionConfig | None = None, options: NoOptions | None = None) -> None:
        self.cfg = (cfg or CaptionConfig()).heuristic
        self.model_id = "heuristic-v1 (colour histogram + Farneback flow)"
        self.weights_hash = ""
        self.template_version = "heur-2"  # heur-2: hue names from skyloom.colours (was its own table)

    def caption_one(self, item: ClipInput) -> dict[str, str]:
        import cv2

        from skyloom.video import sample_indices

        fr = item.frames
        if fr is None or fr.ndim != 4 or len(fr) == 0:
            raise ValueError(f"clip {item.clip_id!r}: no frames to describe")
        idx = sample_indices(len(fr), min(self.cfg.num_frames, len(fr)), "uniform")
        small = np.stack([cv2.resize(fr[i], (self.cfg.size, self.cfg.size), interpolation=cv2.INTER_AREA)
                          for i in idx])  # (k, size, size, 3)
        dur = len(fr) / item.fps if item.fps else 0.0
        luma = float(small.mean()) / 255
        light = ("dark" if luma < 0.25 else "dimly lit" if luma < 0.45
                 else "brightly lit" if luma > 0.65 else "evenly lit")
        cols = colour_names(small)
        mag, vec = flow_stats(small)
        step = max(1, len(fr) // max(1, len(idx)))
        per_frame = mag / step
        motion = ("almost no motion" if per_frame < 0.002 else "gentle motion" if per_frame < 0.01
                  else "moderate motion" if per_frame < 0.03 else "fast motion")
        direction = ""
        if per_frame >= 0.002 and np.linalg.norm(vec) > 0.5 * mag * self.cfg.size:
            dx, dy = vec
            direction = (" drifting " + ("right" if dx > 0 else "left") if abs(dx) >= abs(dy)
                         else " drifting " + ("down" if dy > 0 else "up")) + " across the frame"
        colours = " and ".join(cols) if cols else "mixed"
        text = (f"Heuristic description, no vision-language model: a {dur:.1f}-second shot, {light}, dominated by "
                f"{colours} tones, with {motion}{direction}.")
        return {"heuristic": text}
