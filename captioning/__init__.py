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
    "run": "captioning.runner", "CaptionResult": "captioning.runner", "CaptionConfig": "captioning.config",
    "CAPTIONERS": "captioning.base", "caption_gt": "captioning.scene_graph", "upsample": "captioning.upsample",
    "verify_caption": "captioning.verify", "parse_caption": "captioning.verify", "VerifyReport": "captioning.verify",
    "verify_corpus": "captioning.report", "caption_stats": "captioning.report",
}
__all__ = ["CAPTIONERS", "CaptionConfig", "CaptionResult", "VerifyReport", "caption_gt", "caption_stats",
           "parse_caption", "run", "upsample", "verify_caption", "verify_corpus"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'captioning' has no attribute {name!r}")
