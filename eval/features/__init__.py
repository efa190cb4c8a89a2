"""Feature extractors: the base classes and registry (``base``), pixels, CLIP (``clip``), DINO (``dino``),
I3D (``i3d``), the in-domain video-text evaluator (``indomain``) and the on-disk feature cache (``cache``).

Public names:
    EXTRACTORS, get_extractor        the extractor registry and its builder
    VideoExtractor, FrameTextExtractor, PixelExtractor
"""

from skyloom.eval.features.base import EXTRACTORS, FrameTextExtractor, PixelExtractor, VideoExtractor, get_extractor

__all__ = ["EXTRACTORS", "FrameTextExtractor", "PixelExtractor", "VideoExtractor", "get_extractor"]
