"""The captioner interface and registry.

A captioner is built once per Ray actor from the job's :class:`~skyloom.captioning.config.CaptionConfig`
(one model load per actor) and captions batches of :class:`ClipInput`. It states what it needs
(``"gt"`` or ``"frames"``), which caption kinds it writes, whether it can run under a config
(:meth:`Captioner.available`, used by ``captioner=auto``), and its provenance (``model_id``,
``weights_hash``, ``template_version``), which the job stores with every caption.

Captioners live in :data:`CAPTIONERS`; another package adds one under the ``skyloom.captioners``
entry point. Every captioner sets ``config_class`` (a frozen dataclass of its own settings;
:class:`skyloom.registry.NoOptions` when it takes none); the job's ``options.<name>`` mapping is
checked against it and passed to the constructor.
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
    (or :meth:`caption_batch` when the model batches).

    Built as ``cls(cfg: CaptionConfig, options)`` with ``options`` = ``cfg.options[name]`` checked
    against its ``config_class`` (required); see :func:`build_captioner`.
    """

    name: ClassVar[str] = ""
    needs: ClassVar[str] = "frames"  # "gt" | "frames"
    kinds: tuple[str, ...] = ("dense",)
    config_class: ClassVar[type | None] = None  # the captioner's own options (a frozen dataclass; required)
    model_id: str = ""
    weights_hash: str = ""
    template_version: str = ""

    @classmethod
    def caption_kinds(cls, cfg: Any) -> tuple[str, ...]:
        """Caption kinds this captioner writes under ``cfg`` (without loading a model)."""
        return tuple(cls.kinds)

    @classmethod
    def available(cls, cfg: Any) -> bool:
        """Whether ``cfg`` gives this captioner what it needs (a model folder, an endpoint, ...)."""
        return True

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


CAPTIONERS: Registry[type[Captioner]] = Registry("captioner", group="skyloom.captioners")
CAPTIONERS.register_lazy("scene-graph", "skyloom.captioning.captioners:SceneGraphCaptioner")
CAPTIONERS.register_lazy("heuristic", "skyloom.captioning.heuristic:HeuristicCaptioner")
CAPTIONERS.register_lazy("vlm-local", "skyloom.captioning.vlm_local:LocalVLMCaptioner")
CAPTIONERS.register_lazy("vlm-endpoint", "skyloom.captioning.vlm_endpoint:EndpointCaptioner")



def captioner_options(name: str, cfg: Any) -> Any:
    """``cfg.options[name]`` checked against captioner ``name``'s ``config_class``."""
    return CAPTIONERS.options(name, cfg.options.get(name), where=f"options.{name}")


def build_captioner(name: str, cfg: Any) -> Captioner:
    """Captioner ``name`` built from the job's config and its own options (``cfg.options[name]``, checked)."""
    return CAPTIONERS.build(name, cfg, options=cfg.options.get(name), where=f"options.{name}")


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
