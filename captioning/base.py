"""The captioner interface and registry.

A captioner is built once per Ray actor from the job's :class:`~skyloom.captioning.config.CaptionConfig`
(one model load per actor) and captions batches of :class:`ClipInput`. It states what it needs
(``"gt"`` or ``"frames"``), which caption kinds it writes, and its provenance (``model_id``,
``weights_hash``, ``template_version``), which the job stores with every caption.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from skyloom.registry import Registry


class CaptionFailure(RuntimeError):
    """A clip that could not be captioned (empty or refused answer, timeout, ...); recorded per clip."""


@dataclass
class ClipInput:
    """One clip as a captioner sees it: ground truth or decoded frames ``(T, H, W, 3)`` uint8."""

    clip_id: str
    fps: float = 8.0
    gt: dict[str, Any] | None = None
    frames: np.ndarray | None = None


@dataclass
class Outcome:
    """Captions (kind -> text) of one clip, or the reason it failed."""

    clip_id: str
    captions: dict[str, str]
    error: str | None = None
    seconds: float = 0.0


class Captioner:
    """Base class: subclasses set ``name``/``needs``/``kinds`` and implement :meth:`caption_one`
    (or :meth:`caption_batch` when the model batches)."""

    name: ClassVar[str] = ""
    needs: ClassVar[str] = "frames"  # "gt" | "frames"
    kinds: tuple[str, ...] = ("dense",)
    model_id: str = ""
    weights_hash: str = ""
    template_version: str = ""

    def caption_one(self, item: ClipInput) -> dict[str, str]:
        raise NotImplementedError

    def caption_batch(self, items: list[ClipInput]) -> list[Outcome]:
        """Caption each item; an exception on one clip becomes that clip's recorded error."""
        out = []
        for it in items:
            t0 = time.perf_counter()
            try:
                out.append(Outcome(it.clip_id, self.caption_one(it), seconds=time.perf_counter() - t0))
            except Exception as e:  # noqa: BLE001 - one bad clip never stops the batch
                out.append(Outcome(it.clip_id, {}, f"{type(e).__name__}: {e}", time.perf_counter() - t0))
        return out


CAPTIONERS: Registry[type[Captioner]] = Registry("captioner")
CAPTIONERS.register_lazy("scene-graph", "skyloom.captioning.captioners:SceneGraphCaptioner")
CAPTIONERS.register_lazy("heuristic", "skyloom.captioning.heuristic:HeuristicCaptioner")
CAPTIONERS.register_lazy("vlm-local", "skyloom.captioning.vlm_local:LocalVLMCaptioner")
CAPTIONERS.register_lazy("vlm-endpoint", "skyloom.captioning.vlm_endpoint:EndpointCaptioner")

_REFUSAL = re.compile(r"^\s*(i'?m sorry|i am sorry|sorry,|i can(?:no|')t|i cannot|i am unable|i'm unable|as an ai|"
                      r"i won'?t|unable to (?:help|assist|describe))", re.IGNORECASE)


def check_answer(text: str | None) -> str:
    """Strip a model's answer; raise :class:`CaptionFailure` if it is empty or a refusal."""
    t = (text or "").strip()
    if not t:
        raise CaptionFailure("empty answer from the model")
    if _REFUSAL.search(t):
        raise CaptionFailure(f"model refused: {t[:120]!r}")
    return t


def frame_images(frames: np.ndarray, num_frames: int, layout: str, tile: int) -> list[np.ndarray]:
    """Sample ``num_frames`` uniformly from ``(T, H, W, 3)`` and return images: one grid or one per frame."""
    import cv2

    from skyloom.video import sample_indices

    idx = sample_indices(len(frames), num_frames, "uniform")
    tiles = [cv2.resize(frames[i], (tile, tile), interpolation=cv2.INTER_AREA) for i in idx]  # each (tile, tile, 3)
    if layout == "multi":
        return tiles
    if layout != "grid":
        raise ValueError(f"unknown frame layout {layout!r}; valid: grid, multi")
    cols = int(np.ceil(np.sqrt(len(tiles))))
    rows = int(np.ceil(len(tiles) / cols))
    grid = np.zeros((rows * tile, cols * tile, 3), np.uint8)  # (rows*tile, cols*tile, 3)
    for k, t in enumerate(tiles):
        r, c = divmod(k, cols)
        grid[r * tile:(r + 1) * tile, c * tile:(c + 1) * tile] = t
    return [grid]
