"""captioning: dense captions for both halves of the corpus, verified against ground truth.

Public names (imported lazily, so ``import captioning`` stays light):
    run(cfg) -> CaptionResult               caption a corpus (Ray actor pool, resumable)
    CaptionConfig                           the stage's config (presets in configs/caption/)
    CAPTIONERS                              registry: scene-graph, heuristic, vlm-local, vlm-endpoint
    caption_gt(gt, clip_id, seed) -> dict   scene-graph captions (kind -> text) of one gt dict
    upsample(prompt, seed=0) -> str         a short prompt expanded into the dense caption style
    verify_caption(text, gt) -> VerifyReport  precision/recall of a caption's facts vs ground truth
    parse_caption(text) -> ParsedCaption    the facts a caption states (controlled vocabulary)
    verify_corpus(corpus) / caption_stats(corpus)   corpus-level reports
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "run": "skyloom.captioning.runner", "CaptionResult": "skyloom.captioning.runner",
    "CaptionConfig": "skyloom.captioning.config", "CAPTIONERS": "skyloom.captioning.base",
    "caption_gt": "skyloom.captioning.scene_graph", "upsample": "skyloom.captioning.upsample",
    "verify_caption": "skyloom.captioning.verify", "parse_caption": "skyloom.captioning.verify",
    "VerifyReport": "skyloom.captioning.verify",
    "verify_corpus": "skyloom.captioning.report", "caption_stats": "skyloom.captioning.report",
}
__all__ = ["CAPTIONERS", "CaptionConfig", "CaptionResult", "VerifyReport", "caption_gt", "caption_stats",
           "parse_caption", "run", "upsample", "verify_caption", "verify_corpus"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'captioning' has no attribute {name!r}")
